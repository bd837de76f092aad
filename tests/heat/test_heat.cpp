// Unit tests of the heat solver core (one MPI process; the rank-count tests
// are in test_ranks.py).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <mpi.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "heat.hpp"
#include "messages/npy.hpp"

using namespace melissa::heat;

namespace {

constexpr double kPi = 3.14159265358979323846;

double max_abs_error(Solver& s, const std::function<double(double, double)>& exact) {
  double e = 0;
  const Decomposition& d = s.decomposition();
  for (int i = 0; i < d.rows().size(); ++i)
    for (int j = 0; j < d.cols().size(); ++j) e = std::max(e, std::abs(s.value(i, j) - exact(s.x(j), s.y(i))));
  return e;
}

// The eigenmode sin(pi x) sin(pi y) with zero boundaries, run to the end.
double eigenmode_error(int grid, double dt, int steps, bool against_time_exact) {
  Settings st;
  st.grid = grid;
  st.dt = dt;
  st.steps = steps;
  st.cg_tolerance = 1e-13;
  Solver s(st, Temperatures{}, MPI_COMM_WORLD);
  s.set_field([](double x, double y) { return std::sin(kPi * x) * std::sin(kPi * y); });
  for (int n = 0; n < steps; ++n) s.advance();
  double amplitude;
  if (against_time_exact) {
    // Exact in time, discrete in space: the mode is an eigenvector of the
    // 5-point Laplacian with eigenvalue lambda_h, so only the Euler error is left.
    const double h = 1.0 / (grid + 1);
    const double lambda_h = 2 * 4 / (h * h) * std::pow(std::sin(kPi * h / 2), 2);
    amplitude = std::exp(-lambda_h * st.alpha * dt * steps);
  } else {
    // Implicit Euler applied to the continuous mode: only the space error is left.
    amplitude = std::pow(1.0 / (1.0 + 2 * kPi * kPi * st.alpha * dt), steps);
  }
  return max_abs_error(s, [&](double x, double y) { return amplitude * std::sin(kPi * x) * std::sin(kPi * y); });
}

}  // namespace

TEST_CASE("split covers the range evenly") {
  for (int m : {1, 7, 30, 31, 100})
    for (int parts = 1; parts <= std::min(m, 5); ++parts) {
      int at = 0;
      for (int k = 0; k < parts; ++k) {
        const Extent e = split(m, parts, k);
        CHECK(e.begin == at);
        CHECK(e.size() >= m / parts);
        CHECK(e.size() <= m / parts + 1);
        at = e.end;
      }
      CHECK(at == m);
    }
}

TEST_CASE("boundary values equal to the initial value: the field stays bitwise constant") {
  const double T = 312.5;
  struct Variant {
    CgStart start;
    Preconditioner pre;
  };
  for (Variant var : {Variant{CgStart::extrapolate, Preconditioner::red_black},
                      Variant{CgStart::previous, Preconditioner::red_black},
                      Variant{CgStart::extrapolate, Preconditioner::none},
                      Variant{CgStart::previous, Preconditioner::none}}) {
    CAPTURE(to_string(var.start));
    CAPTURE(to_string(var.pre));
    Settings st;
    st.grid = 17;
    st.steps = 20;
    st.cg_start = var.start;
    st.preconditioner = var.pre;
    Solver s(st, Temperatures{T, T, T, T, T}, MPI_COMM_WORLD);
    std::vector<float> slab(s.slab_size());
    for (int n = 0; n < st.steps; ++n) {
      CHECK(s.advance() == 0);  // the increment's right-hand side is exactly 0
      bool all_equal = true;
      for (int i = 0; i < st.grid; ++i)
        for (int j = 0; j < st.grid; ++j) all_equal = all_equal && s.value(i, j) == T;
      CHECK(all_equal);
      s.to_slab(slab.data());
      bool all_equal_float = true;
      for (float v : slab) all_equal_float = all_equal_float && v == static_cast<float>(T);
      CHECK(all_equal_float);
    }
  }
}

TEST_CASE("spatial order 2 on the sin-sin eigenmode") {
  const double dt = 1e-3;
  const int steps = 20;
  const double e1 = eigenmode_error(15, dt, steps, false);
  const double e2 = eigenmode_error(31, dt, steps, false);
  const double e3 = eigenmode_error(63, dt, steps, false);
  const double order12 = std::log2(e1 / e2), order23 = std::log2(e2 / e3);
  MESSAGE("errors " << e1 << " " << e2 << " " << e3 << ", orders " << order12 << " " << order23);
  CHECK(order12 == doctest::Approx(2.0).epsilon(0.1));  // relative 0.1: 2 +- 0.2
  CHECK(order23 == doctest::Approx(2.0).epsilon(0.1));
  CHECK(e3 < 1e-3);
}

TEST_CASE("temporal order 1 on the sin-sin eigenmode") {
  const double T = 0.1;
  const double e1 = eigenmode_error(31, T / 10, 10, true);
  const double e2 = eigenmode_error(31, T / 20, 20, true);
  const double e3 = eigenmode_error(31, T / 40, 40, true);
  const double order12 = std::log2(e1 / e2), order23 = std::log2(e2 / e3);
  MESSAGE("errors " << e1 << " " << e2 << " " << e3 << ", orders " << order12 << " " << order23);
  CHECK(std::abs(order12 - 1.0) <= 0.1);
  CHECK(std::abs(order23 - 1.0) <= 0.1);
}

TEST_CASE("every algorithm converges to the same field") {
  Settings st;
  st.grid = 24;
  st.steps = 15;
  st.cg_tolerance = 1e-13;
  const Temperatures temps{312.5, 104.2, 220, 400, 150};
  Solver ref(baseline_settings(st), temps, MPI_COMM_WORLD);
  for (int n = 0; n < st.steps; ++n) ref.advance();
  for (CgStart start : {CgStart::zero, CgStart::previous, CgStart::extrapolate})
    for (Preconditioner pre : {Preconditioner::none, Preconditioner::red_black}) {
      CAPTURE(to_string(start));
      CAPTURE(to_string(pre));
      st.cg_start = start;
      st.preconditioner = pre;
      Solver s(st, temps, MPI_COMM_WORLD);
      for (int n = 0; n < st.steps; ++n) s.advance();
      double diff = 0;
      for (int i = 0; i < st.grid; ++i)
        for (int j = 0; j < st.grid; ++j) diff = std::max(diff, std::abs(s.value(i, j) - ref.value(i, j)));
      CHECK(diff < 1e-9);
    }
}

TEST_CASE("warm starts and red-black need far fewer iterations than the baseline") {
  Settings st;
  st.grid = 60;
  st.steps = 30;
  st.cg_tolerance = 1e-4;
  const Temperatures temps{312.5, 104.2, 220, 400, 150};
  auto iterations = [&](const Settings& s) {
    Solver solver(s, temps, MPI_COMM_WORLD);
    for (int n = 0; n < s.steps; ++n) solver.advance();
    return solver.total_cg_iterations();
  };
  const long long base = iterations(baseline_settings(st));
  Settings rb_zero = baseline_settings(st);
  rb_zero.preconditioner = Preconditioner::red_black;
  // Red-black alone: the Schur complement has ~1/4 of the condition number.
  CHECK(iterations(rb_zero) < 0.6 * base);
  CHECK(iterations(st) < 0.2 * base);
}

TEST_CASE("slab and gather give the global row-major field") {
  Settings st;
  st.grid = 9;
  Solver s(st, Temperatures{}, MPI_COMM_WORLD);
  s.set_field([](double x, double y) { return 1000 * y + x; });
  std::vector<double> slab(s.slab_size());
  s.to_slab(slab.data());
  const std::vector<double> global = s.gather(0);
  REQUIRE(global.size() == 81u);
  for (int i = 0; i < 9; ++i)
    for (int j = 0; j < 9; ++j) {
      const double expected = 1000 * (i + 1) / 10.0 + (j + 1) / 10.0;
      CHECK(global[i * 9 + j] == doctest::Approx(expected));
      CHECK(slab[i * 9 + j] == global[i * 9 + j]);
    }
}

TEST_CASE("npy header: format 1.0, 64-byte aligned, numpy's shape syntax") {
  const std::string h2 = melissa::npy::header("<f4", {100, 10000});
  CHECK(h2.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) == 0);
  CHECK(h2.size() % 64 == 0);
  CHECK(h2.back() == '\n');
  CHECK(h2.find("{'descr': '<f4', 'fortran_order': False, 'shape': (100, 10000), }") == 10);
  const std::size_t len = static_cast<unsigned char>(h2[8]) | (static_cast<unsigned char>(h2[9]) << 8);
  CHECK(len + 10 == h2.size());
  CHECK(melissa::npy::header("<f8", {5}).find("'shape': (5,), }") != std::string::npos);
}

TEST_CASE("npy write and read back") {
  char path[] = "/tmp/melissa-heat-test-XXXXXX";
  const int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  std::vector<float> rows = {1, 2, 3, 4, 5, 6};
  {
    melissa::npy::Writer<float> w(path, {2, 3});
    w.write_row(rows.data());
    w.write_row(rows.data() + 3);
    w.close();
  }
  auto a = melissa::npy::load<float>(path);
  CHECK(a.shape == std::vector<std::size_t>{2, 3});
  CHECK(a.data == rows);
  CHECK_THROWS(melissa::npy::load<double>(path));  // wrong dtype is an error, not a cast

  melissa::npy::Writer<double> short_file(path, {3});
  const double one = 1;
  short_file.write_row(&one);
  CHECK_THROWS(short_file.close());  // fewer rows than the header says
  std::remove(path);
}

TEST_CASE("command line") {
  CommandLine cl;
  CHECK(parse_command_line({"312.5", "104.2", "220", "400", "150"}, &cl) == "");
  CHECK(cl.mode == Mode::stream);
  CHECK(cl.temperatures.initial == 312.5);
  CHECK(cl.temperatures.left == 104.2);
  CHECK(cl.temperatures.right == 220);
  CHECK(cl.temperatures.bottom == 400);
  CHECK(cl.temperatures.top == 150);
  CHECK(cl.settings.grid == 100);
  CHECK(cl.settings.steps == 100);
  CHECK(cl.settings.dt == 0.01);
  CHECK(cl.settings.alpha == 1.0);

  CHECK(parse_command_line({"--mode", "compute", "--grid=30", "--steps", "7", "--baseline", "--cg-tol", "1e-6",
                            "-1", "-2.5", "3", "4", "5"},
                           &cl) == "");
  CHECK(cl.mode == Mode::compute);
  CHECK(cl.settings.grid == 30);
  CHECK(cl.settings.steps == 7);
  CHECK(cl.settings.cg_tolerance == 1e-6);
  CHECK(cl.settings.cg_start == CgStart::zero);
  CHECK(cl.settings.preconditioner == Preconditioner::none);
  CHECK(cl.temperatures.initial == -1);
  CHECK(cl.temperatures.left == -2.5);

  CHECK(parse_command_line({"1", "2", "3", "4"}, &cl).find("expected 5 temperatures") != std::string::npos);
  CHECK(parse_command_line({"--grid", "0", "1", "2", "3", "4", "5"}, &cl).find("--grid") == 0);
  CHECK(parse_command_line({"--bogus", "1", "2", "3", "4", "5"}, &cl).find("unknown option") == 0);
  CHECK(parse_command_line({"--mode", "dataset", "1", "2", "3", "4", "5"}, &cl).find("--output") !=
        std::string::npos);
  CHECK(parse_command_line({"1", "2", "x", "4", "5"}, &cl).find("T2") != std::string::npos);
  CHECK(parse_command_line({"--cg-start", "random", "1", "2", "3", "4", "5"}, &cl).find("--cg-start") == 0);
  CHECK(parse_command_line({"--steps"}, &cl).find("needs a value") != std::string::npos);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  doctest::Context context(argc, argv);
  const int result = context.run();
  MPI_Finalize();
  return result;
}
