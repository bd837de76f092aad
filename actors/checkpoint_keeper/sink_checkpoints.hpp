// Checkpoints of a server rank without a trainer (statistics mode): the
// sink's state, cut on the sink's own thread, written by the checkpoint
// writer thread (manifest, checksums, fsync, rename, keep) as rank_checkpoints
// does for a training rank. Plain C++ (no CAF, no torch), so that a server
// built without LibTorch checkpoints its statistics too.
//
//   rank-<R>/<name>                the sink's files (statistics.bin)
//   rank-<R>/received_steps.json   the steps in those files, cut with them
//   study/simulation_table.json    rank 0 under a launcher
//
// The schedule counts "units" instead of batches: for the statistics sink,
// the steps it has folded in (the manifest's `batch` field holds rank 0's count).
//
// Several ranks (ranks > 1; docs/checkpoints.md, "Statistics mode"): the
// ranks share no step to decide at, so rank 0 leads. It alone keeps the
// schedule; for every checkpoint it takes it posts a request in the
// checkpoint directory (rank_commit.hpp), writes its part and commits once
// every rank's part is in. The other ranks look for requests (serve(), on a
// timer) and write their part of each; one that must stop asks rank 0
// (ask()). Each rank's cut is consistent on its own (the ranks own disjoint
// cells) and a restart counts a simulation complete only when it is done in
// every rank's part, so the ranks need not cut at the same step.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/aggregator/step_log.hpp"
#include "actors/checkpoint_keeper/checkpoint_schedule.hpp"
#include "actors/checkpoint_keeper/checkpoint_writer.hpp"
#include "actors/coordinator/simulation_table.hpp"

namespace melissa::checkpoint {

struct sink_checkpoint_settings {
  std::string dir;  // [checkpoint] dir, resolved
  std::uint32_t keep = 2;
  std::uint64_t every_units = 1000;  // [checkpoint] every_batches, counted in the sink's units
  double every_seconds = 600;
  std::string study;
  std::uint32_t rank = 0;
  std::uint32_t ranks = 1;
  std::uint64_t start_units = 0;  // a restored rank: the checkpoint's count
  // Several ranks: how long rank 0 waits for the other ranks' parts before
  // it abandons a checkpoint (rank_commit.hpp).
  std::chrono::milliseconds part_wait{std::chrono::seconds(180)};
  // Rank 0 under a launcher: the table as the coordinator last published it.
  // Called just before the sink's cut, so a simulation complete in it has
  // all its steps in the cut (or is written submitted: see sink_parts).
  std::function<std::optional<simulation_table_snapshot>()> table;
  // Rank 0: the study's elapsed seconds now (study/study_state.json, as a
  // training rank 0 writes it); none: not written.
  std::function<double()> elapsed;
};

// What the sink hands over, taken at one moment on its thread.
struct sink_snapshot {
  std::uint32_t rank = 0;
  // rank-<R>/<name> with these bytes (shared: the writer thread reads them).
  std::vector<std::pair<std::string, std::shared_ptr<const std::string>>> files;
  step_log received;  // exactly the steps in `files`
  std::optional<simulation_table_snapshot> table;
};

// The parts that write `snapshot`. A simulation complete in the table but
// not done in `received` is written submitted: it is rerun.
std::vector<checkpoint_part> sink_parts(sink_snapshot snapshot);

// Reads rank-<R>/<name> of a (verified) checkpoint; throws naming the file.
std::string read_sink_file(const std::string& dir, std::uint32_t rank, const std::string& name);

class sink_checkpoints {
 public:
  sink_checkpoints(sink_checkpoint_settings settings, double now);

  // After `units` units at `now`: takes a checkpoint when one is due, or
  // when `reason` is given (on demand, "sigterm", "launcher_lost",
  // "end_of_study": taken unless the writer is busy; "end_of_study" waits
  // for it, and is skipped when nothing changed since the last one).
  // `snapshot` runs on the caller's thread (its time is the sink's pause).
  // `on_written` hears the result of the checkpoint taken, from the
  // writer's thread. After "sigterm" / "launcher_lost" no scheduled one
  // follows. Returns whether one was handed to the writer. Never throws.
  // Several ranks: rank 0 only (on the other ranks it takes nothing); its
  // "end_of_study" is taken even when rank 0 folded nothing new.
  bool at_unit(std::uint64_t units, double now, const std::function<sink_snapshot()>& snapshot,
               const std::string& reason = {},
               std::function<void(const write_result&)> on_written = {});

  // Several ranks, a rank other than 0: the reason of rank 0's oldest
  // request this rank has not answered ("" none; requests that were in the
  // directory when this rank started are a lost run's, never answered).
  std::string requested();
  // Takes this rank's part of that request, unless the writer is busy (then
  // call again later). Returns the request's reason ("" nothing taken).
  // `on_written` hears the result once rank 0 committed it. Never throws.
  std::string serve(std::uint64_t units, double now, const std::function<sink_snapshot()>& snapshot,
                    std::function<void(const write_result&)> on_written = {});
  // A rank other than 0 asks rank 0 for a checkpoint (sigterm,
  // launcher_lost); asking again is harmless. Never throws.
  void ask(const std::string& reason);
  // Rank 0: the most urgent reason the other ranks asked for ("" none).
  std::string asked_by_others();

  bool leads() const { return settings_.rank == 0; }
  std::uint32_t ranks() const { return settings_.ranks; }
  // A checkpoint that stops the server ("sigterm", "launcher_lost") was taken.
  bool stopped() const { return stopped_; }

  void wait_idle() const { writer_.wait_idle(); }
  bool busy() const { return writer_.busy(); }

  // As rank_checkpoints::figures(); "last_batch" is the last count of units.
  nlohmann::json figures() const;

 private:
  void written(const write_result& result);
  // Takes the cut and hands it to the writer (not busy); `shared_id`: the
  // ranks' checkpoint this part belongs to ("" one rank).
  bool take(std::uint64_t units, double now, const std::function<sink_snapshot()>& snapshot,
            const std::string& reason, const std::string& shared_id,
            std::function<void(const write_result&)> on_written);

  sink_checkpoint_settings settings_;
  std::string run_token_;            // several ranks, rank 0: names this run's requests
  std::uint64_t requests_posted_ = 0;
  std::set<std::string> answered_;   // a rank other than 0: the request ids seen
  checkpoint_schedule schedule_;
  bool any_taken_ = false;
  bool stopped_ = false;
  std::uint64_t last_taken_units_ = 0;
  mutable std::mutex mutex_;
  nlohmann::json figures_;
  std::function<void(const write_result&)> on_written_;
  checkpoint_writer writer_;  // last: its thread stops before the rest goes
};

}  // namespace melissa::checkpoint
