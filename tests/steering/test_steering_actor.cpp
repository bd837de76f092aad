// The steering actor with a real actor system: losses messages count
// batches, every period it resamples the simulations past k + m and hands
// the new parameters to `apply`; the submission view may come synchronously
// or as a (resample_atom, k, m, count) message.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/steering/steering.hpp"

using namespace melissa;

namespace {

// What `apply` received, shared between the actor's thread and the test.
struct applied_log {
  std::mutex mutex;
  std::vector<parameter_changes> calls;

  std::vector<parameter_changes> get() {
    std::lock_guard<std::mutex> lock(mutex);
    return calls;
  }
};

steering_settings base_settings(std::shared_ptr<applied_log> log) {
  steering_settings s;
  s.breed.period = 3;
  s.breed.window = 10;
  s.breed.sigma = 0.05;
  s.breed.r_start = 0.5;
  s.breed.r_end = 0.5;
  s.breed.seed = 9;
  s.breed.bounds = {{100, 500}, {100, 500}};
  s.parameters_of = [](std::uint32_t sim) {
    return std::vector<double>{100.0 + sim, 500.0 - sim};
  };
  s.apply = [log](parameter_changes changes) {
    std::lock_guard<std::mutex> lock(log->mutex);
    log->calls.push_back(std::move(changes));
  };
  return s;
}

void send_losses(caf::scoped_actor& self, const steering_actor& steering, std::uint32_t sim) {
  self->send(steering, losses_atom::value, std::vector<std::uint32_t>{sim, sim + 1},
             std::vector<std::uint32_t>{0, 0}, std::vector<float>{1.0f, 3.0f}, 2.0, 1.0);
}

// A round trip: every message this test sent before has been handled.
nlohmann::json status(caf::scoped_actor& self, const steering_actor& steering) {
  nlohmann::json out;
  self->request(steering, caf::infinite, steering_atom::value)
      .receive([&](const std::string& s) { out = nlohmann::json::parse(s); },
               [](const caf::error&) { FAIL("status request failed"); });
  return out;
}

}  // namespace

TEST_CASE("steering actor: apply is called after P batches with ids >= k + m only") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto log = std::make_shared<applied_log>();
  auto settings = base_settings(log);
  settings.submissions = [] { return submission_view{4, 2, 12}; };  // k = 4, m = 2: ids 6..11
  auto steering = spawn_steering(sys, settings);

  // One step each; simulation 4 sent two, of which the trainer sees only step 0.
  for (std::uint32_t sim = 0; sim < 4; ++sim)
    self->send(steering, sim_done_atom::value, sim, std::uint32_t{1});
  self->send(steering, sim_done_atom::value, std::uint32_t{4}, std::uint32_t{2});
  send_losses(self, steering, 0);
  self->send(steering, losses_atom::value, std::vector<std::uint32_t>{2, 3, 4},
             std::vector<std::uint32_t>{0, 0, 0}, std::vector<float>{1.0f, 3.0f, 2.0f}, 2.0, 1.0);
  CHECK(status(self, steering)["batches"] == 2);
  CHECK(status(self, steering)["completed"] == 5);
  CHECK(log->get().empty());  // two batches: no resampling yet

  send_losses(self, steering, 1);
  auto st = status(self, steering);
  auto calls = log->get();
  REQUIRE(calls.size() == 1);
  REQUIRE(calls[0].size() == 6);
  for (std::size_t i = 0; i < calls[0].size(); ++i) {
    CHECK(calls[0][i].first == 6 + i);
    REQUIRE(calls[0][i].second.size() == 2);
    for (double v : calls[0][i].second) {
      CHECK(v >= 100.0);
      CHECK(v <= 500.0);
    }
  }
  CHECK(st["resamplings"] == 1);
  CHECK(st["simulations_resampled"] == 6);
  CHECK(st["provenance"].size() == 6);
  CHECK(st["provenance"][0]["sim"] == 6);
  CHECK(st["last_resampling_time"].is_number());
  CHECK(st["r"] == doctest::Approx(0.5));
  CHECK(st["sigma"] == doctest::Approx(0.05));
  // 0..3 fully seen; 4 (1 of its 2 steps seen) is not.
  CHECK(st["population_candidates"] == 4);
  REQUIRE(st["resampling_history"].size() == 1);
  CHECK(st["resampling_history"][0]["s"] == 1);
  CHECK(st["resampling_history"][0]["population"] == 4);
  CHECK(st["resampling_history"][0]["points"] == 6);
  CHECK(st["shrinks"].is_number());
  CHECK(st["fallbacks"].is_number());
  CHECK(st["provenance"][0]["resampling"] == 1);

  // Three more batches: a second resampling.
  for (std::uint32_t i = 0; i < 3; ++i) send_losses(self, steering, 0);
  status(self, steering);
  CHECK(log->get().size() == 2);
  self->send_exit(steering, caf::exit_reason::user_shutdown);
}

TEST_CASE("steering actor: nothing pending past k + m, no apply") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto log = std::make_shared<applied_log>();
  auto settings = base_settings(log);
  settings.submissions = [] { return submission_view{8, 4, 12}; };  // k + m = 12 = count
  auto steering = spawn_steering(sys, settings);
  self->send(steering, sim_done_atom::value, std::uint32_t{0}, std::uint32_t{1});
  for (int i = 0; i < 3; ++i) send_losses(self, steering, 0);
  auto st = status(self, steering);
  CHECK(log->get().empty());
  CHECK(st["resamplings"] == 0);
  CHECK(st["last_skip"] != "");
  CHECK(st["last_resampling_time"].is_null());
  self->send_exit(steering, caf::exit_reason::user_shutdown);
}

TEST_CASE("steering actor: asynchronous view through (resample_atom, k, m, count)") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto log = std::make_shared<applied_log>();
  auto settings = base_settings(log);
  auto requests = std::make_shared<std::atomic<int>>(0);
  // Stands for the coordinator: it answers the request with a message.
  settings.request_submissions = [requests](steering_actor steering) {
    ++*requests;
    caf::anon_send(steering, resample_atom::value, std::uint32_t{5}, std::uint32_t{3},
                   std::uint32_t{10});
  };
  auto steering = spawn_steering(sys, settings);
  for (std::uint32_t sim = 0; sim < 3; ++sim)
    self->send(steering, sim_done_atom::value, sim, std::uint32_t{1});
  for (int i = 0; i < 3; ++i) send_losses(self, steering, 0);
  // The answer arrives after the third batch: wait for apply.
  std::vector<parameter_changes> calls;
  for (int i = 0; i < 500 && calls.empty(); ++i) {
    status(self, steering);
    calls = log->get();
    if (calls.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE(calls.size() == 1);
  CHECK(*requests == 1);
  REQUIRE(calls[0].size() == 2);  // ids 8 and 9
  CHECK(calls[0][0].first == 8);
  CHECK(calls[0][1].first == 9);
  self->send_exit(steering, caf::exit_reason::user_shutdown);
}

TEST_CASE("steering actor: bad input is logged, not fatal") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto log = std::make_shared<applied_log>();
  auto settings = base_settings(log);
  settings.parameters_of = [](std::uint32_t sim) -> std::vector<double> {
    if (sim == 99) throw std::out_of_range("unknown simulation");
    return {200.0, 300.0};
  };
  auto steering = spawn_steering(sys, settings);
  self->send(steering, sim_done_atom::value, std::uint32_t{99}, std::uint32_t{1});
  self->send(steering, losses_atom::value, std::vector<std::uint32_t>{1, 2},
             std::vector<std::uint32_t>{0}, std::vector<float>{1.0f}, 1.0, 1.0);
  auto st = status(self, steering);
  CHECK(st["completed"] == 0);
  CHECK(st["batches"] == 0);
  self->send_exit(steering, caf::exit_reason::user_shutdown);

  steering_settings missing = base_settings(log);
  missing.apply = nullptr;
  CHECK_THROWS_AS(spawn_steering(sys, missing), std::invalid_argument);
  steering_settings bad = base_settings(log);
  bad.breed.window = 0;
  CHECK_THROWS_AS(spawn_steering(sys, bad), std::invalid_argument);
}

namespace {

// Stands for rank 0's coordinator, the simulation table's owner: answers
// where submissions stand (k = 4, m = 2, count 12), the parameters of every
// simulation, and takes changes of ids >= 6 (the others: submitted).
struct owner_log {
  std::mutex mutex;
  int submission_queries = 0;
  std::vector<std::uint32_t> parameter_queries;
  parameter_changes changes;
  int change_messages = 0;
};

simulation_owner_actor::behavior_type fake_owner(std::shared_ptr<owner_log> log) {
  return {
      [log](submissions_atom) {
        std::lock_guard<std::mutex> lock(log->mutex);
        ++log->submission_queries;
        return std::make_tuple(std::uint32_t{4}, std::uint32_t{2}, std::uint32_t{12});
      },
      [log](set_params_atom, const std::vector<std::uint32_t>& sims,
            const std::vector<std::vector<double>>& values) {
        std::lock_guard<std::mutex> lock(log->mutex);
        ++log->change_messages;
        std::vector<std::uint32_t> changed;
        for (std::size_t i = 0; i < sims.size(); ++i) {
          log->changes.emplace_back(sims[i], values.at(i));
          if (sims[i] >= 6) changed.push_back(sims[i]);
        }
        return changed;
      },
      [log](parameters_atom, std::uint32_t sim) {
        std::lock_guard<std::mutex> lock(log->mutex);
        log->parameter_queries.push_back(sim);
        return std::vector<double>{100.0 + sim, 500.0 - sim};
      },
  };
}

steering_settings owned_settings() {
  steering_settings s;
  s.breed.period = 3;
  s.breed.window = 10;
  s.breed.sigma = 0.05;
  s.breed.r_start = 0.5;
  s.breed.r_end = 0.5;
  s.breed.seed = 9;
  s.breed.bounds = {{100, 500}, {100, 500}};
  s.owned = true;  // no callbacks at all
  return s;
}

}  // namespace

TEST_CASE("steering actor: an owned steering goes through the simulation table's owner only") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto log = std::make_shared<owner_log>();
  auto owner = sys.spawn(fake_owner, log);
  auto steering = spawn_steering(sys, owned_settings());
  self->send(steering, owner_atom::value, owner);
  for (std::uint32_t sim = 0; sim < 4; ++sim)
    self->send(steering, sim_done_atom::value, sim, std::uint32_t{1});
  // Completions join the population once the owner answered.
  for (int i = 0; i < 500 && status(self, steering)["completed"] != 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(status(self, steering)["completed"] == 4);
  for (int i = 0; i < 3; ++i) send_losses(self, steering, 0);
  parameter_changes changes;
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard<std::mutex> lock(log->mutex);
      changes = log->changes;
    }
    if (changes.size() == 6) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::lock_guard<std::mutex> lock(log->mutex);
  CHECK(log->submission_queries == 1);
  CHECK(log->parameter_queries == std::vector<std::uint32_t>{0, 1, 2, 3});
  REQUIRE(changes.size() == 6);  // ids k + m = 6 .. 11
  for (std::size_t i = 0; i < changes.size(); ++i) CHECK(changes[i].first == 6 + i);
  CHECK(log->change_messages == 1);  // one resampling, one message
  self->send_exit(steering, caf::exit_reason::user_shutdown);
  self->send_exit(owner, caf::exit_reason::user_shutdown);
}

TEST_CASE("steering actor: an owned steering skips completions and resamplings until its owner arrives") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto steering = spawn_steering(sys, owned_settings());  // no callbacks: no throw
  self->send(steering, sim_done_atom::value, std::uint32_t{0}, std::uint32_t{1});
  for (int i = 0; i < 3; ++i) send_losses(self, steering, 0);
  auto st = status(self, steering);
  CHECK(st["completed"] == 0);
  CHECK(st["resamplings"] == 0);
  CHECK(st["batches"] == 3);
  self->send_exit(steering, caf::exit_reason::user_shutdown);
}
