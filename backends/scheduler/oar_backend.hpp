// The OAR backend (OAR 2.5, the version Debian 12 ships): oarsub to submit,
// ONE `oarstat -f -J -j id1 -j id2 ...` per poll, oardel to cancel. The pure
// parts (script, command lines, JSON parsing, state mapping) are in
// namespace `oar` below, tested against outputs recorded from a real OAR
// 2.5.9 (tests/backends/oar/); the backend itself runs against a real one-node
// OAR in tests/backends/test_oar_real.cpp.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "backends/scheduler/backend.hpp"

namespace melissa::scheduler {

// Jobs: a script is written to `<stdout_path>.oar` (exports of request.env, a
// cd to workdir, then `exec` of the program; tasks > 1: `mpirun -np <tasks>
// -machinefile "$OAR_NODEFILE" --mca plm_rsh_agent oarsh`, OAR's way to reach
// the other nodes) and submitted with
//   oarsub -n <name> -O <stdout> -E <stderr> -d <workdir>
//          -l /nodes=<nodes>/core=<ceil(tasks/nodes)><gres>[,walltime=H:MM:SS]
//          [-q <partition>] [--project <account>] <extra...> <script>
// The id is OAR's job id, read from the "OAR_JOB_ID=<n>" line.
//
// poll(ids): ONE `oarstat -f -J -j <id> -j <id>...` (-f: only the full view
// carries exit_code). States: Waiting, toLaunch, Launching, Hold,
// toAckReservation → pending; Running, Finishing, Suspended, Resuming →
// running; Terminated with exit_code 0 → completed; Terminated with another
// exit code, Error, toError → failed (cancelled when this backend cancelled
// it). raw_state keeps OAR's word. exit_code is OAR's wait status: exit
// status = code >> 8, signal = code & 127. Ids oarstat does not list →
// failed, raw_state "NOT_FOUND". cancel: `oardel <id>` (exit 6, "already
// killed", is not an error).
class oar_backend final : public backend {
 public:
  explicit oar_backend(command_runner runner = run_command);

  const char* name() const override { return "oar"; }
  std::string submit(const job_request& request) override;
  std::vector<job_status> poll(const std::vector<std::string>& ids) override;
  void cancel(const std::string& id) override;

 private:
  command_runner run_;
  std::map<std::string, job_status> finished_;  // final states, never queried again
  std::set<std::string> cancelled_;
};

// Pure functions of the OAR backend.
namespace oar {

// "/nodes=N/core=C<gres>" plus ",walltime=H:MM:SS" when a time limit is set
// ("[D-]H:MM:SS" is turned into hours: "1-02:00:00" → "26:00:00"). Throws
// backend_error for a time limit of another form.
std::string resource_request(const job_settings& settings);
std::string job_script(const job_request& request, const std::vector<std::string>& oarsub_argv,
                       const std::string& script_path = "");
std::vector<std::string> oarsub_command(const job_request& request, const std::string& script_path);
std::vector<std::string> oarstat_command(const std::vector<std::string>& ids);

// The id of "OAR_JOB_ID=<n>" in oarsub's output (admission rules print other
// lines before it); "" when none.
std::string parse_oarsub_id(std::string_view out);

struct stat_record {
  std::string state;              // "Running", "Terminated", ...
  std::optional<long> exit_code;  // OAR's raw wait status; absent while running
};
// id → record of `oarstat -f -J` (a JSON object keyed by job id; numbers may
// come as JSON strings, Perl's DBI gives strings). Empty output: no job.
// Throws backend_error for output that is not such JSON.
std::map<std::string, stat_record> parse_oarstat(std::string_view out);

job_state map_state(std::string_view oar_state, std::optional<long> exit_code, bool cancelled_by_us);
job_status to_status(const std::string& id, const stat_record& record, bool cancelled_by_us);

}  // namespace oar
}  // namespace melissa::scheduler
