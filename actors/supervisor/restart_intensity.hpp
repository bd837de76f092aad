// The restart budget of a supervisor: at most `max_restarts` within `window`.
// Beyond it the supervisor gives up and fails itself, so that a child that
// crashes in a loop escalates instead of spinning forever. Plain C++, no CAF.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>

namespace melissa {

class restart_intensity {
 public:
  using clock = std::chrono::steady_clock;

  restart_intensity(std::size_t max_restarts, clock::duration window)
      : max_restarts_(max_restarts), window_(window) {}

  // Records a restart at `now`; false if it exceeds the budget.
  bool allow(clock::time_point now) {
    while (!restarts_.empty() && now - restarts_.front() > window_) restarts_.pop_front();
    if (restarts_.size() >= max_restarts_) return false;
    restarts_.push_back(now);
    return true;
  }

  std::size_t recent() const { return restarts_.size(); }

 private:
  std::size_t max_restarts_;
  clock::duration window_;
  std::deque<clock::time_point> restarts_;
};

}  // namespace melissa
