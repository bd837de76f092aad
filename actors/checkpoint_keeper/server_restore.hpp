// What a server rank started with --restore CHECKPOINT_DIR reads before it
// spawns anything (main.cpp): the checkpoint verified again, this rank's
// received steps (the aggregator starts from them: a resent step already in
// the checkpoint is dropped) and, on rank 0, the simulation table and the
// simulations complete in the checkpoint. Plain C++, no CAF, no torch: the
// trainer's and the buffer's parts are read by the training children
// (rank_parts.hpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/aggregator/step_log.hpp"
#include "actors/coordinator/simulation_table.hpp"

namespace melissa::checkpoint {

struct server_restore {
  std::string dir;
  std::uint64_t batch = 0;  // the checkpoint's (all ranks)
  step_log received;        // this rank's
  // Rank 0: study/simulation_table.json when the checkpoint has one (a
  // study under a launcher), its complete states limited to `complete`.
  std::optional<simulation_table_snapshot> table;
  // Rank 0: simulations done in every rank's received steps (and complete
  // in the table when there is one), ascending. A restart never reruns them.
  std::vector<std::uint32_t> complete;
  // Rank 0's extras (absent in older checkpoints, and on other ranks):
  // study/study_state.json's elapsed time (the server's summary counts on
  // from it) and study/breed_state.json as written (breed_steering::
  // state_json; "" without Breed).
  std::optional<double> elapsed_s;
  std::string breed_state;
};

// study/study_state.json: {"elapsed_s": seconds the study had run}.
std::string study_state_to_json(double elapsed_s);
double study_state_elapsed(const std::string& json);  // throws std::runtime_error

// Throws std::runtime_error saying why: the checkpoint does not verify, it
// holds another number of ranks than `ranks`, a part cannot be read.
server_restore read_server_restore(const std::string& dir, std::uint32_t rank, std::uint32_t ranks);

}  // namespace melissa::checkpoint
