// The local backend: every job is a process of this machine, started
// without a shell in a session of its own. No external command is run to
// poll: waitpid(WNOHANG) tells each job's state.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "backends/scheduler/backend.hpp"
#include "backends/scheduler/process.hpp"

namespace melissa::scheduler {

struct local_options {
  // Time between SIGTERM and SIGKILL when a job is cancelled. cancel() never
  // waits that long: the SIGKILL is sent by the first poll() or cancel() call
  // after the deadline (or by the destructor).
  std::chrono::milliseconds kill_grace{3000};
};

// Jobs: `argv` as given, or `mpirun --oversubscribe -n <tasks> [--allow-run-as-root] argv`
// when settings.tasks > 1. The job's id is its pid (= its process group and
// session id).
// stdout_path / stderr_path are truncated (an empty path: inherited from this
// process; the same path twice: one file); env is added to this process's
// environment; workdir (empty: this process's) is where the job starts.
//
// States: running until the process exits; exit 0 → completed; exit N →
// failed, raw_state "exited N"; killed by signal N → failed, "signal N"; any
// end but exit 0 after cancel() → cancelled. Unknown ids → failed, "unknown
// job id". Destroying the backend kills (SIGKILL) the jobs still running.
class local_backend final : public backend {
 public:
  using options = local_options;
  explicit local_backend(local_options opts = {});

  const char* name() const override { return "local"; }
  // Throws backend_error, before anything is started, when the program is
  // not found: "client command 'foo' not found (PATH=/usr/bin:/bin)", or when
  // mpirun is needed and missing, the workdir does not exist, or a log file
  // cannot be opened.
  std::string submit(const job_request& request) override;
  std::vector<job_status> poll(const std::vector<std::string>& ids) override;
  // SIGTERM to every process of the job's session now (its group, and
  // mpirun's ranks, which Open MPI puts in groups of their own), SIGKILL
  // after kill_grace.
  void cancel(const std::string& id) override;
  // Told the moment a job's process exits (a pidfd per job, one thread).
  void set_change_listener(std::function<void()> listener) override {
    processes_.set_exit_listener(std::move(listener));
  }

  // The most tasks (MPI ranks) one job may have here: 16 per online CPU, at
  // least 16. mpirun --oversubscribe starts any number, but far beyond the
  // cores the ranks only spin (a million of them never start at all).
  static std::uint32_t max_tasks();
  // Throws backend_error naming `key` (e.g. "client.ranks") when `tasks`
  // exceeds max_tasks(); submit() checks every job the same way.
  static void check_tasks(std::uint32_t tasks, const std::string& key);

  // The command line a request runs (pure): argv, under mpirun when tasks > 1.
  static std::vector<std::string> command_line(const job_request& request, bool as_root);

 private:
  detail::process_table processes_;
};

}  // namespace melissa::scheduler
