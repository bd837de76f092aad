// Values that TOML and the types accept but that would break a running study
// (part 4 of the trust issue): each is refused in the study file with file,
// line, column and key, and the largest accepted value still parses.
#include <doctest/doctest.h>

#include <string>

#include "config/study.hpp"
#include "tests/config/error_of.hpp"

using namespace melissa::config;

namespace {

// Line 1 is [study]; `extra` starts on line 11 (the [launcher] / [client]
// keys are given through it so that each test can put them where it likes).
std::string study(const std::string& extra, const std::string& count = "3",
                  const std::string& sink = "count") {
  return "[study]\nname = \"b\"\n[server]\nsink = \"" + sink +
         "\"\n[parameters]\nnames = [\"a\", \"b\"]\ncount = " + count +
         "\n[[fields]]\nname = \"u\"\nsize = 4\n" + extra +
         (extra.find("[client]") == std::string::npos ? "[client]\ncommand = [\"sim\"]\nsteps = 5\n" : "");
}

}  // namespace

TEST_CASE("parameters.count beyond max_simulations is refused with the memory it would need") {
  // 10^9 used to pass and abort the server with bad_alloc while it drew the design.
  CHECK(error_of(study("", "1000000000")) ==
        "s.toml:7:9: parameters.count: at most 1000000 simulations per study (the server and the "
        "launcher keep about 1.2 KB per simulation in memory: 1000000000 would need about 1.2 TB), "
        "got 1000000000");
  CHECK(error_of(study("", "1000001")).find("parameters.count: at most 1000000 simulations") !=
        std::string::npos);
  CHECK(error_of(study("", "1000000")) == "no error");
  CHECK(parse_study(study("", "1000000"), "s.toml").parameters.count == max_simulations);
}

TEST_CASE("launcher.poll_interval has an upper bound") {
  CHECK(error_of(study("[launcher]\npoll_interval = 1e9\n")) ==
        "s.toml:12:17: launcher.poll_interval: must be in (0, 60.0] seconds, got 1e+09");
  CHECK(error_of(study("[launcher]\npoll_interval = 60.5\n")) ==
        "s.toml:12:17: launcher.poll_interval: must be in (0, 60.0] seconds, got 60.5");
  CHECK(parse_study(study("[launcher]\npoll_interval = 60\n"), "s.toml").launcher.poll_interval ==
        max_poll_interval);
}

TEST_CASE("client.ranks has an upper bound") {
  CHECK(error_of(study("[client]\ncommand = [\"sim\"]\nranks = 1000000000\n")) ==
        "s.toml:13:9: client.ranks: must be in [1, 1048576], got 1000000000");
  CHECK(parse_study(study("[client]\ncommand = [\"sim\"]\nranks = 1048576\n"), "s.toml").client.ranks ==
        max_client_ranks);
}

TEST_CASE("training.batch_size larger than buffer.capacity is refused") {
  CHECK(error_of(study("[buffer]\ncapacity = 100\nthreshold = 10\n[training]\nbatch_size = 101\n", "3",
                       "train")) ==
        "s.toml:15:14: training.batch_size: must be <= buffer.capacity = 100 (a batch is drawn "
        "from one server rank's buffer), got 101");
  CHECK(error_of(study("[buffer]\ncapacity = 100\nthreshold = 10\n[training]\nbatch_size = 100\n", "3",
                       "train")) == "no error");
  // The default capacity (6000) bounds a [training] without [buffer].
  CHECK(error_of(study("[training]\nbatch_size = 6001\n", "3", "train")) ==
        "s.toml:12:14: training.batch_size: must be <= buffer.capacity = 6000 (a batch is drawn "
        "from one server rank's buffer), got 6001");
}

TEST_CASE("[buffer] and [training] need a sink that trains") {
  CHECK(error_of(study("[buffer]\ncapacity = 100\n")) ==
        "s.toml:11:1: buffer: [buffer] needs server.sink = \"train\", got \"count\"");
  CHECK(error_of(study("[training]\nbatch_size = 5\n", "3", "dataset")) ==
        "s.toml:11:1: training: [training] needs server.sink = \"train\", got \"dataset\"");
  // Without training the resolved study has neither section, and reads back.
  const auto c = parse_study(study(""), "s.toml");
  const auto written = to_toml(c);
  CHECK(written.find("[buffer]") == std::string::npos);
  CHECK(written.find("[training]") == std::string::npos);
  CHECK(parse_study(written, "resolved.toml") == c);
}
