// The trainer actor under a supervisor, with its real training buffer (the
// reservoir actor): when the buffer or the steering is restarted, the trainer
// hears it (restarted_atom) and goes on with the new one. Before, a restarted
// buffer left the trainer waiting forever on a batch request the dead buffer
// had taken, and its losses went to a dead steering actor.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
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
  auto bytes = std::make_shared<std::vector<char>>(field_size * sizeof(float));
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

}  // namespace

TEST_CASE("a restarted buffer and steering: the trainer draws from the new buffer and "
          "reports losses to the new steering") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  const auto rs = buffer_settings_();
  const auto ts = trainer_settings_();
  std::vector<child_spec> tree;
  tree.push_back({"sink", restart_policy::permanent,
                  [rs](caf::actor_system& s, const child_lookup&) {
                    return caf::actor_cast<caf::actor>(spawn_reservoir(s, rs));
                  },
                  {}});
  tree.push_back({"steering", restart_policy::permanent,
                  [](caf::actor_system& s, const child_lookup&) {
                    return caf::actor_cast<caf::actor>(s.spawn(counting_steering));
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
  auto sup = spawn_supervisor(sys, "test", std::move(tree));

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
