// The Breed steering actor (server rank 0): it gathers the trainer's
// per-sample losses into breed_steering (breed.hpp) and, every `period`
// batches, replaces the parameters of the simulations the launcher has not
// submitted yet (ids >= k + m) through the integrator's `apply`.
//
// Under a launcher (settings.owned) rank 0's coordinator, the owner of the
// simulation table, introduces itself with (owner_atom, handle): from then on
// the actor asks it where submissions stand (submissions_atom) at the end of
// each period, sends it the changes of one resampling as one message
// (set_params_atom, sims, values) and asks it the parameters of each
// completed simulation (parameters_atom). The
// callbacks below are then unused. Before the owner arrives, completions and
// resamplings are skipped (logged).
//
// Otherwise (tests, a standalone server), the callbacks: the resampling
// needs a consistent view of the submissions (k highest submitted id, m job
// limit, count). Two ways to supply it:
//   - synchronous: settings.submissions() returns it (a thread-safe source);
//   - asynchronous: leave `submissions` empty and set `request_submissions`;
//     every period the actor calls it with its own handle, and whoever holds
//     the view (e.g. the coordinator, which asks the launcher) answers by
//     sending (resample_atom, k, m, count) to that handle. The actor resamples
//     when that message arrives. The same message, sent at any time, also
//     forces a resampling.
//
// The callbacks run on the actor's thread; they must not block for long and
// must be safe to call from it (e.g. post a message or lock a mutex).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "actors/steering/breed.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

// steering_actor is in messages/actor_types.hpp.

using parameter_changes = std::vector<std::pair<std::uint32_t, std::vector<double>>>;

// Rank 0's Breed, shared with the checkpoints: the steering actor changes it
// under the lock only, and the trainer's thread copies it under the lock
// when it takes a checkpoint (docs/checkpoints.md, "Rank 0's extras"). A
// restarted steering actor goes on with the Breed it holds.
struct breed_box {
  std::mutex mutex;
  std::shared_ptr<breed_steering> breed;  // set by the steering actor when it starts
  // A copy as it is now (nullopt before the actor started).
  std::optional<breed_steering> copy() {
    std::lock_guard<std::mutex> lock(mutex);
    if (!breed) return std::nullopt;
    return *breed;
  }
};

struct steering_settings {
  breed_settings breed;
  // Where the Breed lives (made by spawn_steering when null).
  std::shared_ptr<breed_box> box;
  // --restore: Breed's state from the checkpoint (breed_steering::state_json);
  // "" starts afresh. Used when the box holds no Breed yet.
  std::string restored_state;
  // The simulation table's owner will introduce itself (owner_atom): the
  // callbacks are not needed.
  bool owned = false;
  // Synchronous submission view; when set, the actor resamples as soon as a
  // period ends.
  std::function<submission_view()> submissions;
  // Asynchronous alternative (used when `submissions` is empty): asked at the
  // end of each period; the answer is (resample_atom, k, m, count) sent to
  // the given handle. Neither set: resamplings only happen on that message.
  std::function<void(steering_actor self)> request_submissions;
  // The current parameters of simulation `sim` (called once per sim_done,
  // whose message also says how many distinct steps the buffer received).
  // May throw for an unknown sim: the completion is then ignored (logged).
  std::function<std::vector<double>(std::uint32_t sim)> parameters_of;
  // Replace the parameters of these pending simulations (ids >= k + m, in
  // ascending order). Called once per resampling that changed something.
  std::function<void(parameter_changes)> apply;
};

// Throws std::invalid_argument for invalid breed settings (breed_steering's
// constructor) or, unless owned, a missing parameters_of / apply, and
// std::runtime_error for a restored_state that does not fit.
steering_actor spawn_steering(caf::actor_system& sys, steering_settings settings);

// The status JSON (also what the actor answers to steering_atom).
std::string steering_status_json(const breed_steering& breed);

}  // namespace melissa
