// The simulation table of a study: every simulation's parameters (the design,
// then Breed's changes) and its state as server rank 0 knows it. Owned by
// rank 0's coordinator (actors/coordinator), the only path to the launcher:
// Breed's steering changes parameters and asks where submissions stand
// through it (simulation_owner_actor in messages/actor_types.hpp).
//
// States, as rank 0 knows them:
//   pending   requested from the launcher, not known to be submitted: Breed
//             may still change its parameters;
//   submitted the launcher has given it a job (a submission view covers it,
//             the launcher refused a change, or a session of it opened);
//   complete  every step this rank expects is stored and a session ended cleanly;
//   failed    the launcher gave up on it.
// A simulation only moves forward: pending -> submitted -> complete | failed
// (pending -> complete | failed directly too); a late, older notice never
// moves it back.
//
// Cost: memory O(simulations x parameters); every operation is O(1) but
// mark_submitted_through (O(highest)), changed() and snapshot() (O(size)).
// Thread safety: none. One actor (the coordinator) owns it; nothing else holds
// a reference. Pure: no CAF, no pointers; snapshot()/restore() give a plain
// value for the checkpoint keeper.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace melissa {

enum class sim_state : std::uint8_t { pending = 0, submitted = 1, complete = 2, failed = 3 };

const char* to_string(sim_state s);

// The whole table as plain values (same length vectors, indexed by sim id).
struct simulation_table_snapshot {
  std::vector<std::vector<double>> parameters;
  std::vector<sim_state> states;
  std::vector<std::uint32_t> changes;  // Breed changes accepted per simulation
};

class simulation_table {
 public:
  // Every simulation of the design, pending, with the design's parameters.
  explicit simulation_table(std::vector<std::vector<double>> design = {});

  std::uint32_t size() const { return static_cast<std::uint32_t>(rows_.size()); }
  bool contains(std::uint32_t sim) const { return sim < rows_.size(); }

  // Throw std::out_of_range for a simulation outside the design.
  const std::vector<double>& parameters(std::uint32_t sim) const;
  sim_state state(std::uint32_t sim) const;
  std::uint32_t changes(std::uint32_t sim) const;

  // Breed may change `sim` (it is in the design and pending).
  bool changeable(std::uint32_t sim) const;
  // Breed's change, once the launcher accepted it: false (nothing changes)
  // unless changeable(sim).
  bool change(std::uint32_t sim, std::vector<double> values);

  // State notices; each returns whether the state moved. Unknown sims and
  // backward moves are ignored (false).
  bool mark_submitted(std::uint32_t sim);
  bool mark_complete(std::uint32_t sim);
  bool mark_failed(std::uint32_t sim);
  // The launcher's submission view: every simulation up to `highest` has been
  // submitted. The launcher says 0 both for "none" and for "only sim 0", so 0
  // marks nothing (sim 0 is marked by its session instead).
  void mark_submitted_through(std::uint32_t highest);

  // Simulations whose parameters Breed changed, ascending.
  std::vector<std::uint32_t> changed() const;
  std::uint32_t count(sim_state s) const;

  simulation_table_snapshot snapshot() const;
  // Throws std::invalid_argument when the snapshot's vectors differ in length.
  static simulation_table restore(simulation_table_snapshot snapshot);

 private:
  bool advance(std::uint32_t sim, sim_state to);

  std::vector<std::vector<double>> rows_;
  std::vector<sim_state> states_;
  std::vector<std::uint32_t> changes_;
};

}  // namespace melissa
