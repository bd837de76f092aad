#include "config/design.hpp"

#include <cstdio>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <memory>
#include <new>
#include <random>
#include <stdexcept>
#include <string>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_qrng.h>

namespace melissa::config {
namespace {

// 53 random bits: every double in [0, 1) that this yields is exact, and the
// value does not depend on the standard library (unlike the distributions).
double unit_draw(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Uniform integer in [0, m), m >= 1, without modulo bias (rejection of the
// 2^64 mod m lowest values), again independent of the standard library.
std::uint64_t bounded_draw(std::mt19937_64& rng, std::uint64_t m) {
  const std::uint64_t reject_below = (0 - m) % m;  // 2^64 mod m
  for (;;) {
    const std::uint64_t r = rng();
    if (r >= reject_below) return r % m;
  }
}

// u in [0, 1) to [lo, hi).
double to_bounds(double u, parameter_bounds b) {
  const double v = b.lo + u * (b.hi - b.lo);
  // Rounding of lo + u * (hi - lo) can land on hi itself; keep [lo, hi).
  return v >= b.hi ? std::nextafter(b.hi, b.lo) : v;
}

const gsl_qrng_type* gsl_type(sampler_kind s) {
  switch (s) {
    case sampler_kind::halton: return gsl_qrng_halton;
    case sampler_kind::reverse_halton: return gsl_qrng_reversehalton;
    case sampler_kind::sobol: return gsl_qrng_sobol;
    case sampler_kind::uniform:
    case sampler_kind::lhs: return nullptr;
  }
  return nullptr;
}

design_matrix uniform_unit(std::size_t d, std::size_t n, std::uint64_t seed) {
  // Row by row: the order the existing (pinned) uniform designs were drawn in.
  std::mt19937_64 rng(seed);
  design_matrix rows(n, std::vector<double>(d));
  for (auto& row : rows)
    for (auto& x : row) x = unit_draw(rng);
  return rows;
}

design_matrix lhs_unit(std::size_t d, std::size_t n, std::uint64_t seed) {
  // Dimension by dimension: a random permutation of the strata (Fisher-Yates),
  // then one uniform position inside each stratum.
  std::mt19937_64 rng(seed);
  design_matrix rows(n, std::vector<double>(d));
  std::vector<std::size_t> stratum(n);
  for (std::size_t j = 0; j < d; ++j) {
    for (std::size_t i = 0; i < n; ++i) stratum[i] = i;
    for (std::size_t i = n; i > 1; --i) std::swap(stratum[i - 1], stratum[bounded_draw(rng, i)]);
    for (std::size_t i = 0; i < n; ++i) {
      const auto k = static_cast<double>(stratum[i]);
      const double lo = k / static_cast<double>(n);
      const double hi = (k + 1) / static_cast<double>(n);
      // (k + u) / n can round onto the next stratum's edge: keep it in [lo, hi).
      rows[i][j] = std::clamp((k + unit_draw(rng)) / static_cast<double>(n), lo,
                              std::nextafter(hi, 0.0));
    }
  }
  return rows;
}

design_matrix qrng_unit(sampler_kind s, std::size_t d, std::size_t n, std::uint64_t seed,
                        bool scramble) {
  design_matrix rows(n, std::vector<double>(d));
  if (d == 0) return rows;
  // Dimensions were checked against max_parameters: gsl_qrng_alloc never
  // reaches GSL's error handler (whose default aborts).
  const std::unique_ptr<gsl_qrng, void (*)(gsl_qrng*)> q(
      gsl_qrng_alloc(gsl_type(s), static_cast<unsigned>(d)), gsl_qrng_free);
  if (!q) throw std::bad_alloc();
  std::vector<double> shift(d, 0.0);
  if (scramble) {
    std::mt19937_64 rng(seed);
    for (auto& x : shift) x = unit_draw(rng);
  }
  for (auto& row : rows) {
    if (gsl_qrng_get(q.get(), row.data()) != GSL_SUCCESS)
      throw std::invalid_argument(std::string("draw_design: GSL's ") + gsl_qrng_name(q.get()) +
                                  " generator is exhausted");
    if (!scramble) continue;
    for (std::size_t j = 0; j < d; ++j) {
      // x, shift < 1 so x + shift < 2, and x + shift - 1 is exact.
      const double t = row[j] + shift[j];
      row[j] = t >= 1.0 ? t - 1.0 : t;
    }
  }
  return rows;
}

}  // namespace

std::size_t max_parameters(sampler_kind s) {
  const gsl_qrng_type* t = gsl_type(s);
  return t ? t->max_dimension : std::numeric_limits<std::size_t>::max();
}

std::uint64_t max_count(sampler_kind s) {
  switch (s) {
    // gsl/qrng/sobol.c: 30-bit direction numbers; the point after the
    // (2^30 - 1)th would need a 31st bit and gsl_qrng_get fails.
    case sampler_kind::sobol: return (std::uint64_t{1} << 30) - 1;
    // gsl/qrng/halton.c, reversehalton.c: the index goes through an int.
    case sampler_kind::halton:
    case sampler_kind::reverse_halton: return std::numeric_limits<std::int32_t>::max();
    case sampler_kind::uniform:
    case sampler_kind::lhs: break;
  }
  return std::numeric_limits<std::uint64_t>::max();
}

design_matrix unit_design(sampler_kind sampler, std::size_t dimensions, std::size_t n,
                          std::uint64_t seed, bool scramble) {
  const std::string name = to_string(sampler);
  if (dimensions > max_parameters(sampler))
    throw std::invalid_argument("draw_design: sampler \"" + name + "\" supports at most " +
                                std::to_string(max_parameters(sampler)) + " parameters, got " +
                                std::to_string(dimensions));
  if (n > max_count(sampler))
    throw std::invalid_argument("draw_design: sampler \"" + name + "\" supports at most " +
                                std::to_string(max_count(sampler)) + " points, got " +
                                std::to_string(n));
  switch (sampler) {
    case sampler_kind::uniform: return uniform_unit(dimensions, n, seed);
    case sampler_kind::lhs: return lhs_unit(dimensions, n, seed);
    case sampler_kind::halton:
    case sampler_kind::reverse_halton:
    case sampler_kind::sobol: return qrng_unit(sampler, dimensions, n, seed, scramble);
  }
  throw std::invalid_argument("draw_design: unknown sampler");
}

design_matrix draw_design(sampler_kind sampler, const std::vector<parameter_bounds>& bounds,
                          std::size_t n, std::uint64_t seed, bool scramble) {
  design_matrix rows = unit_design(sampler, bounds.size(), n, seed, scramble);
  for (auto& row : rows)
    for (std::size_t j = 0; j < row.size(); ++j) row[j] = to_bounds(row[j], bounds[j]);
  return rows;
}

design_matrix uniform_design(const parameters_config& parameters, std::uint64_t seed) {
  if (parameters.bounds.size() != parameters.names.size())
    throw std::invalid_argument("uniform_design: one pair of bounds per parameter name is needed");
  return draw_design(sampler_kind::uniform, parameters.bounds, parameters.count, seed);
}

design_matrix make_design(const parameters_config& parameters, std::uint64_t seed) {
  if (parameters.bounds.size() != parameters.names.size())
    throw std::invalid_argument("make_design: one pair of bounds per parameter name is needed");
  return draw_design(parameters.sampler, parameters.bounds, parameters.count, seed,
                     parameters.scramble);
}

design_matrix make_study_design(const study_config& study) {
  const std::uint32_t size = group_size(study);
  if (size == 1) return make_design(study.parameters, study.study.seed);
  const auto& parameters = study.parameters;
  const std::size_t p = parameters.names.size();
  if (parameters.bounds.size() != p)
    throw std::invalid_argument("make_study_design: one pair of bounds per parameter name is needed");
  std::vector<parameter_bounds> both = parameters.bounds;
  both.insert(both.end(), parameters.bounds.begin(), parameters.bounds.end());
  const design_matrix ab = draw_design(parameters.sampler, both, parameters.count, study.study.seed,
                                       parameters.scramble);
  design_matrix rows;
  rows.reserve(ab.size() * size);
  for (const auto& row : ab) {
    const std::vector<double> a(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(p));
    const std::vector<double> b(row.begin() + static_cast<std::ptrdiff_t>(p), row.end());
    rows.push_back(a);
    rows.push_back(b);
    for (std::size_t k = 0; k < p; ++k) {
      rows.push_back(a);
      rows.back()[k] = b[k];
    }
  }
  return rows;
}

std::string format_parameters(const std::vector<double>& values) {
  std::string text;
  char buf[64];
  for (double v : values) {
    std::snprintf(buf, sizeof buf, "%.17g", v);
    text += (text.empty() ? "" : ",") + std::string(buf);
  }
  return text;
}

std::optional<std::vector<double>> parse_parameters(const std::string& text, std::string* error) {
  std::vector<double> values;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    const auto item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    errno = 0;
    const double v = item.empty() ? 0 : std::strtod(item.c_str(), &end);
    if (item.empty() || end != item.c_str() + item.size() || !std::isfinite(v) ||
        std::isspace(static_cast<unsigned char>(item.front()))) {
      if (error) *error = "parameter " + std::to_string(values.size()) + " is not a finite number: '" +
                          item.substr(0, 40) + "'";
      return std::nullopt;
    }
    values.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return values;
}

}  // namespace melissa::config
