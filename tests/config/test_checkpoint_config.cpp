// [checkpoint]: defaults, every key read, the resolved file's round trip, and
// the exact error texts (file:line:column, key, reason).
#include <doctest/doctest.h>

#include <string>

#include "config/study.hpp"
#include "tests/config/error_of.hpp"

using namespace melissa::config;

namespace {

const std::string base = R"(
[study]
name = "ck"
output_dir = "/out/ck"

[client]
command = ["solver"]

[parameters]
names = ["a"]
count = 3

[[fields]]
name = "u"
size = 10
)";

}  // namespace

TEST_CASE("[checkpoint] defaults: every 1000 batches or 600 s, keep 2, with buffers, under output_dir") {
  const auto c = parse_study(base, "s.toml").checkpoint;
  CHECK(c.every_batches == 1000);
  CHECK(c.every_seconds == 600);
  CHECK(c.keep == 2);
  CHECK(c.buffer);
  CHECK(c.dir == "/out/ck/checkpoints");
}

TEST_CASE("[checkpoint] every key is read and survives the resolved file") {
  const auto c = parse_study(base + R"(
[checkpoint]
every_batches = 0
every_seconds = 2.5
keep = 5
buffer = false
dir = "/scratch/ck"
)", "s.toml");
  CHECK(c.checkpoint.every_batches == 0);
  CHECK(c.checkpoint.every_seconds == 2.5);
  CHECK(c.checkpoint.keep == 5);
  CHECK_FALSE(c.checkpoint.buffer);
  CHECK(c.checkpoint.dir == "/scratch/ck");
  const auto written = to_toml(c);
  CHECK(written.find("[checkpoint]\nevery_batches = 0\nevery_seconds = 2.5\nkeep = 5\n"
                     "buffer = false\ndir = \"/scratch/ck\"\n") != std::string::npos);
  const auto again = parse_study(written, "resolved.toml");
  CHECK(again == c);
  auto other = again;
  other.checkpoint.keep = 4;
  CHECK(other != c);
}

TEST_CASE("[checkpoint] errors name the file, line, column and key") {
  CHECK(error_of(base + "\n[checkpoint]\nkeep = 0\n") ==
        "s.toml:18:8: checkpoint.keep: must be in [1, 1000], got 0");
  CHECK(error_of(base + "\n[checkpoint]\nevery_batches = -1\n") ==
        "s.toml:18:17: checkpoint.every_batches: must be >= 0, got -1");
  CHECK(error_of(base + "\n[checkpoint]\nevery_seconds = -0.5\n") ==
        "s.toml:18:17: checkpoint.every_seconds: must be >= 0, got -0.5");
  CHECK(error_of(base + "\n[checkpoint]\nevery_seconds = \"10\"\n") ==
        "s.toml:18:17: checkpoint.every_seconds: expected a number, got a string");
  CHECK(error_of(base + "\n[checkpoint]\nbuffer = 1\n") ==
        "s.toml:18:10: checkpoint.buffer: expected a boolean, got an integer");
  CHECK(error_of(base + "\n[checkpoint]\ndir = \"\"\n") ==
        "s.toml:18:7: checkpoint.dir: must not be empty");
  CHECK(error_of(base + "\n[checkpoint]\nkeeps = 3\n").find("s.toml:18:1: checkpoint.keeps: unknown key") == 0);
}
