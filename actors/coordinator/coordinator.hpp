// The progress keeper of one server rank: it polls the aggregator, logs
// progress lines (steps stored, duplicates, throughput), notices the end of
// the study (every expected simulation ended cleanly) and writes the rank's
// summary JSON. The launcher-facing study coordinator of the next issue grows
// from here.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "messages/actor_types.hpp"

namespace melissa {

struct coordinator_settings {
  std::uint32_t rank = 0;
  std::uint32_t expected_simulations = 0;  // 0: run until stopped
  std::string summary_path;                // written at the end (and on report_atom)
  std::chrono::milliseconds poll_interval{200};
  std::chrono::milliseconds progress_interval{2000};
};

// (report_atom) -> the summary JSON, also written to summary_path.
// When the study ends it sends (finished_atom, summary JSON) to `listener`.
using coordinator_actor = caf::typed_actor<
    caf::reacts_to<tick_atom>,
    caf::replies_to<report_atom>::with<std::string>,
    caf::reacts_to<restarted_atom, std::string, caf::actor>>;

coordinator_actor spawn_coordinator(caf::actor_system& sys, coordinator_settings settings,
                                    aggregator_actor aggregator, sink_actor sink,
                                    caf::actor listener);

}  // namespace melissa
