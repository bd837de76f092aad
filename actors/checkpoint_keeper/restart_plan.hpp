// What the launcher does when the server job ends (issue 11, section 3): the
// pure decision, from how the job ended, the restarts so far and the
// checkpoints on disk. The launcher (not built yet: see docs/checkpoints.md)
// carries it out: cancel the running simulations, start the server again
// from `checkpoint`, resubmit `resubmit` with attempt + 1, never rerun
// `complete`; or fail the study with `message`. Plain C++, no CAF.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace melissa::checkpoint {

// How the server job ended, as the scheduler backend reports it
// (backends/scheduler/backend.hpp, job_status).
struct server_end {
  std::string raw_state;          // "exited 0", "signal 9", "TIMEOUT", "NODE_FAIL", ...
  std::optional<int> exit_code;
  std::optional<int> signal;
};

// False only for a clean end (exit code 0, or Slurm/OAR COMPLETED).
bool ended_abnormally(const server_end& end);
// "exit code 1", "signal 9 (SIGKILL)", "Slurm TIMEOUT": the reason in logs and summary.json.
std::string describe(const server_end& end);

enum class restart_action { none, from_checkpoint, from_scratch, fail };
const char* to_string(restart_action a);

struct restart_plan {
  restart_action action = restart_action::none;
  std::string reason;                  // describe(end)
  std::string checkpoint;              // from_checkpoint: its directory
  std::uint64_t batch = 0;             // from_checkpoint: its batch
  std::vector<std::string> skipped;    // one log line per invalid newer checkpoint, with why
  std::vector<std::uint32_t> complete;  // complete in the checkpoint: never rerun
  std::vector<std::uint32_t> resubmit;  // everything else not given up: attempt + 1
  // from_checkpoint: the highest attempt of each simulation in the
  // checkpoint's received steps (every rank's; melissa-run --resume numbers
  // the next attempts after them).
  std::map<std::uint32_t, std::uint32_t> attempts;
  std::string message;                 // fail: what happened and what is lost
};

struct restart_inputs {
  server_end end;
  std::uint32_t restarts_so_far = 0;
  std::uint32_t max_restarts = 3;      // [launcher] max_server_restarts
  std::string checkpoint_dir;          // [checkpoint] dir
  std::uint64_t batches_trained = 0;   // the last figure the launcher saw (0: not trained yet)
  std::uint32_t simulations = 0;       // the design's size (from scratch: all resubmitted)
  std::vector<std::uint32_t> given_up; // simulations the launcher has failed for good
};

// Reads the checkpoints (newest valid first, study/simulation_table.json of
// the chosen one) and decides. Never throws for bad checkpoints: a checkpoint
// whose table cannot be read is skipped like one that fails verification.
restart_plan plan_server_restart(const restart_inputs& in);

}  // namespace melissa::checkpoint
