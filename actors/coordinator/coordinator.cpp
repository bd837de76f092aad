#include "actors/coordinator/coordinator.hpp"

#include <fstream>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace melissa {
namespace {

using clock = std::chrono::steady_clock;

struct coordinator_state {
  coordinator_settings settings;
  aggregator_actor aggregator;
  sink_actor sink;
  caf::actor listener;
  clock::time_point started = clock::now();
  clock::time_point last_progress = clock::now();
  ingest_stats last;  // at the last progress line
  bool finished = false;
  static inline const char* name = "coordinator";
};

using coordinator_ptr = coordinator_actor::stateful_pointer<coordinator_state>;

double seconds_since(clock::time_point t) {
  return std::chrono::duration<double>(clock::now() - t).count();
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
  st.last_progress = clock::now();
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
                        {"steps_stored", stats.steps_stored},
                        {"duplicates", stats.duplicates},
                        {"bytes_stored", stats.bytes_stored},
                        {"elapsed_s", seconds_since(st.started)},
                        {"sink", sink},
                        {"simulations", sims}};
                    auto text = summary.dump(2);
                    if (!st.settings.summary_path.empty()) {
                      const auto tmp = st.settings.summary_path + ".tmp";
                      std::ofstream(tmp) << text << "\n";
                      std::rename(tmp.c_str(), st.settings.summary_path.c_str());
                    }
                    rp.deliver(text);
                  });
            });
      });
  return rp;
}

coordinator_actor::behavior_type coordinator_fn(coordinator_ptr self, coordinator_settings settings,
                                                aggregator_actor aggregator, sink_actor sink,
                                                caf::actor listener) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.aggregator = std::move(aggregator);
  st.sink = std::move(sink);
  st.listener = std::move(listener);
  self->send(self, tick_atom::value);
  return {
      [self](tick_atom) {
        self->request(self->state.aggregator, caf::infinite, stats_atom::value)
            .then([self](const ingest_stats& now) {
              auto& st = self->state;
              if (st.finished) return;
              const auto expected = st.settings.expected_simulations;
              const bool done = expected > 0 && now.simulations_done >= expected;
              if (done || clock::now() - st.last_progress >= st.settings.progress_interval)
                log_progress(self, now);
              if (!done) {
                self->delayed_send(self, st.settings.poll_interval, tick_atom::value);
                return;
              }
              st.finished = true;
              self->request(caf::actor_cast<coordinator_actor>(self), caf::infinite,
                            report_atom::value)
                  .then([self](const std::string& summary) {
                    caf::anon_send(self->state.listener, finished_atom::value, summary);
                  });
            });
      },
      [self](report_atom) { return make_summary(self); },
      [self](restarted_atom, const std::string& name, caf::actor fresh) {
        if (name == "aggregator") self->state.aggregator = caf::actor_cast<aggregator_actor>(fresh);
        if (name == "sink") self->state.sink = caf::actor_cast<sink_actor>(fresh);
      },
  };
}

}  // namespace

coordinator_actor spawn_coordinator(caf::actor_system& sys, coordinator_settings settings,
                                    aggregator_actor aggregator, sink_actor sink,
                                    caf::actor listener) {
  return sys.spawn(coordinator_fn, std::move(settings), std::move(aggregator), std::move(sink),
                   std::move(listener));
}

}  // namespace melissa
