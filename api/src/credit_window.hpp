// Byte-credit flow control of one connection (docs/protocol.md, "Session" 5).
//
// The server grants `window` payload bytes in its welcome and more with each
// credit frame as its sink stores steps. Grants add up (like HTTP/2 flow
// control), so `available` may exceed the window if the server chooses, and
// may go negative after a frame larger than the whole window, which is allowed
// when nothing is outstanding so that any field size can make progress.
#pragma once

#include <cstdint>

namespace melissa::client {

class credit_window {
 public:
  explicit credit_window(std::uint64_t window = 0) : window_(clamp(window)), available_(window_) {}

  bool may_send(std::uint64_t bytes) const {
    return static_cast<std::int64_t>(bytes) <= available_ || nothing_outstanding();
  }
  bool nothing_outstanding() const { return available_ >= window_; }
  void on_sent(std::uint64_t bytes) { available_ -= static_cast<std::int64_t>(bytes); }
  void on_credit(std::uint64_t bytes) {
    // available_ <= limit and clamp() <= limit: the comparison cannot overflow.
    available_ = clamp(bytes) >= limit - available_ ? limit : available_ + clamp(bytes);
  }

  std::int64_t window() const { return window_; }
  std::int64_t available() const { return available_; }

 private:
  // Far beyond any real window; keeps the signed arithmetic from overflowing
  // whatever a (possibly faulty) server grants.
  static constexpr std::int64_t limit = std::int64_t{1} << 62;
  static std::int64_t clamp(std::uint64_t v) {
    return v > static_cast<std::uint64_t>(limit) ? limit : static_cast<std::int64_t>(v);
  }

  std::int64_t window_;
  std::int64_t available_;
};

}  // namespace melissa::client
