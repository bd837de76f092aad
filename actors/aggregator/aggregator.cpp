#include "actors/aggregator/aggregator.hpp"

#include <chrono>
#include <map>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/aggregator/step_log.hpp"

namespace melissa {
namespace {

struct session_activity {
  std::uint32_t attempt = 0;
  int open = 0;  // sessions of that attempt currently open (one per server rank link)
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
};

struct aggregator_state {
  sink_actor sink;
  step_log log;
  std::map<std::uint32_t, session_activity> activity;

  // A newer attempt replaces the record of an older one.
  session_activity& touch(std::uint32_t sim, std::uint32_t attempt) {
    auto& a = activity[sim];
    if (attempt > a.attempt) a = session_activity{attempt, 0, std::chrono::steady_clock::now()};
    if (attempt == a.attempt) a.last = std::chrono::steady_clock::now();
    return a;
  }
  std::uint64_t bytes_stored = 0;
  static inline const char* name = "aggregator";
};

// The typed interface plus the restart notice from the supervisor.
using aggregator_impl = aggregator_actor::extend<caf::reacts_to<restarted_atom, std::string, caf::actor>>;

aggregator_impl::behavior_type aggregator_fn(aggregator_impl::stateful_pointer<aggregator_state> self,
                                             sink_actor sink) {
  self->state.sink = std::move(sink);
  return {
      [self](step_sample& s) -> caf::result<step_outcome> {
        auto& st = self->state;
        st.log.note_attempt(s.sim_id, s.attempt);
        st.touch(s.sim_id, s.attempt);
        if (!st.log.insert(s.sim_id, s.field_id, s.time_step)) return step_outcome::duplicate;
        auto rp = self->make_response_promise<step_outcome>();
        const auto sim = s.sim_id, field = s.field_id, step = s.time_step;
        const auto bytes = s.bytes();
        self->request(st.sink, caf::infinite, store_atom::value, std::move(s))
            .then(
                [self, rp, bytes](bool) mutable {
                  self->state.bytes_stored += bytes;
                  rp.deliver(step_outcome::stored);
                },
                [self, rp, sim, field, step](caf::error& err) mutable {
                  // Not stored: forget it so that a resent step is not taken for a duplicate.
                  self->state.log.forget(sim, field, step);
                  rp.deliver(std::move(err));
                });
        return rp;
      },
      [self](opened_atom, std::uint32_t sim, std::uint32_t attempt) {
        self->state.log.note_attempt(sim, attempt);
        auto& a = self->state.touch(sim, attempt);
        if (a.attempt == attempt) ++a.open;
      },
      [self](closed_atom, std::uint32_t sim, std::uint32_t attempt,
             session_end how) -> caf::result<bool> {
        auto& st = self->state;
        st.log.note_attempt(sim, attempt);
        auto& a = st.touch(sim, attempt);
        if (a.attempt == attempt && a.open > 0) --a.open;
        if (how != session_end::clean) return false;
        if (!st.log.mark_done(sim)) return true;
        // Done once the sink has finished the simulation (e.g. closed its files).
        return self->delegate(st.sink, sim_done_atom::value, sim);
      },
      [self](stats_atom) {
        const auto& log = self->state.log;
        ingest_stats s;
        s.steps_stored = log.total_stored();
        s.duplicates = log.total_duplicates();
        s.bytes_stored = self->state.bytes_stored;
        s.simulations_done = log.done_count();
        s.simulations_seen = static_cast<std::uint32_t>(log.simulations().size());
        return s;
      },
      [self](activity_atom) {
        std::vector<sim_activity> out;
        const auto now = std::chrono::steady_clock::now();
        for (const auto& [sim, a] : self->state.activity)
          out.push_back({sim, a.attempt, a.open > 0,
                         std::chrono::duration<double>(now - a.last).count()});
        return out;
      },
      [self](report_atom) {
        nlohmann::json sims = nlohmann::json::object();
        for (const auto& [id, sim] : self->state.log.simulations()) {
          sims[std::to_string(id)] = {{"steps", sim.stored},
                                      {"duplicates", sim.duplicates},
                                      {"attempts", sim.attempts},
                                      {"done", sim.done}};
        }
        return sims.dump();
      },
      [self](restarted_atom, const std::string& name, caf::actor fresh) {
        if (name == "sink") self->state.sink = caf::actor_cast<sink_actor>(fresh);
      },
  };
}

}  // namespace

aggregator_actor spawn_aggregator(caf::actor_system& sys, sink_actor sink) {
  return caf::actor_cast<aggregator_actor>(sys.spawn(aggregator_fn, std::move(sink)));
}

}  // namespace melissa
