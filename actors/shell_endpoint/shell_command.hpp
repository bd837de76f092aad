// The command language of melissa-shell, parsed into a structured command.
// Plain C++ (no CAF): the shell endpoint parses every line it receives with
// it (the endpoint is the authority), and melissa-shell parses the same line
// locally to choose how to render the answer and to answer typos at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace melissa::shell {

enum class command_kind {
  status, jobs, job, kill, pause, resume, set, stop, train, buffer, steering, stats, help, checkpoint };

// `train --watch` refreshes this often unless told (seconds), within these bounds.
inline constexpr double default_watch_interval_s = 2.0;
inline constexpr double min_watch_interval_s = 0.2;
inline constexpr double max_watch_interval_s = 3600.0;

struct shell_command {
  command_kind kind = command_kind::help;
  std::string state_filter;  // jobs: one of job_states(), "" = every job
  std::uint32_t job_id = 0;  // job, kill
  std::string key;           // set: one of settable_keys()
  std::string value;         // set: normalized (e.g. "7" for "007")
  // train --watch [SECONDS]: melissa-shell asks again every watch_interval_s
  // (the endpoint answers one `train` at a time and ignores these).
  bool watch = false;
  double watch_interval_s = default_watch_interval_s;
};

// Either a command or an error message meant for the user.
struct parse_result {
  std::variant<shell_command, std::string> outcome;

  bool ok() const { return outcome.index() == 0; }
  const shell_command& command() const { return std::get<shell_command>(outcome); }
  const std::string& error() const { return std::get<std::string>(outcome); }
};

// Splits on blanks; command words and job states are case-insensitive.
parse_result parse_command(std::string_view line);

// The states `jobs` accepts as a filter.
const std::vector<std::string>& job_states();

// The keys `set` accepts.
const std::vector<std::string>& settable_keys();

// The command word, as typed ("status", "jobs", ...).
std::string to_string(command_kind kind);

// Every command with a one-line description.
const std::string& help_text();

}  // namespace melissa::shell
