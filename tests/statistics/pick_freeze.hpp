// Test data for the statistics tests and benchmark: a deterministic random
// source (same numbers on every platform: no std::*_distribution) and the
// Ishigami function with its pick-freeze design.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace melissa::testing {

class random_source {
 public:
  explicit random_source(std::uint64_t seed) : engine_(seed) {}
  // Uniform in [0, 1) from the top 53 bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal by Box–Muller (one of the pair).
  double normal() {
    double u = 1.0 - uniform();  // (0, 1]
    double v = uniform();
    return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * M_PI * v);
  }
  double exponential() { return -std::log(1.0 - uniform()); }

 private:
  std::mt19937_64 engine_;
};

// Ishigami: Y = sin X1 + a sin^2 X2 + b X3^4 sin X1, X_i ~ U(-pi, pi).
struct ishigami {
  double a = 7.0;
  double b = 0.1;
  static constexpr std::size_t parameters = 3;

  double operator()(const double* x) const {
    return std::sin(x[0]) + a * std::sin(x[1]) * std::sin(x[1]) + b * std::pow(x[2], 4) * std::sin(x[0]);
  }
  double variance() const {
    return a * a / 8.0 + b * std::pow(M_PI, 4) / 5.0 + b * b * std::pow(M_PI, 8) / 18.0 + 0.5;
  }
  // Analytic first-order and total indices of parameter k.
  double first(std::size_t k) const {
    double v1 = 0.5 * std::pow(1.0 + b * std::pow(M_PI, 4) / 5.0, 2);
    double v2 = a * a / 8.0;
    return (k == 0 ? v1 : k == 1 ? v2 : 0.0) / variance();
  }
  double total(std::size_t k) const {
    double v13 = 8.0 * b * b * std::pow(M_PI, 8) / 225.0;
    return k == 0 ? first(0) + v13 / variance() : k == 1 ? first(1) : v13 / variance();
  }
};

// One pick-freeze group's inputs: rows A, B, then C_k = A with column k from
// B, each `p` values (row-major, (p + 2) x p).
inline std::vector<double> pick_freeze_rows(random_source& rng, std::size_t p, double lo, double hi) {
  std::vector<double> a(p), b(p);
  for (auto& v : a) v = rng.uniform(lo, hi);
  for (auto& v : b) v = rng.uniform(lo, hi);
  std::vector<double> rows;
  rows.insert(rows.end(), a.begin(), a.end());
  rows.insert(rows.end(), b.begin(), b.end());
  for (std::size_t k = 0; k < p; ++k) {
    std::vector<double> c = a;
    c[k] = b[k];
    rows.insert(rows.end(), c.begin(), c.end());
  }
  return rows;
}

}  // namespace melissa::testing
