#include <doctest/doctest.h>

#include "actors/client_proxy/buffer_pool.hpp"

using melissa::buffer_pool;

TEST_CASE("a shared buffer returns to the pool and is reused without reallocation") {
  auto pool = buffer_pool::make(1 << 20);
  auto first = pool->take(4096);
  CHECK(first.size() == 4096);
  const char* storage = first.data();
  {
    auto shared = pool->share(std::move(first));
    CHECK(shared->size() == 4096);
    CHECK(pool->idle_bytes() == 0);  // still in use
  }
  CHECK(pool->idle_bytes() == 4096);
  auto again = pool->take(4000);  // a smaller request reuses it
  CHECK(again.data() == storage);
  CHECK(again.size() == 4000);
  CHECK(pool->idle_bytes() == 0);
}

TEST_CASE("a buffer too small for the request is not used") {
  auto pool = buffer_pool::make(1 << 20);
  { auto s = pool->share(pool->take(100)); }
  auto big = pool->take(200);
  CHECK(big.size() == 200);
  CHECK(pool->idle_bytes() == 100);
}

TEST_CASE("idle buffers are capped: beyond the cap they are freed") {
  auto pool = buffer_pool::make(5000);
  {
    auto a = pool->share(pool->take(4096));
    auto b = pool->share(pool->take(4096));
  }
  CHECK(pool->idle_bytes() == 4096);
}

TEST_CASE("buffers outliving the proxy keep the pool alive") {
  std::shared_ptr<const std::vector<char>> held;
  {
    auto pool = buffer_pool::make(1 << 20);
    held = pool->share(pool->take(64));
  }
  CHECK(held->size() == 64);
  held.reset();  // returns to a pool nobody else holds: no crash, no leak (ASan/valgrind)
}
