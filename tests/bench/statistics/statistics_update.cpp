// Update throughput of one server rank's statistics accumulators
// (actors/statistics/field_statistics), against a STREAM-like triad measured
// in the same run. Part of the `statistics` benchmark (tests/bench/statistics
// runs it and adds the OpenTURNS comparison).
//
//   statistics-update [--cells N] [--sims S] [--data F.npy] [--repeat R]
//
// Times: best of --repeat runs, in thread CPU time. Prints one JSON object: the triad's memory bandwidth (STREAM convention: 24
// bytes moved per element), and for each configuration the GB/s of incoming
// field data (4-byte floats) folded in, plus the memory traffic that implies
// (incoming + accumulators read and written once per update).
// Configurations: "moments" (all four moments, add() per simulation),
// "moments_batch7" (the same with add_batch() of 7 simulations), "full"
// (four moments, min/max, 2 thresholds, add() per member and Sobol
// add_group() per group of p + 2 = 7) and "full_batched" (the members by one
// add_batch() per group). --data: a float32 [S, N] .npy file
// to fold in (the OpenTURNS comparison uses the same file) instead of
// generated values.
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/statistics/field_statistics.hpp"
#include "messages/npy.hpp"
#include "tests/statistics/pick_freeze.hpp"

namespace {

// Times are the thread's CPU time, not wall time: on a shared machine the
// wall time also counts the time spent waiting for a core, which would make
// the ratios between cases depend on the neighbours' load.
struct clock_type {
  using time_point = double;
  static double now() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
  }
};

double seconds_since(double t0) { return clock_type::now() - t0; }

// Best of `repeat` runs of a STREAM triad a = b + s c over n doubles, GB/s.
double triad(std::size_t n, int repeat) {
  std::vector<double> a(n, 0.0), b(n, 1.0), c(n, 2.0);
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    const double s = 3.0 + r;
    auto t0 = clock_type::now();
    double* __restrict pa = a.data();
    const double* __restrict pb = b.data();
    const double* __restrict pc = c.data();
    for (std::size_t i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
    best = std::min(best, seconds_since(t0));
  }
  volatile double sink = a[n / 2];
  (void)sink;
  return 24.0 * static_cast<double>(n) / best / 1e9;
}

std::vector<float> read_data(const std::string& path, std::size_t& sims, std::size_t& cells) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  auto h = melissa::npy::read_header(f, path);
  if (h.descr != "<f4" || h.shape.size() != 2 || h.fortran_order)
    throw std::runtime_error(path + ": expected a C-order float32 [sims, cells] array");
  sims = h.shape[0];
  cells = h.shape[1];
  std::vector<float> data(sims * cells);
  std::fseek(f, static_cast<long>(h.data_offset), SEEK_SET);
  if (std::fread(data.data(), sizeof(float), data.size(), f) != data.size())
    throw std::runtime_error(path + ": truncated");
  std::fclose(f);
  return data;
}

struct result {
  double seconds = 0;
  double incoming_gbs = 0;
  double traffic_gbs = 0;
};

// Folds the sims x cells floats (row s = simulation s) `repeat` times into
// fresh accumulators; best time.
// batch: simulations folded per add_batch() call (1: add()).
result run_moments(const std::vector<float>& data, std::size_t sims, std::size_t cells, int repeat,
                   std::size_t batch) {
  melissa::statistics_options o;
  o.moments = 4;
  double best = 1e30;
  sims -= sims % batch;
  for (int r = 0; r < repeat; ++r) {
    melissa::field_statistics st(o, cells);
    auto t0 = clock_type::now();
    if (batch == 1) {
      for (std::size_t s = 0; s < sims; ++s) st.add(data.data() + s * cells, cells, s);
    } else {
      std::vector<const float*> slices(batch);
      std::vector<std::uint64_t> ids(batch);
      for (std::size_t s = 0; s < sims; s += batch) {
        for (std::size_t j = 0; j < batch; ++j) slices[j] = data.data() + (s + j) * cells, ids[j] = s + j;
        st.add_batch(slices.data(), ids.data(), batch, cells);
      }
    }
    best = std::min(best, seconds_since(t0));
  }
  double values = static_cast<double>(sims) * cells;
  // Per value: 4 bytes in; per batch and cell, mean, M2, M3, M4 read and
  // written once (64 bytes).
  return {best, 4.0 * values / best / 1e9, (4.0 + 64.0 / batch) * values / best / 1e9};
}

// batched: the members folded with one add_batch() per group, else one
// add() per member.
result run_full(const std::vector<float>& data, std::size_t sims, std::size_t cells, int repeat, bool batched) {
  const std::size_t p = 5, members = p + 2, groups = sims / members;
  melissa::statistics_options o;
  o.moments = 4;
  o.min_max = true;
  o.thresholds = {0.0, 1.0};
  o.sobol = true;
  o.parameters = p;
  double best = 1e30;
  for (int r = 0; r < repeat; ++r) {
    melissa::field_statistics st(o, cells);
    auto t0 = clock_type::now();
    for (std::size_t g = 0; g < groups; ++g) {
      const float* ptrs[members];
      std::uint64_t ids[members];
      for (std::size_t m = 0; m < members; ++m) {
        const std::size_t s = g * members + m;
        ptrs[m] = data.data() + s * cells;
        ids[m] = s;
        if (!batched) st.add(ptrs[m], cells, s);
      }
      if (batched) st.add_batch(ptrs, ids, members, cells);
      st.add_group(ptrs, members, cells);
    }
    best = std::min(best, seconds_since(t0));
  }
  double values = static_cast<double>(groups * members) * cells;
  // Per member value: add(): 4 in + moments 64 + min/max 32 + argmin/max 32
  // (read; written rarely, not counted) + 2 thresholds 16; add_group(), per
  // group and cell: 7 x 4 in + (4 + 4p) accumulators x 16.
  // Batched: the add() accumulators once per group.
  double per_cell_group = (batched ? members * 4.0 + 64 + 32 + 32 + 16 : members * (4.0 + 64 + 32 + 32 + 16)) +
                          4.0 * members + (4.0 + 4 * p) * 16;
  double traffic = per_cell_group * groups * cells;
  return {best, 4.0 * values / best / 1e9, traffic / best / 1e9};
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t cells = 1 << 20, sims = 70;
  int repeat = 3;
  std::string data_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--cells") cells = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--sims") sims = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--data") data_path = next();
    else if (a == "--repeat") repeat = std::atoi(next().c_str());
    else {
      std::fprintf(stderr, "usage: statistics-update [--cells N] [--sims S] [--data F.npy] [--repeat R]\n");
      return 2;
    }
  }
  std::vector<float> data;
  if (!data_path.empty()) {
    data = read_data(data_path, sims, cells);
  } else {
    data.resize(sims * cells);
    melissa::testing::random_source rng(1);
    for (auto& v : data) v = static_cast<float>(rng.normal());
  }
  // The triad over arrays as large as the accumulators (same memory level),
  // at least 8 Mi doubles (64 MiB each, beyond any cache).
  std::size_t triad_n = std::max<std::size_t>(cells * 4, 8u << 20);
  double triad_gbs = triad(triad_n, std::max(repeat, 5));
  std::printf("{\"cells\": %zu, \"sims\": %zu, \"triad_elements\": %zu, \"triad_gbs\": %.3f", cells, sims,
              triad_n, triad_gbs);
  auto print = [](const char* name, const result& r) {
    std::printf(",\n \"%s\": {\"seconds\": %.6f, \"incoming_gbs\": %.3f, \"traffic_gbs\": %.3f}", name, r.seconds,
                r.incoming_gbs, r.traffic_gbs);
  };
  print("moments", run_moments(data, sims, cells, repeat, 1));
  print("moments_batch7", run_moments(data, sims, cells, repeat, 7));
  print("full", run_full(data, sims, cells, repeat, false));
  print("full_batched", run_full(data, sims, cells, repeat, true));
  std::printf("}\n");
  return 0;
}
