#include "command_line.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace melissa::heat {

namespace {

bool to_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || errno == ERANGE || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool to_int(const std::string& s, int* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (*end != '\0' || errno == ERANGE || v < std::numeric_limits<int>::min() ||
      v > std::numeric_limits<int>::max())
    return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

std::string usage() {
  return "usage: melissa-heat [options] T0 T1 T2 T3 T4\n"
         "  2D heat equation on the unit square, implicit Euler, M x M interior points.\n"
         "  T0: initial interior temperature; Dirichlet values T1: left (x=0), T2: right (x=1),\n"
         "  T3: bottom (y=0), T4: top (y=1). Output field: global, row-major (i*M+j, i along y).\n"
         "options:\n"
         "  --mode stream|compute|dataset  stream: send each step with the client API (default);\n"
         "                                 compute: no API call; dataset: write .npy files\n"
         "  --output DIR             dataset mode: writes DIR/sim_<id>/temperature.npy\n"
         "                           (float32, (steps, M*M)) and parameters.npy (float64, (5,))\n"
         "  --sim-id N               simulation id (default: $MELISSA_SIM_ID, else 0)\n"
         "  --grid M                 interior points per side (default 100)\n"
         "  --steps N                time steps (default 100)\n"
         "  --dt DT                  time step (default 0.01)\n"
         "  --alpha A                diffusivity (default 1)\n"
         "  --cg-tol TOL             CG stops at ||r|| <= TOL ||b|| (default 1e-5: as accurate\n"
         "                           with warm starts as the original solver at 1e-4)\n"
         "  --cg-max-iter N          CG iteration limit per step (default 100000)\n"
         "  --cg-start zero|previous|extrapolate\n"
         "                           initial guess: 0 (original Melissa), u^n, 2u^n-u^(n-1)\n"
         "                           (default extrapolate)\n"
         "  --precond none|red-black CG on all points, or on the red-black Schur complement\n"
         "                           (default red-black)\n"
         "  --baseline               the original algorithm: --cg-start zero --precond none\n"
         "  --checksum-file FILE     rank 0 writes '<step> <hex>' per step and 'total <hex>'\n"
         "  --dump FILE              rank 0 writes the final field: .npy, else raw float64\n"
         "  -h, --help               this text\n";
}

std::string parse_command_line(const std::vector<std::string>& args, CommandLine* out) {
  CommandLine cl;
  std::vector<std::string> positional;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    // "--key=value" and "--key value" both work.
    std::string key = a, value;
    bool inline_value = false;
    if (a.rfind("--", 0) == 0) {
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        key = a.substr(0, eq);
        value = a.substr(eq + 1);
        inline_value = true;
      }
    }
    auto next = [&](std::string* v) -> std::string {
      if (inline_value) {
        *v = value;
        return "";
      }
      if (i + 1 >= args.size()) return key + " needs a value";
      *v = args[++i];
      return "";
    };
    std::string v, err;
    if (key == "-h" || key == "--help") {
      cl.help = true;
    } else if (key == "--baseline") {
      cl.settings = baseline_settings(cl.settings);
    } else if (key == "--mode") {
      if (!(err = next(&v)).empty()) return err;
      if (v == "stream") cl.mode = Mode::stream;
      else if (v == "compute") cl.mode = Mode::compute;
      else if (v == "dataset") cl.mode = Mode::dataset;
      else return "--mode: '" + v + "' is not stream, compute or dataset";
    } else if (key == "--output") {
      if (!(err = next(&v)).empty()) return err;
      cl.output_dir = v;
    } else if (key == "--sim-id") {
      if (!(err = next(&v)).empty()) return err;
      if (!to_int(v, &cl.sim_id) || cl.sim_id < 0) return "--sim-id: '" + v + "' is not a non-negative integer";
    } else if (key == "--grid") {
      if (!(err = next(&v)).empty()) return err;
      if (!to_int(v, &cl.settings.grid) || cl.settings.grid < 1) return "--grid: '" + v + "' is not a positive integer";
    } else if (key == "--steps") {
      if (!(err = next(&v)).empty()) return err;
      if (!to_int(v, &cl.settings.steps) || cl.settings.steps < 1) return "--steps: '" + v + "' is not a positive integer";
    } else if (key == "--dt") {
      if (!(err = next(&v)).empty()) return err;
      if (!to_double(v, &cl.settings.dt) || cl.settings.dt <= 0) return "--dt: '" + v + "' is not a positive number";
    } else if (key == "--alpha") {
      if (!(err = next(&v)).empty()) return err;
      if (!to_double(v, &cl.settings.alpha) || cl.settings.alpha <= 0) return "--alpha: '" + v + "' is not a positive number";
    } else if (key == "--cg-tol") {
      if (!(err = next(&v)).empty()) return err;
      if (!to_double(v, &cl.settings.cg_tolerance) || cl.settings.cg_tolerance <= 0)
        return "--cg-tol: '" + v + "' is not a positive number";
    } else if (key == "--cg-max-iter") {
      if (!(err = next(&v)).empty()) return err;
      if (!to_int(v, &cl.settings.cg_max_iterations) || cl.settings.cg_max_iterations < 1)
        return "--cg-max-iter: '" + v + "' is not a positive integer";
    } else if (key == "--cg-start") {
      if (!(err = next(&v)).empty()) return err;
      if (!parse_cg_start(v, &cl.settings.cg_start)) return "--cg-start: '" + v + "' is not zero, previous or extrapolate";
    } else if (key == "--precond") {
      if (!(err = next(&v)).empty()) return err;
      if (!parse_preconditioner(v, &cl.settings.preconditioner)) return "--precond: '" + v + "' is not none or red-black";
    } else if (key == "--checksum-file") {
      if (!(err = next(&v)).empty()) return err;
      cl.checksum_file = v;
    } else if (key == "--dump") {
      if (!(err = next(&v)).empty()) return err;
      cl.dump_file = v;
    } else if (double number; a.size() > 1 && a[0] == '-' && !to_double(a, &number)) {
      // Negative temperatures are numbers, not options.
      return "unknown option '" + a + "'";
    } else {
      positional.push_back(a);
    }
  }
  *out = cl;
  if (cl.help) return "";
  if (positional.size() != 5)
    return "expected 5 temperatures T0 T1 T2 T3 T4, got " + std::to_string(positional.size());
  double* targets[5] = {&cl.temperatures.initial, &cl.temperatures.left, &cl.temperatures.right,
                        &cl.temperatures.bottom, &cl.temperatures.top};
  for (int k = 0; k < 5; ++k)
    if (!to_double(positional[k], targets[k]))
      return "temperature T" + std::to_string(k) + ": '" + positional[k] + "' is not a number";
  if (cl.mode == Mode::dataset && cl.output_dir.empty()) return "--mode dataset needs --output DIR";
  if (cl.mode != Mode::dataset && !cl.output_dir.empty()) return "--output is for --mode dataset";
  *out = cl;
  return "";
}

bool resolve_sim_id(const CommandLine& cl, int* id, std::string* error) {
  if (cl.sim_id >= 0) {
    *id = cl.sim_id;
    return true;
  }
  const char* env = std::getenv("MELISSA_SIM_ID");
  if (!env || !*env) {
    *id = 0;
    return true;
  }
  if (!to_int(env, id) || *id < 0) {
    *error = std::string("MELISSA_SIM_ID='") + env + "' is not a non-negative integer";
    return false;
  }
  return true;
}

}  // namespace melissa::heat
