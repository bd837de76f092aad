#include "apps/melissa-shell/shell_target.hpp"

#include <algorithm>
#include <filesystem>

namespace melissa::shell {
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string loopback_for(const std::string& host) {
  if (host == "0.0.0.0" || host.empty()) return "127.0.0.1";
  if (host == "::" || host == "[::]") return "::1";
  return host;
}

}  // namespace

bool parse_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  auto h = text.substr(0, colon);
  const auto p = text.substr(colon + 1);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return false;
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return false;  // a bare IPv6 address is ambiguous: "[::1]:port"
  }
  if (!all_digits(p) || p.size() > 5) return false;
  const auto n = std::stoul(p);
  if (n == 0 || n > 65535) return false;
  host = h;
  port = static_cast<std::uint16_t>(n);
  return true;
}

shell_address resolve_target(const std::string& target, const std::optional<std::string>& token) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path path{target};
  fs::path file;
  if (fs::is_directory(path, ec)) {
    file = path / "shell.json";
    if (!fs::exists(file, ec))
      throw target_error("no shell.json in " + target +
                             ": is the study running? (melissa-run writes it once the "
                             "shell endpoint is up)",
                         exit_unreachable);
  } else if (path.filename() == "shell.json" && fs::is_regular_file(path, ec)) {
    file = path;
  }
  if (!file.empty()) {
    shell_address address;
    try {
      address = read_shell_file(file);
    } catch (const std::runtime_error& e) {
      throw target_error(e.what(), exit_unreachable);
    }
    address.host = loopback_for(address.host);
    if (token) address.token = *token;
    address.study_dir = file.parent_path().empty() ? "." : file.parent_path().string();
    return address;
  }
  shell_address address;
  if (!parse_host_port(target, address.host, address.port))
    throw target_error("'" + target +
                           "' is neither a study output directory (with shell.json) nor "
                           "host:port",
                       exit_usage);
  if (!token)
    throw target_error("--token is required with host:port (the token is in "
                       "<output>/shell.json, readable by the study's owner)",
                       exit_usage);
  address.host = loopback_for(address.host);
  address.token = *token;
  return address;
}

}  // namespace melissa::shell
