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

#include "actors/checkpoint_keeper/restart_plan.hpp"
#include "actors/launcher/launcher_core.hpp"
#include "actors/launcher/launcher_queries.hpp"
#include "actors/launcher/launcher_state.hpp"
#include "actors/launcher/study_phases.hpp"
#include "messages/atomic_file.hpp"
#include "backends/scheduler/factory.hpp"
#include "config/design.hpp"
#include "security/study_credentials.hpp"

namespace melissa {
namespace {

using namespace launcher_detail;
using scheduler::job_kind;
using scheduler::job_state;

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

void write_summary(launcher_ptr self) {
  auto& st = self->state;
  json jobs = json::array();
  for (const auto& [id, row] : st.core->table().rows()) jobs.push_back(row_to_json(row));
  json server = json::array();
  for (const auto& [rank, link] : st.ranks)
    server.push_back(link.summary ? json::parse(*link.summary) : json{{"rank", rank}, {"finished", false}});
  auto summary = status_json(st);
  summary.erase("ok");
  // Live figures only (the monitor's status); the final training is below.
  summary.erase("training_tail");
  summary.erase("training");
  // How the study ended (the live "state" is the launcher's phase, always
  // "done" here); exit_code is melissa-run's exit status.
  summary["state"] = st.exit_code == study_succeeded ? "done"
                     : st.exit_code > 128            ? "interrupted"
                                                     : "failed";
  summary["paused"] = st.paused_by_shell;
  summary["exit_code"] = st.exit_code;
  summary["message"] = st.message;
  summary["failed_simulations"] = st.core->failed_simulations();
  summary["server_restarts"] = st.restarts.size();
  json restarts = json::array();
  for (const auto& r : st.restarts)
    restarts.push_back({{"time", r.time}, {"reason", r.reason}, {"action", r.action},
                        {"checkpoint", r.checkpoint}, {"batch", r.batch}, {"skipped", r.skipped}});
  summary["restarts"] = restarts;
  if (!st.settings.restore.empty())
    summary["resumed_from"] = {{"checkpoint", st.settings.restore}, {"batch", st.settings.restore_batch}};
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
  if (!st.phases.finish()) return;
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
// (or after the stop grace: study_phases).
void stop_everything(launcher_ptr self, int exit_code, std::string message) {
  auto& st = self->state;
  if (!st.phases.stop(st.now())) return;
  st.exit_code = exit_code;
  st.message = std::move(message);
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
  if (in_training_tail(st)) {
    // Nothing is ingested any more: show the training instead of "0 steps/s".
    refresh_tail_figures(self);
    const auto tail = tail_progress_line(now, c, st.tail.figures);
    if (st.settings.tty)
      std::fprintf(stderr, "\r%s\033[K", tail.c_str());
    else
      spdlog::info("{}", tail);
    return;
  }
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

// The backend's answer for one client job: its id, or why it failed.
void client_submitted(launcher_ptr self, std::uint32_t job, const std::string& id) {
  auto& st = self->state;
  // A local job runs from its submission on (see launcher_core::submitted).
  st.core->submitted(job, id, st.now(),
                     st.settings.study.launcher.backend == config::launcher_backend::local);
  // Submitted while the study was being stopped: cancel it too.
  if (st.phases.stopping()) cancel_job(self, *st.core->table().find(job));
}

void client_submit_failed(launcher_ptr self, std::uint32_t job, const std::string& text) {
  auto& st = self->state;
  st.core->submit_failed(job, text, st.now());
  stop_everything(self, study_failed, "cannot submit a simulation: " + text);
}

void submit_clients(launcher_ptr self) {
  auto& st = self->state;
  // Slurm job arrays: every submission of this round in one request, which
  // the backend groups into `sbatch --array` calls.
  const bool arrays = st.settings.study.launcher.slurm_array_size > 1;
  std::vector<std::uint32_t> batch_jobs;
  std::vector<scheduler::job_request> batch;
  for (auto job : st.core->next_submissions(st.now())) {
    const auto& row = *st.core->table().find(job);
    // The server admits the session of this attempt only with this ticket.
    // It travels before the job exists; a hello that overtakes it is asked
    // again by the server (client_proxy's ask_admission).
    const auto& ticket = st.tickets[job] = security::random_hex(16);
    for (const auto& [rank, link] : st.ranks)
      caf::anon_send(link.coordinator, ticket_atom::value, row.sim_id, row.attempt, ticket);
    if (arrays) {
      batch_jobs.push_back(job);
      batch.push_back(client_request(st, row));
      continue;
    }
    self->request(st.backend, caf::infinite, submit_job_atom::value, client_request(st, row))
        .then([self, job](const std::string& id) { client_submitted(self, job, id); },
              [self, job](const caf::error& err) {
                client_submit_failed(self, job, backend_error_text(self->system(), err));
              });
  }
  if (batch.empty()) return;
  self->request(st.backend, caf::infinite, submit_jobs_atom::value, std::move(batch))
      .then(
          [self, batch_jobs](const std::vector<std::string>& ids, const std::vector<std::string>& errors) {
            for (std::size_t i = 0; i < batch_jobs.size(); ++i) {
              if (i < ids.size() && !ids[i].empty())
                client_submitted(self, batch_jobs[i], ids[i]);
              else
                client_submit_failed(self, batch_jobs[i], i < errors.size() ? errors[i] : "no reply");
            }
          },
          [self, batch_jobs](const caf::error& err) {
            const auto text = backend_error_text(self->system(), err);
            for (auto job : batch_jobs) client_submit_failed(self, job, text);
          });
}

void server_lost(launcher_ptr self, const std::string& why);
void restart_server(launcher_ptr self, const checkpoint::server_end& end);

// A server that fails before its first start completed (a startup error: a
// bad validation set, a port in use) fails the study: restarting it would
// fail the same way. Once it ran, or after a restart, it is restarted.
bool may_restart(const launcher_state& st) {
  return !st.phases.before_running() || !st.restarts.empty();
}

void on_status(launcher_ptr self, const scheduler::job_status& status) {
  auto& st = self->state;
  auto* row = st.core->table().find_backend(status.id);
  if (!row) return;
  if (row->kind == job_kind::server && row->id != st.server_job) {
    st.core->update(row->id, status, st.now());  // a server replaced by a restart
    return;
  }
  if (row->id == st.server_job) {
    const bool was_final = scheduler::is_final(row->state);
    st.core->update(row->id, status, st.now());
    if (was_final || !scheduler::is_final(status.state)) return;
    const checkpoint::server_end end{status.raw_state, status.exit_code, status.signal};
    if (st.phases.restarting()) return restart_server(self, end);
    if (!st.phases.server_end_fails()) return;
    if (checkpoint::ended_abnormally(end) && may_restart(st)) {
      if (const auto more = stderr_tail(job_log(st, row->id, "err")); !more.empty())
        spdlog::error("the server job {}{}", status.raw_state, more);
      server_lost(self, "");
      return restart_server(self, end);
    }
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

// Rank 0's batch counter, every few seconds while the study runs: whether a
// server lost without a valid checkpoint may restart from scratch (nothing
// trained yet) or the study must fail (plan_server_restart).
void watch_training(launcher_ptr self) {
  auto& st = self->state;
  st.batches_seen = std::max(st.batches_seen, st.tail.figures.batches);
  if (st.settings.study.server.sink != config::sink_kind::train) return;
  if (st.now() - st.last_train_ask < 5) return;
  st.last_train_ask = st.now();
  refresh_tail_figures(self);
}

void cancel_all_jobs(launcher_ptr self) {
  for (const auto& [id, row] : self->state.core->table().rows()) cancel_job(self, row);
}

void advance(launcher_ptr self);

// One poll of every active job. A change notice (a tick from the backend) that
// arrives while a poll is in flight asks for another right after it: the
// job's end may have come after the backend answered.
void poll_jobs(launcher_ptr self) {
  auto& st = self->state;
  if (st.polling) {
    st.poll_again = true;
    return;
  }
  const auto ids = st.core->table().active_backend_ids();
  if (ids.empty()) return;
  st.polling = true;
  st.poll_again = false;
  st.last_poll = st.now();
  self->request(st.backend, caf::infinite, poll_atom::value, ids)
      .then(
          [self](const std::vector<scheduler::job_status>& statuses) {
            self->state.polling = false;
            for (const auto& s : statuses) on_status(self, s);
            advance(self);
            if (self->state.poll_again && !self->state.phases.done()) poll_jobs(self);
          },
          [self](const caf::error& err) {
            self->state.polling = false;
            spdlog::warn("polling the scheduler failed: {}", backend_error_text(self->system(), err));
          });
}
// How long a lost server's job may take to end by itself before it is cancelled.
constexpr double server_cancel_delay_s = 5;

// The study's phase decides (study_phases); this carries it out.
void advance(launcher_ptr self) {
  auto& st = self->state;
  const double now = st.now();
  if (st.phases.restarting() && st.lost_at >= 0 && now - st.lost_at > server_cancel_delay_s) {
    st.lost_at = -1;
    if (const auto* row = st.core->table().find(st.server_job)) cancel_job(self, *row);
  }
  if (st.phases.watching_clients()) {
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
    if (st.phases.submitting()) submit_clients(self);
    watch_training(self);
    print_progress(self);
    return;
  }
  // Only an ending study waits for its jobs (and only then is the table scanned).
  const bool jobs_active = st.phases.ending() && !st.core->table().active_backend_ids().empty();
  switch (st.phases.on_tick(now, jobs_active)) {
    case study_phases::action::none:
      break;
    case study_phases::action::server_timed_out:
      stop_everything(self, study_failed,
                      "the server did not connect within " +
                          std::to_string(static_cast<int>(st.phases.deadlines().server_timeout)) +
                          " s; see " + job_log(st, st.server_job, "err"));
      break;
    case study_phases::action::cancel_jobs:
      cancel_all_jobs(self);
      break;
    case study_phases::action::finish:
      finish(self);
      break;
    case study_phases::action::restart_server: {
      // The old server job did not end when cancelled: start the new one anyway.
      const auto* row = st.core->table().find(st.server_job);
      restart_server(self, {row ? row->raw_state + ", its job did not end when cancelled"
                                : "its job did not end when cancelled",
                            {}, {}});
      break;
    }
  }
}

// Every rank finished: the study is over once the server job exits.
void all_ranks_finished(launcher_ptr self) {
  auto& st = self->state;
  // A study being stopped (signal, failure) keeps the stop's exit code and message.
  if (st.phases.stopping() || st.phases.done()) return;
  const auto failed = st.core->failed_simulations();
  if (failed.empty() && !st.phases.drained()) {
    st.exit_code = study_succeeded;
    st.message = "completed";  // final_message() adds the counts at the end
  } else {
    st.exit_code = study_incomplete;
    st.message = st.phases.drained() ? "stopped from melissa-shell"
                                             : "some simulations failed for good";
  }
  print_progress(self, true);
  st.core->stop();  // jobs still winding down end as cancelled, none is retried
  st.phases.ranks_finished(st.now());
}

void start_server(launcher_ptr self) {
  auto& st = self->state;
  const bool restore = !st.restore_from.empty();
  const auto& study = st.settings.study;
  auto& row = st.core->table().add(job_kind::server, 0, 1, "");
  st.server_job = row.id;
  scheduler::job_request req;
  req.name = "melissa-" + study.study.name + "-server";
  req.kind = job_kind::server;
  req.argv = {st.settings.server_program, "--config", st.settings.resolved_study, "--output",
              st.settings.output_dir, "--launcher",
              st.settings.launcher_host + ":" + std::to_string(st.port)};
  if (restore) {
    req.argv.push_back("--restore");
    req.argv.push_back(st.restore_from);
  }
  req.workdir = st.settings.output_dir;
  req.stdout_path = job_log(st, row.id, "out");
  req.stderr_path = job_log(st, row.id, "err");
  req.settings = scheduler::job_settings_for(study, job_kind::server);
  st.phases.starting_server(st.now());
  spdlog::info("starting the server ({} rank{}{}), logs in {}", study.server.ranks,
               study.server.ranks > 1 ? "s" : "", restore ? ", restoring " + st.restore_from : "",
               req.stdout_path);
  self->request(st.backend, caf::infinite, submit_job_atom::value, req)
      .then(
          [self](const std::string& id) {
            auto& st = self->state;
            st.core->submitted(st.server_job, id, st.now());
            if (st.phases.stopping()) cancel_job(self, *st.core->table().find(st.server_job));
          },
          [self](const caf::error& err) {
            stop_everything(self, study_failed,
                            "cannot start the server: " + backend_error_text(self->system(), err));
          });
}

// The server is lost (its job ended abnormally, or a rank disconnected):
// no submission, every running simulation is cancelled (its steps after the
// checkpoint are gone) and the server job too; restart_server() follows once
// that job has ended.
void server_lost(launcher_ptr self, const std::string& why) {
  auto& st = self->state;
  if (!st.phases.server_lost(st.now())) return;
  st.lost_why = why;
  if (!why.empty()) spdlog::error("{}: ending the server job", why);
  for (auto job : st.core->server_restarted()) {
    const auto& row = *st.core->table().find(job);
    st.core->end_by_launcher(job, "the server restarted");
    cancel_job(self, row);
  }
  // A rank that closed its connection may be ending by itself (SIGTERM before
  // a time limit: it checkpoints, then exits 75): its job is cancelled only
  // if it is still there server_cancel_delay_s later (advance()).
  st.lost_at = st.now();
}

// The old server job has ended: carry out plan_server_restart.
void restart_server(launcher_ptr self, const checkpoint::server_end& end) {
  auto& st = self->state;
  const auto& study = st.settings.study;
  checkpoint::restart_inputs in;
  in.end = end;
  if (!st.lost_why.empty() && !checkpoint::ended_abnormally(in.end)) {
    in.end.exit_code.reset();  // a rank was lost, whatever the job's exit says
    in.end.raw_state = "lost rank";
  }
  in.restarts_so_far = static_cast<std::uint32_t>(st.restarts.size());
  in.max_restarts = study.launcher.max_server_restarts;
  in.checkpoint_dir = study.checkpoint.dir;
  in.batches_trained = st.batches_seen;
  in.simulations = config::simulation_count(study);
  in.given_up = st.core->failed_simulations();
  const auto plan = checkpoint::plan_server_restart(in);
  for (const auto& line : plan.skipped) spdlog::warn("skipping checkpoint {}", line);
  const auto lost = st.lost_why;
  const auto reason = plan.reason + (lost.empty() ? "" : "; " + lost);
  st.lost_why.clear();
  st.lost_at = -1;
  if (plan.action != checkpoint::restart_action::from_checkpoint &&
      plan.action != checkpoint::restart_action::from_scratch) {
    stop_everything(self, study_failed,
                    plan.message.empty() ? "the server ended (" + reason + ") before the study ended"
                                         : plan.message + (lost.empty() ? "" : " (" + lost + ")"));
    return;
  }
  server_restart_record rec;
  rec.time = st.now();
  rec.reason = reason;
  rec.action = checkpoint::to_string(plan.action);
  rec.checkpoint = plan.checkpoint;
  rec.batch = plan.batch;
  rec.skipped = plan.skipped;
  st.restarts.push_back(rec);
  if (plan.action == checkpoint::restart_action::from_checkpoint)
    spdlog::warn("the server ended ({}): restart {} of at most {} from {} (batch {}); {} "
                 "simulation{} complete there are not rerun",
                 reason, st.restarts.size(), in.max_restarts, plan.checkpoint, plan.batch,
                 plan.complete.size(), plan.complete.size() == 1 ? "" : "s");
  else if (study.server.sink == config::sink_kind::dataset)
    // The dataset's complete files are its state: the new server says which.
    spdlog::warn("the server ended ({}): restart {} of at most {} from scratch; the simulations "
                 "whose files are complete in {} are not run again",
                 reason, st.restarts.size(), in.max_restarts, study.server.dataset_dir);
  else
    spdlog::warn("the server ended ({}) before any training and with no valid checkpoint: "
                 "restart {} of at most {} from scratch, every simulation runs again",
                 reason, st.restarts.size(), in.max_restarts);
  st.core->restored(plan.complete);
  st.ranks.clear();
  st.tail = {};
  st.restore_from = plan.checkpoint;
  start_server(self);
}

// Ctrl-C (or SIGTERM) of melissa-run: no new simulation; rank 0 checkpoints
// every rank (bounded wait), then every job is cancelled. A second signal
// stops at once.
constexpr auto interrupt_checkpoint_wait = std::chrono::seconds(60);

void interrupt(launcher_ptr self, std::int32_t exit_code, const std::string& why) {
  auto& st = self->state;
  const auto rank0 = st.ranks.find(0);
  const bool can_checkpoint = st.phases.watching_clients() && rank0 != st.ranks.end() &&
                              rank0->second.coordinator && !rank0->second.summary &&
                              (st.settings.study.server.sink == config::sink_kind::train ||
                               st.settings.study.study.mode == config::study_mode::statistics);
  if (st.checkpointing || !can_checkpoint) {
    if (st.checkpointing) spdlog::warn("{} again: stopping without waiting for the checkpoint", why);
    return stop_everything(self, exit_code, why);
  }
  st.checkpointing = true;
  st.core->pause();
  spdlog::warn("{}: no new simulation; asking the server for a checkpoint (waiting at most {} s)",
               why, interrupt_checkpoint_wait.count());
  self->request(rank0->second.coordinator, interrupt_checkpoint_wait, checkpoint_atom::value,
                std::string("interrupt"))
      .then(
          [self, exit_code, why](const std::string& text) {
            self->state.checkpointing = false;
            const auto reply = json::parse(text, nullptr, false);
            if (reply.is_object() && reply.contains("path"))
              spdlog::info("checkpoint {} written (batch {}); resume with melissa-run --resume {}",
                           reply["path"].get<std::string>(), reply.value("batch", 0ULL),
                           self->state.settings.output_dir);
            else
              spdlog::warn("the server took no checkpoint: {}; stopping anyway",
                           reply.is_object() ? reply.value("error", text) : text);
            stop_everything(self, exit_code, why);
          },
          [self, exit_code, why](const caf::error& err) {
            self->state.checkpointing = false;
            spdlog::warn("no checkpoint from the server ({}); stopping anyway",
                         self->system().render(err));
            stop_everything(self, exit_code, why);
          });
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
  limits.group_size = config::group_size(study);
  st.core = std::make_unique<launcher_core>(limits);
  if (!st.settings.restore.empty()) {  // --resume
    st.restore_from = st.settings.restore;
    st.batches_seen = st.settings.restore_batch;
    st.core->restored(st.settings.restore_complete);
    st.core->carry_attempts(st.settings.restore_attempts);
  } else if (!st.settings.restore_attempts.empty()) {  // --resume of a dataset study
    st.core->carry_attempts(st.settings.restore_attempts);
  }
  study_deadlines deadlines;
  deadlines.server_timeout = study.launcher.server_timeout;
  st.phases = study_phases(deadlines);

  // A server rank that disappears (crash, node failure): the server is
  // restarted once its job has ended (or failed, past max_server_restarts).
  self->set_down_handler([self](const caf::down_msg& msg) {
    auto& st = self->state;
    for (const auto& [rank, link] : st.ranks)
      if (link.coordinator.address() == msg.source && !link.summary &&
          st.phases.losing_a_rank_fails()) {
        const auto why = "lost the connection to server rank " + std::to_string(rank) + " (" +
                         self->system().render(msg.reason) + ")";
        if (may_restart(st))
          server_lost(self, why);
        else
          stop_everything(self, study_failed, why);
        return;
      }
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
        if (st.phases.done()) return;
        // A tick from elsewhere is the backend's notice that a job may have
        // ended (a local process exited): poll now, so that its slot is
        // refilled at once rather than at the next poll_interval. Only the
        // launcher's own ticks re-arm the timer.
        if (self->current_sender() != self->ctrl()) return poll_jobs(self);
        const bool ending = st.phases.ending();
        const double interval =
            ending ? std::min(st.settings.poll_interval, 1.0) : st.settings.poll_interval;
        if (!st.polling && st.now() - st.last_poll >= interval) poll_jobs(self);
        advance(self);
        const double tick_s = std::min(st.settings.poll_interval, max_tick_s);
        if (!st.phases.done())
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
        if (st.ranks.size() == st.settings.study.server.ranks && st.phases.all_ranks_registered()) {
          spdlog::info("running {} simulations, {} at a time", config::simulation_count(st.settings.study),
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
        if (st.core->request(sim, parameters) == launcher_core::request_outcome::resubmitted)
          spdlog::info("the restarted server asks for simulation {} (not complete in what it "
                       "restored): resubmitting it as its next attempt", sim);
      },
      [self](submissions_atom) {
        auto& st = self->state;
        return std::make_tuple(st.core->highest_submitted(), st.core->job_limit());
      },
      // One Breed resampling: the ids changed (not submitted yet, parameters valid).
      [self](set_params_atom, const std::vector<std::uint32_t>& sims,
             const std::vector<std::string>& parameters) {
        std::vector<std::uint32_t> changed;
        for (std::size_t i = 0; i < sims.size() && i < parameters.size(); ++i) {
          if (auto why = check_parameters(self->state, parameters[i]); !why.empty()) {
            spdlog::error("steering sent bad parameters for simulation {}: {}; kept the old ones",
                          sims[i], why);
            continue;
          }
          if (self->state.core->change_parameters(sims[i], parameters[i])) changed.push_back(sims[i]);
        }
        return changed;
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
      // The server restored a checkpoint: its complete simulations are never rerun.
      [self](restored_atom, const std::string& path, std::uint64_t batch,
             const std::vector<std::uint32_t>& complete) {
        auto& st = self->state;
        st.core->restored(complete);
        st.batches_seen = std::max(st.batches_seen, batch);
        spdlog::info("the server restored {} (batch {}): {} simulation{} complete, never rerun",
                     path, batch, complete.size(), complete.size() == 1 ? "" : "s");
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
        interrupt(self, exit_code, why);
      },
      // --- melissa-shell ---
      [self](status_atom) { return status_json(self->state).dump(); },
      [self](jobs_atom, const std::string& filter) { return jobs_reply(self->state, filter); },
      [self](job_atom, std::uint32_t id) { return job_reply(self->state, id); },
      [self](kill_atom, std::uint32_t id) {
        auto& st = self->state;
        if (auto refusal = kill_refusal(st, id)) return *refusal;
        const auto* row = st.core->table().find(id);
        st.core->end_by_launcher(id, "killed from melissa-shell");
        cancel_job(self, *row);
        spdlog::warn("job {} (simulation {} attempt {}) killed from melissa-shell", id, row->sim_id,
                     row->attempt);
        return killed_reply(id);
      },
      [self](pause_atom) {
        self->state.paused_by_shell = true;
        self->state.core->pause();
        return paused_reply(true);
      },
      [self](resume_atom) {
        self->state.paused_by_shell = false;
        self->state.core->resume();
        return paused_reply(false);
      },
      [self](set_atom, const std::string& key, const std::string& value) {
        return set_setting(*self->state.core, key, value);
      },
      [self](stop_atom) {
        // Graceful: no new simulation; the running ones finish, then the server stops.
        auto& st = self->state;
        st.core->pause();
        st.phases.stop_from_shell();
        for (const auto& [rank, link] : st.ranks) caf::anon_send(link.coordinator, stop_atom::value);
        spdlog::warn("stop requested from melissa-shell: running simulations finish, none is started");
        return stopping_reply();
      },
      [self](train_atom) { return ask_training(self); },
      [self](buffer_atom) { return ask_buffer(self); },
      [self](statistics_atom) { return ask_statistics(self); },
      [self](steering_atom) { return ask_steering(self); },
      [self](checkpoint_atom, const std::string& reason) { return ask_checkpoint(self, reason); },
  };
}

}  // namespace

launcher_impl_actor spawn_launcher(caf::actor_system& sys, launcher_settings settings,
                                   backend_actor backend, study_listener_actor listener) {
  return sys.spawn(launcher_fn, std::move(settings), std::move(backend), std::move(listener));
}

}  // namespace melissa
