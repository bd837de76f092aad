// The Slurm backend against a real one-node Slurm (tests/slurm/start-slurm.sh
// starts it): jobs that complete, fail (exit 3), exceed a one-minute time
// limit (TIMEOUT) and are cancelled, a two-task job under srun, and the
// schedule-in-schedule mode running short clients as steps of one
// allocation, and a job array (own env, secrets and logs per task, one task
// cancelled alone). Every poll is counted: one squeue, at most one sacct.
//
// doctest, with a main of its own: exit 77 (skipped) when not root or when
// Slurm is not installed, checked before any test case runs. Takes 70-100 s,
// most of it waiting for Slurm's time-limit check (longer when other jobs fill
// the test cluster). The jobs' logs stay in /tmp/melissa-slurm-* when a check
// fails.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "backends/scheduler/slurm_backend.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::scheduler;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

// The jobs' directory, made by main once Slurm is up.
std::string dir;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// The real runner, counting the commands of each poll.
struct counting_runner {
  std::map<std::string, int> calls;
  command_runner runner() {
    return [this](const std::vector<std::string>& argv, const std::string& in) {
      ++calls[argv.at(0)];
      return run_command(argv, in);
    };
  }
};

job_request shell_job(const std::string& name, const std::string& script, const std::string& dir) {
  job_request r;
  r.name = name;
  r.argv = {"sh", "-c", script};
  r.workdir = dir;
  r.stdout_path = dir + "/" + name + ".out";
  r.stderr_path = dir + "/" + name + ".err";
  return r;
}

// Polls `ids` every half second until all are final or `limit` passes;
// checks that each poll ran one squeue and at most one sacct.
std::map<std::string, job_status> wait_all(slurm_backend& b, counting_runner& counter,
                                           const std::vector<std::string>& ids, std::chrono::seconds limit,
                                           const std::function<void(const std::map<std::string, job_status>&)>& each = {}) {
  const auto end = clock_type::now() + limit;
  std::map<std::string, job_status> last;
  for (;;) {
    counter.calls.clear();
    const auto statuses = b.poll(ids);
    CHECK(counter.calls["squeue"] <= 1);
    CHECK(counter.calls["sacct"] <= 1);
    CHECK(counter.calls["sbatch"] == 0);
    bool all_final = true;
    for (const auto& s : statuses) {
      last[s.id] = s;
      all_final = all_final && is_final(s.state);
    }
    if (each) each(last);
    if (all_final || clock_type::now() > end) return last;
    std::this_thread::sleep_for(500ms);
  }
}

}  // namespace

TEST_CASE("schedule-in-schedule: 3 short clients as steps of one allocation, 1 cancelled step") {
  std::cout << "-- schedule-in-schedule: 3 short clients as steps of one allocation, 1 cancelled step" << std::endl;
  counting_runner counter;
  slurm_options o;
  o.schedule_in_schedule = true;
  o.allocation_nodes = 1;
  o.allocation_time = "00:05:00";
  o.allocation_log = dir + "/allocation-%j.log";
  // Not the whole node: other test suites may use this one-node cluster too,
  // and an exclusive allocation would wait for all their jobs.
  o.allocation_exclusive = false;
  o.allocation.extra = {"--ntasks=3"};
  o.kill_grace = 2000ms;
  std::string allocation;
  {
    slurm_backend b(counter.runner(), o);
    std::vector<std::string> steps;
    for (int i = 0; i < 3; ++i) {
      job_request r = shell_job("step" + std::to_string(i),
                                "echo step $MELISSA_SIM_ID job $SLURM_JOB_ID step $SLURM_STEP_ID; sleep 1", dir);
      r.env = {{"MELISSA_SIM_ID", std::to_string(i)}};
      steps.push_back(b.submit(r));
    }
    allocation = b.allocation_id();
    CHECK(!allocation.empty());
    CHECK(counter.calls["sbatch"] == 1);  // one allocation for all
    const auto start = clock_type::now();
    auto done = wait_all(b, counter, steps, 60s);
    std::cout << "   3 steps done in " << seconds_since(start) << " s" << std::endl;
    for (int i = 0; i < 3; ++i) {
      const job_status& s = done[steps[i]];
      std::cout << "   " << s.id << ": " << to_string(s.state) << " (" << s.raw_state << ")" << std::endl;
      CHECK(s.state == job_state::completed);
      const std::string out = read_file(dir + "/step" + std::to_string(i) + ".out");
      CHECK(out.find("step " + std::to_string(i) + " job " + allocation + " step ") == 0);
    }
    // A step that is cancelled: srun gets SIGTERM and ends the step.
    const auto slow = b.submit(shell_job("slow-step", "sleep 100", dir));
    const auto running_at = clock_type::now() + 30s;
    while (b.poll({slow})[0].state != job_state::running && clock_type::now() < running_at)
      std::this_thread::sleep_for(200ms);
    std::this_thread::sleep_for(1s);  // let srun create the step
    b.cancel(slow);
    const auto cancelled = wait_all(b, counter, {slow}, 30s)[slow];
    std::cout << "   cancelled step: " << to_string(cancelled.state) << " (" << cancelled.raw_state << ")" << std::endl;
    CHECK(cancelled.state == job_state::cancelled);
    const command_result steps_left = run_command({"squeue", "-h", "-s", "-o", "%i|%j", "-j", allocation});
    CHECK(steps_left.out.find("slow-step") == std::string::npos);
  }
  // The backend's destructor gave the allocation back.
  std::this_thread::sleep_for(1s);
  const command_result after = run_command({"squeue", "-h", "-t", "all", "-o", "%i|%T", "-j", allocation});
  std::cout << "   allocation after the backend: " << after.out;
  CHECK((after.out.find(allocation + "|CANCELLED") != std::string::npos ||
          after.out.find(allocation + "|COMPLETING") != std::string::npos));
}

TEST_CASE("jobs: 2 tasks, exit 0, exit 3, a 1-minute time limit, a cancelled one") {
  std::cout << "-- jobs: 2 tasks, exit 0, exit 3, a 1-minute time limit, a cancelled one" << std::endl;
  counting_runner counter;
  slurm_backend b(counter.runner());
  job_request two = shell_job("two-tasks", "echo rank $SLURM_PROCID", dir);
  two.settings.tasks = 2;
  const auto two_id = b.submit(two);
  job_request ok = shell_job("ok", "echo hello $MELISSA_X from $(pwd)", dir);
  ok.env = {{"MELISSA_X", "it's here"}};
  const auto ok_id = b.submit(ok);
  const auto fail_id = b.submit(shell_job("fail", "echo failing >&2; exit 3", dir));
  job_request slow = shell_job("timeout", "sleep 120", dir);
  slow.settings.time_limit = "00:01:00";
  const auto timeout_id = b.submit(slow);
  const auto cancel_id = b.submit(shell_job("cancel", "sleep 100", dir));
  CHECK(counter.calls["sbatch"] == 5);

  const auto start = clock_type::now();
  bool cancel_sent = false;
  const std::vector<std::string> ids = {two_id, ok_id, fail_id, timeout_id, cancel_id};
  auto last = wait_all(b, counter, ids, 200s, [&](const std::map<std::string, job_status>& now) {
    // Cancelled once running; or still pending after 60 s (a busy cluster).
    if (!cancel_sent && (now.at(cancel_id).state == job_state::running || seconds_since(start) > 60)) {
      b.cancel(cancel_id);
      cancel_sent = true;
    }
  });
  std::cout << "   all final after " << seconds_since(start) << " s" << std::endl;
  for (const auto& id : ids)
    std::cout << "   " << id << ": " << to_string(last[id].state) << " (" << last[id].raw_state << ")" << std::endl;

  CHECK(last[two_id].state == job_state::completed);
  const std::string two_out = read_file(two.stdout_path);
  CHECK(two_out.find("rank 0") != std::string::npos);
  CHECK(two_out.find("rank 1") != std::string::npos);
  CHECK(last[ok_id].state == job_state::completed);
  CHECK(last[ok_id].raw_state == "COMPLETED");
  CHECK(read_file(ok.stdout_path) == "hello it's here from " + dir + "\n");
  CHECK(last[fail_id].state == job_state::failed);
  CHECK(last[fail_id].raw_state == "FAILED");
  CHECK(read_file(dir + "/fail.err") == "failing\n");
  CHECK(last[timeout_id].state == job_state::failed);
  CHECK(last[timeout_id].raw_state == "TIMEOUT");
  CHECK(cancel_sent);
  CHECK(last[cancel_id].state == job_state::cancelled);
  CHECK(last[cancel_id].raw_state == "CANCELLED");
  // The batch script is next to the logs.
  CHECK(std::filesystem::exists(ok.stdout_path + ".sbatch"));

  // The squeue output of these jobs, as tests/backends/slurm/squeue.txt records it.
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  std::cout << "   squeue -h -t all -o '%i|%T' -j " << list << ":\n"
            << run_command({"squeue", "-h", "-t", "all", "-o", "%i|%T", "-j", list}).out;
}

TEST_CASE("job arrays: 4 jobs in one sbatch --array, own logs and env, exit 3, one task cancelled") {
  std::cout << "-- job arrays: 4 jobs in one sbatch --array, own logs and env, exit 3, one task cancelled" << std::endl;
  counting_runner counter;
  slurm_options o;
  o.array_size = 4;
  slurm_backend b(counter.runner(), o);
  std::vector<job_request> requests;
  for (int i = 0; i < 3; ++i) {
    auto r = shell_job("arr" + std::to_string(i), "echo task $MELISSA_I $SECRET; exit $MELISSA_EXIT", dir);
    r.env["MELISSA_I"] = std::to_string(i);
    r.env["MELISSA_EXIT"] = i == 1 ? "3" : "0";
    r.secret_env["SECRET"] = "s" + std::to_string(i);
    requests.push_back(r);
  }
  requests.push_back(shell_job("arr3", "sleep 100", dir));
  counter.calls.clear();
  const auto outcomes = b.submit_many(requests);
  CHECK(counter.calls["sbatch"] == 1);
  REQUIRE(outcomes.size() == 4);
  std::vector<std::string> ids;
  for (const auto& o : outcomes) {
    CHECK(o.error == "");
    ids.push_back(o.id);
  }
  const std::string array = ids[0].substr(0, ids[0].find('_'));
  for (std::size_t i = 0; i < ids.size(); ++i) CHECK(ids[i] == array + "_" + std::to_string(i));
  bool cancel_sent = false;
  const auto start = clock_type::now();
  const auto last = wait_all(b, counter, ids, 120s, [&](const std::map<std::string, job_status>& now) {
    // Cancelled while pending or running: scancel <array>_3 ends that task only.
    if (!cancel_sent && (now.at(ids[3]).state == job_state::running || seconds_since(start) > 20)) {
      b.cancel(ids[3]);
      cancel_sent = true;
    }
  });
  for (const auto& id : ids)
    std::cout << "   " << id << ": " << to_string(last.at(id).state) << " (" << last.at(id).raw_state << ")" << std::endl;
  CHECK(last.at(ids[0]).state == job_state::completed);
  CHECK(last.at(ids[1]).state == job_state::failed);
  CHECK(last.at(ids[1]).raw_state == "FAILED");  // no accounting here: squeue has no exit code
  CHECK(last.at(ids[2]).state == job_state::completed);
  CHECK(last.at(ids[3]).state == job_state::cancelled);
  CHECK(read_file(dir + "/arr0.out") == "task 0 s0\n");
  CHECK(read_file(dir + "/arr2.out") == "task 2 s2\n");
}

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::cout << "skipped: starting Slurm needs root\n";
    return 77;
  }
  const char* source = std::getenv("MELISSA_SOURCE_DIR");
  const std::string script = std::string(source ? source : MELISSA_SOURCE_DIR) + "/tests/slurm/start-slurm.sh";
  const command_result started = run_command({"bash", script});
  std::cout << started.out << started.err;
  if (started.exit_code == 77) {
    std::cout << "skipped: Slurm is not installed (apt-get install slurm-wlm munge)\n";
    return 77;
  }
  if (started.exit_code != 0) {
    std::cerr << "cannot start Slurm (exit " << started.exit_code << ")\n";
    return 1;
  }
  melissa::testing::temp_dir jobs("melissa-slurm", "/tmp");
  dir = jobs.path;
  doctest::Context context(argc, argv);
  const int status = context.run();
  if (status != 0 && !context.shouldExit()) {
    jobs.keep();
    std::cerr << "logs kept in " << dir << "\n";
  }
  return status;
}
