// melissa-shell's target resolution (no CAF): where the study is, from an
// output directory, a shell.json or host:port. Unit-tested in tests/shell.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "actors/shell_endpoint/shell_file.hpp"

namespace melissa::shell {

// Exit statuses of melissa-shell (also in docs/shell.md).
enum exit_code : int {
  exit_ok = 0,
  exit_command_failed = 1,  // an {"ok": false} answer, an unknown command, a wrong token
  exit_usage = 2,           // bad command line
  exit_unreachable = 3,     // no shell.json, nobody listening, connection lost
};

// A target that cannot be resolved, with the exit status it deserves.
struct target_error : std::runtime_error {
  target_error(const std::string& what, int code) : std::runtime_error(what), exit_status(code) {}
  int exit_status;
};

// "host:port", "[v6]:port" -> host (brackets removed) and port in [1, 65535].
bool parse_host_port(const std::string& text, std::string& host, std::uint16_t& port);

// An output directory (its shell.json), a shell.json path, or host:port (then
// `token` is required). `token` overrides the file's. A wildcard bind address
// in the file ("0.0.0.0", "::") becomes the loopback address of that family.
// Throws target_error.
shell_address resolve_target(const std::string& target, const std::optional<std::string>& token);

}  // namespace melissa::shell
