// The scheduler backend as an actor: submit, poll and cancel run external
// commands (sbatch, squeue, ...) or fork processes, so the actor is detached
// (its own thread) and never blocks the CAF scheduler.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "backends/scheduler/backend.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

// backend_actor is in messages/actor_types.hpp.

backend_actor spawn_scheduler_backend(caf::actor_system& sys,
                                      std::shared_ptr<scheduler::backend> backend);

// The user-facing text of an error from the backend actor.
std::string backend_error_text(const caf::actor_system& sys, const caf::error& err);

}  // namespace melissa
