#include "apps/melissa-server/sink_modes.hpp"

#include <chrono>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "actors/checkpoint_keeper/sink_checkpoints.hpp"
#include "actors/dataset_sink/dataset_writer.hpp"

namespace melissa {

statistics_sink_checkpoints statistics_checkpoints(
    const config::study_config& study, std::uint32_t rank, std::uint32_t ranks,
    const std::string& output_dir, const checkpoint::server_restore* restored,
    std::function<std::optional<simulation_table_snapshot>()> table,
    std::function<double()> elapsed) {
  statistics_sink_checkpoints out;
  const auto& c = study.checkpoint;
  if (c.every_batches == 0 && c.every_seconds <= 0) {
    out.why_none = "checkpoints are off ([checkpoint] every_batches = every_seconds = 0)";
    return out;
  }
  checkpoint::sink_checkpoint_settings s;
  s.dir = c.dir.empty() ? output_dir + "/checkpoints" : c.dir;
  s.keep = c.keep;
  s.every_units = c.every_batches;
  s.every_seconds = c.every_seconds;
  s.study = study.study.name;
  s.rank = rank;
  s.ranks = ranks;
  s.start_units = restored ? restored->batch : 0;
  s.table = std::move(table);
  if (rank == 0) s.elapsed = std::move(elapsed);
  std::filesystem::create_directories(s.dir);
  const double now =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  out.keeper = std::make_shared<checkpoint::sink_checkpoints>(s, now);
  return out;
}

std::shared_ptr<restored_statistics> read_statistics_restore(
    const checkpoint::server_restore& restored, std::uint32_t rank,
    const statistics_core_settings& settings) {
  auto out = std::make_shared<restored_statistics>();
  out->state = checkpoint::read_sink_file(restored.dir, rank, "statistics.bin");
  out->received = restored.received;
  out->units = restored.batch;
  // Read once now, so that a checkpoint of another study stops here (exit 2).
  statistics_core probe(settings);
  std::istringstream in(out->state, std::ios::binary);
  try {
    probe.load(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(restored.dir + "/rank-" + std::to_string(rank) +
                             "/statistics.bin: " + e.what());
  }
  return out;
}

std::optional<dataset_restart> scan_dataset(const config::study_config& study,
                                            const config::design_matrix& design) {
  std::vector<std::string> names;
  std::vector<std::uint64_t> sizes;
  for (const auto& f : study.fields) {
    names.push_back(f.name);
    sizes.push_back(f.size);
  }
  const auto dir = study.server.dataset_dir;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return std::nullopt;
  auto complete = complete_simulations(dir, names, sizes, study.client.steps, design);
  if (complete.empty()) return std::nullopt;
  dataset_restart out;
  out.complete = complete;
  for (auto sim : complete) {
    for (std::uint32_t f = 0; f < names.size(); ++f)
      for (std::uint32_t t = 0; t < study.client.steps; ++t) out.received.insert(sim, f, t);
    out.received.mark_done(sim);
  }
  out.table.parameters = design;
  out.table.states.assign(design.size(), sim_state::pending);
  out.table.changes.assign(design.size(), 0);
  for (auto sim : complete) out.table.states[sim] = sim_state::complete;
  return out;
}

}  // namespace melissa
