// Which time steps of which simulation have been stored: the record behind
// "every step reaches the sink exactly once". Plain C++, no CAF.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <vector>

namespace melissa {

class step_log {
 public:
  struct simulation {
    // (In this order the record is 112 bytes: done next to compact_.)
    std::set<std::uint32_t> attempts;         // attempts that sent or opened a session
    std::uint64_t stored = 0;                 // steps accepted (all fields)
    std::uint64_t duplicates = 0;             // steps dropped as already stored
    bool done = false;                        // a client ended this simulation cleanly

    // The received steps, [field][time step]: read through these, whether the
    // bitsets are kept or the simulation is compacted.
    std::uint32_t field_count() const;
    // The length of field's bitset: its highest step recorded + 1 (a
    // forgotten step may leave it longer); 0 for a field never received.
    std::uint32_t field_length(std::uint32_t field) const;
    bool has(std::uint32_t field, std::uint32_t step) const;
    std::vector<bool> field_bits(std::uint32_t field) const;
    // Appends the next field's bitset (a checkpoint read back).
    void add_field(std::vector<bool> bits);
    // True when the bitsets were replaced by one series record.
    bool compacted() const { return compact_; }

    // A complete simulation's steps are, in every field, the same arithmetic
    // series (a server rank gets every ranks-th step of it: the client API's
    // round robin), so a complete simulation keeps this record instead of
    // fields x steps bits (issue 16: 100,000 simulations). Exact: a log
    // whose bits are not such a series keeps them.
    struct series {
      std::uint32_t fields = 0;  // fields, each with the same steps
      std::uint32_t length = 0;  // each field's bitset length
      std::uint32_t first = 0;   // steps first + i * stride, i < count
      std::uint32_t stride = 1;
      std::uint32_t count = 0;
    };
    // The record, when compacted (a checkpoint writes it instead of the bits).
    const series* compact_series() const { return compact_ ? &series_ : nullptr; }

   private:
    friend class step_log;
    bool compact();  // true if now compacted
    void expand();   // back to bitsets (a step the series lacks arrives)
    bool compact_ = false;
    series series_;
    std::vector<std::vector<bool>> received_;  // [field][time step] unless compact_
  };

  // A log that keeps a complete simulation's bitsets (the bench's "before").
  explicit step_log(bool compact_complete = true) : compact_complete_(compact_complete) {}

  // Records (sim, field, step). True if it is new and must be stored; false
  // if an earlier attempt already delivered it.
  bool insert(std::uint32_t sim, std::uint32_t field, std::uint32_t step);
  bool contains(std::uint32_t sim, std::uint32_t field, std::uint32_t step) const;
  // Undoes an insert whose step could not be stored (the sink failed), so
  // that the resent step of the next attempt is stored instead of dropped.
  void forget(std::uint32_t sim, std::uint32_t field, std::uint32_t step);

  void note_attempt(std::uint32_t sim, std::uint32_t attempt);

  // The steps of `sim` this server rank still lacks, over `fields` fields, when
  // a simulation has `steps` time steps and the client sends step t of every
  // field to rank (sim + t) mod ranks (the client API's round robin).
  std::uint64_t missing_steps(std::uint32_t sim, std::uint32_t fields, std::uint32_t steps,
                              std::uint32_t rank, std::uint32_t ranks) const;
  // Marks the simulation done (and compacts its received steps); true the
  // first time.
  bool mark_done(std::uint32_t sim);

  const std::map<std::uint32_t, simulation>& simulations() const { return sims_; }
  // A log holding exactly `sims` (a checkpoint's), its totals recomputed and
  // its done simulations compacted.
  static step_log restore(std::map<std::uint32_t, simulation> sims);
  std::uint64_t total_stored() const { return total_stored_; }
  std::uint64_t total_duplicates() const { return total_duplicates_; }
  std::uint32_t done_count() const { return done_count_; }
  // Simulations whose bitsets were replaced by a series record.
  std::uint32_t compacted_count() const;

 private:
  // The simulation looked up last: a client sends its steps in a row, and
  // missing_steps asks about each, so most lookups skip the map (with
  // 100,000 simulations a map walk per step was most of the cost, issue 16).
  // Map nodes never move; a copy or move of the log starts with no cache.
  struct sim_cache {
    std::uint32_t id = 0;
    simulation* sim = nullptr;
    sim_cache() = default;
    sim_cache(const sim_cache&) {}
    sim_cache& operator=(const sim_cache&) {
      sim = nullptr;
      return *this;
    }
  };
  simulation& at(std::uint32_t sim);
  const simulation* find(std::uint32_t sim) const;
  mutable sim_cache cache_;
  std::map<std::uint32_t, simulation> sims_;
  std::uint64_t total_stored_ = 0;
  std::uint64_t total_duplicates_ = 0;
  std::uint32_t done_count_ = 0;
  bool compact_complete_ = true;
};

}  // namespace melissa
