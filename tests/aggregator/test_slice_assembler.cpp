// slice_assembler: the slices of a step become this rank's share once, whole.
#include <doctest/doctest.h>

#include <vector>

#include "actors/aggregator/slice_assembler.hpp"

using namespace melissa;

namespace {

std::vector<float> values_of(const slice_assembler::result& r) {
  const auto* p = reinterpret_cast<const float*>(r.step->data());
  return std::vector<float>(p, p + r.step->size() / sizeof(float));
}

}  // namespace

TEST_CASE("uneven slices of three client ranks complete the share once") {
  // Field of 10 values, rank 1 of 2 owns [5, 10).
  slice_assembler a({wire::owned_share(10, 1, 2)});
  const std::vector<float> field = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  // Client ranks own [0, 4), [4, 7), [7, 10): their parts in this share are [5, 7) and [7, 10).
  CHECK(a.add(3, 0, 2, 7, field.data() + 7, 3).outcome == slice_assembler::verdict::partial);
  CHECK(a.partial_steps() == 1);
  CHECK(a.held_bytes() == 20);
  const auto done = a.add(3, 0, 2, 5, field.data() + 5, 2);
  REQUIRE(done.outcome == slice_assembler::verdict::complete);
  CHECK(values_of(done) == std::vector<float>{5, 6, 7, 8, 9});
  CHECK(a.partial_steps() == 0);
  CHECK(a.held_bytes() == 0);
}

TEST_CASE("a retried attempt's slices fill only what is missing; a repeat is a duplicate") {
  slice_assembler a({wire::owned_share(6, 0, 1)});
  const std::vector<float> first = {1, 2, 3, 4, 5, 6};
  const std::vector<float> resent = {-1, -2, -3, -4, -5, -6};
  CHECK(a.add(0, 0, 0, 0, first.data(), 3).outcome == slice_assembler::verdict::partial);
  CHECK(a.add(0, 0, 0, 0, resent.data(), 3).outcome == slice_assembler::verdict::duplicate);
  // Overlapping [1, 6): the first cells stay as first received.
  const auto done = a.add(0, 0, 0, 1, resent.data() + 1, 5);
  REQUIRE(done.outcome == slice_assembler::verdict::complete);
  CHECK(values_of(done) == std::vector<float>{1, 2, 3, -4, -5, -6});
}

TEST_CASE("steps, fields and simulations are assembled apart; drop forgets a simulation") {
  slice_assembler a({wire::owned_share(4, 0, 1), wire::owned_share(2, 0, 1)});
  const std::vector<float> v = {1, 2, 3, 4};
  CHECK(a.add(1, 0, 0, 0, v.data(), 2).outcome == slice_assembler::verdict::partial);
  CHECK(a.add(1, 0, 1, 0, v.data(), 2).outcome == slice_assembler::verdict::partial);
  CHECK(a.add(2, 0, 0, 0, v.data(), 2).outcome == slice_assembler::verdict::partial);
  CHECK(a.add(1, 1, 0, 0, v.data(), 2).outcome == slice_assembler::verdict::complete);
  CHECK(a.partial_steps() == 3);
  a.drop(1);
  CHECK(a.partial_steps() == 1);
  CHECK(a.held_bytes() == 16);
  CHECK(a.add(2, 0, 0, 2, v.data() + 2, 2).outcome == slice_assembler::verdict::complete);
}
