// Internal to the launcher actor (launcher.cpp, launcher_queries.cpp): its
// state. Not part of the launcher's interface (launcher.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "actors/launcher/launcher.hpp"
#include "actors/launcher/launcher_core.hpp"
#include "actors/launcher/study_phases.hpp"
#include "actors/launcher/training_tail.hpp"
#include "messages/actor_types.hpp"

namespace melissa::launcher_detail {

using clock_type = std::chrono::steady_clock;

struct rank_link {
  std::string address;
  server_rank_actor coordinator;
  std::uint64_t steps = 0, duplicates = 0, bytes = 0;
  std::optional<std::string> summary;  // set when the rank finished
};

struct launcher_state {
  launcher_settings settings;
  backend_actor backend;
  study_listener_actor listener;
  std::unique_ptr<launcher_core> core;
  study_phases phases;            // the study's phase and its stop deadlines
  clock_type::time_point started = clock_type::now();
  std::uint16_t port = 0;
  std::uint32_t server_job = 0;
  std::map<std::uint32_t, rank_link> ranks;
  // Each client job's session ticket (job id -> ticket): in its environment
  // and sent to every server rank, never written to a file or a log.
  std::map<std::uint32_t, std::string> tickets;
  bool polling = false;
  bool poll_again = false;        // a job changed while a poll was in flight
  double last_poll = -1e9;        // when the last poll of the backend was sent
  int exit_code = study_succeeded;
  std::string message;
  bool paused_by_shell = false;   // `pause` without `resume` (stopping pauses too)
  double last_progress = -1e9;    // when the last progress line was printed
  std::uint64_t last_steps = 0;   // steps at that time
  double steps_per_s = 0;
  training_tail tail;             // rank 0's figures once every simulation has ended
  static inline const char* name = "launcher";

  double now() const { return std::chrono::duration<double>(clock_type::now() - started).count(); }
  std::string addresses() const {
    std::string out;
    for (const auto& [rank, link] : ranks) out += (out.empty() ? "" : ",") + link.address;
    return out;
  }
  std::uint64_t steps() const {
    std::uint64_t n = 0;
    for (const auto& [rank, link] : ranks) n += link.steps;
    return n;
  }
};

using launcher_ptr = launcher_impl_actor::stateful_pointer<launcher_state>;

}  // namespace melissa::launcher_detail
