// Rank 0's coordinator as the owner of the simulation table, with stand-ins
// for the launcher, the aggregator, the training buffer, the trainer, the
// acceptor and the steering: it asks for every simulation once registered,
// introduces itself to the steering, and is Breed's only path to the launcher.
#include <doctest/doctest.h>

#include <chrono>
#include <functional>
#include <tuple>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "actors/coordinator/coordinator.hpp"

using namespace melissa;

namespace {

// What the stand-ins heard, shared with the test's thread.
struct heard {
  std::mutex mutex;
  std::vector<std::pair<std::uint32_t, std::string>> run_sims;
  std::vector<std::pair<std::uint32_t, std::string>> set_params;  // asked of the launcher
  int set_params_messages = 0;  // messages that carried them
  std::vector<std::pair<std::uint32_t, std::vector<double>>> buffer_params;
  int owner_introductions = 0;
  std::uint32_t highest_submitted = 0;
  // restored_atom: (dir, batch, complete), and how many run_sims came before it.
  std::vector<std::tuple<std::string, std::uint64_t, std::vector<std::uint32_t>>> restored;
  std::size_t run_sims_before_restored = 0;
  std::vector<simulation_table_snapshot> published;  // publish_table
};

// The launcher: changes of simulations >= 1 hold; simulation 0 is submitted.
launcher_server_actor::behavior_type fake_launcher(std::shared_ptr<heard> h) {
  auto lock = [h] { return std::lock_guard<std::mutex>(h->mutex); };
  return {
      [](register_atom, std::uint32_t, const std::string&, const server_rank_actor&) {
        return std::string("ok");
      },
      [h](run_sim_atom, std::uint32_t sim, const std::string& params) {
        std::lock_guard<std::mutex> l(h->mutex);
        h->run_sims.emplace_back(sim, params);
      },
      [h](submissions_atom) {
        std::lock_guard<std::mutex> l(h->mutex);
        return std::make_tuple(h->highest_submitted, std::uint32_t{2});
      },
      [h](set_params_atom, const std::vector<std::uint32_t>& sims,
          const std::vector<std::string>& params) {
        std::lock_guard<std::mutex> l(h->mutex);
        ++h->set_params_messages;
        std::vector<std::uint32_t> changed;
        for (std::size_t i = 0; i < sims.size(); ++i) {
          h->set_params.emplace_back(sims[i], params.at(i));
          if (sims[i] >= 1) changed.push_back(sims[i]);
        }
        return changed;
      },
      [](opened_atom, std::uint32_t, std::uint32_t) {},
      [](complete_atom, std::uint32_t, std::uint32_t) {},
      [](timeout_atom, std::uint32_t, std::uint32_t) {},
      [](progress_atom, std::uint32_t, std::uint64_t, std::uint64_t, std::uint64_t) {},
      [](rank_finished_atom, std::uint32_t, const std::string&) {},
      [](sink_failed_atom, std::uint32_t, const std::string&) {},
      [h](restored_atom, const std::string& dir, std::uint64_t batch,
          const std::vector<std::uint32_t>& complete) {
        std::lock_guard<std::mutex> l(h->mutex);
        h->run_sims_before_restored = h->run_sims.size();
        h->restored.emplace_back(dir, batch, complete);
      },
  };
}

aggregator_actor::behavior_type fake_aggregator() {
  return {
      [](restarted_atom, const std::string&, const caf::actor&) {},
      [](const step_sample&) { return step_outcome::stored; },
      [](opened_atom, std::uint32_t, std::uint32_t, const std::string&) { return session_admission{}; },
      [](closed_atom, std::uint32_t, std::uint32_t, session_end) { return std::string(); },
      [](ticket_atom, std::uint32_t, std::uint32_t, const std::string&) {},
      [](revoke_atom, std::uint32_t, std::uint32_t) {},
      [](stats_atom) { return ingest_stats{}; },
      [](activity_atom) { return std::vector<sim_activity>{}; },
      [](report_atom) { return std::string("{}"); },
  };
}

reservoir_actor::behavior_type fake_buffer(std::shared_ptr<heard> h) {
  return {
      [](store_atom, const step_sample&) { return true; },
      [](sim_done_atom, std::uint32_t) { return true; },
      [](production_over_atom) {},
      [](report_atom) { return std::string("{}"); },
      [](batch_atom, std::uint32_t) { return training_batch_ptr{}; },
      [](buffer_atom) { return std::string("{}"); },
      [h](set_params_atom, std::uint32_t sim, const std::vector<double>& values) {
        std::lock_guard<std::mutex> l(h->mutex);
        h->buffer_params.emplace_back(sim, values);
      },
      [](checkpoint_atom) {},
  };
}

trainer_actor::behavior_type fake_trainer() {
  return {
      [](restarted_atom, const std::string&, const caf::actor&) {},
      [](next_atom) {},
      [](train_atom) { return std::string("{}"); },
      [](await_training_atom) { return std::string("{}"); },
      [](checkpoint_atom, const std::string& reason) {
        return std::string(R"({"path": "/ckpt/)") + reason + R"(", "batch": 7})";
      },
      [](tick_atom) {},
  };
}

acceptor_actor::behavior_type fake_acceptor() {
  return {
      [](restarted_atom, const std::string&, const caf::actor&) {},
      [](port_atom) { return std::uint16_t{5555}; },
  };
}

steering_actor::behavior_type fake_steering(std::shared_ptr<heard> h) {
  return {
      [](losses_atom, const std::vector<std::uint32_t>&, const std::vector<std::uint32_t>&,
         const std::vector<float>&, double, double) {},
      [](sim_done_atom, std::uint32_t, std::uint32_t) {},
      [](resample_atom, std::uint32_t, std::uint32_t, std::uint32_t) {},
      [](steering_atom) { return std::string("{}"); },
      [h](owner_atom, const simulation_owner_actor&) {
        std::lock_guard<std::mutex> l(h->mutex);
        ++h->owner_introductions;
      },
  };
}

// Waits (at most 5 s) until `done` holds under the lock.
template <class Pred>
bool eventually(const std::shared_ptr<heard>& h, Pred done) {
  for (int i = 0; i < 1000; ++i) {
    {
      std::lock_guard<std::mutex> l(h->mutex);
      if (done(*h)) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

struct rank0 {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  std::shared_ptr<heard> h = std::make_shared<heard>();
  coordinator_actor coordinator;
  simulation_owner_actor owner;

  explicit rank0(std::uint32_t rank = 0,
                 std::function<void(coordinator_settings&)> tweak = {}) {
    coordinator_settings s;
    s.rank = rank;
    s.host = "127.0.0.1";
    s.design = {{1, 2}, {3, 4}, {5.5, 6}};
    s.publish_table = [h = h](const simulation_table_snapshot& t) {
      std::lock_guard<std::mutex> l(h->mutex);
      h->published.push_back(t);
    };
    if (tweak) tweak(s);
    coordinator = spawn_coordinator(
        sys, s, sys.spawn(fake_aggregator), sys.spawn(fake_buffer, h),
        caf::actor_cast<rank_listener_actor>(self), sys.spawn(fake_acceptor),
        sys.spawn(fake_launcher, h), sys.spawn(fake_trainer), sys.spawn(fake_steering, h));
    owner = coordinator;
  }
  ~rank0() { self->send_exit(coordinator, caf::exit_reason::user_shutdown); }

  // One resampling's changes in one message: the ids changed.
  std::vector<std::uint32_t> set_many(std::vector<std::uint32_t> sims,
                                      std::vector<std::vector<double>> values) {
    std::vector<std::uint32_t> out;
    self->request(owner, caf::infinite, set_params_atom_v, std::move(sims), std::move(values))
        .receive([&](const std::vector<std::uint32_t>& changed) { out = changed; },
                 [](const caf::error&) { FAIL("no answer"); });
    return out;
  }
  bool set(std::uint32_t sim, std::vector<double> values) {
    return set_many({sim}, {std::move(values)}) == std::vector<std::uint32_t>{sim};
  }
  std::vector<double> parameters(std::uint32_t sim) {
    std::vector<double> out;
    self->request(owner, caf::infinite, parameters_atom_v, sim)
        .receive([&](const std::vector<double>& v) { out = v; },
                 [](const caf::error&) { FAIL("no parameters"); });
    return out;
  }
};

}  // namespace

TEST_CASE("coordinator: rank 0 asks the launcher for every simulation of its table once registered") {
  rank0 r;
  REQUIRE(eventually(r.h, [](heard& x) { return x.run_sims.size() == 3; }));
  std::lock_guard<std::mutex> l(r.h->mutex);
  CHECK(r.h->run_sims[0] == std::make_pair(std::uint32_t{0}, std::string("1,2")));
  CHECK(r.h->run_sims[2] == std::make_pair(std::uint32_t{2}, std::string("5.5,6")));
}

TEST_CASE("coordinator: rank 0 introduces itself to the steering as the table's owner") {
  rank0 r;
  CHECK(eventually(r.h, [](heard& x) { return x.owner_introductions == 1; }));
}

TEST_CASE("coordinator: an accepted change reaches the launcher, the table and the training buffer") {
  rank0 r;
  CHECK(r.set(2, {7, 8}));
  CHECK(r.parameters(2) == std::vector<double>{7, 8});
  CHECK(r.parameters(1) == std::vector<double>{3, 4});
  REQUIRE(eventually(r.h, [](heard& x) { return x.buffer_params.size() == 1; }));
  std::lock_guard<std::mutex> l(r.h->mutex);
  CHECK(r.h->set_params == std::vector<std::pair<std::uint32_t, std::string>>{{2, "7,8"}});
  CHECK(r.h->buffer_params[0].first == 2);
  CHECK(r.h->buffer_params[0].second == std::vector<double>{7, 8});
}

TEST_CASE("coordinator: one resampling's changes reach the launcher as one message") {
  rank0 r;
  // 0 is refused by the launcher (submitted), 1 and 2 change; 7 is not in the design.
  const auto changed = r.set_many({0, 1, 2, 7}, {{9, 9}, {3.5, 4.5}, {7, 8}, {1, 1}});
  CHECK(changed == std::vector<std::uint32_t>{1, 2});
  CHECK(r.parameters(1) == std::vector<double>{3.5, 4.5});
  CHECK(r.parameters(2) == std::vector<double>{7, 8});
  CHECK(r.parameters(0) == std::vector<double>{1, 2});
  REQUIRE(eventually(r.h, [](heard& x) { return x.buffer_params.size() == 2; }));
  std::lock_guard<std::mutex> l(r.h->mutex);
  CHECK(r.h->set_params_messages == 1);
  CHECK(r.h->set_params == std::vector<std::pair<std::uint32_t, std::string>>{
                               {0, "9,9"}, {1, "3.5,4.5"}, {2, "7,8"}});
}

TEST_CASE("coordinator: a change the launcher refuses marks the simulation submitted; it is not asked again") {
  rank0 r;
  CHECK_FALSE(r.set(0, {9, 9}));
  CHECK_FALSE(r.set(0, {9, 9}));
  CHECK(r.parameters(0) == std::vector<double>{1, 2});
  std::lock_guard<std::mutex> l(r.h->mutex);
  CHECK(r.h->set_params.size() == 1);
  CHECK(r.h->buffer_params.empty());
}

TEST_CASE("coordinator: the submission view comes from the launcher and covers the table") {
  rank0 r;
  {
    std::lock_guard<std::mutex> l(r.h->mutex);
    r.h->highest_submitted = 1;
  }
  std::uint32_t k = 0, m = 0, count = 0;
  r.self->request(r.owner, caf::infinite, submissions_atom_v)
      .receive([&](std::uint32_t a, std::uint32_t b, std::uint32_t c) { k = a, m = b, count = c; },
               [](const caf::error&) { FAIL("no view"); });
  CHECK(k == 1);
  CHECK(m == 2);
  CHECK(count == 3);
  CHECK_FALSE(r.set(1, {0, 0}));  // submitted as far as rank 0 knows: the launcher is not asked
  std::lock_guard<std::mutex> l(r.h->mutex);
  CHECK(r.h->set_params.empty());
}

TEST_CASE("coordinator: a rank other than 0 owns no table and refuses changes") {
  rank0 r(1);
  CHECK_FALSE(r.set(2, {7, 8}));
  std::lock_guard<std::mutex> l(r.h->mutex);
  CHECK(r.h->set_params.empty());
  CHECK(r.h->run_sims.empty());
}

TEST_CASE("coordinator: restored, rank 0 says so, then asks only for what is not complete") {
  // sim 0 complete, 1 submitted (running when the checkpoint was cut), 2 failed,
  // 3 pending: 1 and 3 are asked for, after restored_atom.
  rank0 r(0, [](coordinator_settings& s) {
    s.design = {{1, 2}, {3, 4}, {5.5, 6}, {7, 8}};
    s.restored_dir = "/out/checkpoints/ckpt-00000004-batch-60";
    s.restored_batch = 60;
    s.restored_complete = {0};
    simulation_table_snapshot t;
    t.parameters = {{1, 2}, {3, 4.25}, {5.5, 6}, {7, 8}};
    t.states = {sim_state::complete, sim_state::submitted, sim_state::failed, sim_state::pending};
    t.changes = {0, 1, 0, 0};
    s.restored_table = t;
  });
  REQUIRE(eventually(r.h, [](heard& x) { return x.run_sims.size() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // nothing more comes
  std::lock_guard<std::mutex> l(r.h->mutex);
  REQUIRE(r.h->restored.size() == 1);
  CHECK(std::get<0>(r.h->restored[0]) == "/out/checkpoints/ckpt-00000004-batch-60");
  CHECK(std::get<1>(r.h->restored[0]) == 60);
  CHECK(std::get<2>(r.h->restored[0]) == std::vector<std::uint32_t>{0});
  CHECK(r.h->run_sims_before_restored == 0);
  REQUIRE(r.h->run_sims.size() == 2);
  // Breed's change of sim 1 is kept.
  CHECK(r.h->run_sims[0] == std::make_pair(std::uint32_t{1}, std::string("3,4.25")));
  CHECK(r.h->run_sims[1] == std::make_pair(std::uint32_t{3}, std::string("7,8")));
  // The checkpoints' copy of the table is the restored one.
  REQUIRE_FALSE(r.h->published.empty());
  CHECK(r.h->published.front().states[0] == sim_state::complete);
  CHECK(r.h->published.front().parameters[1] == std::vector<double>{3, 4.25});
}

TEST_CASE("coordinator: checkpoint_atom goes to the trainer and its answer comes back") {
  rank0 r;
  std::string answer;
  r.self->request(caf::actor_cast<server_rank_actor>(r.coordinator), std::chrono::seconds(5),
                  checkpoint_atom_v, std::string("shell"))
      .receive([&](const std::string& a) { answer = a; }, [](const caf::error&) { FAIL("no answer"); });
  CHECK(answer == R"({"path": "/ckpt/shell", "batch": 7})");
}
