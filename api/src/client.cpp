// The C entry points of libmelissa-api and the client state behind them.
//
// Every rank of the solver holds a client_state. In training mode only rank 0
// talks to the server (server_link, one per server rank); the other ranks take
// part in the MPI collectives: sizes at init, the field gather at each send,
// and the outcome of rank 0's server work, which is broadcast so that every
// rank returns the same status and no rank waits in a later collective for a
// rank that gave up. In statistics mode (the server says so in its welcome to
// rank 0, which broadcasts it) nothing is gathered: every rank connects to
// every server rank and sends its own slice, at its global offset (the
// exclusive prefix sum of the local sizes), split among the server ranks'
// owned shares (wire::owned_share); the outcome is agreed by an all-reduce.
#include <mpi.h>

#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "environment.hpp"
#include "error.hpp"
#include "melissa/api.h"
#include "server_link.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "step payloads are sent as the host's float32 bytes; the wire is little-endian"
#endif

namespace melissa::client {
namespace {

struct field_state {
  std::string name;
  std::size_t local_size = 0;
  std::uint64_t global_size = 0;
  std::uint64_t offset = 0;             // statistics mode: this rank's first global index
  std::uint32_t next_step = 0;          // the API counts steps per field, from 0
  std::vector<std::uint32_t> ids;       // rank 0: the id each server rank assigned
  std::vector<int> counts, displs;      // rank 0: MPI_Gatherv layout (rank order)
};

enum class phase { idle, running, failed, finalized };

const char* env_lookup_real(const char* name) { return std::getenv(name); }

error_policy policy_from_environment() {
  try {
    return read_error_policy(env_lookup_real);
  } catch (const client_error&) {
    return error_policy::exit;  // init reports the invalid value; exit is the safe default
  }
}

class client_state {
 public:
  int init(const char* fn, const char* name, std::size_t local_size, const MPI_Comm* comm);
  int send(const char* fn, const char* name, const double* values64, const float* values32);
  int finalize();
  int local_size(const char* name, std::size_t* out);

  int internal_error(const char* fn, const char* what) {
    return handle(client_error(MELISSA_ERR_IO, std::string(fn) + ": internal error: " + what));
  }
  const std::string& last_error() const { return last_error_; }
  int sim_id() const { return phase_ == phase::idle ? -1 : static_cast<int>(sim_id_); }
  int attempt() const { return phase_ == phase::idle ? -1 : static_cast<int>(attempt_); }

 private:
  void check_usable(const char* fn) const;
  field_state* find(const char* name);
  std::string field_list() const;
  void setup_mpi(const char* fn, MPI_Comm comm);
  void connect_servers();
  const float* gather(field_state& f, const double* values64, const float* values32);
  void share_outcome(int& status, std::string& message);
  template <typename Work>
  void on_root(Work&& work);
  // Statistics mode: every rank does its own server work; all fail if one does.
  template <typename Work>
  void on_every_rank(Work&& work);
  void send_slices(field_state& f, const double* values64, const float* values32);
  void release();
  int handle(const client_error& e);

  // Records an error and applies MELISSA_ON_ERROR. `print`: only the rank that
  // saw the error prints it, so a collective failure is not printed N times.
  int fail(const client_error& e, bool print);
  // MELISSA_ON_ERROR as rank 0 read it (broadcast at the first init), so that
  // all ranks agree even if the others' environment lacks it.
  error_policy policy() const { return policy_known_ ? policy_ : policy_from_environment(); }
  [[noreturn]] void terminate(int exit_status);

  phase phase_ = phase::idle;
  bool uses_mpi_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL;  // our duplicate: our collectives never match the solver's
  int rank_ = 0;
  int size_ = 1;
  std::uint32_t sim_id_ = 0;
  std::uint32_t attempt_ = 0;
  error_policy policy_ = error_policy::exit;
  bool policy_known_ = false;
  std::vector<field_state> fields_;
  std::vector<std::unique_ptr<server_link>> servers_;  // rank 0 only (training mode)
  bool statistics_ = false;                            // the mode, from rank 0's welcome
  std::vector<float> local_f32_;   // this rank's part, converted (reused)
  std::vector<float> global_f32_;  // rank 0: the gathered field (reused)
  int failure_status_ = MELISSA_OK;
  std::string failure_message_;
  std::string last_error_;
};

bool mpi_usable() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

[[noreturn]] void usage(melissa_status status, const std::string& message) {
  throw client_error(status, message);
}

// An error that rank 0 met in its server work and broadcast: every rank
// returns it, only rank 0 prints it.
class shared_error : public client_error {
 public:
  using client_error::client_error;
};

void client_state::terminate(int exit_status) {
  // MPI_Abort takes the solver's other ranks down too (they may be waiting in
  // a collective for this one); without MPI a plain exit is enough. mpirun
  // exits with the status given to MPI_Abort.
  if (uses_mpi_ && mpi_usable())
    MPI_Abort(comm_ != MPI_COMM_NULL ? comm_ : MPI_COMM_WORLD, exit_status);
  std::exit(exit_status);
}

int client_state::fail(const client_error& e, bool print) {
  last_error_ = e.what();
  if (print) std::fprintf(stderr, "%s\n", last_error_.c_str());
  if (is_fatal(e.status())) {
    // A refusal repeats on every restart: its own status tells the launcher so.
    if (policy() == error_policy::exit)
      terminate(e.status() == MELISSA_ERR_REFUSED ? MELISSA_EXIT_REFUSED : 1);
    if (phase_ != phase::finalized) phase_ = phase::failed;
    failure_status_ = e.status();
    failure_message_ = e.what();
    servers_.clear();
  }
  return e.status();
}

void client_state::check_usable(const char* fn) const {
  if (phase_ == phase::failed)
    throw client_error(static_cast<melissa_status>(failure_status_),
                       std::string(fn) + ": the session ended after an earlier error: " +
                           failure_message_);
  if (phase_ == phase::finalized)
    usage(MELISSA_ERR_ORDER, std::string(fn) + ": called after melissa_finalize");
}

field_state* client_state::find(const char* name) {
  for (auto& f : fields_)
    if (f.name == name) return &f;
  return nullptr;
}

std::string client_state::field_list() const {
  std::string out;
  for (const auto& f : fields_) out += (out.empty() ? "" : ", ") + f.name;
  return out.empty() ? "none" : out;
}

void client_state::setup_mpi(const char* fn, MPI_Comm comm) {
  if (!mpi_usable())
    usage(MELISSA_ERR_ORDER, std::string(fn) +
                                 ": MPI is not initialized or already finalized (call it "
                                 "between MPI_Init and MPI_Finalize, or use melissa_init_no_mpi)");
  if (comm == MPI_COMM_NULL) usage(MELISSA_ERR_ARG, std::string(fn) + ": comm is MPI_COMM_NULL");
  if (phase_ == phase::running && !uses_mpi_)
    usage(MELISSA_ERR_ORDER, std::string(fn) +
                                 ": the first field was initialized with melissa_init_no_mpi; "
                                 "all fields must use the same kind of init");
  if (uses_mpi_) {  // a later field (or a retry after a usage error): same communicator
    int result = MPI_UNEQUAL;
    MPI_Comm_compare(comm, comm_, &result);
    if (result != MPI_IDENT && result != MPI_CONGRUENT)
      usage(MELISSA_ERR_ARG, std::string(fn) +
                                 ": every field must use the communicator of the first field "
                                 "(rank 0 of it sends them all)");
    return;
  }
  MPI_Comm_dup(comm, &comm_);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
  uses_mpi_ = true;
}

void client_state::connect_servers() {
  const environment env = read_environment(env_lookup_real);
  sim_id_ = env.sim_id;
  attempt_ = env.attempt;
  policy_ = env.on_error;
  policy_known_ = true;
  // One deadline for all server ranks: the timeout bounds the whole connection phase.
  const auto deadline =
      connection::clock::now() + std::chrono::duration_cast<connection::clock::duration>(
                                     std::chrono::duration<double>(env.connect_timeout_s));
  const int ranks = static_cast<int>(env.servers.size());
  for (int r = 0; r < ranks; ++r) {
    servers_.push_back(std::make_unique<server_link>(env.servers[r], r, deadline,
                                                     env.connect_timeout_s, sim_id_, attempt_));
    servers_.back()->handshake(size_, ranks, env.ticket, rank_);
  }
}

void client_state::share_outcome(int& status, std::string& message) {
  if (!uses_mpi_ || size_ == 1) return;
  // The identity and the error policy ride along: only rank 0 reads the environment.
  int head[5] = {status, static_cast<int>(sim_id_), static_cast<int>(attempt_),
                 policy_ == error_policy::exit ? 0 : 1, policy_known_ ? 1 : 0};
  MPI_Bcast(head, 5, MPI_INT, 0, comm_);
  status = head[0];
  sim_id_ = static_cast<std::uint32_t>(head[1]);
  attempt_ = static_cast<std::uint32_t>(head[2]);
  policy_ = head[3] == 0 ? error_policy::exit : error_policy::return_status;
  policy_known_ = head[4] == 1;
  if (status == MELISSA_OK) return;
  int length = static_cast<int>(message.size());
  MPI_Bcast(&length, 1, MPI_INT, 0, comm_);
  message.resize(static_cast<std::size_t>(length));
  MPI_Bcast(message.data(), length, MPI_CHAR, 0, comm_);
}

template <typename Work>
void client_state::on_root(Work&& work) {
  int status = MELISSA_OK;
  std::string message;
  if (rank_ == 0) {
    try {
      work();
    } catch (const client_error& e) {
      status = e.status();
      message = e.what();
      // In exit mode the solver ends here, before the other ranks hear of it:
      // MPI_Abort takes them down from their wait in the broadcast.
      if (is_fatal(status) && policy() == error_policy::exit) fail(e, true);
    }
  }
  share_outcome(status, message);
  if (status != MELISSA_OK) throw shared_error(static_cast<melissa_status>(status), message);
}

template <typename Work>
void client_state::on_every_rank(Work&& work) {
  int status = MELISSA_OK;
  std::string message;
  try {
    work();
  } catch (const client_error& e) {
    status = e.status();
    message = e.what();
    if (is_fatal(status) && policy() == error_policy::exit) fail(e, true);
  }
  int failed = status != MELISSA_OK ? 1 : 0, any = failed;
  if (uses_mpi_ && size_ > 1) MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, comm_);
  if (failed) throw client_error(static_cast<melissa_status>(status), message);
  if (any)
    throw shared_error(MELISSA_ERR_IO, "another rank of the simulation failed its server work "
                                       "(its own message says why)");
}

int client_state::handle(const client_error& e) {
  const bool shared = dynamic_cast<const shared_error*>(&e) != nullptr;
  return fail(e, !shared || rank_ == 0);
}

int client_state::init(const char* fn, const char* name, std::size_t local_size,
                       const MPI_Comm* comm) {
  try {
    check_usable(fn);
    if (name == nullptr) usage(MELISSA_ERR_ARG, std::string(fn) + ": field_name is NULL");
    if (*name == '\0') usage(MELISSA_ERR_ARG, std::string(fn) + ": field_name is empty");
    if (find(name) != nullptr)
      usage(MELISSA_ERR_ORDER, std::string(fn) + ": field '" + name + "' is already initialized");
    if (comm != nullptr) {
      setup_mpi(fn, *comm);
    } else if (phase_ == phase::running && uses_mpi_) {
      usage(MELISSA_ERR_ORDER, std::string(fn) +
                                   ": the first field was initialized with MPI; all fields must "
                                   "use the same kind of init");
    }

    field_state f;
    f.name = name;
    f.local_size = local_size;
    std::vector<std::uint64_t> sizes(static_cast<std::size_t>(size_), local_size);
    if (uses_mpi_ && size_ > 1) {
      const std::uint64_t mine = local_size;
      MPI_Gather(&mine, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, 0, comm_);
    }

    // Statistics mode: this rank's slice starts after the lower ranks' (once, here).
    if (uses_mpi_ && size_ > 1) {
      std::uint64_t mine = local_size, below = 0;
      MPI_Exscan(&mine, &below, 1, MPI_UINT64_T, MPI_SUM, comm_);
      f.offset = rank_ == 0 ? 0 : below;
    }
    const bool first = phase_ == phase::idle;
    on_root([&] {
      for (auto s : sizes) f.global_size += s;
      if (size_ > 1) {
        // MPI counts and displacements are ints.
        std::uint64_t offset = 0;
        for (auto s : sizes) {
          if (offset + s > static_cast<std::uint64_t>(std::numeric_limits<int>::max()))
            usage(MELISSA_ERR_ARG, std::string(fn) + ": field '" + name + "' has " +
                                       std::to_string(f.global_size) +
                                       " values; the MPI gather supports at most 2^31-1");
          f.counts.push_back(static_cast<int>(s));
          f.displs.push_back(static_cast<int>(offset));
          offset += s;
        }
      }
      if (phase_ == phase::idle) connect_servers();
      statistics_ = !servers_.empty() && servers_.front()->mode() == "statistics";
      for (auto& server : servers_) f.ids.push_back(server->declare_field(name, f.global_size));
    });
    if (uses_mpi_ && size_ > 1) {
      // Rank 0 learnt the mode and the field's global size from the sizes.
      std::uint64_t shared[2] = {statistics_ ? 1u : 0u, f.global_size};
      MPI_Bcast(shared, 2, MPI_UINT64_T, 0, comm_);
      statistics_ = shared[0] == 1;
      f.global_size = shared[1];
      if (statistics_ && rank_ != 0)
        on_every_rank([&] {
          if (first) connect_servers();
          for (auto& server : servers_) f.ids.push_back(server->declare_field(name, f.global_size));
        });
      else if (statistics_)
        on_every_rank([] {});
    }
    fields_.push_back(std::move(f));
    phase_ = phase::running;
    return MELISSA_OK;
  } catch (const client_error& e) {
    return handle(e);
  }
}

const float* client_state::gather(field_state& f, const double* values64, const float* values32) {
  const bool root = rank_ == 0;
  if (size_ == 1) {
    if (values32 != nullptr) return values32;  // sent from the caller's buffer as it is
    global_f32_.resize(f.local_size);
    for (std::size_t i = 0; i < f.local_size; ++i) global_f32_[i] = static_cast<float>(values64[i]);
    return global_f32_.data();
  }
  // Converting before the gather halves the bytes gathered and spreads the work.
  const float* local = values32;
  if (local == nullptr) {
    local_f32_.resize(f.local_size);
    for (std::size_t i = 0; i < f.local_size; ++i) local_f32_[i] = static_cast<float>(values64[i]);
    local = local_f32_.data();
  }
  if (root) global_f32_.resize(f.global_size);
  MPI_Gatherv(local, static_cast<int>(f.local_size), MPI_FLOAT, root ? global_f32_.data() : nullptr,
              root ? f.counts.data() : nullptr, root ? f.displs.data() : nullptr, MPI_FLOAT, 0,
              comm_);
  return root ? global_f32_.data() : nullptr;
}

int client_state::send(const char* fn, const char* name, const double* values64,
                       const float* values32) {
  try {
    if (phase_ == phase::idle) usage(MELISSA_ERR_ORDER, std::string(fn) + ": called before melissa_init");
    check_usable(fn);
    if (name == nullptr) usage(MELISSA_ERR_ARG, std::string(fn) + ": field_name is NULL");
    field_state* f = find(name);
    if (f == nullptr)
      usage(MELISSA_ERR_FIELD, std::string(fn) + ": unknown field '" + name +
                                   "' (initialized: " + field_list() + ")");

    // A NULL buffer on one rank must not leave the others in the gather.
    int local = (values64 == nullptr && values32 == nullptr && f->local_size > 0) ? MELISSA_ERR_ARG
                                                                                  : MELISSA_OK;
    int agreed = local;
    if (uses_mpi_ && size_ > 1) MPI_Allreduce(&local, &agreed, 1, MPI_INT, MPI_MIN, comm_);
    if (local != MELISSA_OK)
      usage(MELISSA_ERR_ARG, std::string(fn) + ": values is NULL for field '" + name +
                                 "' (local size " + std::to_string(f->local_size) + ")");
    if (agreed != MELISSA_OK)
      usage(MELISSA_ERR_ARG, std::string(fn) + ": values is NULL on another rank for field '" +
                                 name + "'");
    if (f->next_step == std::numeric_limits<std::uint32_t>::max())
      usage(MELISSA_ERR_ARG, std::string(fn) + ": field '" + name + "' has used every step index");

    if (statistics_) {
      on_every_rank([&] { send_slices(*f, values64, values32); });
      ++f->next_step;
      return MELISSA_OK;
    }
    const float* payload = gather(*f, values64, values32);
    on_root([&] {
      const std::uint32_t t = f->next_step;
      // Training mode: whole steps round robin, the first rank from the sim id.
      const std::size_t dest = (static_cast<std::uint64_t>(sim_id_) + t) % servers_.size();
      servers_[dest]->send_step(f->ids[dest], t, payload, f->global_size);
    });
    ++f->next_step;
    return MELISSA_OK;
  } catch (const client_error& e) {
    return handle(e);
  }
}

void client_state::send_slices(field_state& f, const double* values64, const float* values32) {
  const float* local = values32;
  if (local == nullptr && f.local_size > 0) {
    local_f32_.resize(f.local_size);
    for (std::size_t i = 0; i < f.local_size; ++i) local_f32_[i] = static_cast<float>(values64[i]);
    local = local_f32_.data();
  }
  // The part of [offset, offset + local_size) that each server rank owns.
  const auto ranks = static_cast<std::uint32_t>(servers_.size());
  const std::uint64_t begin = f.offset, end = f.offset + f.local_size;
  for (std::uint32_t r = 0; r < ranks; ++r) {
    const auto share = wire::owned_share(f.global_size, r, ranks);
    const std::uint64_t lo = std::max(begin, share.begin), hi = std::min(end, share.end);
    if (lo >= hi) continue;
    servers_[r]->send_slice(f.ids[r], f.next_step, lo, local + (lo - begin), hi - lo);
  }
}

void client_state::release() {
  servers_.clear();
  if (uses_mpi_ && comm_ != MPI_COMM_NULL && mpi_usable()) MPI_Comm_free(&comm_);
  comm_ = MPI_COMM_NULL;
  phase_ = phase::finalized;
}

int client_state::finalize() {
  const char* fn = "melissa_finalize";
  try {
    if (phase_ == phase::idle) usage(MELISSA_ERR_ORDER, "melissa_finalize: called before melissa_init");
    if (phase_ == phase::finalized) usage(MELISSA_ERR_ORDER, "melissa_finalize: called twice");
    if (uses_mpi_ && !mpi_usable())
      usage(MELISSA_ERR_ORDER,
            "melissa_finalize: MPI is already finalized; call melissa_finalize before MPI_Finalize");
    if (phase_ == phase::failed) {
      const client_error earlier(static_cast<melissa_status>(failure_status_),
                                 std::string(fn) + ": the session ended after an earlier error: " +
                                     failure_message_);
      release();
      throw shared_error(static_cast<melissa_status>(failure_status_), earlier.what());
    }
    try {
      auto end_sessions = [&] {
        for (auto& server : servers_) server->send_end();
        // Each rank answers once all of its steps are stored: after this,
        // everything the solver sent is safe even if it exits right away.
        for (auto& server : servers_) server->wait_end();
      };
      if (statistics_)
        on_every_rank(end_sessions);
      else
        on_root(end_sessions);
    } catch (const client_error&) {
      release();
      throw;
    }
    release();
    return MELISSA_OK;
  } catch (const client_error& e) {
    return handle(e);
  }
}

int client_state::local_size(const char* name, std::size_t* out) {
  try {
    if (name == nullptr || out == nullptr)
      usage(MELISSA_ERR_ARG, "melissa_get_local_size: NULL argument");
    const field_state* f = find(name);
    if (f == nullptr)
      usage(MELISSA_ERR_FIELD, std::string("melissa_get_local_size: unknown field '") + name +
                                   "' (initialized: " + field_list() + ")");
    *out = f->local_size;
    return MELISSA_OK;
  } catch (const client_error& e) {
    return handle(e);
  }
}

// Never destroyed, on purpose: an exit() from inside a call (MELISSA_ON_ERROR=exit),
// or a solver calling us from its own static destructors, must not meet a
// destroyed state or mutex. The OS closes the sockets.
std::mutex& state_mutex() {
  static auto* m = new std::mutex;
  return *m;
}

client_state& state() {
  static auto* s = new client_state;
  return *s;
}

// No exception may cross the C ABI: the typed ones are handled inside; this
// catches the rest (std::bad_alloc for an enormous field, ...).
template <typename Body>
int guarded(const char* fn, Body&& body) {
  std::lock_guard<std::mutex> lock(state_mutex());
  try {
    return body();
  } catch (const std::exception& e) {
    return state().internal_error(fn, e.what());
  }
}

}  // namespace
}  // namespace melissa::client

using melissa::client::guarded;
using melissa::client::state;

extern "C" {

int melissa_init(const char* field_name, size_t local_size, MPI_Comm comm) {
  return guarded("melissa_init",
                 [&] { return state().init("melissa_init", field_name, local_size, &comm); });
}

int melissa_init_f(const char* field_name, size_t local_size, int fortran_comm) {
  return guarded("melissa_init", [&] {
    // MPI_Comm_f2c is only defined between MPI_Init and MPI_Finalize.
    if (!melissa::client::mpi_usable()) {
      MPI_Comm none = MPI_COMM_NULL;
      return state().init("melissa_init", field_name, local_size, &none);
    }
    MPI_Comm comm = MPI_Comm_f2c(static_cast<MPI_Fint>(fortran_comm));
    return state().init("melissa_init", field_name, local_size, &comm);
  });
}

int melissa_init_no_mpi(const char* field_name, size_t size) {
  return guarded("melissa_init_no_mpi", [&] {
    return state().init("melissa_init_no_mpi", field_name, size, nullptr);
  });
}

int melissa_send(const char* field_name, const double* values) {
  return guarded("melissa_send",
                 [&] { return state().send("melissa_send", field_name, values, nullptr); });
}

int melissa_send_float(const char* field_name, const float* values) {
  return guarded("melissa_send_float", [&] {
    return state().send("melissa_send_float", field_name, nullptr, values);
  });
}

int melissa_finalize(void) {
  return guarded("melissa_finalize", [&] { return state().finalize(); });
}

int melissa_get_local_size(const char* field_name, size_t* local_size) {
  return guarded("melissa_get_local_size",
                 [&] { return state().local_size(field_name, local_size); });
}

const char* melissa_last_error(void) {
  std::lock_guard<std::mutex> lock(melissa::client::state_mutex());
  return state().last_error().c_str();
}

int melissa_get_sim_id(void) {
  std::lock_guard<std::mutex> lock(melissa::client::state_mutex());
  return state().sim_id();
}

int melissa_get_attempt(void) {
  std::lock_guard<std::mutex> lock(melissa::client::state_mutex());
  return state().attempt();
}

}  // extern "C"
