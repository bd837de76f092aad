/* Melissa client API: instrument a solver with three calls.
 *
 *   melissa_init("temperature", local_size, comm);   once per field, after MPI_Init
 *   melissa_send("temperature", values);               once per field and time step
 *   melissa_finalize();                                before MPI_Finalize
 *
 * The client reads its identity and the server addresses from the environment
 * that melissa-run sets (see docs/api.md):
 *   MELISSA_SERVER_ADDRESSES  host:port[,host:port...]   one per server rank, in rank order
 *   MELISSA_SIM_ID            simulation id (0-based)
 *   MELISSA_ATTEMPT           attempt number (1 for the first run, +1 per restart)
 *   MELISSA_CONNECT_TIMEOUT   seconds to keep retrying the connection (default 60)
 *   MELISSA_ON_ERROR          exit (default) | return: what fatal errors do
 *
 * The field sent is the concatenation of the local parts in rank order.
 *
 * Every function returns MELISSA_OK (0) or a negative error code; the message
 * is printed on stderr and kept for melissa_last_error(). Fatal errors (server
 * unreachable after MELISSA_CONNECT_TIMEOUT seconds, field refused by the
 * server, broken connection) end the process with a non-zero status, unless
 * MELISSA_ON_ERROR=return, in which case they are returned like the others.
 */
#ifndef MELISSA_API_H
#define MELISSA_API_H

#include <stddef.h>

#ifndef MELISSA_NO_MPI_HEADER
#include <mpi.h>
#endif

#if defined(__GNUC__) && !defined(MELISSA_API_EXPORT)
#define MELISSA_API_EXPORT __attribute__((visibility("default")))
#elif !defined(MELISSA_API_EXPORT)
#define MELISSA_API_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum melissa_status {
  MELISSA_OK = 0,
  MELISSA_ERR_ENV = -1,         /* environment variables missing or malformed */
  MELISSA_ERR_CONNECT = -2,     /* server unreachable before the timeout */
  MELISSA_ERR_REFUSED = -3,     /* server refused the session or the field */
  MELISSA_ERR_FIELD = -4,       /* unknown field name or wrong size at send */
  MELISSA_ERR_ORDER = -5,       /* calls out of order (send before init, ...) */
  MELISSA_ERR_IO = -6,          /* connection lost or protocol error */
  MELISSA_ERR_ARG = -7          /* null pointer or invalid argument */
};

/* The exit status of a client that MELISSA_ON_ERROR=exit ends because the
 * server refused its session or a field (EX_CONFIG of sysexits.h): the client
 * and the study disagree, so melissa-run fails the study at once instead of
 * restarting the simulation. Other fatal errors exit with status 1. */
#define MELISSA_EXIT_REFUSED 78

#ifndef MELISSA_NO_MPI_HEADER
/* Declares a field whose local part on this rank has `local_size` values.
 * Collective over `comm`: rank 0 gathers the field and sends it. */
MELISSA_API_EXPORT int melissa_init(const char* field_name, size_t local_size, MPI_Comm comm);
#endif

/* The same with the communicator as a Fortran handle (MPI_Comm_c2f), for the
 * Fortran module and for Python (mpi4py's comm.py2f()). Needs no MPI header. */
MELISSA_API_EXPORT int melissa_init_f(const char* field_name, size_t local_size, int fortran_comm);

/* The same for a solver without MPI (one process owns the whole field). Makes
 * no MPI call at all: works in a process that never called MPI_Init. */
MELISSA_API_EXPORT int melissa_init_no_mpi(const char* field_name, size_t size);

/* Sends the next time step of a field: `values` holds the local_size values
 * of this rank. Collective over the communicator given to melissa_init.
 * Blocks while the server has granted no credit (flow control). */
MELISSA_API_EXPORT int melissa_send(const char* field_name, const double* values);
MELISSA_API_EXPORT int melissa_send_float(const char* field_name, const float* values);

/* Flushes, waits until the server has stored every step, and disconnects. */
MELISSA_API_EXPORT int melissa_finalize(void);

/* The local size this rank gave melissa_init for `field_name`. */
MELISSA_API_EXPORT int melissa_get_local_size(const char* field_name, size_t* local_size);

/* The last error message of this process ("" if none). */
MELISSA_API_EXPORT const char* melissa_last_error(void);

/* Identity from the environment, valid after the first melissa_init. */
MELISSA_API_EXPORT int melissa_get_sim_id(void);
MELISSA_API_EXPORT int melissa_get_attempt(void);

#ifdef __cplusplus
}
#endif

#endif /* MELISSA_API_H */
