// The supervisor utility with real CAF actors: one-for-one restarts, the
// restart notice to dependents, temporary children, and the intensity limit.
#include <doctest/doctest.h>

#include <caf/all.hpp>

#include "actors/supervisor/supervisor.hpp"

using namespace melissa;

namespace {

// A child that dies with an error when told "crash", echoes anything else.
caf::behavior crashable(caf::event_based_actor* self) {
  return {[self](const std::string& cmd) -> std::string {
    if (cmd == "crash") self->quit(caf::sec::runtime_error);
    return cmd;
  }};
}

// A child that counts the restart notices it receives.
caf::behavior watcher(caf::stateful_actor<int>* self) {
  return {
      [self](restarted_atom, const std::string&, caf::actor) { ++self->state; },
      [self](const std::string&) { return self->state; },
  };
}

child_spec spec(std::string name, restart_policy policy, std::vector<std::string> deps = {}) {
  const bool is_watcher = name == "watcher";
  return {std::move(name), policy,
          [is_watcher](caf::actor_system& sys, const child_lookup&) {
            return is_watcher ? sys.spawn(watcher) : sys.spawn(crashable);
          },
          std::move(deps)};
}

caf::actor lookup(caf::scoped_actor& self, const supervisor_actor& sup, const std::string& name) {
  caf::actor found;
  self->request(sup, caf::infinite, lookup_atom::value, name)
      .receive([&](const caf::actor& a) { found = a; }, [](const caf::error&) { FAIL("lookup"); });
  return found;
}

// Waits until the supervisor reports a live child under `name` other than `old`.
caf::actor wait_for_new(caf::scoped_actor& self, const supervisor_actor& sup,
                        const std::string& name, const caf::actor& old) {
  for (int i = 0; i < 200; ++i) {
    auto now = lookup(self, sup, name);
    if (now != old) return now;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return old;
}

}  // namespace

TEST_CASE("a crashed permanent child is restarted and its dependents are told") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto sup = spawn_supervisor(sys, "test",
                              {spec("worker", restart_policy::permanent),
                               spec("watcher", restart_policy::permanent, {"worker"})});
  auto first = lookup(self, sup, "worker");
  REQUIRE(first);
  self->send(first, std::string("crash"));
  auto second = wait_for_new(self, sup, "worker", first);
  CHECK(second);
  CHECK(second != first);
  // The new worker answers.
  self->request(second, caf::infinite, std::string("ping"))
      .receive([](const std::string& r) { CHECK(r == "ping"); }, [](const caf::error&) { FAIL("ping"); });
  int notices = -1;
  self->request(lookup(self, sup, "watcher"), caf::infinite, std::string("count"))
      .receive([&](int n) { notices = n; }, [](const caf::error&) {});
  CHECK(notices == 1);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("a temporary child is not restarted") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto sup = spawn_supervisor(sys, "test", {spec("proxy", restart_policy::temporary)});
  auto proxy = lookup(self, sup, "proxy");
  self->send(proxy, std::string("crash"));
  auto after = wait_for_new(self, sup, "proxy", proxy);
  CHECK_FALSE(after);  // gone, not replaced
  std::vector<std::string> names{"?"};
  self->request(sup, caf::infinite, children_atom::value)
      .receive([&](std::vector<std::string> n) { names = std::move(n); }, [](const caf::error&) {});
  CHECK(names.empty());
  self->send_exit(sup, caf::exit_reason::user_shutdown);
}

TEST_CASE("beyond the restart intensity the supervisor fails and stops its children") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  supervisor_limits limits;
  limits.max_restarts = 2;
  limits.window = std::chrono::seconds(60);
  auto sup = spawn_supervisor(sys, "test",
                              {spec("worker", restart_policy::permanent),
                               spec("watcher", restart_policy::permanent)},
                              limits);
  self->monitor(sup);
  auto watcher_handle = lookup(self, sup, "watcher");
  self->monitor(watcher_handle);
  caf::actor current = lookup(self, sup, "worker");
  for (int crash = 0; crash < 2; ++crash) {  // two restarts are within the budget
    self->send(current, std::string("crash"));
    current = wait_for_new(self, sup, "worker", current);
    REQUIRE(current);
  }
  self->send(current, std::string("crash"));  // the third is not
  int downs = 0;
  bool supervisor_failed = false;
  self->receive_for(downs, 2)(
      [&](const caf::down_msg& msg) {
        if (msg.source == sup.address()) supervisor_failed = msg.reason != caf::none;
      },
      caf::after(std::chrono::seconds(5)) >> [&] { FAIL("no down message"); });
  CHECK(supervisor_failed);
}
