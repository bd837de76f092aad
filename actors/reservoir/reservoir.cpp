#include "actors/reservoir/reservoir.hpp"

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace melissa {
namespace {

// A store waiting for room in the buffer: its sample is already encoded, so
// the parameters it was encoded with are those of the moment it arrived.
struct pending_store {
  training_sample sample;
  caf::typed_response_promise<bool> promise;
  bool restored = false;  // queued again from a checkpoint: nobody waits for the reply
};

struct pending_batch {
  std::uint32_t size = 0;
  caf::typed_response_promise<training_batch_ptr> promise;
};

struct reservoir_state {
  std::shared_ptr<training_buffer> buffer;
  reservoir_settings settings;
  std::optional<sample_assembler> assembler;  // set before the first message
  std::deque<pending_store> stores;           // in arrival order
  std::deque<pending_batch> batches;          // in request order
  std::uint64_t ignored_steps = 0;            // steps of other fields
  // Breed's changes, from rank 0's coordinator (the simulation table's
  // owner): they take precedence over settings.parameters_of (the design).
  std::map<std::uint32_t, std::vector<double>> changed_parameters;
  // Distinct time steps of the training field received per running
  // simulation (for on_sim_done: Breed's population needs them all seen).
  std::map<std::uint32_t, std::set<std::uint32_t>> steps_received;
  // Every step this buffer took (stored, pending, or another field's): the
  // received-steps part of a checkpoint, cut with the buffer.
  step_log received;
  static inline const char* name = "reservoir";

  void reply(pending_store& p, std::optional<std::string> refused) {
    if (refused) {
      received.forget(p.sample.sim_id, settings.field_id, p.sample.time_step);
      if (!p.restored) p.promise.deliver(caf::make_error(caf::sec::invalid_argument, *refused));
    } else if (!p.restored) {
      p.promise.deliver(true);
    }
  }

  // The buffer as a checkpoint holds it: its snapshot plus the stores waiting for room.
  buffer_snapshot snapshot() const {
    auto snap = buffer->snapshot();
    for (const auto& p : stores) snap.pending.push_back(p.sample);
    return snap;
  }

  // Completes whatever the buffer now allows: waiting stores first (they may
  // make a batch possible), then waiting batch requests (whose draws may make
  // room for more stores), until neither moves.
  void pump() {
    for (bool progress = true; progress;) {
      progress = false;
      while (!stores.empty() && buffer->can_put()) {
        auto why = put(std::move(stores.front().sample));
        reply(stores.front(), std::move(why));
        stores.pop_front();
        progress = true;
      }
      while (!batches.empty()) {
        auto& request = batches.front();
        if (!buffer->can_draw(request.size) && !buffer->exhausted()) break;
        auto batch = std::make_shared<training_batch>(buffer->draw(request.size));
        batch->buffer_population = buffer->population();
        batch->buffer_unseen = buffer->unseen();
        request.promise.deliver(training_batch_ptr{std::move(batch)});
        batches.pop_front();
        progress = true;
      }
    }
  }

  // Stores the sample (can_put() holds), or says why the buffer refused it
  // (its rows must keep the first sample's lengths: training_buffer::put).
  std::optional<std::string> put(training_sample&& sample) {
    const auto sim = sample.sim_id;
    const auto step = sample.time_step;
    try {
      buffer->put(std::move(sample));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    if (settings.on_sim_done) steps_received[sim].insert(step);
    return std::nullopt;
  }

  std::string report() const {
    const auto st = buffer->stats();
    const auto histogram = buffer->repetition_histogram();
    const double mean = st.inserts == 0 ? 0.0 : static_cast<double>(st.samples_drawn) / st.inserts;
    return nlohmann::json{
        {"kind", "reservoir"},
        {"policy", st.policy},
        {"capacity", st.capacity},
        {"threshold", st.threshold},
        {"population", st.population},
        {"unseen", st.unseen},
        {"inserts", st.inserts},
        {"evictions", st.evictions},
        {"batches", st.batches},
        {"samples_drawn", st.samples_drawn},
        {"production_over", st.production_over},
        {"exhausted", buffer->exhausted()},
        {"pending_stores", stores.size()},
        {"pending_batches", batches.size()},
        {"ignored_steps", ignored_steps},
        // histogram[k]: samples drawn exactly k times (evicted/consumed included).
        {"repetitions", {{"histogram", histogram}, {"mean", mean}, {"max", histogram.size() - 1}}},
    }
        .dump();
  }
};

reservoir_actor::behavior_type reservoir_fn(reservoir_actor::stateful_pointer<reservoir_state> self,
                                            std::shared_ptr<training_buffer> buffer,
                                            reservoir_settings settings) {
  self->state.buffer = std::move(buffer);
  self->state.settings = std::move(settings);
  if (auto& r = self->state.settings.restored; r && !r->taken.exchange(true)) {
    auto& st = self->state;
    st.received = r->received;
    if (r->buffer) st.buffer = std::move(r->buffer);
    for (auto& sample : r->pending) st.stores.push_back({std::move(sample), {}, true});
    r->pending.clear();
    spdlog::info("reservoir: restored {} samples, {} pending stores, {} simulations' received steps",
                 st.buffer->population(), st.stores.size(), st.received.simulations().size());
  }
  // The assembler runs on this actor's thread only.
  self->state.assembler.emplace(self->state.settings.encoder, [self](std::uint32_t sim) {
    auto& st = self->state;
    if (auto it = st.changed_parameters.find(sim); it != st.changed_parameters.end())
      return it->second;
    return st.settings.parameters_of(sim);
  });
  auto reject = [](const step_sample& s, const std::string& why) -> caf::result<bool> {
    spdlog::error("reservoir: step {} of simulation {} rejected: {}", s.time_step, s.sim_id, why);
    return caf::make_error(caf::sec::invalid_argument, why);
  };
  return {
      [self, reject](store_atom, const step_sample& s) -> caf::result<bool> {
        auto& st = self->state;
        if (s.field_id != st.settings.field_id) {
          ++st.ignored_steps;
          st.received.note_attempt(s.sim_id, s.attempt);
          st.received.insert(s.sim_id, s.field_id, s.time_step);
          return true;
        }
        // The step's size and dtype were checked where it entered
        // (client_session); the assembler refuses only what it cannot read.
        training_sample sample;
        try {
          sample = st.assembler->assemble(s.sim_id, s.time_step, s.data_type, s.count,
                                          s.payload ? s.payload->data() : nullptr, s.bytes());
        } catch (const std::invalid_argument& e) {
          return reject(s, e.what());
        }
        if (st.stores.empty() && st.buffer->can_put()) {
          if (auto why = st.put(std::move(sample))) return reject(s, *why);
          st.received.note_attempt(s.sim_id, s.attempt);
          st.received.insert(s.sim_id, s.field_id, s.time_step);
          st.pump();  // a waiting batch request may now be answered
          return true;
        }
        // Backpressure: the reply (and so the client's credit) waits for room.
        // The step is received: a checkpoint holds it among the pending stores.
        st.received.note_attempt(s.sim_id, s.attempt);
        st.received.insert(s.sim_id, s.field_id, s.time_step);
        auto rp = self->make_response_promise<bool>();
        st.stores.push_back({std::move(sample), rp});
        return rp;
      },
      [self](sim_done_atom, std::uint32_t sim) {
        self->state.assembler->forget(sim);
        auto& st = self->state;
        st.received.mark_done(sim);
        if (st.settings.on_sim_done) {
          auto it = st.steps_received.find(sim);
          const auto steps = it == st.steps_received.end() ? 0u : static_cast<std::uint32_t>(it->second.size());
          if (it != st.steps_received.end()) st.steps_received.erase(it);
          st.settings.on_sim_done(sim, steps);
        }
        return true;
      },
      [self](report_atom) { return self->state.report(); },
      [self](batch_atom, std::uint32_t size) -> caf::result<training_batch_ptr> {
        if (size == 0) return caf::make_error(caf::sec::invalid_argument, "batch size 0");
        auto& st = self->state;
        if (st.settings.at_batch_request)
          st.settings.at_batch_request([&st] { return st.snapshot(); }, st.received, false);
        auto rp = self->make_response_promise<training_batch_ptr>();
        self->state.batches.push_back({size, rp});
        self->state.pump();  // answers at once if a batch can be drawn
        return rp;
      },
      [self](production_over_atom) {
        auto& st = self->state;
        st.buffer->end_production();
        st.pump();
        // No step comes any more: the end-of-training checkpoint's received steps.
        if (st.settings.at_batch_request)
          st.settings.at_batch_request([&st] { return st.snapshot(); }, st.received, true);
      },
      [self](buffer_atom) { return self->state.report(); },
      [self](checkpoint_atom) {
        // The trainer's request is here (it was sent first): nothing drawn
        // for it yet, unless it was answered already (the cut is then one
        // batch ahead of the trainer's counter).
        auto& st = self->state;
        if (st.settings.at_batch_request)
          st.settings.at_batch_request([&st] { return st.snapshot(); }, st.received, false);
      },
      [self](set_params_atom, std::uint32_t sim, std::vector<double>& values) {
        self->state.changed_parameters[sim] = std::move(values);
      },
  };
}

}  // namespace

reservoir_actor spawn_reservoir(caf::actor_system& sys, reservoir_settings settings) {
  if (!settings.parameters_of) throw std::invalid_argument("reservoir: parameters_of is not set");
  // Built here so that bad settings throw in the caller, not in the actor.
  std::shared_ptr<training_buffer> buffer = make_training_buffer(settings.buffer);
  return sys.spawn(reservoir_fn, std::move(buffer), std::move(settings));
}

}  // namespace melissa
