// melissa-shell's rendering (no CAF): how the study's JSON answers read as
// text. Unit-tested in tests/shell.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "actors/shell_endpoint/shell_command.hpp"

namespace melissa::shell {

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
