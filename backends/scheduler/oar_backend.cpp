#include "backends/scheduler/oar_backend.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "backends/scheduler/script.hpp"
#include "config/study.hpp"

namespace melissa::scheduler {
namespace oar {
namespace {

using detail::trim;

bool in(std::string_view word, std::initializer_list<std::string_view> words) {
  return std::find(words.begin(), words.end(), word) != words.end();
}

std::string two_digits(std::int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); }

// A JSON number, or a JSON string of digits (Perl's DBI hands numbers over
// as strings and the JSON module keeps them so); nullopt for null.
std::optional<long> json_integer(const nlohmann::json& v, const std::string& where) {
  if (v.is_null()) return std::nullopt;
  if (v.is_number_integer()) return v.get<long>();
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s.empty()) return std::nullopt;
    try {
      std::size_t used = 0;
      const long n = std::stol(s, &used);
      if (used == s.size()) return n;
    } catch (const std::exception&) {
    }
  }
  throw backend_error("oarstat: " + where + ": expected an integer, got " + v.dump());
}

}  // namespace

std::string resource_request(const job_settings& s) {
  const std::uint32_t nodes = std::max<std::uint32_t>(s.nodes, 1);
  const std::uint32_t cores = (std::max<std::uint32_t>(s.tasks, 1) + nodes - 1) / nodes;
  std::string out = "/nodes=" + std::to_string(nodes) + "/core=" + std::to_string(cores) + s.gres;
  if (!s.time_limit.empty()) {
    // OAR's walltime is "hours:minutes:seconds" without days.
    const std::int64_t total = config::duration_seconds(s.time_limit);
    if (total <= 0)
      throw backend_error("time limit \"" + s.time_limit + "\": expected \"H:MM:SS\" or \"D-H:MM:SS\"");
    out += ",walltime=" + std::to_string(total / 3600) + ":" + two_digits(total / 60 % 60) + ":" +
           two_digits(total % 60);
  }
  return out;
}

std::string job_script(const job_request& request, const std::vector<std::string>& oarsub_argv,
                       const std::string& script_path) {
  std::string out = detail::script_header(request, detail::shell_command(oarsub_argv), script_path);
  out += "exec ";
  if (request.settings.tasks > 1)
    out += "mpirun -np " + std::to_string(request.settings.tasks) +
           " -machinefile \"$OAR_NODEFILE\" --mca plm_rsh_agent oarsh ";
  return out + detail::shell_command(request.argv) + "\n";
}

std::vector<std::string> oarsub_command(const job_request& request, const std::string& script_path) {
  const job_settings& s = request.settings;
  std::vector<std::string> out = {"oarsub", "-n", request.name};
  if (!request.stdout_path.empty()) out.insert(out.end(), {"-O", request.stdout_path});
  if (!request.stderr_path.empty()) out.insert(out.end(), {"-E", request.stderr_path});
  if (!request.workdir.empty()) out.insert(out.end(), {"-d", request.workdir});
  out.insert(out.end(), {"-l", resource_request(s)});
  if (!s.partition.empty()) out.insert(out.end(), {"-q", s.partition});
  if (!s.account.empty()) out.insert(out.end(), {"--project", s.account});
  out.insert(out.end(), s.extra.begin(), s.extra.end());
  // oarsub's command is one string that a shell runs on the node.
  out.push_back(detail::shell_quote(script_path));
  return out;
}

std::vector<std::string> oarstat_command(const std::vector<std::string>& ids) {
  std::vector<std::string> out = {"oarstat", "-f", "-J"};
  for (const auto& id : ids) out.insert(out.end(), {"-j", id});
  return out;
}

std::string parse_oarsub_id(std::string_view out) {
  constexpr std::string_view key = "OAR_JOB_ID=";
  std::size_t begin = 0;
  while (begin < out.size()) {
    auto end = out.find('\n', begin);
    if (end == std::string_view::npos) end = out.size();
    const std::string line = trim(out.substr(begin, end - begin));
    if (line.compare(0, key.size(), key) == 0) {
      const std::string id = trim(std::string_view(line).substr(key.size()));
      if (!id.empty() && std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return id;
    }
    begin = end + 1;
  }
  return {};
}

std::map<std::string, stat_record> parse_oarstat(std::string_view out) {
  std::map<std::string, stat_record> records;
  // oarstat prints nothing at all when none of the ids exists.
  if (trim(out).empty()) return records;
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(out);
  } catch (const nlohmann::json::exception& e) {
    throw backend_error(std::string("oarstat: output is not JSON: ") + e.what());
  }
  if (!doc.is_object()) throw backend_error("oarstat: expected a JSON object keyed by job id");
  for (const auto& [id, job] : doc.items()) {
    if (!job.is_object()) throw backend_error("oarstat: job " + id + ": expected a JSON object");
    stat_record r;
    const auto state = job.find("state");
    if (state == job.end() || !state->is_string())
      throw backend_error("oarstat: job " + id + ": no \"state\" string");
    r.state = state->get<std::string>();
    if (const auto code = job.find("exit_code"); code != job.end())
      r.exit_code = json_integer(*code, "job " + id + " exit_code");
    records[id] = r;
  }
  return records;
}

job_state map_state(std::string_view s, std::optional<long> exit_code, bool cancelled_by_us) {
  if (in(s, {"Waiting", "toLaunch", "Launching", "Hold", "toAckReservation"})) return job_state::pending;
  if (in(s, {"Running", "Finishing", "Suspended", "Resuming"})) return job_state::running;
  const job_state failure = cancelled_by_us ? job_state::cancelled : job_state::failed;
  if (s == "Terminated") return exit_code && *exit_code == 0 ? job_state::completed : failure;
  if (in(s, {"Error", "toError"})) return failure;
  // A state this code does not know: not final (see slurm::map_state).
  return job_state::running;
}

job_status to_status(const std::string& id, const stat_record& r, bool cancelled_by_us) {
  job_status s;
  s.id = id;
  s.raw_state = r.state;
  s.state = map_state(r.state, r.exit_code, cancelled_by_us);
  if (r.exit_code && is_final(s.state)) {
    // A wait status: exit value in the high byte, signal in the low 7 bits.
    if (const int sig = static_cast<int>(*r.exit_code & 127); sig != 0)
      s.signal = sig;
    else
      s.exit_code = static_cast<int>(*r.exit_code >> 8);
  }
  return s;
}

}  // namespace oar

// ---------------------------------------------------------------------------

namespace {

bool is_oar_id(const std::string& id) {
  return !id.empty() && id.size() < 19 &&
         std::all_of(id.begin(), id.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

oar_backend::oar_backend(command_runner runner) : run_(std::move(runner)) {}

std::string oar_backend::submit(const job_request& request) {
  detail::check_request(request);
  const std::string what = std::string(to_string(request.kind)) + " job '" + request.name + "'";
  const std::string script_path =
      !request.stdout_path.empty()
          ? request.stdout_path + ".oar"
          : (request.workdir.empty() ? std::string(".") : request.workdir) + "/" + request.name + ".oar";
  std::vector<std::string> argv;
  try {
    argv = oar::oarsub_command(request, script_path);
  } catch (const backend_error& e) {
    throw backend_error(what + ": " + e.what());
  }
  detail::write_secret_env(script_path, request, what);
  detail::write_script(script_path, oar::job_script(request, argv, script_path), what);
  const command_result r = run_(argv, {});
  if (r.exit_code != 0) throw backend_error(what + ": " + detail::command_failure(argv, r));
  const std::string id = oar::parse_oarsub_id(r.out);
  if (id.empty()) throw backend_error(what + ": oarsub printed no OAR_JOB_ID: " + r.out);
  return id;
}

std::vector<job_status> oar_backend::poll(const std::vector<std::string>& ids) {
  std::vector<std::string> query;
  for (const auto& id : ids) {
    if (finished_.count(id) || std::find(query.begin(), query.end(), id) != query.end()) continue;
    // oarstat -j takes integers only: another id would fail the whole poll.
    if (!is_oar_id(id)) {
      finished_[id] = job_status{id, job_state::failed, "unknown job id"};
      continue;
    }
    query.push_back(id);
  }
  std::map<std::string, job_status> fresh;
  if (!query.empty()) {
    const auto argv = oar::oarstat_command(query);
    const command_result r = run_(argv, {});
    if (r.exit_code != 0) throw backend_error(detail::command_failure(argv, r));
    const auto records = oar::parse_oarstat(r.out);
    for (const auto& id : query) {
      const auto it = records.find(id);
      job_status s;
      if (it == records.end()) {
        s.id = id;
        s.state = job_state::failed;
        s.raw_state = "NOT_FOUND";
      } else {
        s = oar::to_status(id, it->second, cancelled_.count(id) > 0);
      }
      if (is_final(s.state)) finished_[id] = s;
      fresh[id] = s;
    }
  }
  std::vector<job_status> out;
  out.reserve(ids.size());
  for (const auto& id : ids) {
    const auto f = finished_.find(id);
    out.push_back(f != finished_.end() ? f->second : fresh.at(id));
  }
  return out;
}

void oar_backend::cancel(const std::string& id) {
  if (finished_.count(id) || !is_oar_id(id)) return;
  cancelled_.insert(id);
  const std::vector<std::string> argv = {"oardel", id};
  const command_result r = run_(argv, {});
  // 6: "This job was already killed" (oardel of OAR 2.5).
  if (r.exit_code != 0 && r.exit_code != 6) throw backend_error(detail::command_failure(argv, r));
}

}  // namespace melissa::scheduler
