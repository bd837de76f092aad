#include "heat.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace melissa::heat {

Settings baseline_settings(Settings s) {
  s.cg_start = CgStart::zero;
  s.preconditioner = Preconditioner::none;
  return s;
}

const char* to_string(CgStart s) {
  switch (s) {
    case CgStart::zero: return "zero";
    case CgStart::previous: return "previous";
    case CgStart::extrapolate: return "extrapolate";
  }
  return "?";
}

const char* to_string(Preconditioner p) {
  switch (p) {
    case Preconditioner::none: return "none";
    case Preconditioner::red_black: return "red-black";
  }
  return "?";
}

bool parse_cg_start(const std::string& text, CgStart* out) {
  if (text == "zero") *out = CgStart::zero;
  else if (text == "previous") *out = CgStart::previous;
  else if (text == "extrapolate") *out = CgStart::extrapolate;
  else return false;
  return true;
}

bool parse_preconditioner(const std::string& text, Preconditioner* out) {
  if (text == "none") *out = Preconditioner::none;
  else if (text == "red-black" || text == "redblack" || text == "rb") *out = Preconditioner::red_black;
  else return false;
  return true;
}

Extent split(int m, int parts, int part) {
  // 64-bit products: M*P overflows int only for absurd grids, but it costs nothing.
  auto at = [&](int k) { return static_cast<int>(static_cast<long long>(k) * m / parts); };
  return {at(part), at(part + 1)};
}

// ---------------------------------------------------------------------------
// Decomposition

Decomposition::Decomposition(int grid, MPI_Comm comm) : grid_(grid) {
  MPI_Comm_size(comm, &size_);
  dims_[0] = dims_[1] = 0;  // 0: let MPI_Dims_create choose
  MPI_Dims_create(size_, 2, dims_);
  int periods[2] = {0, 0};
  // No reordering: cart ranks equal comm ranks, which the slab layout (rank
  // order of the client API's gather) relies on.
  MPI_Cart_create(comm, 2, dims_, periods, /*reorder=*/0, &cart_);
  MPI_Comm_rank(cart_, &rank_);
  MPI_Cart_shift(cart_, 0, 1, &below_, &above_);
  MPI_Cart_shift(cart_, 1, 1, &left_, &right_);
}

Decomposition::~Decomposition() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && cart_ != MPI_COMM_NULL) MPI_Comm_free(&cart_);
}

Extent Decomposition::block_rows(int rank) const {
  int coords[2];
  MPI_Cart_coords(cart_, rank, 2, coords);
  return split(grid_, dims_[0], coords[0]);
}

Extent Decomposition::block_cols(int rank) const {
  int coords[2];
  MPI_Cart_coords(cart_, rank, 2, coords);
  return split(grid_, dims_[1], coords[1]);
}

Extent Decomposition::slab_rows(int rank) const { return split(grid_, size_, rank); }

// ---------------------------------------------------------------------------
// Work arrays. "Ghosted" arrays have one ghost layer: (rows + 2) x (cols + 2),
// local point (i, j) at (i + 1) * W + j + 1. Compact arrays: rows x cols.

struct Solver::Vectors {
  int rows, cols, W;
  int row0, col0;   // global index of local (0, 0)
  double c, d;      // A = d I - c K: c = alpha dt / h^2, d = 1 + 4c
  MPI_Datatype column_type = MPI_DATATYPE_NULL;

  std::vector<double> u;      // ghosted: u^n, Dirichlet values in global ghosts
  std::vector<double> bnd;    // compact: c * (Dirichlet neighbours), b = u^n + bnd
  std::vector<double> f;      // ghosted: right-hand side of the increment system
  std::vector<double> delta;  // compact: u^{n+1} - u^n (kept: extrapolation guess)
  std::vector<double> r, q;   // compact CG vectors
  std::vector<double> p, t;   // ghosted CG vectors (stencil inputs)

  std::size_t g(int i, int j) const { return static_cast<std::size_t>(i + 1) * W + (j + 1); }
  std::size_t k(int i, int j) const { return static_cast<std::size_t>(i) * cols + j; }
  // First local column of colour `parity` in local row i: (global row + global
  // column) % 2 == parity. Red: 0, black: 1.
  int first(int i, int parity) const { return (row0 + i + col0 + parity) & 1; }
};

namespace {

double allreduce_sum(double local, MPI_Comm comm) {
  double global;
  MPI_Allreduce(&local, &global, 1, MPI_DOUBLE, MPI_SUM, comm);
  return global;
}

}  // namespace

void Solver::exchange_halo(double* a) {
  const Decomposition& dc = decomp_;
  if (dc.size() == 1) return;
  const Vectors& v = *v_;
  MPI_Comm comm = dc.cart();
  // Rows are contiguous (interior columns only: corners are never read).
  MPI_Sendrecv(a + v.g(0, 0), v.cols, MPI_DOUBLE, dc.below(), 0,
               a + v.g(v.rows, 0), v.cols, MPI_DOUBLE, dc.above(), 0, comm, MPI_STATUS_IGNORE);
  MPI_Sendrecv(a + v.g(v.rows - 1, 0), v.cols, MPI_DOUBLE, dc.above(), 1,
               a + v.g(-1, 0), v.cols, MPI_DOUBLE, dc.below(), 1, comm, MPI_STATUS_IGNORE);
  MPI_Sendrecv(a + v.g(0, 0), 1, v.column_type, dc.left(), 2,
               a + v.g(0, v.cols), 1, v.column_type, dc.right(), 2, comm, MPI_STATUS_IGNORE);
  MPI_Sendrecv(a + v.g(0, v.cols - 1), 1, v.column_type, dc.right(), 3,
               a + v.g(0, -1), 1, v.column_type, dc.left(), 3, comm, MPI_STATUS_IGNORE);
}

Solver::Solver(const Settings& settings, const Temperatures& temperatures, MPI_Comm comm)
    : settings_(settings), temperatures_(temperatures), decomp_(settings.grid, comm), v_(new Vectors) {
  if (settings.grid < 1) throw std::invalid_argument("grid must be >= 1");
  if (settings.grid < decomp_.dims(0) || settings.grid < decomp_.dims(1))
    throw std::invalid_argument("grid smaller than the process grid: some ranks would own no point");
  Vectors& v = *v_;
  const Extent R = decomp_.rows(), C = decomp_.cols();
  v.rows = R.size();
  v.cols = C.size();
  v.W = v.cols + 2;
  v.row0 = R.begin;
  v.col0 = C.begin;
  const double h = 1.0 / (settings.grid + 1);
  v.c = settings.alpha * settings.dt / (h * h);
  v.d = 1.0 + 4.0 * v.c;
  MPI_Type_vector(v.rows, 1, v.W, MPI_DOUBLE, &v.column_type);
  MPI_Type_commit(&v.column_type);

  const std::size_t ghosted = static_cast<std::size_t>(v.rows + 2) * v.W;
  const std::size_t compact = static_cast<std::size_t>(v.rows) * v.cols;
  v.u.assign(ghosted, 0.0);
  v.f.assign(ghosted, 0.0);
  v.p.assign(ghosted, 0.0);
  v.t.assign(ghosted, 0.0);
  v.bnd.assign(compact, 0.0);
  v.delta.assign(compact, 0.0);
  v.r.assign(compact, 0.0);
  v.q.assign(compact, 0.0);

  for (int i = 0; i < v.rows; ++i)
    for (int j = 0; j < v.cols; ++j) v.u[v.g(i, j)] = temperatures.initial;
  // Dirichlet values live in the ghosts on the global boundary; those ghosts
  // are never overwritten by the halo exchange.
  const int M = settings.grid;
  if (R.begin == 0)
    for (int j = 0; j < v.cols; ++j) v.u[v.g(-1, j)] = temperatures.bottom;
  if (R.end == M)
    for (int j = 0; j < v.cols; ++j) v.u[v.g(v.rows, j)] = temperatures.top;
  if (C.begin == 0)
    for (int i = 0; i < v.rows; ++i) v.u[v.g(i, -1)] = temperatures.left;
  if (C.end == M)
    for (int i = 0; i < v.rows; ++i) v.u[v.g(i, v.cols)] = temperatures.right;
  for (int i = 0; i < v.rows; ++i)
    for (int j = 0; j < v.cols; ++j) {
      double sum = 0;
      if (v.row0 + i == 0) sum += temperatures.bottom;
      if (v.row0 + i == M - 1) sum += temperatures.top;
      if (v.col0 + j == 0) sum += temperatures.left;
      if (v.col0 + j == M - 1) sum += temperatures.right;
      v.bnd[v.k(i, j)] = v.c * sum;
    }

  // Block -> slab plan: what I send to rank s is my block's rows inside s's
  // slab; what I receive from rank q is q's block rows inside my slab.
  const int P = decomp_.size();
  send_counts_.assign(P, 0);
  send_displs_.assign(P, 0);
  recv_counts_.assign(P, 0);
  recv_displs_.assign(P, 0);
  const Extent my_slab = decomp_.slab_rows(decomp_.rank());
  int send_at = 0, recv_at = 0;
  for (int s = 0; s < P; ++s) {
    const Extent sr = decomp_.slab_rows(s);
    const int n_send = std::max(0, std::min(R.end, sr.end) - std::max(R.begin, sr.begin));
    send_counts_[s] = n_send * v.cols;
    send_displs_[s] = send_at;
    send_at += send_counts_[s];
    const Extent qr = decomp_.block_rows(s), qc = decomp_.block_cols(s);
    const int n_recv = std::max(0, std::min(qr.end, my_slab.end) - std::max(qr.begin, my_slab.begin));
    recv_counts_[s] = n_recv * qc.size();
    recv_displs_[s] = recv_at;
    recv_at += recv_counts_[s];
  }
  send_total_ = send_at;
  recv_total_ = recv_at;
}

Solver::~Solver() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && v_->column_type != MPI_DATATYPE_NULL) MPI_Type_free(&v_->column_type);
}

void Solver::set_field(const std::function<double(double, double)>& f) {
  if (steps_done_ != 0) throw std::logic_error("set_field after the first step");
  Vectors& v = *v_;
  for (int i = 0; i < v.rows; ++i)
    for (int j = 0; j < v.cols; ++j) v.u[v.g(i, j)] = f(x(j), y(i));
}

double Solver::value(int i, int j) const { return v_->u[v_->g(i, j)]; }
double Solver::x(int j) const { return (v_->col0 + j + 1) / double(settings_.grid + 1); }
double Solver::y(int i) const { return (v_->row0 + i + 1) / double(settings_.grid + 1); }

// ---------------------------------------------------------------------------
// Time step. Everything is written for the increment delta = u^{n+1} - u^n:
//   A delta = f,  A = (1 + 4c) I - c K,  f = c L(u^n)
// with L(u)_ij = sum over the 4 neighbours of (u_nb - u_ij), Dirichlet values
// included. Written as differences, f is exactly zero for a constant field
// equal to the boundary values, so such a field stays bitwise constant. The
// residual of this system is the residual of the system for u^{n+1}, whose
// right-hand side b = u^n + bnd gives the stopping threshold.

int Solver::advance() {
  Vectors& v = *v_;
  const MPI_Comm comm = decomp_.cart();
  exchange_halo(v.u.data());

  double b_squared = 0;
  for (int i = 0; i < v.rows; ++i) {
    const double* uc = &v.u[v.g(i, 0)];
    const double* un = uc + v.W;
    const double* us = uc - v.W;
    double* fi = &v.f[v.g(i, 0)];
    const double* bi = &v.bnd[v.k(i, 0)];
#pragma omp simd reduction(+ : b_squared)
    for (int j = 0; j < v.cols; ++j) {
      const double c0 = uc[j];
      fi[j] = v.c * (((us[j] - c0) + (un[j] - c0)) + ((uc[j - 1] - c0) + (uc[j + 1] - c0)));
      const double b = c0 + bi[j];
      b_squared += b * b;
    }
  }
  const double tolerance = settings_.cg_tolerance * std::sqrt(allreduce_sum(b_squared, comm));

  // Initial guess of the increment (delta still holds the last increment).
  const bool zero_start = settings_.cg_start == CgStart::zero;
  if (zero_start) {
    for (int i = 0; i < v.rows; ++i)
      for (int j = 0; j < v.cols; ++j) v.delta[v.k(i, j)] = -v.u[v.g(i, j)];
  } else if (settings_.cg_start == CgStart::previous || steps_done_ == 0) {
    std::fill(v.delta.begin(), v.delta.end(), 0.0);
  }
  const bool guess_is_zero = !zero_start && (settings_.cg_start == CgStart::previous || steps_done_ == 0);

  const int iterations = settings_.preconditioner == Preconditioner::red_black
                             ? solve_red_black(guess_is_zero, tolerance)
                             : solve_plain(guess_is_zero, tolerance);

  for (int i = 0; i < v.rows; ++i) {
    double* ui = &v.u[v.g(i, 0)];
    const double* di = &v.delta[v.k(i, 0)];
    for (int j = 0; j < v.cols; ++j) ui[j] += di[j];
  }
  ++steps_done_;
  total_cg_iterations_ += iterations;
  return iterations;
}

// Plain CG on all unknowns.
int Solver::solve_plain(bool guess_is_zero, double tolerance) {
  Vectors& v = *v_;
  const MPI_Comm comm = decomp_.cart();
  const double c = v.c, d = v.d;
  const int W = v.W;
  double* x = v.delta.data();
  double* r = v.r.data();
  double* q = v.q.data();
  double* p = v.p.data();

  // q = A p for the interior, returns the local p . q.
  auto apply = [&]() {
    double pq = 0;
    for (int i = 0; i < v.rows; ++i) {
      const double* pc = p + v.g(i, 0);
      double* qi = q + v.k(i, 0);
#pragma omp simd reduction(+ : pq)
      for (int j = 0; j < v.cols; ++j) {
        const double a = d * pc[j] - c * ((pc[j - W] + pc[j + W]) + (pc[j - 1] + pc[j + 1]));
        qi[j] = a;
        pq += pc[j] * a;
      }
    }
    return pq;
  };

  if (settings_.cg_start == CgStart::zero) {
    // u^{n+1} = 0: the residual is b = u^n + bnd itself (no product needed).
    for (int i = 0; i < v.rows; ++i)
      for (int j = 0; j < v.cols; ++j) r[v.k(i, j)] = v.u[v.g(i, j)] + v.bnd[v.k(i, j)];
  } else if (guess_is_zero) {
    for (int i = 0; i < v.rows; ++i)
      for (int j = 0; j < v.cols; ++j) r[v.k(i, j)] = v.f[v.g(i, j)];
  } else {
    for (int i = 0; i < v.rows; ++i)
      for (int j = 0; j < v.cols; ++j) p[v.g(i, j)] = x[v.k(i, j)];
    exchange_halo(p);
    apply();
    for (int i = 0; i < v.rows; ++i)
      for (int j = 0; j < v.cols; ++j) r[v.k(i, j)] = v.f[v.g(i, j)] - q[v.k(i, j)];
  }
  double rr = 0;
  for (std::size_t k = 0; k < v.r.size(); ++k) rr += r[k] * r[k];
  rr = allreduce_sum(rr, comm);
  if (std::sqrt(rr) <= tolerance) return 0;
  for (int i = 0; i < v.rows; ++i)
    for (int j = 0; j < v.cols; ++j) p[v.g(i, j)] = r[v.k(i, j)];

  int it = 0;
  while (it < settings_.cg_max_iterations) {
    exchange_halo(p);
    const double pq = allreduce_sum(apply(), comm);
    const double a = rr / pq;
    double rr_new = 0;
    for (int i = 0; i < v.rows; ++i) {
      const double* pi = p + v.g(i, 0);
      double* xi = x + v.k(i, 0);
      double* ri = r + v.k(i, 0);
      const double* qi = q + v.k(i, 0);
#pragma omp simd reduction(+ : rr_new)
      for (int j = 0; j < v.cols; ++j) {
        xi[j] += a * pi[j];
        ri[j] -= a * qi[j];
        rr_new += ri[j] * ri[j];
      }
    }
    rr_new = allreduce_sum(rr_new, comm);
    ++it;
    if (std::sqrt(rr_new) <= tolerance) return it;
    const double beta = rr_new / rr;
    rr = rr_new;
    for (int i = 0; i < v.rows; ++i) {
      double* pi = p + v.g(i, 0);
      const double* ri = r + v.k(i, 0);
      for (int j = 0; j < v.cols; ++j) pi[j] = ri[j] + beta * pi[j];
    }
  }
  ++unconverged_steps_;
  return it;
}

// Red-black elimination. Red points ((i + j) even, global indices) only touch
// black ones, so with A = [[d I, -c K_rb], [-c K_br, d I]]:
//   delta_r = (f_r + c K_rb delta_b) / d
//   S delta_b = g_b,  S = d I - (c^2 / d) K_br K_rb,  g_b = f_b + (c / d) K_br f_r.
// S is SPD with about a quarter of A's condition number, so CG on it needs
// about half the iterations, each costing about one product with A. Given
// delta_r from the first line, the full residual is zero on red points and
// equals the Schur residual on black ones: the same stopping test holds.
int Solver::solve_red_black(bool guess_is_zero, double tolerance) {
  Vectors& v = *v_;
  const MPI_Comm comm = decomp_.cart();
  const double c = v.c, d = v.d, c2_d = c * c / d, c_d = c / d;
  const int W = v.W;
  double* x = v.delta.data();
  double* r = v.r.data();
  double* q = v.q.data();
  double* p = v.p.data();
  double* t = v.t.data();
  constexpr int red = 0, black = 1;

  // q_b = S p_b for the black points; returns the local p_b . q_b.
  auto apply = [&]() {
    exchange_halo(p);
    for (int i = 0; i < v.rows; ++i) {
      const double* pc = p + v.g(i, 0);
      double* ti = t + v.g(i, 0);
      for (int j = v.first(i, red); j < v.cols; j += 2)
        ti[j] = (pc[j - W] + pc[j + W]) + (pc[j - 1] + pc[j + 1]);
    }
    exchange_halo(t);
    double pq = 0;
    for (int i = 0; i < v.rows; ++i) {
      const double* pc = p + v.g(i, 0);
      const double* tc = t + v.g(i, 0);
      double* qi = q + v.k(i, 0);
#pragma omp simd reduction(+ : pq)
      for (int j = v.first(i, black); j < v.cols; j += 2) {
        const double a = d * pc[j] - c2_d * ((tc[j - W] + tc[j + W]) + (tc[j - 1] + tc[j + 1]));
        qi[j] = a;
        pq += pc[j] * a;
      }
    }
    return pq;
  };

  // g_b (into r, as the residual of a zero guess).
  exchange_halo(v.f.data());
  for (int i = 0; i < v.rows; ++i) {
    const double* fc = &v.f[v.g(i, 0)];
    double* ri = r + v.k(i, 0);
    for (int j = v.first(i, black); j < v.cols; j += 2)
      ri[j] = fc[j] + c_d * ((fc[j - W] + fc[j + W]) + (fc[j - 1] + fc[j + 1]));
  }
  if (!guess_is_zero) {
    for (int i = 0; i < v.rows; ++i)
      for (int j = v.first(i, black); j < v.cols; j += 2) p[v.g(i, j)] = x[v.k(i, j)];
    apply();
    for (int i = 0; i < v.rows; ++i)
      for (int j = v.first(i, black); j < v.cols; j += 2) r[v.k(i, j)] -= q[v.k(i, j)];
  } else {
    for (int i = 0; i < v.rows; ++i)
      for (int j = v.first(i, black); j < v.cols; j += 2) x[v.k(i, j)] = 0.0;
  }
  double rr = 0;
  for (int i = 0; i < v.rows; ++i)
    for (int j = v.first(i, black); j < v.cols; j += 2) rr += r[v.k(i, j)] * r[v.k(i, j)];
  rr = allreduce_sum(rr, comm);

  int it = 0;
  if (std::sqrt(rr) > tolerance) {
    for (int i = 0; i < v.rows; ++i)
      for (int j = v.first(i, black); j < v.cols; j += 2) p[v.g(i, j)] = r[v.k(i, j)];
    bool converged = false;
    while (it < settings_.cg_max_iterations) {
      const double pq = allreduce_sum(apply(), comm);
      const double a = rr / pq;
      double rr_new = 0;
      for (int i = 0; i < v.rows; ++i) {
        const double* pi = p + v.g(i, 0);
        double* xi = x + v.k(i, 0);
        double* ri = r + v.k(i, 0);
        const double* qi = q + v.k(i, 0);
#pragma omp simd reduction(+ : rr_new)
        for (int j = v.first(i, black); j < v.cols; j += 2) {
          xi[j] += a * pi[j];
          ri[j] -= a * qi[j];
          rr_new += ri[j] * ri[j];
        }
      }
      rr_new = allreduce_sum(rr_new, comm);
      ++it;
      if (std::sqrt(rr_new) <= tolerance) {
        converged = true;
        break;
      }
      const double beta = rr_new / rr;
      rr = rr_new;
      for (int i = 0; i < v.rows; ++i) {
        double* pi = p + v.g(i, 0);
        const double* ri = r + v.k(i, 0);
        for (int j = v.first(i, black); j < v.cols; j += 2) pi[j] = ri[j] + beta * pi[j];
      }
    }
    if (!converged) ++unconverged_steps_;
  }

  // Back-substitution of the red points.
  for (int i = 0; i < v.rows; ++i)
    for (int j = v.first(i, black); j < v.cols; j += 2) p[v.g(i, j)] = x[v.k(i, j)];
  exchange_halo(p);
  for (int i = 0; i < v.rows; ++i) {
    const double* pc = p + v.g(i, 0);
    const double* fc = &v.f[v.g(i, 0)];
    double* xi = x + v.k(i, 0);
    for (int j = v.first(i, red); j < v.cols; j += 2)
      xi[j] = (fc[j] + c * ((pc[j - W] + pc[j + W]) + (pc[j - 1] + pc[j + 1]))) / d;
  }
  return it;
}

// ---------------------------------------------------------------------------
// Output layout

std::size_t Solver::slab_size() const {
  return static_cast<std::size_t>(decomp_.slab_rows(decomp_.rank()).size()) * settings_.grid;
}

template <class T>
void Solver::to_slab_impl(T* slab, MPI_Datatype type) {
  Vectors& v = *v_;
  const int P = decomp_.size();
  const int M = settings_.grid;
  if (P == 1) {
    for (int i = 0; i < v.rows; ++i)
      for (int j = 0; j < v.cols; ++j) slab[v.k(i, j)] = static_cast<T>(v.u[v.g(i, j)]);
    return;
  }
  // Pack in destination order: destinations' slabs are increasing row ranges,
  // so my rows in order are already grouped by destination.
  std::vector<T> send(send_total_), recv(recv_total_);
  std::size_t n = 0;
  for (int i = 0; i < v.rows; ++i)
    for (int j = 0; j < v.cols; ++j) send[n++] = static_cast<T>(v.u[v.g(i, j)]);
  MPI_Alltoallv(send.data(), send_counts_.data(), send_displs_.data(), type, recv.data(),
                recv_counts_.data(), recv_displs_.data(), type, decomp_.cart());
  const Extent my_slab = decomp_.slab_rows(decomp_.rank());
  for (int s = 0; s < P; ++s) {
    if (recv_counts_[s] == 0) continue;
    const Extent qr = decomp_.block_rows(s), qc = decomp_.block_cols(s);
    const int first_row = std::max(qr.begin, my_slab.begin);
    const int n_rows = recv_counts_[s] / qc.size();
    const T* from = recv.data() + recv_displs_[s];
    for (int i = 0; i < n_rows; ++i)
      std::memcpy(slab + static_cast<std::size_t>(first_row - my_slab.begin + i) * M + qc.begin,
                  from + static_cast<std::size_t>(i) * qc.size(), sizeof(T) * qc.size());
  }
}

void Solver::to_slab(double* slab) { to_slab_impl(slab, MPI_DOUBLE); }
void Solver::to_slab(float* slab) { to_slab_impl(slab, MPI_FLOAT); }

std::vector<double> Solver::gather(int root) {
  std::vector<double> slab(slab_size());
  to_slab(slab.data());
  const int P = decomp_.size();
  const int M = settings_.grid;
  std::vector<int> counts(P), displs(P);
  for (int s = 0; s < P; ++s) {
    const Extent e = decomp_.slab_rows(s);
    counts[s] = e.size() * M;
    displs[s] = e.begin * M;
  }
  std::vector<double> global;
  if (decomp_.rank() == root) global.resize(static_cast<std::size_t>(M) * M);
  MPI_Gatherv(slab.data(), static_cast<int>(slab.size()), MPI_DOUBLE, global.data(), counts.data(),
              displs.data(), MPI_DOUBLE, root, decomp_.cart());
  return global;
}

}  // namespace melissa::heat
