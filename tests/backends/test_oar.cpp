// The OAR backend with a fake command_runner: the exact oarsub command line
// and job script, ONE oarstat per poll however many jobs, the state mapping,
// and the parsing of outputs recorded from a real OAR 2.5.9 or written from
// its sources (tests/backends/oar/README.md names the source of each).
#include <doctest/doctest.h>

#include <filesystem>

#include "backends/scheduler/oar_backend.hpp"
#include "helpers.hpp"

using namespace melissa::scheduler;
using namespace melissa::scheduler::testing;

namespace {

command_result ok(const std::string& out) { return command_result{0, out, ""}; }

job_request oar_request(const temp_dir& dir) {
  job_request r;
  r.name = "melissa-heat-sim3-a1";
  r.argv = {"melissa-heat", "--grid", "64", "0.5"};
  r.env = {{"MELISSA_SIM_ID", "3"}};
  r.workdir = "/scratch/study";
  r.stdout_path = dir / "jobs/3.out";
  r.stderr_path = dir / "jobs/3.err";
  r.settings.partition = "production";
  r.settings.account = "melissa";
  r.settings.time_limit = "1-02:03:04";
  r.settings.nodes = 2;
  r.settings.tasks = 6;
  r.settings.extra = {"-p", "cluster='grisou'"};
  return r;
}

std::vector<std::string> ids_of(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == "-j") out.push_back(argv[i + 1]);
  return out;
}

}  // namespace

TEST_CASE("oar: resource requests") {
  job_settings s;
  CHECK(oar::resource_request(s) == "/nodes=1/core=1");
  s.tasks = 6;
  s.nodes = 4;  // cores per node rounded up: 6 ranks on 4 nodes need 2 cores each
  CHECK(oar::resource_request(s) == "/nodes=4/core=2");
  s.time_limit = "00:01:00";
  CHECK(oar::resource_request(s) == "/nodes=4/core=2,walltime=0:01:00");
  s.time_limit = "1-02:03:04";  // OAR has no days: 26 hours
  CHECK(oar::resource_request(s) == "/nodes=4/core=2,walltime=26:03:04");
  s.gres = "/gpu=1";
  CHECK(oar::resource_request(s) == "/nodes=4/core=2/gpu=1,walltime=26:03:04");
  s.time_limit = "90 minutes";
  CHECK_THROWS_AS(oar::resource_request(s), backend_error);
}

TEST_CASE("oar: the exact oarsub command line and job script") {
  temp_dir dir;
  fake_runner fake;
  fake.answer = [](const std::vector<std::string>&) { return ok(source_file("tests/backends/oar/oarsub.txt")); };
  oar_backend b(fake.runner());
  const job_request r = oar_request(dir);
  CHECK(b.submit(r) == "4242");
  REQUIRE(fake.calls.size() == 1);
  const std::string script_path = dir / "jobs/3.out.oar";
  const std::vector<std::string> expected = {
      "oarsub", "-n", "melissa-heat-sim3-a1", "-O", dir / "jobs/3.out", "-E", dir / "jobs/3.err",
      "-d", "/scratch/study", "-l", "/nodes=2/core=3,walltime=26:03:04", "-q", "production",
      "--project", "melissa", "-p", "cluster='grisou'", "'" + script_path + "'"};
  CHECK(fake.calls[0] == expected);
  const std::string script = read_file(script_path);
  const std::string last_lines = script.substr(script.find("export "));
  CHECK(last_lines ==
        "export MELISSA_SIM_ID='3'\n"
        "cd '/scratch/study' || exit 1\n"
        "exec mpirun -np 6 -machinefile \"$OAR_NODEFILE\" --mca plm_rsh_agent oarsh "
        "'melissa-heat' '--grid' '64' '0.5'\n");
  CHECK(script.rfind("#!/bin/bash\n# Melissa client job melissa-heat-sim3-a1\n# submitted with: 'oarsub'", 0) == 0);
  CHECK((std::filesystem::status(script_path).permissions() & std::filesystem::perms::owner_exec) !=
        std::filesystem::perms::none);

  // One task: the program itself; no queue, project or walltime: none given.
  job_request one;
  one.name = "one";
  one.argv = {"solver"};
  CHECK(oar::oarsub_command(one, "/s.oar") ==
        std::vector<std::string>{"oarsub", "-n", "one", "-l", "/nodes=1/core=1", "'/s.oar'"});
  CHECK(oar::job_script(one, {"oarsub"}).find("\nexec 'solver'\n") != std::string::npos);
}

TEST_CASE("oar: oarsub output and errors") {
  CHECK(oar::parse_oarsub_id(source_file("tests/backends/oar/oarsub.txt")) == "4242");
  CHECK(oar::parse_oarsub_id("OAR_JOB_ID=17") == "17");
  CHECK(oar::parse_oarsub_id("OAR_JOB_ID=\n") == "");
  CHECK(oar::parse_oarsub_id("[ADMISSION RULE] Error\n") == "");

  temp_dir dir;
  fake_runner fake;
  oar_backend b(fake.runner());
  // The default admission rule that refuses root (oar 2.5.9, *_default_admission_rules.sql).
  fake.answer = [](const std::vector<std::string>&) {
    return command_result{1, "", "[ADMISSION RULE] root and oar users are not allowed to submit jobs.\n"};
  };
  CHECK_THROWS_WITH_AS(
      b.submit(oar_request(dir)),
      "client job 'melissa-heat-sim3-a1': oarsub failed (exit 1): [ADMISSION RULE] root and oar users are not "
      "allowed to submit jobs.",
      backend_error);
  fake.answer = [](const std::vector<std::string>&) { return ok("something else\n"); };
  CHECK_THROWS_WITH_AS(b.submit(oar_request(dir)), doctest::Contains("oarsub printed no OAR_JOB_ID"), backend_error);
  job_request bad_time = oar_request(dir);
  bad_time.settings.time_limit = "soon";
  CHECK_THROWS_WITH_AS(b.submit(bad_time), doctest::Contains("client job 'melissa-heat-sim3-a1': time limit \"soon\""),
                       backend_error);
}

TEST_CASE("oar: every state maps to the launcher's state") {
  for (const char* s : {"Waiting", "toLaunch", "Launching", "Hold", "toAckReservation"}) {
    CAPTURE(s);
    CHECK(oar::map_state(s, std::nullopt, false) == job_state::pending);
  }
  for (const char* s : {"Running", "Finishing", "Suspended", "Resuming"}) {
    CAPTURE(s);
    CHECK(oar::map_state(s, std::nullopt, false) == job_state::running);
  }
  CHECK(oar::map_state("Terminated", 0, false) == job_state::completed);
  CHECK(oar::map_state("Terminated", 0, true) == job_state::completed);
  CHECK(oar::map_state("Terminated", 256, false) == job_state::failed);
  CHECK(oar::map_state("Terminated", 256, true) == job_state::cancelled);
  CHECK(oar::map_state("Terminated", std::nullopt, false) == job_state::failed);
  CHECK(oar::map_state("Error", std::nullopt, false) == job_state::failed);
  CHECK(oar::map_state("toError", std::nullopt, false) == job_state::failed);
  CHECK(oar::map_state("Error", std::nullopt, true) == job_state::cancelled);
  CHECK(oar::map_state("SomethingNew", std::nullopt, false) == job_state::running);
}

TEST_CASE("oar: oarstat -f -J output recorded from OAR 2.5.9's code") {
  const auto records = oar::parse_oarstat(source_file("tests/backends/oar/oarstat-full.json"));
  REQUIRE(records.size() == 6);
  const auto done = oar::to_status("4243", records.at("4243"), false);
  CHECK(done.state == job_state::completed);
  CHECK(done.raw_state == "Terminated");
  CHECK(done.exit_code == 0);
  const auto exit1 = oar::to_status("4244", records.at("4244"), false);  // exit_code 256: exit 1
  CHECK(exit1.state == job_state::failed);
  CHECK(exit1.exit_code == 1);
  CHECK_FALSE(exit1.signal);
  const auto walltime = oar::to_status("4245", records.at("4245"), false);
  CHECK(walltime.state == job_state::failed);
  CHECK(walltime.raw_state == "Error");
  CHECK(oar::to_status("4246", records.at("4246"), false).state == job_state::running);
  CHECK(oar::to_status("4247", records.at("4247"), false).state == job_state::pending);
  const auto killed = oar::to_status("4248", records.at("4248"), false);  // "9": signal 9
  CHECK(killed.state == job_state::failed);
  CHECK(killed.signal == 9);
  CHECK_FALSE(killed.exit_code);

  CHECK(oar::parse_oarstat(source_file("tests/backends/oar/oarstat-empty.txt")).empty());
  CHECK_THROWS_AS(oar::parse_oarstat("Job id     Name ...\n"), backend_error);
  CHECK_THROWS_AS(oar::parse_oarstat("[1, 2]"), backend_error);
  CHECK_THROWS_AS(oar::parse_oarstat(R"({"1": {"exit_code": 0}})"), backend_error);
  CHECK_THROWS_AS(oar::parse_oarstat(R"({"1": {"state": "Terminated", "exit_code": "x"}})"), backend_error);
}

TEST_CASE("oar: oarstat -f -J output recorded from a real OAR 2.5.9") {
  // tests/backends/oar/oarstat-real.json: jobs 1 (exit 3), 2 (exit 0),
  // 3 (running), 4 (oardel), 5 (waiting for 2 cores); numbers are JSON numbers.
  const auto records = oar::parse_oarstat(source_file("tests/backends/oar/oarstat-real.json"));
  REQUIRE(records.size() == 5);
  const auto exit3 = oar::to_status("1", records.at("1"), false);
  CHECK(exit3.state == job_state::failed);
  CHECK(exit3.raw_state == "Terminated");
  CHECK(exit3.exit_code == 3);
  CHECK(oar::to_status("2", records.at("2"), false).state == job_state::completed);
  CHECK(oar::to_status("3", records.at("3"), false).state == job_state::running);
  const auto deleted = oar::to_status("4", records.at("4"), true);
  CHECK(deleted.state == job_state::cancelled);
  CHECK(deleted.raw_state == "Error");
  CHECK(oar::to_status("4", records.at("4"), false).state == job_state::failed);
  CHECK(oar::to_status("5", records.at("5"), false).state == job_state::pending);
  // A job killed at its walltime: Error, no exit code.
  const auto walltime = oar::parse_oarstat(source_file("tests/backends/oar/oarstat-real-walltime.json"));
  const auto w = oar::to_status("6", walltime.at("6"), false);
  CHECK(w.state == job_state::failed);
  CHECK(w.raw_state == "Error");
  CHECK_FALSE(w.exit_code);
}

TEST_CASE("oar: one oarstat per poll of 50 jobs; final states are not asked again") {
  temp_dir dir;
  fake_runner fake;
  int next_id = 1000;
  fake.answer = [&](const std::vector<std::string>& argv) {
    if (argv[0] == "oarsub") return ok("OAR_JOB_ID=" + std::to_string(next_id++) + "\n");
    // Jobs ending in 0-4 run; 5-7 ended well, 8 failed; 9 unknown to OAR.
    std::string out = "{";
    for (const auto& id : ids_of(argv)) {
      const int last = std::stoi(id) % 10;
      if (last == 9) continue;
      const char* body = last < 5    ? R"({"state" : "Running", "exit_code" : null})"
                         : last < 8  ? R"({"state" : "Terminated", "exit_code" : "0"})"
                                     : R"({"state" : "Terminated", "exit_code" : 768})";
      out += std::string(out.size() > 1 ? ",\n" : "\n") + "   \"" + id + "\" : " + body;
    }
    return ok(out + "\n}\n");
  };
  oar_backend b(fake.runner());
  std::vector<std::string> ids;
  for (int i = 0; i < 50; ++i) {
    job_request r = oar_request(dir);
    r.name = "j" + std::to_string(i);
    ids.push_back(b.submit(r));
  }
  fake.calls.clear();
  const auto s = b.poll(ids);
  REQUIRE(fake.calls.size() == 1);
  CHECK(std::vector<std::string>(fake.calls[0].begin(), fake.calls[0].begin() + 3) ==
        std::vector<std::string>{"oarstat", "-f", "-J"});
  CHECK(ids_of(fake.calls[0]) == ids);
  CHECK(fake.calls[0] == oar::oarstat_command(ids));
  REQUIRE(s.size() == 50);
  CHECK(s[0].state == job_state::running);
  CHECK(s[5].state == job_state::completed);
  CHECK(s[8].state == job_state::failed);
  CHECK(s[8].exit_code == 3);
  CHECK(s[9].state == job_state::failed);
  CHECK(s[9].raw_state == "NOT_FOUND");

  fake.calls.clear();
  b.poll(ids);
  REQUIRE(fake.calls.size() == 1);
  CHECK(ids_of(fake.calls[0]).size() == 25);  // only the running ones
}

TEST_CASE("oar: cancel runs oardel; an already killed job is not an error") {
  fake_runner fake;
  oar_backend b(fake.runner());
  fake.answer = [](const std::vector<std::string>& argv) {
    if (argv[0] == "oarstat") return ok(R"({"7" : {"state" : "Error", "exit_code" : null}})");
    return ok("Deleting the job = 7 ...REGISTERED.\nThe job(s) [ 7 ] will be deleted in the near future.\n");
  };
  b.cancel("7");
  CHECK(fake.calls.back() == std::vector<std::string>{"oardel", "7"});
  const auto s = b.poll({"7"});
  CHECK(s[0].state == job_state::cancelled);
  CHECK(s[0].raw_state == "Error");
  fake.calls.clear();
  b.cancel("7");  // final: nothing to do
  CHECK(fake.calls.empty());

  // oardel 2.5.9 exits 6 for "This job was already killed".
  fake.answer = [](const std::vector<std::string>&) {
    return command_result{6, "Deleting the job = 8 ...ERROR.\n", "Cannot frag 8 ; This job was already killed.\n"};
  };
  CHECK_NOTHROW(b.cancel("8"));
  fake.answer = [](const std::vector<std::string>&) {
    return command_result{1, "Deleting the job = 9 ...ERROR.\n", "Cannot frag 9 ; You are not the right user.\n"};
  };
  CHECK_THROWS_WITH_AS(b.cancel("9"), "oardel failed (exit 1): Cannot frag 9 ; You are not the right user.",
                       backend_error);
}

TEST_CASE("oar: a failing oarstat is an error") {
  fake_runner fake;
  oar_backend b(fake.runner());
  fake.answer = [](const std::vector<std::string>&) {
    return command_result{1, "", "DB connection error, exiting.\n"};
  };
  CHECK_THROWS_WITH_AS(b.poll({"1"}), "oarstat failed (exit 1): DB connection error, exiting.", backend_error);
}

TEST_CASE("oar: an id that is not an OAR job id reads failed without asking OAR") {
  fake_runner fake;
  oar_backend b(fake.runner());
  const auto s = b.poll({"abc", "1 2"});
  CHECK(fake.calls.empty());
  CHECK(s[0].state == job_state::failed);
  CHECK(s[0].raw_state == "unknown job id");
  b.cancel("abc");
  CHECK(fake.calls.empty());
}
