#include "apps/melissa-shell/shell_client.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <utility>
#include <vector>

namespace melissa::shell {
namespace {

using json = nlohmann::json;
using rows = std::vector<std::pair<std::string, std::string>>;

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string loopback_for(const std::string& host) {
  if (host == "0.0.0.0" || host.empty()) return "127.0.0.1";
  if (host == "::" || host == "[::]") return "::1";
  return host;
}

// Times come as seconds since the study started (negative: not yet) or as
// text; epoch seconds are shown as a local date.
std::string format_time(const json& value) {
  if (!value.is_number()) return format_value(value);
  const double t = value.get<double>();
  if (t < 0) return "-";
  if (t > 1e9) {
    const auto seconds = static_cast<std::time_t>(t);
    std::tm local{};
    localtime_r(&seconds, &local);
    char buf[32];
    if (std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &local) > 0) return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", t);
  return buf;
}

bool is_time_key(const std::string& key) {
  const auto ends_with = [&](const char* suffix) {
    const std::string s{suffix};
    return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0;
  };
  return ends_with("_at") || key == "started" || key == "ended";
}

// Nested objects become dotted keys ("simulations.completed"), so that any
// shape the launcher sends reads as flat lines.
void flatten(const json& value, const std::string& prefix, rows& out) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, item] : value.items())
      flatten(item, prefix.empty() ? key : prefix + "." + key, out);
    return;
  }
  const auto dot = prefix.rfind('.');
  const auto leaf = dot == std::string::npos ? prefix : prefix.substr(dot + 1);
  out.emplace_back(prefix, is_time_key(leaf) ? format_time(value) : format_value(value));
}

// Known keys first in the given order ("group.*" matches a whole group),
// every other key after them; within one rank keys keep their alphabetical
// order (nlohmann::json objects are sorted), so the output is stable.
std::size_t rank_of(const std::string& key, const std::vector<std::string>& preferred) {
  for (std::size_t i = 0; i < preferred.size(); ++i) {
    const auto& p = preferred[i];
    if (p == key) return i;
    if (p.size() > 2 && p.compare(p.size() - 2, 2, ".*") == 0 &&
        key.compare(0, p.size() - 1, p, 0, p.size() - 1) == 0)
      return i;
  }
  return preferred.size();
}

std::string key_value_lines(rows items, const std::vector<std::string>& preferred) {
  std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
    return rank_of(a.first, preferred) < rank_of(b.first, preferred);
  });
  std::size_t width = 0;
  for (const auto& item : items) width = std::max(width, item.first.size());
  std::string out;
  for (const auto& [key, value] : items) {
    out += key + ":" + std::string(width - key.size() + 1, ' ') + value + "\n";
  }
  return out;
}

rows fields_without_ok(const json& object) {
  rows items;
  for (const auto& [key, value] : object.items()) {
    if (key == "ok") continue;
    flatten(value, key, items);
  }
  return items;
}

const std::vector<std::string> status_order{
    "study", "name", "study.*", "state", "paused", "job_limit",
    "simulations.requested", "simulations.total", "simulations.completed",
    "simulations.running", "simulations.pending", "simulations.failed",
    "simulations.cancelled", "simulations.retries", "simulations.*", "jobs.*",
    "steps_stored", "steps_per_s", "samples_per_s", "server_ranks", "elapsed_s", "output_dir"};

const std::vector<std::string> job_order{
    "id",           "kind",       "sim",      "sim_id",    "attempt",    "state",
    "raw_state",    "exit",       "exit_code", "signal",   "reason",     "submitted_at",
    "started_at",   "ended_at",   "backend_id", "connected", "parameters"};

// The jobs table: the column title and the keys a launcher may use for it.
struct column {
  std::string title;
  std::vector<std::string> keys;
  bool time = false;
  bool exit = false;  // a null exit code with a signal reads "signal N"
};

const std::vector<column>& job_columns() {
  static const std::vector<column> columns{
      {"id", {"id", "job_id"}},
      {"kind", {"kind", "type"}},
      {"sim", {"sim", "sim_id", "simulation"}},
      {"attempt", {"attempt", "attempts"}},
      {"state", {"state"}},
      {"raw state", {"raw_state", "raw", "backend_state"}},
      {"exit", {"exit", "exit_code", "exit_status"}, false, true},
      {"started", {"started", "started_at", "start"}, true},
      {"ended", {"ended", "ended_at", "end"}, true},
  };
  return columns;
}

std::string table(const std::vector<std::string>& header,
                  const std::vector<std::vector<std::string>>& body) {
  std::vector<std::size_t> width(header.size());
  for (std::size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : body)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      out += cells[c];
      if (c + 1 < cells.size()) out += std::string(width[c] - cells[c].size() + 2, ' ');
    }
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& row : body) out += line(row);
  return out;
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

std::string format_value(const json& value) {
  switch (value.type()) {
    case json::value_t::null: return "-";
    case json::value_t::boolean: return value.get<bool>() ? "yes" : "no";
    case json::value_t::string: return value.get<std::string>();
    case json::value_t::number_integer: return std::to_string(value.get<std::int64_t>());
    case json::value_t::number_unsigned: return std::to_string(value.get<std::uint64_t>());
    case json::value_t::number_float: {
      const double x = value.get<double>();
      if (!std::isfinite(x) || std::fabs(x) >= 1e15) return value.dump();
      // Two decimals are enough for rates and durations; trailing zeros go.
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.2f", x);
      std::string s = buf;
      while (!s.empty() && s.back() == '0') s.pop_back();
      if (!s.empty() && s.back() == '.') s.pop_back();
      return s == "-0" ? "0" : s;
    }
    case json::value_t::array: {
      if (value.empty()) return "-";
      const bool scalars = std::all_of(value.begin(), value.end(), [](const json& v) {
        return !v.is_object() && !v.is_array();
      });
      if (!scalars) return value.dump();
      std::string out;
      for (const auto& item : value) {
        if (!out.empty()) out += ", ";
        out += format_value(item);
      }
      return out;
    }
    case json::value_t::object: return value.empty() ? "-" : value.dump();
    default: return value.dump();
  }
}

std::string render_status(const json& answer) {
  return key_value_lines(fields_without_ok(answer), status_order);
}

std::string render_job(const json& answer) {
  // {"ok": true, "job": {...}} or the job's fields at the top level.
  if (answer.contains("job") && answer["job"].is_object()) {
    rows items;
    for (const auto& [key, value] : answer["job"].items()) flatten(value, key, items);
    for (const auto& [key, value] : answer.items())
      if (key != "ok" && key != "job") flatten(value, key, items);
    return key_value_lines(items, job_order);
  }
  return key_value_lines(fields_without_ok(answer), job_order);
}

std::string render_jobs(const json& answer, const std::string& state_filter) {
  if (!answer.contains("jobs") || !answer["jobs"].is_array()) return render_status(answer);
  const auto& jobs = answer["jobs"];
  if (jobs.empty()) return state_filter.empty() ? "no jobs\n" : "no " + state_filter + " jobs\n";

  // Fixed columns keep the table narrow; `job ID` shows every field of a job.
  std::vector<std::string> header;
  for (const auto& c : job_columns()) header.push_back(c.title);
  std::vector<std::vector<std::string>> body;
  for (const auto& job : jobs) {
    std::vector<std::string> row;
    if (!job.is_object()) {
      row.assign(header.size(), "-");
      row[0] = format_value(job);
      body.push_back(std::move(row));
      continue;
    }
    for (const auto& c : job_columns()) {
      std::string cell = "-";
      for (const auto& key : c.keys) {
        if (job.contains(key) && !job[key].is_null()) {
          cell = c.time ? format_time(job[key]) : format_value(job[key]);
          break;
        }
      }
      if (c.exit && cell == "-" && job.contains("signal") && !job["signal"].is_null())
        cell = "signal " + format_value(job["signal"]);
      row.push_back(cell);
    }
    body.push_back(std::move(row));
  }
  const auto n = jobs.size();
  return table(header, body) + std::to_string(n) + (n == 1 ? " job\n" : " jobs\n");
}

bool answer_ok(const std::string& json_text) {
  const auto doc = json::parse(json_text, nullptr, false);
  return doc.is_object() && doc.contains("ok") && doc["ok"].is_boolean() && doc["ok"].get<bool>();
}

rendered_answer render_answer(command_kind kind, const std::string& json_text,
                              const std::string& state_filter) {
  const auto doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    const auto shown = json_text.size() > 200 ? json_text.substr(0, 200) + "..." : json_text;
    return {false, "error: the study answered with something that is not a JSON object: " +
                       shown + "\n"};
  }
  if (!answer_ok(json_text)) {
    std::string text = "error: ";
    text += doc.contains("error") && doc["error"].is_string() ? doc["error"].get<std::string>()
                                                              : doc.dump();
    text += "\n";
    if (doc.value("error", json()) == "wrong token")
      text += "  (the token is in the study's shell.json, readable by its owner; --token "
              "overrides it)\n";
    if (doc.contains("help") && doc["help"].is_string()) text += "\n" + doc["help"].get<std::string>();
    return {false, text};
  }
  switch (kind) {
    case command_kind::help:
      return {true, doc.contains("help") && doc["help"].is_string() ? doc["help"].get<std::string>()
                                                                    : help_text()};
    case command_kind::status: return {true, render_status(doc)};
    case command_kind::jobs: return {true, render_jobs(doc, state_filter)};
    case command_kind::job: return {true, render_job(doc)};
    default: break;
  }
  // kill, pause, resume, set, stop: the launcher's message, then any other field.
  std::string text;
  rows rest;
  for (const auto& [key, value] : doc.items()) {
    if (key == "ok") continue;
    if (key == "message" && value.is_string()) {
      text = value.get<std::string>() + "\n";
      continue;
    }
    flatten(value, key, rest);
  }
  text += key_value_lines(rest, {});
  if (text.empty()) text = "ok\n";
  return {true, text};
}

}  // namespace melissa::shell
