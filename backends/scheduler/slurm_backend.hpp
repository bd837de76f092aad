// The Slurm backend: sbatch to submit, ONE squeue (plus at most ONE sacct)
// per poll, scancel to cancel; and the schedule-in-schedule mode, where the
// clients run as job steps of one allocation. README.md of this folder
// describes both; the pure parts (scripts, command lines, output parsing,
// state mapping) are in namespace `slurm` below, tested without Slurm.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backends/scheduler/backend.hpp"
#include "backends/scheduler/process.hpp"

namespace melissa::scheduler {

struct slurm_options {
  // Clients (job_kind::client) become job steps of one allocation instead of
  // jobs of their own, so that short clients do not wait in the queue each.
  // The server is always a job of its own.
  bool schedule_in_schedule = false;
  std::uint32_t allocation_nodes = 1;          // sbatch --nodes of the allocation
  std::string allocation_time = "01:00:00";    // its --time
  // --exclusive: whole nodes, every CPU for the steps. false: what
  // allocation.extra asks for (e.g. "--ntasks=8"), on nodes others may share.
  bool allocation_exclusive = true;
  // partition, account, gres and extra of the allocation (sbatch options);
  // nodes, tasks and time_limit of this field are not used.
  job_settings allocation;
  std::string allocation_log = "/dev/null";    // sbatch --output/--error of the allocation
  // SIGTERM → SIGKILL delay for a step's srun (see local_options::kill_grace).
  std::chrono::milliseconds kill_grace{3000};
  // submit_many: requests of the same kind and placement go together as one
  // job array (`sbatch --array=0-<n-1>`) of at most this many tasks; 0 or 1:
  // one sbatch per job. Not combined with schedule_in_schedule (steps).
  std::uint32_t array_size = 0;
};

// Jobs of their own: a batch script is written to `<stdout_path>.sbatch`
// (exports of request.env, a cd to workdir, then `exec` of the program, under
// `srun --ntasks=<tasks>` when tasks > 1) and submitted with
//   sbatch --parsable --job-name=<name> --output=<stdout> --error=<stderr>
//          --chdir=<workdir> --export=ALL --nodes=<nodes> --ntasks=<tasks>
//          [--partition=] [--account=] [--time=] [--gres=] <extra...> <script>
// The id is Slurm's job id.
//
// poll(ids) runs at most two scheduler queries: ONE `squeue -h -t all -o %i|%T
// -j <all ids>`, then ONE `sacct -n -P -X -o JobID,State,ExitCode -j <ids that
// squeue no longer knows>`. Final states are remembered and never asked
// again. In schedule-in-schedule mode the allocation's id rides in the same
// squeue call; when the allocation has ended while steps still wait, poll
// also submits a new allocation (one sbatch).
//
// States: PENDING, CONFIGURING, REQUEUED, REQUEUE_HOLD, REQUEUE_FED,
// RESV_DEL_HOLD → pending; RUNNING, COMPLETING, SUSPENDED, STOPPED,
// SIGNALING, STAGE_OUT, RESIZING → running; COMPLETED (exit 0) → completed;
// CANCELLED, FAILED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, PREEMPTED, BOOT_FAIL,
// DEADLINE, REVOKED, SPECIAL_EXIT → failed, or cancelled when this backend
// cancelled the job; a word Slurm adds later → running (the launcher's
// timeout still applies). raw_state keeps Slurm's word ("TIMEOUT"). An id
// that is not a Slurm job id → failed, "unknown job id", without asking
// Slurm. An id neither squeue nor sacct knows → failed, "NOT_FOUND" (sacct
// needs accounting: without it, keep finished jobs in squeue with MinJobAge
// longer than the poll interval).
class slurm_backend final : public backend {
 public:
  using options = slurm_options;
  explicit slurm_backend(command_runner runner = run_command, slurm_options opts = {});
  // In schedule-in-schedule mode: kills the running steps and scancels the
  // allocation. Jobs of their own are left to Slurm (the launcher cancels them).
  ~slurm_backend() override;

  const char* name() const override { return "slurm"; }
  std::string submit(const job_request& request) override;
  // With options.array_size > 1: one sbatch --array per group of
  // slurm::array_groups; the tasks' ids are "<array id>_<task>".
  std::vector<submit_outcome> submit_many(const std::vector<job_request>& requests) override;
  std::vector<job_status> poll(const std::vector<std::string>& ids) override;
  // scancel <id>; a step: SIGTERM to its srun's session (srun forwards
  // it to the step's tasks and ends the step), SIGKILL after kill_grace.
  void cancel(const std::string& id) override;
  // Schedule-in-schedule: told the moment a step's srun exits. The batch
  // jobs are known only by polling.
  void set_change_listener(std::function<void()> listener) override {
    steps_.set_exit_listener(std::move(listener));
  }

  // The allocation of the schedule-in-schedule mode ("" when none yet).
  const std::string& allocation_id() const { return allocation_id_; }

 private:
  struct queued_step {
    std::string id;
    job_request request;
  };
  bool is_step(const std::string& id) const;
  std::string submit_job(const job_request& request);
  std::vector<std::string> submit_array(const std::vector<const job_request*>& requests);
  std::string submit_step(const job_request& request);
  void submit_allocation();
  void launch_step(const queued_step& step);
  job_status step_status(const std::string& id);

  command_runner run_;
  slurm_options options_;
  std::map<std::string, job_status> finished_;  // final states, never queried again
  std::set<std::string> cancelled_;             // jobs this backend cancelled

  // schedule-in-schedule
  enum class allocation_state { none, pending, running, ended };
  std::string allocation_id_;
  allocation_state allocation_state_ = allocation_state::none;
  std::string allocation_word_;                 // its last Slurm state
  std::deque<queued_step> queued_;              // waiting for the allocation to run
  std::set<std::string> step_ids_;
  std::uint64_t next_step_ = 0;
  detail::process_table steps_;
};

// Pure functions of the Slurm backend.
namespace slurm {

// The batch script of a job of its own (see slurm_backend).
std::string batch_script(const job_request& request, const std::vector<std::string>& sbatch_argv,
                         const std::string& script_path = "");
// Seconds before its time limit at which a server job gets SIGTERM
// (sbatch --signal=B:TERM@N): time to write a checkpoint. 120, or half the
// job's time limit when that is shorter (a server of a 1-minute job is not
// stopped as soon as it starts).
constexpr int server_term_grace_s = 120;
int server_term_grace(const std::string& time_limit);
// sbatch's argv, script path last (a server job asks for that SIGTERM).
std::vector<std::string> sbatch_command(const job_request& request, const std::string& script_path);
// The allocation of the schedule-in-schedule mode: a batch job that only
// sleeps (`--wrap "exec sleep infinity"`) until scancel or its time limit.
// --exclusive (unless options.allocation_exclusive is false): the steps may
// use every CPU of its nodes.
std::vector<std::string> allocation_command(const slurm_options& options);
// srun of one step: `srun --jobid=<allocation> --job-name=<name> --nodes=<nodes>
// --ntasks=<tasks> --exact --chdir=<workdir> <extra...> <argv...>`; its
// output goes to the step's logs through srun's own stdout/stderr.
std::vector<std::string> step_command(const std::string& allocation_id, const job_request& request);
// Job arrays. Requests that may share one array: same kind, workdir and
// job_settings (sbatch options are the array's, not a task's). Indices into
// `requests`, in order, groups of at most `array_size` (>= 1).
std::vector<std::vector<std::size_t>> array_groups(const std::vector<job_request>& requests,
                                                    std::size_t array_size);
// The array's script: `case "$SLURM_ARRAY_TASK_ID"` selects task i's
// exports, secret env file (`<script_path>.<i>.env`), logs (redirected by the
// script: each task has its own paths) and command line.
std::string array_script(const std::vector<const job_request*>& requests,
                         const std::vector<std::string>& sbatch_argv, const std::string& script_path);
// sbatch of an array of `tasks` tasks placed as `first`: --array=0-<tasks-1>,
// Slurm's own output to `log` (%A_%a: one file per task, errors before the
// script runs), script path last.
std::vector<std::string> array_sbatch_command(const job_request& first, std::size_t tasks,
                                              const std::string& log, const std::string& script_path);
std::vector<std::string> squeue_command(const std::vector<std::string>& ids);
std::vector<std::string> sacct_command(const std::vector<std::string>& ids);

// The job id of `sbatch --parsable` ("1234" or "1234;cluster"); "" when none.
std::string parse_sbatch_id(std::string_view out);
// The ids of the JobID field of squeue or sacct: "123_[4-6,9%2]" (the
// tasks of an array that have not started: one line, "%2" its throttle) →
// 123_4, 123_5, 123_6, 123_9; any other id → itself.
std::vector<std::string> array_task_ids(std::string_view id);
// id → state word of `squeue -h -o %i|%T`.
std::map<std::string, std::string> parse_squeue(std::string_view out);

struct accounting_record {
  std::string state;               // first word: "CANCELLED by 1000" → "CANCELLED"
  std::optional<int> exit_code;    // ExitCode "3:0" → 3
  std::optional<int> signal;       // ExitCode "0:9" → 9 (absent when 0)
};
// id → record of `sacct -n -P -X -o JobID,State,ExitCode`; a job listed twice
// (requeued) keeps its last line; array tasks as array_task_ids reads them.
std::map<std::string, accounting_record> parse_sacct(std::string_view out);

// Slurm's state word (first word, trailing '+' ignored) → job_state.
job_state map_state(std::string_view slurm_state, std::optional<int> exit_code, bool cancelled_by_us);
bool is_pending_state(std::string_view slurm_state);
bool is_running_state(std::string_view slurm_state);
// A Slurm job id: digits, or digits_digits (array task) / digits+digits.
bool is_job_id(std::string_view id);
// The state word alone: "CANCELLED by 0" → "CANCELLED", "CANCELLED+" → "CANCELLED".
std::string state_word(std::string_view slurm_state);

}  // namespace slurm
}  // namespace melissa::scheduler
