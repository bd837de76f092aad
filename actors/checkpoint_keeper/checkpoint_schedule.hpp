// When the next checkpoint is due: every `every_batches` trained batches or
// every `every_seconds` seconds, whichever comes first (the [checkpoint]
// section; 0 switches that trigger off). Plain C++, no clock of its own: the
// caller passes the time, so the tests drive it.
#pragma once

#include <cstdint>
#include <string>

namespace melissa::checkpoint {

class checkpoint_schedule {
 public:
  checkpoint_schedule(std::uint64_t every_batches, double every_seconds, std::uint64_t batch,
                      double now)
      : every_batches_(every_batches), every_seconds_(every_seconds), last_batch_(batch),
        last_time_(now) {}

  // "every_batches" or "every_seconds" when a checkpoint is due after `batch`
  // batches at time `now`; "" when not. Before the first trained batch since
  // the last checkpoint nothing is due (the state has not changed).
  std::string due(std::uint64_t batch, double now) const {
    if (batch <= last_batch_) return {};
    if (every_batches_ > 0 && batch - last_batch_ >= every_batches_) return "every_batches";
    if (every_seconds_ > 0 && now - last_time_ >= every_seconds_) return "every_seconds";
    return {};
  }

  // A checkpoint (for any reason) was taken at `batch`, `now`: both
  // intervals start again.
  void taken(std::uint64_t batch, double now) {
    last_batch_ = batch;
    last_time_ = now;
  }

 private:
  std::uint64_t every_batches_;
  double every_seconds_;
  std::uint64_t last_batch_;
  double last_time_;
};

// Whether the server stops after a checkpoint taken for `reason`.
inline bool stops(const std::string& reason) { return reason == "sigterm" || reason == "launcher_lost"; }

}  // namespace melissa::checkpoint
