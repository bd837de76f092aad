#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "actors/aggregator/step_log.hpp"

using melissa::step_log;

TEST_CASE("step_log stores each (simulation, field, step) once") {
  step_log log;
  CHECK(log.insert(3, 0, 0));
  CHECK(log.insert(3, 0, 1));
  CHECK(log.insert(3, 1, 0));   // another field is another sample
  CHECK(log.insert(4, 0, 0));   // another simulation too
  CHECK_FALSE(log.insert(3, 0, 1));
  CHECK_FALSE(log.insert(3, 0, 0));
  CHECK(log.total_stored() == 4);
  CHECK(log.total_duplicates() == 2);
  CHECK(log.simulations().at(3).stored == 3);
  CHECK(log.simulations().at(3).duplicates == 2);
  CHECK(log.simulations().at(4).duplicates == 0);
  CHECK(log.contains(3, 1, 0));
  CHECK_FALSE(log.contains(3, 1, 1));
  CHECK_FALSE(log.contains(9, 0, 0));
}

TEST_CASE("a restarted attempt resending from step 0 adds only the missing steps") {
  step_log log;
  for (std::uint32_t t = 0; t < 7; ++t) CHECK(log.insert(5, 0, t));  // attempt 1 dies at step 7
  std::uint32_t stored = 0;
  for (std::uint32_t t = 0; t < 20; ++t) stored += log.insert(5, 0, t) ? 1 : 0;  // attempt 2
  CHECK(stored == 13);
  CHECK(log.simulations().at(5).stored == 20);
  CHECK(log.simulations().at(5).duplicates == 7);
}

TEST_CASE("steps arriving out of order and with gaps") {
  step_log log;
  CHECK(log.insert(0, 0, 1000));
  CHECK_FALSE(log.contains(0, 0, 999));
  CHECK(log.insert(0, 0, 999));
  CHECK_FALSE(log.insert(0, 0, 1000));
}

TEST_CASE("forget undoes an insert that could not be stored") {
  step_log log;
  CHECK(log.insert(1, 0, 2));
  log.forget(1, 0, 2);
  CHECK_FALSE(log.contains(1, 0, 2));
  CHECK(log.total_stored() == 0);
  CHECK(log.insert(1, 0, 2));
  log.forget(1, 0, 77);  // never inserted: no effect
  CHECK(log.total_stored() == 1);
}

TEST_CASE("done is counted once per simulation and attempts are recorded") {
  step_log log;
  log.note_attempt(2, 1);
  log.note_attempt(2, 2);
  log.note_attempt(2, 2);
  CHECK(log.mark_done(2));
  CHECK_FALSE(log.mark_done(2));
  CHECK(log.done_count() == 1);
  CHECK(log.simulations().at(2).attempts == std::set<std::uint32_t>{1, 2});
}

// --- compaction of complete simulations (issue 16) ---

namespace {

// Live heap bytes requested by this test binary (doctest runs the cases on
// one thread); each block carries its size in front (malloc's own usable
// size depends on what was freed before, so it would not compare exactly).
std::int64_t live_bytes = 0;
constexpr std::size_t prefix = alignof(std::max_align_t);

}  // namespace

void* operator new(std::size_t n) {
  auto* p = static_cast<char*>(std::malloc(n + prefix));
  if (!p) throw std::bad_alloc();
  *reinterpret_cast<std::size_t*>(p) = n;
  live_bytes += static_cast<std::int64_t>(n);
  return p + prefix;
}
void operator delete(void* p) noexcept {
  if (!p) return;
  auto* block = static_cast<char*>(p) - prefix;
  live_bytes -= static_cast<std::int64_t>(*reinterpret_cast<std::size_t*>(block));
  std::free(block);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

namespace {

// A rank's view of `sims` complete simulations of `steps` steps and `fields`
// fields, rank `rank` of `ranks` (the client API's round robin).
// (No doctest assertion inside: they allocate, and heap_of counts bytes.)
bool fill(step_log& log, std::uint32_t sims, std::uint32_t steps, std::uint32_t fields, std::uint32_t rank,
          std::uint32_t ranks) {
  bool ok = true;
  for (std::uint32_t sim = 0; sim < sims; ++sim) {
    log.note_attempt(sim, 1);
    for (std::uint32_t t = 0; t < steps; ++t)
      if ((sim + t) % ranks == rank)
        for (std::uint32_t f = 0; f < fields; ++f) ok = log.insert(sim, f, t) && ok;
    ok = log.missing_steps(sim, fields, steps, rank, ranks) == 0 && ok;
    ok = log.mark_done(sim) && ok;
  }
  return ok;
}

void complete(step_log& log, std::uint32_t sims, std::uint32_t steps, std::uint32_t fields,
              std::uint32_t rank = 0, std::uint32_t ranks = 1) {
  REQUIRE(fill(log, sims, steps, fields, rank, ranks));
}

std::int64_t heap_of(std::uint32_t sims, std::uint32_t steps, bool compact) {
  auto* log = new step_log(compact);
  const auto before = live_bytes;
  const bool ok = fill(*log, sims, steps, 2, 0, 1);
  const auto bytes = live_bytes - before;
  delete log;
  REQUIRE(ok);
  return bytes;
}

}  // namespace

TEST_CASE("a complete simulation costs the same memory whatever its number of steps") {
  // Compacted: 100 or 10,000 steps per simulation, the same bytes.
  const auto small = heap_of(200, 100, true);
  const auto large = heap_of(200, 10000, true);
  CHECK(small > 0);
  CHECK(large == small);
  // Kept bitsets (before): 2 fields x 10,000 bits = 2,500 bytes more per simulation.
  const auto bitsets = heap_of(200, 10000, false);
  CHECK(bitsets - large >= 200 * 2 * 10000 / 8);
  // And constant per simulation: twice the simulations, twice the bytes.
  CHECK(heap_of(400, 10000, true) == 2 * large);
}

TEST_CASE("a compacted simulation answers every query as its bitsets did") {
  for (std::uint32_t ranks : {1u, 3u}) {
    for (std::uint32_t rank = 0; rank < ranks; ++rank) {
      step_log kept(false), compact;
      complete(kept, 7, 50, 3, rank, ranks);
      complete(compact, 7, 50, 3, rank, ranks);
      CHECK(compact.compacted_count() == 7);
      CHECK(kept.compacted_count() == 0);
      CHECK(compact.total_stored() == kept.total_stored());
      CHECK(compact.done_count() == 7);
      for (std::uint32_t sim = 0; sim < 8; ++sim) {  // sim 7: unknown
        for (std::uint32_t f = 0; f < 4; ++f) {
          for (std::uint32_t t = 0; t < 60; ++t) CHECK(compact.contains(sim, f, t) == kept.contains(sim, f, t));
          if (sim < 7) {
            const auto& a = compact.simulations().at(sim);
            const auto& b = kept.simulations().at(sim);
            CHECK(a.field_count() == b.field_count());
            CHECK(a.field_length(f) == b.field_length(f));
            CHECK(a.field_bits(f) == b.field_bits(f));
          }
        }
        CHECK(compact.missing_steps(sim, 3, 50, rank, ranks) == kept.missing_steps(sim, 3, 50, rank, ranks));
      }
    }
  }
}

TEST_CASE("a resent step of a complete simulation is still a duplicate") {
  step_log log;
  complete(log, 3, 20, 2, 1, 2);  // rank 1 of 2
  REQUIRE(log.simulations().at(1).compacted());
  const auto stored = log.total_stored();
  // A late attempt resends every step: all known, all dropped.
  std::uint32_t dropped = 0;
  for (std::uint32_t t = 0; t < 20; ++t)
    if ((1 + t) % 2 == 1)
      for (std::uint32_t f = 0; f < 2; ++f) dropped += log.insert(1, f, t) ? 0 : 1;
  CHECK(dropped == 20);
  CHECK(log.total_stored() == stored);
  CHECK(log.total_duplicates() == 20);
  CHECK(log.simulations().at(1).duplicates == 20);
  CHECK(log.simulations().at(1).compacted());
  CHECK_FALSE(log.mark_done(1));
}

TEST_CASE("a step a compacted simulation lacks brings its bitsets back, exactly") {
  step_log log;
  complete(log, 1, 10, 1);
  REQUIRE(log.simulations().at(0).compacted());
  CHECK(log.insert(0, 0, 15));  // a longer rerun
  const auto& s = log.simulations().at(0);
  CHECK_FALSE(s.compacted());
  CHECK(s.field_length(0) == 16);
  for (std::uint32_t t = 0; t < 16; ++t) CHECK(log.contains(0, 0, t) == (t < 10 || t == 15));
  log.forget(0, 0, 3);
  CHECK_FALSE(log.contains(0, 0, 3));
  CHECK(log.total_stored() == 10);
  // Done again: not a series (a gap at 3, then 15): the bitsets stay.
  CHECK_FALSE(log.mark_done(0));
  CHECK_FALSE(log.simulations().at(0).compacted());
  // A forget on a compacted one expands it too.
  step_log other;
  complete(other, 1, 10, 1);
  other.forget(0, 0, 9);
  CHECK_FALSE(other.simulations().at(0).compacted());
  CHECK(other.simulations().at(0).field_length(0) == 10);
  CHECK_FALSE(other.contains(0, 0, 9));
  CHECK(other.contains(0, 0, 8));
}

TEST_CASE("fields with different steps are not a series: the bitsets stay") {
  step_log log;
  log.insert(0, 0, 0);
  log.insert(0, 0, 1);
  log.insert(0, 1, 1);
  log.insert(0, 1, 2);
  log.mark_done(0);
  CHECK_FALSE(log.simulations().at(0).compacted());
  log.insert(1, 0, 0);
  log.insert(1, 0, 1);
  log.insert(1, 0, 3);  // not evenly spaced
  log.mark_done(1);
  CHECK_FALSE(log.simulations().at(1).compacted());
  log.note_attempt(2, 0);  // done with no step here (more ranks than steps)
  log.mark_done(2);
  CHECK(log.simulations().at(2).compacted());
  CHECK_FALSE(log.contains(2, 0, 0));
  CHECK(log.insert(2, 0, 0));  // then a step: bitsets back
  CHECK(log.contains(2, 0, 0));
}

TEST_CASE("restore compacts the done simulations only") {
  step_log log(false);
  complete(log, 2, 12, 1);
  log.insert(5, 0, 0);  // running
  auto sims = log.simulations();
  const auto back = step_log::restore(sims);
  CHECK(back.simulations().at(0).compacted());
  CHECK(back.simulations().at(1).compacted());
  CHECK_FALSE(back.simulations().at(5).compacted());
  CHECK(back.total_stored() == 25);
  CHECK(back.done_count() == 2);
  for (std::uint32_t t = 0; t < 13; ++t) CHECK(back.contains(1, 0, t) == (t < 12));
}
