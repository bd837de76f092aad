#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>

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
  std::shared_ptr<const melissa::payload_bytes> held;
  {
    auto pool = buffer_pool::make(1 << 20);
    held = pool->share(pool->take(64));
  }
  CHECK(held->size() == 64);
  held.reset();  // returns to a pool nobody else holds: no crash, no leak (ASan/valgrind)
}

TEST_CASE("payload buffers: large ones on their own 2 MiB-aligned mapping, zeros only when asked") {
  using melissa::payload_bytes;
  payload_bytes large(4'000'000);  // a 1000 x 1000 float32 step
  CHECK(reinterpret_cast<std::uintptr_t>(large.data()) % (2u << 20) == 0);
  large[0] = 1;
  large[3'999'999] = 2;  // the whole range is mapped and writable
  CHECK(large[3'999'999] == 2);
  payload_bytes zeros(3u << 20, 0);
  CHECK(reinterpret_cast<std::uintptr_t>(zeros.data()) % (2u << 20) == 0);
  CHECK(std::all_of(zeros.begin(), zeros.end(), [](char c) { return c == 0; }));
  payload_bytes small(100, 7);  // below 2 MiB: the ordinary heap
  CHECK(small[99] == 7);
  large.resize(100);  // shrinking keeps the mapping; freeing unmaps the capacity
  CHECK(large.capacity() == 4'000'000);
}

TEST_CASE("a pool buffer of the right size is not refilled when reused") {
  auto pool = buffer_pool::make(8u << 20);
  auto v = pool->take(4u << 20);
  v[12345] = 42;
  { auto shared = pool->share(std::move(v)); }
  auto again = pool->take(4u << 20);
  CHECK(again[12345] == 42);  // the same bytes: no zero fill on reuse
}
