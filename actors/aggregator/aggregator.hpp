// The aggregator of one server rank: receives every step from the client
// proxies, keeps the per-simulation received-steps log (step_log), drops the
// duplicates that restarted attempts resend, and forwards new steps to the
// sink. Its reply to a proxy comes once the sink has stored the step, which is
// what paces the credit returned to the client.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <caf/actor_system.hpp>

#include "actors/aggregator/step_log.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

// A checkpoint's received steps (--restore), taken by the first aggregator
// spawned only: one restarted by its supervisor starts empty, as without restore.
struct restored_steps {
  step_log log;
  std::atomic<bool> taken{false};
};

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
  // --restore: the log starts as the checkpoint's (a resent step in it is
  // dropped as a duplicate; the coordinator counts its done simulations as
  // ended: coordinator_settings::restored_done).
  std::shared_ptr<restored_steps> restored;
};

// Handles (restarted_atom, "sink", handle) when its sink is restarted.
aggregator_actor spawn_aggregator(caf::actor_system& sys, sink_actor sink,
                                  aggregator_settings settings = {});

}  // namespace melissa
