// The reservoir actor with a real actor system: stores become samples, a
// store the buffer cannot take is answered only once a draw makes room, a
// batch request is answered only once the watermark is reached, and after
// production_over the buffer drains to a `last` batch.
#include <doctest/doctest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/reservoir/reservoir.hpp"

using namespace melissa;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t target_field = 1;
constexpr std::uint64_t field_size = 4;

// Field values of (sim, step): sim * 100 + step + i / 4.
template <class T>
step_sample make_step(std::uint32_t sim, std::uint32_t step, std::uint32_t field = target_field,
                      std::uint64_t count = field_size) {
  step_sample s;
  s.sim_id = sim;
  s.time_step = step;
  s.field_id = field;
  s.data_type = sizeof(T) == 4 ? wire::dtype::f32 : wire::dtype::f64;
  s.count = count;
  auto bytes = std::make_shared<payload_bytes>(count * sizeof(T), 0);
  for (std::uint64_t i = 0; i < count; ++i) {
    const T v = static_cast<T>(sim * 100 + step + i / 4.0);
    std::memcpy(bytes->data() + i * sizeof(T), &v, sizeof(T));
  }
  s.payload = std::move(bytes);
  return s;
}

// Two parameters in [0, 10] and [0, 1]; simulation `sim` has (sim, 0.5).
// Simulation 99 is unknown.
reservoir_settings settings(buffer_policy policy, std::size_t capacity, std::size_t threshold) {
  reservoir_settings rs;
  rs.buffer = {policy, capacity, threshold, 1};
  rs.field_id = target_field;
  rs.encoder.lo = {0, 0};
  rs.encoder.hi = {10, 1};
  rs.encoder.time_scale = 10;
  rs.parameters_of = [](std::uint32_t sim) -> std::vector<double> {
    if (sim == 99) throw std::out_of_range("no simulation 99");
    return {static_cast<double>(sim), 0.5};
  };
  return rs;
}

bool store(caf::scoped_actor& self, const reservoir_actor& res, step_sample s) {
  bool stored = false;
  self->request(res, caf::infinite, store_atom_v, std::move(s))
      .receive([&](bool ok) { stored = ok; }, [](const caf::error& e) { FAIL(caf::to_string(e)); });
  return stored;
}

caf::error store_error(caf::scoped_actor& self, const reservoir_actor& res, step_sample s) {
  caf::error err;
  self->request(res, caf::infinite, store_atom_v, std::move(s))
      .receive([](bool) { FAIL("stored"); }, [&](caf::error& e) { err = std::move(e); });
  return err;
}

training_batch_ptr batch(caf::scoped_actor& self, const reservoir_actor& res, std::uint32_t n) {
  training_batch_ptr b;
  self->request(res, caf::infinite, batch_atom_v, n)
      .receive([&](const training_batch_ptr& x) { b = x; },
               [](const caf::error& e) { FAIL(caf::to_string(e)); });
  return b;
}

nlohmann::json buffer_json(caf::scoped_actor& self, const reservoir_actor& res) {
  nlohmann::json j;
  self->request(res, caf::infinite, buffer_atom_v)
      .receive([&](const std::string& s) { j = nlohmann::json::parse(s); },
               [](const caf::error& e) { FAIL(caf::to_string(e)); });
  return j;
}

// True if nothing arrives in the scoped actor's mailbox for `wait`.
bool silent_for(caf::scoped_actor& self, std::chrono::milliseconds wait) {
  bool silent = true;
  self->receive([&](caf::message&) { silent = false; }, caf::after(wait) >> [] {});
  return silent;
}

}  // namespace

TEST_CASE("reservoir actor: a blocked store is released by a draw") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto res = spawn_reservoir(sys, settings(buffer_policy::reservoir, 2, 0));

  CHECK(store(self, res, make_step<float>(3, 0)));
  CHECK(store(self, res, make_step<float>(3, 1)));
  // A step of another field is acknowledged and not stored.
  CHECK(store(self, res, make_step<float>(3, 0, 7)));

  // Full of unseen samples: the third store's reply is withheld (backpressure).
  self->send(res, store_atom_v, make_step<float>(3, 2));
  CHECK(silent_for(self, 200ms));
  auto j = buffer_json(self, res);
  CHECK(j["pending_stores"] == 1);
  CHECK(j["population"] == 2);
  CHECK(j["unseen"] == 2);

  // A draw makes one sample seen, so it may be evicted: the store completes.
  auto b = batch(self, res, 1);
  REQUIRE(b);
  CHECK(b->size == 1);
  bool released = false;
  self->receive([&](bool ok) { released = ok; }, caf::after(5s) >> [] { FAIL("store not released"); });
  CHECK(released);

  j = buffer_json(self, res);
  CHECK(j["kind"] == "reservoir");
  CHECK(j["policy"] == "reservoir");
  CHECK(j["capacity"] == 2);
  CHECK(j["inserts"] == 3);
  CHECK(j["evictions"] == 1);
  CHECK(j["population"] == 2);
  CHECK(j["unseen"] == 2);
  CHECK(j["pending_stores"] == 0);
  CHECK(j["ignored_steps"] == 1);
  CHECK(j["batches"] == 1);
  // The evicted sample was drawn once, the two stored ones never.
  CHECK(j["repetitions"]["histogram"] == nlohmann::json::array({2, 1}));
  self->send_exit(res, caf::exit_reason::user_shutdown);
}

TEST_CASE("reservoir actor: a batch request waits for the watermark; rows are encoded") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto res = spawn_reservoir(sys, settings(buffer_policy::fifo, 10, 0));

  self->send(res, batch_atom_v, std::uint32_t{2});
  CHECK(silent_for(self, 200ms));
  CHECK(store(self, res, make_step<float>(4, 3)));
  CHECK(silent_for(self, 100ms));  // one sample: not a batch of 2 yet
  CHECK(store(self, res, make_step<double>(6, 5)));  // f64 is converted
  training_batch_ptr b;
  self->receive([&](const training_batch_ptr& x) { b = x; },
                caf::after(5s) >> [] { FAIL("no batch"); });
  REQUIRE(b);
  CHECK(b->size == 2);
  CHECK_FALSE(b->last);
  CHECK(b->input_dim == 3);
  CHECK(b->output_dim == field_size);
  // Inputs: (sim / 10, 0.5, step / 10); targets sim * 100 + step + i / 4.
  const std::vector<float> inputs{0.4f, 0.5f, 0.3f, 0.6f, 0.5f, 0.5f};
  const std::vector<float> targets{403, 403.25, 403.5, 403.75, 605, 605.25, 605.5, 605.75};
  CHECK(b->inputs == inputs);
  CHECK(b->targets == targets);
  CHECK(b->sim_ids == std::vector<std::uint32_t>{4, 6});
  CHECK(b->time_steps == std::vector<std::uint32_t>{3, 5});

  std::string report;
  self->request(res, caf::infinite, report_atom_v)
      .receive([&](const std::string& s) { report = s; }, [](const caf::error&) {});
  CHECK(nlohmann::json::parse(report)["samples_drawn"] == 2);
  bool done = false;
  self->request(res, caf::infinite, sim_done_atom_v, std::uint32_t{4})
      .receive([&](bool ok) { done = ok; }, [](const caf::error&) {});
  CHECK(done);
  self->send_exit(res, caf::exit_reason::user_shutdown);
}

TEST_CASE("reservoir actor: threshold, production_over, drain, last batch") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto res = spawn_reservoir(sys, settings(buffer_policy::reservoir, 10, 5));

  for (std::uint32_t step = 0; step < 3; ++step) CHECK(store(self, res, make_step<float>(1, step)));
  self->send(res, batch_atom_v, std::uint32_t{2});
  CHECK(silent_for(self, 200ms));  // 3 < threshold 5

  // End of production lifts the threshold: the waiting request is answered.
  self->send(res, production_over_atom_v);
  training_batch_ptr b;
  self->receive([&](const training_batch_ptr& x) { b = x; },
                caf::after(5s) >> [] { FAIL("no batch"); });
  REQUIRE(b);
  CHECK(b->size == 2);
  CHECK(b->sim_ids == std::vector<std::uint32_t>{1, 1});
  CHECK(b->time_steps[0] != b->time_steps[1]);  // drained: drawn without replacement

  b = batch(self, res, 2);
  REQUIRE(b);
  CHECK(b->size == 1);  // the partial last batch
  CHECK_FALSE(b->last);
  b = batch(self, res, 2);
  REQUIRE(b);
  CHECK(b->last);
  CHECK(b->size == 0);
  auto j = buffer_json(self, res);
  CHECK(j["exhausted"] == true);
  CHECK(j["production_over"] == true);
  CHECK(j["repetitions"]["histogram"] == nlohmann::json::array({0, 3}));
  self->send_exit(res, caf::exit_reason::user_shutdown);
}

TEST_CASE("reservoir actor: bad steps and requests are errors, not crashes") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto res = spawn_reservoir(sys, settings(buffer_policy::firo, 10, 0));

  CHECK(store(self, res, make_step<float>(1, 0)));
  CHECK(store_error(self, res, make_step<float>(1, 1, target_field, 3)));  // size changed
  CHECK(store_error(self, res, make_step<float>(99, 0)));                   // no parameters
  auto text = make_step<float>(1, 2);
  text.data_type = wire::dtype::text;
  CHECK(store_error(self, res, std::move(text)));
  auto truncated = make_step<float>(1, 3);
  truncated.count = field_size + 1;
  CHECK(store_error(self, res, std::move(truncated)));

  bool refused = false;
  self->request(res, caf::infinite, batch_atom_v, std::uint32_t{0})
      .receive([](const training_batch_ptr&) { FAIL("batch of 0"); },
               [&](const caf::error&) { refused = true; });
  CHECK(refused);
  CHECK(buffer_json(self, res)["inserts"] == 1);
  CHECK(store(self, res, make_step<float>(1, 4)));  // still alive
  CHECK_THROWS_AS(spawn_reservoir(sys, settings(buffer_policy::fifo, 0, 0)), std::invalid_argument);
  self->send_exit(res, caf::exit_reason::user_shutdown);
}

TEST_CASE("reservoir actor: a simulation's steps are encoded with the parameters its table owner sent") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto res = spawn_reservoir(sys, settings(buffer_policy::fifo, 10, 0));
  // Breed changed simulation 4 (design: (4, 0.5)) before its submission;
  // simulation 99 is not in parameters_of but was sent too.
  self->send(res, set_params_atom_v, std::uint32_t{4}, std::vector<double>{8.0, 0.25});
  self->send(res, set_params_atom_v, std::uint32_t{99}, std::vector<double>{2.0, 1.0});
  CHECK(store(self, res, make_step<float>(4, 3)));
  CHECK(store(self, res, make_step<float>(99, 1)));
  CHECK(store(self, res, make_step<float>(6, 5)));  // unchanged: the design's row
  const auto b = batch(self, res, 3);
  REQUIRE(b);
  REQUIRE(b->size == 3);
  // Inputs (p0 / 10, p1, step / 10), in store order (fifo).
  const std::vector<float> inputs{0.8f, 0.25f, 0.3f, 0.2f, 1.0f, 0.1f, 0.6f, 0.5f, 0.5f};
  CHECK(b->inputs == inputs);
  self->send_exit(res, caf::exit_reason::user_shutdown);
}

TEST_CASE("reservoir actor: on_sim_done gets the distinct steps of the training field received") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto heard = std::make_shared<std::vector<std::pair<std::uint32_t, std::uint32_t>>>();
  auto mutex = std::make_shared<std::mutex>();
  auto rs = settings(buffer_policy::fifo, 100, 1);
  rs.on_sim_done = [heard, mutex](std::uint32_t sim, std::uint32_t steps) {
    std::lock_guard<std::mutex> lock(*mutex);
    heard->emplace_back(sim, steps);
  };
  auto res = spawn_reservoir(sys, rs);
  for (std::uint32_t step = 0; step < 3; ++step) CHECK(store(self, res, make_step<float>(4, step)));
  CHECK(store(self, res, make_step<float>(4, 1)));                    // a retry's duplicate: once
  CHECK(store(self, res, make_step<float>(4, 7, target_field + 1)));  // another field: not counted
  CHECK(store(self, res, make_step<float>(5, 0)));
  CHECK(store_error(self, res, make_step<float>(5, 1, target_field, 3)));  // refused (size): not counted
  auto done = [&](std::uint32_t sim) {
    self->request(res, caf::infinite, sim_done_atom_v, sim)
        .receive([](bool) {}, [](const caf::error& e) { FAIL(caf::to_string(e)); });
  };
  done(4);
  done(5);
  done(6);  // sent nothing
  done(4);  // again (a late duplicate sim_done): nothing left to count
  std::lock_guard<std::mutex> lock(*mutex);
  CHECK(*heard == std::vector<std::pair<std::uint32_t, std::uint32_t>>{{4, 3}, {5, 1}, {6, 0}, {4, 0}});
  self->send_exit(res, caf::exit_reason::user_shutdown);
}

TEST_CASE("reservoir actor: the checkpoint cut holds every step received, pending stores included") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto rs = settings(buffer_policy::fifo, 2, 1);
  struct cut {
    std::mutex mutex;
    std::vector<buffer_snapshot> buffers;
    std::vector<step_log> logs;
    std::vector<bool> over;
  };
  auto cuts = std::make_shared<cut>();
  rs.at_batch_request = [cuts](const std::function<buffer_snapshot()>& snapshot, const step_log& received,
                               bool production_over) {
    std::lock_guard<std::mutex> lock(cuts->mutex);
    cuts->buffers.push_back(snapshot());
    cuts->logs.push_back(received);
    cuts->over.push_back(production_over);
  };
  auto res = spawn_reservoir(sys, rs);
  CHECK(store(self, res, make_step<float>(3, 0)));
  CHECK(store(self, res, make_step<float>(3, 0, 7)));  // another field: received, not stored
  CHECK(store(self, res, make_step<float>(3, 1)));
  self->send(res, store_atom_v, make_step<float>(3, 2));  // full: pending
  CHECK(silent_for(self, 200ms));
  // The trainer's checkpoint while its request waits: the cut, now.
  self->send(res, checkpoint_atom_v);
  CHECK(buffer_json(self, res)["pending_stores"] == 1);  // after the cut (same mailbox order)
  {
    std::lock_guard<std::mutex> lock(cuts->mutex);
    REQUIRE(cuts->buffers.size() == 1);
    const auto& b = cuts->buffers[0];
    CHECK(b.samples.size() == 2);
    REQUIRE(b.pending.size() == 1);
    CHECK(b.pending[0].time_step == 2);
    const auto& log = cuts->logs[0];
    CHECK(log.total_stored() == 4);  // steps 0, 1, 2 of the field and step 0 of field 7
    CHECK(log.contains(3, target_field, 2));
    CHECK(log.contains(3, 7, 0));
    CHECK(log.simulations().at(3).attempts.count(0) == 1);
    CHECK_FALSE(cuts->over[0]);
  }
  // A batch request cuts first, then draws (which releases the pending store).
  auto b = batch(self, res, 2);
  REQUIRE(b);
  self->receive([](bool) {}, caf::after(5s) >> [] { FAIL("store not released"); });
  self->request(res, caf::infinite, sim_done_atom_v, std::uint32_t{3})
      .receive([](bool) {}, [](const caf::error& e) { FAIL(caf::to_string(e)); });
  self->send(res, production_over_atom_v);
  CHECK(buffer_json(self, res)["production_over"] == true);
  {
    std::lock_guard<std::mutex> lock(cuts->mutex);
    REQUIRE(cuts->buffers.size() == 3);
    CHECK(cuts->buffers[1].samples.size() == 2);  // before the draw
    CHECK(cuts->buffers[1].pending.size() == 1);
    CHECK(cuts->over[2]);  // production over: the final log
    CHECK(cuts->logs[2].simulations().at(3).done);
    CHECK(cuts->logs[2].total_stored() == 4);
  }
  self->send_exit(res, caf::exit_reason::user_shutdown);
}

TEST_CASE("reservoir actor: restored, it starts from the checkpoint's buffer, pending stores and log") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  // The checkpointed buffer: FIFO of 2, full with steps 0 and 1 of sim 3,
  // step 2 pending.
  auto original = make_training_buffer({buffer_policy::fifo, 2, 1, 1});
  std::vector<training_sample> samples;
  for (std::uint32_t t = 0; t < 3; ++t) {
    training_sample s;
    s.sim_id = 3;
    s.time_step = t;
    s.input = {0.3f, 0.5f, 0.1f * t};
    s.target = std::make_shared<const std::vector<float>>(field_size, 1.0f * t);
    samples.push_back(s);
  }
  original->put(training_sample(samples[0]));
  original->put(training_sample(samples[1]));
  auto rs = settings(buffer_policy::reservoir, 50, 10);  // the checkpoint's settings win
  rs.restored = std::make_shared<restored_buffer>();
  rs.restored->buffer = restore_training_buffer(original->snapshot());
  rs.restored->pending = {samples[2]};
  for (std::uint32_t t = 0; t < 3; ++t) rs.restored->received.insert(3, target_field, t);
  std::shared_ptr<step_log> seen = std::make_shared<step_log>();
  rs.at_batch_request = [seen](const std::function<buffer_snapshot()>&, const step_log& received, bool) {
    *seen = received;
  };
  auto res = spawn_reservoir(sys, rs);
  auto j = buffer_json(self, res);
  CHECK(j["policy"] == "fifo");
  CHECK(j["population"] == 2);
  CHECK(j["pending_stores"] == 1);
  auto b = batch(self, res, 2);  // the draw lets the pending store in
  REQUIRE(b);
  CHECK(b->time_steps == std::vector<std::uint32_t>{0, 1});
  CHECK(seen->total_stored() == 3);  // the restored log
  j = buffer_json(self, res);
  CHECK(j["population"] == 1);
  CHECK(j["pending_stores"] == 0);
  CHECK(j["inserts"] == 3);
  b = batch(self, res, 1);
  REQUIRE(b);
  CHECK(b->time_steps == std::vector<std::uint32_t>{2});
  self->send_exit(res, caf::exit_reason::user_shutdown);
}
