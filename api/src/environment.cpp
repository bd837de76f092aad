#include "environment.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "error.hpp"

namespace melissa::client {
namespace {

[[noreturn]] void bad_env(const std::string& what) {
  throw client_error(MELISSA_ERR_ENV, "melissa: " + what);
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::uint32_t parse_u32(const char* name, const std::string& raw) {
  const std::string text = trim(raw);
  if (!all_digits(text))
    bad_env(std::string(name) + "='" + raw + "' is not a non-negative integer");
  errno = 0;
  const unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
  if (errno == ERANGE || v > 0xffffffffull) bad_env(std::string(name) + "='" + raw + "' is too large");
  return static_cast<std::uint32_t>(v);
}

server_address parse_one_address(const std::string& entry) {
  const std::string text = trim(entry);
  server_address a;
  std::string port;
  if (!text.empty() && text.front() == '[') {  // [v6-address]:port
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      bad_env("MELISSA_SERVER_ADDRESSES: '" + entry + "' is not [host]:port");
    a.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon)
      bad_env("MELISSA_SERVER_ADDRESSES: '" + entry + "' is not host:port");
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (a.host.empty()) bad_env("MELISSA_SERVER_ADDRESSES: '" + entry + "' has no host");
  if (!all_digits(port) || port.size() > 5 || std::atoi(port.c_str()) < 1 ||
      std::atoi(port.c_str()) > 65535)
    bad_env("MELISSA_SERVER_ADDRESSES: '" + entry + "' has no valid port (1-65535)");
  a.port = port;
  return a;
}

}  // namespace

std::string server_address::text() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

std::vector<server_address> parse_server_addresses(const std::string& text) {
  std::vector<server_address> out;
  std::size_t start = 0;
  while (true) {
    const auto comma = text.find(',', start);
    const std::string entry = text.substr(start, comma == std::string::npos ? std::string::npos
                                                                             : comma - start);
    if (trim(entry).empty())
      bad_env("MELISSA_SERVER_ADDRESSES='" + text + "' has an empty entry");
    out.push_back(parse_one_address(entry));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

error_policy read_error_policy(const env_lookup& lookup) {
  const char* raw = lookup("MELISSA_ON_ERROR");
  if (raw == nullptr) return error_policy::exit;
  const std::string v = trim(raw);
  if (v.empty() || v == "exit") return error_policy::exit;
  if (v == "return") return error_policy::return_status;
  bad_env(std::string("MELISSA_ON_ERROR='") + raw + "' must be 'exit' or 'return'");
}

environment read_environment(const env_lookup& lookup) {
  environment env;
  env.on_error = read_error_policy(lookup);

  const char* addresses = lookup("MELISSA_SERVER_ADDRESSES");
  if (addresses == nullptr || trim(addresses).empty())
    bad_env("MELISSA_SERVER_ADDRESSES is not set (host:port of each server rank; "
            "melissa-run sets it)");
  env.servers = parse_server_addresses(addresses);

  const char* sim = lookup("MELISSA_SIM_ID");
  if (sim == nullptr || trim(sim).empty())
    bad_env("MELISSA_SIM_ID is not set (the simulation id; melissa-run sets it)");
  env.sim_id = parse_u32("MELISSA_SIM_ID", sim);

  if (const char* attempt = lookup("MELISSA_ATTEMPT"); attempt != nullptr && !trim(attempt).empty()) {
    env.attempt = parse_u32("MELISSA_ATTEMPT", attempt);
    if (env.attempt == 0) bad_env("MELISSA_ATTEMPT='0': attempts count from 1");
  }

  if (const char* ticket = lookup("MELISSA_TICKET"); ticket != nullptr) {
    env.ticket = trim(ticket);
    for (char c : env.ticket)
      if (!std::isxdigit(static_cast<unsigned char>(c)))
        bad_env("MELISSA_TICKET is not a hexadecimal ticket (melissa-run sets it)");
  }

  if (const char* timeout = lookup("MELISSA_CONNECT_TIMEOUT");
      timeout != nullptr && !trim(timeout).empty()) {
    const std::string text = trim(timeout);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &end);
    if (errno != 0 || end == text.c_str() || *end != '\0' || !std::isfinite(v) || v <= 0)
      bad_env(std::string("MELISSA_CONNECT_TIMEOUT='") + timeout +
              "' is not a positive number of seconds");
    env.connect_timeout_s = v;
  }
  return env;
}

}  // namespace melissa::client
