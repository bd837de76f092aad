#include "actors/launcher/launcher.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/launcher/launcher_core.hpp"
#include "messages/atomic_file.hpp"
#include "backends/scheduler/factory.hpp"
#include "config/design.hpp"
#include "security/study_credentials.hpp"

namespace melissa {
namespace {

using clock_type = std::chrono::steady_clock;
using scheduler::job_kind;
using scheduler::job_state;
using json = nlohmann::json;

enum class phase { idle, starting, running, draining, finishing, stopping, done };

struct rank_link {
  std::string address;
  server_rank_actor coordinator;
  std::uint64_t steps = 0, duplicates = 0, bytes = 0;
  std::optional<std::string> summary;  // set when the rank finished
};

struct launcher_state {
  launcher_settings settings;
  backend_actor backend;
  study_listener_actor listener;
  std::unique_ptr<launcher_core> core;
  clock_type::time_point started = clock_type::now();
  std::uint16_t port = 0;
  std::uint32_t server_job = 0;
  std::map<std::uint32_t, rank_link> ranks;
  // Each client job's session ticket (job id -> ticket): in its environment
  // and sent to every server rank, never written to a file or a log.
  std::map<std::uint32_t, std::string> tickets;
  phase stage = phase::idle;
  bool polling = false;
  double last_poll = -1e9;        // when the last poll of the backend was sent
  int exit_code = study_succeeded;
  std::string message;
  bool paused_by_shell = false;   // `pause` without `resume` (stopping pauses too)
  double stop_deadline = 0;       // stopping/finishing: give up waiting for jobs after this
  double last_progress = -1e9;    // when the last progress line was printed
  std::uint64_t last_steps = 0;   // steps at that time
  double steps_per_s = 0;
  static inline const char* name = "launcher";

  double now() const { return std::chrono::duration<double>(clock_type::now() - started).count(); }
  std::string addresses() const {
    std::string out;
    for (const auto& [rank, link] : ranks) out += (out.empty() ? "" : ",") + link.address;
    return out;
  }
  std::uint64_t steps() const {
    std::uint64_t n = 0;
    for (const auto& [rank, link] : ranks) n += link.steps;
    return n;
  }
};

using launcher_ptr = launcher_impl_actor::stateful_pointer<launcher_state>;

// The launcher's own clock: signals, submissions and timeouts are served at
// least this often, whatever launcher.poll_interval is.
constexpr double max_tick_s = 0.25;

std::string job_log(const launcher_state& st, std::uint32_t job, const char* ext) {
  return st.settings.output_dir + "/jobs/" + std::to_string(job) + "." + ext;
}

// The last `max_lines` lines a job wrote to stderr, for the launcher's own log:
// the reason of a failure is often only there (the client's message, the
// server's startup error). Open MPI's banners (blocks between lines of
// dashes, e.g. after MPI_Abort) are left out: the job's message is above them.
std::vector<std::string> last_lines(const std::string& path, std::size_t max_lines = 5) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = std::max<std::streamoff>(0, size - 16384);
  in.seekg(start);
  std::string line;
  if (start > 0) std::getline(in, line);  // a partial first line
  std::vector<std::string> lines;
  bool in_banner = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() >= 10 && line.find_first_not_of('-') == std::string::npos) {
      in_banner = !in_banner;
      continue;
    }
    if (in_banner || line.find_first_not_of(" \t") == std::string::npos) continue;
    lines.push_back(line.size() > 500 ? line.substr(0, 500) + "..." : line);
  }
  if (lines.size() > max_lines) lines.erase(lines.begin(), lines.end() - max_lines);
  return lines;
}

// The end of a job's stderr as log lines ("" when it wrote nothing).
std::string stderr_tail(const std::string& path) {
  std::string out;
  for (const auto& l : last_lines(path)) out += "\n    " + l;
  return out.empty() ? out : "; the end of " + path + ":" + out;
}

json row_to_json(const job_row& r) {
  json j = {{"id", r.id},
            {"kind", scheduler::to_string(r.kind)},
            {"state", scheduler::to_string(r.state)},
            {"raw_state", r.raw_state},
            {"backend_id", r.backend_id},
            {"submitted_at", r.submitted_at},
            {"started_at", r.started_at},
            {"ended_at", r.ended_at}};
  if (r.kind == job_kind::client) {
    j["sim_id"] = r.sim_id;
    j["attempt"] = r.attempt;
    j["parameters"] = r.parameters;
    j["connected"] = r.connected;
  }
  j["exit_code"] = r.exit_code ? json(*r.exit_code) : json(nullptr);
  j["signal"] = r.signal ? json(*r.signal) : json(nullptr);
  if (!r.reason.empty()) j["reason"] = r.reason;
  return j;
}

const char* phase_name(phase p) {
  switch (p) {
    case phase::idle: return "idle";
    case phase::starting: return "starting";
    case phase::running: return "running";
    case phase::draining: return "draining";
    case phase::finishing: return "finishing";
    case phase::stopping: return "stopping";
    case phase::done: return "done";
  }
  return "?";
}

json status_json(const launcher_state& st) {
  const auto c = st.core->count();
  return {{"ok", true},
          {"study", st.settings.study.study.name},
          {"state", phase_name(st.stage)},
          {"elapsed_s", st.now()},
          {"simulations",
           {{"requested", c.requested},
            {"completed", c.completed},
            {"running", c.running},
            {"pending", c.pending},
            {"failed", c.failed},
            {"retries", c.retries}}},
          {"job_limit", st.core->job_limit()},
          {"paused", st.core->paused()},
          {"steps_stored", st.steps()},
          {"steps_per_s", st.steps_per_s},
          {"server_ranks", st.ranks.size()},
          {"output_dir", st.settings.output_dir}};
}

void write_summary(launcher_ptr self) {
  auto& st = self->state;
  json jobs = json::array();
  for (const auto& [id, row] : st.core->table().rows()) jobs.push_back(row_to_json(row));
  json server = json::array();
  for (const auto& [rank, link] : st.ranks)
    server.push_back(link.summary ? json::parse(*link.summary) : json{{"rank", rank}, {"finished", false}});
  auto summary = status_json(st);
  summary.erase("ok");
  // How the study ended (the live "state" is the launcher's phase, always
  // "done" here); exit_code is melissa-run's exit status.
  summary["state"] = st.exit_code == study_succeeded ? "done"
                     : st.exit_code > 128            ? "interrupted"
                                                     : "failed";
  summary["paused"] = st.paused_by_shell;
  summary["exit_code"] = st.exit_code;
  summary["message"] = st.message;
  summary["failed_simulations"] = st.core->failed_simulations();
  // The launcher's own CPU time (its threads, not the jobs): for the throughput benchmark.
  rusage self_usage{};
  getrusage(RUSAGE_SELF, &self_usage);
  summary["launcher_cpu_s"] = self_usage.ru_utime.tv_sec + self_usage.ru_utime.tv_usec * 1e-6 +
                              self_usage.ru_stime.tv_sec + self_usage.ru_stime.tv_usec * 1e-6;
  summary["jobs"] = jobs;
  summary["server"] = server;
  // The study's final training figures (rank 0's; every rank has the same
  // model) and Breed's, where a reader of the study summary looks first.
  if (!server.empty() && server[0].contains("training")) summary["training"] = server[0]["training"];
  if (!server.empty() && server[0].contains("steering")) {
    auto steering = server[0]["steering"];
    steering.erase("provenance");  // in breed-provenance.csv
    summary["steering"] = steering;
  }
  const auto path = st.settings.output_dir + "/summary.json";
  try {
    write_file_atomically(path, summary.dump(2) + "\n");
  } catch (const std::exception& e) {
    // The previous summary.json (if any) is intact; say why this one is missing.
    spdlog::error("no study summary: {}", e.what());
    if (st.exit_code == study_succeeded) st.exit_code = study_failed;
  }
}

// The final message: what happened, with the counts as they stand at the end
// (jobs still winding down when the server finished may have been cancelled).
std::string final_message(const launcher_state& st) {
  const auto c = st.core->count();
  std::string counts;
  if (c.completed == c.requested && c.failed == 0)
    counts = "all " + std::to_string(c.requested) + " simulations completed";
  else
    counts = std::to_string(c.completed) + " of " + std::to_string(c.requested) +
             " simulations completed, " + std::to_string(c.failed) + " failed";
  if (st.message.empty() || st.message == "completed") return counts;
  return st.message + " (" + counts + ")";
}

void finish(launcher_ptr self) {
  auto& st = self->state;
  if (st.stage == phase::done) return;
  st.stage = phase::done;
  if (st.settings.tty) std::fprintf(stderr, "\n");
  st.message = final_message(st);
  write_summary(self);
  if (st.exit_code == study_succeeded)
    spdlog::info("study {}: {}", st.settings.study.study.name, st.message);
  else
    spdlog::error("study {}: {}", st.settings.study.study.name, st.message);
  caf::anon_send(st.listener, study_finished_atom::value, static_cast<std::int32_t>(st.exit_code),
                 st.message);
  self->quit();
}

void cancel_job(launcher_ptr self, const job_row& row) {
  if (row.backend_id.empty() || scheduler::is_final(row.state)) return;
  self->request(self->state.backend, caf::infinite, cancel_atom::value, row.backend_id)
      .then([](bool) {}, [](const caf::error&) {});
}

// Cancels every job (clients and server), then finishes once they all ended
// (or after a grace period).
void stop_everything(launcher_ptr self, int exit_code, std::string message) {
  auto& st = self->state;
  if (st.stage == phase::stopping || st.stage == phase::done) return;
  st.exit_code = exit_code;
  st.message = std::move(message);
  st.stage = phase::stopping;
  st.stop_deadline = st.now() + 15;
  st.core->stop();
  spdlog::warn("stopping the study: {}", st.message);
  for (const auto& [id, row] : st.core->table().rows()) cancel_job(self, row);
  if (st.core->table().active_backend_ids().empty()) finish(self);
}

void print_progress(launcher_ptr self, bool force = false) {
  auto& st = self->state;
  const double now = st.now();
  const double interval = st.settings.tty ? 0.5 : 5.0;
  if (!force && now - st.last_progress < interval) return;
  const auto steps = st.steps();
  if (st.last_progress > -1e8)
    st.steps_per_s = static_cast<double>(steps - st.last_steps) / std::max(1e-9, now - st.last_progress);
  st.last_progress = now;
  st.last_steps = steps;
  const auto c = st.core->count();
  char line[256];
  std::snprintf(line, sizeof line,
                "[%7.1f s] %u/%u completed, %u running, %u pending, %u failed (%u retries) | %llu "
                "steps, %.0f steps/s%s",
                now, c.completed, c.requested, c.running, c.pending, c.failed, c.retries,
                static_cast<unsigned long long>(steps), st.steps_per_s,
                st.core->paused() ? " | paused" : "");
  if (st.settings.tty)
    std::fprintf(stderr, "\r%s\033[K", line);
  else
    spdlog::info("{}", line);
}

// Parameters come from the server as text: the launcher puts on a command
// line nothing but the numbers of the design ("" when they are that).
std::string check_parameters(const launcher_state& st, const std::string& text) {
  std::string error;
  const auto values = config::parse_parameters(text, &error);
  if (!values) return error;
  const auto expected = st.settings.study.parameters.names.size();
  if (values->size() != expected)
    return std::to_string(values->size()) + " values for " + std::to_string(expected) +
           " parameters";
  return {};
}

scheduler::job_request client_request(const launcher_state& st, const job_row& row) {
  const auto& study = st.settings.study;
  scheduler::job_request req;
  req.name = "melissa-" + study.study.name + "-sim" + std::to_string(row.sim_id) + "-a" +
             std::to_string(row.attempt);
  req.kind = job_kind::client;
  req.argv = study.client.command;
  // Numbers only, formatted here: the text was checked when the server asked.
  const auto values = config::parse_parameters(row.parameters, nullptr);
  for (double v : values.value()) req.argv.push_back(config::format_parameters({v}));
  req.env = study.client.env;
  req.secret_env["MELISSA_TICKET"] = st.tickets.at(row.id);
  req.env["MELISSA_SERVER_ADDRESSES"] = st.addresses();
  req.env["MELISSA_SIM_ID"] = std::to_string(row.sim_id);
  req.env["MELISSA_ATTEMPT"] = std::to_string(row.attempt);
  req.workdir = st.settings.output_dir;
  req.stdout_path = job_log(st, row.id, "out");
  req.stderr_path = job_log(st, row.id, "err");
  req.settings = scheduler::job_settings_for(study, job_kind::client);
  return req;
}

void submit_clients(launcher_ptr self) {
  auto& st = self->state;
  for (auto job : st.core->next_submissions(st.now())) {
    const auto& row = *st.core->table().find(job);
    // The server admits the session of this attempt only with this ticket.
    // It travels before the job exists; a hello that overtakes it is asked
    // again by the server (client_proxy's ask_admission).
    const auto& ticket = st.tickets[job] = security::random_hex(16);
    for (const auto& [rank, link] : st.ranks)
      caf::anon_send(link.coordinator, ticket_atom::value, row.sim_id, row.attempt, ticket);
    self->request(st.backend, caf::infinite, submit_job_atom::value, client_request(st, row))
        .then(
            [self, job](const std::string& id) {
              auto& st = self->state;
              st.core->submitted(job, id, st.now());
              // Submitted while the study was being stopped: cancel it too.
              if (st.stage == phase::stopping) cancel_job(self, *st.core->table().find(job));
            },
            [self, job](const caf::error& err) {
              auto& st = self->state;
              const auto text = backend_error_text(self->system(), err);
              st.core->submit_failed(job, text, st.now());
              stop_everything(self, study_failed, "cannot submit a simulation: " + text);
            });
  }
}

void on_status(launcher_ptr self, const scheduler::job_status& status) {
  auto& st = self->state;
  auto* row = st.core->table().find_backend(status.id);
  if (!row) return;
  if (row->id == st.server_job) {
    const bool was_final = scheduler::is_final(row->state);
    st.core->update(row->id, status, st.now());
    if (was_final || !scheduler::is_final(status.state)) return;
    if (st.stage == phase::finishing || st.stage == phase::stopping) return;
    // The server's reason (a bad validation set, a port in use) is in its
    // stderr: quote it here rather than only point at the file.
    const auto err = job_log(st, row->id, "err");
    const auto tail = last_lines(err, 1);
    if (const auto more = stderr_tail(err); !more.empty())
      spdlog::error("the server job {}{}", status.raw_state, more);
    stop_everything(self, study_failed,
                    "the server job ended (" + status.raw_state + ") before the study ended" +
                        (tail.empty() ? "; see " + err : ": " + tail.back() + " (" + err + ")"));
    return;
  }
  const auto sim = row->sim_id;
  const auto attempt = row->attempt;
  const auto reason = row->reason;
  if (scheduler::is_final(status.state) && st.tickets.erase(row->id) > 0)
    for (const auto& [rank, link] : st.ranks)
      caf::anon_send(link.coordinator, revoke_atom::value, sim, attempt);
  const auto err = job_log(st, row->id, "err");
  switch (st.core->update(row->id, status, st.now())) {
    case launcher_core::outcome::none:
    case launcher_core::outcome::completed:
      break;
    case launcher_core::outcome::retry:
      spdlog::warn("simulation {} attempt {} {} ({}); restarting it as attempt {}{}", sim, attempt,
                   reason.empty() ? "failed" : "was ended", reason.empty() ? status.raw_state : reason,
                   attempt + 1, reason.empty() ? stderr_tail(err) : std::string());
      break;
    case launcher_core::outcome::refused: {
      // The server refused the client (field size, field name, protocol):
      // every restart would be refused the same way.
      const auto lines = last_lines(err, 1);
      spdlog::error("simulation {} attempt {} was refused by the server ({}); not restarting it{}",
                    sim, attempt, status.raw_state, stderr_tail(err));
      stop_everything(self, study_failed,
                      "simulation " + std::to_string(sim) + " was refused by the server" +
                          (lines.empty() ? "" : ": " + lines.back()) +
                          " (the clients and the study disagree; a restart would be refused too; "
                          "see " + err + ")");
      break;
    }
    case launcher_core::outcome::gave_up:
      spdlog::error("simulation {} failed {} times ({}); giving up on it{}", sim, attempt,
                    status.raw_state, stderr_tail(err));
      for (const auto& [rank, link] : st.ranks)
        caf::anon_send(link.coordinator, sim_failed_atom::value, sim);
      break;
  }
}

void advance(launcher_ptr self) {
  auto& st = self->state;
  const double now = st.now();
  switch (st.stage) {
    case phase::starting:
      if (now > st.settings.study.launcher.server_timeout)
        stop_everything(self, study_failed,
                        "the server did not connect within " +
                            std::to_string(static_cast<int>(st.settings.study.launcher.server_timeout)) +
                            " s; see " + job_log(st, st.server_job, "err"));
      break;
    case phase::running:
    case phase::draining:
      for (const auto& [job, what] : st.core->unconfirmed_exits(now)) {
        const auto& row = *st.core->table().find(job);
        if (what == launcher_core::outcome::retry) {
          spdlog::warn("simulation {} attempt {} exited 0 but the server does not hold all its "
                       "time steps (no clean end of its session; see {}); restarting it as "
                       "attempt {}", row.sim_id, row.attempt, job_log(st, job, "err"), row.attempt + 1);
        } else if (what == launcher_core::outcome::gave_up) {
          spdlog::error("simulation {} failed {} times (last: exited 0 without ending its "
                        "session); giving up on it", row.sim_id, row.attempt);
          for (const auto& [rank, link] : st.ranks)
            caf::anon_send(link.coordinator, sim_failed_atom::value, row.sim_id);
        }
      }
      for (auto job : st.core->silent_jobs(now)) {
        const auto& row = *st.core->table().find(job);
        spdlog::warn("simulation {} attempt {} has not connected for {} s; killing it", row.sim_id,
                     row.attempt, st.settings.study.launcher.client_timeout);
        st.core->end_by_launcher(job, "did not connect within client_timeout");
        cancel_job(self, row);
      }
      if (st.stage == phase::running) submit_clients(self);
      print_progress(self);
      break;
    case phase::finishing:
      // The server has every step it expected; wait for its process and for
      // client jobs still winding down, then cancel what is left.
      if (st.core->table().active_backend_ids().empty()) return finish(self);
      if (now > st.stop_deadline) {
        for (const auto& [id, row] : st.core->table().rows()) cancel_job(self, row);
        st.stage = phase::stopping;
        st.stop_deadline = now + 15;
      }
      break;
    case phase::stopping:
      if (st.core->table().active_backend_ids().empty() || now > st.stop_deadline) return finish(self);
      break;
    default:
      break;
  }
}

// Every rank finished: the study is over once the server job exits.
void all_ranks_finished(launcher_ptr self) {
  auto& st = self->state;
  const auto failed = st.core->failed_simulations();
  if (failed.empty() && st.stage != phase::draining) {
    st.exit_code = study_succeeded;
    st.message = "completed";  // final_message() adds the counts at the end
  } else {
    st.exit_code = study_incomplete;
    st.message = st.stage == phase::draining ? "stopped from melissa-shell"
                                             : "some simulations failed for good";
  }
  print_progress(self, true);
  st.core->stop();  // jobs still winding down end as cancelled, none is retried
  st.stage = phase::finishing;
  st.stop_deadline = st.now() + 30;
}

void start_server(launcher_ptr self) {
  auto& st = self->state;
  const auto& study = st.settings.study;
  auto& row = st.core->table().add(job_kind::server, 0, 1, "");
  st.server_job = row.id;
  scheduler::job_request req;
  req.name = "melissa-" + study.study.name + "-server";
  req.kind = job_kind::server;
  req.argv = {st.settings.server_program, "--config", st.settings.resolved_study, "--output",
              st.settings.output_dir, "--launcher",
              st.settings.launcher_host + ":" + std::to_string(st.port)};
  req.workdir = st.settings.output_dir;
  req.stdout_path = job_log(st, row.id, "out");
  req.stderr_path = job_log(st, row.id, "err");
  req.settings = scheduler::job_settings_for(study, job_kind::server);
  st.stage = phase::starting;
  spdlog::info("starting the server ({} rank{}), logs in {}", study.server.ranks,
               study.server.ranks > 1 ? "s" : "", req.stdout_path);
  self->request(st.backend, caf::infinite, submit_job_atom::value, req)
      .then(
          [self](const std::string& id) {
            auto& st = self->state;
            st.core->submitted(st.server_job, id, st.now());
            if (st.stage == phase::stopping) cancel_job(self, *st.core->table().find(st.server_job));
          },
          [self](const caf::error& err) {
            stop_everything(self, study_failed,
                            "cannot start the server: " + backend_error_text(self->system(), err));
          });
}

json ok(json j = json::object()) {
  j["ok"] = true;
  return j;
}
std::string error_reply(const std::string& why) { return json{{"ok", false}, {"error", why}}.dump(); }

// --- training queries (melissa-shell train / buffer / steering) ---

// Below the shell endpoint's 10 s wait for the launcher, so that a silent
// rank is named in the answer instead of the whole answer timing out.
constexpr auto rank_query_timeout = std::chrono::seconds(5);

using reply_promise = caf::typed_response_promise<std::string>;

// A rank's reply as a JSON object; text that is not one becomes {"error": ...}.
json rank_object(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return {{"error", "the rank answered with something that is not a JSON object"}};
  return j;
}

std::string rank_error_text(caf::actor_system& sys, const caf::error& err, std::uint32_t rank) {
  if (err == caf::sec::request_timeout)
    return "server rank " + std::to_string(rank) + " did not answer within " +
           std::to_string(rank_query_timeout.count()) + " s";
  if (err == caf::sec::unexpected_message)
    return "server rank " + std::to_string(rank) + " does not support this query (an older server?)";
  return "server rank " + std::to_string(rank) + " did not answer: " + sys.render(err);
}

// {"ok": true, "state", "elapsed_s", "ranks": [...]} with one object per
// rank (an unanswered rank is {"rank": R, "error": ...}); {"ok": false} when
// no rank has figures (the study does not train: every rank says why).
std::string merge_ranks(const launcher_state& st, std::map<std::uint32_t, json> answers) {
  json ranks = json::array();
  std::vector<std::string> errors;
  for (auto& [rank, j] : answers) {
    j["rank"] = rank;
    if (j.contains("error")) {
      const auto why = j["error"].is_string() ? j["error"].get<std::string>() : j["error"].dump();
      if (std::find(errors.begin(), errors.end(), why) == errors.end()) errors.push_back(why);
    }
    ranks.push_back(std::move(j));
  }
  const bool any_figures = std::any_of(ranks.begin(), ranks.end(),
                                       [](const json& j) { return !j.contains("error"); });
  if (!any_figures) {
    std::string why;
    for (const auto& e : errors) why += (why.empty() ? "" : "; ") + e;
    return error_reply(why.empty() ? "no server rank answered" : why);
  }
  return ok({{"state", phase_name(st.stage)}, {"elapsed_s", st.now()}, {"ranks", ranks}}).dump();
}

// Asks every registered rank's coordinator `atom` and merges the answers. A
// rank that has finished answers from its summary (its server may be gone):
// `from_summary` picks the part of the summary that answers `atom`.
template <class Atom>
reply_promise ask_ranks(launcher_ptr self, Atom atom,
                        json (*from_summary)(const json& summary)) {
  auto rp = self->make_response_promise<std::string>();
  auto& st = self->state;
  if (st.ranks.empty()) {
    rp.deliver(error_reply(st.stage == phase::starting || st.stage == phase::idle
                               ? "no server rank is up yet (the study is starting)"
                               : "no server rank is up"));
    return rp;
  }
  struct pending {
    std::map<std::uint32_t, json> answers;
    std::size_t waiting = 0;
  };
  auto gathered = std::make_shared<pending>();
  auto done = [self, rp, gathered]() mutable {
    if (gathered->waiting == 0) rp.deliver(merge_ranks(self->state, gathered->answers));
  };
  for (const auto& [rank, link] : st.ranks) {
    if (link.summary || !link.coordinator) {
      const auto summary = link.summary ? json::parse(*link.summary, nullptr, false) : json();
      gathered->answers[rank] = summary.is_object()
                                    ? from_summary(summary)
                                    : json{{"error", "server rank has no coordinator"}};
      continue;
    }
    ++gathered->waiting;
    const auto r = rank;
    self->request(link.coordinator, rank_query_timeout, atom)
        .then(
            [gathered, r, done](const std::string& text) mutable {
              gathered->answers[r] = rank_object(text);
              --gathered->waiting;
              done();
            },
            [self, gathered, r, done](const caf::error& err) mutable {
              gathered->answers[r] = {{"error", rank_error_text(self->system(), err, r)}};
              --gathered->waiting;
              done();
            });
  }
  done();  // every rank answered from its summary
  return rp;
}

json training_from_summary(const json& summary) {
  if (summary.contains("training") && summary["training"].is_object()) return summary["training"];
  return {{"error", "the rank finished without training figures"}};
}

json buffer_from_summary(const json& summary) {
  // The sink's final report; a training buffer's has a policy.
  if (summary.contains("sink") && summary["sink"].is_object() && summary["sink"].contains("policy"))
    return summary["sink"];
  return {{"error", "the rank finished without a training buffer"}};
}

// Breed steering lives on rank 0 only: {"ok": true, "steering": {...}}.
reply_promise ask_steering(launcher_ptr self) {
  auto rp = self->make_response_promise<std::string>();
  auto& st = self->state;
  const auto it = st.ranks.find(0);
  if (it == st.ranks.end() || !it->second.coordinator) {
    rp.deliver(error_reply("server rank 0 is not up yet"));
    return rp;
  }
  if (it->second.summary) {
    const auto summary = json::parse(*it->second.summary, nullptr, false);
    if (summary.is_object() && summary.contains("steering") && summary["steering"].is_object()) {
      rp.deliver(ok({{"steering", summary["steering"]}}).dump());
      return rp;
    }
  }
  self->request(it->second.coordinator, rank_query_timeout, steering_atom::value)
      .then(
          [rp](const std::string& text) mutable {
            auto j = rank_object(text);
            if (j.contains("error"))
              rp.deliver(error_reply(j["error"].is_string() ? j["error"].get<std::string>()
                                                            : j["error"].dump()));
            else
              rp.deliver(ok({{"steering", j}}).dump());
          },
          [self, rp](const caf::error& err) mutable {
            rp.deliver(error_reply(err == caf::sec::unexpected_message
                                       ? "this study's server does not report steering"
                                       : rank_error_text(self->system(), err, 0)));
          });
  return rp;
}

launcher_impl_actor::behavior_type launcher_fn(launcher_ptr self, launcher_settings settings,
                                               backend_actor backend, study_listener_actor listener) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.backend = std::move(backend);
  st.listener = std::move(listener);
  const auto& study = st.settings.study;
  launcher_limits limits;
  limits.job_limit = study.launcher.job_limit;
  limits.max_retries = study.launcher.max_retries;
  limits.client_timeout = study.launcher.client_timeout;
  limits.server_ranks = study.server.ranks;
  st.core = std::make_unique<launcher_core>(limits);

  // A server rank that disappears (crash, node failure) ends the study.
  self->set_down_handler([self](const caf::down_msg& msg) {
    auto& st = self->state;
    for (const auto& [rank, link] : st.ranks)
      if (link.coordinator.address() == msg.source && !link.summary &&
          st.stage != phase::finishing)
        stop_everything(self, study_failed,
                        "lost the connection to server rank " + std::to_string(rank) + " (" +
                            self->system().render(msg.reason) + ")");
  });

  return {
      [self](port_atom, std::uint16_t port) {
        self->state.port = port;
        start_server(self);
        self->send(self, tick_atom::value);
      },
      // The tick runs every tick_period whatever poll_interval says, so that
      // submissions, timeouts and a stop (signal) never wait for the next
      // poll; only the backend is polled every poll_interval (at least every
      // second while jobs are being stopped, so that their end is seen).
      [self](tick_atom) {
        auto& st = self->state;
        if (st.stage == phase::done) return;
        const auto ids = st.core->table().active_backend_ids();
        const bool ending = st.stage == phase::stopping || st.stage == phase::finishing;
        const double interval =
            ending ? std::min(st.settings.poll_interval, 1.0) : st.settings.poll_interval;
        if (!st.polling && !ids.empty() && st.now() - st.last_poll >= interval) {
          st.polling = true;
          st.last_poll = st.now();
          self->request(st.backend, caf::infinite, poll_atom::value, ids)
              .then(
                  [self](const std::vector<scheduler::job_status>& statuses) {
                    self->state.polling = false;
                    for (const auto& s : statuses) on_status(self, s);
                    advance(self);
                  },
                  [self](const caf::error& err) {
                    self->state.polling = false;
                    spdlog::warn("polling the scheduler failed: {}",
                                 backend_error_text(self->system(), err));
                  });
        }
        advance(self);
        const double tick_s = std::min(st.settings.poll_interval, max_tick_s);
        if (st.stage != phase::done)
          self->delayed_send(self, std::chrono::milliseconds(static_cast<long>(tick_s * 1000) + 1),
                             tick_atom::value);
      },
      // --- from the server ---
      [self](register_atom, std::uint32_t rank, const std::string& address,
             const server_rank_actor& coordinator) -> std::string {
        auto& st = self->state;
        if (rank >= st.settings.study.server.ranks) return "no server rank " + std::to_string(rank);
        st.ranks[rank].address = address;
        st.ranks[rank].coordinator = coordinator;
        self->monitor(coordinator);
        spdlog::info("server rank {} is up at {}", rank, address);
        if (st.ranks.size() == st.settings.study.server.ranks && st.stage == phase::starting) {
          st.stage = phase::running;
          spdlog::info("running {} simulations, {} at a time", st.settings.study.parameters.count,
                       st.core->job_limit());
        }
        return "ok";
      },
      [self](run_sim_atom, std::uint32_t sim, const std::string& parameters) {
        auto& st = self->state;
        if (auto why = check_parameters(st, parameters); !why.empty())
          return stop_everything(self, study_failed,
                                 "the server asked for simulation " + std::to_string(sim) +
                                     " with bad parameters: " + why);
        st.core->request(sim, parameters);
      },
      [self](submissions_atom) {
        auto& st = self->state;
        return std::make_tuple(st.core->highest_submitted(), st.core->job_limit());
      },
      [self](set_params_atom, std::uint32_t sim, const std::string& parameters) {
        if (auto why = check_parameters(self->state, parameters); !why.empty()) {
          spdlog::error("steering sent bad parameters for simulation {}: {}; kept the old ones",
                        sim, why);
          return false;
        }
        return self->state.core->change_parameters(sim, parameters);
      },
      [self](complete_atom, std::uint32_t rank, std::uint32_t sim) {
        self->state.core->confirm(sim, rank);
      },
      [self](opened_atom, std::uint32_t sim, std::uint32_t attempt) {
        self->state.core->connected(sim, attempt);
      },
      [self](timeout_atom, std::uint32_t sim, std::uint32_t attempt) {
        auto& st = self->state;
        auto* row = st.core->table().latest_of(sim);
        if (!row || row->attempt != attempt || scheduler::is_final(row->state)) return;
        spdlog::warn("simulation {} attempt {} sent nothing for {} s; killing it", sim, attempt,
                     st.settings.study.launcher.client_timeout);
        st.core->end_by_launcher(row->id, "no data within client_timeout");
        cancel_job(self, *row);
      },
      [self](progress_atom, std::uint32_t rank, std::uint64_t steps, std::uint64_t duplicates,
             std::uint64_t bytes) {
        auto& link = self->state.ranks[rank];
        link.steps = steps;
        link.duplicates = duplicates;
        link.bytes = bytes;
      },
      [self](rank_finished_atom, std::uint32_t rank, const std::string& summary) {
        auto& st = self->state;
        st.ranks[rank].summary = summary;
        for (const auto& [r, link] : st.ranks)
          if (!link.summary) return;
        if (st.ranks.size() == st.settings.study.server.ranks) all_ranks_finished(self);
      },
      [self](sink_failed_atom, std::uint32_t rank, const std::string& why) {
        stop_everything(self, study_failed, "server rank " + std::to_string(rank) + ": " + why);
      },
      // --- from the supervisor: the backend actor was restarted (same backend object) ---
      [self](restarted_atom, const std::string& name, caf::actor fresh) {
        if (name != "scheduler_backend") return;
        self->state.backend = caf::actor_cast<backend_actor>(fresh);
        self->state.polling = false;  // a poll in flight died with the old actor
      },
      // --- interrupt from melissa-run (signal) ---
      [self](interrupt_atom, std::int32_t exit_code, const std::string& why) {
        stop_everything(self, exit_code, why);
      },
      // --- melissa-shell ---
      [self](status_atom) { return status_json(self->state).dump(); },
      [self](jobs_atom, const std::string& filter) {
        json rows = json::array();
        for (const auto& [id, row] : self->state.core->table().rows())
          if (filter.empty() || filter == scheduler::to_string(row.state))
            rows.push_back(row_to_json(row));
        return ok({{"jobs", rows}}).dump();
      },
      [self](job_atom, std::uint32_t id) {
        auto* row = self->state.core->table().find(id);
        if (!row) return error_reply("no job " + std::to_string(id));
        return ok({{"job", row_to_json(*row)}}).dump();
      },
      [self](kill_atom, std::uint32_t id) {
        auto& st = self->state;
        auto* row = st.core->table().find(id);
        if (!row) return error_reply("no job " + std::to_string(id));
        if (row->kind == job_kind::server) return error_reply("job " + std::to_string(id) +
                                                              " is the server; use stop");
        if (scheduler::is_final(row->state))
          return error_reply("job " + std::to_string(id) + " already " +
                             scheduler::to_string(row->state));
        st.core->end_by_launcher(id, "killed from melissa-shell");
        cancel_job(self, *row);
        spdlog::warn("job {} (simulation {} attempt {}) killed from melissa-shell", id, row->sim_id,
                     row->attempt);
        return ok({{"killed", id}}).dump();
      },
      [self](pause_atom) {
        self->state.paused_by_shell = true;
        self->state.core->pause();
        return ok({{"paused", true}}).dump();
      },
      [self](resume_atom) {
        self->state.paused_by_shell = false;
        self->state.core->resume();
        return ok({{"paused", false}}).dump();
      },
      [self](set_atom, const std::string& key, const std::string& value) {
        if (key != "job_limit") return error_reply("unknown setting '" + key + "' (settable: job_limit)");
        try {
          std::size_t used = 0;
          const long n = std::stol(value, &used);
          if (used != value.size() || n < 1 || n > 1000000) throw std::invalid_argument(value);
          self->state.core->set_job_limit(static_cast<std::uint32_t>(n));
          spdlog::info("job_limit set to {} from melissa-shell", n);
          return ok({{"job_limit", n}}).dump();
        } catch (const std::exception&) {
          return error_reply("job_limit must be an integer >= 1, got '" + value + "'");
        }
      },
      [self](stop_atom) {
        // Graceful: no new simulation; the running ones finish, then the server stops.
        auto& st = self->state;
        st.core->pause();
        if (st.stage == phase::running) st.stage = phase::draining;
        for (const auto& [rank, link] : st.ranks) caf::anon_send(link.coordinator, stop_atom::value);
        spdlog::warn("stop requested from melissa-shell: running simulations finish, none is started");
        return ok({{"stopping", true}}).dump();
      },
      [self](train_atom) { return ask_ranks(self, train_atom::value, training_from_summary); },
      [self](buffer_atom) { return ask_ranks(self, buffer_atom::value, buffer_from_summary); },
      [self](steering_atom) { return ask_steering(self); },
  };
}

}  // namespace

launcher_impl_actor spawn_launcher(caf::actor_system& sys, launcher_settings settings,
                                   backend_actor backend, study_listener_actor listener) {
  return sys.spawn(launcher_fn, std::move(settings), std::move(backend), std::move(listener));
}

}  // namespace melissa
