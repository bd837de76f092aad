#include "actors/monitor/monitor_api.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "actors/shell_endpoint/shell_command.hpp"
#include "actors/shell_endpoint/shell_file.hpp"
#include "config/design.hpp"

namespace melissa::monitor {
namespace {

using json = nlohmann::json;

// Request text echoed in a message may be any bytes: invalid UTF-8 is
// replaced rather than thrown on.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

http_reply json_reply(int status, const json& j) { return {status, "application/json", dump(j), {}}; }

http_reply error(int status, const std::string& why) {
  return json_reply(status, {{"ok", false}, {"error", why}});
}

// A launcher answer as a reply: its text unchanged, its status from its "ok".
http_reply answer(const std::string& text) {
  return {status_of_answer(text), "application/json", text, {}};
}

// A figure the study may not have (buffer, steering, training ranks): a
// refusal means "not in this study (or not yet)": 404, not a conflict.
http_reply figure(const std::string& text) {
  auto r = answer(text);
  if (r.status == 409) r.status = 404;
  return r;
}

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

const std::string* param(const http_request& req, const std::string& key) {
  const auto it = req.params.find(key);
  return it == req.params.end() ? nullptr : &it->second;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(s);
  while (std::getline(in, cell, sep)) out.push_back(cell);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

// The statistics mode's figures (GET /api/statistics): the place reserved for
// them. The statistics mode is written elsewhere; when it exists, its answer
// (a study_source method asking the launcher) is returned here, and
// docs/monitor.md ("Statistics") describes its JSON.
http_reply statistics_reply() {
  return error(404, "this study reports no statistics (the statistics mode is not in this build)");
}

bool parse_sim_id(const std::string& text, std::uint32_t& sim) {
  if (text == "0") {
    sim = 0;
    return true;
  }
  return parse_job_id(text, sim);
}

// sim -> origin, from the steering answer's provenance (live) or
// <output>/breed-provenance.csv (a finished study: summary.json leaves it out).
std::map<std::uint32_t, std::string> provenance_of(const json& steering, const std::string& csv) {
  std::map<std::uint32_t, std::string> origin;
  if (steering.contains("provenance") && steering["provenance"].is_array()) {
    for (const auto& p : steering["provenance"])
      if (p.is_object() && p.contains("sim") && p["sim"].is_number_unsigned() && p.contains("origin") &&
          p["origin"].is_string())
        origin[p["sim"].get<std::uint32_t>()] = p["origin"].get<std::string>();
    return origin;
  }
  std::ifstream in(csv);
  std::string line;
  std::getline(in, line);  // sim,origin,resampling,location
  while (std::getline(in, line)) {
    const auto cells = split(line, ',');
    std::uint32_t sim = 0;
    if (cells.size() >= 2 && parse_sim_id(cells[0], sim)) origin[sim] = cells[1];
  }
  return origin;
}

}  // namespace

std::vector<std::string> request_tokens(const http_request& req, const std::string& cookie_name) {
  std::vector<std::string> tokens;
  const std::string bearer = "Bearer ";
  if (req.authorization.size() > bearer.size() &&
      std::equal(bearer.begin(), bearer.end(), req.authorization.begin(),
                 [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
    tokens.push_back(trim(req.authorization.substr(bearer.size())));
  if (const auto* t = param(req, "token")) tokens.push_back(*t);
  for (const auto& part : split(req.cookie, ';')) {
    const auto eq = part.find('=');
    if (eq != std::string::npos && trim(part.substr(0, eq)) == cookie_name)
      tokens.push_back(trim(part.substr(eq + 1)));
  }
  return tokens;
}

void monitor_api::set_port(std::uint16_t port) {
  cookie_name_ = std::string(token_cookie) + "_" + std::to_string(port);
}

bool parse_job_id(const std::string& text, std::uint32_t& id) {
  if (text.empty() || text.size() > 10 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  const auto v = std::stoull(text);
  if (v < 1 || v > 0xffffffffULL) return false;
  id = static_cast<std::uint32_t>(v);
  return true;
}

int status_of_answer(const std::string& json_text) {
  const auto j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return 502;
  if (j.value("ok", false)) return 200;
  const auto why = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "";
  if (why.rfind("no job ", 0) == 0) return 404;
  if (why.find("did not answer") != std::string::npos && why.rfind("server rank", 0) != 0) return 503;
  return 409;
}

namespace {

json read_metrics(const std::string& csv_path, long long since, std::size_t max_rows) {
  json rows = json::array();
  bool more = false;
  std::ifstream in(csv_path);
  std::string line;
  std::vector<std::string> columns;
  if (in && std::getline(in, line)) columns = split(line, ',');
  while (std::getline(in, line)) {
    if (line.empty() || line.back() == '\r') continue;
    const auto cells = split(line, ',');
    if (cells.size() != columns.size()) continue;  // a row being written
    char* end = nullptr;
    const long long step = std::strtoll(cells[0].c_str(), &end, 10);
    if (end == cells[0].c_str() || step <= since) continue;
    if (rows.size() == max_rows) {
      more = true;
      break;
    }
    json row = json::object();
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (cells[i].empty()) continue;
      const double v = std::strtod(cells[i].c_str(), &end);
      if (end != cells[i].c_str() + cells[i].size() || !std::isfinite(v)) continue;
      if (i == 0) row[columns[i]] = step;
      else row[columns[i]] = v;
    }
    rows.push_back(std::move(row));
  }
  return json{{"columns", columns}, {"rows", std::move(rows)}, {"more", more}};
}

}  // namespace

std::string metrics_rows_json(const std::string& csv_path, long long since, std::size_t max_rows) {
  return dump(read_metrics(csv_path, since, max_rows));
}

monitor_api::monitor_api(std::shared_ptr<study_source> source, std::string token,
                         std::string output_dir, std::vector<std::string> parameter_names,
                         std::map<std::string, static_asset> assets)
    : source_(std::move(source)),
      token_(std::move(token)),
      output_dir_(std::move(output_dir)),
      parameter_names_(std::move(parameter_names)),
      assets_(std::move(assets)) {}

http_reply monitor_api::handle(const http_request& req) const {
  try {
    const auto given = request_tokens(req, cookie_name_);
    const bool admitted = std::any_of(given.begin(), given.end(), [&](const std::string& t) {
      return shell::tokens_equal(token_, t);
    });
    if (!admitted) {
      auto r = error(401, given.empty() ? "this study's monitor needs its token: open the URL that "
                                          "melissa-run printed (?token=...) or send "
                                          "'Authorization: Bearer TOKEN' (monitor.json has it)"
                                        : "wrong token");
      r.headers["WWW-Authenticate"] = "Bearer";
      return r;
    }
    auto reply = route(req);
    // The printed URL carries the token once: keep it in a cookie (the page's
    // own requests send it) and drop it from the address bar.
    if (param(req, "token") && req.authorization.empty()) {
      reply.headers["Set-Cookie"] = cookie_name_ + "=" + token_ +
                                    "; Path=/; HttpOnly; SameSite=Strict";
      if (req.method == "GET" && req.path == "/") {
        reply.status = 303;
        reply.headers["Location"] = "/";
        reply.body.clear();
      }
    }
    return reply;
  } catch (const std::exception& e) {
    return error(500, std::string("the monitor failed on this request: ") + e.what());
  } catch (...) {
    return error(500, "the monitor failed on this request");
  }
}

http_reply monitor_api::route(const http_request& req) const {
  const auto& p = req.path;
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";
  const auto only = [&](bool ok, const char* method) -> std::optional<http_reply> {
    if (ok) return std::nullopt;
    auto r = error(405, std::string(p) + " accepts " + method + " only");
    r.headers["Allow"] = method;
    return r;
  };

  // --- the dashboard ---
  if (p == "/" || p == "/index.html" || p.rfind("/static/", 0) == 0) {
    if (auto r = only(get, "GET")) return *r;
    const auto name = p.rfind("/static/", 0) == 0 ? p.substr(8) : std::string("index.html");
    const auto it = assets_.find(name);
    if (it == assets_.end()) return error(404, "no file " + p);
    return {200, it->second.content_type, it->second.body, {{"Cache-Control", "no-cache"}}};
  }
  if (p.rfind("/api/", 0) != 0) return error(404, "no such path: " + p + " (see docs/monitor.md)");

  // --- reading ---
  if (p == "/api/status") {
    if (auto r = only(get, "GET")) return *r;
    auto text = source_->status();
    auto j = json::parse(text, nullptr, false);
    if (j.is_object()) {
      j["live"] = source_->live();
      // The job table's rows by state (the server's included; retries are rows).
      const auto jobs = json::parse(source_->jobs(""), nullptr, false);
      if (j.value("ok", false) && jobs.is_object() && jobs.contains("jobs") && jobs["jobs"].is_array()) {
        json by_state = json::object();
        for (const auto& st : shell::job_states()) by_state[st] = 0;
        for (const auto& row : jobs["jobs"])
          if (row.is_object() && row.contains("state") && row["state"].is_string() &&
              by_state.contains(row["state"].get<std::string>()))
            by_state[row["state"].get<std::string>()] = by_state[row["state"].get<std::string>()].get<int>() + 1;
        j["jobs"] = by_state;
      }
      text = dump(j);
    }
    return answer(text);
  }
  if (p == "/api/jobs") {
    if (auto r = only(get, "GET")) return *r;
    std::string filter;
    if (const auto* s = param(req, "state")) {
      filter = *s;
      std::transform(filter.begin(), filter.end(), filter.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const auto& states = shell::job_states();
      if (std::find(states.begin(), states.end(), filter) == states.end()) {
        std::string list;
        for (const auto& st : states) list += (list.empty() ? "" : ", ") + st;
        return error(400, "state must be one of " + list + ", got '" + s->substr(0, 40) + "'");
      }
    }
    return answer(source_->jobs(filter));
  }
  if (p == "/api/training") {
    if (auto r = only(get, "GET")) return *r;
    return training(req);
  }
  if (p == "/api/buffer") {
    if (auto r = only(get, "GET")) return *r;
    return figure(source_->buffer());
  }
  if (p == "/api/steering") {
    if (auto r = only(get, "GET")) return *r;
    return steering();
  }
  if (p == "/api/statistics") {
    if (auto r = only(get, "GET")) return *r;
    return statistics_reply();
  }
  if (p.rfind("/api/jobs/", 0) == 0) {
    auto rest = p.substr(10);
    const bool kill = rest.size() > 5 && rest.compare(rest.size() - 5, 5, "/kill") == 0;
    if (kill) rest.resize(rest.size() - 5);
    std::uint32_t id = 0;
    if (!parse_job_id(rest, id))
      return error(400, "a job id is a number from 1 to 4294967295, got '" + rest.substr(0, 40) + "'");
    if (!kill) {
      if (auto r = only(get, "GET")) return *r;
      return answer(source_->job(id));
    }
    if (auto r = only(post, "POST")) return *r;
    if (!source_->live()) return error(409, "the study has ended: nothing to kill");
    return answer(source_->kill(id));
  }

  // --- steering the study: the shell's commands ---
  if (p == "/api/pause" || p == "/api/resume" || p == "/api/job_limit") {
    if (auto r = only(post, "POST")) return *r;
    if (p == "/api/job_limit") {
      // {"job_limit": N}, N an integer >= 1 (the launcher checks the bound too).
      const auto body = json::parse(req.body, nullptr, false);
      if (body.is_discarded() || !body.is_object() || !body.contains("job_limit"))
        return error(400, "the body must be a JSON object {\"job_limit\": N}");
      const auto& n = body["job_limit"];
      if (!n.is_number_integer() || n.get<long long>() < 1)
        return error(400, "job_limit must be an integer >= 1, got " + n.dump().substr(0, 40));
      if (!source_->live()) return error(409, "the study has ended: job_limit cannot change");
      return answer(source_->set("job_limit", std::to_string(n.get<long long>())));
    }
    if (!source_->live()) return error(409, "the study has ended: it cannot be paused or resumed");
    return answer(p == "/api/pause" ? source_->pause() : source_->resume());
  }
  return error(404, "no such path: " + p + " (see docs/monitor.md)");
}

http_reply monitor_api::training(const http_request& req) const {
  long long since = -1;
  if (const auto* s = param(req, "since")) {
    char* end = nullptr;
    errno = 0;
    since = std::strtoll(s->c_str(), &end, 10);
    if (s->empty() || end != s->c_str() + s->size() || errno == ERANGE || since < -1)
      return error(400, "since must be a step number >= -1, got '" + s->substr(0, 40) + "'");
  }
  auto out = read_metrics(output_dir_ + "/metrics/metrics.csv", since, max_training_rows);
  out["ok"] = true;
  out["since"] = since;
  // The ranks' current figures (melissa-shell `train`); a study that does not
  // train still answers 200 with no rows and says why in "figures_error".
  const auto live = json::parse(source_->training(), nullptr, false);
  if (live.is_object() && live.value("ok", false)) {
    out["state"] = live.value("state", "");
    out["ranks"] = live.value("ranks", json::array());
  } else {
    out["ranks"] = json::array();
    out["figures_error"] = live.is_object() && live.contains("error") ? live["error"] : json("no answer");
  }
  return json_reply(200, out);
}

http_reply monitor_api::steering() const {
  const auto text = source_->steering();
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.value("ok", false)) return figure(text);
  const auto origin = provenance_of(j["steering"], output_dir_ + "/breed-provenance.csv");
  // The executed parameters: every simulation that started, with the
  // parameters of its latest attempt and where Breed took them from.
  const auto jobs = json::parse(source_->jobs(""), nullptr, false);
  std::map<std::uint32_t, json> points;
  if (jobs.is_object() && jobs.contains("jobs"))
    for (const auto& row : jobs["jobs"]) {
      if (!row.is_object() || row.value("kind", "") != "client") continue;
      if (row.value("started_at", -1.0) < 0) continue;
      const auto sim = row.value("sim_id", 0u);
      const auto values = config::parse_parameters(row.value("parameters", ""), nullptr);
      if (!values) continue;
      const auto o = origin.find(sim);
      points[sim] = {{"sim", sim},
                     {"parameters", *values},
                     {"origin", o == origin.end() ? "design" : o->second},
                     {"state", row.value("state", "")}};
    }
  json list = json::array();
  for (auto& [sim, pt] : points) list.push_back(std::move(pt));
  j["steering"].erase("provenance");
  j["parameter_names"] = parameter_names_;
  j["points"] = std::move(list);
  return json_reply(200, j);
}

}  // namespace melissa::monitor
