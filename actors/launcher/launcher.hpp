// The launcher: runs one study. It starts the server job through the
// scheduler backend, waits for every server rank to connect back, runs the
// simulations the server asks for (at most job_limit at a time), polls the
// scheduler, restarts failed and hanging simulations (attempt + 1, up to
// max_retries), answers melissa-shell, and writes summary.json at the end.
// Decisions live in launcher_core (jobs) and study_phases (the study's phases
// and stop deadlines), plain C++; this actor (launcher.cpp) carries them out.
// Its answers to melissa-shell are in launcher_queries.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/scheduler_backend/scheduler_backend.hpp"
#include "config/study.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

struct launcher_settings {
  config::study_config study;    // resolved
  std::string resolved_study;    // path of the resolved study file given to the server
  std::string output_dir;        // absolute
  std::string server_program;    // melissa-server
  std::string launcher_host;     // how server ranks reach the launcher
  double poll_interval = 0.5;    // seconds between scheduler polls
  bool tty = false;              // live progress line instead of periodic log lines
  // melissa-run --resume: the checkpoint the server restores (--restore),
  // its batch, and the simulations complete in it (never rerun).
  std::string restore;
  std::uint64_t restore_batch = 0;
  std::vector<std::uint32_t> restore_complete;
  // The highest attempt of each simulation before (launcher_core::carry_attempts).
  std::map<std::uint32_t, std::uint32_t> restore_attempts;
  // The study's elapsed seconds in that checkpoint (study/study_state.json):
  // the status's and summary's elapsed_s count on from it.
  double elapsed_offset_s = 0;
};

// launcher_impl_actor (messages/actor_types.hpp): the published interface
// plus (port_atom, port), which starts the study once the launcher is
// published on `port`; (interrupt_atom, exit code, why), which interrupts it
// (signal N: exit code 128 + N): every job is cancelled; and, under a
// supervisor, (restarted_atom, "scheduler_backend", handle).
// When the study ends the launcher sends (study_finished_atom, exit code,
// message) to `listener`; the exit code says whether the study succeeded (README).
launcher_impl_actor spawn_launcher(caf::actor_system& sys, launcher_settings settings,
                                   backend_actor backend, study_listener_actor listener);

// Exit codes of melissa-run.
enum study_exit : int {
  study_succeeded = 0,
  study_failed = 1,            // the server died, a job could not be submitted, ...
  study_config_error = 2,
  study_incomplete = 3,        // ran to the end, but some simulations failed for good
  study_interrupted = 130,     // SIGINT (Ctrl-C); any signal N: 128 + N (SIGTERM: 143)
};

}  // namespace melissa
