// One server rank's part of a checkpoint, from the snapshots its actors take
// (the trainer's, the buffer's, the aggregator's received-steps log), and
// back. The checkpoint keeper hands rank_parts() to its writer thread; a
// restarted rank reads its part with read_rank_part(). No CAF; no torch in
// this header (the trainer's files are written by trainer_snapshot).
//
//   rank-<R>/trainer/tensors.bin, tensors.json           (trainer_core::load)
//   rank-<R>/buffer.bin                                  ([checkpoint] buffer = true)
//   rank-<R>/received_steps.json
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/aggregator/step_log.hpp"
#include "actors/checkpoint_keeper/checkpoint_writer.hpp"
#include "actors/coordinator/simulation_table.hpp"
#include "actors/reservoir/training_buffer.hpp"
#include "actors/trainer/trainer_core.hpp"

namespace melissa::checkpoint {

struct rank_snapshot {
  std::uint32_t rank = 0;
  trainer_snapshot trainer;               // empty: no trainer on this server (count / dataset sink)
  std::optional<buffer_snapshot> buffer;  // none: no buffer, or [checkpoint] buffer = false
  step_log received;
  bool with_received = true;              // false: another part writes received_steps.json
  // Rank 0: study/simulation_table.json. A simulation complete in it but
  // not done in `received` is written as submitted (it is rerun): the
  // received steps decide what a restart may skip.
  std::optional<simulation_table_snapshot> table;
};

// A part that writes `text` to `path` (relative to the checkpoint), e.g.
// rank 0's study/breed_state.json.
checkpoint_part text_part(std::string path, std::string text);

// The parts that write `snapshot` (it is moved into them: the caller keeps
// nothing alive for the writer thread).
std::vector<checkpoint_part> rank_parts(rank_snapshot snapshot);

struct restored_rank {
  std::string trainer_dir;                  // "" when the checkpoint has no trainer part
  std::unique_ptr<training_buffer> buffer;  // null when it has no buffer part
  std::vector<training_sample> pending;     // the buffer's stores that waited for room
  step_log received;
};

// Reads rank `rank`'s part of the (verified) checkpoint `dir`. Throws
// std::runtime_error naming the file when a part cannot be read.
restored_rank read_rank_part(const std::string& dir, std::uint32_t rank);

}  // namespace melissa::checkpoint
