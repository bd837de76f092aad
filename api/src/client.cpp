// Placeholder until the client API lands.
#include "melissa/api.h"
extern "C" {
int melissa_init(const char*, size_t, MPI_Comm) { return MELISSA_ERR_ORDER; }
int melissa_init_no_mpi(const char*, size_t) { return MELISSA_ERR_ORDER; }
int melissa_send(const char*, const double*) { return MELISSA_ERR_ORDER; }
int melissa_send_float(const char*, const float*) { return MELISSA_ERR_ORDER; }
int melissa_finalize(void) { return MELISSA_ERR_ORDER; }
const char* melissa_last_error(void) { return "not implemented"; }
int melissa_get_sim_id(void) { return -1; }
int melissa_get_attempt(void) { return -1; }
}
