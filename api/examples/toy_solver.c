/* A toy "solver" instrumented with the Melissa C API: a pulse travelling along
 * a 1D domain of `size` points, block-distributed over the MPI ranks, streamed
 * for `steps` time steps.
 *
 *   mpirun -n 2 ./toy_solver_c [--steps N] [--size N] [--field NAME]
 *
 * MELISSA_SERVER_ADDRESSES and MELISSA_SIM_ID come from the environment
 * (melissa-run sets them). The values use only + - * / so that the tests can
 * recompute them bit for bit: u(i, t) = (1 + 0.5 s) / (1 + (10 (x_i - t/steps))^2),
 * x_i = i / (size - 1), s the simulation id. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melissa/api.h"

static double pulse(long i, long size, int t, int steps, int sim_id) {
  const double x = (double)i / (double)(size - 1);
  const double center = (double)t / (double)steps;
  const double d = (x - center) * 10.0;
  return (1.0 + 0.5 * (double)sim_id) / (1.0 + d * d);
}

int main(int argc, char** argv) {
  int steps = 5;
  long size = 1000;
  const char* field = "temperature";
  for (int a = 1; a + 1 < argc; a += 2) {
    if (strcmp(argv[a], "--steps") == 0) steps = atoi(argv[a + 1]);
    else if (strcmp(argv[a], "--size") == 0) size = atol(argv[a + 1]);
    else if (strcmp(argv[a], "--field") == 0) field = argv[a + 1];
  }
  if (steps < 1 || size < 2) {
    fprintf(stderr, "toy_solver_c: need --steps >= 1 and --size >= 2\n");
    return 2;
  }

  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  /* Block distribution: rank r owns [first, last). */
  const long first = size * rank / ranks;
  const long last = size * (rank + 1) / ranks;
  const size_t local_size = (size_t)(last - first);

  /* Fatal errors end the program inside the call (MELISSA_ON_ERROR=exit);
   * the checks catch usage errors and MELISSA_ON_ERROR=return. */
  if (melissa_init(field, local_size, MPI_COMM_WORLD) != MELISSA_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  const int sim_id = melissa_get_sim_id();

  double* u = malloc((local_size > 0 ? local_size : 1) * sizeof *u);
  for (int t = 0; t < steps; ++t) {
    for (long i = first; i < last; ++i) u[i - first] = pulse(i, size, t, steps, sim_id);
    if (melissa_send(field, u) != MELISSA_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  }
  free(u);

  if (melissa_finalize() != MELISSA_OK) MPI_Abort(MPI_COMM_WORLD, 1);
  if (rank == 0) printf("toy_solver_c: simulation %d sent %d steps of %ld values\n", sim_id, steps, size);
  MPI_Finalize();
  return 0;
}
