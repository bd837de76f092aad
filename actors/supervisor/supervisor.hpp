// A small supervisor: starts its children in order, monitors them, restarts a
// child that dies (one-for-one) within a restart intensity limit, and tells
// the children that depend on it about the new handle. Beyond the limit it
// fails itself, so that its own supervisor (or the process) sees the failure.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "messages/actor_types.hpp"

namespace melissa {

enum class restart_policy : std::uint8_t {
  permanent,  // always restarted
  transient,  // restarted only after an abnormal exit
  temporary,  // never restarted (its end is only logged)
};

// The current handle of a sibling, by name (empty actor if unknown).
using child_lookup = std::function<caf::actor(const std::string& name)>;

struct child_spec {
  std::string name;
  restart_policy policy = restart_policy::permanent;
  // Spawns the child. Called again on each restart; `lookup` gives the
  // current handles of the children started before it.
  std::function<caf::actor(caf::actor_system&, const child_lookup& lookup)> start;
  // Siblings whose restart this child must hear about: it receives
  // (restarted_atom, name, new handle) and must handle that message (its
  // interface includes restart_listener_actor; checked at the wiring sites).
  std::vector<std::string> depends_on;
};

struct supervisor_limits {
  std::size_t max_restarts = 5;
  std::chrono::seconds window{10};
};

// supervisor_actor is in messages/actor_types.hpp.

// Spawns a supervisor named `name` (for logs) over `children`.
supervisor_actor spawn_supervisor(caf::actor_system& sys, std::string name,
                                  std::vector<child_spec> children, supervisor_limits limits = {});

}  // namespace melissa

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::child_spec)
