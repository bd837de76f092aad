// The aggregator of one server rank: receives every step from the client
// proxies, keeps the per-simulation received-steps log (step_log), drops the
// duplicates that restarted attempts resend, and forwards new steps to the
// sink. Its reply to a proxy comes once the sink has stored the step, which is
// what paces the credit returned to the client.
#pragma once

#include <caf/actor_system.hpp>

#include "messages/actor_types.hpp"

namespace melissa {

// Handles (restarted_atom, "sink", handle) when its sink is restarted.
aggregator_actor spawn_aggregator(caf::actor_system& sys, sink_actor sink);

}  // namespace melissa
