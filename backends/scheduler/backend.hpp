// The scheduler backend interface: how the launcher submits, polls and cancels
// jobs on this machine (local), on Slurm or on OAR. Plain C++ without CAF; the
// calls may block (they run external commands), so the launcher calls them
// from a detached actor, never from a scheduler thread.
#pragma once

#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace melissa::scheduler {

enum class job_kind : std::uint8_t { server, client };

// The launcher's view of a job's state; the backend's own word is kept in
// job_status::raw_state beside it.
enum class job_state : std::uint8_t { pending, running, completed, failed, cancelled };

const char* to_string(job_kind k);
const char* to_string(job_state s);
bool is_final(job_state s);

// Scheduler settings for one kind of job (server or client), from the study
// file: the server may go to a GPU partition, the clients to a CPU one.
struct job_settings {
  std::string partition;               // Slurm partition / OAR queue; empty: default
  std::string account;                 // Slurm account / OAR project
  std::string time_limit;              // Slurm "HH:MM:SS" / OAR walltime; empty: default
  std::uint32_t nodes = 1;
  std::uint32_t tasks = 1;             // MPI ranks of the job
  std::string gres;                    // Slurm --gres (e.g. "gpu:1"); OAR: resource suffix
  std::vector<std::string> extra;      // extra options passed verbatim (sbatch / oarsub)
};

struct job_request {
  std::string name;                    // e.g. "melissa-heat-client-12-a2"
  job_kind kind = job_kind::client;
  std::vector<std::string> argv;       // program and arguments (parameters appended already)
  std::map<std::string, std::string> env;  // added to the inherited environment
  // Added too, but never written into a job script that others may read
  // (the session ticket): batch scripts source them from `<script>.env`, 0600.
  std::map<std::string, std::string> secret_env;
  std::string workdir;                 // working directory (absolute)
  std::string stdout_path;             // absolute paths of the job's logs
  std::string stderr_path;
  job_settings settings;               // tasks > 1: run under mpirun (local) / srun (Slurm)
};

struct job_status {
  std::string id;                      // the backend's job id
  job_state state = job_state::pending;
  std::string raw_state;               // e.g. "RUNNING", "TIMEOUT", "exited 3", "signal 9"
  std::optional<int> exit_code;        // when the job ended with a status
  std::optional<int> signal;           // when it was killed by a signal
};

// A user error (missing executable, sbatch refusing the options) or a failed
// scheduler command; what() is meant for the user.
struct backend_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class backend {
 public:
  virtual ~backend() = default;
  virtual const char* name() const = 0;
  // Submits a job; returns its id. Throws backend_error.
  virtual std::string submit(const job_request& request) = 0;
  // The state of many jobs at once: ONE scheduler command per call (squeue /
  // sacct / oarstat), never one per job. Unknown ids are reported failed.
  virtual std::vector<job_status> poll(const std::vector<std::string>& ids) = 0;
  // Cancels a job and everything it started (process group, scancel, oardel).
  // Cancelling a finished job is not an error.
  virtual void cancel(const std::string& id) = 0;
  // `listener` is called, from a thread of the backend's, as soon as a job
  // may have changed state (a local process exited), so that the caller
  // polls now instead of at its next interval; it must only wake the caller
  // (it runs under the backend's lock). nullptr: nobody to tell. Backends
  // that learn states only by asking a scheduler never call it.
  virtual void set_change_listener(std::function<void()> listener) { (void)listener; }
};

// Runs an external command and returns its exit status and output: the Slurm
// and OAR backends use it, and tests replace it with recorded outputs.
struct command_result {
  int exit_code = 0;
  std::string out;
  std::string err;
};
using command_runner = std::function<command_result(const std::vector<std::string>& argv,
                                                    const std::string& stdin_text)>;
// Runs the command for real (fork/exec, no shell).
command_result run_command(const std::vector<std::string>& argv, const std::string& stdin_text = {});

}  // namespace melissa::scheduler
