// Rank 0's simulation table (actors/coordinator/simulation_table): the
// design's parameters, Breed's changes and each simulation's state.
#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

#include "actors/coordinator/simulation_table.hpp"

using namespace melissa;

namespace {
simulation_table three() { return simulation_table({{1, 2}, {3, 4}, {5, 6}}); }
}  // namespace

TEST_CASE("simulation table: every simulation of the design starts pending with its design row") {
  const auto t = three();
  CHECK(t.size() == 3);
  CHECK(t.count(sim_state::pending) == 3);
  CHECK(t.parameters(1) == std::vector<double>{3, 4});
  CHECK(t.changed().empty());
}

TEST_CASE("simulation table: a simulation outside the design is an error to read, ignored to mark") {
  auto t = three();
  CHECK_THROWS_AS(t.parameters(3), std::out_of_range);
  CHECK_THROWS_AS(t.state(7), std::out_of_range);
  CHECK_FALSE(t.change(3, {0, 0}));
  CHECK_FALSE(t.mark_submitted(3));
  CHECK_FALSE(t.changeable(3));
}

TEST_CASE("simulation table: Breed changes a pending simulation, and the change is counted") {
  auto t = three();
  CHECK(t.change(2, {7, 8}));
  CHECK(t.change(2, {9, 10}));
  CHECK(t.parameters(2) == std::vector<double>{9, 10});
  CHECK(t.changes(2) == 2);
  CHECK(t.changed() == std::vector<std::uint32_t>{2});
}

TEST_CASE("simulation table: a submitted simulation keeps its parameters") {
  auto t = three();
  CHECK(t.mark_submitted(1));
  CHECK_FALSE(t.changeable(1));
  CHECK_FALSE(t.change(1, {0, 0}));
  CHECK(t.parameters(1) == std::vector<double>{3, 4});
  CHECK(t.changes(1) == 0);
}

TEST_CASE("simulation table: a submission view marks every simulation up to the highest submitted") {
  auto t = three();
  t.mark_submitted_through(1);
  CHECK(t.state(0) == sim_state::submitted);
  CHECK(t.state(1) == sim_state::submitted);
  CHECK(t.state(2) == sim_state::pending);
}

TEST_CASE("simulation table: a view whose highest is 0 marks nothing (none or only sim 0)") {
  auto t = three();
  t.mark_submitted_through(0);
  CHECK(t.count(sim_state::pending) == 3);
}

TEST_CASE("simulation table: states only move forward") {
  auto t = three();
  CHECK(t.mark_complete(0));
  CHECK_FALSE(t.mark_submitted(0));
  CHECK_FALSE(t.mark_failed(0));
  CHECK(t.state(0) == sim_state::complete);
  CHECK(t.mark_failed(1));
  CHECK_FALSE(t.mark_complete(1));
  CHECK(t.state(1) == sim_state::failed);
  t.mark_submitted_through(2);
  CHECK(t.state(0) == sim_state::complete);
  CHECK(t.state(1) == sim_state::failed);
  CHECK(t.state(2) == sim_state::submitted);
}

TEST_CASE("simulation table: a snapshot restores the same parameters, states and changes") {
  auto t = three();
  t.change(2, {7, 8});
  t.mark_submitted(0);
  t.mark_failed(1);
  const auto copy = simulation_table::restore(t.snapshot());
  CHECK(copy.size() == 3);
  CHECK(copy.parameters(2) == std::vector<double>{7, 8});
  CHECK(copy.changes(2) == 1);
  CHECK(copy.state(0) == sim_state::submitted);
  CHECK(copy.state(1) == sim_state::failed);
  CHECK(copy.state(2) == sim_state::pending);
}

TEST_CASE("simulation table: a snapshot with vectors of different lengths is refused") {
  auto snap = three().snapshot();
  snap.states.pop_back();
  CHECK_THROWS_AS(simulation_table::restore(snap), std::invalid_argument);
}
