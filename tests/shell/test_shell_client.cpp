// melissa-shell's pure parts: finding the study, and reading its answers.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "apps/melissa-shell/shell_client.hpp"

using namespace melissa::shell;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/melissa-shell-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

int exit_status_of(const std::string& target, std::optional<std::string> token, std::string& msg) {
  try {
    resolve_target(target, token);
  } catch (const target_error& e) {
    msg = e.what();
    return e.exit_status;
  }
  return -1;
}

// The launcher's status answer (actors/launcher), in the order nlohmann keeps.
const char* launcher_status = R"({"ok": true, "study": "heat", "state": "running",
  "elapsed_s": 42.5, "job_limit": 2, "paused": false, "output_dir": "/tmp/heat",
  "server_ranks": 1, "steps_per_s": 56.789, "steps_stored": 1234,
  "simulations": {"requested": 20, "completed": 5, "running": 2, "pending": 12,
                  "failed": 1, "retries": 0}})";

}  // namespace

TEST_CASE("host:port") {
  std::string host;
  std::uint16_t port = 0;
  CHECK(parse_host_port("127.0.0.1:4000", host, port));
  CHECK(host == "127.0.0.1");
  CHECK(port == 4000);
  CHECK(parse_host_port("node12.cluster:65535", host, port));
  CHECK(host == "node12.cluster");
  CHECK(parse_host_port("[::1]:80", host, port));
  CHECK(host == "::1");
  CHECK(port == 80);
  CHECK(!parse_host_port("::1:80", host, port));  // ambiguous without brackets
  CHECK(!parse_host_port("localhost", host, port));
  CHECK(!parse_host_port(":80", host, port));
  CHECK(!parse_host_port("h:0", host, port));
  CHECK(!parse_host_port("h:65536", host, port));
  CHECK(!parse_host_port("h:8x", host, port));
  CHECK(!parse_host_port("h:", host, port));
  CHECK(!parse_host_port("[]:80", host, port));
}

TEST_CASE("target: an output directory gives address and token from shell.json") {
  temp_dir dir;
  write_shell_file(dir.path, "127.0.0.1", 4100, "filetoken");
  auto a = resolve_target(dir.path.string(), std::nullopt);
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 4100);
  CHECK(a.token == "filetoken");
  // --token wins over the file's.
  CHECK(resolve_target(dir.path.string(), std::string("given")).token == "given");
  // The file itself works too.
  CHECK(resolve_target((dir.path / "shell.json").string(), std::nullopt).port == 4100);
}

TEST_CASE("target: a wildcard bind address in shell.json means this host's loopback") {
  temp_dir dir;
  write_shell_file(dir.path, "0.0.0.0", 4100, "t");
  CHECK(resolve_target(dir.path.string(), std::nullopt).host == "127.0.0.1");
  write_shell_file(dir.path, "::", 4100, "t");
  CHECK(resolve_target(dir.path.string(), std::nullopt).host == "::1");
}

TEST_CASE("target: errors say what is missing, with the right exit status") {
  temp_dir dir;
  std::string msg;
  CHECK(exit_status_of(dir.path.string(), std::nullopt, msg) == exit_unreachable);
  CHECK(msg == "no shell.json in " + dir.path.string() +
                   ": is the study running? (melissa-run writes it once the shell endpoint is up)");
  CHECK(exit_status_of("127.0.0.1:4000", std::nullopt, msg) == exit_usage);
  CHECK(msg.find("--token is required with host:port") == 0);
  CHECK(exit_status_of("no-such-dir", std::nullopt, msg) == exit_usage);
  CHECK(msg == "'no-such-dir' is neither a study output directory (with shell.json) nor host:port");
  std::ofstream(dir.path / "shell.json") << "{";
  CHECK(exit_status_of(dir.path.string(), std::nullopt, msg) == exit_unreachable);
  CHECK(msg.find("is not valid JSON") != std::string::npos);
  const auto a = resolve_target("127.0.0.1:4000", std::string("tok"));
  CHECK(a.port == 4000);
  CHECK(a.token == "tok");
}

TEST_CASE("values read as text") {
  CHECK(format_value(json(nullptr)) == "-");
  CHECK(format_value(json(true)) == "yes");
  CHECK(format_value(json(false)) == "no");
  CHECK(format_value(json(-3)) == "-3");
  CHECK(format_value(json(7u)) == "7");
  CHECK(format_value(json(56.789)) == "56.79");
  CHECK(format_value(json(42.5)) == "42.5");
  CHECK(format_value(json(3.0)) == "3");
  CHECK(format_value(json("text")) == "text");
  CHECK(format_value(json::array({100.0, 250.5})) == "100, 250.5");
  CHECK(format_value(json::array()) == "-");
}

TEST_CASE("status: key: value lines, known keys first, nested keys dotted") {
  const auto text = render_status(json::parse(launcher_status));
  CHECK(text ==
        "study:                 heat\n"
        "state:                 running\n"
        "paused:                no\n"
        "job_limit:             2\n"
        "simulations.requested: 20\n"
        "simulations.completed: 5\n"
        "simulations.running:   2\n"
        "simulations.pending:   12\n"
        "simulations.failed:    1\n"
        "simulations.retries:   0\n"
        "steps_stored:          1234\n"
        "steps_per_s:           56.79\n"
        "server_ranks:          1\n"
        "elapsed_s:             42.5\n"
        "output_dir:            /tmp/heat\n");
}

TEST_CASE("status: keys nobody planned for still show, after the known ones, sorted") {
  const auto text = render_status(
      json::parse(R"({"ok": true, "zeta": 1, "alpha": "a", "state": "draining"})"));
  CHECK(text == "state: draining\nalpha: a\nzeta:  1\n");
}

TEST_CASE("jobs: a table with fixed columns; times since the start; signals") {
  const auto answer = json::parse(R"({"ok": true, "jobs": [
    {"id": 0, "kind": "server", "state": "running", "raw_state": "running",
     "started_at": 0.1, "ended_at": -1, "exit_code": null, "signal": null},
    {"id": 7, "kind": "client", "sim_id": 3, "attempt": 2, "state": "failed",
     "raw_state": "killed by signal 9", "started_at": 12.25, "ended_at": 80,
     "exit_code": null, "signal": 9, "parameters": [1, 2], "backend_id": 4242}]})");
  CHECK(render_jobs(answer, "") ==
        "id  kind    sim  attempt  state    raw state           exit      started  ended\n"
        "0   server  -    -        running  running             -         0.1s     -\n"
        "7   client  3    2        failed   killed by signal 9  signal 9  12.2s    80.0s\n"
        "2 jobs\n");
}

TEST_CASE("jobs: an empty list says so, naming the filter") {
  const auto empty = json::parse(R"({"ok": true, "jobs": []})");
  CHECK(render_jobs(empty, "") == "no jobs\n");
  CHECK(render_jobs(empty, "failed") == "no failed jobs\n");
  const auto one = json::parse(R"({"ok": true, "jobs": [{"id": 1, "state": "pending"}]})");
  CHECK(render_jobs(one, "").find("\n1 job\n") != std::string::npos);
}

TEST_CASE("job: every field as key: value, the usual ones first") {
  const auto answer = json::parse(R"({"ok": true, "job": {"id": 7, "kind": "client",
    "sim_id": 3, "attempt": 2, "state": "running", "raw_state": "running",
    "started_at": 12.25, "ended_at": -1, "exit_code": null, "signal": null,
    "parameters": [100.5, 200], "connected": true, "backend_id": 4242, "submitted_at": 1}})");
  CHECK(render_job(answer) ==
        "id:           7\n"
        "kind:         client\n"
        "sim_id:       3\n"
        "attempt:      2\n"
        "state:        running\n"
        "raw_state:    running\n"
        "exit_code:    -\n"
        "signal:       -\n"
        "submitted_at: 1.0s\n"
        "started_at:   12.2s\n"
        "ended_at:     -\n"
        "backend_id:   4242\n"
        "connected:    yes\n"
        "parameters:   100.5, 200\n");
}

TEST_CASE("answers: errors go to stderr text, acknowledgements read as their fields") {
  auto r = render_answer(command_kind::kill, R"({"ok": false, "error": "no job 99"})");
  CHECK(!r.ok);
  CHECK(r.text == "error: no job 99\n");
  r = render_answer(command_kind::status, R"({"ok": false, "error": "wrong token"})");
  CHECK(!r.ok);
  CHECK(r.text ==
        "error: wrong token\n"
        "  (the token is in the study's shell.json, readable by its owner; --token overrides it)\n");
  r = render_answer(command_kind::kill, R"({"ok": true, "killed": 3})");
  CHECK(r.ok);
  CHECK(r.text == "killed: 3\n");
  r = render_answer(command_kind::set, R"({"ok": true, "job_limit": 7})");
  CHECK(r.text == "job_limit: 7\n");
  r = render_answer(command_kind::pause, R"({"ok": true, "message": "paused"})");
  CHECK(r.text == "paused\n");
  r = render_answer(command_kind::resume, R"({"ok": true})");
  CHECK(r.text == "ok\n");
  r = render_answer(command_kind::help, R"({"ok": true, "help": "the help\n"})");
  CHECK(r.text == "the help\n");
  r = render_answer(command_kind::status, "not json");
  CHECK(!r.ok);
  CHECK(r.text ==
        "error: the study answered with something that is not a JSON object: not json\n");
  r = render_answer(command_kind::status, R"({"state": "running"})");
  CHECK(!r.ok);  // no "ok": true is not ok
}

TEST_CASE("answer_ok") {
  CHECK(answer_ok(R"({"ok": true})"));
  CHECK(!answer_ok(R"({"ok": false})"));
  CHECK(!answer_ok(R"({"ok": "true"})"));
  CHECK(!answer_ok(R"([true])"));
  CHECK(!answer_ok("garbage"));
}
