// Training figures (actors/metrics/training_figures.hpp), driven with made-up
// times: windows and their rows, the validation rule of docs/training.md (a
// row carries a validation loss only when one was computed in its window),
// throughputs without validation time, the summary JSON.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "actors/metrics/training_figures.hpp"

using namespace melissa;
using namespace std::chrono_literals;

namespace {

const training_figures::time_point t0{};

std::optional<double> value(const metric_values& row, const std::string& column) {
  for (const auto& [name, v] : row)
    if (name == column) return v;
  return std::nullopt;
}

}  // namespace

TEST_CASE("a row carries a validation loss only when one was computed in its window") {
  training_figures f({1, false});
  f.start(t0);
  f.trained(10, 1.0);
  f.validated(0.5, 0.0);
  auto row = f.close_window(t0 + 1s, 1e-3);
  CHECK(value(row, "validation_loss") == 0.5);

  f.trained(10, 0.8);  // no validation in this window
  row = f.close_window(t0 + 2s, 1e-3);
  CHECK_FALSE(value(row, "validation_loss"));
  CHECK(f.last_validation() == 0.5);  // still the latest, for the status and the summary

  f.validated(0.25, 0.0);
  f.trained(10, 0.7);
  row = f.close_window(t0 + 3s, 1e-3);
  CHECK(value(row, "validation_loss") == 0.25);
}

TEST_CASE("a window's row: mean loss, throughput without validation time, busy fraction") {
  training_figures f({2, true});  // two ranks: the study's figures are twice this rank's
  f.start(t0);
  f.waited(1.0);
  f.buffer(40, 7);
  f.trained(10, 1.0);
  f.trained(10, 3.0);
  f.validated(2.0, 1.0);
  CHECK(f.window_batches() == 2);
  const auto row = f.close_window(t0 + 5s, 0.01);
  CHECK(f.window_batches() == 0);
  CHECK(value(row, "samples_seen") == 40);
  CHECK(value(row, "train_loss") == 2.0);
  CHECK(value(row, "samples_per_s") == doctest::Approx(40.0 / 4.0));  // 5 s less 1 s validating
  CHECK(value(row, "batch_wait_s") == 1.0);
  CHECK(value(row, "busy_fraction") == doctest::Approx(1.0 - 1.0 / 4.0));
  CHECK(value(row, "buffer_population") == 40);
  CHECK(value(row, "buffer_unseen") == 7);
  CHECK(value(row, "learning_rate") == 0.01);
  for (const auto& [name, v] : row) {
    bool known = false;
    for (const auto& c : f.columns()) known = known || c == name;
    CHECK_MESSAGE(known, name);
  }

  // The next window starts where this one closed and forgets its figures.
  f.trained(10, 5.0);
  const auto next = f.close_window(t0 + 7s, 0.01);
  CHECK(value(next, "train_loss") == 5.0);
  CHECK(value(next, "batch_wait_s") == 0.0);
  CHECK(value(next, "samples_per_s") == doctest::Approx(20.0 / 2.0));
  CHECK(f.samples_per_s() == doctest::Approx(10.0));
  CHECK(f.mean_samples_per_s() == doctest::Approx(10.0));
}

TEST_CASE("without a buffer (offline) there are no buffer columns or keys") {
  training_figures f({1, false});
  CHECK(f.columns() == std::vector<std::string>{"samples_seen", "train_loss", "validation_loss",
                                                "samples_per_s", "batch_wait_s", "busy_fraction",
                                                "learning_rate"});
  CHECK(training_figures::columns(true).size() == 9);
  f.start(t0);
  f.trained(4, 1.0);
  CHECK_FALSE(value(f.close_window(t0 + 1s, 0.1), "buffer_population"));
  CHECK_FALSE(f.status(t0 + 1s).contains("buffer_population"));
}

TEST_CASE("checkpoint_pause_s: the pauses of a window's checkpoints, in that row only") {
  training_figures f({1, true, true});
  CHECK(f.columns().back() == "checkpoint_pause_s");
  CHECK(training_figures::columns(true).back() == "learning_rate");  // off by default
  f.start(t0);
  f.trained(4, 1.0);
  f.checkpoint_paused(0.25);
  f.trained(4, 1.0);
  f.checkpoint_paused(0.5);
  auto row = f.close_window(t0 + 1s, 0.1);
  CHECK(value(row, "checkpoint_pause_s") == 0.75);
  f.trained(4, 1.0);
  row = f.close_window(t0 + 2s, 0.1);
  CHECK_FALSE(value(row, "checkpoint_pause_s"));  // no checkpoint in this window
  // Without the column a pause is not in the row (the summary has it).
  training_figures plain({1, true});
  plain.start(t0);
  plain.trained(4, 1.0);
  plain.checkpoint_paused(0.25);
  CHECK_FALSE(value(plain.close_window(t0 + 1s, 0.1), "checkpoint_pause_s"));
}

TEST_CASE("status and summary: validation bookkeeping, totals, nulls before any validation") {
  training_figures f({1, false});
  auto before = f.status(t0);
  CHECK(before["elapsed_s"] == 0.0);  // not started
  CHECK(before["busy_fraction"] == 0.0);
  CHECK(before["train_loss"] == 0.0);
  CHECK(before["validation_loss"].is_null());
  CHECK(before["min_validation_loss"].is_null());

  f.start(t0);
  f.waited(2.0);
  f.trained(10, 1.0);
  f.validated(0.5, 1.0);
  f.trained(10, 0.9);
  f.validated(0.2, 1.0);
  f.validated(0.4, 1.0);
  const auto s = f.summary(t0 + 10s);
  CHECK(s["batches"] == 2);
  CHECK(s["samples_seen"] == 20);
  CHECK(s["train_loss"] == 0.9);
  CHECK(s["validations"] == 3);
  CHECK(s["validation_loss"] == 0.4);
  CHECK(s["min_validation_loss"] == 0.2);
  CHECK(s["first_validation_loss"] == 0.5);
  CHECK(s["batch_wait_s"] == 2.0);
  CHECK(s["busy_fraction"] == doctest::Approx(0.8));
  CHECK(s["total_time_s"] == 10.0);
  CHECK(s["validation_time_s"] == 3.0);
  CHECK(s["overall_samples_per_s"] == doctest::Approx(20.0 / 7.0));
  CHECK(s["samples_per_s"] == 0.0);  // no window closed yet
}
