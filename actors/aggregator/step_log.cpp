#include "actors/aggregator/step_log.hpp"

namespace melissa {

step_log::simulation& step_log::at(std::uint32_t sim) {
  if (cache_.sim && cache_.id == sim) return *cache_.sim;
  auto& s = sims_[sim];
  cache_.id = sim;
  cache_.sim = &s;
  return s;
}

const step_log::simulation* step_log::find(std::uint32_t sim) const {
  if (cache_.sim && cache_.id == sim) return cache_.sim;
  auto it = sims_.find(sim);
  if (it == sims_.end()) return nullptr;
  cache_.id = sim;
  cache_.sim = const_cast<simulation*>(&it->second);
  return &it->second;
}

bool step_log::insert(std::uint32_t sim, std::uint32_t field, std::uint32_t step) {
  auto& s = at(sim);
  if (s.received.size() <= field) s.received.resize(field + 1);
  auto& bits = s.received[field];
  if (bits.size() <= step) bits.resize(step + 1, false);
  if (bits[step]) {
    ++s.duplicates;
    ++total_duplicates_;
    return false;
  }
  bits[step] = true;
  ++s.stored;
  ++total_stored_;
  return true;
}

bool step_log::contains(std::uint32_t sim, std::uint32_t field, std::uint32_t step) const {
  const auto* s = find(sim);
  if (!s || s->received.size() <= field) return false;
  const auto& bits = s->received[field];
  return step < bits.size() && bits[step];
}

void step_log::forget(std::uint32_t sim, std::uint32_t field, std::uint32_t step) {
  if (!contains(sim, field, step)) return;
  auto& s = at(sim);
  s.received[field][step] = false;
  --s.stored;
  --total_stored_;
}

void step_log::note_attempt(std::uint32_t sim, std::uint32_t attempt) {
  at(sim).attempts.insert(attempt);
}

std::uint64_t step_log::missing_steps(std::uint32_t sim, std::uint32_t fields, std::uint32_t steps,
                                      std::uint32_t rank, std::uint32_t ranks) const {
  std::uint64_t missing = 0;
  const std::uint32_t first = ranks == 0 ? 0 : (rank + ranks - sim % ranks) % ranks;
  for (std::uint32_t field = 0; field < fields; ++field)
    for (std::uint64_t t = first; t < steps; t += ranks == 0 ? 1 : ranks)
      if (!contains(sim, field, static_cast<std::uint32_t>(t))) ++missing;
  return missing;
}

bool step_log::mark_done(std::uint32_t sim) {
  auto& s = at(sim);
  if (s.done) return false;
  s.done = true;
  ++done_count_;
  return true;
}

step_log step_log::restore(std::map<std::uint32_t, simulation> sims) {
  step_log log;
  for (const auto& [sim, s] : sims) {
    log.total_stored_ += s.stored;
    log.total_duplicates_ += s.duplicates;
    if (s.done) ++log.done_count_;
  }
  log.sims_ = std::move(sims);
  return log;
}

}  // namespace melissa
