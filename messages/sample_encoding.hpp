// How a training sample's input row is built from a simulation's parameters
// and a time step, in one place: the online buffers, the offline loader and
// the validation set must encode identically or the model learns nonsense.
// Input row = every parameter mapped from [lo, hi] to [0, 1], then the time
// step divided by time_scale (the number of steps of a simulation), so every
// input lies in [0, 1]. Plain C++.
#pragma once

#include <cstdint>
#include <vector>

namespace melissa {

struct sample_encoder {
  std::vector<double> lo, hi;  // parameter bounds, one pair per parameter
  double time_scale = 1;       // > 0

  std::uint32_t input_dim() const { return static_cast<std::uint32_t>(lo.size()) + 1; }

  // Writes input_dim() values to `out`; `params` has lo.size() values.
  void encode(const double* params, std::uint32_t time_step, float* out) const {
    for (std::size_t j = 0; j < lo.size(); ++j)
      out[j] = static_cast<float>((params[j] - lo[j]) / (hi[j] - lo[j]));
    out[lo.size()] = static_cast<float>(time_step / time_scale);
  }
};

}  // namespace melissa
