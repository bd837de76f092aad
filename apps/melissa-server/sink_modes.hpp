// The restart state of the server modes without a trainer (docs/checkpoints.md,
// "Statistics mode" and "Dataset mode"), kept out of main.cpp:
//  - statistics: the sink's checkpoint keeper ([checkpoint], one rank) and
//    what --restore reads back for it (rank-R/statistics.bin);
//  - dataset: the simulations whose files are complete in the dataset
//    directory, which a (re)started server never writes or asks for again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/aggregator/step_log.hpp"
#include "actors/checkpoint_keeper/server_restore.hpp"
#include "actors/coordinator/simulation_table.hpp"
#include "actors/statistics_sink/statistics_sink.hpp"
#include "config/design.hpp"
#include "config/study.hpp"

namespace melissa {

// [checkpoint] for the statistics sink of rank `rank` of `ranks`: a keeper
// (every_batches counts the steps folded in; with several ranks rank 0
// leads), or none with the reason (off). `restored`: --restore's checkpoint.
statistics_sink_checkpoints statistics_checkpoints(
    const config::study_config& study, std::uint32_t rank, std::uint32_t ranks,
    const std::string& output_dir, const checkpoint::server_restore* restored,
    std::function<std::optional<simulation_table_snapshot>()> table,
    std::function<double()> elapsed = {});

// --restore of a statistics server: this rank's statistics.bin, checked
// against the study now (throws std::runtime_error naming the file), and
// its received steps.
std::shared_ptr<restored_statistics> read_statistics_restore(
    const checkpoint::server_restore& restored, std::uint32_t rank,
    const statistics_core_settings& settings);

// A dataset server's state on disk: the simulations complete in its
// directory (complete_simulations), as the aggregator's log (every step
// received, done), and rank 0's table (complete there, the rest pending).
struct dataset_restart {
  std::vector<std::uint32_t> complete;
  step_log received;
  simulation_table_snapshot table;
};
std::optional<dataset_restart> scan_dataset(const config::study_config& study,
                                            const config::design_matrix& design);

}  // namespace melissa
