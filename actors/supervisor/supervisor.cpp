#include "actors/supervisor/supervisor.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/supervisor/restart_intensity.hpp"

namespace melissa {
namespace {

struct child_slot {
  child_spec spec;
  caf::actor handle;
};

struct supervisor_state {
  std::string name;
  std::vector<child_slot> children;  // start order
  restart_intensity intensity{5, std::chrono::seconds(10)};
  bool stopping = false;

  child_slot* find(const caf::actor_addr& who) {
    for (auto& c : children)
      if (c.handle && c.handle.address() == who) return &c;
    return nullptr;
  }
  caf::actor lookup(const std::string& child) const {
    for (auto& c : children)
      if (c.spec.name == child) return c.handle;
    return {};
  }
};

bool is_normal_exit(const caf::error& reason) {
  return reason == caf::exit_reason::normal || reason == caf::exit_reason::user_shutdown;
}

supervisor_actor::behavior_type supervisor_fn(
    supervisor_actor::stateful_pointer<supervisor_state> self, std::string name,
    std::vector<child_spec> specs, supervisor_limits limits) {
  auto& st = self->state;
  st.name = std::move(name);
  st.intensity = restart_intensity(limits.max_restarts, limits.window);
  const child_lookup lookup = [self](const std::string& n) { return self->state.lookup(n); };

  for (auto& spec : specs) {
    auto handle = spec.start(self->system(), lookup);
    self->monitor(handle);
    st.children.push_back({std::move(spec), std::move(handle)});
  }

  // Stopping the supervisor stops its children (in reverse start order).
  self->set_exit_handler([self](const caf::exit_msg& msg) {
    self->state.stopping = true;
    for (auto it = self->state.children.rbegin(); it != self->state.children.rend(); ++it)
      if (it->handle) self->send_exit(it->handle, msg.reason);
    self->quit(msg.reason);
  });

  self->set_down_handler([self, lookup](const caf::down_msg& msg) {
    auto& st = self->state;
    auto* slot = st.find(msg.source);
    if (slot == nullptr || st.stopping) return;
    const auto& spec = slot->spec;
    const bool normal = is_normal_exit(msg.reason);
    const std::string why = self->system().render(msg.reason);
    if (spec.policy == restart_policy::temporary ||
        (spec.policy == restart_policy::transient && normal)) {
      if (!normal) spdlog::warn("{}: {} ended: {}", st.name, spec.name, why);
      slot->handle = caf::actor{};
      return;
    }
    if (!st.intensity.allow(restart_intensity::clock::now())) {
      spdlog::error("{}: {} died ({}) and the restart limit is reached; giving up", st.name,
                    spec.name, why);
      st.stopping = true;
      for (auto& c : st.children)
        if (c.handle) self->send_exit(c.handle, caf::exit_reason::user_shutdown);
      self->quit(msg.reason ? msg.reason : caf::make_error(caf::exit_reason::unhandled_exception));
      return;
    }
    spdlog::warn("{}: restarting {} after: {}", st.name, spec.name, why);
    slot->handle = spec.start(self->system(), lookup);
    self->monitor(slot->handle);
    for (auto& c : st.children)
      for (auto& dep : c.spec.depends_on)
        if (dep == spec.name && c.handle)
          caf::anon_send(c.handle, restarted_atom::value, spec.name, slot->handle);
  });

  return {
      [self](lookup_atom, const std::string& child) { return self->state.lookup(child); },
      [self](children_atom) {
        std::vector<std::string> names;
        for (auto& c : self->state.children)
          if (c.handle) names.push_back(c.spec.name);
        return names;
      },
  };
}

}  // namespace

supervisor_actor spawn_supervisor(caf::actor_system& sys, std::string name,
                                  std::vector<child_spec> children, supervisor_limits limits) {
  return sys.spawn(supervisor_fn, std::move(name), std::move(children), limits);
}

}  // namespace melissa
