#include "actors/metrics/training_figures.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace melissa {
namespace {

double seconds_between(training_figures::time_point a, training_figures::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

nlohmann::json or_null(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

}  // namespace

training_figures::training_figures(options o) : options_(o) {
  if (options_.ranks == 0) options_.ranks = 1;
}

std::vector<std::string> training_figures::columns(bool buffer_columns, bool checkpoint_column) {
  std::vector<std::string> c = {"samples_seen", "train_loss",   "validation_loss", "samples_per_s",
                                "batch_wait_s", "busy_fraction"};
  if (buffer_columns) {
    c.emplace_back("buffer_population");
    c.emplace_back("buffer_unseen");
  }
  c.emplace_back("learning_rate");
  if (checkpoint_column) c.emplace_back("checkpoint_pause_s");
  return c;
}

void training_figures::start(time_point now) {
  started_ = now;
  window_ = window{};
  window_.start = now;
}

void training_figures::waited(double seconds) {
  wait_s_ += seconds;
  window_.wait_s += seconds;
}

void training_figures::buffer(std::uint64_t population, std::uint64_t unseen) {
  buffer_population_ = population;
  buffer_unseen_ = unseen;
}

void training_figures::trained(std::uint64_t samples, double loss) {
  ++batches_;
  samples_ += samples;
  last_loss_ = loss;
  ++window_.batches;
  window_.samples += samples;
  window_.loss_sum += loss;
}

void training_figures::validated(double loss, double seconds) {
  window_.validation_s += seconds;
  window_.validated = true;
  validation_s_ += seconds;
  ++validations_;
  last_validation_ = loss;
  if (!first_validation_) first_validation_ = loss;
  if (!best_validation_ || loss < *best_validation_) best_validation_ = loss;
}

void training_figures::checkpoint_paused(double seconds) {
  window_.checkpoint_pause_s += seconds;
  window_.checkpointed = true;
}

metric_values training_figures::close_window(time_point now, double learning_rate) {
  const auto& w = window_;
  const double elapsed = seconds_between(w.start, now);
  const double training_time = std::max(elapsed - w.validation_s, 1e-9);
  const double throughput = static_cast<double>(w.samples * options_.ranks) / training_time;
  window_throughputs_.push_back(throughput);
  metric_values row{
      {"samples_seen", static_cast<double>(samples_seen())},
      {"train_loss", w.loss_sum / static_cast<double>(std::max<std::uint64_t>(w.batches, 1))},
      {"samples_per_s", throughput},
      {"batch_wait_s", w.wait_s},
      {"busy_fraction", 1.0 - w.wait_s / training_time}};
  if (options_.buffer_columns) {
    row.emplace_back("buffer_population", static_cast<double>(buffer_population_));
    row.emplace_back("buffer_unseen", static_cast<double>(buffer_unseen_));
  }
  row.emplace_back("learning_rate", learning_rate);
  // docs/training.md: a row carries a validation loss only when one was
  // computed in its window.
  if (w.validated) row.emplace_back("validation_loss", *last_validation_);
  if (w.checkpointed && options_.checkpoint_column)
    row.emplace_back("checkpoint_pause_s", w.checkpoint_pause_s);
  window_ = window{};
  window_.start = now;
  return row;
}

double training_figures::elapsed_s(time_point now) const {
  return started_ ? seconds_between(*started_, now) : 0.0;
}

double training_figures::samples_per_s() const {
  return window_throughputs_.empty() ? 0.0 : window_throughputs_.back();
}

double training_figures::mean_samples_per_s() const {
  if (window_throughputs_.empty()) return 0;
  double s = 0;
  for (double x : window_throughputs_) s += x;
  return s / static_cast<double>(window_throughputs_.size());
}

double training_figures::overall_samples_per_s(time_point now) const {
  return static_cast<double>(samples_seen()) / std::max(elapsed_s(now) - validation_s_, 1e-9);
}

double training_figures::busy_fraction(time_point now) const {
  const double elapsed = elapsed_s(now);
  return elapsed > 0 ? 1.0 - wait_s_ / elapsed : 0.0;
}

nlohmann::json training_figures::status(time_point now) const {
  nlohmann::json j{{"batches", batches_},
                   {"samples_seen", samples_seen()},
                   {"train_loss", batches_ ? last_loss_ : 0.0},
                   {"samples_per_s", samples_per_s()},
                   {"mean_samples_per_s", mean_samples_per_s()},
                   {"batch_wait_s", wait_s_},
                   {"busy_fraction", busy_fraction(now)},
                   {"elapsed_s", elapsed_s(now)},
                   {"validations", validations_}};
  if (options_.buffer_columns) {
    j["buffer_population"] = buffer_population_;
    j["buffer_unseen"] = buffer_unseen_;
  }
  j["validation_loss"] = or_null(last_validation_);
  j["min_validation_loss"] = or_null(best_validation_);
  j["first_validation_loss"] = or_null(first_validation_);
  return j;
}

nlohmann::json training_figures::summary(time_point now) const {
  auto j = status(now);
  j["total_time_s"] = elapsed_s(now);
  j["validation_time_s"] = validation_s_;
  j["overall_samples_per_s"] = overall_samples_per_s(now);
  return j;
}

}  // namespace melissa
