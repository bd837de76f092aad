#include "actors/trainer/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/metrics/metrics_writer.hpp"

namespace melissa {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The metrics columns, in CSV order (TensorBoard gets the same tags).
const std::vector<std::string> metric_columns = {
    "samples_seen", "train_loss", "validation_loss", "samples_per_s", "batch_wait_s",
    "busy_fraction", "buffer_population", "buffer_unseen", "learning_rate"};

// One metrics window: `metrics_every` batches.
struct window_figures {
  clock_type::time_point start = clock_type::now();
  std::uint64_t batches = 0;
  std::uint64_t samples = 0;
  double loss_sum = 0;
  double wait_s = 0;        // waiting for the buffer to hand out a batch
  double validation_s = 0;  // excluded from throughput
  bool validated = false;   // a validation ran in this window (its loss goes in the row)
};

struct trainer_state {
  trainer_actor_settings settings;
  reservoir_actor reservoir;
  // The batch request in flight, if any: a restarted buffer never answers
  // what its predecessor had taken, so a restart notice asks the new one and
  // the old request's answer (an error, or nothing) is ignored.
  std::uint64_t batch_request = 0;  // the current request's number
  bool awaiting_batch = false;
  std::unique_ptr<trainer_core> core;
  std::unique_ptr<metrics_writer> metrics;  // rank 0 only
  clock_type::time_point started;
  bool buffer_exhausted = false;  // this rank's buffer said `last`; others may go on
  bool done = false;
  std::string summary;  // once done
  std::vector<caf::typed_response_promise<std::string>> waiting_for_end;

  // Totals.
  std::uint64_t batches = 0;
  std::uint64_t samples = 0;
  double wait_s = 0;
  double validation_s = 0;
  double last_loss = std::numeric_limits<double>::quiet_NaN();
  std::optional<double> last_validation;
  std::optional<double> best_validation;
  std::vector<double> window_throughputs;
  window_figures window;
  // The buffer's figures as of the latest batch it handed out.
  double buffer_population = 0;
  double buffer_unseen = 0;

  static inline const char* name = "trainer";
};

using trainer_ptr = trainer_actor::stateful_pointer<trainer_state>;

double mean_of(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / static_cast<double>(v.size());
}

nlohmann::json status_json(const trainer_state& st) {
  const double elapsed = st.core ? seconds_between(st.started, clock_type::now()) : 0;
  nlohmann::json j{{"rank", st.settings.rank},
                   {"ranks", st.settings.ranks},
                   {"state", st.done ? "done" : st.core ? "training" : "starting"},
                   {"batches", st.batches},  // this rank's batches
                   // Optimizer steps: every rank takes each one (some ranks without a batch).
                   {"steps", st.core ? st.core->batches() : 0},
                   {"samples_seen", st.samples * st.settings.ranks},
                   {"train_loss", st.batches ? st.last_loss : 0.0},
                   {"samples_per_s",
                    st.window_throughputs.empty() ? 0.0 : st.window_throughputs.back()},
                   {"mean_samples_per_s", mean_of(st.window_throughputs)},
                   {"batch_wait_s", st.wait_s},
                   {"busy_fraction", elapsed > 0 ? 1.0 - st.wait_s / elapsed : 0.0},
                   {"buffer_population", st.buffer_population},
                   {"buffer_unseen", st.buffer_unseen},
                   {"learning_rate", st.core ? st.core->learning_rate() : 0.0},
                   {"elapsed_s", elapsed}};
  j["validation_loss"] = st.last_validation ? nlohmann::json(*st.last_validation) : nlohmann::json();
  j["min_validation_loss"] =
      st.best_validation ? nlohmann::json(*st.best_validation) : nlohmann::json();
  return j;
}

void validate(trainer_ptr self) {
  auto& st = self->state;
  if (!st.settings.validation || st.settings.rank != 0) return;
  const auto t0 = clock_type::now();
  const double loss = st.core->evaluate(*st.settings.validation);
  const double spent = seconds_between(t0, clock_type::now());
  st.window.validation_s += spent;
  st.window.validated = true;
  st.validation_s += spent;
  st.last_validation = loss;
  if (!st.best_validation || loss < *st.best_validation) st.best_validation = loss;
}

void close_window(trainer_ptr self) {
  auto& st = self->state;
  auto& w = st.window;
  const double elapsed = seconds_between(w.start, clock_type::now());
  const double training_time = std::max(elapsed - w.validation_s, 1e-9);
  // Every rank steps in lockstep with the same batch size: the study's
  // throughput is this rank's times the number of ranks.
  const double throughput = static_cast<double>(w.samples * st.settings.ranks) / training_time;
  st.window_throughputs.push_back(throughput);
  if (st.metrics) {
    metric_values row{
        {"samples_seen", static_cast<double>(st.samples * st.settings.ranks)},
        {"train_loss", w.loss_sum / static_cast<double>(std::max<std::uint64_t>(w.batches, 1))},
        {"samples_per_s", throughput},
        {"batch_wait_s", w.wait_s},
        {"busy_fraction", 1.0 - w.wait_s / std::max(training_time, 1e-9)},
        {"buffer_population", st.buffer_population},
        {"buffer_unseen", st.buffer_unseen},
        {"learning_rate", st.core->learning_rate()}};
    if (w.validated) row.emplace_back("validation_loss", *st.last_validation);
    st.metrics->record(st.batches, row);
  }
  w = window_figures{};
}

void finish(trainer_ptr self) {
  auto& st = self->state;
  st.done = true;
  if (st.window.batches > 0) {
    validate(self);
    close_window(self);
  }
  const double total = seconds_between(st.started, clock_type::now());
  auto summary = status_json(st);
  summary["total_time_s"] = total;
  summary["validation_time_s"] = st.validation_s;
  // The windows' mean (the paper's throughput) flatters bursty buffers (a
  // window fills fast when data comes in a burst); this one does not.
  summary["overall_samples_per_s"] =
      static_cast<double>(st.samples * st.settings.ranks) / std::max(total - st.validation_s, 1e-9);
  summary["weights_checksum"] = st.core->weights_checksum();
  if (st.settings.rank == 0) {
    const auto dir = st.settings.output_dir + "/model";
    try {
      std::filesystem::create_directories(dir);
      st.core->save(dir);
      summary["model"] = {{"torchscript", dir + "/model.pt"}, {"state_dict", dir + "/model_state.pt"}};
    } catch (const std::exception& e) {
      spdlog::error("cannot save the model in {}: {}", dir, e.what());
      summary["model_error"] = e.what();
    }
  }
  st.summary = summary.dump();
  spdlog::info("training ended: {} batches, {} samples, {:.1f} samples/s, min validation loss {}",
               st.batches, st.samples * st.settings.ranks, mean_of(st.window_throughputs),
               st.best_validation ? std::to_string(*st.best_validation) : std::string("n/a"));
  for (auto& rp : st.waiting_for_end) rp.deliver(st.summary);
  st.waiting_for_end.clear();
}

// One step with this batch (nullptr: this rank has nothing, others may).
void run_step(trainer_ptr self, const training_batch* batch) {
  auto& st = self->state;
  const auto result = st.core->step(batch);
  if (!result.trained) return finish(self);  // no rank had a batch: training is over
  if (batch && st.settings.steering && !result.sample_losses.empty())
    caf::anon_send(st.settings.steering, losses_atom::value, batch->sim_ids, batch->time_steps,
                   result.sample_losses, result.batch_mean, result.batch_std);
  if (batch) {
    ++st.batches;
    st.samples += batch->size;
    st.last_loss = result.loss;
    ++st.window.batches;
    st.window.samples += batch->size;
    st.window.loss_sum += result.loss;
  }
  if (st.batches > 0 && st.batches % st.settings.validation_every == 0) validate(self);
  if (st.window.batches >= st.settings.metrics_every) close_window(self);
  self->send(self, next_atom::value);
}

void request_batch(trainer_ptr self);

void next_step(trainer_ptr self) {
  auto& st = self->state;
  if (st.done) return;
  if (!st.core) {
    // Joining the group blocks until every rank is there: fine on this thread.
    auto group = st.settings.join_group ? st.settings.join_group() : nullptr;
    st.core = std::make_unique<trainer_core>(st.settings.core, std::move(group));
    st.started = clock_type::now();
    st.window = window_figures{};
  }
  if (st.buffer_exhausted) return run_step(self, nullptr);
  request_batch(self);
}

void request_batch(trainer_ptr self) {
  auto& st = self->state;
  const auto asked = clock_type::now();
  const auto number = ++st.batch_request;
  st.awaiting_batch = true;
  self->request(st.reservoir, caf::infinite, batch_atom::value, st.settings.batch_size)
      .then(
          [self, asked, number](const training_batch_ptr& batch) {
            auto& st = self->state;
            if (number != st.batch_request) return;  // asked a buffer since replaced
            st.awaiting_batch = false;
            const double waited = seconds_between(asked, clock_type::now());
            st.wait_s += waited;
            st.window.wait_s += waited;
            st.buffer_population = static_cast<double>(batch->buffer_population);
            st.buffer_unseen = static_cast<double>(batch->buffer_unseen);
            if (batch->last) {
              st.buffer_exhausted = true;
              return run_step(self, nullptr);
            }
            run_step(self, batch.get());
          },
          [self, number](const caf::error& err) {
            auto& st = self->state;
            if (number != st.batch_request) return;
            // The buffer is gone: its supervisor restarts it and the restart
            // notice asks the new one. Any other error ends the trainer, as
            // before (its supervisor decides what happens next).
            if (err != caf::sec::request_receiver_down) return self->quit(err);
            spdlog::warn("the training buffer did not give a batch ({}); waiting for its restart",
                         self->system().render(err));
          });
}

trainer_actor::behavior_type trainer_fn(trainer_ptr self, trainer_actor_settings settings,
                                        reservoir_actor reservoir) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.reservoir = std::move(reservoir);
  if (st.settings.rank == 0 && !st.settings.output_dir.empty())
    st.metrics = std::make_unique<metrics_writer>(st.settings.output_dir, metric_columns);
  self->send(self, next_atom::value);
  return {
      [self](next_atom) {
        try {
          next_step(self);
        } catch (const std::exception& e) {
          // A failed step (a c10d peer lost, a bad batch) ends this actor; its
          // supervisor decides what happens next.
          spdlog::error("training step failed: {}", e.what());
          self->quit(caf::make_error(caf::sec::runtime_error, e.what()));
        }
      },
      [self](train_atom) { return status_json(self->state).dump(); },
      [self](restarted_atom, const std::string& name, caf::actor fresh) {
        auto& st = self->state;
        if (name == "steering") {
          st.settings.steering = caf::actor_cast<steering_actor>(fresh);
        } else if (name == "sink") {
          st.reservoir = caf::actor_cast<reservoir_actor>(fresh);
          spdlog::warn("the training buffer was restarted; drawing from the new one");
          // A request the dead buffer had taken is never answered: ask again.
          if (st.awaiting_batch && !st.done) {
            try {
              request_batch(self);
            } catch (const std::exception& e) {
              self->quit(caf::make_error(caf::sec::runtime_error, e.what()));
            }
          }
        }
      },
      [self](await_training_atom) -> caf::result<std::string> {
        auto& st = self->state;
        if (st.done) return st.summary;
        auto rp = self->make_response_promise<std::string>();
        st.waiting_for_end.push_back(rp);
        return rp;
      },
  };
}

}  // namespace

trainer_actor spawn_trainer(caf::actor_system& sys, trainer_actor_settings settings,
                            reservoir_actor reservoir) {
  return sys.spawn<caf::detached>(trainer_fn, std::move(settings), std::move(reservoir));
}

}  // namespace melissa
