// Helpers of the batch backends (Slurm, OAR) to write job scripts: POSIX
// shell quoting and the common checks of a job_request. Internal to
// melissa-backends.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "backends/scheduler/backend.hpp"

namespace melissa::scheduler::detail {

// `word` as one shell word in single quotes: shell_quote("it's") == "'it'\''s'".
std::string shell_quote(const std::string& word);
// The words quoted and joined by spaces.
std::string shell_command(const std::vector<std::string>& argv);
// [A-Za-z_][A-Za-z0-9_]*: a name an `export` line accepts.
bool is_env_name(const std::string& name);
// Throws backend_error for an empty command, tasks or nodes of 0, an invalid
// environment variable name, or a NUL character in the command.
void check_request(const job_request& request);
// "#!/bin/bash", a comment with the job's name and `submitted_by` (the
// submission command, so a user can resubmit the script by hand), one
// `export NAME='value'` line per variable of request.env, and a `cd` to
// request.workdir. The caller appends the line that runs the program.
// With request.secret_env, the header sources `<script_path>.env` (written by
// write_secret_env) instead of exporting those variables itself.
std::string script_header(const job_request& request, const std::string& submitted_by,
                          const std::string& script_path = "");
// env and secret_env together: what the job's process gets.
std::map<std::string, std::string> job_environment(const job_request& request);

}  // namespace melissa::scheduler::detail

namespace melissa::scheduler::detail {

// "<program> failed (exit N): <its stderr, else its stdout, trimmed>".
std::string command_failure(const std::vector<std::string>& argv, const command_result& result);

// `s` without leading and trailing blanks (scheduler outputs end in newlines).
std::string trim(std::string_view s);
// Writes an executable (0755) script, creating its directory; throws
// backend_error naming `what` (e.g. "client job 'x'") when it cannot.
void write_script(const std::string& path, const std::string& text, const std::string& what);
// Writes `<script_path>.env` (owner-only, 0600 from creation) with one
// `export NAME='value'` line per request.secret_env variable; nothing without them.
void write_secret_env(const std::string& script_path, const job_request& request, const std::string& what);

}  // namespace melissa::scheduler::detail
