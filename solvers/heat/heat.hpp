// 2D heat equation u_t = alpha * Laplacian(u) on the unit square: the solver
// that the Melissa examples run as a client.
//
// Discretization: M x M interior points, h = 1 / (M + 1); point (i, j) sits at
// x = (j + 1) h, y = (i + 1) h, so the global field in row-major order (index
// i * M + j) has rows along y and columns along x. Dirichlet values on the
// four sides, in the order of the original Melissa heat example (and of the
// command line after T0):
//   T1: left   side x = 0  (column j = -1)
//   T2: right  side x = 1  (column j = M)
//   T3: bottom side y = 0  (row i = -1)
//   T4: top    side y = 1  (row i = M)
// Time: implicit Euler, (I - alpha dt L_h) u^{n+1} = u^n + boundary terms,
// with the 5-point Laplacian L_h, solved by a matrix-free conjugate gradient.
//
// Parallelism: a 2D block decomposition (MPI_Dims_create + a Cartesian
// communicator, no rank reordering) with one ghost layer exchanged per
// matrix-vector product. What leaves the solver (stream, dataset, checksum,
// dump) is the GLOBAL row-major field: Solver::to_slab redistributes the
// blocks into row slabs (rank r holds global rows [r*M/P, (r+1)*M/P)), so that
// concatenating the slabs in rank order (what MPI_Gatherv and the client API
// do) gives the field independent of the number of ranks.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace melissa::heat {

// The five study parameters, in command-line order.
struct Temperatures {
  double initial = 0;  // T0: interior at t = 0
  double left = 0;     // T1: x = 0
  double right = 0;    // T2: x = 1
  double bottom = 0;   // T3: y = 0
  double top = 0;      // T4: y = 1
};

// Initial guess of each time step's CG solve.
enum class CgStart {
  zero,         // u^{n+1} = 0: the original Melissa solver (baseline)
  previous,     // u^{n+1} = u^n
  extrapolate,  // u^{n+1} = 2 u^n - u^{n-1}
};

// What the CG iterates on.
enum class Preconditioner {
  none,       // plain CG on all M*M unknowns (baseline)
  red_black,  // red-black block elimination: CG on the black-point Schur
              // complement, equivalent to symmetric red-black Gauss-Seidel
              // preconditioning; independent of the decomposition
};

struct Settings {
  int grid = 100;  // M: interior points per side
  int steps = 100;
  double dt = 0.01;
  double alpha = 1.0;
  // CG stops when ||b - A u||_2 <= cg_tolerance * ||b||_2, b being the right
  // hand side of the system for u^{n+1}: the criterion of the original solver,
  // whatever the start and the preconditioner. The original ran at 1e-4; with
  // a warm start the per-step errors add up coherently over the steps, so the
  // same accuracy needs ~1e-5 (measured by tests/bench/heat_solver): hence
  // this default.
  double cg_tolerance = 1e-5;
  int cg_max_iterations = 100000;
  CgStart cg_start = CgStart::extrapolate;
  Preconditioner preconditioner = Preconditioner::red_black;
};

// The settings of the original Melissa solver: CG from zero, no preconditioner.
Settings baseline_settings(Settings s);

const char* to_string(CgStart s);
const char* to_string(Preconditioner p);
bool parse_cg_start(const std::string& text, CgStart* out);
bool parse_preconditioner(const std::string& text, Preconditioner* out);

// Half-open range of global indices.
struct Extent {
  int begin = 0;
  int end = 0;
  int size() const { return end - begin; }
};

// Rows and columns split as evenly as possible: part k of n is
// [k*m/n, (k+1)*m/n).
Extent split(int m, int parts, int part);

// The 2D block decomposition of an M x M grid over the ranks of a communicator.
class Decomposition {
 public:
  Decomposition(int grid, MPI_Comm comm);
  ~Decomposition();
  Decomposition(const Decomposition&) = delete;
  Decomposition& operator=(const Decomposition&) = delete;

  int grid() const { return grid_; }
  MPI_Comm cart() const { return cart_; }  // same rank numbers as comm
  int rank() const { return rank_; }
  int size() const { return size_; }
  int dims(int d) const { return dims_[d]; }  // d = 0: rows (y), 1: columns (x)

  Extent rows() const { return block_rows(rank_); }  // this rank's block
  Extent cols() const { return block_cols(rank_); }
  Extent block_rows(int rank) const;
  Extent block_cols(int rank) const;
  Extent slab_rows(int rank) const;  // the row slab of a rank

  // Neighbour ranks, MPI_PROC_NULL on the global boundary.
  int below() const { return below_; }  // row - 1 (towards y = 0)
  int above() const { return above_; }  // row + 1
  int left() const { return left_; }    // column - 1 (towards x = 0)
  int right() const { return right_; }  // column + 1

 private:
  int grid_;
  MPI_Comm cart_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  int dims_[2] = {1, 1};
  int below_, above_, left_, right_;
};

// One simulation. Every method that says "collective" must be called by all
// ranks of the communicator.
class Solver {
 public:
  Solver(const Settings& settings, const Temperatures& temperatures, MPI_Comm comm);
  ~Solver();
  Solver(const Solver&) = delete;
  Solver& operator=(const Solver&) = delete;

  const Settings& settings() const { return settings_; }
  const Decomposition& decomposition() const { return decomp_; }

  // Replaces the interior field by f(x, y) (manufactured solutions in tests);
  // only before the first step.
  void set_field(const std::function<double(double x, double y)>& f);

  // One implicit Euler step (collective). Returns the CG iterations it took.
  int advance();

  int steps_done() const { return steps_done_; }
  double time() const { return steps_done_ * settings_.dt; }
  long long total_cg_iterations() const { return total_cg_iterations_; }
  // Steps whose CG hit cg_max_iterations before the tolerance.
  int unconverged_steps() const { return unconverged_steps_; }

  // Local block: value at local (row, column); coordinates of a local point.
  double value(int local_row, int local_col) const;
  double x(int local_col) const;
  double y(int local_row) const;

  // Values of this rank's row slab: slab_rows(rank).size() * M.
  std::size_t slab_size() const;
  // Redistributes the blocks into row slabs (collective, MPI_Alltoallv).
  void to_slab(double* slab);
  void to_slab(float* slab);
  // The global row-major field on root, empty elsewhere (collective).
  std::vector<double> gather(int root);

 private:
  struct Vectors;
  template <class T>
  void to_slab_impl(T* slab, MPI_Datatype type);
  // Fills the ghost layer of a ghosted array from the neighbouring blocks;
  // ghosts on the global boundary keep their values (Dirichlet data or zero).
  void exchange_halo(double* a);
  int solve_plain(bool guess_is_zero, double tolerance);
  int solve_red_black(bool guess_is_zero, double tolerance);

  Settings settings_;
  Temperatures temperatures_;
  Decomposition decomp_;
  int steps_done_ = 0;
  long long total_cg_iterations_ = 0;
  int unconverged_steps_ = 0;
  std::unique_ptr<Vectors> v_;  // work arrays (pimpl keeps the header free of them)

  // Alltoallv plan of the block -> slab redistribution.
  std::vector<int> send_counts_, send_displs_, recv_counts_, recv_displs_;
  std::size_t send_total_ = 0, recv_total_ = 0;
};

}  // namespace melissa::heat
