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
  return rows_.emplace(row.id, std::move(row)).first->second;
}

job_row* job_table::find(std::uint32_t id) {
  auto it = rows_.find(id);
  return it == rows_.end() ? nullptr : &it->second;
}

job_row* job_table::find_backend(const std::string& backend_id) {
  for (auto& [id, row] : rows_)
    if (row.backend_id == backend_id) return &row;
  return nullptr;
}

job_row* job_table::latest_of(std::uint32_t sim_id) {
  job_row* latest = nullptr;
  for (auto& [id, row] : rows_)
    if (row.kind == scheduler::job_kind::client && row.sim_id == sim_id &&
        (!latest || row.attempt > latest->attempt))
      latest = &row;
  return latest;
}

std::vector<std::string> job_table::active_backend_ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, row] : rows_)
    if (!row.backend_id.empty() && !scheduler::is_final(row.state)) ids.push_back(row.backend_id);
  return ids;
}

}  // namespace melissa
