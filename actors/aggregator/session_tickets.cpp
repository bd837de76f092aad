#include "actors/aggregator/session_tickets.hpp"

#include "security/study_credentials.hpp"

namespace melissa {

void session_tickets::issue(std::uint32_t sim, std::uint32_t attempt, std::string ticket) {
  auto& entry = latest_[sim];
  if (attempt < entry.attempt) return;  // a late notice of an older attempt
  entry = {attempt, std::move(ticket)};
}

void session_tickets::revoke(std::uint32_t sim, std::uint32_t attempt) {
  auto& entry = latest_[sim];
  if (attempt > entry.attempt) entry.attempt = attempt;  // ended before its notice arrived
  if (attempt == entry.attempt) entry.ticket.clear();
}

session_tickets::check_result session_tickets::check(std::uint32_t sim, std::uint32_t attempt,
                                                     const std::string& ticket) const {
  const auto name = "simulation " + std::to_string(sim) + " attempt " + std::to_string(attempt);
  const auto it = latest_.find(sim);
  if (it == latest_.end() || it->second.attempt < attempt)
    return {verdict::unknown, "the launcher started no " + name};
  const auto& entry = it->second;
  if (entry.attempt > attempt)
    return {verdict::refused, name + " was superseded by attempt " + std::to_string(entry.attempt)};
  if (entry.ticket.empty()) return {verdict::refused, "the job of " + name + " has ended"};
  if (!security::secrets_equal(entry.ticket, ticket))
    return {verdict::refused, "wrong session ticket for " + name};
  return {verdict::accepted, {}};
}

}  // namespace melissa
