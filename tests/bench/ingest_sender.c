/* Benchmark client: pushes `steps` float32 time steps of `values` values each
 * through the C API (no MPI), as fast as the server's credit allows.
 *   ingest_sender VALUES STEPS [ignored...]   (identity and server from MELISSA_* env;
 *   launched by melissa-run, the study's parameters follow and are ignored)
 * With INGEST_SENDER_TIMES set it prints "times START END": CLOCK_MONOTONIC
 * nanoseconds when the session is open (before the first step) and when
 * finalize returned (every step stored), so that tests/bench/ingest times the
 * transfer as the raw baselines do, without the senders' process start-up. */
#define MELISSA_NO_MPI_HEADER
#include <melissa/api.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

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
  const long long start = now_ns();
  for (long t = 0; t < steps; ++t) {
    data[0] = (float)t;
    if (melissa_send_float("data", data) != MELISSA_OK) return 1;
  }
  if (melissa_finalize() != MELISSA_OK) return 1;
  if (getenv("INGEST_SENDER_TIMES")) printf("times %lld %lld\n", start, now_ns());
  free(data);
  return 0;
}
