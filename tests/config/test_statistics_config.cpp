// [statistics] and statistics mode: defaults, values as written, the errors
// (file:line:col: key: reason) and the pick-freeze design of a Sobol study.
#include <doctest/doctest.h>

#include <string>

#include "config/design.hpp"
#include "config/study.hpp"
#include "tests/config/error_of.hpp"

using namespace melissa::config;

namespace {

// Line numbers: [statistics] is on line 13, its first key on line 14.
const char* base = R"([study]
name = "s"
mode = "statistics"
[client]
command = ["sim"]
steps = 10
[parameters]
names = ["a", "b", "c"]
count = 4
[[fields]]
name = "u"
size = 100
)";

std::string with(const std::string& statistics) {
  return std::string(base) + "[statistics]\n" + statistics;
}

}  // namespace

TEST_CASE("statistics defaults: mean and variance, min and max, no Sobol") {
  const auto c = parse_study(base, "s.toml");
  CHECK(c.study.mode == study_mode::statistics);
  CHECK(c.statistics.moments == 2);
  CHECK(c.statistics.min_max);
  CHECK(c.statistics.thresholds.empty());
  CHECK(c.statistics.quantiles.empty());
  CHECK_FALSE(c.statistics.sobol);
  CHECK(c.statistics.group_budget_mb == 256);
  CHECK(group_size(c) == 1);
  CHECK(simulation_count(c) == 4);
}

TEST_CASE("statistics values as written, and they survive to_toml") {
  const auto c = parse_study(with("moments = 4\nmin_max = false\nthresholds = [300, -1.5]\n"
                                  "quantiles = [0.05, 0.5, 0.95]\nsobol = true\ngroup_budget_mb = 7\n"),
                             "s.toml");
  CHECK(c.statistics.moments == 4);
  CHECK_FALSE(c.statistics.min_max);
  CHECK(c.statistics.thresholds == std::vector<double>{300, -1.5});
  CHECK(c.statistics.quantiles == std::vector<double>{0.05, 0.5, 0.95});
  CHECK(c.statistics.sobol);
  CHECK(c.statistics.group_budget_mb == 7);
  CHECK(c.statistics.group_budget_bytes() == 7u << 20);
  CHECK(group_size(c) == 5);
  CHECK(simulation_count(c) == 20);  // 4 groups of 3 + 2
  const std::string written = to_toml(c);
  CHECK(written.find("[statistics]\nmoments = 4\nmin_max = false\nthresholds = [300.0, -1.5]\n"
                     "quantiles = [0.05, 0.5, 0.95]\nsobol = true\ngroup_budget_mb = 7\n") !=
        std::string::npos);
  CHECK(parse_study(written, "resolved.toml") == c);
  // A training study writes no [statistics].
  const auto training = parse_study(
      "[study]\nname = \"t\"\n[client]\ncommand = [\"s\"]\n[parameters]\nnames = [\"a\"]\n"
      "count = 1\n[[fields]]\nname = \"u\"\nsize = 1\n",
      "t.toml");
  CHECK(to_toml(training).find("[statistics]") == std::string::npos);
}

TEST_CASE("errors: [statistics] keys") {
  CHECK(error_of(with("moments = 5\n")) == "s.toml:14:11: statistics.moments: must be in [1, 4], got 5");
  CHECK(error_of(with("moments = 0\n")) == "s.toml:14:11: statistics.moments: must be in [1, 4], got 0");
  CHECK(error_of(with("quantiles = [0.5, 1.0]\n")) ==
        "s.toml:14:13: statistics.quantiles: quantiles[1] must be in (0, 1), got 1.0");
  CHECK(error_of(with("quantiles = [0.0]\n")) ==
        "s.toml:14:13: statistics.quantiles: quantiles[0] must be in (0, 1), got 0.0");
  CHECK(error_of(with("quantiles = [0.25, 0.25]\n")) ==
        "s.toml:14:13: statistics.quantiles: duplicate value 0.25 (quantiles[0] and quantiles[1])");
  CHECK(error_of(with("quantiles = [\"median\"]\n")) ==
        "s.toml:14:14: statistics.quantiles[0]: expected a number, got a string");
  CHECK(error_of(with("thresholds = [1, 2, 1.0]\n")) ==
        "s.toml:14:14: statistics.thresholds: duplicate value 1.0 (thresholds[0] and thresholds[2])");
  CHECK(error_of(with("thresholds = 3\n")) ==
        "s.toml:14:14: statistics.thresholds: expected an array, got an integer");
  CHECK(error_of(with("group_budget_mb = 0\n")) ==
        "s.toml:14:19: statistics.group_budget_mb: must be in [1, 1048576], got 0");
  CHECK(error_of(with("sobol = 1\n")) == "s.toml:14:9: statistics.sobol: expected a boolean, got an integer");
  CHECK(error_of(with("sobel = true\n")) ==
        "s.toml:14:1: statistics.sobel: unknown key (did you mean \"sobol\"?)");
}

TEST_CASE("errors: Sobol needs two parameters and a sampler with 2p dimensions") {
  std::string one = base;
  one.replace(one.find("[\"a\", \"b\", \"c\"]"), 15, "[\"a\"]");
  CHECK(error_of(one + "[statistics]\nsobol = true\n") ==
        "s.toml:14:9: statistics.sobol: true needs at least 2 parameters (parameters.names), got 1 name");
  CHECK(error_of(one + "[statistics]\nsobol = false\n") == "no error");
  // GSL's Sobol sequence has 40 dimensions: 21 parameters need 42.
  std::string many = base;
  std::string names = "[";
  for (int i = 0; i < 21; ++i) names += (i ? ", \"p" : "\"p") + std::to_string(i) + "\"";
  many.replace(many.find("[\"a\", \"b\", \"c\"]"), 15, names + "]\nsampler = \"sobol\"");
  CHECK(error_of(many + "[statistics]\nsobol = true\n") ==
        "s.toml:15:9: statistics.sobol: true draws 2 x 21 dimensions with sampler \"sobol\", which "
        "supports at most 40");
  // parameters.count counts groups: 300000 groups of 5 is above the limit.
  std::string big = base;
  big.replace(big.find("count = 4"), 9, "count = 300000");
  CHECK(error_of(big + "[statistics]\nsobol = true\n") ==
        "s.toml:14:9: statistics.sobol: true makes parameters.count = 300000 groups of 5 "
        "simulations: 1500000, above the limit of 1000000 simulations per study");
}

TEST_CASE("errors: statistics mode against the other sections") {
  CHECK(error_of("[study]\nname = \"t\"\n[client]\ncommand = [\"s\"]\n[parameters]\nnames = [\"a\"]\n"
                 "count = 1\n[[fields]]\nname = \"u\"\nsize = 1\n[statistics]\nmoments = 1\n") ==
        "s.toml:11:1: statistics: [statistics] needs study.mode = \"statistics\", got \"training\"");
  std::string no_steps = base;
  no_steps.replace(no_steps.find("steps = 10\n"), 11, "");
  CHECK(error_of(no_steps) ==
        "s.toml:4:1: client.steps: required with study.mode = \"statistics\" (the number of time "
        "steps each simulation sends: the statistics files have one row per time step)");
  CHECK(error_of(std::string(base) + "[server]\nsink = \"dataset\"\n") ==
        "s.toml:14:8: server.sink: study.mode = \"statistics\" computes statistics in the server and "
        "needs server.sink = \"count\" (the default), got \"dataset\"");
}

TEST_CASE("the pick-freeze design: A, B, then A with one column of B") {
  const auto c = parse_study(with("sobol = true\n"), "s.toml");
  const auto rows = make_study_design(c);
  REQUIRE(rows.size() == 20);
  // (A, B) is one 6-dimensional draw of the sampler in the bounds twice over.
  std::vector<parameter_bounds> both(6, parameter_bounds{});
  const auto ab = draw_design(sampler_kind::uniform, both, 4, c.study.seed);
  for (std::size_t g = 0; g < 4; ++g) {
    const auto& a = rows[g * 5];
    const auto& b = rows[g * 5 + 1];
    CHECK(a == std::vector<double>(ab[g].begin(), ab[g].begin() + 3));
    CHECK(b == std::vector<double>(ab[g].begin() + 3, ab[g].end()));
    for (std::size_t k = 0; k < 3; ++k) {
      auto expected = a;
      expected[k] = b[k];
      CHECK(rows[g * 5 + 2 + k] == expected);
      CHECK(member_of(g * 5 + 2 + k, 5).group == g);
      CHECK(member_of(g * 5 + 2 + k, 5).member == 2 + k);
    }
  }
  // Without Sobol the study's design is make_design.
  const auto plain = parse_study(base, "s.toml");
  CHECK(make_study_design(plain) == make_design(plain.parameters, plain.study.seed));
}
