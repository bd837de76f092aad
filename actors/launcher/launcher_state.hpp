// Internal to the launcher actor (launcher.cpp, launcher_queries.cpp): its
// state. Not part of the launcher's interface (launcher.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

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

// One restart of the server (summary.json's "restarts").
struct server_restart_record {
  double time = 0;            // seconds since the study started
  std::string reason;         // how the server ended ("signal 9 (SIGKILL)", ...)
  std::string action;         // "from_checkpoint" or "from_scratch"
  std::string checkpoint;     // its directory ("" from scratch)
  std::uint64_t batch = 0;    // its batch
  std::vector<std::string> skipped;  // newer checkpoints skipped, with why
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
  // Server restarts (issue 11, docs/checkpoints.md).
  std::vector<server_restart_record> restarts;
  std::string restore_from;       // --restore of the next server start ("": from scratch)
  std::string lost_why;           // a lost rank began the restart: why
  double lost_at = -1;            // when; the server job is cancelled 5 s later if still there
  std::uint64_t batches_seen = 0; // rank 0's batch counter, last seen (0: not trained yet)
  double last_train_ask = -1e9;   // when rank 0 was last asked for it
  bool checkpointing = false;     // an interrupt waits for rank 0's checkpoint
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
