#include "actors/coordinator/simulation_table.hpp"

#include <stdexcept>

namespace melissa {

const char* to_string(sim_state s) {
  switch (s) {
    case sim_state::pending: return "pending";
    case sim_state::submitted: return "submitted";
    case sim_state::complete: return "complete";
    case sim_state::failed: return "failed";
  }
  return "?";
}

simulation_table::simulation_table(std::vector<std::vector<double>> design)
    : rows_(std::move(design)), states_(rows_.size(), sim_state::pending), changes_(rows_.size(), 0) {}

namespace {
void check(bool inside, std::uint32_t sim) {
  if (!inside) throw std::out_of_range("simulation " + std::to_string(sim) + " is not in the design");
}
// Forward order: pending < submitted < complete, failed (both final).
int rank_of(sim_state s) { return s == sim_state::failed ? 2 : static_cast<int>(s); }
}  // namespace

const std::vector<double>& simulation_table::parameters(std::uint32_t sim) const {
  check(contains(sim), sim);
  return rows_[sim];
}

sim_state simulation_table::state(std::uint32_t sim) const {
  check(contains(sim), sim);
  return states_[sim];
}

std::uint32_t simulation_table::changes(std::uint32_t sim) const {
  check(contains(sim), sim);
  return changes_[sim];
}

bool simulation_table::changeable(std::uint32_t sim) const {
  return contains(sim) && states_[sim] == sim_state::pending;
}

bool simulation_table::change(std::uint32_t sim, std::vector<double> values) {
  if (!changeable(sim)) return false;
  rows_[sim] = std::move(values);
  ++changes_[sim];
  return true;
}

bool simulation_table::advance(std::uint32_t sim, sim_state to) {
  if (!contains(sim) || rank_of(to) <= rank_of(states_[sim])) return false;
  states_[sim] = to;
  return true;
}

bool simulation_table::mark_submitted(std::uint32_t sim) { return advance(sim, sim_state::submitted); }
bool simulation_table::mark_complete(std::uint32_t sim) { return advance(sim, sim_state::complete); }
bool simulation_table::mark_failed(std::uint32_t sim) { return advance(sim, sim_state::failed); }

void simulation_table::mark_submitted_through(std::uint32_t highest) {
  if (highest == 0) return;
  for (std::uint32_t sim = 0; sim <= highest && sim < size(); ++sim) mark_submitted(sim);
}

std::vector<std::uint32_t> simulation_table::changed() const {
  std::vector<std::uint32_t> out;
  for (std::uint32_t sim = 0; sim < size(); ++sim)
    if (changes_[sim] > 0) out.push_back(sim);
  return out;
}

std::uint32_t simulation_table::count(sim_state s) const {
  std::uint32_t n = 0;
  for (auto x : states_) n += x == s ? 1 : 0;
  return n;
}

simulation_table_snapshot simulation_table::snapshot() const { return {rows_, states_, changes_}; }

simulation_table simulation_table::restore(simulation_table_snapshot snapshot) {
  if (snapshot.states.size() != snapshot.parameters.size() ||
      snapshot.changes.size() != snapshot.parameters.size())
    throw std::invalid_argument("simulation table snapshot: vectors of different lengths");
  simulation_table t;
  t.rows_ = std::move(snapshot.parameters);
  t.states_ = std::move(snapshot.states);
  t.changes_ = std::move(snapshot.changes);
  return t;
}

}  // namespace melissa
