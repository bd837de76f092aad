#include "config/design.hpp"

#include <cmath>
#include <random>
#include <stdexcept>

namespace melissa::config {

design_matrix uniform_design(const parameters_config& parameters, std::uint64_t seed) {
  if (parameters.bounds.size() != parameters.names.size())
    throw std::invalid_argument("uniform_design: one pair of bounds per parameter name is needed");
  std::mt19937_64 rng(seed);
  design_matrix rows(parameters.count, std::vector<double>(parameters.names.size()));
  for (auto& row : rows) {
    for (std::size_t j = 0; j < row.size(); ++j) {
      const auto [lo, hi] = parameters.bounds[j];
      // 53 random bits: every double in [0, 1) that this yields is exact.
      const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
      double v = lo + u * (hi - lo);
      // Rounding of lo + u * (hi - lo) can land on hi itself; keep [lo, hi).
      if (v >= hi) v = std::nextafter(hi, lo);
      row[j] = v;
    }
  }
  return rows;
}

design_matrix make_design(const parameters_config& parameters, std::uint64_t seed) {
  switch (parameters.sampler) {
    case sampler_kind::uniform:
      return uniform_design(parameters, seed);
  }
  throw std::invalid_argument("make_design: unknown sampler");
}

}  // namespace melissa::config
