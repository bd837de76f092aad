// restart_intensity (actors/supervisor/restart_intensity.hpp): the supervisor's
// limit on restarts per window, without CAF.
#include <doctest/doctest.h>

#include <chrono>

#include "actors/supervisor/restart_intensity.hpp"

TEST_CASE("restart intensity allows max restarts per window, then refuses") {
  using clock = melissa::restart_intensity::clock;
  melissa::restart_intensity limit(3, std::chrono::seconds(10));
  const auto t0 = clock::time_point{} + std::chrono::hours(1);
  CHECK(limit.allow(t0));
  CHECK(limit.allow(t0 + std::chrono::seconds(1)));
  CHECK(limit.allow(t0 + std::chrono::seconds(2)));
  CHECK_FALSE(limit.allow(t0 + std::chrono::seconds(3)));
  // Once the first restarts leave the window, there is budget again.
  CHECK(limit.allow(t0 + std::chrono::seconds(12)));
  CHECK(limit.recent() == 2);  // t0+2 and t0+12; t0 and t0+1 left the window
}
