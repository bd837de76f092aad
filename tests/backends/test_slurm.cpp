// The Slurm backend without Slurm: a fake command_runner records each command
// and answers with outputs recorded from a real Slurm 22.05 (Debian 12,
// tests/slurm/start-slurm.sh): the exact sbatch command line and batch
// script, ONE squeue (+ at most one sacct) per poll however many jobs, every
// state mapping, cancel, and the schedule-in-schedule mode (with a fake
// `srun` on PATH that runs the step's command here).
#include <doctest/doctest.h>

#include <algorithm>

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "backends/scheduler/slurm_backend.hpp"
#include "helpers.hpp"

using namespace melissa::scheduler;
using namespace melissa::scheduler::testing;

namespace {

job_request full_request(const temp_dir& dir) {
  job_request r;
  r.name = "melissa-heat-sim3-a1";
  r.kind = job_kind::client;
  r.argv = {"melissa-heat", "--grid", "64", "it's"};
  r.env = {{"MELISSA_SIM_ID", "3"}, {"X", "a b"}};
  r.workdir = "/scratch/study";
  r.stdout_path = dir / "jobs/3.out";
  r.stderr_path = dir / "jobs/3.err";
  r.settings.partition = "cpu";
  r.settings.account = "proj";
  r.settings.time_limit = "00:10:00";
  r.settings.nodes = 2;
  r.settings.tasks = 4;
  r.settings.gres = "gpu:1";
  r.settings.extra = {"--qos=fast", "--constraint=skylake"};
  return r;
}

job_request simple_request(const std::string& name, const temp_dir& dir) {
  job_request r;
  r.name = name;
  r.argv = {"solver"};
  r.stdout_path = dir / (name + ".out");
  r.stderr_path = dir / (name + ".err");
  return r;
}

command_result ok(const std::string& out) { return command_result{0, out, ""}; }

// The value of the `-j` option of a recorded command.
std::string job_list(const std::vector<std::string>& argv) {
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-j") return argv[i + 1];
  return "";
}

std::vector<std::string> split_ids(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream s(list);
  for (std::string id; std::getline(s, id, ',');) out.push_back(id);
  return out;
}

}  // namespace

TEST_CASE("slurm: the exact sbatch command line and batch script of a job") {
  temp_dir dir;
  fake_runner fake;
  fake.answer = [](const std::vector<std::string>&) { return ok("4242\n"); };
  slurm_backend b(fake.runner());
  const job_request r = full_request(dir);
  CHECK(b.submit(r) == "4242");
  REQUIRE(fake.calls.size() == 1);
  const std::string script_path = dir / "jobs/3.out.sbatch";
  const std::vector<std::string> expected = {
      "sbatch", "--parsable", "--job-name=melissa-heat-sim3-a1", "--output=" + dir / "jobs/3.out",
      "--error=" + dir / "jobs/3.err", "--chdir=/scratch/study", "--export=ALL", "--nodes=2", "--ntasks=4",
      "--partition=cpu", "--account=proj", "--gres=gpu:1", "--time=00:10:00", "--qos=fast",
      "--constraint=skylake", script_path};
  CHECK(fake.calls[0] == expected);
  CHECK(slurm::sbatch_command(r, script_path) == expected);

  std::string submitted;
  for (const auto& w : expected) submitted += (submitted.empty() ? "" : " ") + ("'" + w + "'");
  const std::string script = read_file(script_path);
  CHECK(script ==
        "#!/bin/bash\n"
        "# Melissa client job melissa-heat-sim3-a1\n"
        "# submitted with: " + submitted + "\n"
        "export MELISSA_SIM_ID='3'\n"
        "export X='a b'\n"
        "cd '/scratch/study' || exit 1\n"
        "exec srun --ntasks=4 'melissa-heat' '--grid' '64' 'it'\\''s'\n");
  CHECK((std::filesystem::status(script_path).permissions() & std::filesystem::perms::owner_exec) !=
        std::filesystem::perms::none);
}

TEST_CASE("slurm: a one-task job runs its program directly, defaults add no option") {
  temp_dir dir;
  job_request r = simple_request("one", dir);
  const auto argv = slurm::sbatch_command(r, "s.sbatch");
  CHECK(argv == std::vector<std::string>{"sbatch", "--parsable", "--job-name=one", "--output=" + dir / "one.out",
                                         "--error=" + dir / "one.err", "--export=ALL", "--nodes=1",
                                         "--ntasks=1", "s.sbatch"});
  const std::string script = slurm::batch_script(r, argv);
  CHECK(script.substr(script.rfind('\n', script.size() - 2) + 1) == "exec 'solver'\n");
}

TEST_CASE("slurm: a server job asks for SIGTERM before its time limit, a client does not") {
  temp_dir dir;
  job_request r = simple_request("srv", dir);
  r.kind = job_kind::server;
  r.settings.time_limit = "00:30:00";
  const auto argv = slurm::sbatch_command(r, "s.sbatch");
  CHECK(argv == std::vector<std::string>{"sbatch", "--parsable", "--job-name=srv", "--output=" + dir / "srv.out",
                                         "--error=" + dir / "srv.err", "--export=ALL", "--nodes=1",
                                         "--ntasks=1", "--time=00:30:00", "--signal=B:TERM@120",
                                         "s.sbatch"});
  r.kind = job_kind::client;
  const auto client = slurm::sbatch_command(r, "s.sbatch");
  CHECK(std::find(client.begin(), client.end(), "--signal=B:TERM@120") == client.end());
  // Half a short time limit; 120 s without one (the partition's, unknown here).
  CHECK(slurm::server_term_grace("0:03:00") == 90);
  CHECK(slurm::server_term_grace("0:01:00") == 30);
  CHECK(slurm::server_term_grace("1-00:00:00") == 120);
  CHECK(slurm::server_term_grace("") == 120);
}

TEST_CASE("slurm: sbatch output and errors") {
  CHECK(slurm::parse_sbatch_id("4242\n") == "4242");
  CHECK(slurm::parse_sbatch_id("4242;cluster-a\n") == "4242");
  CHECK(slurm::parse_sbatch_id("sbatch: site message\n77\n") == "77");
  CHECK(slurm::parse_sbatch_id("Submitted batch job 77\n") == "");
  CHECK(slurm::parse_sbatch_id("") == "");

  temp_dir dir;
  fake_runner fake;
  slurm_backend b(fake.runner());
  // Recorded from sbatch 22.05 with a partition that does not exist.
  fake.answer = [](const std::vector<std::string>&) {
    return command_result{1, "", "sbatch: error: invalid partition specified: gpu\n"
                                 "sbatch: error: Batch job submission failed: Invalid partition name specified\n"};
  };
  CHECK_THROWS_WITH_AS(b.submit(simple_request("x", dir)),
                       "client job 'x': sbatch failed (exit 1): sbatch: error: invalid partition specified: gpu\n"
                       "sbatch: error: Batch job submission failed: Invalid partition name specified",
                       backend_error);
  fake.answer = [](const std::vector<std::string>&) { return ok("\n"); };
  CHECK_THROWS_WITH_AS(b.submit(simple_request("x", dir)), doctest::Contains("sbatch printed no job id"),
                       backend_error);
  job_request empty = simple_request("x", dir);
  empty.argv.clear();
  CHECK_THROWS_AS(b.submit(empty), backend_error);
}

TEST_CASE("slurm: every state word maps to the launcher's state") {
  const auto none = std::nullopt;
  for (const char* w : {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}) {
    CAPTURE(w);
    CHECK(slurm::map_state(w, none, false) == job_state::pending);
  }
  for (const char* w : {"RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}) {
    CAPTURE(w);
    CHECK(slurm::map_state(w, none, false) == job_state::running);
  }
  CHECK(slurm::map_state("COMPLETED", none, false) == job_state::completed);
  CHECK(slurm::map_state("COMPLETED", 0, false) == job_state::completed);
  CHECK(slurm::map_state("COMPLETED", 0, true) == job_state::completed);  // ended before our cancel
  CHECK(slurm::map_state("COMPLETED", 2, false) == job_state::failed);
  for (const char* w : {"FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
                        "CANCELLED", "REVOKED", "SPECIAL_EXIT"}) {
    CAPTURE(w);
    CHECK(slurm::map_state(w, none, false) == job_state::failed);
    CHECK(slurm::map_state(w, 1, true) == job_state::cancelled);
  }
  // sacct's spellings.
  CHECK(slurm::map_state("CANCELLED by 1000", none, false) == job_state::failed);
  CHECK(slurm::map_state("CANCELLED by 0", none, true) == job_state::cancelled);
  CHECK(slurm::map_state("CANCELLED+", none, false) == job_state::failed);
  CHECK(slurm::state_word("CANCELLED by 1000") == "CANCELLED");
  // A word of a later Slurm: not final.
  CHECK(slurm::map_state("SOMETHING_NEW", none, false) == job_state::running);
}

TEST_CASE("slurm: squeue and sacct outputs recorded from a real Slurm") {
  // tests/backends/slurm/squeue.txt: `squeue -h -t all -o %i|%T -j ...` of
  // Slurm 22.05 after the integration test's jobs (README.md there).
  const auto states = slurm::parse_squeue(source_file("tests/backends/slurm/squeue.txt"));
  REQUIRE(states.size() == 8);
  CHECK(states.at("6") == "CANCELLED");
  CHECK(states.at("7") == "COMPLETED");
  CHECK(states.at("9") == "FAILED");
  CHECK(states.at("10") == "TIMEOUT");
  CHECK(states.at("12") == "RUNNING");
  CHECK(states.at("13") == "PENDING");
  CHECK(slurm::map_state(states.at("10"), std::nullopt, false) == job_state::failed);
  CHECK(slurm::map_state(states.at("13"), std::nullopt, false) == job_state::pending);
  // tests/backends/slurm/sacct.txt: `sacct -n -P -X -o JobID,State,ExitCode`
  // in the format of sacct(1) (no accounting daemon here to record one).
  const auto records = slurm::parse_sacct(source_file("tests/backends/slurm/sacct.txt"));
  CHECK(records.at("1001").state == "COMPLETED");
  CHECK(records.at("1001").exit_code == 0);
  CHECK_FALSE(records.at("1001").signal);
  CHECK(records.at("1002").state == "FAILED");
  CHECK(records.at("1002").exit_code == 3);
  CHECK(records.at("1003").state == "CANCELLED");
  CHECK(records.at("1003").signal == 15);
  CHECK(records.at("1004").state == "TIMEOUT");
  CHECK(records.at("1005").state == "OUT_OF_MEMORY");
  CHECK(records.at("1005").signal == 9);
  CHECK(records.at("1006").state == "NODE_FAIL");
  CHECK(records.at("1007").state == "COMPLETED");  // requeued: the last line counts
  CHECK(records.at("1007").exit_code == 0);
}

TEST_CASE("slurm: one squeue and at most one sacct per poll of 50 jobs") {
  temp_dir dir;
  fake_runner fake;
  int next_id = 100;
  // squeue knows jobs 100..139 (in every state), sacct knows 140..147.
  const char* squeue_states[] = {"PENDING", "RUNNING", "COMPLETED", "FAILED", "TIMEOUT", "NODE_FAIL",
                                 "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"};
  fake.answer = [&](const std::vector<std::string>& argv) {
    if (argv[0] == "sbatch") return ok(std::to_string(next_id++) + "\n");
    std::string out;
    for (const auto& id : split_ids(job_list(argv))) {
      const int n = std::stoi(id);
      if (argv[0] == "squeue" && n < 140) out += id + "|" + squeue_states[n % 10] + "\n";
      if (argv[0] == "sacct" && n >= 140 && n < 148)
        out += id + "|" + (n % 2 ? "FAILED|3:0" : "COMPLETED|0:0") + "\n";
    }
    return ok(out);
  };
  slurm_backend b(fake.runner());
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(b.submit(simple_request("j" + std::to_string(i), dir)));
  CHECK(fake.count("sbatch") == 50);
  fake.calls.clear();

  const auto statuses = b.poll(ids);
  CHECK(fake.calls.size() == 2);
  REQUIRE(fake.count("squeue") == 1);
  REQUIRE(fake.count("sacct") == 1);
  CHECK(fake.calls[0] == slurm::squeue_command(ids));
  CHECK(fake.calls[0] == std::vector<std::string>{"squeue", "-h", "-r", "-t", "all", "-o", "%i|%T", "-j",
                                                  job_list(fake.calls[0])});
  CHECK(split_ids(job_list(fake.calls[0])) == ids);
  const std::vector<std::string> gone(ids.begin() + 40, ids.end());
  CHECK(fake.calls[1] == std::vector<std::string>{"sacct", "-n", "-P", "-X", "-o", "JobID,State,ExitCode", "-j",
                                                  "140,141,142,143,144,145,146,147,148,149"});

  REQUIRE(statuses.size() == 50);
  for (std::size_t i = 0; i < 50; ++i) CHECK(statuses[i].id == ids[i]);
  CHECK(statuses[0].state == job_state::pending);
  CHECK(statuses[0].raw_state == "PENDING");
  CHECK(statuses[1].state == job_state::running);
  CHECK(statuses[2].state == job_state::completed);
  CHECK(statuses[2].exit_code == 0);
  for (int i : {3, 4, 5, 6, 7, 8, 9}) {
    CAPTURE(i);
    CHECK(statuses[i].state == job_state::failed);
    CHECK(statuses[i].raw_state == squeue_states[i]);
  }
  CHECK(statuses[40].state == job_state::completed);
  CHECK(statuses[40].exit_code == 0);
  CHECK(statuses[41].state == job_state::failed);
  CHECK(statuses[41].raw_state == "FAILED");
  CHECK(statuses[41].exit_code == 3);
  CHECK(statuses[48].state == job_state::failed);
  CHECK(statuses[48].raw_state == "NOT_FOUND");

  // Final states are remembered: the next poll asks only about the 8 jobs
  // still pending or running (ids ending in 0 or 1 below 140), with squeue alone.
  fake.calls.clear();
  const auto again = b.poll(ids);
  REQUIRE(fake.calls.size() == 1);
  CHECK(job_list(fake.calls[0]) == "100,101,110,111,120,121,130,131");
  for (std::size_t i = 0; i < 50; ++i) CHECK(again[i].state == statuses[i].state);

  // Nothing left to ask: no command at all.
  fake.calls.clear();
  b.poll({ids[2], ids[3], ids[45]});
  CHECK(fake.calls.empty());
}

TEST_CASE("slurm: squeue refusing purged ids goes to sacct; other squeue errors are errors") {
  temp_dir dir;
  fake_runner fake;
  std::string squeue_err;
  int next_id = 9;
  fake.answer = [&](const std::vector<std::string>& argv) {
    if (argv[0] == "sbatch") return ok(std::to_string(next_id++) + "\n");
    if (argv[0] == "squeue") return command_result{1, "", squeue_err};
    // Recorded from sacct 22.05 on a cluster without accounting.
    return command_result{1, "", "Slurm accounting storage is disabled\n"};
  };
  slurm_backend b(fake.runner());
  const auto id = b.submit(simple_request("x", dir));
  // Recorded from squeue 22.05 when every id asked is unknown.
  squeue_err = "slurm_load_jobs error: Invalid job id specified\n";
  const auto s = b.poll({id});
  CHECK(fake.count("sacct") == 1);
  CHECK(s[0].state == job_state::failed);
  CHECK(s[0].raw_state == "NOT_FOUND");

  const auto id2 = b.submit(simple_request("y", dir));
  squeue_err = "slurm_load_jobs error: Socket timed out on send/recv operation\n";
  CHECK_THROWS_WITH_AS(b.poll({id2}),
                       "squeue failed (exit 1): slurm_load_jobs error: Socket timed out on send/recv operation",
                       backend_error);
}

TEST_CASE("slurm: cancel runs scancel; our CANCELLED reads cancelled, someone else's reads failed") {
  temp_dir dir;
  fake_runner fake;
  int next_id = 10;
  fake.answer = [&](const std::vector<std::string>& argv) {
    if (argv[0] == "sbatch") return ok(std::to_string(next_id++) + "\n");
    if (argv[0] == "squeue") return ok("10|CANCELLED\n11|CANCELLED\n");
    return ok("");
  };
  slurm_backend b(fake.runner());
  const auto mine = b.submit(simple_request("a", dir));
  const auto theirs = b.submit(simple_request("b", dir));
  fake.calls.clear();
  b.cancel(mine);
  REQUIRE(fake.calls.size() == 1);
  CHECK(fake.calls[0] == std::vector<std::string>{"scancel", "10"});
  const auto s = b.poll({mine, theirs});
  CHECK(s[0].state == job_state::cancelled);
  CHECK(s[0].raw_state == "CANCELLED");
  CHECK(s[1].state == job_state::failed);
  CHECK(s[1].raw_state == "CANCELLED");
  // A finished job: no scancel at all.
  fake.calls.clear();
  b.cancel(theirs);
  CHECK(fake.calls.empty());
}

TEST_CASE("slurm: scancel of a job that already ended is not an error; other failures are") {
  fake_runner fake;
  slurm_backend b(fake.runner());
  fake.answer = [](const std::vector<std::string>&) {
    return command_result{1, "", "scancel: error: Kill job error on job id 5: Invalid job id specified\n"};
  };
  CHECK_NOTHROW(b.cancel("5"));
  fake.answer = [](const std::vector<std::string>&) {
    return command_result{1, "", "scancel: error: Kill job error on job id 6: Job/step already completing or completed\n"};
  };
  CHECK_NOTHROW(b.cancel("6"));
  fake.answer = [](const std::vector<std::string>&) {
    return command_result{1, "", "scancel: error: Kill job error on job id 7: Access/permission denied\n"};
  };
  CHECK_THROWS_WITH_AS(b.cancel("7"), doctest::Contains("Access/permission denied"), backend_error);
}

// --- schedule-in-schedule ---------------------------------------------------

TEST_CASE("slurm: the allocation and step command lines") {
  slurm_options o;
  o.schedule_in_schedule = true;
  o.allocation_nodes = 2;
  o.allocation_time = "02:00:00";
  o.allocation.partition = "cpu";
  o.allocation.account = "proj";
  o.allocation.extra = {"--qos=fast"};
  o.allocation_log = "/out/alloc-%j.log";
  CHECK(slurm::allocation_command(o) ==
        std::vector<std::string>{"sbatch", "--parsable", "--job-name=melissa-allocation",
                                 "--output=/out/alloc-%j.log", "--error=/out/alloc-%j.log", "--nodes=2",
                                 "--exclusive", "--time=02:00:00", "--partition=cpu", "--account=proj",
                                 "--qos=fast", "--wrap=exec sleep infinity"});
  o.allocation_exclusive = false;
  o.allocation.extra = {"--ntasks=4"};
  CHECK(slurm::allocation_command(o) ==
        std::vector<std::string>{"sbatch", "--parsable", "--job-name=melissa-allocation",
                                 "--output=/out/alloc-%j.log", "--error=/out/alloc-%j.log", "--nodes=2",
                                 "--time=02:00:00", "--partition=cpu", "--account=proj", "--ntasks=4",
                                 "--wrap=exec sleep infinity"});
  job_request r;
  r.name = "sim1";
  r.argv = {"solver", "0.5"};
  r.workdir = "/out";
  r.settings.tasks = 3;
  r.settings.extra = {"--mem-per-cpu=100"};
  CHECK(slurm::step_command("77", r) ==
        std::vector<std::string>{"srun", "--jobid=77", "--job-name=sim1", "--nodes=1", "--ntasks=3", "--exact",
                                 "--chdir=/out", "--mem-per-cpu=100", "solver", "0.5"});
}

TEST_CASE("slurm: schedule-in-schedule: steps wait for the allocation, then run as srun processes") {
  fake_srun srun;
  temp_dir dir;
  fake_runner fake;
  std::string allocation_state = "PENDING";
  int next_id = 77;
  fake.answer = [&](const std::vector<std::string>& argv) {
    if (argv[0] == "sbatch" && argv[2] == "--job-name=server") return ok("500\n");
    if (argv[0] == "sbatch") return ok(std::to_string(next_id++) + "\n");
    if (argv[0] == "squeue") {
      std::string out;
      for (const auto& id : split_ids(job_list(argv)))
        if (id == std::to_string(next_id - 1)) out += id + "|" + allocation_state + "\n";
      return ok(out);
    }
    return ok("");
  };
  slurm_options o;
  o.schedule_in_schedule = true;
  o.allocation_log = dir / "alloc.log";
  std::set<std::string> ids;
  std::vector<std::string> steps;
  {
    slurm_backend b(fake.runner(), o);
    for (int i = 0; i < 3; ++i) {
      job_request r = simple_request("sim" + std::to_string(i), dir);
      r.argv = {"sh", "-c", "echo step $MELISSA_SIM_ID"};
      r.env = {{"MELISSA_SIM_ID", std::to_string(i)}, {"FAKE_SRUN_LOG", dir / "srun.log"}};
      r.workdir = dir.path;
      steps.push_back(b.submit(r));
    }
    // One allocation for the three.
    CHECK(fake.count("sbatch") == 1);
    CHECK(b.allocation_id() == "77");
    CHECK(steps == std::vector<std::string>{"step-1", "step-2", "step-3"});

    fake.calls.clear();
    auto s = b.poll(steps);
    REQUIRE(fake.calls.size() == 1);
    CHECK(job_list(fake.calls[0]) == "77");  // only the allocation: steps are local processes
    for (const auto& st : s) {
      CHECK(st.state == job_state::pending);
      CHECK(st.raw_state == "waiting for allocation 77 (PENDING)");
    }
    // A queued step can be cancelled before it starts.
    job_request extra = simple_request("extra", dir);
    const auto cancelled_early = b.submit(extra);
    b.cancel(cancelled_early);
    CHECK(b.poll({cancelled_early})[0].state == job_state::cancelled);
    CHECK(b.poll({cancelled_early})[0].raw_state == "cancelled before start");

    allocation_state = "RUNNING";
    for (const auto& id : steps) {
      const job_status st = wait_final(b, id);
      CHECK(st.state == job_state::completed);
      CHECK(st.raw_state == "exited 0");
    }
    for (int i = 0; i < 3; ++i)
      CHECK(read_file(dir / ("sim" + std::to_string(i) + ".out")) == "step " + std::to_string(i) + "\n");
    const std::string srun_log = read_file(dir / "srun.log");
    CHECK(srun_log.find("--jobid=77 --job-name=sim1 --nodes=1 --ntasks=1 --exact --chdir=" + dir.path +
                        " sh -c echo step $MELISSA_SIM_ID\n") != std::string::npos);

    // A step submitted while the allocation runs starts at once; cancel stops its srun.
    job_request slow = simple_request("slow", dir);
    slow.argv = {"sleep", "100"};
    slow.env = {{"FAKE_SRUN_LOG", dir / "srun.log"}};
    const auto slow_id = b.submit(slow);
    CHECK(b.poll({slow_id})[0].state == job_state::running);
    b.cancel(slow_id);
    const job_status sc = wait_final(b, slow_id);
    CHECK(sc.state == job_state::cancelled);
    CHECK(sc.raw_state == "signal 15");

    // The server is a job of its own, not a step.
    job_request server = simple_request("server", dir);
    server.kind = job_kind::server;
    fake.calls.clear();
    CHECK(b.submit(server) == "500");
    REQUIRE(fake.calls.size() == 1);
    CHECK(fake.calls[0].back() == dir / "server.out.sbatch");

    // The allocation ends (time limit) while a step waits: a new allocation.
    allocation_state = "TIMEOUT";
    b.poll({});
    job_request late = simple_request("late", dir);
    late.argv = {"true"};
    late.env = {{"FAKE_SRUN_LOG", dir / "srun.log"}};
    fake.calls.clear();
    const auto late_id = b.submit(late);
    CHECK(fake.count("sbatch") == 1);  // a new allocation
    CHECK(b.allocation_id() == "78");
    allocation_state = "PENDING";
    CHECK(b.poll({late_id})[0].state == job_state::pending);
    fake.calls.clear();
  }
  // The destructor gives the allocation back.
  REQUIRE(fake.calls.size() >= 1);
  CHECK(fake.calls.back() == std::vector<std::string>{"scancel", "78"});
}

TEST_CASE("slurm: schedule-in-schedule: an allocation that ends while steps wait is replaced by poll") {
  fake_srun srun;
  temp_dir dir;
  fake_runner fake;
  int next_id = 50;
  fake.answer = [&](const std::vector<std::string>& argv) {
    if (argv[0] == "sbatch") return ok(std::to_string(next_id++) + "\n");
    return ok("");  // squeue: the allocation is gone (e.g. cancelled by an admin, purged)
  };
  slurm_options o;
  o.schedule_in_schedule = true;
  slurm_backend b(fake.runner(), o);
  const auto id = b.submit(simple_request("a", dir));
  CHECK(b.allocation_id() == "50");
  fake.calls.clear();
  const auto s = b.poll({id});
  CHECK(s[0].state == job_state::pending);
  CHECK(fake.count("squeue") == 1);
  CHECK(fake.count("sbatch") == 1);
  CHECK(fake.count("sacct") == 0);  // the allocation's end needs no accounting
  CHECK(b.allocation_id() == "51");
}

TEST_CASE("slurm: an id that is not a Slurm job id reads failed without asking Slurm") {
  fake_runner fake;
  slurm_backend b(fake.runner());
  const auto s = b.poll({"step-99", "12;x", ""});
  CHECK(fake.calls.empty());
  for (const auto& st : s) {
    CHECK(st.state == job_state::failed);
    CHECK(st.raw_state == "unknown job id");
  }
  b.cancel("not-an-id");
  CHECK(fake.calls.empty());
  CHECK(slurm::is_job_id("123"));
  CHECK(slurm::is_job_id("123_4"));
  CHECK(slurm::is_job_id("123+1"));
  CHECK_FALSE(slurm::is_job_id("123_"));
  CHECK_FALSE(slurm::is_job_id("-1"));
  CHECK_FALSE(slurm::is_job_id("12,13"));
}

TEST_CASE("slurm: secret variables reach the job from an owner-only file, never the script") {
  temp_dir dir;
  fake_runner fake;
  fake.answer = [](const std::vector<std::string>&) { return ok("4242\n"); };
  slurm_backend b(fake.runner());
  job_request r = simple_request("secret", dir);
  r.env = {{"MELISSA_SIM_ID", "3"}};
  r.secret_env = {{"MELISSA_TICKET", "00ff00ff"}};
  CHECK(b.submit(r) == "4242");
  const std::string script_path = fake.calls.back().back();
  std::ifstream script_in(script_path);
  const std::string script((std::istreambuf_iterator<char>(script_in)), {});
  CHECK(script.find("00ff00ff") == std::string::npos);
  CHECK(script.find("export MELISSA_SIM_ID='3'\n. '" + script_path + ".env' || exit 1\n") !=
        std::string::npos);
  std::ifstream env_in(script_path + ".env");
  const std::string env((std::istreambuf_iterator<char>(env_in)), {});
  CHECK(env == "export MELISSA_TICKET='00ff00ff'\n");
  struct stat st {};
  REQUIRE(::stat((script_path + ".env").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("slurm arrays: grouping by placement, at most array_size each, in order") {
  temp_dir dir;
  std::vector<job_request> r;
  for (int i = 0; i < 7; ++i) r.push_back(simple_request("c" + std::to_string(i), dir));
  r[2].settings.tasks = 2;   // another placement: an array of its own
  r[5].kind = job_kind::server;
  using groups = std::vector<std::vector<std::size_t>>;
  CHECK(slurm::array_groups(r, 3) == groups{{0, 1, 3}, {2}, {4, 6}, {5}});
  CHECK(slurm::array_groups(r, 1) == groups{{0}, {1}, {2}, {3}, {4}, {5}, {6}});
  CHECK(slurm::array_groups(r, 0) == groups{{0}, {1}, {2}, {3}, {4}, {5}, {6}});
  CHECK(slurm::array_groups({}, 4).empty());
  r[6].workdir = "/elsewhere";
  CHECK(slurm::array_groups(r, 100) == groups{{0, 1, 3, 4}, {2}, {5}, {6}});
}

TEST_CASE("slurm arrays: one sbatch --array, a script that picks each task's env, logs and command") {
  temp_dir dir;
  fake_runner fake;
  fake.answer = [](const std::vector<std::string>&) { return ok("777\n"); };
  slurm_options o;
  o.array_size = 2;
  slurm_backend b(fake.runner(), o);
  std::vector<job_request> r;
  for (int i = 0; i < 3; ++i) {
    r.push_back(simple_request("sim" + std::to_string(i), dir));
    r.back().argv.push_back("p" + std::to_string(i));
    r.back().env["MELISSA_SIM_ID"] = std::to_string(i);
    r.back().secret_env["MELISSA_TICKET"] = "t" + std::to_string(i);
  }
  const auto out = b.submit_many(r);
  REQUIRE(out.size() == 3);
  // 2 in one array, the third alone: a plain sbatch, a plain id.
  CHECK(out[0].id == "777_0");
  CHECK(out[1].id == "777_1");
  CHECK(out[2].id == "777");
  for (const auto& x : out) CHECK(x.error == "");
  REQUIRE(fake.count("sbatch") == 2);
  const std::string script_path = dir / "sim0.out.sbatch-array";
  const std::vector<std::string> expected = {
      "sbatch", "--parsable", "--job-name=sim0-array", "--output=" + dir / "slurm-array-%A.log",
      "--error=" + dir / "slurm-array-%A.log", "--export=ALL", "--nodes=1", "--ntasks=1", "--array=0-1",
      "--open-mode=append", script_path};
  CHECK(fake.calls[0] == expected);
  CHECK(slurm::array_sbatch_command(r[0], 2, dir / "slurm-array-%A.log", script_path) == expected);
  std::string submitted;
  for (const auto& w : expected) submitted += (submitted.empty() ? "" : " ") + ("'" + w + "'");
  CHECK(read_file(script_path) ==
        "#!/bin/bash\n"
        "# Melissa job array of 2 client jobs\n"
        "# submitted with: " + submitted + "\n"
        "case \"$SLURM_ARRAY_TASK_ID\" in\n"
        "0)\n"
        "  # sim0\n"
        "  export MELISSA_SIM_ID='0'\n"
        "  . '" + script_path + ".0.env' || exit 1\n"
        "  exec >'" + dir / "sim0.out" + "' || exit 1\n"
        "  exec 2>'" + dir / "sim0.err" + "' || exit 1\n"
        "  exec 'solver' 'p0'\n"
        "  ;;\n"
        "1)\n"
        "  # sim1\n"
        "  export MELISSA_SIM_ID='1'\n"
        "  . '" + script_path + ".1.env' || exit 1\n"
        "  exec >'" + dir / "sim1.out" + "' || exit 1\n"
        "  exec 2>'" + dir / "sim1.err" + "' || exit 1\n"
        "  exec 'solver' 'p1'\n"
        "  ;;\n"
        "*)\n"
        "  echo \"melissa: no task $SLURM_ARRAY_TASK_ID in this array\" >&2\n"
        "  exit 1\n"
        "  ;;\n"
        "esac\n");
  // Secrets per task, owner-only, never in the script.
  CHECK(read_file(script_path + ".1.env") == "export MELISSA_TICKET='t1'\n");
  CHECK((std::filesystem::status(script_path + ".1.env").permissions() & std::filesystem::perms::group_read) ==
        std::filesystem::perms::none);
  CHECK(read_file(script_path).find("t1") == std::string::npos);

  // The tasks are polled (squeue -r: one line per task) and cancelled one by one.
  fake.calls.clear();
  fake.answer = [](const std::vector<std::string>& argv) {
    if (argv[0] == "squeue") return ok("777_0|RUNNING\n777_1|PENDING\n");
    return command_result{};
  };
  const auto st = b.poll({"777_0", "777_1"});
  CHECK(fake.calls.at(0) == slurm::squeue_command({"777_0", "777_1"}));
  CHECK(st.at(0).state == job_state::running);
  CHECK(st.at(1).state == job_state::pending);
  b.cancel("777_1");
  CHECK(fake.calls.back() == std::vector<std::string>{"scancel", "777_1"});
}

TEST_CASE("slurm arrays: a refused array fails its tasks only; bad requests fail alone; off: one sbatch each") {
  temp_dir dir;
  fake_runner fake;
  int n = 0;
  fake.answer = [&](const std::vector<std::string>&) {
    return ++n == 1 ? command_result{1, "", "sbatch: error: Batch job submission failed: Invalid partition"}
                    : ok("12\n");
  };
  slurm_options o;
  o.array_size = 8;
  slurm_backend b(fake.runner(), o);
  std::vector<job_request> r;
  for (int i = 0; i < 3; ++i) r.push_back(simple_request("s" + std::to_string(i), dir));
  r[1].argv.clear();                 // refused before any sbatch
  r.push_back(simple_request("srv", dir));
  r.back().kind = job_kind::server;  // an sbatch of its own
  const auto out = b.submit_many(r);
  REQUIRE(out.size() == 4);
  CHECK(out[0].id == "");
  CHECK(out[0].error.find("Invalid partition") != std::string::npos);
  CHECK(out[0].error.find("(job array)") != std::string::npos);
  CHECK(out[2].error == out[0].error);
  CHECK(out[1].error == "client job 's1': the command is empty");
  CHECK(out[3].id == "12");
  CHECK(fake.count("sbatch") == 2);

  fake.calls.clear();
  n = 1;
  slurm_backend off(fake.runner(), slurm_options{});
  const auto plain = off.submit_many({simple_request("a", dir), simple_request("b", dir)});
  CHECK(fake.count("sbatch") == 2);
  CHECK(plain.at(0).id == "12");
  CHECK(plain.at(1).id == "12");
}

TEST_CASE("slurm arrays: squeue and sacct lines of array tasks, one line for tasks not started") {
  CHECK(slurm::array_task_ids("123_4") == std::vector<std::string>{"123_4"});
  CHECK(slurm::array_task_ids(" 123 ") == std::vector<std::string>{"123"});
  CHECK(slurm::array_task_ids("123_[4-6,9%2]") == std::vector<std::string>{"123_4", "123_5", "123_6", "123_9"});
  CHECK(slurm::array_task_ids("123_[7]") == std::vector<std::string>{"123_7"});
  CHECK(slurm::array_task_ids("123_[6-4]") == std::vector<std::string>{"123_[6-4]"});  // not a list
  CHECK(slurm::array_task_ids("123_[x]") == std::vector<std::string>{"123_[x]"});
  CHECK(slurm::array_task_ids("123_[0-99999999]") == std::vector<std::string>{"123_[0-99999999]"});
  // `sacct -n -P -X -o JobID,State,ExitCode -j 200_0,...` in the format of
  // sacct(1) for arrays (no accounting daemon here to record one): a task
  // that ran has a line of its own, tasks not started yet share one.
  const auto records = slurm::parse_sacct(
      "200_0|COMPLETED|0:0\n"
      "200_1|FAILED|2:0\n"
      "200_2|CANCELLED by 0|0:15\n"
      "200_3|NODE_FAIL|1:0\n"
      "200_3|COMPLETED|0:0\n"  // requeued: the last line counts
      "200_[4-5,7%2]|PENDING|0:0\n");
  REQUIRE(records.size() == 7);
  CHECK(records.at("200_0").state == "COMPLETED");
  CHECK(records.at("200_1").exit_code == 2);
  CHECK(records.at("200_2").state == "CANCELLED");
  CHECK(records.at("200_2").signal == 15);
  CHECK(records.at("200_3").state == "COMPLETED");
  for (const char* id : {"200_4", "200_5", "200_7"}) CHECK(records.at(id).state == "PENDING");
  CHECK_FALSE(records.count("200_6"));
  const auto states = slurm::parse_squeue("300_0|RUNNING\n300_[1-2]|PENDING\n");
  CHECK(states == std::map<std::string, std::string>{{"300_0", "RUNNING"}, {"300_1", "PENDING"},
                                                     {"300_2", "PENDING"}});
  // Recorded from Slurm 22.05.8 (the test cluster of tests/slurm): `squeue -h
  // -t all -o '%i|%T' -j 10` (no -r) of `sbatch --hold --array=0-3%2`.
  const auto held = slurm::parse_squeue("10_[0-3%2]|PENDING\n");
  CHECK(held == std::map<std::string, std::string>{
                    {"10_0", "PENDING"}, {"10_1", "PENDING"}, {"10_2", "PENDING"}, {"10_3", "PENDING"}});
}

TEST_CASE("slurm arrays: tasks gone from squeue are looked up in sacct by their N_i ids") {
  temp_dir dir;
  fake_runner fake;
  fake.answer = [&](const std::vector<std::string>& argv) {
    if (argv[0] == "sbatch") return ok("77\n");
    if (argv[0] == "squeue") return ok("77_5|RUNNING\n");  // the others left slurmctld's memory
    return ok("77_0|COMPLETED|0:0\n77_1|FAILED|2:0\n77_2|CANCELLED by 0|0:15\n77_[3-4]|PENDING|0:0\n");
  };
  slurm_options o;
  o.array_size = 8;
  slurm_backend b(fake.runner(), o);
  std::vector<job_request> r;
  for (int i = 0; i < 7; ++i) r.push_back(simple_request("t" + std::to_string(i), dir));
  const auto submitted = b.submit_many(r);
  std::vector<std::string> ids;
  for (const auto& s : submitted) ids.push_back(s.id);
  REQUIRE(ids == std::vector<std::string>{"77_0", "77_1", "77_2", "77_3", "77_4", "77_5", "77_6"});
  b.cancel(ids[2]);
  fake.calls.clear();
  const auto st = b.poll(ids);
  REQUIRE(fake.count("sacct") == 1);
  CHECK(job_list(fake.calls.back()) == "77_0,77_1,77_2,77_3,77_4,77_6");
  REQUIRE(st.size() == 7);
  CHECK(st[0].state == job_state::completed);
  CHECK(st[0].exit_code == 0);
  CHECK(st[1].state == job_state::failed);
  CHECK(st[1].exit_code == 2);
  CHECK(st[2].state == job_state::cancelled);  // ours
  CHECK(st[3].state == job_state::pending);
  CHECK(st[4].state == job_state::pending);
  CHECK(st[5].state == job_state::running);
  CHECK(st[6].state == job_state::failed);
  CHECK(st[6].raw_state == "NOT_FOUND");
}
