// melissa-heat: the heat solver as a Melissa client (stream), as the same work
// without the API (compute: the baseline of the API overhead), or as a dataset
// writer (dataset: .npy files for offline training).
//
// Time step k (0-based) of the output is u^{k+1}: the field after k+1 implicit
// Euler steps; the initial condition is not sent.
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "command_line.hpp"
#include "heat.hpp"
#include "melissa/api.h"
#include "messages/checksum.hpp"
#include "messages/npy.hpp"

using namespace melissa::heat;

namespace {

constexpr const char* kField = "temperature";

[[noreturn]] void die(const std::string& message) {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  std::fprintf(stderr, "melissa-heat (rank %d): %s\n", rank, message.c_str());
  std::fflush(stderr);
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size == 1) {
    // One process: a plain exit avoids MPI_Abort's banner.
    MPI_Finalize();
    std::exit(1);
  }
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::exit(1);
}

void check_api(int rc, const char* call) {
  if (rc != MELISSA_OK)
    die(std::string(call) + " failed (" + std::to_string(rc) + "): " + melissa_last_error());
}

// Row slabs concatenated in rank order on rank 0: the global row-major field.
class SlabGather {
 public:
  SlabGather(const Decomposition& dc, int grid) : comm_(dc.cart()), root_(dc.rank() == 0) {
    const int P = dc.size();
    counts_.resize(P);
    displs_.resize(P);
    for (int s = 0; s < P; ++s) {
      const Extent e = dc.slab_rows(s);
      counts_[s] = e.size() * grid;
      displs_[s] = e.begin * grid;
    }
    if (root_) global_.resize(static_cast<std::size_t>(grid) * grid);
  }
  // Collective; the result is valid on rank 0 only.
  const std::vector<float>& gather(const std::vector<float>& slab) {
    MPI_Gatherv(slab.data(), static_cast<int>(slab.size()), MPI_FLOAT, global_.data(), counts_.data(),
                displs_.data(), MPI_FLOAT, 0, comm_);
    return global_;
  }

 private:
  MPI_Comm comm_;
  bool root_;
  std::vector<int> counts_, displs_;
  std::vector<float> global_;
};

void write_dump(const std::string& path, const std::vector<double>& field, int grid) {
  const bool as_npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  if (as_npy) {
    melissa::npy::save(path, field.data(), {static_cast<std::size_t>(grid), static_cast<std::size_t>(grid)});
    return;
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot create " + path);
  const bool ok = std::fwrite(field.data(), sizeof(double), field.size(), f) == field.size();
  if (std::fclose(f) != 0 || !ok) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  CommandLine cl;
  const std::string error = parse_command_line(std::vector<std::string>(argv + 1, argv + argc), &cl);
  if (cl.help) {
    if (rank == 0) std::fputs(usage().c_str(), stdout);
    MPI_Finalize();
    return 0;
  }
  if (!error.empty()) {
    if (rank == 0) std::fprintf(stderr, "melissa-heat: %s\n%s", error.c_str(), usage().c_str());
    MPI_Finalize();
    return 2;
  }
  int sim_id = 0;
  std::string id_error;
  if (!resolve_sim_id(cl, &sim_id, &id_error)) {
    if (rank == 0) std::fprintf(stderr, "melissa-heat: %s\n", id_error.c_str());
    MPI_Finalize();
    return 2;
  }

  std::unique_ptr<Solver> solver;
  try {
    solver = std::make_unique<Solver>(cl.settings, cl.temperatures, MPI_COMM_WORLD);
  } catch (const std::invalid_argument& e) {
    if (rank == 0) std::fprintf(stderr, "melissa-heat: %s (grid %d, %d ranks)\n", e.what(), cl.settings.grid, size);
    MPI_Finalize();
    return 2;
  }
  const Settings& s = cl.settings;
  const int M = s.grid;
  const std::size_t global_size = static_cast<std::size_t>(M) * M;

  const bool streaming = cl.mode == Mode::stream;
  const bool need_global = cl.mode == Mode::dataset || !cl.checksum_file.empty();
  std::vector<float> slab((streaming || need_global) ? solver->slab_size() : 0);
  std::unique_ptr<SlabGather> gather;
  if (need_global) gather = std::make_unique<SlabGather>(solver->decomposition(), M);

  // Rank 0's files. An I/O failure there must not leave the other ranks
  // waiting in a collective: die() aborts the whole job.
  std::unique_ptr<melissa::npy::Writer<float>> dataset;
  std::FILE* checksums = nullptr;
  if (rank == 0) {
    try {
      if (cl.mode == Mode::dataset) {
        char name[32];
        std::snprintf(name, sizeof name, "sim_%06d", sim_id);
        const std::filesystem::path dir = std::filesystem::path(cl.output_dir) / name;
        std::filesystem::create_directories(dir);
        const double params[5] = {cl.temperatures.initial, cl.temperatures.left, cl.temperatures.right,
                                  cl.temperatures.bottom, cl.temperatures.top};
        melissa::npy::save((dir / "parameters.npy").string(), params, {5});
        dataset = std::make_unique<melissa::npy::Writer<float>>(
            (dir / "temperature.npy").string(), std::vector<std::size_t>{static_cast<std::size_t>(s.steps), global_size});
      }
      if (!cl.checksum_file.empty()) {
        checksums = std::fopen(cl.checksum_file.c_str(), "w");
        if (!checksums) throw std::runtime_error("cannot create " + cl.checksum_file);
      }
    } catch (const std::exception& e) {
      die(e.what());
    }
  }

  if (streaming) check_api(melissa_init(kField, solver->slab_size(), MPI_COMM_WORLD), "melissa_init");

  MPI_Barrier(MPI_COMM_WORLD);
  const double start = MPI_Wtime();
  std::uint64_t checksum_total = 0;
  for (int step = 0; step < s.steps; ++step) {
    solver->advance();
    if (slab.empty()) continue;
    solver->to_slab(slab.data());
    if (streaming) check_api(melissa_send_float(kField, slab.data()), "melissa_send_float");
    if (!need_global) continue;
    const std::vector<float>& global = gather->gather(slab);
    if (rank != 0) continue;
    try {
      if (dataset) dataset->write_row(global.data());
      if (checksums) {
        const std::uint64_t sum =
            melissa::step_checksum(static_cast<std::uint32_t>(step), global.data(), global.size() * sizeof(float));
        checksum_total += sum;  // wrapping, as the server does
        std::fprintf(checksums, "%d %s\n", step, melissa::checksum_hex(sum).c_str());
      }
    } catch (const std::exception& e) {
      die(e.what());
    }
  }
  if (streaming) check_api(melissa_finalize(), "melissa_finalize");
  const double elapsed = MPI_Wtime() - start;

  if (rank == 0) {
    try {
      if (dataset) dataset->close();
      if (checksums) {
        std::fprintf(checksums, "total %s\n", melissa::checksum_hex(checksum_total).c_str());
        if (std::fclose(checksums) != 0) throw std::runtime_error("cannot write " + cl.checksum_file);
      }
    } catch (const std::exception& e) {
      die(e.what());
    }
  }
  if (!cl.dump_file.empty()) {
    const std::vector<double> field = solver->gather(0);
    if (rank == 0) {
      try {
        write_dump(cl.dump_file, field, M);
      } catch (const std::exception& e) {
        die(e.what());
      }
    }
  }

  long long unconverged = solver->unconverged_steps();
  MPI_Allreduce(MPI_IN_PLACE, &unconverged, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0) {
    const char* mode = streaming ? "stream" : cl.mode == Mode::compute ? "compute" : "dataset";
    std::printf("melissa-heat: sim %d mode %s grid %d steps %d ranks %d (%dx%d) cg-start %s precond %s "
                "cg-tol %g: time %.6f s, cg iterations %lld\n",
                sim_id, mode, M, s.steps, size, solver->decomposition().dims(0), solver->decomposition().dims(1),
                to_string(s.cg_start), to_string(s.preconditioner), s.cg_tolerance, elapsed,
                solver->total_cg_iterations());
    if (unconverged > 0)
      std::fprintf(stderr, "melissa-heat: warning: CG hit --cg-max-iter %d in %lld steps\n", s.cg_max_iterations,
                   unconverged);
    std::fflush(stdout);
  }
  solver.reset();
  MPI_Finalize();
  return 0;
}
