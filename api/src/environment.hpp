// The client's identity and the server addresses, read from the environment
// that melissa-run (or a test) sets. Pure parsing, unit-tested directly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace melissa::client {

struct server_address {
  std::string host;
  std::string port;
  std::string text() const;  // "host:port", IPv6 hosts in brackets
};

enum class error_policy { exit, return_status };

struct environment {
  std::vector<server_address> servers;  // one per server rank, in rank order
  std::uint32_t sim_id = 0;
  std::uint32_t attempt = 1;
  // MELISSA_TICKET: the launcher's proof that this process is the job it
  // started for (sim, attempt); empty for a standalone server.
  std::string ticket;
  double connect_timeout_s = 60.0;
  error_policy on_error = error_policy::exit;
};

// "host:port[,host:port...]"; IPv6 hosts as "[::1]:port". Throws client_error
// (MELISSA_ERR_ENV) naming the variable and the faulty entry.
std::vector<server_address> parse_server_addresses(const std::string& text);

// Reads every MELISSA_* variable through `lookup` (nullptr when unset), so the
// tests need not touch the real environment. Throws client_error (ENV).
using env_lookup = std::function<const char*(const char*)>;
environment read_environment(const env_lookup& lookup);

// Only MELISSA_ON_ERROR, which decides how errors end even before the rest is
// read (a missing MELISSA_SIM_ID must already obey it). Invalid values throw.
error_policy read_error_policy(const env_lookup& lookup);

}  // namespace melissa::client
