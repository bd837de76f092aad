// Melissa client API for C++: thin wrappers over melissa/api.h that take
// std::string and std::vector and throw melissa::error instead of returning
// status codes.
//
//   melissa::session session;                         // finalizes at scope exit
//   melissa::field temperature("temperature", local_size, MPI_COMM_WORLD);
//   for (...) temperature.send(values);               // std::vector<double> or <float>
//   session.finalize();                               // or let the destructor do it
//
// Define MELISSA_NO_MPI_HEADER before including it to build without MPI; then
// only the no-MPI field constructor exists.
#pragma once

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "melissa/api.h"

namespace melissa {

class error : public std::runtime_error {
 public:
  error(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }  // a melissa_status (MELISSA_ERR_*)

 private:
  int status_;
};

inline void check(int status) {
  if (status != MELISSA_OK) throw error(status, melissa_last_error());
}

// One field the solver streams (melissa_init at construction).
class field {
 public:
#ifndef MELISSA_NO_MPI_HEADER
  // Collective over `comm`; `local_size` values on this rank.
  field(std::string name, std::size_t local_size, MPI_Comm comm)
      : name_(std::move(name)), local_size_(local_size) {
    check(melissa_init(name_.c_str(), local_size_, comm));
  }
#endif
  // A solver without MPI: this process owns all `size` values.
  field(std::string name, std::size_t size) : name_(std::move(name)), local_size_(size) {
    check(melissa_init_no_mpi(name_.c_str(), local_size_));
  }

  // The next time step (this rank's local part). Collective like melissa_send.
  void send(const std::vector<double>& values) const {
    check_size(values.size());
    check(melissa_send(name_.c_str(), values.data()));
  }
  void send(const std::vector<float>& values) const {
    check_size(values.size());
    check(melissa_send_float(name_.c_str(), values.data()));
  }
  // From a raw buffer of local_size() values.
  void send(const double* values) const { check(melissa_send(name_.c_str(), values)); }
  void send(const float* values) const { check(melissa_send_float(name_.c_str(), values)); }

  const std::string& name() const { return name_; }
  std::size_t local_size() const { return local_size_; }

 private:
  void check_size(std::size_t n) const {
    if (n != local_size_)
      throw error(MELISSA_ERR_ARG, "melissa::field::send: field '" + name_ + "' has local size " +
                                       std::to_string(local_size_) + ", got " +
                                       std::to_string(n) + " values");
  }

  std::string name_;
  std::size_t local_size_;
};

// Ends the session: finalize() explicitly (throws on error), or at scope exit.
// The destructor finalizes only on a normal scope exit: while an exception
// unwinds, waiting for the server (and the other ranks) could hang, so the
// process is left to end and the server sees the connection drop.
class session {
 public:
  session() : exceptions_at_start_(std::uncaught_exceptions()) {}
  session(const session&) = delete;
  session& operator=(const session&) = delete;
  ~session() {
    if (!done_ && std::uncaught_exceptions() == exceptions_at_start_) melissa_finalize();
  }

  void finalize() {
    done_ = true;
    check(melissa_finalize());
  }

  static int sim_id() { return melissa_get_sim_id(); }
  static int attempt() { return melissa_get_attempt(); }

 private:
  int exceptions_at_start_;
  bool done_ = false;
};

}  // namespace melissa
