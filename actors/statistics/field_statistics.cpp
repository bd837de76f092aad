#include "actors/statistics/field_statistics.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <istream>
#include <limits>
#include <ostream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace melissa {

namespace {

// Cells processed per block: the block's slice of every accumulator and
// input stays in L1/L2 while the per-statistic loops run over it, so an
// update is one pass over memory with simple, vectorisable inner loops.
constexpr std::size_t block_cells = 512;
// Two-sided 95 % normal quantile.
constexpr double z_95 = 1.959963984540054;
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
constexpr std::uint64_t no_simulation = std::numeric_limits<std::uint64_t>::max();

constexpr char magic[8] = {'M', 'L', 'S', 'S', 'T', 'A', 'T', 'S'};
constexpr std::uint32_t format_version = 1;

std::string number(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// Binary state I/O: raw little-endian (the machine's) values, every read
// checked so that a truncated file is reported, not half-loaded.
template <class T> void put(std::ostream& out, const T& v) {
  out.write(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T> void put_array(std::ostream& out, const std::vector<T>& v) {
  put<std::uint64_t>(out, v.size());
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T)));
}
template <class T> T get(std::istream& in, const char* what) {
  T v{};
  if (!in.read(reinterpret_cast<char*>(&v), sizeof v))
    throw std::runtime_error(std::string("statistics state truncated in ") + what);
  return v;
}
template <class T> void get_array(std::istream& in, std::vector<T>& v, const char* what) {
  auto size = get<std::uint64_t>(in, what);
  if (size != v.size())
    throw std::runtime_error(std::string("statistics state: ") + what + " has " + std::to_string(size) +
                             " values, expected " + std::to_string(v.size()));
  if (!in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(T))))
    throw std::runtime_error(std::string("statistics state truncated in ") + what);
}
// A list of doubles from the options, bounded so that a corrupt count does
// not allocate gigabytes.
std::vector<double> get_list(std::istream& in, const char* what) {
  auto size = get<std::uint64_t>(in, what);
  if (size > 1'000'000) throw std::runtime_error(std::string("statistics state: implausible ") + what + " count");
  std::vector<double> v(size);
  for (auto& x : v) x = get<double>(in, what);
  return v;
}

// Correlation of two outputs from their central sums; 0 when either has no
// variance (a constant cell: no parameter explains anything).
inline double correlation(double co, double m2x, double m2y) {
  if (!(m2x > 0.0) || !(m2y > 0.0)) return 0.0;
  double r = co / std::sqrt(m2x * m2y);
  return std::clamp(r, -1.0, 1.0);
}

}  // namespace

void validate(const statistics_options& o) {
  if (o.moments < 1 || o.moments > 4)
    throw std::invalid_argument("moments must be 1 to 4, not " + std::to_string(o.moments));
  std::set<double> seen;
  for (double t : o.thresholds) {
    if (!std::isfinite(t)) throw std::invalid_argument("threshold " + number(t) + " is not a finite number");
    if (!seen.insert(t).second) throw std::invalid_argument("threshold " + number(t) + " is given twice");
  }
  seen.clear();
  for (double q : o.quantiles) {
    if (!(q > 0.0 && q < 1.0)) throw std::invalid_argument("quantile " + number(q) + " is outside (0, 1)");
    if (!seen.insert(q).second) throw std::invalid_argument("quantile " + number(q) + " is given twice");
  }
  if (o.sobol && o.parameters < 2)
    throw std::invalid_argument("sobol needs at least 2 parameters, the study has " + std::to_string(o.parameters));
}

field_statistics::field_statistics(statistics_options options, std::size_t cells)
    : options_(std::move(options)), cells_(cells) {
  validate(options_);
  const auto& o = options_;
  mean_.assign(cells, 0.0);
  if (o.moments >= 2) m2_.assign(cells, 0.0);
  if (o.moments >= 3) m3_.assign(cells, 0.0);
  if (o.moments >= 4) m4_.assign(cells, 0.0);
  if (o.min_max || !o.quantiles.empty()) {
    min_.assign(cells, std::numeric_limits<double>::infinity());
    max_.assign(cells, -std::numeric_limits<double>::infinity());
  }
  if (o.min_max) {
    argmin_.assign(cells, no_simulation);
    argmax_.assign(cells, no_simulation);
  }
  exceed_.assign(o.thresholds.size(), std::vector<std::uint32_t>(cells, 0));
  quantile_.assign(o.quantiles.size(), std::vector<double>(cells, nan));
  if (o.sobol) {
    mean_a_.assign(cells, 0.0);
    m2_a_.assign(cells, 0.0);
    mean_b_.assign(cells, 0.0);
    m2_b_.assign(cells, 0.0);
    auto per_parameter = std::vector<std::vector<double>>(o.parameters, std::vector<double>(cells, 0.0));
    mean_c_ = per_parameter;
    m2_c_ = per_parameter;
    co_ac_ = per_parameter;
    co_bc_ = std::move(per_parameter);
  }
}

std::size_t field_statistics::bytes_per_cell(const statistics_options& o) {
  std::size_t bytes = 8 * static_cast<std::size_t>(std::max(o.moments, 1));
  if (o.min_max || !o.quantiles.empty()) bytes += 16;
  if (o.min_max) bytes += 16;
  bytes += 4 * o.thresholds.size() + 8 * o.quantiles.size();
  if (o.sobol) bytes += 8 * (4 + 4 * o.parameters);
  return bytes;
}

void field_statistics::check_size(std::size_t size, const char* what) const {
  if (size != cells_)
    throw std::invalid_argument(std::string(what) + " has " + std::to_string(size) + " values, the statistics hold " +
                                std::to_string(cells_) + " cells");
}

void field_statistics::require(bool configured, const char* what) const {
  if (!configured) throw std::logic_error(std::string("statistic not configured: ") + what);
}

namespace {

// The update kernels. Each runs over one block of cells; the public add()
// and add_group() walk the blocks. They are compiled twice on x86-64 with
// GCC (AVX2 and baseline, picked at load time by the CPU): the loops are
// compute-bound at SSE2 width. Same operations in the same order on both
// paths (no FMA contraction in ISO C++ mode), so results do not depend on
// the machine.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MELISSA_STATISTICS_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define MELISSA_STATISTICS_CLONES
#endif

struct add_plan {
  std::size_t begin = 0, end = 0;
  int moments = 1;
  double inv_n = 1, n1 = 0, c3 = 0, c4 = 0;  // Pébay's coefficients for this n
  double* mean = nullptr;
  double* m2 = nullptr;
  double* m3 = nullptr;
  double* m4 = nullptr;
  double* lo = nullptr;  // min/max (also kept for the quantiles' range)
  double* hi = nullptr;
  std::uint64_t* arglo = nullptr;  // argmin/argmax (min_max only)
  std::uint64_t* arghi = nullptr;
  std::uint64_t simulation = 0;
  const double* thresholds = nullptr;
  std::uint32_t* const* exceed = nullptr;
  std::size_t threshold_count = 0;
  const double* alphas = nullptr;
  double* const* quantiles = nullptr;
  std::size_t quantile_count = 0;
  bool first = false;
  double step_scale = 0;  // n^-gamma_n
};

template <class T>
[[gnu::always_inline]] inline void add_block(const add_plan& p, const T* __restrict x) {
  const std::size_t b = p.begin, e = p.end;
  double* __restrict mean = p.mean;
  const double inv_n = p.inv_n, n1 = p.n1, c3 = p.c3, c4 = p.c4;
  if (p.moments == 1) {
    for (std::size_t i = b; i < e; ++i) mean[i] += (static_cast<double>(x[i]) - mean[i]) * inv_n;
  } else if (p.moments == 2) {
    double* __restrict m2 = p.m2;
    for (std::size_t i = b; i < e; ++i) {
      double delta = static_cast<double>(x[i]) - mean[i];
      double dn = delta * inv_n;
      mean[i] += dn;
      m2[i] += delta * dn * n1;
    }
  } else if (p.moments == 3) {
    double* __restrict m2 = p.m2;
    double* __restrict m3 = p.m3;
    for (std::size_t i = b; i < e; ++i) {
      double delta = static_cast<double>(x[i]) - mean[i];
      double dn = delta * inv_n;
      double term1 = delta * dn * n1;
      mean[i] += dn;
      m3[i] += term1 * dn * c3 - 3.0 * dn * m2[i];
      m2[i] += term1;
    }
  } else {
    double* __restrict m2 = p.m2;
    double* __restrict m3 = p.m3;
    double* __restrict m4 = p.m4;
    for (std::size_t i = b; i < e; ++i) {
      double delta = static_cast<double>(x[i]) - mean[i];
      double dn = delta * inv_n;
      double dn2 = dn * dn;
      double term1 = delta * dn * n1;
      mean[i] += dn;
      m4[i] += term1 * dn2 * c4 + 6.0 * dn2 * m2[i] - 4.0 * dn * m3[i];
      m3[i] += term1 * dn * c3 - 3.0 * dn * m2[i];
      m2[i] += term1;
    }
  }
  if (p.lo) {
    double* __restrict lo = p.lo;
    double* __restrict hi = p.hi;
    if (p.arglo) {
      // Branch-free so that it vectorises: the simulation is kept where the
      // strict comparison held (the first extreme seen wins ties).
      std::uint64_t* __restrict arglo = p.arglo;
      std::uint64_t* __restrict arghi = p.arghi;
      const std::uint64_t sim = p.simulation;
      for (std::size_t i = b; i < e; ++i) {
        double v = static_cast<double>(x[i]);
        bool below = v < lo[i], above = v > hi[i];
        lo[i] = below ? v : lo[i];
        arglo[i] = below ? sim : arglo[i];
        hi[i] = above ? v : hi[i];
        arghi[i] = above ? sim : arghi[i];
      }
    } else {
      for (std::size_t i = b; i < e; ++i) {
        double v = static_cast<double>(x[i]);
        lo[i] = v < lo[i] ? v : lo[i];
        hi[i] = v > hi[i] ? v : hi[i];
      }
    }
  }
  for (std::size_t t = 0; t < p.threshold_count; ++t) {
    const double threshold = p.thresholds[t];
    std::uint32_t* __restrict c = p.exceed[t];
    for (std::size_t i = b; i < e; ++i) c[i] += static_cast<double>(x[i]) > threshold ? 1u : 0u;
  }
  for (std::size_t k = 0; k < p.quantile_count; ++k) {
    double* __restrict q = p.quantiles[k];
    if (p.first) {
      for (std::size_t i = b; i < e; ++i) q[i] = static_cast<double>(x[i]);
      continue;
    }
    const double alpha = p.alphas[k], step = p.step_scale;
    const double* __restrict lo = p.lo;
    const double* __restrict hi = p.hi;
    for (std::size_t i = b; i < e; ++i) {
      double below = static_cast<double>(x[i]) <= q[i] ? 1.0 : 0.0;
      q[i] -= (hi[i] - lo[i]) * step * (below - alpha);
    }
  }
}

MELISSA_STATISTICS_CLONES void add_block_f32(const add_plan& p, const float* x) { add_block(p, x); }
MELISSA_STATISTICS_CLONES void add_block_f64(const add_plan& p, const double* x) { add_block(p, x); }
void add_block_any(const add_plan& p, const float* x) { add_block_f32(p, x); }
void add_block_any(const add_plan& p, const double* x) { add_block_f64(p, x); }

struct sobol_plan {
  std::size_t begin = 0, end = 0;
  std::size_t parameters = 0;
  double inv_g = 1;
  double* mean_a = nullptr;
  double* m2_a = nullptr;
  double* mean_b = nullptr;
  double* m2_b = nullptr;
  std::vector<double>* mean_c = nullptr;  // [k]
  std::vector<double>* m2_c = nullptr;
  std::vector<double>* co_ac = nullptr;
  std::vector<double>* co_bc = nullptr;
};

template <class T>
[[gnu::always_inline]] inline void sobol_block(const sobol_plan& p, const T* const* members) {
  const std::size_t len = p.end - p.begin;
  const double inv_g = p.inv_g;
  double delta_a[block_cells];
  double delta_b[block_cells];
  {
    const T* __restrict a = members[0] + p.begin;
    const T* __restrict b = members[1] + p.begin;
    double* __restrict ma = p.mean_a + p.begin;
    double* __restrict sa = p.m2_a + p.begin;
    double* __restrict mb = p.mean_b + p.begin;
    double* __restrict sb = p.m2_b + p.begin;
    for (std::size_t i = 0; i < len; ++i) {
      double da = static_cast<double>(a[i]) - ma[i];
      double db = static_cast<double>(b[i]) - mb[i];
      ma[i] += da * inv_g;
      mb[i] += db * inv_g;
      sa[i] += da * (static_cast<double>(a[i]) - ma[i]);
      sb[i] += db * (static_cast<double>(b[i]) - mb[i]);
      delta_a[i] = da;  // old-mean deviations: the co-moments' left factor
      delta_b[i] = db;
    }
  }
  for (std::size_t k = 0; k < p.parameters; ++k) {
    const T* __restrict c = members[2 + k] + p.begin;
    double* __restrict mc = p.mean_c[k].data() + p.begin;
    double* __restrict sc = p.m2_c[k].data() + p.begin;
    double* __restrict cac = p.co_ac[k].data() + p.begin;
    double* __restrict cbc = p.co_bc[k].data() + p.begin;
    for (std::size_t i = 0; i < len; ++i) {
      double v = static_cast<double>(c[i]);
      double dc = v - mc[i];
      mc[i] += dc * inv_g;
      double ec = v - mc[i];  // deviation from the new mean
      sc[i] += dc * ec;
      cac[i] += delta_a[i] * ec;
      cbc[i] += delta_b[i] * ec;
    }
  }
}

MELISSA_STATISTICS_CLONES void sobol_block_f32(const sobol_plan& p, const float* const* m) { sobol_block(p, m); }
MELISSA_STATISTICS_CLONES void sobol_block_f64(const sobol_plan& p, const double* const* m) { sobol_block(p, m); }
void sobol_block_any(const sobol_plan& p, const float* const* m) { sobol_block_f32(p, m); }
void sobol_block_any(const sobol_plan& p, const double* const* m) { sobol_block_f64(p, m); }

}  // namespace

void field_statistics::add(const float* values, std::size_t count, std::uint64_t simulation) {
  add_values(&values, &simulation, 1, count);
}
void field_statistics::add(const double* values, std::size_t count, std::uint64_t simulation) {
  add_values(&values, &simulation, 1, count);
}
void field_statistics::add_batch(const float* const* slices, const std::uint64_t* simulations, std::size_t k,
                                 std::size_t count) {
  add_values(slices, simulations, k, count);
}
void field_statistics::add_batch(const double* const* slices, const std::uint64_t* simulations, std::size_t k,
                                 std::size_t count) {
  add_values(slices, simulations, k, count);
}

template <class T>
void field_statistics::add_values(const T* const* slices, const std::uint64_t* simulations, std::size_t k,
                                  std::size_t size) {
  check_size(size, "a simulation's slice");
  if (k == 0) return;
  add_plan base;
  base.moments = options_.moments;
  base.mean = mean_.data();
  base.m2 = m2_.empty() ? nullptr : m2_.data();
  base.m3 = m3_.empty() ? nullptr : m3_.data();
  base.m4 = m4_.empty() ? nullptr : m4_.data();
  base.lo = min_.empty() ? nullptr : min_.data();
  base.hi = max_.empty() ? nullptr : max_.data();
  base.arglo = argmin_.empty() ? nullptr : argmin_.data();
  base.arghi = argmax_.empty() ? nullptr : argmax_.data();
  std::vector<std::uint32_t*> exceed;
  for (auto& v : exceed_) exceed.push_back(v.data());
  base.thresholds = options_.thresholds.data();
  base.exceed = exceed.data();
  base.threshold_count = exceed.size();
  std::vector<double*> quantiles;
  for (auto& v : quantile_) quantiles.push_back(v.data());
  base.alphas = options_.quantiles.data();
  base.quantiles = quantiles.data();
  base.quantile_count = quantiles.size();
  // One plan per simulation of the batch: its n and simulation id.
  std::vector<add_plan> plans(k, base);
  for (std::size_t j = 0; j < k; ++j) {
    const std::uint64_t count = simulations_ + 1 + j;
    const double n = static_cast<double>(count);
    add_plan& p = plans[j];
    p.inv_n = 1.0 / n;
    p.n1 = n - 1.0;
    p.c3 = n - 2.0;
    p.c4 = n * n - 3.0 * n + 3.0;
    p.simulation = simulations[j];
    p.first = count == 1;
    // Quantile step C_n / n^gamma_n: gamma_n from 1/2 to 1 over the planned N.
    double gamma = 0.75;
    if (options_.planned_simulations > 1)
      gamma = std::min(1.0, 0.5 + 0.5 * (n - 1.0) / (static_cast<double>(options_.planned_simulations) - 1.0));
    p.step_scale = std::pow(n, -gamma);
  }
  // Block by block, every slice of the batch: the block's accumulators stay
  // in cache between the slices.
  for (std::size_t start = 0; start < cells_; start += block_cells) {
    const std::size_t end = std::min(cells_, start + block_cells);
    for (std::size_t j = 0; j < k; ++j) {
      plans[j].begin = start;
      plans[j].end = end;
      add_block_any(plans[j], slices[j]);
    }
  }
  simulations_ += k;
}

void field_statistics::add_group(const float* const* members, std::size_t member_count, std::size_t count) {
  add_members(members, member_count, count);
}
void field_statistics::add_group(const double* const* members, std::size_t member_count, std::size_t count) {
  add_members(members, member_count, count);
}

template <class T>
void field_statistics::add_members(const T* const* members, std::size_t member_count, std::size_t count) {
  if (!options_.sobol) throw std::invalid_argument("add_group: sobol is not configured");
  const std::size_t parameters = options_.parameters;
  if (member_count != parameters + 2)
    throw std::invalid_argument("add_group: a pick-freeze group has " + std::to_string(parameters + 2) +
                                " members, got " + std::to_string(member_count));
  check_size(count, "a group member's slice");
  sobol_plan p;
  p.parameters = parameters;
  p.inv_g = 1.0 / static_cast<double>(groups_ + 1);
  p.mean_a = mean_a_.data();
  p.m2_a = m2_a_.data();
  p.mean_b = mean_b_.data();
  p.m2_b = m2_b_.data();
  p.mean_c = mean_c_.data();
  p.m2_c = m2_c_.data();
  p.co_ac = co_ac_.data();
  p.co_bc = co_bc_.data();
  for (std::size_t start = 0; start < cells_; start += block_cells) {
    p.begin = start;
    p.end = std::min(cells_, start + block_cells);
    sobol_block_any(p, members);
  }
  ++groups_;
}

std::vector<double> field_statistics::mean() const {
  if (simulations_ == 0) return std::vector<double>(cells_, nan);
  return mean_;
}

std::vector<double> field_statistics::variance() const {
  require(options_.moments >= 2, "variance (moments >= 2)");
  std::vector<double> out(cells_, nan);
  if (simulations_ < 2) return out;
  const double inv = 1.0 / static_cast<double>(simulations_ - 1);
  for (std::size_t i = 0; i < cells_; ++i) out[i] = m2_[i] * inv;
  return out;
}

std::vector<double> field_statistics::skewness() const {
  require(options_.moments >= 3, "skewness (moments >= 3)");
  std::vector<double> out(cells_, nan);
  if (simulations_ < 3) return out;
  const double n = static_cast<double>(simulations_);
  const double adjust = std::sqrt(n * (n - 1.0)) / (n - 2.0) * std::sqrt(n);
  for (std::size_t i = 0; i < cells_; ++i)
    out[i] = m2_[i] > 0.0 ? adjust * m3_[i] / (m2_[i] * std::sqrt(m2_[i])) : 0.0;
  return out;
}

std::vector<double> field_statistics::kurtosis() const {
  require(options_.moments >= 4, "kurtosis (moments = 4)");
  std::vector<double> out(cells_, nan);
  if (simulations_ < 4) return out;
  const double n = static_cast<double>(simulations_);
  const double adjust = (n - 1.0) / ((n - 2.0) * (n - 3.0));
  for (std::size_t i = 0; i < cells_; ++i) {
    if (!(m2_[i] > 0.0)) {
      out[i] = 0.0;
      continue;
    }
    double g2 = n * m4_[i] / (m2_[i] * m2_[i]) - 3.0;
    out[i] = adjust * ((n + 1.0) * g2 + 6.0);
  }
  return out;
}

std::vector<double> field_statistics::min() const {
  require(options_.min_max, "min (min_max)");
  return min_;
}
std::vector<double> field_statistics::max() const {
  require(options_.min_max, "max (min_max)");
  return max_;
}
std::vector<std::uint64_t> field_statistics::argmin() const {
  require(options_.min_max, "argmin (min_max)");
  return argmin_;
}
std::vector<std::uint64_t> field_statistics::argmax() const {
  require(options_.min_max, "argmax (min_max)");
  return argmax_;
}

std::vector<std::uint64_t> field_statistics::threshold_count(std::size_t t) const {
  require(t < exceed_.size(), "threshold index");
  return std::vector<std::uint64_t>(exceed_[t].begin(), exceed_[t].end());
}

std::vector<double> field_statistics::quantile(std::size_t k) const {
  require(k < quantile_.size(), "quantile index");
  return quantile_[k];
}

namespace {

// Fills value/low/high from correlations rho(cell): value = sign * rho +
// offset (first: rho; total: 1 - rho), bounds by Fisher's z-transform.
template <class Rho>
field_statistics::sobol_index fill_index(std::size_t cells, std::uint64_t groups, double offset, double sign,
                                         Rho rho) {
  field_statistics::sobol_index out{std::vector<double>(cells), std::vector<double>(cells),
                                    std::vector<double>(cells)};
  auto& value = out.value;
  auto& low = out.low;
  auto& high = out.high;
  const bool any_variance_info = groups >= 2;
  const bool fisher = groups > 3;
  const double half_width = fisher ? z_95 / std::sqrt(static_cast<double>(groups) - 3.0) : 0.0;
  for (std::size_t i = 0; i < cells; ++i) {
    if (!any_variance_info) {
      value[i] = low[i] = high[i] = nan;
      continue;
    }
    auto [r, degenerate] = rho(i);
    value[i] = degenerate ? 0.0 : offset + sign * r;
    double lo, hi;
    if (degenerate) {
      lo = hi = 0.0;
    } else if (!fisher) {
      lo = offset - 1.0;
      hi = offset + 1.0;
    } else {
      double z = std::atanh(r);
      double a = offset + sign * std::tanh(z - half_width);
      double b = offset + sign * std::tanh(z + half_width);
      lo = std::min(a, b);
      hi = std::max(a, b);
    }
    low[i] = lo;
    high[i] = hi;
  }
  return out;
}

}  // namespace

field_statistics::sobol_index field_statistics::sobol_first(std::size_t k) const {
  require(options_.sobol, "sobol");
  require(k < options_.parameters, "sobol parameter index");
  return fill_index(
      cells_, groups_, 0.0, 1.0,
      [&](std::size_t i) {
        bool degenerate = !(m2_b_[i] > 0.0) || !(m2_c_[k][i] > 0.0);
        return std::pair{correlation(co_bc_[k][i], m2_b_[i], m2_c_[k][i]), degenerate};
      });
}

field_statistics::sobol_index field_statistics::sobol_total(std::size_t k) const {
  require(options_.sobol, "sobol");
  require(k < options_.parameters, "sobol parameter index");
  return fill_index(
      cells_, groups_, 1.0, -1.0,
      [&](std::size_t i) {
        bool degenerate = !(m2_a_[i] > 0.0) || !(m2_c_[k][i] > 0.0);
        return std::pair{correlation(co_ac_[k][i], m2_a_[i], m2_c_[k][i]), degenerate};
      });
}

double field_statistics::widest_sobol_interval() const {
  require(options_.sobol, "sobol");
  if (cells_ == 0) return 0.0;
  if (groups_ < 2) return nan;
  double widest = 0.0;
  for (std::size_t k = 0; k < options_.parameters; ++k) {
    for (const auto& index : {sobol_first(k), sobol_total(k)})
      for (std::size_t i = 0; i < cells_; ++i) widest = std::max(widest, index.high[i] - index.low[i]);
  }
  return widest;
}

void field_statistics::save(std::ostream& out) const {
  out.write(magic, sizeof magic);
  put(out, format_version);
  const auto& o = options_;
  put<std::int32_t>(out, o.moments);
  put<std::uint8_t>(out, o.min_max ? 1 : 0);
  put_array(out, o.thresholds);
  put_array(out, o.quantiles);
  put<std::uint64_t>(out, o.planned_simulations);
  put<std::uint8_t>(out, o.sobol ? 1 : 0);
  put<std::uint64_t>(out, o.parameters);
  put<std::uint64_t>(out, cells_);
  put(out, simulations_);
  put(out, groups_);
  for (const auto* v : {&mean_, &m2_, &m3_, &m4_, &min_, &max_}) put_array(out, *v);
  put_array(out, argmin_);
  put_array(out, argmax_);
  for (const auto& v : exceed_) put_array(out, v);
  for (const auto& v : quantile_) put_array(out, v);
  for (const auto* v : {&mean_a_, &m2_a_, &mean_b_, &m2_b_}) put_array(out, *v);
  for (const auto* family : {&mean_c_, &m2_c_, &co_ac_, &co_bc_})
    for (const auto& v : *family) put_array(out, v);
  if (!out) throw std::runtime_error("statistics state: write failed");
}

field_statistics field_statistics::load(std::istream& in) {
  char head[sizeof magic];
  if (!in.read(head, sizeof head) || std::memcmp(head, magic, sizeof magic) != 0)
    throw std::runtime_error("statistics state: bad magic (not a field_statistics state)");
  auto version = get<std::uint32_t>(in, "version");
  if (version != format_version)
    throw std::runtime_error("statistics state: version " + std::to_string(version) + ", this build reads " +
                             std::to_string(format_version));
  statistics_options o;
  o.moments = get<std::int32_t>(in, "options");
  o.min_max = get<std::uint8_t>(in, "options") != 0;
  o.thresholds = get_list(in, "thresholds");
  o.quantiles = get_list(in, "quantiles");
  o.planned_simulations = get<std::uint64_t>(in, "options");
  o.sobol = get<std::uint8_t>(in, "options") != 0;
  o.parameters = get<std::uint64_t>(in, "options");
  auto cells = get<std::uint64_t>(in, "cells");
  if (cells > (std::uint64_t{1} << 40)) throw std::runtime_error("statistics state: implausible cell count");
  if (o.parameters > 100'000) throw std::runtime_error("statistics state: implausible parameter count");
  // Refuse a state whose arrays cannot all be there before allocating them
  // (a corrupt count must not allocate gigabytes); streams that cannot seek
  // are read as they come.
  const auto here = in.tellg();
  if (here != std::istream::pos_type(-1) && in.seekg(0, std::ios::end)) {
    const auto end = in.tellg();
    in.seekg(here);
    const std::uint64_t left = static_cast<std::uint64_t>(end - here);
    if (left / std::max<std::size_t>(1, bytes_per_cell(o)) < cells)
      throw std::runtime_error("statistics state truncated: " + std::to_string(cells) + " cells need more than the " +
                               std::to_string(left) + " bytes left");
  }
  in.clear();
  field_statistics s = [&] {
    try {
      return field_statistics(o, static_cast<std::size_t>(cells));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(std::string("statistics state: bad options: ") + e.what());
    }
  }();
  s.simulations_ = get<std::uint64_t>(in, "counts");
  s.groups_ = get<std::uint64_t>(in, "counts");
  get_array(in, s.mean_, "mean");
  get_array(in, s.m2_, "M2");
  get_array(in, s.m3_, "M3");
  get_array(in, s.m4_, "M4");
  get_array(in, s.min_, "min");
  get_array(in, s.max_, "max");
  get_array(in, s.argmin_, "argmin");
  get_array(in, s.argmax_, "argmax");
  for (auto& v : s.exceed_) get_array(in, v, "threshold counts");
  for (auto& v : s.quantile_) get_array(in, v, "quantiles");
  get_array(in, s.mean_a_, "sobol A mean");
  get_array(in, s.m2_a_, "sobol A M2");
  get_array(in, s.mean_b_, "sobol B mean");
  get_array(in, s.m2_b_, "sobol B M2");
  for (auto& v : s.mean_c_) get_array(in, v, "sobol C mean");
  for (auto& v : s.m2_c_) get_array(in, v, "sobol C M2");
  for (auto& v : s.co_ac_) get_array(in, v, "sobol A-C co-moment");
  for (auto& v : s.co_bc_) get_array(in, v, "sobol B-C co-moment");
  return s;
}

}  // namespace melissa
