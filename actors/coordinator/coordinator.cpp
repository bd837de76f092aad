#include "actors/coordinator/coordinator.hpp"

#include <map>
#include <memory>
#include <set>
#include <sstream>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/coordinator/simulation_table.hpp"
#include "config/design.hpp"
#include "messages/atomic_file.hpp"

namespace melissa {
namespace {

using clock_type = std::chrono::steady_clock;

struct coordinator_state {
  coordinator_settings settings;
  aggregator_actor aggregator;
  sink_actor sink;
  rank_listener_actor listener;
  launcher_server_actor launcher;
  clock_type::time_point started = clock_type::now();
  clock_type::time_point last_progress = clock_type::now();
  ingest_stats last;  // at the last progress line
  std::set<std::uint32_t> failed;  // simulations the launcher gave up on
  std::set<std::pair<std::uint32_t, std::uint32_t>> reported_open, reported_timeout;
  std::set<std::uint32_t> reported_complete;
  // Simulations complete on this rank: the aggregator reports each closed,
  // complete one once and then forgets it (its activity list stays as short
  // as the open sessions, not the study), so the count is kept here.
  std::set<std::uint32_t> complete;
  // Stop requested, or the launcher is gone: end once no session has been
  // open for a grace period (clients already started may still connect).
  bool stopping = false;
  clock_type::time_point quiet_since = clock_type::now();  // no session open since then
  bool finished = false;
  trainer_actor trainer;           // with training
  std::string training_summary;    // its summary once training ended
  steering_actor steering;         // with Breed (rank 0)
  std::string steering_summary;    // its status at the end
  // Rank 0 under a launcher: the simulation table, the only one; the
  // launcher hears of it through this actor alone.
  bool owns_table = false;
  simulation_table table;
  bool launcher_lost = false;
  nlohmann::json stopped;  // a stop with a checkpoint: {"reason", "checkpoint"}
  static inline const char* name = "coordinator";
};

using coordinator_ptr = coordinator_actor::stateful_pointer<coordinator_state>;

// Who takes this rank's checkpoints: the trainer, or in statistics mode the
// sink (statistics_sink_actor answers the same request); none otherwise.
using checkpointer_actor =
    caf::typed_actor<caf::replies_to<checkpoint_atom, std::string>::with<std::string>>;
checkpointer_actor checkpointer(const coordinator_state& st) {
  if (st.trainer) return caf::actor_cast<checkpointer_actor>(st.trainer);
  if (st.settings.sink_checkpoints && st.sink) return caf::actor_cast<checkpointer_actor>(st.sink);
  return {};
}

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

void log_progress(coordinator_ptr self, const ingest_stats& now) {
  auto& st = self->state;
  const double dt = std::max(1e-9, seconds_since(st.last_progress));
  const double mb_per_s = static_cast<double>(now.bytes_stored - st.last.bytes_stored) / dt / 1e6;
  const auto expected = st.settings.expected_simulations;
  spdlog::info("rank {}: {}/{} simulations done, {} running, {} steps stored, {} duplicates, "
               "{:.1f} MB/s",
               st.settings.rank, now.simulations_done,
               expected ? std::to_string(expected) : std::string("?"),
               now.simulations_seen - now.simulations_done, now.steps_stored, now.duplicates,
               mb_per_s);
  st.last = now;
  st.last_progress = clock_type::now();
}

// Asks the aggregator and the sink for their reports and merges them.
caf::result<std::string> make_summary(coordinator_ptr self) {
  auto rp = self->make_response_promise<std::string>();
  auto& st = self->state;
  self->request(st.aggregator, caf::infinite, stats_atom::value)
      .then([self, rp](const ingest_stats& stats) mutable {
        self->request(self->state.aggregator, caf::infinite, report_atom::value)
            .then([self, rp, stats](const std::string& sims_text) mutable {
              self->request(self->state.sink, caf::infinite, report_atom::value)
                  .then([self, rp, stats, sims_text](const std::string& sink_text) mutable {
                    auto sims = nlohmann::json::parse(sims_text);
                    auto sink = nlohmann::json::parse(sink_text);
                    // The sink's per-simulation figures (checksums) join the aggregator's.
                    if (sink.contains("simulations")) {
                      for (auto& [id, fig] : sink["simulations"].items())
                        for (auto& [k, v] : fig.items())
                          if (k != "steps") sims[id][k] = v;
                      sink.erase("simulations");
                    }
                    const auto& st = self->state;
                    nlohmann::json summary = {
                        {"rank", st.settings.rank},
                        {"expected_simulations", st.settings.expected_simulations},
                        {"simulations_done", stats.simulations_done},
                        {"simulations_failed", st.failed},
                        {"steps_stored", stats.steps_stored},
                        {"duplicates", stats.duplicates},
                        {"bytes_stored", stats.bytes_stored},
                        {"elapsed_s", st.settings.elapsed_offset_s + seconds_since(st.started)},
                        {"sink", sink},
                        {"simulations", sims}};
                    if (!st.training_summary.empty())
                      summary["training"] = nlohmann::json::parse(st.training_summary);
                    if (!st.steering_summary.empty())
                      summary["steering"] = nlohmann::json::parse(st.steering_summary, nullptr, false);
                    if (!st.stopped.is_null()) summary["stopped"] = st.stopped;
                    auto text = summary.dump(2);
                    if (!st.settings.summary_path.empty()) {
                      // A full disk must not leave a truncated summary, nor
                      // keep the summary from reaching the launcher.
                      try {
                        write_file_atomically(st.settings.summary_path, text + "\n");
                      } catch (const std::exception& e) {
                        spdlog::error("rank {}: {}", st.settings.rank, e.what());
                      }
                    }
                    rp.deliver(text);
                  });
            });
      });
  return rp;
}

void report_end(coordinator_ptr self);

// The checkpoints' copy of the table (rank 0 under a launcher).
void publish_table(coordinator_ptr self) {
  auto& st = self->state;
  if (st.owns_table && st.settings.publish_table) st.settings.publish_table(st.table.snapshot());
}

// Breed's provenance: where each resampled simulation's parameters came from.
void write_provenance(const std::string& path, const std::string& status) {
  const auto j = nlohmann::json::parse(status, nullptr, false);
  if (path.empty() || j.is_discarded() || !j.contains("provenance")) return;
  std::ostringstream out;
  out << "sim,origin,resampling,location\n";
  for (const auto& row : j["provenance"])
    out << row.value("sim", 0) << "," << row.value("origin", std::string()) << ","
        << row.value("resampling", 0) << ","
        << (row.contains("location") && !row["location"].is_null() ? row["location"].dump() : "")
        << "\n";
  try {
    write_file_atomically(path, out.str());
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
  }
}

// Rank 0 with Breed: the steering's final status joins the summary.
void collect_steering(coordinator_ptr self) {
  if (!self->state.steering) return report_end(self);
  self->request(self->state.steering, std::chrono::seconds(10), steering_atom::value)
      .then(
          [self](const std::string& status) {
            self->state.steering_summary = status;
            write_provenance(self->state.settings.provenance_path, status);
            report_end(self);
          },
          [self](const caf::error&) { report_end(self); });
}

void finish(coordinator_ptr self) {
  auto& st = self->state;
  st.finished = true;
  self->send(st.sink, production_over_atom::value);
  if (!st.trainer) return collect_steering(self);
  spdlog::info("rank {}: production is over; training drains the buffer", st.settings.rank);
  self->request(st.trainer, caf::infinite, await_training_atom::value)
      .then(
          [self](const std::string& training) {
            self->state.training_summary = training;
            collect_steering(self);
          },
          [self](const caf::error& err) {
            spdlog::error("rank {}: training did not end cleanly: {}", self->state.settings.rank,
                          self->system().render(err));
            collect_steering(self);
          });
}

// The study is over for this rank (training included): summary to the launcher.
void report_end(coordinator_ptr self) {
  self->request(caf::actor_cast<coordinator_actor>(self), caf::infinite, report_atom::value)
      .then([self](const std::string& summary) {
        auto& st = self->state;
        if (st.launcher)
          self->send(st.launcher, rank_finished_atom::value, st.settings.rank, summary);
        caf::anon_send(st.listener, rank_finished_atom::value, summary);
      });
}

// Under a launcher: tell it about new sessions and about sessions that went
// silent for longer than the client timeout (it kills and restarts those).
void watch_sessions(coordinator_ptr self, const std::vector<sim_activity>& activity) {
  auto& st = self->state;
  bool changed = false;
  for (const auto& a : activity) {
    const auto key = std::make_pair(a.sim_id, a.attempt);
    if (st.owns_table) {
      // Submitted: it has a job, Breed may no longer change it.
      if (a.open) changed = st.table.mark_submitted(a.sim_id) || changed;
      if (a.complete) changed = st.table.mark_complete(a.sim_id) || changed;
    }
    // An entry exists only for a session the aggregator admitted: a short
    // client may have opened and closed it between two ticks (a.open false),
    // and it did connect all the same.
    if (st.reported_open.insert(key).second)
      self->send(st.launcher, opened_atom::value, a.sim_id, a.attempt);
    if (a.complete && st.reported_complete.insert(a.sim_id).second)
      self->send(st.launcher, complete_atom::value, st.settings.rank, a.sim_id);
    if (a.open && a.idle_s > st.settings.client_timeout && st.reported_timeout.insert(key).second) {
      spdlog::warn("simulation {} attempt {} sent nothing for {:.0f} s", a.sim_id, a.attempt,
                   a.idle_s);
      self->send(st.launcher, timeout_atom::value, a.sim_id, a.attempt);
    }
  }
  if (changed) publish_table(self);
}

// The launcher is gone and the running simulations have ended: the study is
// not over, so training is not drained; a checkpoint is taken and this rank
// stops (melissa-server exits 75, docs/checkpoints.md).
void stop_with_checkpoint(coordinator_ptr self) {
  auto& st = self->state;
  st.finished = true;
  spdlog::warn("rank {}: the launcher is gone; checkpointing, then stopping", st.settings.rank);
  self->request(checkpointer(st), std::chrono::minutes(10), checkpoint_atom::value,
                std::string("launcher_lost"))
      .then(
          [self](const std::string& answer) {
            auto j = nlohmann::json::parse(answer, nullptr, false);
            self->state.stopped = {{"reason", "launcher_lost"}, {"checkpoint", j}};
            report_end(self);
          },
          [self](const caf::error& err) {
            self->state.stopped = {{"reason", "launcher_lost"},
                                   {"checkpoint", {{"error", self->system().render(err)}}}};
            report_end(self);
          });
}

void tick(coordinator_ptr self) {
  self->request(self->state.aggregator, caf::infinite, stats_atom::value)
      .then([self](const ingest_stats& now) {
        auto& st = self->state;
        if (st.finished) return;
        if (st.launcher)
          self->send(st.launcher, progress_atom::value, st.settings.rank, now.steps_stored,
                     now.duplicates, now.bytes_stored);
        self->request(st.aggregator, caf::infinite, activity_atom::value)
            .then([self, now](const std::vector<sim_activity>& activity) {
              auto& st = self->state;
              if (st.launcher) watch_sessions(self, activity);
              std::size_t open = 0;
              for (const auto& a : activity) open += a.open ? 1 : 0;
              if (open > 0) st.quiet_since = clock_type::now();
              // Ended by id: complete on this rank, or given up by the launcher.
              const auto expected = st.settings.expected_simulations;
              for (const auto& a : activity)
                if (a.complete) st.complete.insert(a.sim_id);
              auto ended = st.complete.size();
              for (const auto sim : st.failed) ended += st.complete.count(sim) ? 0 : 1;
              const double grace = std::min(st.settings.client_timeout, 30.0);
              const bool quiet = open == 0 && seconds_since(st.quiet_since) >= grace;
              const bool done = (expected > 0 && ended >= expected) || (st.stopping && quiet);
              if (done || clock_type::now() - st.last_progress >= st.settings.progress_interval)
                log_progress(self, now);
              const bool all_ended = expected > 0 && ended >= expected;
              if (done && st.launcher_lost && !all_ended && checkpointer(st))
                return stop_with_checkpoint(self);
              if (done) return finish(self);
              self->delayed_send(self, st.settings.poll_interval, tick_atom::value);
            });
      });
}

// melissa-shell's training queries: `child` answers `query` with a JSON text,
// passed on as it is; `absent` when the study has no such child, `silent`
// when it does not answer within `timeout`.
template <class Handle, class Query>
caf::result<std::string> ask_child(coordinator_ptr self, const Handle& child, Query query,
                                   std::chrono::seconds timeout, const char* absent,
                                   const char* silent) {
  if (!child) return std::string(absent);
  auto rp = self->make_response_promise<std::string>();
  self->request(child, timeout, query)
      .then([rp](const std::string& answer) mutable { rp.deliver(answer); },
            [rp, silent](const caf::error&) mutable { rp.deliver(std::string(silent)); });
  return rp;
}

void register_with_launcher(coordinator_ptr self, std::uint16_t port);

// Breed's steering hears who owns the simulation table (rank 0 under a launcher).
void introduce_to_steering(coordinator_ptr self) {
  auto& st = self->state;
  if (st.owns_table && st.steering)
    self->send(st.steering, owner_atom::value, simulation_owner_actor{self});
}

// Where submissions stand, from the launcher; the table marks what it covers.
caf::result<std::uint32_t, std::uint32_t, std::uint32_t> ask_submissions(coordinator_ptr self) {
  auto& st = self->state;
  if (!st.owns_table) return caf::make_error(caf::sec::invalid_argument,
                                             "no simulation table on this rank");
  auto rp = self->make_response_promise<std::uint32_t, std::uint32_t, std::uint32_t>();
  self->request(st.launcher, std::chrono::seconds(10), submissions_atom::value)
      .then(
          [self, rp](std::uint32_t highest, std::uint32_t job_limit) mutable {
            auto& table = self->state.table;
            table.mark_submitted_through(highest);
            publish_table(self);
            rp.deliver(highest, job_limit, table.size());
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
  return rp;
}

// Breed's changes of one resampling: those still pending here go to the
// launcher in one message; it decides (it may have submitted some
// meanwhile), then the table and the training buffer take the accepted ones.
caf::result<std::vector<std::uint32_t>> change_parameters(coordinator_ptr self,
                                                          std::vector<std::uint32_t> sims,
                                                          std::vector<std::vector<double>> values) {
  auto& st = self->state;
  if (!st.owns_table || sims.size() != values.size()) return std::vector<std::uint32_t>{};
  auto wanted = std::make_shared<std::map<std::uint32_t, std::vector<double>>>();
  std::vector<std::uint32_t> ids;
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < sims.size(); ++i) {
    if (!st.table.changeable(sims[i])) continue;
    ids.push_back(sims[i]);
    texts.push_back(config::format_parameters(values[i]));
    (*wanted)[sims[i]] = std::move(values[i]);
  }
  if (ids.empty()) return std::vector<std::uint32_t>{};
  auto rp = self->make_response_promise<std::vector<std::uint32_t>>();
  self->request(st.launcher, std::chrono::seconds(30), set_params_atom::value, std::move(ids),
                std::move(texts))
      .then(
          [self, rp, wanted](const std::vector<std::uint32_t>& changed) mutable {
            auto& st = self->state;
            for (auto sim : changed) {
              auto it = wanted->find(sim);
              if (it == wanted->end()) continue;
              st.table.change(sim, it->second);
              if (st.trainer)  // the sink is the training buffer
                self->send(caf::actor_cast<reservoir_actor>(st.sink), set_params_atom::value, sim,
                           it->second);
              wanted->erase(it);
            }
            for (const auto& [sim, unused] : *wanted) st.table.mark_submitted(sim);
            if (!wanted->empty())
              spdlog::warn("{} simulations were submitted before their new parameters arrived",
                           wanted->size());
            publish_table(self);
            rp.deliver(changed);
          },
          [rp](const caf::error&) mutable { rp.deliver(std::vector<std::uint32_t>{}); });
  return rp;
}

coordinator_actor::behavior_type coordinator_fn(coordinator_ptr self, coordinator_settings settings,
                                                aggregator_actor aggregator, sink_actor sink,
                                                rank_listener_actor listener,
                                                acceptor_actor acceptor,
                                                launcher_server_actor launcher,
                                                trainer_actor trainer, steering_actor steering) {
  auto& st = self->state;
  st.trainer = std::move(trainer);
  st.steering = std::move(steering);
  st.settings = std::move(settings);
  st.aggregator = std::move(aggregator);
  st.sink = std::move(sink);
  st.listener = std::move(listener);
  st.launcher = std::move(launcher);
  st.complete.insert(st.settings.restored_done.begin(), st.settings.restored_done.end());
  if (st.launcher && st.settings.rank == 0) {
    st.owns_table = true;
    st.table = st.settings.restored_table
                   ? simulation_table::restore(*st.settings.restored_table)
                   : simulation_table(st.settings.design);
    for (auto sim : st.settings.restored_complete) st.reported_complete.insert(sim);
    for (std::uint32_t sim = 0; sim < st.table.size(); ++sim)
      if (st.table.state(sim) == sim_state::failed) st.failed.insert(sim);
    publish_table(self);
    introduce_to_steering(self);
  }
  if (st.launcher) {
    // A lost launcher: the running clients finish, then this rank stops.
    self->monitor(st.launcher);
    self->set_down_handler([self](const caf::down_msg&) {
      spdlog::warn("lost the launcher; finishing the running simulations, then stopping");
      self->state.stopping = true;
      self->state.launcher_lost = true;
      self->state.quiet_since = clock_type::now();
    });
    self->request(acceptor, std::chrono::seconds(30), port_atom::value)
        .then([self](std::uint16_t port) { register_with_launcher(self, port); },
              [self](const caf::error& err) {
                spdlog::error("no client port to register: {}", self->system().render(err));
                self->quit(err);
              });
  }
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) { tick(self); },
      [self](report_atom) { return make_summary(self); },
      [self](restarted_atom, const std::string& name, caf::actor fresh) {
        if (name == "aggregator") self->state.aggregator = caf::actor_cast<aggregator_actor>(fresh);
        auto& st = self->state;
        if (name == "sink") {
          st.sink = caf::actor_cast<sink_actor>(fresh);
          // A fresh training buffer knows the design only: give it Breed's changes.
          if (st.owns_table && st.trainer)
            for (auto sim : st.table.changed())
              self->send(caf::actor_cast<reservoir_actor>(st.sink), set_params_atom::value, sim,
                         st.table.parameters(sim));
        }
        if (name == "trainer") st.trainer = caf::actor_cast<trainer_actor>(fresh);
        if (name == "steering") {
          st.steering = caf::actor_cast<steering_actor>(fresh);
          introduce_to_steering(self);
        }
      },
      [self](submissions_atom) { return ask_submissions(self); },
      [self](set_params_atom, std::vector<std::uint32_t>& sims,
             std::vector<std::vector<double>>& values) {
        return change_parameters(self, std::move(sims), std::move(values));
      },
      [self](parameters_atom, std::uint32_t sim) -> caf::result<std::vector<double>> {
        auto& st = self->state;
        if (!st.table.contains(sim))
          return caf::make_error(caf::sec::invalid_argument,
                                 "simulation " + std::to_string(sim) + " is not in the design");
        return st.table.parameters(sim);
      },
      [self](train_atom) {
        return ask_child(self, self->state.trainer, train_atom::value, std::chrono::seconds(10),
                         R"json({"error": "this study does not train (server.sink is not \"train\")"})json",
                         R"({"error": "the trainer did not answer"})");
      },
      [self](buffer_atom) {
        // The sink is the training buffer exactly when there is a trainer.
        return ask_child(self, self->state.trainer ? caf::actor_cast<reservoir_actor>(self->state.sink)
                                                   : reservoir_actor{},
                         buffer_atom::value, std::chrono::seconds(10),
                         R"({"error": "this study has no training buffer"})",
                         R"({"error": "the training buffer did not answer"})");
      },
      [self](statistics_atom) -> caf::result<std::string> {
        // The sink's report, when the sink is the statistics sink.
        auto rp = self->make_response_promise<std::string>();
        self->request(self->state.sink, std::chrono::seconds(10), report_atom::value)
            .then(
                [rp](const std::string& report) mutable {
                  const auto r = nlohmann::json::parse(report, nullptr, false);
                  rp.deliver(r.is_object() && r.value("kind", "") == "statistics"
                                 ? report
                                 : std::string(R"({"error": "this study does not compute statistics"})"));
                },
                [rp](const caf::error&) mutable {
                  rp.deliver(std::string(R"({"error": "the statistics sink did not answer"})"));
                });
        return rp;
      },
      [self](steering_atom) {
        return ask_child(self, self->state.steering, steering_atom::value, std::chrono::seconds(5),
                         R"json({"error": "this study does not steer (no [breed] section)"})json",
                         R"({"error": "the steering actor did not answer"})");
      },
      [self](checkpoint_atom, std::string& reason) -> caf::result<std::string> {
        // The trainer takes it at its next step boundary, the statistics
        // sink between two stores (docs/checkpoints.md).
        auto& st = self->state;
        const auto taker = checkpointer(st);
        if (!taker)
          return std::string(
              R"json({"error": "this study neither trains nor computes statistics: it has no checkpoints"})json");
        auto rp = self->make_response_promise<std::string>();
        const std::string who = st.trainer ? "the trainer" : "the statistics sink";
        self->request(taker, std::chrono::minutes(10), checkpoint_atom::value, std::move(reason))
            .then([rp](const std::string& answer) mutable { rp.deliver(answer); },
                  [self, rp, who](const caf::error& err) mutable {
                    rp.deliver(nlohmann::json{{"error", who + " did not answer: " +
                                                            self->system().render(err)}}
                                   .dump());
                  });
        return rp;
      },
      [self](sim_failed_atom, std::uint32_t sim) {
        self->state.failed.insert(sim);
        if (self->state.table.mark_failed(sim)) publish_table(self);
      },
      [self](ticket_atom, std::uint32_t sim, std::uint32_t attempt, std::string& ticket) {
        self->send(self->state.aggregator, ticket_atom::value, sim, attempt, std::move(ticket));
      },
      [self](revoke_atom, std::uint32_t sim, std::uint32_t attempt) {
        self->send(self->state.aggregator, revoke_atom::value, sim, attempt);
      },
      [self](stop_atom) {
        spdlog::warn("stop requested: finishing the open sessions, then stopping");
        self->state.stopping = true;
        self->state.quiet_since = clock_type::now();
      },
  };
}

void register_with_launcher(coordinator_ptr self, std::uint16_t port) {
  auto& st = self->state;
  const auto address = st.settings.host + ":" + std::to_string(port);
  self->request(st.launcher, std::chrono::seconds(30), register_atom::value, st.settings.rank,
                address, server_rank_actor{self})
        .then(
            [self](const std::string& answer) {
              auto& st = self->state;
              if (answer != "ok") {
                spdlog::error("the launcher refused rank {}: {}", st.settings.rank, answer);
                return self->quit(caf::sec::runtime_error);
              }
              // Rank 0 owns the simulation table: it asks for every simulation
              // still pending (all of them on a fresh start). Restored from a
              // checkpoint: it says which one and what is complete, then asks
              // for every simulation neither complete nor failed (the launcher
              // resubmits those it knew, with attempt + 1).
              if (!st.owns_table) return;
              const bool restored = !st.settings.restored_dir.empty();
              if (restored)
                self->send(st.launcher, restored_atom::value, st.settings.restored_dir,
                           st.settings.restored_batch, st.settings.restored_complete);
              for (std::uint32_t sim = 0; sim < st.table.size(); ++sim) {
                const auto state = st.table.state(sim);
                if (state == sim_state::pending ||
                    (restored && state == sim_state::submitted))
                  self->send(st.launcher, run_sim_atom::value, sim,
                             config::format_parameters(st.table.parameters(sim)));
              }
            },
            [self](const caf::error& err) {
              spdlog::error("cannot register with the launcher: {}", self->system().render(err));
              self->quit(err);
            });
}

}  // namespace

coordinator_actor spawn_coordinator(caf::actor_system& sys, coordinator_settings settings,
                                    aggregator_actor aggregator, sink_actor sink,
                                    rank_listener_actor listener, acceptor_actor acceptor,
                                    launcher_server_actor launcher, trainer_actor trainer,
                                    steering_actor steering) {
  return sys.spawn(coordinator_fn, std::move(settings), std::move(aggregator), std::move(sink),
                   std::move(listener), std::move(acceptor), std::move(launcher),
                   std::move(trainer), std::move(steering));
}

}  // namespace melissa
