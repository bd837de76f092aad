// Iterative (one-pass, in-transit) statistics of ONE field at ONE time step
// over a contiguous range of `cells` (a server rank's owned share), updated
// as each simulation's values arrive and never storing the ensemble:
//
//   moments      mean, unbiased variance, skewness, excess kurtosis
//                (Welford / Pébay updates; stable for large offsets)
//   min_max      minimum and maximum with the simulation that produced them
//   thresholds   exceedance counts: how many simulations had value > t
//   quantiles    Robbins–Monro stochastic approximation, per probability
//   sobol        Martinez first-order and total Sobol indices of each of the
//                p parameters, with 95 % confidence bounds (Fisher z)
//
// Two entry points, and the caller decides which data goes where:
//   add(values, count, simulation)   one simulation's values of the cells:
//                   moments, min/max, thresholds, quantiles (add_batch():
//                   several simulations in one pass).
//   add_group(members, p + 2, count)  one complete pick-freeze group:
//                   the Sobol accumulators ONLY.
// As Melissa does, every simulation, group members included, counts in the
// moments: the statistics actor calls add() for each member as its step
// arrives and add_group() once the group's p + 2 steps are all in. A group
// that never completes thus still counts in the moments and not in Sobol.
//
// Layout: struct of arrays of doubles, one array per accumulator, each
// `cells` long. An update walks the cells in blocks of 512 and runs every
// statistic's loop over the block while it is in cache: one pass over memory
// per slice (per group for Sobol: the p + 2 member slices and the 4 + 4p
// accumulator arrays).
// Inputs are float (what the clients send as f32) or double; everything is
// accumulated in double. Plain C++ (no CAF): not thread-safe, one owner.
//
// The estimators, their definitions (they match OpenTURNS' Sample moments and
// MartinezSensitivityAlgorithm) and the quantiles' step-size rule and accuracy
// are documented in docs/statistics.md ("Estimators") and at each accessor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace melissa {

struct statistics_options {
  int moments = 2;                 // 1: mean; 2: + variance; 3: + skewness; 4: + kurtosis
  bool min_max = false;            // min, max and their simulations
  std::vector<double> thresholds;  // exceedance counts of value > threshold
  std::vector<double> quantiles;   // probabilities, each in (0, 1)
  // N, the number of simulations the study plans to fold in with add()
  // (with Sobol every member counts: groups x (p + 2)): the quantiles' step
  // exponent goes from 1/2 at the first simulation to 1 at the N-th (see
  // quantile()). 0: unknown, the exponent stays 3/4.
  std::uint64_t planned_simulations = 0;
  bool sobol = false;              // Martinez indices (needs add_group)
  std::size_t parameters = 0;      // p, the number of inputs (>= 2 when sobol)
};

// Throws std::invalid_argument naming the offending option ("moments must be
// 1 to 4", "quantile 1.5 is outside (0, 1)", "sobol needs at least 2
// parameters", ...). The study file parser maps it to file/line/key.
void validate(const statistics_options& options);

class field_statistics {
 public:
  // Validates `options` (throws std::invalid_argument). `cells` may be 0.
  field_statistics(statistics_options options, std::size_t cells);

  const statistics_options& options() const { return options_; }
  std::size_t cells() const { return cells_; }
  // Accumulator bytes per cell for these options (memory accounting).
  static std::size_t bytes_per_cell(const statistics_options& options);
  // Simulations folded in by add(), groups folded in by add_group().
  std::uint64_t simulations() const { return simulations_; }
  std::uint64_t groups() const { return groups_; }

  // One simulation's values for the cells [0, cells()). `simulation` is only
  // recorded as argmin/argmax. Throws std::invalid_argument if
  // count != cells(). Values are expected finite (a NaN poisons that
  // cell's moments, as it would any estimator). (C++17: no std::span.)
  void add(const float* values, std::size_t count, std::uint64_t simulation);
  void add(const double* values, std::size_t count, std::uint64_t simulation);
  // k simulations at once: slices[j] (count values) from simulations[j].
  // The same result, bit for bit, as k add() calls in that order, in one
  // pass over the accumulators instead of k: prefer it when several slices
  // of the same step are waiting (a group's members, concurrent
  // simulations), since once the accumulators outgrow the caches the update
  // is bound by their memory traffic (64 bytes per cell for four moments
  // against 4 incoming bytes per float value).
  void add_batch(const float* const* slices, const std::uint64_t* simulations, std::size_t k, std::size_t count);
  void add_batch(const double* const* slices, const std::uint64_t* simulations, std::size_t k,
                 std::size_t count);

  // One pick-freeze group: members[0] = A, members[1] = B, members[2 + k] =
  // C_k (the row A with its column k taken from B), k = 0 .. p-1, each
  // cells() long. Updates the Sobol accumulators only (see above). Throws
  // std::invalid_argument if sobol is off, member_count != p + 2 or
  // count != cells().
  // members points to member_count pointers, each to `count` values.
  void add_group(const float* const* members, std::size_t member_count, std::size_t count);
  void add_group(const double* const* members, std::size_t member_count, std::size_t count);

  // Accessors: each returns cells() values and throws std::logic_error if
  // the statistic was not configured.
  // Before enough data: NaN (mean: 0 simulations; variance: < 2;
  // skewness: < 3; kurtosis: < 4). A cell whose values are all equal has
  // skewness 0 and kurtosis 0 (instead of 0/0).
  std::vector<double> mean() const;
  std::vector<double> variance() const;   // unbiased: M2 / (n - 1)
  // Adjusted Fisher–Pearson G1 = sqrt(n(n-1))/(n-2) * g1, g1 = sqrt(n) M3 / M2^1.5
  // (OpenTURNS Sample::computeSkewness).
  std::vector<double> skewness() const;
  // Unbiased excess kurtosis G2 = (n-1)/((n-2)(n-3)) ((n+1) g2 + 6),
  // g2 = n M4 / M2^2 - 3 (OpenTURNS Sample::computeKurtosis() - 3).
  std::vector<double> kurtosis() const;
  // Before any simulation: +inf / -inf and simulation UINT64_MAX.
  std::vector<double> min() const;
  std::vector<double> max() const;
  std::vector<std::uint64_t> argmin() const;  // simulation of the first minimum seen
  std::vector<std::uint64_t> argmax() const;
  // Number of simulations with value > options().thresholds[i].
  std::vector<std::uint64_t> threshold_count(std::size_t i) const;
  // Robbins–Monro estimate of the alpha = options().quantiles[i] quantile;
  // NaN before any simulation. Rule (Ribés et al., tuned by Iooss &
  // Lonchampt 2021, as Melissa's iterative_stats): q_1 = x_1, then
  //   q_n = q_{n-1} - (C_n / n^gamma_n) (1{x_n <= q_{n-1}} - alpha)
  // with C_n = max_n - min_n (the cell's running range) and
  // gamma_n = 1/2 + 1/2 (n - 1)/(N - 1), N = planned_simulations (3/4 when
  // unknown, or n beyond N: 1). Accuracy: see docs/statistics.md.
  std::vector<double> quantile(std::size_t i) const;

  // Sobol index of parameter k (0-based) and its 95 % confidence bounds,
  // each cells() long. Martinez:
  //   first  S_k  = corr(B, C_k),       bounds tanh(atanh S_k -/+ 1.96 / sqrt(g - 3))
  //   total  ST_k = 1 - corr(A, C_k),   bounds 1 - tanh(atanh rho +/- 1.96 / sqrt(g - 3))
  // with g = groups(). A cell where one of the two correlated outputs has
  // zero variance gives 0 with bounds [0, 0]. Before 2 groups: NaN; with
  // g <= 3 (no Fisher interval yet) the bounds are the trivial [-1, 1]
  // (first) and [0, 2] (total).
  struct sobol_index {
    std::vector<double> value, low, high;
  };
  sobol_index sobol_first(std::size_t k) const;
  sobol_index sobol_total(std::size_t k) const;
  // The widest confidence interval (high - low) over all cells, parameters,
  // first and total; 0 with no cells, NaN before 2 groups (summary, shell).
  double widest_sobol_interval() const;

  // The whole state (options, counts, every accumulator), binary,
  // little-endian as the machine is; for the checkpoint keeper.
  void save(std::ostream& out) const;
  // Restores what save() wrote. Throws std::runtime_error (what() says what
  // was wrong: bad magic, version, truncated, sizes) on bad input; on a
  // seekable stream a cell count the remaining bytes cannot hold is refused
  // before anything is allocated.
  static field_statistics load(std::istream& in);

 private:
  template <class T>
  void add_values(const T* const* slices, const std::uint64_t* simulations, std::size_t k, std::size_t count);
  template <class T> void add_members(const T* const* members, std::size_t member_count, std::size_t count);
  void require(bool configured, const char* what) const;
  void check_size(std::size_t size, const char* what) const;

  statistics_options options_;
  std::size_t cells_ = 0;
  std::uint64_t simulations_ = 0;
  std::uint64_t groups_ = 0;

  // Moments: running mean and central sums M2, M3, M4 (empty if not kept).
  std::vector<double> mean_, m2_, m3_, m4_;
  std::vector<double> min_, max_;  // also kept for the quantiles' step (running range)
  std::vector<std::uint64_t> argmin_, argmax_;
  std::vector<std::vector<std::uint32_t>> exceed_;  // [threshold][cell] (u32: 4 bytes of traffic per cell)
  std::vector<std::vector<double>> quantile_;       // [quantile][cell]

  // Sobol (Martinez): means and central sums of A and B; per parameter k the
  // mean and central sum of C_k and the co-moments with A and with B.
  std::vector<double> mean_a_, m2_a_, mean_b_, m2_b_;
  std::vector<std::vector<double>> mean_c_, m2_c_, co_ac_, co_bc_;  // [k][cell]
};

}  // namespace melissa
