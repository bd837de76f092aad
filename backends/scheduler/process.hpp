// Process plumbing shared by the local backend and the Slurm backend's
// schedule-in-schedule mode (where each client is a local `srun` process):
// finding a program, starting it in a session of its own, and following it
// with waitpid. Internal to melissa-backends; the public interface is
// backend.hpp.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/scheduler/backend.hpp"

namespace melissa::scheduler::detail {

// Where execve finds `program`, the way a shell would: a name without '/' is
// searched in the directories of `path_env` (an empty entry is the current
// directory); a name with '/' is taken as it is, relative to `workdir` when it
// is relative (the job starts there). Returns the path to execute, or nullopt
// when there is no executable regular file.
std::optional<std::string> find_program(const std::string& program, const std::string& path_env,
                                        const std::string& workdir);

// The PATH this process runs with ("" when unset).
std::string current_path();

// What spawn_in_session starts.
struct spawn_request {
  std::string executable;                  // what execve runs (from find_program)
  std::vector<std::string> argv;           // argv[0] included
  std::map<std::string, std::string> env;  // added to (or replacing in) this process's environment
  std::string workdir;                     // "": this process's working directory
  std::string stdout_path;                 // "": inherited
  std::string stderr_path;                 // "": inherited; the same path as stdout: one file
};

// Starts the process in a new session (setsid), so its pid is also its
// process group id and a signal to -pid reaches everything it starts (MPI
// ranks, grandchildren), and a terminal's signals do not. The logs are opened
// (truncated, parent directories created) before the spawn, so their errors
// are thrown here. Returns once the program is executing: posix_spawn
// (CLONE_VFORK) returns an exec failure, thrown as backend_error. Nothing of
// this process's open above stderr reaches the job (closefrom 3).
pid_t spawn_in_session(const spawn_request& request);

// Sends `sig` to the process group `sid` and to every process of the session
// `sid` (found in /proc), whatever its group: Open MPI's mpirun puts each rank
// in a group of its own inside mpirun's session. Only a process that made a
// session of its own (a daemon) escapes. True when some process got it.
bool signal_session(pid_t sid, int sig);

// Tells, from a thread of its own, that a watched process has exited, so that
// a job's end is known at once rather than at the next poll. Each process is
// a pidfd (Linux >= 5.3) in one poll() set; the watcher never reaps (waitpid
// stays with process_table, in the backend's thread), it only calls
// `notify` once per wake-up in which some process ended. Where pidfd_open is
// refused (an older kernel, seccomp) nothing is notified and polling alone
// tells the ends, as before.
class exit_watcher {
 public:
  exit_watcher();
  ~exit_watcher();
  exit_watcher(const exit_watcher&) = delete;
  exit_watcher& operator=(const exit_watcher&) = delete;

  // Called from the watcher's thread; replaces the previous one.
  void set_notify(std::function<void()> notify);
  // Watches `pid` (a child of this process) until it exits. False when pidfds
  // are not available here.
  bool watch(pid_t pid);
  // The pids seen to exit since the last call (each once).
  std::vector<pid_t> take_exited();

  struct shared;  // with the thread: the pidfds to add, the exits seen, the listener

 private:
  std::shared_ptr<shared> shared_;
  std::thread thread_;
};

// The processes started by spawn_in_session, followed with waitpid(WNOHANG),
// never blocking. Cancelling sends SIGTERM to the job's session (see
// signal_session) and records a deadline; SIGKILL goes to the session at the
// first call of status(), cancel() or finish_kills() after that deadline,
// even when the leader has already exited (a grandchild may ignore SIGTERM).
// The destructor sends SIGKILL to every session still running and reaps the
// leaders.
//
// Needs SIGCHLD not to be ignored (SIG_IGN reaps children automatically):
// a child reaped elsewhere is reported failed with raw_state "lost".
class process_table {
 public:
  explicit process_table(std::chrono::milliseconds kill_grace);
  ~process_table();
  process_table(const process_table&) = delete;
  process_table& operator=(const process_table&) = delete;

  // Follows `pid` (a session leader) under a new id: the pid, with a suffix
  // in the rare case of a pid reused within this table's lifetime.
  std::string add(pid_t pid);
  // Follows `pid` under the given id (must be new).
  void add(const std::string& id, pid_t pid);
  bool contains(const std::string& id) const;

  // pending never happens here: running until waitpid reports the end;
  // exit 0 → completed "exited 0"; exit N → failed "exited N"; signal N →
  // failed "signal N"; a non-zero end after cancel() → cancelled.
  job_status status(const std::string& id);
  void cancel(const std::string& id);
  // SIGKILL to the groups whose grace period is over (only those: no scan of
  // every job).
  void finish_kills();
  // `notify` is called from another thread as soon as a followed process
  // exits (exit_watcher); the caller then polls.
  void set_exit_listener(std::function<void()> notify) { watcher_.set_notify(std::move(notify)); }

 private:
  struct entry {
    pid_t pid = 0;
    bool ended = false;
    bool lost = false;             // reaped by someone else (ECHILD)
    int wait_status = 0;
    bool cancelled = false;
    std::optional<std::chrono::steady_clock::time_point> kill_at;  // SIGKILL pending
  };
  void reap(entry& e);
  void kill_if_due(entry& e, std::chrono::steady_clock::time_point now);
  void kill_later(const std::string& id, entry& e, std::chrono::steady_clock::time_point now);

  std::chrono::milliseconds kill_grace_;
  std::map<std::string, entry> entries_;
  std::set<std::string> killing_;  // ids with a SIGKILL pending (kill_at set)
  exit_watcher watcher_;
};

// The job_status of a process that ended with waitpid status `wait_status`.
job_status status_of_wait(const std::string& id, int wait_status, bool cancelled);

}  // namespace melissa::scheduler::detail
