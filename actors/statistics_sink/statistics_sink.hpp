// The sink of a statistics-mode server rank: wraps a statistics_core
// (statistics_core.hpp), folds each simulation's step in as it arrives, and at
// the end of production writes <output_dir>/statistics/<field>/<stat>.npy.
// Backpressure: while the pick-freeze groups' held steps exceed
// statistics.group_budget_mb, a store is still folded in but its reply (hence
// the client's credit) waits until groups complete; nothing is dropped.
//
// Checkpoints (docs/checkpoints.md, "Statistics mode"): the sink keeps its
// own log of the steps it folded in; its cut (statistics_core::save and that
// log) is taken on its own thread between two stores, so a step in the log
// is in the accumulators, and the checkpoint keeper's writer thread writes
// it. Taken on the [checkpoint] schedule (every_batches counts the steps
// folded in), on (checkpoint_atom, reason) and at the end of production.
// Several ranks: rank 0's sink decides and the other ranks' sinks write their
// part of each of its checkpoints, looking for its requests every 200 ms
// (sink_checkpoints.hpp); an on-demand request on another rank (SIGTERM, a
// lost launcher) is passed to rank 0 and answered by the next checkpoint that
// stops the server.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>

#include "actors/aggregator/step_log.hpp"
#include "actors/checkpoint_keeper/sink_checkpoints.hpp"
#include "actors/statistics_sink/statistics_core.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

// A sink_actor that also takes checkpoints: (checkpoint_atom, reason)
// answers {"path", "batch"} once written or {"error"}, as the trainer does;
// (checkpoint_atom, sequence, answer) is its writer thread's notice.
// tick_atom: several ranks, the look for the other ranks' requests and asks.
using statistics_sink_actor = sink_actor::extend<
    caf::replies_to<checkpoint_atom, std::string>::with<std::string>,
    caf::reacts_to<checkpoint_atom, std::uint64_t, std::string>, caf::reacts_to<tick_atom>>;

struct statistics_sink_checkpoints {
  std::shared_ptr<checkpoint::sink_checkpoints> keeper;  // null: no checkpoints
  std::string why_none;  // the answer to an on-demand request without a keeper
  // Several ranks: a checkpoint that stops the server, taken because of
  // another rank (its SIGTERM, its lost launcher), was written or failed:
  // this rank stops too (main exits 75, or 1 without a checkpoint).
  std::function<void(const std::string& answer)> stopped;
};

// --restore: the checkpoint's rank-R/statistics.bin and received steps,
// taken by the first sink spawned only.
struct restored_statistics {
  std::string state;        // statistics_core::save's bytes
  step_log received;
  std::uint64_t units = 0;  // steps folded in at the checkpoint (its `batch`)
  std::atomic<bool> taken{false};
};

// Detached (a step's update is a streaming pass over its accumulators).
// `statistics_dir`: where the files go (<output_dir>/statistics).
sink_actor spawn_statistics_sink(caf::actor_system& sys, statistics_core_settings settings,
                                 std::string statistics_dir,
                                 statistics_sink_checkpoints checkpoints = {},
                                 std::shared_ptr<restored_statistics> restored = {});

}  // namespace melissa
