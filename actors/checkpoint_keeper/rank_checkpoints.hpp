// What a running server rank does about [checkpoint]: when a checkpoint is
// due (every_batches, every_seconds, the end of training), it takes the
// rank's in-memory snapshot from the caller and hands it to its writer
// thread; it keeps the figures for the summary (count, last batch, the
// trainer's pause). Plain C++ (no CAF, no torch in this header): the trainer
// calls it between two steps, on its own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
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
  bool buffer = true;  // [checkpoint] buffer: the training buffer's part
};

// How the training buffer's snapshot reaches the keeper at the same step
// boundary as the trainer's: the trainer arms it when it takes its own
// snapshot, and the buffer (on its actor's thread) fills it when the
// trainer's next batch request arrives, before it draws from the buffer, so
// the buffer's draws and counters are those of the trainer's batch. Any
// thread; one request at a time.
class buffer_handoff {
 public:
  // The future the buffer's snapshot arrives in.
  std::future<buffer_snapshot> request();
  // Called by the buffer at each batch request: snapshots it when armed.
  void offer(const training_buffer& buffer);

 private:
  std::mutex mutex_;
  std::optional<std::promise<buffer_snapshot>> armed_;
};

class rank_checkpoints {
 public:
  // `now`: seconds on the caller's clock (the schedule's intervals start there).
  rank_checkpoints(rank_checkpoint_settings settings, double now);

  // Between two steps, after `batch` batches: takes a checkpoint when one is
  // due (or `end`: the end of training, unless the last one is at `batch`).
  // `snapshot` is called on the caller's thread: its time is the trainer's
  // pause. With settings.buffer, except at the end (the buffer is drained
  // then), the buffer's part is written once the buffer has handed its
  // snapshot over (handoff()), within 120 s, else the checkpoint is abandoned. Returns whether a checkpoint was handed to the writer. At the end
  // it waits until the writer is done. Never throws: a failure is logged
  // and counted.
  bool at_step_boundary(std::uint64_t batch, double now, bool end,
                        const std::function<rank_snapshot()>& snapshot);

  // Whether at_step_boundary(batch, now, false, ...) would find a checkpoint
  // due (it may still refuse it while the writer is busy). The trainer asks
  // it at a boundary where a prefetched batch is drawn but not trained.
  bool due(std::uint64_t batch, double now) const { return !schedule_.due(batch, now).empty(); }

  void wait_idle() const { writer_.wait_idle(); }

  // Where the buffer hands its snapshot (reservoir_settings::at_batch_request).
  const std::shared_ptr<buffer_handoff>& handoff() const { return handoff_; }

  // {"dir", "taken", "written", "failed", "refused_busy", "last_batch",
  //  "last_path", "last_bytes", "last_write_seconds", "pause_seconds":
  //  {"total", "max", "last"}}
  nlohmann::json figures() const;

 private:
  void written(const write_result& result);

  rank_checkpoint_settings settings_;
  std::shared_ptr<buffer_handoff> handoff_ = std::make_shared<buffer_handoff>();
  checkpoint_schedule schedule_;
  bool any_taken_ = false;
  std::uint64_t last_taken_batch_ = 0;
  mutable std::mutex mutex_;  // the figures: the writer's thread reports results
  nlohmann::json figures_;
  checkpoint_writer writer_;  // last: its thread stops before the rest goes
};

}  // namespace melissa::checkpoint
