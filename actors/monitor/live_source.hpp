// The running study as the monitor's source: each call is one CAF request to
// the launcher (the messages melissa-shell's endpoint sends, answered by the
// same launcher code), made from the HTTP server's thread through a
// scoped_actor of its own and waited for at most `timeout`. The launcher's
// state is only ever touched by the launcher.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>

#include "actors/monitor/study_source.hpp"
#include "messages/actor_types.hpp"

namespace melissa::monitor {

// Longer than the launcher's wait for a server rank (15 s,
// launcher_queries.hpp rank_query_timeout), so that a silent rank is named in
// the answer rather than this wait firing first.
inline constexpr std::chrono::milliseconds default_live_timeout{20000};

std::shared_ptr<study_source> make_live_source(
    caf::actor_system& sys, launcher_query_actor launcher,
    std::chrono::milliseconds timeout = default_live_timeout);

}  // namespace melissa::monitor
