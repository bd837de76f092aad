// The one exception type used inside the client library. It never crosses the
// C ABI: every extern "C" entry point catches it and turns it into a status
// code plus melissa_last_error().
#pragma once

#include <stdexcept>
#include <string>

#include "melissa/api.h"

namespace melissa::client {

class client_error : public std::runtime_error {
 public:
  client_error(melissa_status status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  melissa_status status() const { return status_; }

 private:
  melissa_status status_;
};

// Errors that leave the session unusable (no server, refused field, broken
// connection): they end the process unless MELISSA_ON_ERROR=return. Usage
// errors (order, arguments, field names) are always returned to the caller.
inline bool is_fatal(int status) {
  return status == MELISSA_ERR_ENV || status == MELISSA_ERR_CONNECT ||
         status == MELISSA_ERR_REFUSED || status == MELISSA_ERR_IO;
}

}  // namespace melissa::client
