#include "actors/launcher/job_table.hpp"

namespace melissa {

job_row& job_table::add(scheduler::job_kind kind, std::uint32_t sim_id, std::uint32_t attempt,
                        std::string parameters) {
  job_row row;
  row.id = next_id_++;
  row.kind = kind;
  row.sim_id = sim_id;
  row.attempt = attempt;
  row.parameters = std::move(parameters);
  if (kind == scheduler::job_kind::client) {
    auto [it, fresh] = latest_.emplace(sim_id, row.id);
    if (!fresh && rows_.at(it->second).attempt < attempt) it->second = row.id;
    by_attempt_[attempt_key(sim_id, attempt)] = row.id;
  }
  open_.insert(row.id);
  return rows_.emplace(row.id, std::move(row)).first->second;
}

job_row* job_table::find(std::uint32_t id) {
  auto it = rows_.find(id);
  return it == rows_.end() ? nullptr : &it->second;
}

const job_row* job_table::find(std::uint32_t id) const {
  auto it = rows_.find(id);
  return it == rows_.end() ? nullptr : &it->second;
}

job_row* job_table::find_backend(const std::string& backend_id) {
  const auto it = by_backend_.find(backend_id);
  return it == by_backend_.end() ? nullptr : find(it->second);
}

void job_table::set_backend_id(std::uint32_t id, std::string backend_id) {
  auto* row = find(id);
  if (!row) return;
  if (!row->backend_id.empty()) by_backend_.erase(row->backend_id);
  row->backend_id = std::move(backend_id);
  // A backend id reused by a later job (a recycled pid) names the later job.
  by_backend_[row->backend_id] = id;
}

job_row* job_table::latest_of(std::uint32_t sim_id) {
  const auto it = latest_.find(sim_id);
  return it == latest_.end() ? nullptr : find(it->second);
}

job_row* job_table::attempt_of(std::uint32_t sim_id, std::uint32_t attempt) {
  const auto it = by_attempt_.find(attempt_key(sim_id, attempt));
  return it == by_attempt_.end() ? nullptr : find(it->second);
}

void job_table::prune() const {
  for (auto it = open_.begin(); it != open_.end();)
    it = scheduler::is_final(rows_.at(*it).state) ? open_.erase(it) : std::next(it);
}

std::vector<std::string> job_table::active_backend_ids() const {
  prune();
  std::vector<std::string> ids;
  for (const auto id : open_) {
    const auto& row = rows_.at(id);
    if (!row.backend_id.empty()) ids.push_back(row.backend_id);
  }
  return ids;
}

std::vector<const job_row*> job_table::open_rows() const {
  prune();
  std::vector<const job_row*> out;
  out.reserve(open_.size());
  for (const auto id : open_) out.push_back(&rows_.at(id));
  return out;
}

}  // namespace melissa
