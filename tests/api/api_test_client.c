/* A client of the C API driven by test_api_client.py against the fake server.
 *
 *   api_test_client stream [--field NAME] [--local-size N] [--rank-extra E] [--steps K]
 *                          [--float] [--no-mpi] [--second-field NAME]
 *       Streams K steps. Rank r owns N + r*E values; value of global index g at
 *       step t is t*100000 + g + 0.5 (exact in float32), so the server can
 *       check the rank-order concatenation. With --second-field, a second field
 *       (values negated) is sent interleaved, to check per-field step counters.
 *       Prints "sent <t>" after each step and "status <code> <message>" on failure.
 *       --null-on-rank R: rank R passes NULL values (every rank must get ERR_ARG).
 *   api_test_client order
 *       Checks the MELISSA_ERR_ORDER / _ARG / _FIELD answers to misuse, around
 *       one valid session (field "temperature", 4 values, no MPI).
 *
 * Exit status: 0 on success, 3 when a call failed, 4 when a check failed. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "melissa/api.h"

static int use_mpi = 1;

static int finish(int code) {
  if (use_mpi) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
  return code;
}

static int report(const char* what, int status) {
  printf("status %d %s: %s\n", status, what, melissa_last_error());
  fflush(stdout);
  return 3;
}

static void fill(double* u, size_t n, long offset, int t, double sign) {
  for (size_t i = 0; i < n; ++i) u[i] = sign * ((double)t * 100000.0 + (double)(offset + (long)i) + 0.5);
}

static int stream(int argc, char** argv) {
  const char* field = "temperature";
  const char* second = NULL;
  long local = 4, extra = 0;
  int steps = 3, as_float = 0, null_rank = -1;
  for (int a = 2; a < argc; ++a) {
    if (!strcmp(argv[a], "--field") && a + 1 < argc) field = argv[++a];
    else if (!strcmp(argv[a], "--second-field") && a + 1 < argc) second = argv[++a];
    else if (!strcmp(argv[a], "--local-size") && a + 1 < argc) local = atol(argv[++a]);
    else if (!strcmp(argv[a], "--rank-extra") && a + 1 < argc) extra = atol(argv[++a]);
    else if (!strcmp(argv[a], "--steps") && a + 1 < argc) steps = atoi(argv[++a]);
    else if (!strcmp(argv[a], "--float")) as_float = 1;
    else if (!strcmp(argv[a], "--null-on-rank") && a + 1 < argc) null_rank = atoi(argv[++a]);
    else if (!strcmp(argv[a], "--no-mpi")) use_mpi = 0;
    else {
      fprintf(stderr, "api_test_client: unknown argument %s\n", argv[a]);
      return 2;
    }
  }
  int rank = 0, ranks = 1;
  if (use_mpi) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  }
  const size_t n = (size_t)(local + rank * extra);
  long offset = 0;
  for (int q = 0; q < rank; ++q) offset += local + q * extra;

  int rc = use_mpi ? melissa_init(field, n, MPI_COMM_WORLD) : melissa_init_no_mpi(field, n);
  if (rc != MELISSA_OK) return finish(report("melissa_init", rc));
  if (second) {
    rc = use_mpi ? melissa_init(second, n, MPI_COMM_WORLD) : melissa_init_no_mpi(second, n);
    if (rc != MELISSA_OK) return finish(report("melissa_init", rc));
  }
  double* u = malloc((n ? n : 1) * sizeof *u);
  float* f = malloc((n ? n : 1) * sizeof *f);
  for (int t = 0; t < steps; ++t) {
    fill(u, n, offset, t, 1.0);
    if (as_float) {
      for (size_t i = 0; i < n; ++i) f[i] = (float)u[i];
      rc = melissa_send_float(field, f);
    } else {
      rc = melissa_send(field, rank == null_rank ? NULL : u);
    }
    if (rc != MELISSA_OK) return finish(report("melissa_send", rc));
    if (second) {
      fill(u, n, offset, t, -1.0);
      rc = melissa_send(second, u);
      if (rc != MELISSA_OK) return finish(report("melissa_send", rc));
    }
    if (rank == 0) {
      printf("sent %d\n", t);
      fflush(stdout);
    }
  }
  free(u);
  free(f);
  rc = melissa_finalize();
  if (rc != MELISSA_OK) return finish(report("melissa_finalize", rc));
  if (rank == 0) printf("done sim %d attempt %d\n", melissa_get_sim_id(), melissa_get_attempt());
  return finish(0);
}

static int failures = 0;

static void expect(const char* what, int got, int want, const char* message_part) {
  const char* message = melissa_last_error();
  const int ok = got == want && (message_part == NULL || strstr(message, message_part) != NULL);
  printf("%s %s: got %d want %d, message '%s'\n", ok ? "ok" : "FAIL", what, got, want, message);
  if (!ok) ++failures;
}

static int order(void) {
  use_mpi = 0;
  const double v[4] = {1, 2, 3, 4};
  expect("identity before init", melissa_get_sim_id(), -1, NULL);
  expect("send before init", melissa_send("temperature", v), MELISSA_ERR_ORDER,
         "melissa_send: called before melissa_init");
  expect("finalize before init", melissa_finalize(), MELISSA_ERR_ORDER, "before melissa_init");
  expect("init with NULL name", melissa_init_no_mpi(NULL, 4), MELISSA_ERR_ARG, "field_name is NULL");
  expect("init with MPI before MPI_Init", melissa_init_f("temperature", 4, 0), MELISSA_ERR_ORDER,
         "MPI is not initialized");
  expect("init", melissa_init_no_mpi("temperature", 4), MELISSA_OK, NULL);
  expect("init twice", melissa_init_no_mpi("temperature", 4), MELISSA_ERR_ORDER,
         "field 'temperature' is already initialized");
  expect("send unknown field", melissa_send("temp", v), MELISSA_ERR_FIELD,
         "melissa_send: unknown field 'temp' (initialized: temperature)");
  expect("send NULL name", melissa_send(NULL, v), MELISSA_ERR_ARG, "field_name is NULL");
  expect("send NULL values", melissa_send("temperature", NULL), MELISSA_ERR_ARG, "values is NULL");
  expect("local size NULL out", melissa_get_local_size("temperature", NULL), MELISSA_ERR_ARG, NULL);
  size_t n = 0;
  expect("local size", melissa_get_local_size("temperature", &n), MELISSA_OK, NULL);
  expect("local size value", (int)n, 4, NULL);
  expect("send", melissa_send("temperature", v), MELISSA_OK, NULL);
  expect("finalize", melissa_finalize(), MELISSA_OK, NULL);
  expect("send after finalize", melissa_send("temperature", v), MELISSA_ERR_ORDER,
         "called after melissa_finalize");
  expect("finalize twice", melissa_finalize(), MELISSA_ERR_ORDER, "called twice");
  expect("init after finalize", melissa_init_no_mpi("pressure", 4), MELISSA_ERR_ORDER,
         "called after melissa_finalize");
  printf("%d failures\n", failures);
  return failures == 0 ? 0 : 4;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && !strcmp(argv[1], "stream")) return stream(argc, argv);
  if (argc >= 2 && !strcmp(argv[1], "order")) return order();
  fprintf(stderr, "usage: api_test_client stream|order [options]\n");
  return 2;
}
