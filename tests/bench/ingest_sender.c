/* Benchmark client: pushes `steps` float32 time steps of `values` values each
 * through the C API (no MPI), as fast as the server's credit allows.
 *   ingest_sender VALUES STEPS [ignored...]   (identity and server from MELISSA_* env;
 *   launched by melissa-run, the study's parameters follow and are ignored) */
#define MELISSA_NO_MPI_HEADER
#include <melissa/api.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: ingest_sender VALUES STEPS\n");
    return 2;
  }
  const size_t values = strtoull(argv[1], NULL, 10);
  const long steps = strtol(argv[2], NULL, 10);
  float* data = malloc(values * sizeof(float));
  for (size_t i = 0; i < values; ++i) data[i] = (float)i;
  if (melissa_init_no_mpi("data", values) != MELISSA_OK) return 1;
  for (long t = 0; t < steps; ++t) {
    data[0] = (float)t;
    if (melissa_send_float("data", data) != MELISSA_OK) return 1;
  }
  if (melissa_finalize() != MELISSA_OK) return 1;
  free(data);
  return 0;
}
