// What a running server rank does about [checkpoint]: when a checkpoint is
// due (every_batches, every_seconds, the end of training), it takes the
// rank's in-memory snapshot from the caller and hands it to its writer
// thread; it keeps the figures for the summary (count, last batch, the
// trainer's pause). Plain C++ (no CAF, no torch in this header): the trainer
// calls it between two steps, on its own thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "actors/checkpoint_keeper/checkpoint_schedule.hpp"
#include "actors/checkpoint_keeper/checkpoint_writer.hpp"
#include "actors/checkpoint_keeper/rank_parts.hpp"
#include "actors/coordinator/simulation_table.hpp"

namespace melissa::checkpoint {

// Several ranks (settings.ranks > 1): what each rank adds to the bits its
// trainer sends with every step (trainer_core::step's `signal`, OR-ed over
// the ranks in the gradient all-reduce), so that every rank learns at the
// same step that a checkpoint is taken, and why.
enum checkpoint_signal : std::uint32_t {
  signal_busy = 1u << 0,           // this rank's writer is still writing: not now
  signal_every_seconds = 1u << 1,  // rank 0's clock says every_seconds is due
  signal_shell = 1u << 2,          // an on-demand checkpoint (melissa-shell, any other reason)
  signal_interrupt = 1u << 3,      // melissa-run's Ctrl-C
  signal_sigterm = 1u << 4,        // SIGTERM on some rank: all stop after it
  signal_launcher_lost = 1u << 5,  // a rank lost the launcher: all stop after it
};
// The bit of an on-demand reason, and the reason the bits ask for ("" none;
// the most urgent first: sigterm, launcher_lost, interrupt, shell,
// every_seconds; busy is not a reason).
std::uint32_t signal_of(const std::string& reason);
std::string reason_of(std::uint32_t bits);

struct rank_checkpoint_settings {
  std::string dir;  // [checkpoint] dir, resolved
  std::uint32_t keep = 2;
  std::uint64_t every_batches = 1000;
  double every_seconds = 600;
  std::string study;
  std::uint32_t rank = 0;
  std::uint32_t ranks = 1;
  bool buffer = true;  // [checkpoint] buffer: the training buffer's part
  std::uint64_t start_batch = 0;  // a restored rank: the checkpoint's batch
  // Several ranks: how long rank 0 waits for the other ranks' parts before
  // it abandons a checkpoint (rank_commit.hpp).
  std::chrono::milliseconds part_wait{std::chrono::seconds(180)};
  // Rank 0: the simulation table as the coordinator last published it
  // (none: no table on this rank). Called on the trainer's thread when a
  // checkpoint is taken, so before the buffer's cut: a simulation complete
  // in it has all its steps in the cut.
  std::function<std::optional<simulation_table_snapshot>()> table;
  // Rank 0: more parts (Breed's state, the study's elapsed time: "Rank 0's
  // extras" in docs/checkpoints.md), made on the trainer's thread when a
  // checkpoint is taken at `batch` (a copy of what they write), written by
  // the writer.
  std::function<std::vector<checkpoint_part>(std::uint64_t batch)> extras;
};

// What the training buffer hands over at the cut: its samples (with
// [checkpoint] buffer) and the steps it has received, all taken at the same
// moment, so that a step in `received` is in `buffer`.
struct buffer_cut {
  std::optional<buffer_snapshot> buffer;
  step_log received;
};

// How the training buffer's cut reaches the keeper at the same step
// boundary as the trainer's: the trainer arms it when it takes its own
// snapshot, and the buffer (on its actor's thread) fills it when the
// trainer's next batch request arrives, before it draws from the buffer, so
// the buffer's draws and counters are those of the trainer's batch. Any
// thread; one request at a time.
class buffer_handoff {
 public:
  // with_samples: [checkpoint] buffer (else only the received steps).
  explicit buffer_handoff(bool with_samples = true) : with_samples_(with_samples) {}
  // The future the buffer's cut arrives in.
  std::future<buffer_cut> request();
  // Called by the buffer at each batch request (reservoir_settings::
  // at_batch_request): cuts it when armed. When production is over it also
  // keeps the final received steps (final_received) for the end checkpoint.
  void offer(const std::function<buffer_snapshot()>& snapshot, const step_log& received,
             bool production_over);
  std::optional<step_log> final_received() const;

 private:
  bool with_samples_;
  mutable std::mutex mutex_;
  std::optional<std::promise<buffer_cut>> armed_;
  std::optional<step_log> final_;
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
  // snapshot over (handoff()), within 120 s, else the checkpoint is
  // abandoned; so is the received-steps part (and rank 0's simulation
  // table), with or without the buffer's samples. `reason` overrides the
  // schedule's (an on-demand checkpoint: taken when the writer is free even
  // if none is due); `on_written` then hears its result, from the writer's
  // thread. `buffer_drained`: this rank's buffer said `last` but the trainer
  // still steps (other ranks have batches): no batch request comes to cut
  // at, so the part is the end's (the final received steps, no samples).
  // After one with reason "sigterm" or "launcher_lost" (the server
  // stops on it) no scheduled or end-of-training checkpoint is taken. Returns whether a checkpoint was handed to the writer. At the end
  // it waits until the writer is done. Never throws: a failure is logged
  // and counted.
  bool at_step_boundary(std::uint64_t batch, double now, bool end,
                        const std::function<rank_snapshot()>& snapshot,
                        const std::string& reason = {},
                        std::function<void(const write_result&)> on_written = {},
                        bool buffer_drained = false);

  // Whether at_step_boundary(batch, now, false, ...) would find a checkpoint
  // due (it may still refuse it while the writer is busy). The trainer asks
  // it at a boundary where a prefetched batch is drawn but not trained.
  bool due(std::uint64_t batch, double now) const { return !schedule_.due(batch, now).empty(); }

  // Several ranks (settings.ranks > 1). The bits this rank sends with its
  // next step: busy while its writer writes, on rank 0 every_seconds when
  // due on its clock, and those of the on-demand reasons `asked` on this
  // rank (they stay asked until a checkpoint is taken).
  std::uint32_t step_signal(std::uint64_t batch, double now, const std::vector<std::string>& asked) const;
  // Several ranks: at the boundary after the step whose all-reduce gave
  // `bits` (the same on every rank): takes the checkpoint they ask for,
  // else one every_batches makes due (the same batch counter on every rank),
  // unless some rank said busy (then none, on every rank: refused_busy).
  // Every rank thus takes the same checkpoints at the same batches; each
  // writes its part into the shared staging directory and rank 0 commits
  // (rank_commit.hpp). Returns the reason of the checkpoint taken ("" none);
  // `on_written` as at_step_boundary (on rank R > 0: once rank 0 committed).
  std::string at_collective_boundary(std::uint64_t batch, double now, std::uint32_t bits,
                                     bool buffer_drained,
                                     const std::function<rank_snapshot()>& snapshot,
                                     std::function<void(const write_result&)> on_written = {});

  void wait_idle() const { writer_.wait_idle(); }

  // Where the buffer hands its snapshot (reservoir_settings::at_batch_request).
  const std::shared_ptr<buffer_handoff>& handoff() const { return handoff_; }

  // {"dir", "taken", "written", "failed", "refused_busy", "last_batch",
  //  "last_path", "last_bytes", "last_write_seconds", "pause_seconds":
  //  {"total", "max", "last"}}
  nlohmann::json figures() const;

  // The trainer's pause for the checkpoints taken since the last call, summed
  // (none: no checkpoint taken since): the metrics' checkpoint_pause_s.
  std::optional<double> take_pauses();

 private:
  void written(const write_result& result);

  rank_checkpoint_settings settings_;
  std::shared_ptr<buffer_handoff> handoff_;
  checkpoint_schedule schedule_;
  bool any_taken_ = false;
  bool stopped_ = false;  // a "sigterm" / "launcher_lost" checkpoint was taken: no more
  std::uint64_t last_taken_batch_ = 0;
  std::uint64_t collective_taken_ = 0;  // several ranks: the checkpoints of this run (their ids)
  mutable std::mutex mutex_;  // the figures: the writer's thread reports results
  nlohmann::json figures_;
  std::optional<double> new_pauses_;  // since the last take_pauses()
  std::function<void(const write_result&)> on_written_;  // of the job being written
  checkpoint_writer writer_;  // last: its thread stops before the rest goes
};

}  // namespace melissa::checkpoint
