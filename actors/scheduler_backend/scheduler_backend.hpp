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

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::scheduler::job_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<melissa::scheduler::job_status>)

namespace melissa {

// submit: the backend's job id, or an error whose context holds the user message.
using backend_actor = caf::typed_actor<
    caf::replies_to<submit_atom, scheduler::job_request>::with<std::string>,
    caf::replies_to<poll_atom, std::vector<std::string>>::with<std::vector<scheduler::job_status>>,
    caf::replies_to<cancel_atom, std::string>::with<bool>>;

backend_actor spawn_scheduler_backend(caf::actor_system& sys,
                                      std::shared_ptr<scheduler::backend> backend);

// The user-facing text of an error from the backend actor.
std::string backend_error_text(const caf::actor_system& sys, const caf::error& err);

}  // namespace melissa
