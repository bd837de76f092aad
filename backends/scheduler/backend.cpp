// The names of the enums of backend.hpp, and the helpers the batch backends
// share to write job scripts.
#include "backends/scheduler/backend.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/scheduler/script.hpp"
#include "messages/atomic_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace melissa::scheduler {

const char* to_string(job_kind k) {
  switch (k) {
    case job_kind::server: return "server";
    case job_kind::client: return "client";
  }
  return "?";
}

const char* to_string(job_state s) {
  switch (s) {
    case job_state::pending: return "pending";
    case job_state::running: return "running";
    case job_state::completed: return "completed";
    case job_state::failed: return "failed";
    case job_state::cancelled: return "cancelled";
  }
  return "?";
}

bool is_final(job_state s) {
  return s == job_state::completed || s == job_state::failed || s == job_state::cancelled;
}

std::vector<submit_outcome> backend::submit_many(const std::vector<job_request>& requests) {
  std::vector<submit_outcome> out;
  out.reserve(requests.size());
  for (const auto& r : requests) {
    try {
      out.push_back({submit(r), {}});
    } catch (const std::exception& e) {
      out.push_back({{}, e.what()});
    }
  }
  return out;
}

namespace detail {

std::string shell_quote(const std::string& word) {
  // Inside single quotes nothing is special but the quote itself, closed,
  // escaped and reopened: it's -> 'it'\''s'.
  std::string out = "'";
  for (const char c : word) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string shell_command(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& word : argv) out += (out.empty() ? "" : " ") + shell_quote(word);
  return out;
}

bool is_env_name(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  for (const char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      return false;
  return true;
}

std::map<std::string, std::string> job_environment(const job_request& request) {
  auto env = request.env;
  for (const auto& [name, value] : request.secret_env) env[name] = value;
  return env;
}

void check_request(const job_request& request) {
  const std::string what = std::string(to_string(request.kind)) + " job '" + request.name + "'";
  if (request.argv.empty() || request.argv[0].empty())
    throw backend_error(what + ": the command is empty");
  if (request.settings.tasks < 1) throw backend_error(what + ": tasks must be >= 1");
  if (request.settings.nodes < 1) throw backend_error(what + ": nodes must be >= 1");
  for (const auto& [name, value] : job_environment(request))
    if (!is_env_name(name))
      throw backend_error(what + ": '" + name +
                          "' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
  for (const auto& word : request.argv)
    if (word.find('\0') != std::string::npos)
      throw backend_error(what + ": the command contains a NUL character");
}

std::string script_header(const job_request& request, const std::string& submitted_by,
                          const std::string& script_path) {
  std::string out = "#!/bin/bash\n";
  out += "# Melissa " + std::string(to_string(request.kind)) + " job " + request.name + "\n";
  out += "# submitted with: " + submitted_by + "\n";
  for (const auto& [name, value] : request.env)
    out += "export " + name + "=" + shell_quote(value) + "\n";
  if (!request.secret_env.empty())
    out += ". " + shell_quote(script_path + ".env") + " || exit 1\n";
  if (!request.workdir.empty()) out += "cd " + shell_quote(request.workdir) + " || exit 1\n";
  return out;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string command_failure(const std::vector<std::string>& argv, const command_result& r) {
  std::string why = trim(r.err);
  if (why.empty()) why = trim(r.out);
  return (argv.empty() ? std::string("command") : argv[0]) + " failed (exit " +
         std::to_string(r.exit_code) + ")" + (why.empty() ? "" : ": " + why);
}

void write_script(const std::string& path, const std::string& text, const std::string& what) {
  std::error_code ignored;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw backend_error(what + ": cannot write the job script '" + path + "': " + std::strerror(errno));
  }
  // oarsub runs the script as a command: it must be executable (and OAR reads
  // it as its own user: secrets go to the .env file beside it).
  if (::chmod(path.c_str(), 0755) != 0)
    throw backend_error(what + ": cannot make '" + path + "' executable: " + std::strerror(errno));
}

void write_secret_env(const std::string& script_path, const job_request& request, const std::string& what) {
  if (request.secret_env.empty()) return;
  std::string text;
  for (const auto& [name, value] : request.secret_env) text += "export " + name + "=" + shell_quote(value) + "\n";
  try {
    write_file_atomically(script_path + ".env", text, 0600);  // owner only, from creation on
  } catch (const std::system_error& e) {
    throw backend_error(what + ": " + e.what());
  }
}

}  // namespace detail
}  // namespace melissa::scheduler
