// What a running server rank does about [checkpoint]: when a checkpoint is
// due (every_batches, every_seconds, the end of training), it takes the
// rank's in-memory snapshot from the caller and hands it to its writer
// thread; it keeps the figures for the summary (count, last batch, the
// trainer's pause). Plain C++ (no CAF, no torch in this header): the trainer
// calls it between two steps, on its own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "actors/checkpoint_keeper/checkpoint_schedule.hpp"
#include "actors/checkpoint_keeper/checkpoint_writer.hpp"
#include "actors/checkpoint_keeper/rank_parts.hpp"

namespace melissa::checkpoint {

struct rank_checkpoint_settings {
  std::string dir;  // [checkpoint] dir, resolved
  std::uint32_t keep = 2;
  std::uint64_t every_batches = 1000;
  double every_seconds = 600;
  std::string study;
  std::uint32_t rank = 0;
  std::uint32_t ranks = 1;
};

class rank_checkpoints {
 public:
  // `now`: seconds on the caller's clock (the schedule's intervals start there).
  rank_checkpoints(rank_checkpoint_settings settings, double now);

  // Between two steps, after `batch` batches: takes a checkpoint when one is
  // due (or `end`: the end of training, unless the last one is at `batch`).
  // `snapshot` is called on the caller's thread: its time is the trainer's
  // pause. Returns whether a checkpoint was handed to the writer. At the end
  // it waits until the writer is done. Never throws: a failure is logged
  // and counted.
  bool at_step_boundary(std::uint64_t batch, double now, bool end,
                        const std::function<rank_snapshot()>& snapshot);

  void wait_idle() const { writer_.wait_idle(); }

  // {"dir", "taken", "written", "failed", "refused_busy", "last_batch",
  //  "last_path", "last_bytes", "last_write_seconds", "pause_seconds":
  //  {"total", "max", "last"}}
  nlohmann::json figures() const;

 private:
  void written(const write_result& result);

  rank_checkpoint_settings settings_;
  checkpoint_schedule schedule_;
  bool any_taken_ = false;
  std::uint64_t last_taken_batch_ = 0;
  mutable std::mutex mutex_;  // the figures: the writer's thread reports results
  nlohmann::json figures_;
  checkpoint_writer writer_;  // last: its thread stops before the rest goes
};

}  // namespace melissa::checkpoint
