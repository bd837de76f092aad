// The design of experiments: reproducible for a seed, within bounds.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "config/design.hpp"
#include "tests/config/error_of.hpp"

using namespace melissa::config;

namespace {
parameters_config five_parameters(std::uint64_t count) {
  parameters_config p;
  p.names = {"T0", "T1", "T2", "T3", "T4"};
  p.bounds = {{100, 500}, {0, 1}, {-1, 1}, {1e-9, 2e-9}, {-1e300, 1e300}};
  p.count = count;
  return p;
}
}  // namespace

TEST_CASE("uniform design: one row per simulation, one value per parameter") {
  const auto d = uniform_design(five_parameters(20), 0);
  REQUIRE(d.size() == 20);
  for (const auto& row : d) CHECK(row.size() == 5);
}

TEST_CASE("uniform design: the same seed gives the same design") {
  const auto p = five_parameters(50);
  CHECK(uniform_design(p, 42) == uniform_design(p, 42));
  CHECK(make_design(p, 42) == uniform_design(p, 42));
  // A longer study starts with the same simulations as a shorter one.
  const auto longer = uniform_design(five_parameters(80), 42);
  CHECK(std::vector<std::vector<double>>(longer.begin(), longer.begin() + 50) == uniform_design(p, 42));
}

TEST_CASE("uniform design: another seed gives another design") {
  const auto p = five_parameters(50);
  const auto a = uniform_design(p, 1);
  const auto b = uniform_design(p, 2);
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < a[i].size(); ++j) CHECK(a[i][j] != b[i][j]);
}

TEST_CASE("uniform design: values are in [lo, hi) and spread over the range") {
  const auto p = five_parameters(10000);
  const auto d = uniform_design(p, 7);
  for (std::size_t j = 0; j < p.names.size(); ++j) {
    const auto [lo, hi] = p.bounds[j];
    double min = hi, max = lo, sum = 0;
    std::set<double> distinct;
    for (const auto& row : d) {
      CHECK(row[j] >= lo);
      CHECK(row[j] < hi);
      min = std::min(min, row[j]);
      max = std::max(max, row[j]);
      sum += row[j] / 1e4;
      distinct.insert(row[j]);
    }
    CAPTURE(j);
    // 10000 uniform draws: the extremes are within 0.1% of the range of the
    // bounds (failure probability ~1e-4 per side), the mean within 2%.
    const double range = hi - lo;
    CHECK(min - lo < range * 1e-3);
    CHECK(hi - max < range * 1e-3);
    CHECK(std::abs(sum - (lo / 2 + hi / 2)) < 0.02 * range);
    CHECK(distinct.size() > 9990);
  }
}

TEST_CASE("uniform design: the values are pinned across builds") {
  // mt19937_64 is fully specified by the standard and the mapping to [lo, hi)
  // is ours, so these numbers (the first two simulations of the heat example)
  // must not change with the compiler or the standard library. A change here
  // changes every study's parameters: do it on purpose or not at all.
  parameters_config p;
  p.names = {"T0", "T1", "T2", "T3", "T4"};
  p.bounds.assign(5, {100, 500});
  p.count = 2;
  const design_matrix expected = {
      {163.91734534818431, 496.8580838519315, 115.82761033794627, 338.99786507786865,
       316.91398799704177},
      {122.86391658612942, 352.61134980398037, 269.42821194152521, 436.9042060743144,
       462.52055681757054}};
  CHECK(uniform_design(p, 0) == expected);
}

TEST_CASE("uniform design: tiny ranges never reach hi") {
  parameters_config p;
  p.names = {"x"};
  p.bounds = {{1.0, std::nextafter(1.0, 2.0)}};
  p.count = 1000;
  for (const auto& row : uniform_design(p, 3)) CHECK(row[0] == 1.0);
}

TEST_CASE("uniform design: mismatched bounds are a programming error") {
  parameters_config p;
  p.names = {"a", "b"};
  p.bounds = {{0, 1}};
  p.count = 1;
  CHECK_THROWS_AS(uniform_design(p, 0), std::invalid_argument);
}

// ---------------------------------------------------------------------------
// Latin hypercube, Halton, reverse Halton and Sobol (GSL), scrambling, limits.

namespace {

constexpr sampler_kind all_samplers[] = {sampler_kind::uniform, sampler_kind::lhs,
                                         sampler_kind::halton, sampler_kind::reverse_halton,
                                         sampler_kind::sobol};
constexpr sampler_kind quasi_random[] = {sampler_kind::halton, sampler_kind::reverse_halton,
                                         sampler_kind::sobol};

std::vector<parameter_bounds> unit_bounds(std::size_t d) {
  return std::vector<parameter_bounds>(d, parameter_bounds{0, 1});
}

// Checks row i against `expected` (exact fractions), to the rounding of
// GSL's floating-point radical inverse.
void check_rows(const design_matrix& got, const std::vector<std::vector<double>>& expected) {
  REQUIRE(got.size() >= expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    REQUIRE(got[i].size() == expected[i].size());
    for (std::size_t j = 0; j < expected[i].size(); ++j) {
      CAPTURE(i);
      CAPTURE(j);
      CHECK(std::abs(got[i][j] - expected[i][j]) < 1e-15);
    }
  }
}

// Exact star discrepancy of a 2-D point set in [0, 1)^2:
// sup over anchored boxes [0, a) x [0, b) of |#points in box / n - a b|.
// The supremum is reached with a among the x coordinates or 1, b among the
// y coordinates or 1, counting the box open (for a b - count) or closed
// (for count - a b). O(n^3): small n only.
double star_discrepancy_2d(const design_matrix& p) {
  const double n = static_cast<double>(p.size());
  std::vector<double> xs{1.0}, ys{1.0};
  for (const auto& r : p) {
    xs.push_back(r[0]);
    ys.push_back(r[1]);
  }
  double worst = 0;
  for (const double a : xs)
    for (const double b : ys) {
      std::size_t open = 0, closed = 0;
      for (const auto& r : p) {
        open += r[0] < a && r[1] < b;
        closed += r[0] <= a && r[1] <= b;
      }
      worst = std::max({worst, a * b - static_cast<double>(open) / n,
                        static_cast<double>(closed) / n - a * b});
    }
  return worst;
}

// L2-star discrepancy of a point set in [0, 1)^d, by Warnock's formula
// (T. T. Warnock, "Computational investigations of low-discrepancy point
// sets", 1972):
//   T^2 = 3^-d - 2^(1-d)/n sum_i prod_k (1 - x_ik^2)
//         + 1/n^2 sum_i sum_j prod_k (1 - max(x_ik, x_jk)).
// For Monte Carlo points its expectation is (2^-d - 3^-d) / n.
double l2_star_discrepancy(const design_matrix& p) {
  const std::size_t d = p.front().size();
  const double n = static_cast<double>(p.size());
  double single = 0, pairs = 0;
  for (const auto& x : p) {
    double prod = 1;
    for (std::size_t k = 0; k < d; ++k) prod *= 1 - x[k] * x[k];
    single += prod;
    for (const auto& y : p) {
      double q = 1;
      for (std::size_t k = 0; k < d; ++k) q *= 1 - std::max(x[k], y[k]);
      pairs += q;
    }
  }
  const double t2 = std::pow(3.0, -static_cast<double>(d)) -
                    std::pow(2.0, 1 - static_cast<double>(d)) / n * single + pairs / (n * n);
  return std::sqrt(std::max(t2, 0.0));
}

// The smallest study file around a [parameters] section (which starts on line 5).
std::string study_with(const std::string& parameters) {
  return "[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n[parameters]\n" + parameters +
         "[[fields]]\nname = \"u\"\nsize = 1\n";
}

std::string names_list(std::size_t n) {
  std::string out = "names = [";
  for (std::size_t i = 0; i < n; ++i) out += (i ? ", \"p" : "\"p") + std::to_string(i) + "\"";
  return out + "]\n";
}

}  // namespace

TEST_CASE("designs: every sampler gives n rows of values in [lo, hi)") {
  const std::vector<parameter_bounds> bounds = {{100, 500}, {0, 1}, {-1, 1}, {1e-9, 2e-9},
                                                {-1e300, 1e300}};
  for (const sampler_kind s : all_samplers)
    for (const bool scramble : {false, true}) {
      CAPTURE(to_string(s));
      CAPTURE(scramble);
      const auto d = draw_design(s, bounds, 300, 11, scramble);
      REQUIRE(d.size() == 300);
      for (const auto& row : d) {
        REQUIRE(row.size() == bounds.size());
        for (std::size_t j = 0; j < row.size(); ++j) {
          CHECK(row[j] >= bounds[j].lo);
          CHECK(row[j] < bounds[j].hi);
        }
      }
    }
  for (const sampler_kind s : all_samplers) CHECK(draw_design(s, bounds, 0, 1).empty());
}

TEST_CASE("designs: make_design follows parameters.sampler and parameters.scramble") {
  parameters_config p = five_parameters(64);
  for (const sampler_kind s : all_samplers)
    for (const bool scramble : {false, true}) {
      CAPTURE(to_string(s));
      p.sampler = s;
      p.scramble = scramble;
      CHECK(make_design(p, 5) == draw_design(s, p.bounds, 64, 5, scramble));
    }
  // The uniform sampler is the one pinned above, whichever way it is asked for.
  CHECK(draw_design(sampler_kind::uniform, p.bounds, 64, 5) == uniform_design(p, 5));
  CHECK(draw_design(sampler_kind::uniform, p.bounds, 64, 5, true) == uniform_design(p, 5));
}

TEST_CASE("lhs: exactly one point in each of the n strata of every dimension") {
  for (const std::size_t n : {1u, 2u, 3u, 7u, 100u, 1000u, 4099u}) {
    CAPTURE(n);
    // In the unit cube, stratum k is [k/n, (k+1)/n): the sorted values of a
    // dimension have value k in stratum k exactly when every stratum holds one.
    const auto d = draw_design(sampler_kind::lhs, unit_bounds(6), n, n * 31 + 1);
    REQUIRE(d.size() == n);
    for (std::size_t j = 0; j < 6; ++j) {
      CAPTURE(j);
      std::vector<double> v;
      for (const auto& row : d) v.push_back(row[j]);
      std::sort(v.begin(), v.end());
      std::size_t misplaced = 0;
      for (std::size_t k = 0; k < n; ++k)
        misplaced += !(v[k] >= static_cast<double>(k) / static_cast<double>(n) &&
                       v[k] < static_cast<double>(k + 1) / static_cast<double>(n));
      CHECK(misplaced == 0);
    }
  }
  // In other bounds the strata are the images of those, lo + k/n (hi - lo).
  const auto p = five_parameters(500);
  const auto d = draw_design(sampler_kind::lhs, p.bounds, 500, 3);
  for (std::size_t j = 0; j < p.bounds.size(); ++j) {
    CAPTURE(j);
    const auto [lo, hi] = p.bounds[j];
    std::vector<double> v;
    for (const auto& row : d) v.push_back(row[j]);
    std::sort(v.begin(), v.end());
    std::size_t misplaced = 0;
    for (std::size_t k = 0; k < 500; ++k)
      misplaced += !(v[k] >= lo + k / 500.0 * (hi - lo) && v[k] <= lo + (k + 1) / 500.0 * (hi - lo));
    CHECK(misplaced == 0);
  }
}

TEST_CASE("lhs: the same seed gives the same design, another seed another one") {
  const auto p = five_parameters(200);
  const auto a = draw_design(sampler_kind::lhs, p.bounds, 200, 9);
  CHECK(a == draw_design(sampler_kind::lhs, p.bounds, 200, 9));
  const auto b = draw_design(sampler_kind::lhs, p.bounds, 200, 10);
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < a[i].size(); ++j) same += a[i][j] == b[i][j];
  CHECK(same == 0);
}

TEST_CASE("halton: the first points are the radical inverses in bases 2, 3, 5") {
  // Halton (1960): coordinate k of point i (i = 1, 2, ...) is the radical
  // inverse of i in the k-th prime: i written in base b, digits mirrored
  // about the point. GSL's gsl_qrng_halton starts at i = 1 (gsl/qrng/halton.c).
  //   i = 1: 1/2, 1/3, 1/5      i = 2: 1/4, 2/3, 2/5    i = 3: 3/4, 1/9, 3/5
  //   i = 4: 1/8, 4/9, 4/5      i = 5: 5/8, 7/9, 1/25   i = 6: 3/8, 2/9, 6/25
  check_rows(unit_design(sampler_kind::halton, 3, 8, 0),
             {{1. / 2, 1. / 3, 1. / 5},
              {1. / 4, 2. / 3, 2. / 5},
              {3. / 4, 1. / 9, 3. / 5},
              {1. / 8, 4. / 9, 4. / 5},
              {5. / 8, 7. / 9, 1. / 25},
              {3. / 8, 2. / 9, 6. / 25},
              {7. / 8, 5. / 9, 11. / 25},
              {1. / 16, 8. / 9, 16. / 25}});
  // The seed plays no part without scrambling.
  CHECK(unit_design(sampler_kind::halton, 3, 8, 0) == unit_design(sampler_kind::halton, 3, 8, 77));
}

TEST_CASE("reverse halton: the radical inverses with digits d mapped to b - d") {
  // Vandewoestyne & Cools (2006), "Good permutations for deterministic
  // scrambled Halton sequences in terms of L2-discrepancy", as in GSL's
  // gsl_qrng_reversehalton (gsl/qrng/reversehalton.c): every non-zero digit
  // d becomes b - d. Base 2 is unchanged; i = 1 in base 3 is 0.1 -> 0.2 = 2/3,
  // i = 5 in base 5 is 0.01 -> 0.04 = 4/25.
  check_rows(unit_design(sampler_kind::reverse_halton, 3, 6, 0),
             {{1. / 2, 2. / 3, 4. / 5},
              {1. / 4, 1. / 3, 3. / 5},
              {3. / 4, 2. / 9, 2. / 5},
              {1. / 8, 8. / 9, 1. / 5},
              {5. / 8, 5. / 9, 4. / 25},
              {3. / 8, 1. / 9, 24. / 25}});
}

TEST_CASE("sobol: the first points in GSL's ordering") {
  // The GSL manual ("Quasi-Random Sequences", example program printing the
  // 2-dimensional Sobol sequence) lists these first points; GSL's Sobol
  // (Antonov & Saleev Gray-code order, Bratley & Fox direction numbers)
  // starts at 1/2, not at the origin. They are dyadic: exact in binary.
  check_rows(unit_design(sampler_kind::sobol, 2, 8, 0), {{0.5, 0.5},
                                                          {0.75, 0.25},
                                                          {0.25, 0.75},
                                                          {0.375, 0.375},
                                                          {0.875, 0.875},
                                                          {0.625, 0.125},
                                                          {0.125, 0.625},
                                                          {0.1875, 0.3125}});
  // Lower dimensions are the first columns of higher ones.
  const auto d40 = unit_design(sampler_kind::sobol, 40, 16, 0);
  const auto d2 = unit_design(sampler_kind::sobol, 2, 16, 0);
  for (std::size_t i = 0; i < 16; ++i) {
    CHECK(d40[i][0] == d2[i][0]);
    CHECK(d40[i][1] == d2[i][1]);
  }
  // Every 2^m first points put one point in each dyadic interval of length
  // 2^-m in every dimension (a (0, m, 1)-net per coordinate).
  const auto d = unit_design(sampler_kind::sobol, 40, 255, 0);
  for (std::size_t j = 0; j < 40; ++j) {
    std::vector<int> hits(256, 0);
    hits[0] = 1;  // the point 0 that GSL's sequence leaves out
    for (const auto& row : d) ++hits[static_cast<std::size_t>(row[j] * 256)];
    CAPTURE(j);
    CHECK(std::count(hits.begin(), hits.end(), 1) == 256);
  }
}

TEST_CASE("halton and sobol: lower star discrepancy than Monte Carlo at the same n") {
  // Exact star discrepancy in 2-D. Monte Carlo's is of order 1/sqrt(n), that
  // of the low-discrepancy sequences (log n)^2 / n.
  for (const std::size_t n : {64u, 128u, 256u}) {
    double mc_best = 1;
    for (std::uint64_t seed = 0; seed < 5; ++seed)
      mc_best = std::min(mc_best, star_discrepancy_2d(unit_design(sampler_kind::uniform, 2, n, seed)));
    for (const sampler_kind s : quasi_random)
      for (const bool scramble : {false, true}) {
        const double qmc = star_discrepancy_2d(unit_design(s, 2, n, 42, scramble));
        CAPTURE(n);
        CAPTURE(to_string(s));
        CAPTURE(scramble);
        CAPTURE(mc_best);
        CHECK(qmc < mc_best);
      }
  }
}

TEST_CASE("halton and sobol: lower L2-star discrepancy than Monte Carlo in 5-D") {
  const std::size_t n = 512;
  double mc_best = 1;
  for (std::uint64_t seed = 0; seed < 5; ++seed)
    mc_best = std::min(mc_best, l2_star_discrepancy(unit_design(sampler_kind::uniform, 5, n, seed)));
  // Sanity of the formula: Monte Carlo's is near its expectation.
  CHECK(mc_best < 2 * std::sqrt((std::pow(2.0, -5) - std::pow(3.0, -5)) / n));
  CHECK(mc_best > 0.2 * std::sqrt((std::pow(2.0, -5) - std::pow(3.0, -5)) / n));
  for (const sampler_kind s : quasi_random)
    for (const bool scramble : {false, true}) {
      const double qmc = l2_star_discrepancy(unit_design(s, 5, n, 42, scramble));
      CAPTURE(to_string(s));
      CAPTURE(scramble);
      CAPTURE(mc_best);
      CHECK(qmc < mc_best);
    }
}

TEST_CASE("scramble: a Cranley-Patterson shift, reproducible from the seed") {
  for (const sampler_kind s : quasi_random) {
    CAPTURE(to_string(s));
    const auto plain = unit_design(s, 4, 100, 0);
    const auto a = unit_design(s, 4, 100, 7, true);
    CHECK(a == unit_design(s, 4, 100, 7, true));
    const auto b = unit_design(s, 4, 100, 8, true);
    CHECK(a != b);
    CHECK(a != plain);
    // Every point moves by the same shift modulo 1 in each dimension.
    for (std::size_t j = 0; j < 4; ++j) {
      const double shift = std::fmod(a[0][j] - plain[0][j] + 1, 1.0);
      for (std::size_t i = 0; i < a.size(); ++i) {
        CAPTURE(i);
        CHECK(std::abs(std::fmod(a[i][j] - plain[i][j] + 1, 1.0) - shift) < 1e-12);
      }
    }
  }
}

TEST_CASE("halton and sobol: a longer design starts with the shorter one") {
  const auto p = five_parameters(0);
  for (const sampler_kind s : quasi_random)
    for (const bool scramble : {false, true}) {
      CAPTURE(to_string(s));
      const auto longer = draw_design(s, p.bounds, 90, 4, scramble);
      CHECK(design_matrix(longer.begin(), longer.begin() + 30) == draw_design(s, p.bounds, 30, 4, scramble));
    }
}

TEST_CASE("dimension and size limits: GSL's, refused with a clear message") {
  CHECK(max_parameters(sampler_kind::sobol) == 40);
  CHECK(max_parameters(sampler_kind::halton) == 1229);
  CHECK(max_parameters(sampler_kind::reverse_halton) == 1229);
  CHECK(max_count(sampler_kind::sobol) == (1u << 30) - 1);
  CHECK(max_count(sampler_kind::halton) == 2147483647u);
  CHECK(unit_design(sampler_kind::sobol, 40, 3, 0).size() == 3);
  CHECK(unit_design(sampler_kind::halton, 1229, 3, 0).size() == 3);
  CHECK(unit_design(sampler_kind::reverse_halton, 1229, 3, 0).size() == 3);
  CHECK(unit_design(sampler_kind::lhs, 5000, 3, 0).size() == 3);
  auto message = [](sampler_kind s, std::size_t d, std::size_t n) -> std::string {
    try {
      draw_design(s, unit_bounds(d), n, 0);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK(message(sampler_kind::sobol, 41, 1) ==
        "draw_design: sampler \"sobol\" supports at most 40 parameters, got 41");
  CHECK(message(sampler_kind::halton, 1230, 1) ==
        "draw_design: sampler \"halton\" supports at most 1229 parameters, got 1230");
  CHECK(message(sampler_kind::reverse_halton, 1230, 1) ==
        "draw_design: sampler \"reverse-halton\" supports at most 1229 parameters, got 1230");
  CHECK(message(sampler_kind::sobol, 1, std::size_t{1} << 30) ==
        "draw_design: sampler \"sobol\" supports at most 1073741823 points, got 1073741824");

  // In a study file: the position of parameters.sampler (or count).
  CHECK(error_of(study_with(names_list(41) + "sampler = \"sobol\"\ncount = 1\n")) ==
        "s.toml:7:11: parameters.sampler: \"sobol\" supports at most 40 parameters, got 41 names");
  CHECK(error_of(study_with(names_list(40) + "sampler = \"sobol\"\ncount = 1\n")) == "no error");
  CHECK(error_of(study_with(names_list(1230) + "sampler = \"halton\"\ncount = 1\n")) ==
        "s.toml:7:11: parameters.sampler: \"halton\" supports at most 1229 parameters, got 1230 names");
  CHECK(error_of(study_with(names_list(1230) + "sampler = \"reverse-halton\"\ncount = 1\n")) ==
        "s.toml:7:11: parameters.sampler: \"reverse-halton\" supports at most 1229 parameters, got "
        "1230 names");
  CHECK(error_of(study_with(names_list(1230) + "sampler = \"lhs\"\ncount = 1\n")) == "no error");
  CHECK(error_of(study_with(names_list(2) + "sampler = \"sobol\"\ncount = 1073741824\n")) ==
        "s.toml:8:9: parameters.count: sampler \"sobol\" supports at most 1073741823 simulations, "
        "got 1073741824");
  CHECK(error_of(study_with(names_list(2) + "sampler = \"halton\"\ncount = 4294967295\n")) ==
        "s.toml:8:9: parameters.count: sampler \"halton\" supports at most 2147483647 simulations, "
        "got 4294967295");
}

TEST_CASE("study file: sampler names and scramble") {
  const std::pair<const char*, sampler_kind> names[] = {
      {"uniform", sampler_kind::uniform}, {"lhs", sampler_kind::lhs},
      {"halton", sampler_kind::halton},   {"reverse-halton", sampler_kind::reverse_halton},
      {"sobol", sampler_kind::sobol}};
  for (const auto& [name, kind] : names) {
    CAPTURE(name);
    const auto c = parse_study(study_with(names_list(3) + "sampler = \"" + name + "\"\ncount = 5\n"), "s.toml");
    CHECK(c.parameters.sampler == kind);
    CHECK(!c.parameters.scramble);
    CHECK(std::string(to_string(kind)) == name);
  }
  const auto c = parse_study(study_with(names_list(3) + "sampler = \"sobol\"\nscramble = true\ncount = 5\n"),
                             "s.toml");
  CHECK(c.parameters.scramble);
  // to_toml writes both keys and reads back equal; equality sees scramble.
  const std::string written = to_toml(c);
  CHECK(written.find("sampler = \"sobol\"\nscramble = true\n") != std::string::npos);
  CHECK(parse_study(written, "resolved.toml") == c);
  study_config other = c;
  other.parameters.scramble = false;
  CHECK(other != c);
  CHECK(to_toml(other).find("scramble = false\n") != std::string::npos);

  CHECK(error_of(study_with(names_list(3) + "sampler = \"lhs\"\nscramble = true\ncount = 5\n")) ==
        "s.toml:8:12: parameters.scramble: true requires a quasi-random sampler (\"halton\", "
        "\"reverse-halton\", \"sobol\"), got \"lhs\"");
  CHECK(error_of(study_with(names_list(3) + "scramble = true\ncount = 5\n")) ==
        "s.toml:7:12: parameters.scramble: true requires a quasi-random sampler (\"halton\", "
        "\"reverse-halton\", \"sobol\"), got \"uniform\"");
  CHECK(error_of(study_with(names_list(3) + "sampler = \"halton\"\nscramble = 1\ncount = 5\n")) ==
        "s.toml:8:12: parameters.scramble: expected a boolean, got an integer");
}
