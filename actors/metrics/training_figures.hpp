// Training figures: what a training run counts and reports, shared by the
// online trainer (actors/trainer/trainer.cpp) and melissa-train-offline:
// metric windows (one metrics row every `metrics_every` batches), validation
// bookkeeping (last, best, first, count, time), the metrics row of a window
// and the "training" JSON of the status and the summary. docs/training.md
// describes the figures; the rule it states for rows: a row carries a
// validation_loss only when a validation ran in its window.
//
//   training_figures f({ranks, buffer_columns});
//   f.start(now);
//   f.waited(s); f.buffer(population, unseen); f.trained(samples, loss);
//   if (...) f.validated(loss, seconds);
//   if (f.window_batches() >= metrics_every) writer.record(f.batches(), f.close_window(now, lr));
//   nlohmann::json summary = f.summary(now);
//
// Times are passed in (steady clock), so the figures are a pure function of
// the calls: the tests drive them with made-up times.
// Cost: O(1) per call; status() and summary() are O(windows) (the mean
// throughput). Thread safety: none; one owner (the trainer actor's thread,
// melissa-train-offline's loop). Plain C++ (no CAF, no torch).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "actors/metrics/metrics_writer.hpp"  // metric_values

namespace melissa {

class training_figures {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  struct options {
    // Ranks training in lockstep with the same batch size: samples_seen and
    // throughputs are this rank's times `ranks` (the study's figures).
    std::uint32_t ranks = 1;
    // The buffer_population and buffer_unseen columns and keys (online only).
    bool buffer_columns = true;
    // The checkpoint_pause_s column (a trainer that checkpoints): the
    // trainer's pause for the checkpoints taken in a row's window, in that
    // row only (docs/checkpoints.md).
    bool checkpoint_column = false;
  };

  explicit training_figures(options o);

  // The metrics columns, in CSV order (TensorBoard gets the same tags).
  static std::vector<std::string> columns(bool buffer_columns, bool checkpoint_column = false);
  std::vector<std::string> columns() const {
    return columns(options_.buffer_columns, options_.checkpoint_column);
  }

  // Training starts now: elapsed time counts from here (0 before), and a
  // first window opens.
  void start(time_point now);
  bool started() const { return started_.has_value(); }

  // Time spent waiting for a batch (the buffer, the loader).
  void waited(double seconds);
  // The buffer right after the latest draw.
  void buffer(std::uint64_t population, std::uint64_t unseen);
  // This rank trained one batch of `samples` samples with this loss.
  void trained(std::uint64_t samples, double loss);
  // A trainer restored from a checkpoint goes on counting from its batch
  // (the metrics rows' step, the status and the summary).
  void resume_at(std::uint64_t batches) { batches_ = batches; }
  // A validation ran: its loss, and the time it took (left out of throughputs).
  void validated(double loss, double seconds);
  // A checkpoint was taken: the trainer paused this long (its snapshot).
  // The window's row carries the sum as checkpoint_pause_s (checkpoint_column).
  void checkpoint_paused(double seconds);

  // Batches of the open window.
  std::uint64_t window_batches() const { return window_.batches; }
  // Closes the open window and opens the next one at `now`: its metrics row
  // (for metrics_writer::record at step batches()). validation_loss is in
  // the row only when validated() was called during this window.
  metric_values close_window(time_point now, double learning_rate);

  std::uint64_t batches() const { return batches_; }        // this rank's
  std::uint64_t samples_seen() const { return samples_ * options_.ranks; }
  double last_loss() const { return last_loss_; }
  std::optional<double> last_validation() const { return last_validation_; }
  std::optional<double> best_validation() const { return best_validation_; }
  double wait_s() const { return wait_s_; }
  double validation_s() const { return validation_s_; }
  double elapsed_s(time_point now) const;
  // Throughput of the last closed window (0 before the first).
  double samples_per_s() const;
  // Mean of the windows' throughputs (the SC23 paper's throughput).
  double mean_samples_per_s() const;
  // Samples over training time (validations left out). The windows' mean
  // flatters bursty buffers (a window fills fast when data comes in a burst);
  // this one does not.
  double overall_samples_per_s(time_point now) const;
  // 1 - waiting / elapsed (0 before any time has passed).
  double busy_fraction(time_point now) const;

  // The live figures: batches, samples_seen, train_loss, samples_per_s,
  // mean_samples_per_s, batch_wait_s, busy_fraction, elapsed_s, validations,
  // validation_loss, min_validation_loss, first_validation_loss (null until
  // a validation ran), buffer_population and buffer_unseen (buffer_columns).
  nlohmann::json status(time_point now) const;
  // status() plus total_time_s, validation_time_s, overall_samples_per_s.
  nlohmann::json summary(time_point now) const;

 private:
  // One metrics window.
  struct window {
    time_point start{};
    std::uint64_t batches = 0;
    std::uint64_t samples = 0;
    double loss_sum = 0;
    double wait_s = 0;
    double validation_s = 0;
    bool validated = false;
    double checkpoint_pause_s = 0;
    bool checkpointed = false;
  };

  options options_;
  std::optional<time_point> started_;
  window window_;
  std::uint64_t batches_ = 0;
  std::uint64_t samples_ = 0;
  double wait_s_ = 0;
  double validation_s_ = 0;
  double last_loss_ = 0;
  std::uint64_t validations_ = 0;
  std::optional<double> last_validation_, best_validation_, first_validation_;
  std::vector<double> window_throughputs_;
  std::uint64_t buffer_population_ = 0;
  std::uint64_t buffer_unseen_ = 0;
};

}  // namespace melissa
