#include "actors/aggregator/aggregator.hpp"

#include <chrono>
#include <map>
#include <memory>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/aggregator/session_tickets.hpp"
#include "actors/aggregator/slice_assembler.hpp"
#include "actors/aggregator/step_log.hpp"

namespace melissa {
namespace {

struct session_activity {
  std::uint32_t attempt = 0;
  int open = 0;  // sessions of that attempt currently open (one per server rank link)
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
};

struct aggregator_state {
  aggregator_settings settings;
  sink_actor sink;
  step_log log;
  session_tickets tickets;
  std::map<std::uint32_t, session_activity> activity;
  std::unique_ptr<slice_assembler> slices;  // statistics mode

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

aggregator_actor::behavior_type aggregator_fn(aggregator_actor::stateful_pointer<aggregator_state> self,
                                             sink_actor sink, aggregator_settings settings) {
  self->state.sink = std::move(sink);
  self->state.settings = settings;
  if (auto& r = self->state.settings.restored; r && !r->taken.exchange(true)) {
    auto& st = self->state;
    st.log = r->log;
    spdlog::info("aggregator: restored the received steps of {} simulations ({} done, {} steps)",
                 st.log.simulations().size(), st.log.done_count(), st.log.total_stored());
  }
  if (settings.slices) {
    std::vector<wire::cell_range> shares;
    for (auto size : settings.field_sizes)
      shares.push_back(wire::owned_share(size, settings.rank, settings.ranks));
    self->state.slices = std::make_unique<slice_assembler>(std::move(shares));
  }
  return {
      [self](step_sample& s) -> caf::result<step_outcome> {
        auto& st = self->state;
        st.log.note_attempt(s.sim_id, s.attempt);
        st.touch(s.sim_id, s.attempt);
        if (st.slices) {
          // A slice: its credit goes back once its values are copied; the step
          // goes to the sink once this rank's whole share of it is in, and
          // the slice that completes it waits for the sink (backpressure).
          if (st.log.contains(s.sim_id, s.field_id, s.time_step)) {
            st.log.insert(s.sim_id, s.field_id, s.time_step);  // counts the duplicate
            return step_outcome::duplicate;
          }
          auto r = st.slices->add(s.sim_id, s.field_id, s.time_step, s.offset, s.f32(), s.count);
          if (r.outcome == slice_assembler::verdict::duplicate) return step_outcome::duplicate;
          if (r.outcome == slice_assembler::verdict::partial) return step_outcome::stored;
          const auto& share = st.slices->share(s.field_id);
          s.offset = share.begin;
          s.count = share.size();
          s.payload = std::move(r.step);
        }
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
      [self](opened_atom, std::uint32_t sim, std::uint32_t attempt,
             const std::string& ticket) -> session_admission {
        auto& st = self->state;
        if (st.settings.simulations > 0 && sim >= st.settings.simulations)
          return {false, false,
                  "simulation " + std::to_string(sim) + " is not in the study (ids 0 to " +
                      std::to_string(st.settings.simulations - 1) + ")"};
        if (st.settings.require_tickets) {
          const auto c = st.tickets.check(sim, attempt, ticket);
          if (c.outcome != session_tickets::verdict::accepted)
            return {false, c.outcome == session_tickets::verdict::unknown, c.reason};
        }
        st.log.note_attempt(sim, attempt);
        auto& a = st.touch(sim, attempt);
        if (a.attempt == attempt) ++a.open;
        return {true, false, {}};
      },
      [self](closed_atom, std::uint32_t sim, std::uint32_t attempt,
             session_end how) -> caf::result<std::string> {
        auto& st = self->state;
        st.log.note_attempt(sim, attempt);
        auto& a = st.touch(sim, attempt);
        if (a.attempt == attempt && a.open > 0) --a.open;
        if (how != session_end::clean) return std::string();
        const auto& cfg = st.settings;
        // Statistics mode: one session per client rank; the last to end cleanly decides.
        if (cfg.slices && a.attempt == attempt && a.open > 0) return std::string();
        if (cfg.steps > 0) {
          const auto missing = cfg.slices ? st.log.missing_steps(sim, cfg.fields, cfg.steps, 0, 1)
                                          : st.log.missing_steps(sim, cfg.fields, cfg.steps,
                                                                 cfg.rank, cfg.ranks);
          if (missing > 0)
            return "simulation " + std::to_string(sim) + " attempt " + std::to_string(attempt) +
                   " ended with " + std::to_string(missing) + " time step" +
                   (missing == 1 ? "" : "s") + " missing on server rank " +
                   std::to_string(cfg.rank) + " (the study says client.steps = " +
                   std::to_string(cfg.steps) + " for each of its " + std::to_string(cfg.fields) +
                   " field" + (cfg.fields == 1 ? "" : "s") + ")";
        }
        if (!st.log.mark_done(sim)) return std::string();
        // Done once the sink has finished the simulation (e.g. closed its files).
        auto rp = self->make_response_promise<std::string>();
        self->request(st.sink, caf::infinite, sim_done_atom::value, sim)
            .then([rp](bool) mutable { rp.deliver(std::string()); },
                  [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
        return rp;
      },
      [self](ticket_atom, std::uint32_t sim, std::uint32_t attempt, std::string& ticket) {
        self->state.tickets.issue(sim, attempt, std::move(ticket));
      },
      [self](revoke_atom, std::uint32_t sim, std::uint32_t attempt) {
        self->state.tickets.revoke(sim, attempt);
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
        const auto& sims = self->state.log.simulations();
        auto& activity = self->state.activity;
        for (auto at = activity.begin(); at != activity.end();) {
          const auto& [sim, a] = *at;
          const auto it = sims.find(sim);
          const bool complete = it != sims.end() && it->second.done;
          out.push_back({sim, a.attempt, a.open > 0,
                         std::chrono::duration<double>(now - a.last).count(), complete});
          // Reported complete with no session open: the coordinator keeps it
          // from here on; dropping it keeps this list (sent every tick) as
          // long as the live sessions, not the 100,000 of a study (issue 16).
          // A later session of it comes back through touch().
          at = complete && a.open == 0 ? activity.erase(at) : std::next(at);
        }
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

aggregator_actor spawn_aggregator(caf::actor_system& sys, sink_actor sink,
                                  aggregator_settings settings) {
  return sys.spawn(aggregator_fn, std::move(sink), settings);
}

}  // namespace melissa
