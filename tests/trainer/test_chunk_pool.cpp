// chunk_pool: every chunk runs exactly once, whatever the threads.
#include <doctest/doctest.h>

#include <atomic>
#include <vector>

#include "actors/trainer/chunk_pool.hpp"

using melissa::chunk_pool;

TEST_CASE("every chunk runs once, with its index and bounds") {
  for (int threads : {1, 2, 4}) {
    CAPTURE(threads);
    chunk_pool pool(threads);
    CHECK(pool.threads() == (threads < 1 ? 1 : threads));
    for (int run = 0; run < 500; ++run) {  // many runs: helpers wake late, join early
      std::int64_t count = 1000 + run, chunk = 37;
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(count));
      std::atomic<bool> bounds_ok{true};
      pool.run(count, chunk, [&](std::int64_t index, std::int64_t begin, std::int64_t end) {
        if (begin != index * chunk || end != std::min(count, begin + chunk)) bounds_ok = false;
        for (std::int64_t i = begin; i < end; ++i) hits[static_cast<std::size_t>(i)]++;
      });
      CHECK(bounds_ok);
      int wrong = 0;
      for (auto& hit : hits) wrong += hit != 1;
      REQUIRE(wrong == 0);
    }
  }
}

TEST_CASE("nothing to do, or one chunk, runs on the caller") {
  chunk_pool pool(3);
  int calls = 0;
  pool.run(0, 10, [&](std::int64_t, std::int64_t, std::int64_t) { ++calls; });
  CHECK(calls == 0);
  pool.run(5, 10, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
    ++calls;
    CHECK(begin == 0);
    CHECK(end == 5);
  });
  CHECK(calls == 1);
}
