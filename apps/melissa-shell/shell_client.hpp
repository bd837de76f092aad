// melissa-shell's pure parts (no CAF): where the study is, and how its JSON
// answers read as text. Unit-tested in tests/shell.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "actors/shell_endpoint/shell_command.hpp"
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

// An answer turned into text: `text` goes to stdout when ok, to stderr if not.
struct rendered_answer {
  bool ok = false;
  std::string text;
};

// Renders the endpoint's JSON answer to a command of `kind`: status as
// "key: value" lines in a stable order (whatever keys arrive), jobs as a
// table, job as "key: value" lines, train / buffer / steering as below, the
// rest as their message.
// `state_filter` only words the empty jobs table ("no running jobs").
rendered_answer render_answer(command_kind kind, const std::string& json_text,
                              const std::string& state_filter = "");

// Whether a JSON answer says {"ok": true}; false for anything else,
// text that is not JSON included.
bool answer_ok(const std::string& json_text);

// The pieces, for tests.
std::string render_status(const nlohmann::json& answer);
std::string render_jobs(const nlohmann::json& answer, const std::string& state_filter);
std::string render_job(const nlohmann::json& answer);
// train: a table, one line per rank, then totals and any rank's error;
// buffer: a block per rank; steering: rank 0's Breed figures.
std::string render_train(const nlohmann::json& answer);
std::string render_buffer(const nlohmann::json& answer);
std::string render_steering(const nlohmann::json& answer);

// Whether a `train` answer says training is over on every rank (each rank's
// state is "done"), or the study itself is done: `train --watch` stops then.
bool training_over(const nlohmann::json& answer);
std::string format_value(const nlohmann::json& value);

}  // namespace melissa::shell
