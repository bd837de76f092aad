// Replaces the global operator new/delete of the test executable (allowed by
// the standard: [replacement.functions]); counting is off unless a counter is
// alive, so doctest's own allocations elsewhere do not matter.
#include "allocation_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> counting{false};
std::atomic<std::size_t> total{0};
std::atomic<std::size_t> biggest{0};

void* allocate(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) {
    total += n;
    std::size_t prev = biggest.load();
    while (n > prev && !biggest.compare_exchange_weak(prev, n)) {
    }
  }
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace melissa::testing {
allocation_counter::allocation_counter() {
  total = 0;
  biggest = 0;
  counting = true;
}
allocation_counter::~allocation_counter() { counting = false; }
std::size_t allocation_counter::bytes() const { return total; }
std::size_t allocation_counter::largest() const { return biggest; }
}  // namespace melissa::testing
