// The trainer actor under a supervisor, with its real training buffer (the
// reservoir actor): when the buffer or the steering is restarted, the trainer
// hears it (restarted_atom) and goes on with the new one. Before, a restarted
// buffer left the trainer waiting forever on a batch request the dead buffer
// had taken, and its losses went to a dead steering actor.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <thread>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/reservoir/reservoir.hpp"
#include "actors/supervisor/supervisor.hpp"
#include "actors/trainer/trainer.hpp"

using namespace melissa;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t field_size = 6;
constexpr std::uint32_t batch = 4;

static_assert(converts_to_v<trainer_actor, restart_listener_actor>);
static_assert(converts_to_v<reservoir_actor, sink_actor>);
static_assert(!converts_to_v<sink_actor, reservoir_actor>);

step_sample make_step(std::uint32_t sim, std::uint32_t step) {
  step_sample s;
  s.sim_id = sim;
  s.time_step = step;
  s.field_id = 0;
  s.data_type = wire::dtype::f32;
  s.count = field_size;
  auto bytes = std::make_shared<payload_bytes>(field_size * sizeof(float), 0);
  for (std::uint32_t i = 0; i < field_size; ++i) {
    const float v = static_cast<float>(sim) * 0.1f + static_cast<float>(step) * 0.01f + i;
    std::memcpy(bytes->data() + i * sizeof(float), &v, sizeof(float));
  }
  s.payload = std::move(bytes);
  return s;
}

reservoir_settings buffer_settings_() {
  reservoir_settings rs;
  // FIFO: drawn samples leave the buffer, so once the stored ones are drawn
  // the trainer waits with a batch request the buffer holds.
  rs.buffer = {buffer_policy::fifo, 64, 0, 1};
  rs.field_id = 0;
  rs.encoder.lo = {0};
  rs.encoder.hi = {10};
  rs.encoder.time_scale = 100;
  rs.parameters_of = [](std::uint32_t sim) { return std::vector<double>{static_cast<double>(sim)}; };
  return rs;
}

trainer_actor_settings trainer_settings_() {
  trainer_actor_settings ts;
  ts.core.model.input_dim = 2;
  ts.core.model.hidden = {8};
  ts.core.model.output_dim = field_size;
  ts.core.seed = 3;
  ts.core.threads = 1;
  ts.batch_size = batch;
  ts.metrics_every = 1000;
  ts.validation_every = 1000000;
  return ts;  // no output_dir: no metrics, no model files
}

// A stand-in for Breed: counts the losses messages it gets; steering_atom
// answers that count.
steering_actor::behavior_type counting_steering(steering_actor::stateful_pointer<int> self) {
  return {
      [self](losses_atom, const std::vector<std::uint32_t>&, const std::vector<std::uint32_t>&,
             const std::vector<float>&, double, double) { ++self->state; },
      [](sim_done_atom, std::uint32_t, std::uint32_t) {},
      [](resample_atom, std::uint32_t, std::uint32_t, std::uint32_t) {},
      [self](steering_atom) { return std::to_string(self->state); },
      [](owner_atom, const simulation_owner_actor&) {},
  };
}

caf::actor lookup(caf::scoped_actor& self, const supervisor_actor& sup, const std::string& name) {
  caf::actor found;
  self->request(sup, caf::infinite, lookup_atom::value, name)
      .receive([&](const caf::actor& a) { found = a; }, [](const caf::error&) { FAIL("lookup"); });
  return found;
}

caf::actor wait_for_new(caf::scoped_actor& self, const supervisor_actor& sup,
                        const std::string& name, const caf::actor& old) {
  for (int i = 0; i < 500; ++i) {
    auto now = lookup(self, sup, name);
    if (now && now != old) return now;
    std::this_thread::sleep_for(10ms);
  }
  return old;
}

void store(caf::scoped_actor& self, const caf::actor& sink, std::uint32_t sim, std::uint32_t steps) {
  const auto buffer = caf::actor_cast<reservoir_actor>(sink);
  for (std::uint32_t t = 0; t < steps; ++t)
    self->request(buffer, 10s, store_atom::value, make_step(sim, t))
        .receive([](bool ok) { CHECK(ok); },
                 [](const caf::error& e) { FAIL("store failed: " << caf::to_string(e)); });
}

template <class Atom>
nlohmann::json ask_json(caf::scoped_actor& self, const caf::actor& who, Atom query) {
  nlohmann::json j;
  self->request(who, 10s, query)
      .receive([&](const std::string& s) { j = nlohmann::json::parse(s); },
               [](const caf::error& e) { FAIL("query failed: " << caf::to_string(e)); });
  return j;
}

// Polls `get` (a number) until it reaches `want` or `tries` x 10 ms pass;
// returns the last value.
template <class Get>
std::uint64_t wait_until(Get get, std::uint64_t want, int tries = 2000) {
  std::uint64_t now = 0;
  for (int i = 0; i < tries; ++i) {
    now = get();
    if (now >= want) break;
    std::this_thread::sleep_for(10ms);
  }
  return now;
}

// The server's tree for one rank under a supervisor: the buffer ("sink"), a
// stand-in steering spawned from `steering_fn`, and the trainer wired to both.
template <class SteeringFn>
supervisor_actor spawn_training_tree(caf::actor_system& sys, const reservoir_settings& rs,
                                     const trainer_actor_settings& ts, SteeringFn steering_fn) {
  std::vector<child_spec> tree;
  tree.push_back({"sink", restart_policy::permanent,
                  [rs](caf::actor_system& s, const child_lookup&) {
                    return caf::actor_cast<caf::actor>(spawn_reservoir(s, rs));
                  },
                  {}});
  tree.push_back({"steering", restart_policy::permanent,
                  [steering_fn](caf::actor_system& s, const child_lookup&) {
                    return caf::actor_cast<caf::actor>(s.spawn(steering_fn));
                  },
                  {}});
  tree.push_back({"trainer", restart_policy::permanent,
                  [ts](caf::actor_system& s, const child_lookup& find) {
                    auto settings = ts;
                    settings.steering = caf::actor_cast<steering_actor>(find("steering"));
                    const trainer_actor t =
                        spawn_trainer(s, settings, caf::actor_cast<reservoir_actor>(find("sink")));
                    return caf::actor_cast<caf::actor>(t);
                  },
                  {"sink", "steering"}});
  return spawn_supervisor(sys, "test", std::move(tree));
}

}  // namespace

TEST_CASE("a restarted buffer and steering: the trainer draws from the new buffer and "
          "reports losses to the new steering") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  const auto rs = buffer_settings_();
  const auto ts = trainer_settings_();
  auto sup = spawn_training_tree(sys, rs, ts, counting_steering);

  const auto trainer = lookup(self, sup, "trainer");
  const auto old_sink = lookup(self, sup, "sink");
  const auto old_steering = lookup(self, sup, "steering");
  REQUIRE(trainer);
  auto trainer_batches = [&] {
    return ask_json(self, trainer, train_atom::value)["batches"].get<std::uint64_t>();
  };
  auto losses_seen = [&](const caf::actor& steering) {
    std::uint64_t n = 0;
    self->request(caf::actor_cast<steering_actor>(steering), 10s, steering_atom::value)
        .receive([&](const std::string& s) { n = std::stoull(s); },
                 [](const caf::error& e) { FAIL("steering query: " << caf::to_string(e)); });
    return n;
  };

  // Two batches from the first buffer; then the trainer waits on it.
  store(self, old_sink, 1, 2 * batch);
  REQUIRE(wait_until(trainer_batches, 2) == 2);
  CHECK(losses_seen(old_steering) == 2);

  // The buffer dies with the trainer's batch request in it.
  caf::anon_send_exit(old_sink, caf::exit_reason::kill);
  const auto new_sink = wait_for_new(self, sup, "sink", old_sink);
  REQUIRE(new_sink != old_sink);
  store(self, new_sink, 2, 2 * batch);
  auto drawn_from_new = [&] {
    return ask_json(self, new_sink, buffer_atom::value)["batches"]
        .get<std::uint64_t>();
  };
  CHECK(wait_until(drawn_from_new, 2) == 2);
  CHECK(wait_until(trainer_batches, 4) == 4);
  // Still the same trainer (it did not crash and get restarted with a new model).
  CHECK(lookup(self, sup, "trainer") == trainer);

  // The steering dies: the next losses go to the new one.
  caf::anon_send_exit(old_steering, caf::exit_reason::kill);
  const auto new_steering = wait_for_new(self, sup, "steering", old_steering);
  REQUIRE(new_steering != old_steering);
  // The supervisor's notice and the next batch come from different senders:
  // store a batch at a time until the new steering counts losses (10 s at most).
  std::uint32_t sim = 3;
  std::uint64_t seen = 0;
  for (int round = 0; round < 10 && seen == 0; ++round) {
    store(self, new_sink, sim++, batch);
    seen = wait_until([&] { return losses_seen(new_steering); }, 1, 100);
  }
  CHECK(seen >= 1);
  CHECK(lookup(self, sup, "trainer") == trainer);

  self->send_exit(sup, caf::exit_reason::user_shutdown);
}

// ---- Prefetch (trainer_actor_settings::prefetch, forced on the CPU here) ----
//
// With prefetch the trainer holds one batch drawn ahead: the next is requested
// right after a step, staged when it arrives, and the held one is trained
// then. These tests check that this changes nothing in what is trained: the
// same batches in the same order, every sample once, the `last` batch and a
// buffer restart with a batch held and a request in flight.

namespace {

// A stand-in for Breed that records, in order, the (sim, step) pairs of every
// batch's losses; steering_atom answers them as JSON [[sim, step], ...] per batch.
struct recorded_batches {
  nlohmann::json batches = nlohmann::json::array();
};
steering_actor::behavior_type recording_steering(
    steering_actor::stateful_pointer<recorded_batches> self) {
  return {
      [self](losses_atom, const std::vector<std::uint32_t>& sims,
             const std::vector<std::uint32_t>& steps, const std::vector<float>&, double, double) {
        nlohmann::json batch = nlohmann::json::array();
        for (std::size_t i = 0; i < sims.size(); ++i) batch.push_back({sims[i], steps[i]});
        self->state.batches.push_back(batch);
      },
      [](sim_done_atom, std::uint32_t, std::uint32_t) {},
      [](resample_atom, std::uint32_t, std::uint32_t, std::uint32_t) {},
      [self](steering_atom) { return self->state.batches.dump(); },
      [](owner_atom, const simulation_owner_actor&) {},
  };
}

struct fifo_run {
  nlohmann::json summary;
  nlohmann::json batches;  // the recording steering's
  int boundaries = 0;      // at_step_boundary calls (training_ended excluded)
  std::vector<std::uint64_t> boundary_batches;
};

// A FIFO buffer filled with `sims` x 8 steps, production over, before the
// trainer starts: its draws are then the same whatever the timing (FIFO,
// batches of 4 in store order), so two runs train the same batches.
fifo_run run_fifo(std::optional<bool> prefetch, bool generic_path, std::uint32_t sims,
                  std::function<bool(std::uint64_t)> checkpoint_due = nullptr) {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  const auto buffer = spawn_reservoir(sys, buffer_settings_());
  for (std::uint32_t sim = 1; sim <= sims; ++sim)
    store(self, caf::actor_cast<caf::actor>(buffer), sim, 8);
  self->send(buffer, production_over_atom::value);
  auto ts = trainer_settings_();
  ts.prefetch = prefetch;
  ts.core.generic_path = generic_path;
  const auto steering = sys.spawn(recording_steering);
  ts.steering = steering;
  fifo_run run;
  auto boundaries = std::make_shared<std::vector<std::uint64_t>>();
  if (checkpoint_due) {
    ts.at_step_boundary = [boundaries](const trainer_core& core, bool ended) {
      if (!ended) boundaries->push_back(core.batches());
    };
    ts.checkpoint_due = checkpoint_due;
  }
  const auto trainer = spawn_trainer(sys, ts, buffer);
  self->request(trainer, 120s, await_training_atom::value)
      .receive([&](const std::string& s) { run.summary = nlohmann::json::parse(s); },
               [](const caf::error& e) { FAIL("await_training: " << caf::to_string(e)); });
  // The losses message of the last step may still be on its way.
  for (int i = 0; i < 500; ++i) {
    self->request(steering, 10s, steering_atom::value)
        .receive([&](const std::string& s) { run.batches = nlohmann::json::parse(s); },
                 [](const caf::error& e) { FAIL("steering: " << caf::to_string(e)); });
    if (run.batches.size() >= run.summary["batches"].get<std::size_t>()) break;
    std::this_thread::sleep_for(10ms);
  }
  run.boundary_batches = *boundaries;
  run.boundaries = static_cast<int>(boundaries->size());
  self->send_exit(trainer, caf::exit_reason::user_shutdown);
  self->send_exit(buffer, caf::exit_reason::user_shutdown);
  self->send_exit(steering, caf::exit_reason::user_shutdown);
  return run;
}

}  // namespace

TEST_CASE("prefetch: the same batches in the same order and the same final weights") {
  for (const bool generic : {false, true}) {
    CAPTURE(generic);
    const auto plain = run_fifo(false, generic, 5);
    const auto ahead = run_fifo(true, generic, 5);
    // 5 sims x 8 steps = 40 samples = 10 batches of 4; `last` ends both runs.
    CHECK(plain.summary["batches"] == 10);
    CHECK(plain.summary["samples_seen"] == 40);
    CHECK(ahead.summary["batches"] == 10);
    CHECK(ahead.summary["samples_seen"] == 40);
    CHECK(ahead.summary["steps"] == 10);
    REQUIRE(plain.batches.size() == 10);
    CHECK(ahead.batches == plain.batches);
    // Every (sim, step) exactly once.
    std::set<std::pair<int, int>> seen;
    for (const auto& b : ahead.batches)
      for (const auto& s : b) seen.insert({s[0].get<int>(), s[1].get<int>()});
    CHECK(seen.size() == 40);
    // Same batches, same order, same arithmetic: bit-identical weights.
    CHECK(ahead.summary["weights_checksum"] == plain.summary["weights_checksum"]);
  }
  // "auto" on the CPU: no prefetch, the same run again.
  const auto automatic = run_fifo(std::nullopt, false, 5);
  CHECK(automatic.summary["weights_checksum"] == run_fifo(false, false, 5).summary["weights_checksum"]);
}

TEST_CASE("prefetch: a due checkpoint drains the held batch first; the boundary hook never "
          "sees a batch drawn ahead") {
  // Due after every 3rd batch (3, 6, 9) as the keeper's every_batches would be.
  auto due = [](std::uint64_t batches) { return batches % 3 == 0; };
  const auto plain = run_fifo(false, false, 5, due);
  const auto ahead = run_fifo(true, false, 5, due);
  // Without prefetch the hook runs at every boundary.
  CHECK(plain.boundary_batches == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  // With it, only where nothing is held. Step 3's boundary holds batch 4 and
  // finds a checkpoint due: batch 4 is trained at once (no draw), the hook
  // runs at 4; the trainer then refills (5 held, 6 asked for) and so on.
  CHECK(ahead.boundary_batches == std::vector<std::uint64_t>{4, 7, 10});
  CHECK(ahead.summary["batches"] == 10);
  CHECK(ahead.batches == plain.batches);
  CHECK(ahead.summary["weights_checksum"] == plain.summary["weights_checksum"]);
}

TEST_CASE("prefetch: a buffer restart with a batch held and a request in flight loses and "
          "repeats nothing") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  const auto rs = buffer_settings_();
  auto ts = trainer_settings_();
  ts.prefetch = true;
  auto sup = spawn_training_tree(sys, rs, ts, recording_steering);
  const auto trainer = lookup(self, sup, "trainer");
  const auto old_sink = lookup(self, sup, "sink");
  REQUIRE(trainer);
  auto trainer_batches = [&] {
    return ask_json(self, trainer, train_atom::value)["batches"].get<std::uint64_t>();
  };
  auto drawn = [&](const caf::actor& sink) {
    return ask_json(self, sink, buffer_atom::value)["batches"].get<std::uint64_t>();
  };

  // Three batches drawn: two trained, the third held, the fourth asked for.
  store(self, old_sink, 1, 3 * batch);
  REQUIRE(wait_until(trainer_batches, 2) == 2);
  REQUIRE(wait_until([&] { return drawn(old_sink); }, 3) == 3);
  std::this_thread::sleep_for(200ms);
  CHECK(trainer_batches() == 2);  // the third waits for the next batch

  // The buffer dies with the request for the fourth in it.
  caf::anon_send_exit(old_sink, caf::exit_reason::kill);
  const auto new_sink = wait_for_new(self, sup, "sink", old_sink);
  REQUIRE(new_sink != old_sink);
  store(self, new_sink, 2, 2 * batch);
  // Both new batches drawn once each (one request re-sent, not two); the
  // held third trained when the first of them arrived.
  CHECK(wait_until([&] { return drawn(new_sink); }, 2) == 2);
  CHECK(wait_until(trainer_batches, 4) == 4);
  // The end of the buffer with the fifth held: it is trained, then training ends.
  self->send(caf::actor_cast<reservoir_actor>(new_sink), production_over_atom::value);
  nlohmann::json summary;
  self->request(caf::actor_cast<trainer_actor>(trainer), 120s, await_training_atom::value)
      .receive([&](const std::string& s) { summary = nlohmann::json::parse(s); },
               [](const caf::error& e) { FAIL("await_training: " << caf::to_string(e)); });
  CHECK(summary["batches"] == 5);
  CHECK(summary["samples_seen"] == 5 * batch);
  CHECK(drawn(new_sink) == 2);
  CHECK(lookup(self, sup, "trainer") == trainer);
  // Sim 1's 12 steps then sim 2's 8, each once, in store order (FIFO).
  nlohmann::json order;
  const auto steering = caf::actor_cast<steering_actor>(lookup(self, sup, "steering"));
  for (int i = 0; i < 500; ++i) {
    self->request(steering, 10s, steering_atom::value)
        .receive([&](const std::string& s) { order = nlohmann::json::parse(s); },
                 [](const caf::error& e) { FAIL("steering: " << caf::to_string(e)); });
    if (order.size() >= 5) break;
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(order.size() == 5);
  std::vector<std::pair<int, int>> flat;
  for (const auto& b : order)
    for (const auto& s : b) flat.emplace_back(s[0].get<int>(), s[1].get<int>());
  std::vector<std::pair<int, int>> expected;
  for (int t = 0; t < 12; ++t) expected.emplace_back(1, t);
  for (int t = 0; t < 8; ++t) expected.emplace_back(2, t);
  CHECK(flat == expected);

  self->send_exit(sup, caf::exit_reason::user_shutdown);
}
