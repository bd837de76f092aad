// A sink that stores nothing: it counts steps and bytes and keeps each
// simulation's checksum (messages/checksum.hpp), which tests compare with the
// checksums the solver computes itself. An optional delay per step makes it a
// slow consumer, to exercise flow control.
#pragma once

#include <chrono>

#include <caf/actor_system.hpp>

#include "messages/actor_types.hpp"

namespace melissa {

// `checksums` off: count only (to benchmark the transport without the hashing).
sink_actor spawn_counting_sink(caf::actor_system& sys,
                               std::chrono::milliseconds delay_per_step = std::chrono::milliseconds(0),
                               bool checksums = true);

}  // namespace melissa
