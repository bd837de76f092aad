/* The Ishigami function (a = 7, b = 0.1) as a Melissa client without MPI, for
 * "statistics-sink-ishigami": a process that starts in milliseconds, so that
 * a study of hundreds of pick-freeze groups runs in minutes.
 *
 *   ishigami_client STEPS CELLS x1 x2 x3      (x in [-pi, pi], appended by melissa-run)
 *
 * Cell c of step t: (1 + t + c / 2) * Y(x), Y = sin x1 + 7 sin^2 x2 + 0.1 x3^4 sin x1.
 * The positive factor leaves every Sobol index of every cell and step equal
 * to the analytic indices of Y. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "melissa/api.h"

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: ishigami_client STEPS CELLS x1 x2 x3\n");
    return 2;
  }
  const int steps = atoi(argv[1]);
  const long cells = atol(argv[2]);
  if (steps < 1 || cells < 1) {
    fprintf(stderr, "ishigami_client: need STEPS >= 1 and CELLS >= 1\n");
    return 2;
  }
  const double x1 = atof(argv[3]), x2 = atof(argv[4]), x3 = atof(argv[5]);
  const double s2 = sin(x2);
  const double y = sin(x1) + 7.0 * s2 * s2 + 0.1 * pow(x3, 4) * sin(x1);

  if (melissa_init_no_mpi("field", (size_t)cells) != MELISSA_OK) return 1;
  double* u = malloc((size_t)cells * sizeof *u);
  if (u == NULL) return 1;
  for (int t = 0; t < steps; ++t) {
    for (long c = 0; c < cells; ++c) u[c] = (1.0 + t + 0.5 * (double)c) * y;
    if (melissa_send("field", u) != MELISSA_OK) return 1;
  }
  free(u);
  return melissa_finalize() == MELISSA_OK ? 0 : 1;
}
