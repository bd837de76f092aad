// statistics_core: the per-rank statistics of statistics mode, without CAF.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/statistics_sink/statistics_core.hpp"
#include "messages/npy.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa;

namespace {

// One field "u" of `size` cells, `steps` steps, rank `rank` of `ranks`.
statistics_core_settings settings(std::uint64_t size, std::uint32_t steps, std::uint32_t rank,
                                  std::uint32_t ranks, std::size_t parameters = 0) {
  statistics_core_settings s;
  s.field_names = {"u"};
  s.field_sizes = {size};
  s.shares = {wire::owned_share(size, rank, ranks)};
  s.time_steps = steps;
  s.statistics.moments = 2;
  s.statistics.thresholds = {2.5};
  s.parameters = parameters;
  if (parameters > 0) {
    s.statistics.sobol = true;
    s.group_size = static_cast<std::uint32_t>(parameters + 2);
  }
  return s;
}

std::shared_ptr<const payload_bytes> buffer(const std::vector<float>& v) {
  auto b = std::make_shared<payload_bytes>(v.size() * sizeof(float), 0);
  std::memcpy(b->data(), v.data(), b->size());
  return b;
}

// Cell c of simulation s at step t.
float value(std::uint32_t s, std::uint32_t t, std::uint64_t c) {
  return static_cast<float>(s * 1.5 + t + std::sin(static_cast<double>(c)));
}

std::vector<float> share_values(std::uint32_t s, std::uint32_t t, wire::cell_range share) {
  std::vector<float> v;
  for (auto c = share.begin; c < share.end; ++c) v.push_back(value(s, t, c));
  return v;
}

}  // namespace

TEST_CASE("moments, min/max and exceedances of each step; a repeated step is not folded again") {
  statistics_core core(settings(4, 2, 0, 1));
  const auto share = core.settings().shares[0];
  for (std::uint32_t s = 0; s < 3; ++s)
    for (std::uint32_t t = 0; t < 2; ++t) CHECK(core.fold(s, 0, t, buffer(share_values(s, t, share))));
  CHECK_FALSE(core.fold(1, 0, 1, buffer(share_values(1, 1, share))));
  CHECK(core.simulations_complete() == 3);
  testing::temp_dir dir("statistics-core");
  core.write(dir.path);
  const auto mean = npy::load<double>(dir.path + "/u/mean.npy");
  CHECK(mean.shape == std::vector<std::size_t>{2, 4});
  const auto exceed = npy::load<std::uint64_t>(dir.path + "/u/threshold_2.5.npy");
  for (std::uint32_t t = 0; t < 2; ++t)
    for (std::uint64_t c = 0; c < 4; ++c) {
      double sum = 0;
      std::uint64_t above = 0;
      for (std::uint32_t s = 0; s < 3; ++s) {
        sum += value(s, t, c);
        above += value(s, t, c) > 2.5;
      }
      CHECK(mean.data[t * 4 + c] == doctest::Approx(sum / 3).epsilon(1e-14));
      CHECK(exceed.data[t * 4 + c] == above);
    }
  CHECK_THROWS_WITH(core.fold(5, 0, 0, buffer({1.0f})),
                    "a step of field 'u' with 1 values; this rank owns 4");
  CHECK_THROWS_WITH(core.fold(5, 0, 2, buffer(share_values(5, 0, share))),
                    "time step 2 is beyond client.steps = 2");
}

TEST_CASE("two ranks write their shares of one assembled file, equal to one rank's") {
  testing::temp_dir one("statistics-one"), two("statistics-two");
  statistics_core whole(settings(7, 3, 0, 1));
  statistics_core rank0(settings(7, 3, 0, 2)), rank1(settings(7, 3, 1, 2));
  for (std::uint32_t s = 0; s < 4; ++s)
    for (std::uint32_t t = 0; t < 3; ++t) {
      whole.fold(s, 0, t, buffer(share_values(s, t, whole.settings().shares[0])));
      rank0.fold(s, 0, t, buffer(share_values(s, t, rank0.settings().shares[0])));
      rank1.fold(s, 0, t, buffer(share_values(s, t, rank1.settings().shares[0])));
    }
  whole.write(one.path);
  rank1.write(two.path);  // any order
  rank0.write(two.path);
  for (const char* stat : {"mean", "variance", "min", "max"}) {
    CAPTURE(stat);
    const auto a = npy::load<double>(one.path + "/u/" + stat + ".npy");
    const auto b = npy::load<double>(two.path + "/u/" + stat + ".npy");
    CHECK(a.shape == b.shape);
    CHECK(a.data == b.data);
  }
}

TEST_CASE("pick-freeze groups: held until all members' step is in, then folded into Sobol") {
  auto cfg = settings(3, 1, 0, 1, 2);  // p = 2: groups of 4
  cfg.statistics.group_budget_mb = 1;
  statistics_core core(cfg);
  const auto share = cfg.shares[0];
  // Group 0 complete (members in any order), group 1 missing member 6 (C_1).
  for (std::uint32_t s : {3u, 0u, 2u, 1u, 4u, 5u, 7u}) core.fold(s, 0, 0, buffer(share_values(s, 0, share)));
  CHECK(core.held_bytes() == 3 * 3 * sizeof(float));
  CHECK(core.groups_complete() == 1);
  CHECK(core.simulations_complete() == 7);  // every member counts in the moments
  const auto report = nlohmann::json::parse(core.report());
  CHECK(report["groups_folded"] == 1);
  REQUIRE(report["groups_left_out"].size() == 1);
  CHECK(report["groups_left_out"][0]["group"] == 1);
  CHECK(report["groups_left_out"][0]["members_missing_steps"][0]["simulation"] == 6);
  CHECK_FALSE(core.over_budget());
  core.fold(6, 0, 0, buffer(share_values(6, 0, share)));
  CHECK(core.held_bytes() == 0);
  CHECK(core.groups_complete() == 2);
  CHECK(nlohmann::json::parse(core.report())["groups_left_out"].empty());
}

TEST_CASE("beyond group_budget_mb the core says so (the actor then withholds credit)") {
  auto cfg = settings(1 << 17, 1, 0, 1, 2);  // 512 KiB per step
  cfg.statistics.group_budget_mb = 1;
  statistics_core core(cfg);
  const std::vector<float> v(1 << 17, 1.0f);
  core.fold(0, 0, 0, buffer(v));
  core.fold(4, 0, 0, buffer(v));
  CHECK_FALSE(core.over_budget());  // exactly 1 MiB held
  core.fold(8, 0, 0, buffer(v));
  CHECK(core.over_budget());
}

TEST_CASE("save and load give back the same statistics") {
  statistics_core a(settings(5, 2, 0, 1));
  const auto share = a.settings().shares[0];
  for (std::uint32_t s = 0; s < 3; ++s)
    for (std::uint32_t t = 0; t < 2; ++t) a.fold(s, 0, t, buffer(share_values(s, t, share)));
  std::stringstream state;
  a.save(state);
  statistics_core b(settings(5, 2, 0, 1));
  b.load(state);
  CHECK(b.simulations_complete() == 3);
  CHECK_FALSE(b.fold(2, 0, 1, buffer(share_values(2, 1, share))));  // already folded before the save
  testing::temp_dir da("statistics-a"), db("statistics-b");
  a.write(da.path);
  b.write(db.path);
  CHECK(npy::load<double>(da.path + "/u/variance.npy").data ==
        npy::load<double>(db.path + "/u/variance.npy").data);
  std::stringstream other;
  statistics_core(settings(5, 3, 0, 1)).save(other);
  CHECK_THROWS_WITH(b.load(other), "statistics state: another study's fields or time steps");
}

namespace {

// Every statistic file of `dir`/u, by name.
std::map<std::string, std::vector<double>> statistic_files(const std::string& dir) {
  std::map<std::string, std::vector<double>> out;
  for (const char* name : {"mean", "variance", "skewness", "kurtosis", "min", "max", "quantile_0.5",
                           "sobol_first", "sobol_total", "sobol_first_low", "sobol_total_high"})
    out[name] = npy::load<double>(dir + "/u/" + name + ".npy").data;
  return out;
}

}  // namespace

TEST_CASE("a checkpoint's cut restored mid-study gives the uninterrupted statistics (Sobol included)") {
  // p = 2: groups of 4; 3 groups, 3 time steps, every statistic.
  auto cfg = settings(6, 3, 0, 1, 2);
  cfg.statistics.moments = 4;
  cfg.statistics.min_max = true;
  cfg.statistics.quantiles = {0.5};
  cfg.simulations = 12;
  const auto share = cfg.shares[0];
  // The arrival order: interleaved members, so that the cut holds groups
  // whose members are partly in (their steps held, waiting for the others).
  std::vector<std::array<std::uint32_t, 2>> order;  // (sim, step)
  for (std::uint32_t t = 0; t < 3; ++t)
    for (std::uint32_t s : {0u, 4u, 1u, 8u, 5u, 2u, 9u, 3u, 6u, 10u, 7u, 11u}) order.push_back({s, t});
  std::rotate(order.begin(), order.begin() + 7, order.end());  // start mid-group

  statistics_core whole(cfg);
  for (const auto& [s, t] : order) CHECK(whole.fold(s, 0, t, buffer(share_values(s, t, share))));

  const std::size_t cut_at = 17;  // steps folded before the checkpoint
  statistics_core before(cfg);
  for (std::size_t i = 0; i < cut_at; ++i)
    before.fold(order[i][0], 0, order[i][1], buffer(share_values(order[i][0], order[i][1], share)));
  REQUIRE(before.held_bytes() > 0);  // the cut holds group steps waiting for members
  std::stringstream state;
  before.save(state);
  statistics_core after(cfg);
  after.load(state);
  CHECK(after.held_bytes() == before.held_bytes());
  // A restarted client resends every step: those in the cut count once.
  std::size_t refused = 0;
  for (const auto& [s, t] : order)
    if (!after.fold(s, 0, t, buffer(share_values(s, t, share)))) ++refused;
  CHECK(refused == cut_at);
  CHECK(after.groups_complete() == 3);
  CHECK(after.held_bytes() == 0);

  testing::temp_dir dw("statistics-whole"), da("statistics-after");
  whole.write(dw.path);
  after.write(da.path);
  const auto w = statistic_files(dw.path);
  const auto a = statistic_files(da.path);
  for (const auto& [name, values] : w) {
    CAPTURE(name);
    REQUIRE(values.size() == a.at(name).size());
    for (std::size_t i = 0; i < values.size(); ++i) {
      CAPTURE(i);
      if (std::isnan(values[i])) CHECK(std::isnan(a.at(name)[i]));
      else CHECK(a.at(name)[i] == doctest::Approx(values[i]).epsilon(1e-12));
    }
  }
  // Not vacuous: the Sobol estimates exist (3 groups) and vary over cells.
  CHECK_FALSE(std::isnan(w.at("sobol_first")[0]));
}
