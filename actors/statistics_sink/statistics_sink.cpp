#include "actors/statistics_sink/statistics_sink.hpp"

#include <chrono>
#include <deque>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace melissa {
namespace {

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct asked_checkpoint {
  std::string reason;
  caf::typed_response_promise<std::string> answer;
};

struct statistics_sink_state {
  std::unique_ptr<statistics_core> core;
  std::string dir;
  std::deque<caf::typed_response_promise<bool>> waiting;  // stores whose reply waits for room
  bool written = false;
  std::string write_error;
  // Checkpoints: the steps folded in (the cut's log) and their count.
  step_log received;
  std::uint64_t units = 0;
  statistics_sink_checkpoints checkpoints;
  std::uint64_t sequence = 0;                 // of the checkpoints handed to the writer
  std::vector<asked_checkpoint> asked;        // on demand, not taken yet (the writer was busy)
  std::vector<asked_checkpoint> in_flight;    // on demand, being written (sequence `sequence`)
  std::string in_flight_reason;               // the reason of checkpoint `sequence`
  std::string asked_by_others;                // several ranks, rank 0: not taken yet (writer busy)
  std::string stop_answer;  // the checkpoint this rank stops with: every later request gets it
  static inline const char* name = "statistics_sink";

  void release() {
    while (!waiting.empty() && !core->over_budget()) {
      waiting.front().deliver(true);
      waiting.pop_front();
    }
  }
};

using sink_ptr = statistics_sink_actor::stateful_pointer<statistics_sink_state>;

// The cut, on the sink's thread: the accumulators and the log of the steps in them.
checkpoint::sink_snapshot cut(const statistics_sink_state& st) {
  checkpoint::sink_snapshot snap;
  std::ostringstream out(std::ios::binary);
  st.core->save(out);
  snap.files.emplace_back("statistics.bin", std::make_shared<const std::string>(out.str()));
  snap.received = st.received;
  return snap;
}

// Takes a checkpoint when one is due (reason "") or asked (the first asked
// one's reason; every waiting request shares it). The writer's notice comes
// back as (checkpoint_atom, sequence, answer).
void take_checkpoint(sink_ptr self, const std::string& forced = {}) {
  auto& st = self->state;
  auto& keeper = st.checkpoints.keeper;
  if (!keeper) return;
  std::string reason = forced;
  // Requests wait while one asked earlier is being written (then they ask again).
  const bool for_asked = reason.empty() && !st.asked.empty() && st.in_flight.empty();
  if (for_asked) reason = st.asked.front().reason;
  const auto sequence = st.sequence + 1;
  const statistics_sink_actor handle{self};
  const auto failed_before = for_asked ? keeper->figures()["failed"].get<std::uint64_t>() : 0;
  const bool taken = keeper->at_unit(
      st.units, seconds_now(), [&] { return cut(st); }, reason,
      [handle, sequence](const checkpoint::write_result& r) {
        caf::anon_send(handle, checkpoint_atom::value, sequence,
                       r.ok ? nlohmann::json{{"path", r.path}, {"batch", r.batch}}.dump()
                            : nlohmann::json{{"error", r.error}}.dump());
      });
  if (taken) {
    st.sequence = sequence;
    st.in_flight_reason = reason.empty() ? "scheduled" : reason;
    if (for_asked) {
      for (auto& a : st.asked) st.in_flight.push_back(std::move(a));
      st.asked.clear();
    }
    return;
  }
  // Refused while the writer is busy: asked again at the writer's notice.
  if (for_asked && keeper->figures()["failed"].get<std::uint64_t>() > failed_before) {
    const auto answer =
        nlohmann::json{{"error", "the checkpoint could not be taken (see the server's log)"}}.dump();
    for (auto& a : st.asked) a.answer.deliver(answer);
    st.asked.clear();
  }
}

// Several ranks, a rank other than 0: writes its part of rank 0's oldest
// request not answered yet (if the writer is free). The asked requests are
// answered by it when it stops the server, or when none of them asks to stop.
std::string serve_request(sink_ptr self) {
  auto& st = self->state;
  auto& keeper = *st.checkpoints.keeper;
  // Rank 0's end-of-study checkpoint wants this rank's last steps: it is
  // served once this rank's production is over too (production_over waits
  // for it), not by the tick before (production_over then waited 180 s for
  // a request already answered).
  if (!st.written && keeper.requested() == "end_of_study") return {};
  const auto sequence = st.sequence + 1;
  const statistics_sink_actor handle{self};
  const auto reason = keeper.serve(
      st.units, seconds_now(), [&] { return cut(st); },
      [handle, sequence](const checkpoint::write_result& r) {
        caf::anon_send(handle, checkpoint_atom::value, sequence,
                       r.ok ? nlohmann::json{{"path", r.path}, {"batch", r.batch}}.dump()
                            : nlohmann::json{{"error", r.error}}.dump());
      });
  if (reason.empty()) return reason;
  st.sequence = sequence;
  st.in_flight_reason = reason;
  bool asked_to_stop = false;
  for (const auto& a : st.asked) asked_to_stop |= checkpoint::stops(a.reason);
  if (checkpoint::stops(reason) || !asked_to_stop) {
    for (auto& a : st.asked) st.in_flight.push_back(std::move(a));
    st.asked.clear();
  }
  return reason;
}

// Several ranks, every 200 ms until a checkpoint stopped the server: rank 0
// takes the checkpoints the other ranks asked for; the others pass their
// asks on (again: rank 0 may have removed a lost run's) and serve requests.
void look_for_requests(sink_ptr self) {
  auto& st = self->state;
  auto& keeper = *st.checkpoints.keeper;
  if (keeper.stopped()) return;
  if (keeper.leads()) {
    const auto asked = keeper.asked_by_others();
    if (!asked.empty()) st.asked_by_others = asked;
    if (!st.asked_by_others.empty() && !keeper.busy()) {
      const auto reason = st.asked_by_others;
      st.asked_by_others.clear();
      spdlog::info("another rank asked for a checkpoint ({})", reason);
      take_checkpoint(self, reason);
    }
  } else {
    for (const auto& a : st.asked) keeper.ask(a.reason);
    serve_request(self);
  }
  self->delayed_send(self, std::chrono::milliseconds(200), tick_atom::value);
}

statistics_sink_actor::behavior_type statistics_sink_fn(sink_ptr self, statistics_core_settings settings,
                                                        std::string dir,
                                                        statistics_sink_checkpoints checkpoints,
                                                        std::shared_ptr<restored_statistics> restored) {
  auto& st = self->state;
  st.core = std::make_unique<statistics_core>(std::move(settings));
  st.dir = std::move(dir);
  st.checkpoints = std::move(checkpoints);
  if (restored && !restored->taken.exchange(true)) {
    // Checked before anything is spawned (main.cpp); a failure here stops the rank.
    std::istringstream in(restored->state, std::ios::binary);
    st.core->load(in);
    st.received = restored->received;
    st.units = restored->units;
    spdlog::info("statistics sink: restored {} steps folded in ({} simulations complete)", st.units,
                 st.core->simulations_complete());
  }
  if (st.checkpoints.keeper && st.checkpoints.keeper->ranks() > 1)
    self->send(self, tick_atom::value);
  return {
      [self](store_atom, step_sample& s) -> caf::result<bool> {
        auto& st = self->state;
        try {
          if (st.core->fold(s.sim_id, s.field_id, s.time_step, std::move(s.payload))) {
            st.received.insert(s.sim_id, s.field_id, s.time_step);
            ++st.units;
          }
        } catch (const std::exception& e) {
          return caf::make_error(caf::sec::runtime_error, e.what());
        }
        st.release();
        take_checkpoint(self);  // between two stores: a consistent cut
        if (!st.core->over_budget()) return true;
        // Folded in, but held group steps exceed the budget: the credit waits.
        auto rp = self->make_response_promise<bool>();
        st.waiting.push_back(rp);
        return rp;
      },
      [self](sim_done_atom, std::uint32_t sim) {
        self->state.received.mark_done(sim);
        return true;
      },
      [self](production_over_atom) {
        auto& st = self->state;
        for (auto& rp : st.waiting) rp.deliver(true);
        st.waiting.clear();
        if (st.written) return;
        st.written = true;
        try {
          st.core->write(st.dir);
          spdlog::info("statistics written to {}", st.dir);
        } catch (const std::exception& e) {
          st.write_error = e.what();
          spdlog::error("cannot write the statistics: {}", e.what());
        }
        // The last one (waits until written): a server lost from here on
        // restarts with every simulation complete.
        take_checkpoint(self, "end_of_study");
        auto& keeper = st.checkpoints.keeper;
        if (keeper && !keeper->leads() && !keeper->stopped()) {
          // Several ranks: rank 0's end-of-study checkpoint wants this
          // rank's part; the rank stays until it is written (bounded).
          const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
          for (;;) {
            keeper->wait_idle();
            if (serve_request(self) == "end_of_study") {
              keeper->wait_idle();
              break;
            }
            if (keeper->stopped()) break;
            if (std::chrono::steady_clock::now() > deadline) {
              spdlog::warn("rank 0's end-of-study checkpoint did not come within 180 s");
              break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
          }
        }
      },
      [self](checkpoint_atom, std::string& reason) -> caf::result<std::string> {
        auto& st = self->state;
        if (!st.checkpoints.keeper)
          return nlohmann::json{{"error", st.checkpoints.why_none.empty()
                                              ? std::string("checkpoints are off")
                                              : st.checkpoints.why_none}}
              .dump();
        // The rank stops with that checkpoint: no later one would be kept.
        if (!st.stop_answer.empty()) return st.stop_answer;
        auto rp = self->make_response_promise<std::string>();
        if (!st.checkpoints.keeper->leads()) {
          // Several ranks: rank 0 takes it (look_for_requests passes it on).
          st.checkpoints.keeper->ask(reason);
          st.asked.push_back({std::move(reason), rp});
          return rp;
        }
        st.asked.push_back({std::move(reason), rp});
        take_checkpoint(self);
        return rp;
      },
      [self](checkpoint_atom, std::uint64_t sequence, const std::string& answer) {
        auto& st = self->state;
        if (sequence == st.sequence) {
          bool asked_to_stop = false;
          for (auto& a : st.in_flight) {
            asked_to_stop |= checkpoint::stops(a.reason);
            a.answer.deliver(answer);
          }
          st.in_flight.clear();
          const auto j = nlohmann::json::parse(answer, nullptr, false);
          if (checkpoint::stops(st.in_flight_reason) && j.is_object() && j.contains("path")) {
            // Asked while it was written (say, the coordinator's own lost
            // launcher just after another rank's): this is their checkpoint too.
            st.stop_answer = answer;
            for (auto& a : st.asked) {
              asked_to_stop |= checkpoint::stops(a.reason);
              a.answer.deliver(answer);
            }
            st.asked.clear();
          }
          // Several ranks: stopped because of another rank; this one stops too.
          if (checkpoint::stops(st.in_flight_reason) && !asked_to_stop && st.checkpoints.stopped &&
              st.checkpoints.keeper->ranks() > 1)
            st.checkpoints.stopped(answer);
        }
        if (st.checkpoints.keeper->leads()) take_checkpoint(self);  // requests that waited for the writer
      },
      [self](tick_atom) { look_for_requests(self); },
      [self](report_atom) {
        auto& st = self->state;
        auto r = nlohmann::json::parse(st.core->report());
        r["directory"] = st.dir;
        r["written"] = st.written && st.write_error.empty();
        if (!st.write_error.empty()) r["error"] = st.write_error;
        if (st.checkpoints.keeper) r["checkpoints"] = st.checkpoints.keeper->figures();
        return r.dump();
      },
  };
}

}  // namespace

sink_actor spawn_statistics_sink(caf::actor_system& sys, statistics_core_settings settings,
                                 std::string statistics_dir, statistics_sink_checkpoints checkpoints,
                                 std::shared_ptr<restored_statistics> restored) {
  return caf::actor_cast<sink_actor>(sys.spawn<caf::detached>(
      statistics_sink_fn, std::move(settings), std::move(statistics_dir), std::move(checkpoints),
      std::move(restored)));
}

}  // namespace melissa
