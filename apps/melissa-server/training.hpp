// The training part of a server rank (server.sink = "train"): the children
// that replace the plain sink in the rank's supervision tree. Kept in its own
// translation unit so that main.cpp stays free of LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "actors/coordinator/simulation_table.hpp"
#include "actors/supervisor/supervisor.hpp"
#include "config/design.hpp"
#include "config/study.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

struct training_rank {
  std::uint32_t rank = 0;
  std::uint32_t ranks = 1;
  std::string output_dir;
  std::string host;          // this rank's host (rank 0 hosts the c10d store there)
  std::string run_token;     // unique per study run: names the c10d rendezvous file
  launcher_server_actor launcher;  // invalid for a standalone server (Breed then changes nothing)
  // --restore: the verified checkpoint this rank starts from (its trainer
  // and buffer parts), and that checkpoint's batch. Empty: a fresh start.
  std::string restore_dir;
  std::uint64_t restored_batch = 0;
  // Rank 0 under a launcher: the simulation table as the coordinator last
  // published it, for the checkpoints (empty elsewhere).
  std::function<std::optional<simulation_table_snapshot>()> table;
  // Rank 0: the study's elapsed seconds now (counting on from a restored
  // checkpoint's), for the checkpoints' study/study_state.json; and with
  // --restore, the checkpoint's study/breed_state.json ("" : Breed afresh).
  std::function<double()> elapsed;
  std::string restored_breed_state;
};

// Whether this build can train (LibTorch was found).
bool training_available();

// Appends "sink" (the training buffer), on rank 0 with [breed] "steering",
// and "trainer" to `tree`. Throws
// std::runtime_error with a user-facing message (a validation set that cannot
// be read, a field the study does not have).
void add_training_children(std::vector<child_spec>& tree, const config::study_config& study,
                           const config::design_matrix& design, const training_rank& where);

}  // namespace melissa
