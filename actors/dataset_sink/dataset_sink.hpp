// A sink that writes every stored step to a dataset directory (see
// dataset_writer.hpp for the layout), read later by numpy or the offline
// trainer. Runs detached: file I/O must not block the CAF scheduler.
// An I/O error (disk full...) is not a simulation's fault: the sink stops
// writing, answers no more stores (clients wait, none fails) and sends
// (sink_failed_atom, "cannot write PATH: ERROR") to `on_error`, who stops the study.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "messages/actor_types.hpp"

namespace melissa {

// `finished`: simulations whose files are already complete in `dir` (a
// restarted server, complete_simulations()): never written again.
sink_actor spawn_dataset_sink(caf::actor_system& sys, std::string dir,
                              std::vector<std::string> field_names,
                              std::vector<std::vector<double>> parameters,
                              sink_failure_listener_actor on_error = {},
                              std::vector<std::uint32_t> finished = {});

}  // namespace melissa
