// Writes a pick-freeze sample and field_statistics' results on it, for the
// OpenTURNS comparison (test_openturns.py):
//   write-pick-freeze-sample DIR [GROUPS]
// DIR/X.npy [G (p+2), p] and DIR/Y.npy [G (p+2), cells] in OpenTURNS' block
// order (all A rows, all B rows, then the rows C_1, ..., C_p); the values in
// Y are the floats the statistics received, widened to double.
// DIR/{mean,variance,skewness,kurtosis}.npy [cells] over every member, and
// DIR/sobol_{first,total}{,_low,_high}.npy [p, cells].
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "actors/statistics/field_statistics.hpp"
#include "messages/npy.hpp"
#include "tests/statistics/pick_freeze.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: write-pick-freeze-sample DIR [GROUPS]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::size_t groups = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1000;
  const std::size_t p = 3, cells = 4, members = p + 2;
  const melissa::testing::ishigami f;
  // Four outputs of the same inputs: Ishigami, an offset image of it, a
  // product model and a nearly additive one.
  auto outputs = [&](const double* x) -> std::vector<float> {
    double y = f(x);
    return {static_cast<float>(y), static_cast<float>(1e4 + 3 * y),
            static_cast<float>(std::cos(x[0]) * (1 + x[1] * x[1]) + 0.2 * x[2]),
            static_cast<float>(2 * x[0] + x[1] + 0.5 * x[2] + 0.3 * x[0] * x[2])};
  };

  melissa::statistics_options o;
  o.moments = 4;
  o.sobol = true;
  o.parameters = p;
  melissa::field_statistics st(o, cells);
  melissa::testing::random_source rng(12);
  std::vector<double> x(groups * members * p), y(groups * members * cells);
  for (std::size_t g = 0; g < groups; ++g) {
    auto rows = melissa::testing::pick_freeze_rows(rng, p, -M_PI, M_PI);
    std::vector<std::vector<float>> values(members);
    std::vector<const float*> ptrs;
    for (std::size_t m = 0; m < members; ++m) {
      values[m] = outputs(&rows[m * p]);
      st.add(values[m].data(), cells, g * members + m);
      ptrs.push_back(values[m].data());
      const std::size_t row = m * groups + g;  // block order
      for (std::size_t k = 0; k < p; ++k) x[row * p + k] = rows[m * p + k];
      for (std::size_t c = 0; c < cells; ++c) y[row * cells + c] = values[m][c];
    }
    st.add_group(ptrs.data(), ptrs.size(), cells);
  }
  using melissa::npy::save;
  save(dir + "/X.npy", x.data(), {groups * members, p});
  save(dir + "/Y.npy", y.data(), {groups * members, cells});
  save(dir + "/mean.npy", st.mean().data(), {cells});
  save(dir + "/variance.npy", st.variance().data(), {cells});
  save(dir + "/skewness.npy", st.skewness().data(), {cells});
  save(dir + "/kurtosis.npy", st.kurtosis().data(), {cells});
  for (const char* kind : {"first", "total"}) {
    std::vector<double> value, low, high;
    for (std::size_t k = 0; k < p; ++k) {
      auto index = std::string(kind) == "first" ? st.sobol_first(k) : st.sobol_total(k);
      value.insert(value.end(), index.value.begin(), index.value.end());
      low.insert(low.end(), index.low.begin(), index.low.end());
      high.insert(high.end(), index.high.begin(), index.high.end());
    }
    std::string base = dir + "/sobol_" + kind;
    save(base + ".npy", value.data(), {p, cells});
    save(base + "_low.npy", low.data(), {p, cells});
    save(base + "_high.npy", high.data(), {p, cells});
  }
  std::printf("groups %zu simulations %llu\n", groups, static_cast<unsigned long long>(st.simulations()));
  return 0;
}
