// Counts the bytes requested from the global operator new while a counter is
// alive, so that tests can prove a hostile header is refused before the
// payload it announces is allocated.
#pragma once

#include <cstddef>

namespace melissa::testing {

class allocation_counter {
 public:
  allocation_counter();
  ~allocation_counter();
  allocation_counter(const allocation_counter&) = delete;
  allocation_counter& operator=(const allocation_counter&) = delete;
  // Bytes requested since construction.
  std::size_t bytes() const;
  // The largest single request since construction.
  std::size_t largest() const;
};

}  // namespace melissa::testing
