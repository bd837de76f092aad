// The shell's command language: every command, and the errors a user sees.
#include <doctest/doctest.h>

#include "actors/shell_endpoint/shell_command.hpp"

using namespace melissa::shell;

namespace {

shell_command ok(const char* line) {
  const auto r = parse_command(line);
  INFO(line);
  REQUIRE_MESSAGE(r.ok(), r.error());
  return r.command();
}

std::string error(const char* line) {
  const auto r = parse_command(line);
  INFO(line);
  REQUIRE(!r.ok());
  return r.error();
}

}  // namespace

TEST_CASE("commands without arguments") {
  CHECK(ok("status").kind == command_kind::status);
  CHECK(ok("pause").kind == command_kind::pause);
  CHECK(ok("resume").kind == command_kind::resume);
  CHECK(ok("stop").kind == command_kind::stop);
  CHECK(ok("help").kind == command_kind::help);
  CHECK(ok("?").kind == command_kind::help);
  CHECK(ok("help kill").kind == command_kind::help);
}

TEST_CASE("blanks and case do not matter") {
  CHECK(ok("  status \t").kind == command_kind::status);
  CHECK(ok("STATUS").kind == command_kind::status);
  CHECK(ok("Jobs Running").state_filter == "running");
  CHECK(ok("kill\t 3 ").job_id == 3);
}

TEST_CASE("jobs with and without a state filter") {
  CHECK(ok("jobs").kind == command_kind::jobs);
  CHECK(ok("jobs").state_filter.empty());
  for (const auto& state : job_states()) {
    const auto line = "jobs " + state;
    CHECK(ok(line.c_str()).state_filter == state);
  }
  CHECK(error("jobs sleeping") ==
        "jobs: unknown state 'sleeping'; states: pending, running, completed, failed, cancelled");
  CHECK(error("jobs running failed") == "jobs takes at most one state, got extra 'failed'");
}

TEST_CASE("job and kill take one job id") {
  CHECK(ok("job 12").kind == command_kind::job);
  CHECK(ok("job 12").job_id == 12);
  CHECK(ok("kill 0").job_id == 0);
  CHECK(ok("kill 4294967295").job_id == 4294967295u);
  CHECK(error("kill x") == "kill expects a job id, got 'x'");
  CHECK(error("kill") == "kill expects a job id (usage: kill <id>)");
  CHECK(error("job") == "job expects a job id (usage: job <id>)");
  CHECK(error("kill -1") == "kill expects a job id, got '-1'");
  CHECK(error("kill +3") == "kill expects a job id, got '+3'");
  CHECK(error("kill 3.0") == "kill expects a job id, got '3.0'");
  CHECK(error("kill 4294967296") == "kill expects a job id, got '4294967296'");
  CHECK(error("kill 99999999999999999999999") ==
        "kill expects a job id, got '99999999999999999999999'");
  CHECK(error("kill 3 4") == "kill expects one job id, got extra '4'");
}

TEST_CASE("set job_limit takes an integer >= 1") {
  const auto cmd = ok("set job_limit 7");
  CHECK(cmd.kind == command_kind::set);
  CHECK(cmd.key == "job_limit");
  CHECK(cmd.value == "7");
  CHECK(ok("set JOB_LIMIT 007").value == "7");
  CHECK(error("set job_limit 0") == "set job_limit expects an integer >= 1, got '0'");
  CHECK(error("set job_limit many") == "set job_limit expects an integer >= 1, got 'many'");
  CHECK(error("set job_limit -2") == "set job_limit expects an integer >= 1, got '-2'");
  CHECK(error("set job_limit 1 2") == "set expects one value, got extra '2'");
}

TEST_CASE("set refuses other keys and names the settable ones") {
  CHECK(error("set seed 3") == "cannot set 'seed'; settable keys: job_limit");
  CHECK(error("set job_limit") ==
        "set expects a key and a value (usage: set <key> <value>); settable keys: job_limit");
  CHECK(error("set") ==
        "set expects a key and a value (usage: set <key> <value>); settable keys: job_limit");
}

TEST_CASE("unknown commands, extra arguments, empty lines") {
  CHECK(error("stat") == "unknown command 'stat'; try: help");
  CHECK(error("quit") == "unknown command 'quit'; try: help");
  CHECK(error("status now") == "status takes no arguments, got 'now'");
  CHECK(error("pause 3") == "pause takes no arguments, got '3'");
  CHECK(error("") == "empty command; try: help");
  CHECK(error("   ") == "empty command; try: help");
}

TEST_CASE("train, with or without --watch [SECONDS]") {
  auto cmd = ok("train");
  CHECK(cmd.kind == command_kind::train);
  CHECK(!cmd.watch);
  cmd = ok("train --watch");
  CHECK(cmd.watch);
  CHECK(cmd.watch_interval_s == default_watch_interval_s);
  CHECK(ok("TRAIN -W 5").watch_interval_s == 5.0);
  CHECK(ok("train --watch 0.5").watch_interval_s == 0.5);
  CHECK(ok("train --watch 0.2").watch_interval_s == doctest::Approx(0.2));
  CHECK(ok("train --watch 10.25").watch_interval_s == 10.25);
  CHECK(ok("train --watch 3600").watch_interval_s == 3600.0);
  CHECK(ok("train --watch 3.").watch_interval_s == 3.0);
  for (const char* bad : {"0", "0.1", "3601", "-1", "+2", "1e2", "2s", ".", "1.2.3", "x"}) {
    const auto line = std::string("train --watch ") + bad;
    CHECK(error(line.c_str()) ==
          "train --watch expects seconds between 0.2 and 3600, got '" + std::string(bad) + "'");
  }
  CHECK(error("train --watch 2 3") == "train --watch expects one number of seconds, got extra '3'");
  CHECK(error("train now") == "train takes only --watch [SECONDS], got 'now'");
  CHECK(error("train 2") == "train takes only --watch [SECONDS], got '2'");
}

TEST_CASE("buffer and steering take no arguments") {
  CHECK(ok("buffer").kind == command_kind::buffer);
  CHECK(ok("Steering").kind == command_kind::steering);
  CHECK(ok("stats").kind == command_kind::stats);
  CHECK(ok("Checkpoint").kind == command_kind::checkpoint);
  CHECK(error("checkpoint now") == "checkpoint takes no arguments, got 'now'");
  CHECK(error("buffer 0") == "buffer takes no arguments, got '0'");
  CHECK(error("steering --watch") == "steering takes no arguments, got '--watch'");
}

TEST_CASE("the help text names every command") {
  const auto& help = help_text();
  for (const char* word : {"status", "jobs", "job ID", "kill ID", "pause", "resume",
                           "set job_limit N", "stop", "train [--watch [S]]", "buffer",
                           "steering", "checkpoint", "help", "quit"})
    CHECK_MESSAGE(help.find(word) != std::string::npos, word);
  for (auto kind : {command_kind::status, command_kind::jobs, command_kind::job,
                    command_kind::kill, command_kind::pause, command_kind::resume,
                    command_kind::set, command_kind::stop, command_kind::train,
                    command_kind::buffer, command_kind::steering, command_kind::help,
                    command_kind::checkpoint})
    CHECK(parse_command(to_string(kind) + (kind == command_kind::job || kind == command_kind::kill
                                               ? " 1"
                                               : kind == command_kind::set ? " job_limit 1" : ""))
              .ok());
}
