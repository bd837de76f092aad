// The aggregator of one server rank: receives every step from the client
// proxies, keeps the per-simulation received-steps log (step_log), drops the
// duplicates that restarted attempts resend, and forwards new steps to the
// sink. Its reply to a proxy comes once the sink has stored the step, which is
// what paces the credit returned to the client.
#pragma once

#include <cstdint>
#include <vector>

#include <caf/actor_system.hpp>

#include "messages/actor_types.hpp"

namespace melissa {

struct aggregator_settings {
  // Under a launcher: a session opens only with the ticket the launcher
  // issued to its (sim, attempt) (session_tickets.hpp). Standalone servers
  // (tests, benchmarks) accept any session.
  bool require_tickets = false;
  // Simulation ids of the study are 0 .. simulations - 1 (0: any id).
  std::uint32_t simulations = 0;
  // Time steps of each simulation (client.steps; 0: not checked) and the
  // study's fields: a clean end with steps missing is refused, the
  // simulation is not complete.
  std::uint32_t steps = 0;
  std::uint32_t fields = 1;
  std::uint32_t rank = 0;
  std::uint32_t ranks = 1;
  // Statistics mode: steps arrive as slices from every client rank; this
  // rank assembles its owned share of each field (slice_assembler.hpp) and
  // expects every time step, not every ranks-th. field_sizes[f]: the global
  // size of field f.
  bool slices = false;
  std::vector<std::uint64_t> field_sizes;
};

// Handles (restarted_atom, "sink", handle) when its sink is restarted.
aggregator_actor spawn_aggregator(caf::actor_system& sys, sink_actor sink,
                                  aggregator_settings settings = {});

}  // namespace melissa
