// melissa-shell's pure parts: finding the study, and reading its answers.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "apps/melissa-shell/shell_render.hpp"
#include "apps/melissa-shell/shell_target.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::shell;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct temp_dir : melissa::testing::temp_dir {
  temp_dir() : melissa::testing::temp_dir("melissa-shell-test") {}
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
  auto a = resolve_target(dir.path, std::nullopt);
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 4100);
  CHECK(a.token == "filetoken");
  // --token wins over the file's.
  CHECK(resolve_target(dir.path, std::string("given")).token == "given");
  // The file itself works too.
  CHECK(resolve_target(dir / "shell.json", std::nullopt).port == 4100);
}

TEST_CASE("target: a wildcard bind address in shell.json means this host's loopback") {
  temp_dir dir;
  write_shell_file(dir.path, "0.0.0.0", 4100, "t");
  CHECK(resolve_target(dir.path, std::nullopt).host == "127.0.0.1");
  write_shell_file(dir.path, "::", 4100, "t");
  CHECK(resolve_target(dir.path, std::nullopt).host == "::1");
}

TEST_CASE("target: errors say what is missing, with the right exit status") {
  temp_dir dir;
  std::string msg;
  CHECK(exit_status_of(dir.path, std::nullopt, msg) == exit_unreachable);
  CHECK(msg == "no shell.json in " + dir.path +
                   ": is the study running? (melissa-run writes it once the shell endpoint is up)");
  CHECK(exit_status_of("127.0.0.1:4000", std::nullopt, msg) == exit_usage);
  CHECK(msg.find("--token is required with host:port") == 0);
  CHECK(exit_status_of("no-such-dir", std::nullopt, msg) == exit_usage);
  CHECK(msg == "'no-such-dir' is neither a study output directory (with shell.json) nor host:port");
  std::ofstream(dir / "shell.json") << "{";
  CHECK(exit_status_of(dir.path, std::nullopt, msg) == exit_unreachable);
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

namespace {

// The launcher's merge of two ranks' trainer status (actors/trainer: the
// buffer figures arrive as floats; validation only on rank 0).
const char* train_answer = R"({"ok": true, "state": "running", "elapsed_s": 61.04, "ranks": [
  {"rank": 0, "ranks": 2, "state": "training", "batches": 1234, "samples_seen": 24680,
   "train_loss": 0.012345678, "validation_loss": 0.0456, "min_validation_loss": 0.02,
   "samples_per_s": 285.31, "mean_samples_per_s": 280.0, "batch_wait_s": 3.5,
   "busy_fraction": 0.934, "buffer_population": 5234.0, "buffer_unseen": 120.0,
   "learning_rate": 0.0005, "elapsed_s": 60.5},
  {"rank": 1, "ranks": 2, "state": "training", "batches": 1230, "samples_seen": 24600,
   "train_loss": 2.5e-05, "validation_loss": null, "min_validation_loss": null,
   "samples_per_s": 280, "mean_samples_per_s": 279.0, "batch_wait_s": 4.0,
   "busy_fraction": 0.9, "buffer_population": 5100.0, "buffer_unseen": 98.0,
   "learning_rate": 0.0005, "elapsed_s": 60.4}]})";

// One rank's reservoir report (actors/reservoir), merged by the launcher.
const char* buffer_answer = R"({"ok": true, "state": "running", "ranks": [
  {"rank": 0, "kind": "reservoir", "policy": "reservoir", "capacity": 6000, "threshold": 1000,
   "population": 5234, "unseen": 120, "inserts": 9000, "evictions": 3766, "batches": 870,
   "samples_drawn": 8700, "production_over": false, "exhausted": false,
   "repetitions": {"histogram": [1234, 3456, 2345, 100, 10, 2], "mean": 0.9667, "max": 5}}]})";

}  // namespace

TEST_CASE("train: one line per rank, then the totals") {
  CHECK(render_train(json::parse(train_answer)) ==
        "rank  state     batches  train loss  val loss  samples/s  busy  buffer/unseen  lr\n"
        "0     training  1234     0.01235     0.0456    285.3      93%   5234/120       0.0005\n"
        "1     training  1230     2.5e-05     -         280.0      90%   5100/98        0.0005\n"
        "samples seen 24680, 565.3 samples/s in all, min validation loss 0.02, study running, "
        "elapsed 61.0s\n");
  const auto r = render_answer(command_kind::train, train_answer);
  CHECK(r.ok);
  CHECK(r.text == render_train(json::parse(train_answer)));
}

TEST_CASE("train: a rank without figures is named with its error under the table") {
  auto answer = json::parse(train_answer);
  answer["ranks"][1] = {{"rank", 1}, {"error", "server rank 1 did not answer within 15 s"}};
  const auto text = render_train(answer);
  CHECK(text.find("\n0     training  1234") != std::string::npos);
  CHECK(text.find("\n1 ") == std::string::npos);
  CHECK(text.substr(text.rfind('\n', text.size() - 2) + 1) ==
        "rank 1: server rank 1 did not answer within 15 s\n");
  // Missing fields read "-"; a lone rank gets no "in all" rate.
  const auto sparse = render_train(json::parse(
      R"({"ok": true, "ranks": [{"rank": 0, "state": "starting", "batches": 0}]})"));
  CHECK(sparse ==
        "rank  state     batches  train loss  val loss  samples/s  busy  buffer/unseen  lr\n"
        "0     starting  0        -           -         -          -     -/-            -\n");
}

TEST_CASE("train, buffer, steering: the study's error goes to stderr text") {
  const auto r = render_answer(
      command_kind::train,
      R"j({"ok": false, "error": "this study does not train (server.sink is not \"train\")"})j");
  CHECK(!r.ok);
  CHECK(r.text == "error: this study does not train (server.sink is not \"train\")\n");
  const auto b = render_answer(command_kind::buffer,
                               R"j({"ok": false, "error": "no server rank is up yet (the study is starting)"})j");
  CHECK(b.text == "error: no server rank is up yet (the study is starting)\n");
  const auto s = render_answer(
      command_kind::steering, R"j({"ok": false, "error": "this study does not steer (no [breed] section)"})j");
  CHECK(!s.ok);
  CHECK(s.text == "error: this study does not steer (no [breed] section)\n");
}

TEST_CASE("training_over: every rank done, or the study done") {
  auto answer = json::parse(train_answer);
  CHECK(!training_over(answer));
  answer["ranks"][0]["state"] = "done";
  CHECK(!training_over(answer));
  answer["ranks"][1]["state"] = "done";
  CHECK(training_over(answer));
  CHECK(training_over(json::parse(R"({"ok": true, "state": "done", "ranks": []})")));
  CHECK(!training_over(json::parse(R"({"ok": true, "ranks": []})")));
  CHECK(!training_over(json::parse(R"({"ok": false, "error": "x"})")));
}

TEST_CASE("buffer: a block per rank with the repetition figures") {
  CHECK(render_buffer(json::parse(buffer_answer)) ==
        "rank 0\n"
        "  policy:        reservoir\n"
        "  capacity:      6000 (threshold 1000)\n"
        "  population:    5234 (120 unseen)\n"
        "  inserts:       9000\n"
        "  evictions:     3766\n"
        "  batches:       870 (8700 samples drawn)\n"
        "  times sampled: mean 0.967, max 5\n"
        "  histogram:     0:1234 1:3456 2:2345 3:100 4:10 5:2  (times sampled:samples)\n");
  CHECK(render_answer(command_kind::buffer, buffer_answer).text ==
        render_buffer(json::parse(buffer_answer)));
}

TEST_CASE("buffer: wide histograms are summed over round ranges; mean and max from the histogram") {
  json histogram = json::array();
  for (int k = 0; k < 20; ++k) histogram.push_back(k < 15 ? 10 : 0);  // trailing zeros dropped
  const auto answer = json{{"ok", true},
                           {"ranks",
                            {{{"rank", 0}, {"policy", "fifo"}, {"repetitions", {{"histogram", histogram}}}},
                             {{"rank", 1}, {"error", "the training buffer did not answer"}}}}};
  const auto text = render_buffer(answer);
  CHECK(text.find("  histogram:     0-1:20 2-3:20 4-5:20 6-7:20 8-9:20 10-11:20 12-13:20 "
                  "14-15:10  (times sampled:samples)\n") != std::string::npos);
  // 15 buckets of 10: (0 + 1 + ... + 14) / 15 = 7 times on average, 14 at most.
  CHECK(text.find("  times sampled: mean 7, max 14\n") != std::string::npos);
  CHECK(text.find("  population:    - (- unseen)\n") != std::string::npos);
  CHECK(text.find("\nrank 1: the training buffer did not answer\n") != std::string::npos);

  const auto histogram_line = [](const json& h) {
    const auto t = render_buffer(json{{"ok", true}, {"ranks", {{{"rank", 0}, {"repetitions", {{"histogram", h}}}}}}});
    const auto at = t.find("  histogram:     ");
    REQUIRE(at != std::string::npos);
    return t.substr(at + 17, t.find("  (times", at + 17) - at - 17);
  };
  // A Reservoir draws every sample about a hundred times: ranges of ten.
  json reservoir = json::array();
  for (int k = 0; k < 130; ++k) reservoir.push_back(k < 70 ? 0 : 1);
  CHECK(histogram_line(reservoir) ==
        "70-79:10 80-89:10 90-99:10 100-109:10 110-119:10 120-129:10");
  reservoir[69] = 3;  // the first range starts at a multiple of the width
  CHECK(histogram_line(reservoir).rfind("60-69:3 70-79:10 ", 0) == 0);
  // Few values: one each, the empty ends left out, empty ones inside kept.
  CHECK(histogram_line(json{0, 0, 5, 0, 7, 0}) == "2:5 3:0 4:7");
  CHECK(histogram_line(json{0}) == "0:0");
  CHECK(histogram_line(json::array()) == "-");
}

TEST_CASE("steering: r, sigma per member, resampled simulations, last resampling") {
  const auto text = render_steering(json::parse(R"({"ok": true, "steering": {
    "r": 0.5, "sigma": [0.1, 0.25, 0.125], "resampled": 12, "last_resampling_s": 30.5,
    "resamplings": 3}})"));
  CHECK(text ==
        "r:                     0.5\n"
        "σ per member:          0.1, 0.25, 0.125\n"
        "resampled simulations: 12\n"
        "last resampling:       30.5s after the start\n"
        "resamplings:           3\n");
  // Other shapes: the resampled ids, never resampled, many members.
  json sigma = json::array();
  for (int i = 0; i < 20; ++i) sigma.push_back(0.5);
  const auto other = render_steering(json{{"ok", true},
                                          {"steering",
                                           {{"r", 0.75},
                                            {"sigma", sigma},
                                            {"resampled_simulations", {4, 7}},
                                            {"last_resampling_s", nullptr}}}});
  CHECK(other.find("resampled simulations: 2 (4, 7)\n") != std::string::npos);
  CHECK(other.find("last resampling:       never\n") != std::string::npos);
  CHECK(other.find(", 0.5, ... (20 members)\n") != std::string::npos);
  // What the steering actor of the server sends (actors/steering/steering.cpp).
  const auto real = render_steering(json::parse(R"({"ok": true, "steering": {
    "kind": "breed", "r": 0.9, "sigma": 0.025,
    "simulations_resampled": 11, "last_resampling_time": 1000.0,
    "shrinks": 14, "fallbacks": 2,
    "resampling_history": [
      {"s": 1, "r": 0.5667, "time": 990.0, "population": 4, "points": 6, "proposal": 3, "shrinks": 1, "fallbacks": 0},
      {"s": 2, "r": 0.6333, "time": 1000.0, "population": 7, "points": 5, "proposal": 4, "shrinks": 13, "fallbacks": 2}],
    "provenance": [{"sim": 3, "origin": "proposal", "resampling": 1, "location": 0},
                   {"sim": 4, "origin": "uniform", "resampling": 1}]}})"));
  CHECK(real.find("σ (each draw):") != std::string::npos);
  CHECK(real.find("0.025 of the range\n") != std::string::npos);
  CHECK(real.find("σ per member") == std::string::npos);
  CHECK(real.find("out of bounds:") != std::string::npos);
  CHECK(real.find("14 shrinks, 2 draws left at their location\n") != std::string::npos);
  CHECK(real.find("resampling s=1:") != std::string::npos);
  CHECK(real.find("r 0.567, population 4, 6 points (3 proposal), 1 shrinks, 0 left at their location\n") !=
        std::string::npos);
  CHECK(real.find("r 0.633, population 7, 5 points (4 proposal), 13 shrinks, 2 left at their location\n") !=
        std::string::npos);
  CHECK(real.find("resampling_history") == std::string::npos);
  CHECK(real.find("resampled simulations: 11\n") != std::string::npos);
  CHECK(real.find(" ago\n") != std::string::npos);
  CHECK(real.find("new points:            1 from the proposal, 1 uniform\n") != std::string::npos);
  CHECK(real.find("kind") == std::string::npos);
  CHECK(render_answer(command_kind::steering, R"({"ok": true, "steering": {"r": 1}})").text ==
        "r:                     1\n"
        "σ per member:          -\n"
        "resampled simulations: -\n"
        "last resampling:       never\n");
}

TEST_CASE("stats: one line per rank with simulations, groups and the widest interval") {
  const auto out = render_answer(
      command_kind::stats,
      R"({"ok": true, "ranks": [{"rank": 0, "simulations_folded": 21, "groups_folded": 3,
          "widest_sobol_interval": 0.4125, "widest_sobol_interval_step": 5,
          "groups_left_out": [{"group": 4}]},
          {"rank": 1, "error": "this study does not compute statistics"}]})");
  CHECK(out.text ==
        "rank 0: 21 simulations folded in, 3 groups, widest Sobol interval 0.412 (step 5), 1 groups "
        "incomplete\nrank 1: this study does not compute statistics\n");
}
