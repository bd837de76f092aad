#include <doctest/doctest.h>

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
