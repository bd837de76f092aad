// field_statistics against two-pass references computed here from the same
// data, stability cases, the Ishigami function and the saved state.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "actors/statistics/field_statistics.hpp"
#include "tests/statistics/pick_freeze.hpp"

using melissa::field_statistics;
using melissa::statistics_options;
using melissa::testing::ishigami;
using melissa::testing::random_source;

namespace {

// An ensemble: values[s][c], simulation s, cell c.
using ensemble = std::vector<std::vector<double>>;

struct two_pass {
  std::vector<double> mean, variance, skewness, kurtosis;
};

// The textbook two-pass estimators (sample mean first, then central sums),
// with the same definitions as OpenTURNS: unbiased variance, adjusted G1,
// unbiased excess G2.
two_pass reference(const ensemble& x) {
  const std::size_t n = x.size(), cells = x[0].size();
  two_pass r;
  for (std::size_t c = 0; c < cells; ++c) {
    long double sum = 0;
    for (std::size_t s = 0; s < n; ++s) sum += x[s][c];
    long double m = sum / n, s2 = 0, s3 = 0, s4 = 0;
    for (std::size_t s = 0; s < n; ++s) {
      long double d = x[s][c] - m;
      s2 += d * d;
      s3 += d * d * d;
      s4 += d * d * d * d;
    }
    double nn = static_cast<double>(n);
    double m2 = static_cast<double>(s2), m3 = static_cast<double>(s3), m4 = static_cast<double>(s4);
    r.mean.push_back(static_cast<double>(m));
    r.variance.push_back(m2 / (nn - 1));
    double g1 = std::sqrt(nn) * m3 / std::pow(m2, 1.5);
    r.skewness.push_back(std::sqrt(nn * (nn - 1)) / (nn - 2) * g1);
    double g2 = nn * m4 / (m2 * m2) - 3;
    r.kurtosis.push_back((nn - 1) / ((nn - 2) * (nn - 3)) * ((nn + 1) * g2 + 6));
  }
  return r;
}

void check_relative(const std::vector<double>& got, const std::vector<double>& want, double tolerance) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("cell " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= tolerance * std::abs(want[i]));
  }
}

double correlation_two_pass(const std::vector<double>& x, const std::vector<double>& y) {
  const std::size_t n = x.size();
  long double mx = 0, my = 0;
  for (std::size_t i = 0; i < n; ++i) mx += x[i], my += y[i];
  mx /= n;
  my /= n;
  long double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return static_cast<double>(sxy / std::sqrt(sxx * syy));
}

statistics_options all_options(std::size_t parameters = 0) {
  statistics_options o;
  o.moments = 4;
  o.min_max = true;
  o.thresholds = {-0.5, 1.25};
  o.quantiles = {0.1, 0.5};
  o.sobol = parameters >= 2;
  o.parameters = parameters;
  return o;
}

// Skewed, offset, per-cell scaled data: every cell has a different
// distribution, and the cell count is not a multiple of the update block.
ensemble skewed_ensemble(std::size_t sims, std::size_t cells, std::uint64_t seed) {
  random_source rng(seed);
  ensemble x(sims, std::vector<double>(cells));
  for (std::size_t s = 0; s < sims; ++s)
    for (std::size_t c = 0; c < cells; ++c)
      x[s][c] = 3.0 + 0.01 * c + (0.5 + c % 7) * (rng.exponential() - 1.0 + 0.3 * rng.normal());
  return x;
}

}  // namespace

TEST_CASE("statistics-moments: one-pass moments equal the two-pass reference to 1e-10") {
  const auto x = skewed_ensemble(300, 1300, 1);
  SUBCASE("double input") {
    field_statistics st(all_options(), 1300);
    for (std::size_t s = 0; s < x.size(); ++s) st.add(x[s].data(), x[s].size(), s);
    auto ref = reference(x);
    CHECK(st.simulations() == 300);
    check_relative(st.mean(), ref.mean, 1e-10);
    check_relative(st.variance(), ref.variance, 1e-10);
    check_relative(st.skewness(), ref.skewness, 1e-10);
    check_relative(st.kurtosis(), ref.kurtosis, 1e-10);
  }
  SUBCASE("float input accumulates in double") {
    ensemble xf = x;
    field_statistics st(all_options(), 1300);
    for (std::size_t s = 0; s < x.size(); ++s) {
      std::vector<float> f(x[s].begin(), x[s].end());
      for (std::size_t c = 0; c < f.size(); ++c) xf[s][c] = f[c];  // the reference sees the same floats
      st.add(f.data(), f.size(), s);
    }
    auto ref = reference(xf);
    check_relative(st.mean(), ref.mean, 1e-10);
    check_relative(st.variance(), ref.variance, 1e-10);
    check_relative(st.skewness(), ref.skewness, 1e-10);
    check_relative(st.kurtosis(), ref.kurtosis, 1e-10);
  }
  SUBCASE("fewer moments keep only what is asked") {
    for (int m = 1; m <= 3; ++m) {
      statistics_options o;
      o.moments = m;
      field_statistics st(o, 1300);
      for (std::size_t s = 0; s < x.size(); ++s) st.add(x[s].data(), x[s].size(), s);
      auto ref = reference(x);
      check_relative(st.mean(), ref.mean, 1e-10);
      if (m >= 2) check_relative(st.variance(), ref.variance, 1e-10);
      else CHECK_THROWS_AS(st.variance(), std::logic_error);
      if (m >= 3) check_relative(st.skewness(), ref.skewness, 1e-10);
      else CHECK_THROWS_AS(st.skewness(), std::logic_error);
      CHECK_THROWS_AS(st.kurtosis(), std::logic_error);
    }
  }
}

TEST_CASE("statistics-batch: add_batch equals the same add() calls bit for bit") {
  const auto x = skewed_ensemble(23, 1100, 8);
  statistics_options o = all_options();
  o.planned_simulations = 23;
  field_statistics one_by_one(o, 1100), batched(o, 1100);
  for (std::size_t s = 0; s < x.size(); ++s) one_by_one.add(x[s].data(), 1100, 100 + s);
  // Batches of 1, 7, 15 simulations (the first batch holds the first simulation).
  std::size_t s = 0;
  for (std::size_t k : {1u, 7u, 15u}) {
    std::vector<const double*> slices;
    std::vector<std::uint64_t> sims;
    for (std::size_t j = 0; j < k; ++j, ++s) slices.push_back(x[s].data()), sims.push_back(100 + s);
    batched.add_batch(slices.data(), sims.data(), k, 1100);
  }
  REQUIRE(s == x.size());
  CHECK(batched.simulations() == 23);
  CHECK(batched.mean() == one_by_one.mean());
  CHECK(batched.variance() == one_by_one.variance());
  CHECK(batched.skewness() == one_by_one.skewness());
  CHECK(batched.kurtosis() == one_by_one.kurtosis());
  CHECK(batched.min() == one_by_one.min());
  CHECK(batched.argmin() == one_by_one.argmin());
  CHECK(batched.max() == one_by_one.max());
  CHECK(batched.argmax() == one_by_one.argmax());
  CHECK(batched.threshold_count(0) == one_by_one.threshold_count(0));
  CHECK(batched.quantile(0) == one_by_one.quantile(0));
  CHECK(batched.quantile(1) == one_by_one.quantile(1));
  const double* none = nullptr;
  CHECK_THROWS_AS(batched.add_batch(&none, nullptr, 0, 5), std::invalid_argument);
}

TEST_CASE("statistics-not-enough-data: NaN until each estimator is defined") {
  field_statistics st(all_options(), 2);
  CHECK(std::isnan(st.mean()[0]));
  double v[4][2] = {{1, 2}, {3, 5}, {4, 4}, {8, 0}};
  std::size_t s = 0;
  st.add(v[s], 2, s), ++s;
  CHECK(st.mean()[1] == 2.0);
  CHECK(std::isnan(st.variance()[0]));
  st.add(v[s], 2, s), ++s;
  CHECK(st.variance()[0] == doctest::Approx(2.0));
  CHECK(std::isnan(st.skewness()[0]));
  st.add(v[s], 2, s), ++s;
  CHECK_FALSE(std::isnan(st.skewness()[0]));
  CHECK(std::isnan(st.kurtosis()[0]));
  st.add(v[s], 2, s), ++s;
  CHECK_FALSE(std::isnan(st.kurtosis()[0]));
}

TEST_CASE("statistics-min-max-thresholds: extremes, their simulations and exceedance counts are exact") {
  const auto x = skewed_ensemble(200, 700, 2);
  field_statistics st(all_options(), 700);
  for (std::size_t s = 0; s < x.size(); ++s) st.add(x[s].data(), x[s].size(), 1000 + s);
  auto lo = st.min(), hi = st.max();
  auto arglo = st.argmin(), arghi = st.argmax();
  auto above_low = st.threshold_count(0), above_high = st.threshold_count(1);
  for (std::size_t c = 0; c < 700; ++c) {
    double want_lo = x[0][c], want_hi = x[0][c];
    std::uint64_t want_arglo = 1000, want_arghi = 1000, count_low = 0, count_high = 0;
    for (std::size_t s = 0; s < x.size(); ++s) {
      if (x[s][c] < want_lo) want_lo = x[s][c], want_arglo = 1000 + s;
      if (x[s][c] > want_hi) want_hi = x[s][c], want_arghi = 1000 + s;
      count_low += x[s][c] > -0.5;
      count_high += x[s][c] > 1.25;
    }
    INFO("cell " << c);
    CHECK(lo[c] == want_lo);
    CHECK(hi[c] == want_hi);
    CHECK(arglo[c] == want_arglo);
    CHECK(arghi[c] == want_arghi);
    CHECK(above_low[c] == count_low);
    CHECK(above_high[c] == count_high);
  }
  // Neither threshold is trivial for this data.
  CHECK(*std::max_element(above_high.begin(), above_high.end()) > 0);
  CHECK(*std::min_element(above_low.begin(), above_low.end()) < 200);
  CHECK_THROWS_AS(st.threshold_count(2), std::logic_error);
}

TEST_CASE("statistics-quantiles: Robbins-Monro estimates within the documented rank tolerance") {
  // Documented (docs/statistics.md): with N planned simulations, over the
  // cells the mean of |F_N(q) - alpha| <= 1.5 sigma and its 99th percentile
  // <= 4 sigma, sigma = sqrt(alpha (1 - alpha) / N), F_N the empirical CDF
  // of the N values (normal and uniform data).
  const std::size_t sims = 1000, cells = 2000;
  for (int dist = 0; dist < 2; ++dist) {
    random_source rng(10 + dist);
    ensemble x(sims, std::vector<double>(cells));
    for (auto& row : x)
      for (std::size_t c = 0; c < cells; ++c) row[c] = (dist == 0 ? rng.normal() : rng.uniform()) * (1 + c % 5) + c;
    statistics_options o;
    o.quantiles = {0.05, 0.5, 0.95};
    o.planned_simulations = sims;
    field_statistics st(o, cells);
    for (std::size_t s = 0; s < sims; ++s) st.add(x[s].data(), cells, s);
    for (std::size_t k = 0; k < o.quantiles.size(); ++k) {
      const double alpha = o.quantiles[k];
      const double sigma = std::sqrt(alpha * (1 - alpha) / sims);
      auto q = st.quantile(k);
      std::vector<double> error(cells);
      for (std::size_t c = 0; c < cells; ++c) {
        std::size_t below = 0;
        for (std::size_t s = 0; s < sims; ++s) below += x[s][c] <= q[c];
        error[c] = std::abs(static_cast<double>(below) / sims - alpha);
      }
      double mean_error = 0;
      for (double e : error) mean_error += e / cells;
      std::sort(error.begin(), error.end());
      double p99 = error[cells * 99 / 100];
      INFO((dist == 0 ? "normal" : "uniform") << " alpha " << alpha << ": mean " << mean_error << ", p99 " << p99
                                              << ", sigma " << sigma);
      CHECK(mean_error <= 1.5 * sigma);
      CHECK(p99 <= 4 * sigma);
    }
  }
}

TEST_CASE("statistics-quantile-rule: the documented recursion, step by step") {
  // alpha = 0.5, N = 3: gamma_2 = 3/4, gamma_3 = 1; range C = 10 from step 2.
  statistics_options o;
  o.quantiles = {0.5};
  o.planned_simulations = 3;
  field_statistics st(o, 1);
  double x[] = {0.0, 10.0, 4.0};
  st.add(&x[0], 1, 0);
  CHECK(st.quantile(0)[0] == 0.0);
  st.add(&x[1], 1, 1);
  const double q2 = 0.0 - 10.0 / std::pow(2.0, 0.75) * (0.0 - 0.5);
  CHECK(st.quantile(0)[0] == doctest::Approx(q2).epsilon(1e-15));
  st.add(&x[2], 1, 2);
  CHECK(st.quantile(0)[0] == doctest::Approx(q2 + 10.0 / 3.0 * 0.5).epsilon(1e-15));
  // Without N the exponent stays 3/4.
  o.planned_simulations = 0;
  field_statistics unknown(o, 1);
  for (std::size_t s = 0; s < 3; ++s) unknown.add(&x[s], 1, s);
  CHECK(unknown.quantile(0)[0] == doctest::Approx(q2 + 10.0 / std::pow(3.0, 0.75) * 0.5).epsilon(1e-15));
}

TEST_CASE("statistics-large-offset: a field around 1e6 varying by 1e-3 keeps its variance") {
  const std::size_t sims = 2000, cells = 600;
  random_source rng(3);
  ensemble x(sims, std::vector<double>(cells));
  for (auto& row : x)
    for (std::size_t c = 0; c < cells; ++c) row[c] = 1e6 + c + 1e-3 * (rng.exponential() + rng.normal());
  field_statistics st(all_options(), cells);
  for (std::size_t s = 0; s < sims; ++s) st.add(x[s].data(), cells, s);
  auto ref = reference(x);
  check_relative(st.mean(), ref.mean, 1e-14);
  check_relative(st.variance(), ref.variance, 1e-6);
  check_relative(st.skewness(), ref.skewness, 1e-4);
  check_relative(st.kurtosis(), ref.kurtosis, 1e-4);
  // The test can fail: the textbook one-pass sum of squares loses it all.
  double sum = 0, sum2 = 0;
  for (std::size_t s = 0; s < sims; ++s) sum += x[s][0], sum2 += x[s][0] * x[s][0];
  double naive = (sum2 - sum * sum / sims) / (sims - 1);
  CHECK(std::abs(naive - ref.variance[0]) > 0.1 * ref.variance[0]);
}

TEST_CASE("statistics-constant-field: variance 0, skewness and kurtosis 0, Sobol indices 0 not NaN") {
  statistics_options o = all_options(3);
  const std::size_t cells = 3;  // cell 0 constant, cell 1 varying, cell 2 constant
  field_statistics st(o, cells);
  random_source rng(4);
  for (std::size_t g = 0; g < 50; ++g) {
    std::vector<std::vector<float>> members(5, std::vector<float>(cells));
    for (auto& m : members) m = {273.15f, static_cast<float>(rng.normal()), -1.0f};
    std::vector<const float*> ptrs;
    for (std::size_t i = 0; i < members.size(); ++i) {
      st.add(members[i].data(), cells, 5 * g + i);
      ptrs.push_back(members[i].data());
    }
    st.add_group(ptrs.data(), ptrs.size(), cells);
  }
  CHECK(st.simulations() == 250);
  CHECK(st.groups() == 50);
  for (std::size_t c : {0u, 2u}) {
    INFO("cell " << c);
    CHECK(st.variance()[c] == 0.0);
    CHECK(st.skewness()[c] == 0.0);
    CHECK(st.kurtosis()[c] == 0.0);
    CHECK(st.min()[c] == st.max()[c]);
    for (std::size_t k = 0; k < 3; ++k) {
      for (const auto& index : {st.sobol_first(k), st.sobol_total(k)}) {
        CHECK(index.value[c] == 0.0);
        CHECK(index.low[c] == 0.0);
        CHECK(index.high[c] == 0.0);
      }
    }
  }
  CHECK(st.variance()[1] > 0.5);
  CHECK(std::isfinite(st.widest_sobol_interval()));
}

TEST_CASE("statistics-sobol-reference: Martinez indices equal correlations computed in two passes") {
  // A p = 4 model on 700 cells with a different mix of parameters per cell.
  const std::size_t p = 4, cells = 700, groups = 300;
  field_statistics st(all_options(p), cells);
  random_source rng(5);
  // y[member][group][cell]
  std::vector<std::vector<std::vector<double>>> y(p + 2, std::vector<std::vector<double>>(groups));
  for (std::size_t g = 0; g < groups; ++g) {
    auto rows = melissa::testing::pick_freeze_rows(rng, p, 0.0, 1.0);
    std::vector<const double*> ptrs;
    for (std::size_t m = 0; m < p + 2; ++m) {
      const double* x = &rows[m * p];
      auto& out = y[m][g];
      out.resize(cells);
      for (std::size_t c = 0; c < cells; ++c)
        out[c] = (1 + c % 3) * x[0] + std::sin(6 * x[1]) * (c % 5) + x[2] * x[3] * 4 + 1e3;
      ptrs.push_back(out.data());
    }
    st.add_group(ptrs.data(), ptrs.size(), cells);
  }
  CHECK(st.groups() == groups);
  CHECK(st.simulations() == 0);  // add_group feeds the Sobol accumulators only
  const double half = 1.959963984540054 / std::sqrt(groups - 3.0);
  for (std::size_t k = 0; k < p; ++k) {
    auto first = st.sobol_first(k), total = st.sobol_total(k);
    for (std::size_t c = 0; c < cells; c += 7) {
      std::vector<double> a(groups), b(groups), ck(groups);
      for (std::size_t g = 0; g < groups; ++g) a[g] = y[0][g][c], b[g] = y[1][g][c], ck[g] = y[2 + k][g][c];
      double s = correlation_two_pass(b, ck), rho_a = correlation_two_pass(a, ck);
      INFO("parameter " << k << " cell " << c);
      CHECK(first.value[c] == doctest::Approx(s).epsilon(1e-10));
      CHECK(total.value[c] == doctest::Approx(1 - rho_a).epsilon(1e-10));
      CHECK(first.low[c] == doctest::Approx(std::tanh(std::atanh(s) - half)).epsilon(1e-9));
      CHECK(first.high[c] == doctest::Approx(std::tanh(std::atanh(s) + half)).epsilon(1e-9));
      CHECK(total.low[c] == doctest::Approx(1 - std::tanh(std::atanh(rho_a) + half)).epsilon(1e-9));
      CHECK(total.high[c] == doctest::Approx(1 - std::tanh(std::atanh(rho_a) - half)).epsilon(1e-9));
    }
  }
}

TEST_CASE("statistics-ishigami: 20000 groups give the analytic indices within 0.02, inside the 95 % intervals") {
  // Cells: the Ishigami output, an affine image of it (same indices), and
  // a constant. Members are sent as float, as the clients do.
  const ishigami f;
  const std::size_t p = 3, cells = 3, groups = 20000;
  field_statistics st(all_options(p), cells);
  random_source rng(2023);
  for (std::size_t g = 0; g < groups; ++g) {
    auto rows = melissa::testing::pick_freeze_rows(rng, p, -M_PI, M_PI);
    std::vector<std::vector<float>> members(p + 2);
    std::vector<const float*> ptrs;
    for (std::size_t m = 0; m < p + 2; ++m) {
      double y = f(&rows[m * p]);
      members[m] = {static_cast<float>(y), static_cast<float>(100 + 2 * y), 42.0f};
      ptrs.push_back(members[m].data());
      st.add(members[m].data(), cells, g * (p + 2) + m);
    }
    st.add_group(ptrs.data(), ptrs.size(), cells);
  }
  CHECK(st.groups() == groups);
  CHECK(st.simulations() == groups * (p + 2));
  CHECK(st.variance()[0] == doctest::Approx(f.variance()).epsilon(0.03));
  for (std::size_t k = 0; k < p; ++k) {
    auto first = st.sobol_first(k), total = st.sobol_total(k);
    for (std::size_t c = 0; c < 2; ++c) {
      INFO("parameter " << k << " cell " << c << ": S " << first.value[c] << " [" << first.low[c] << ", "
                        << first.high[c] << "] want " << f.first(k) << "; ST " << total.value[c] << " ["
                        << total.low[c] << ", " << total.high[c] << "] want " << f.total(k));
      CHECK(std::abs(first.value[c] - f.first(k)) <= 0.02);
      CHECK(std::abs(total.value[c] - f.total(k)) <= 0.02);
      CHECK(first.low[c] <= f.first(k));
      CHECK(f.first(k) <= first.high[c]);
      CHECK(total.low[c] <= f.total(k));
      CHECK(f.total(k) <= total.high[c]);
      CHECK(first.high[c] - first.low[c] < 0.05);
    }
    CHECK(first.value[2] == 0.0);
    CHECK(total.value[2] == 0.0);
  }
  // The affine image gives the same indices (up to float rounding).
  CHECK(st.sobol_first(0).value[1] == doctest::Approx(st.sobol_first(0).value[0]).epsilon(1e-4));
  double widest = st.widest_sobol_interval();
  CHECK(widest > 0.0);
  CHECK(widest < 0.05);
}

TEST_CASE("statistics-save-load: the restored state gives the same results and keeps accumulating identically") {
  const std::size_t p = 2, cells = 777;
  statistics_options o = all_options(p);
  o.planned_simulations = 400;
  field_statistics st(o, cells);
  random_source rng(6);
  auto feed = [&](field_statistics& target, random_source& source, std::size_t groups, std::size_t first_sim) {
    for (std::size_t g = 0; g < groups; ++g) {
      std::vector<std::vector<float>> members(p + 2, std::vector<float>(cells));
      std::vector<const float*> ptrs;
      for (std::size_t m = 0; m < p + 2; ++m) {
        for (auto& v : members[m]) v = static_cast<float>(source.normal() + 10);
        target.add(members[m].data(), cells, first_sim + g * (p + 2) + m);
        ptrs.push_back(members[m].data());
      }
      target.add_group(ptrs.data(), ptrs.size(), cells);
    }
  };
  feed(st, rng, 30, 0);
  std::stringstream saved;
  st.save(saved);
  field_statistics restored = field_statistics::load(saved);
  CHECK(restored.cells() == cells);
  CHECK(restored.simulations() == st.simulations());
  CHECK(restored.groups() == st.groups());
  CHECK(restored.options().thresholds == o.thresholds);
  CHECK(restored.options().quantiles == o.quantiles);
  CHECK(restored.options().planned_simulations == 400);

  auto same = [&](const field_statistics& x, const field_statistics& y) {
    CHECK(x.mean() == y.mean());
    CHECK(x.variance() == y.variance());
    CHECK(x.skewness() == y.skewness());
    CHECK(x.kurtosis() == y.kurtosis());
    CHECK(x.min() == y.min());
    CHECK(x.argmax() == y.argmax());
    CHECK(x.threshold_count(1) == y.threshold_count(1));
    CHECK(x.quantile(0) == y.quantile(0));
    CHECK(x.quantile(1) == y.quantile(1));
    for (std::size_t k = 0; k < p; ++k) {
      CHECK(x.sobol_first(k).value == y.sobol_first(k).value);
      CHECK(x.sobol_total(k).high == y.sobol_total(k).high);
    }
  };
  same(st, restored);
  // Continue both with the same data: bit-identical results.
  random_source r1(7), r2(7);
  feed(st, r1, 20, 1000);
  feed(restored, r2, 20, 1000);
  same(st, restored);
  CHECK(restored.groups() == 50);

  SUBCASE("bad input is refused with a reason") {
    std::string bytes;
    {
      std::stringstream s;
      st.save(s);
      bytes = s.str();
    }
    std::stringstream truncated(bytes.substr(0, bytes.size() - 5));
    CHECK_THROWS_WITH_AS(field_statistics::load(truncated), doctest::Contains("truncated"), std::runtime_error);
    std::string wrong = bytes;
    wrong[0] = 'X';
    std::stringstream bad_magic(wrong);
    CHECK_THROWS_WITH_AS(field_statistics::load(bad_magic), doctest::Contains("bad magic"), std::runtime_error);
    // A corrupt cell count is refused before anything is allocated.
    std::string huge = bytes;
    const std::size_t cells_at = bytes.find(std::string(reinterpret_cast<const char*>(&cells), 8));
    REQUIRE(cells_at != std::string::npos);
    const std::uint64_t too_many = std::uint64_t{1} << 39;
    huge.replace(cells_at, 8, std::string(reinterpret_cast<const char*>(&too_many), 8));
    std::stringstream corrupt(huge);
    CHECK_THROWS_WITH_AS(field_statistics::load(corrupt), doctest::Contains("cells need more than the"),
                         std::runtime_error);
    std::stringstream empty;
    CHECK_THROWS_AS(field_statistics::load(empty), std::runtime_error);
  }
}

TEST_CASE("statistics-bytes-per-cell: the documented accumulator size") {
  statistics_options o;
  o.moments = 4;
  o.min_max = true;
  o.thresholds = {0.0, 1.0};
  o.sobol = true;
  o.parameters = 5;
  CHECK(field_statistics::bytes_per_cell(o) == 264);  // docs/statistics.md, "Memory and cost"
  statistics_options mean_only;
  mean_only.moments = 1;
  CHECK(field_statistics::bytes_per_cell(mean_only) == 8);
  mean_only.quantiles = {0.5, 0.9};
  CHECK(field_statistics::bytes_per_cell(mean_only) == 8 + 16 + 16);  // min/max kept for the range
}

TEST_CASE("statistics-load-corrupt: damaged states are refused or loaded, never crash") {
  statistics_options o = all_options(3);
  o.planned_simulations = 10;
  field_statistics st(o, 40);
  random_source rng(9);
  std::vector<double> v(40);
  for (int s = 0; s < 5; ++s) {
    for (auto& x : v) x = rng.normal();
    st.add(v.data(), v.size(), s);
  }
  std::stringstream saved;
  st.save(saved);
  const std::string bytes = saved.str();
  std::size_t refused = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::string damaged = bytes;
    // Mostly the header (options, counts, sizes), sometimes anywhere; or a cut.
    int flips = 1 + static_cast<int>(rng.uniform() * 4);
    for (int f = 0; f < flips; ++f) {
      std::size_t at = rng.uniform() < 0.8 ? static_cast<std::size_t>(rng.uniform() * 120)
                                           : static_cast<std::size_t>(rng.uniform() * damaged.size());
      damaged[at] = static_cast<char>(rng.uniform() * 256);
    }
    if (rng.uniform() < 0.2) damaged.resize(static_cast<std::size_t>(rng.uniform() * damaged.size()));
    std::stringstream in(damaged);
    try {
      field_statistics loaded = field_statistics::load(in);
      (void)loaded.mean();  // a loaded state is usable
    } catch (const std::runtime_error&) {
      ++refused;
    }
  }
  CHECK(refused > 1000);
}

TEST_CASE("statistics-options: invalid combinations are refused with the offending option") {
  statistics_options o;
  o.moments = 5;
  CHECK_THROWS_WITH_AS(melissa::validate(o), "moments must be 1 to 4, not 5", std::invalid_argument);
  o.moments = 2;
  o.quantiles = {0.5, 1.5};
  CHECK_THROWS_WITH_AS(melissa::validate(o), "quantile 1.5 is outside (0, 1)", std::invalid_argument);
  o.quantiles = {0.0};
  CHECK_THROWS_WITH_AS(melissa::validate(o), "quantile 0 is outside (0, 1)", std::invalid_argument);
  o.quantiles = {0.25, 0.25};
  CHECK_THROWS_WITH_AS(melissa::validate(o), "quantile 0.25 is given twice", std::invalid_argument);
  o.quantiles = {};
  o.thresholds = {std::numeric_limits<double>::infinity()};
  CHECK_THROWS_WITH_AS(melissa::validate(o), "threshold inf is not a finite number", std::invalid_argument);
  o.thresholds = {};
  o.sobol = true;
  o.parameters = 1;
  CHECK_THROWS_WITH_AS(melissa::validate(o), "sobol needs at least 2 parameters, the study has 1",
                       std::invalid_argument);
  CHECK_THROWS_AS(field_statistics(o, 10), std::invalid_argument);
  o.parameters = 2;
  field_statistics st(o, 4);
  std::vector<float> v(4, 1.0f), short_slice(3, 1.0f);
  CHECK_THROWS_WITH_AS(st.add(short_slice.data(), 3, 0), "a simulation's slice has 3 values, the statistics hold 4 cells",
                       std::invalid_argument);
  const float* three[] = {v.data(), v.data(), v.data()};
  CHECK_THROWS_WITH_AS(st.add_group(three, 3, 4), "add_group: a pick-freeze group has 4 members, got 3",
                       std::invalid_argument);
  statistics_options no_sobol;
  field_statistics plain(no_sobol, 4);
  CHECK_THROWS_WITH_AS(plain.add_group(three, 3, 4), "add_group: sobol is not configured", std::invalid_argument);
  CHECK_THROWS_WITH_AS(plain.sobol_first(0), "statistic not configured: sobol", std::logic_error);
}
