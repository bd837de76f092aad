// Step payload buffers of a server rank, recycled. A reader thread takes a
// buffer of the right size before a payload is read and reads straight into
// it; the buffer returns to the pool when the last actor holding the step
// (the sink) releases it, so a steady stream allocates nothing and touches
// no new page. Thread-safe: buffers come back from whichever thread ran the
// sink.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <vector>

#include "messages/payload.hpp"

namespace melissa {

class buffer_pool : public std::enable_shared_from_this<buffer_pool> {
 public:
  // Keeps at most `max_bytes` of idle buffers.
  static std::shared_ptr<buffer_pool> make(std::size_t max_bytes) {
    return std::shared_ptr<buffer_pool>(new buffer_pool(max_bytes));
  }

  // A buffer of exactly `n` bytes (contents unspecified). The most recently
  // returned one that fits: its pages are likely still in the CPU's cache,
  // and the payload is copied into it next (issue 16: with a pool taken
  // oldest first, every step was written into memory long out of cache).
  payload_bytes take(std::size_t n) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++taken_;
      for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
        if (it->size() < n) continue;
        payload_bytes v = std::move(*it);
        idle_bytes_ -= v.size();
        idle_.erase(std::next(it).base());
        v.resize(n);  // shrinking: no allocation, no fill
        return v;
      }
      ++fresh_;
    }
    return payload_bytes(n);
  }

  // Shares `v` read-only; it comes back to the pool when the last owner drops
  // it, and `after` (if set) runs then (ingest_io returns its budget).
  std::shared_ptr<const payload_bytes> share(payload_bytes&& v,
                                                 std::function<void()> after = {}) {
    auto* raw = new payload_bytes(std::move(v));
    return std::shared_ptr<const payload_bytes>(
        raw, [pool = shared_from_this(), after = std::move(after)](const payload_bytes* p) {
          pool->give_back(std::move(*const_cast<payload_bytes*>(p)));
          delete p;
          if (after) after();
        });
  }

  std::size_t idle_bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return idle_bytes_;
  }
  // Buffers handed out, those allocated for it (a fresh one costs a zero
  // fill and page faults: the profile's memset), those freed (pool full).
  struct figures {
    std::uint64_t taken = 0, fresh = 0, freed = 0;
  };
  figures counts() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {taken_, fresh_, freed_};
  }

 private:
  explicit buffer_pool(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  void give_back(payload_bytes&& v) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_bytes_ + v.size() > max_bytes_) {
      ++freed_;
      return;  // freed by the caller
    }
    idle_bytes_ += v.size();
    idle_.push_back(std::move(v));
  }

  mutable std::mutex mutex_;
  std::vector<payload_bytes> idle_;
  std::size_t idle_bytes_ = 0;
  std::size_t max_bytes_;
  std::uint64_t taken_ = 0, fresh_ = 0, freed_ = 0;
};

}  // namespace melissa
