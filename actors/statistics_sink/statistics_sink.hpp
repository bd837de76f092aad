// The sink of a statistics-mode server rank: wraps a statistics_core
// (statistics_core.hpp), folds each simulation's step in as it arrives, and at
// the end of production writes <output_dir>/statistics/<field>/<stat>.npy.
// Backpressure: while the pick-freeze groups' held steps exceed
// statistics.group_budget_mb, a store is still folded in but its reply (hence
// the client's credit) waits until groups complete; nothing is dropped.
#pragma once

#include <string>

#include <caf/actor_system.hpp>

#include "actors/statistics_sink/statistics_core.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

// Detached (a step's update is a streaming pass over its accumulators).
// `statistics_dir`: where the files go (<output_dir>/statistics).
sink_actor spawn_statistics_sink(caf::actor_system& sys, statistics_core_settings settings,
                                 std::string statistics_dir);

}  // namespace melissa
