#include "actors/trainer/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <vector>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/metrics/metrics_writer.hpp"
#include "actors/metrics/training_figures.hpp"

namespace melissa {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct trainer_state {
  trainer_actor_settings settings;
  reservoir_actor reservoir;
  // The batch request in flight, if any: a restarted buffer never answers
  // what its predecessor had taken, so a restart notice asks the new one and
  // the old request's answer (an error, or nothing) is ignored.
  std::uint64_t batch_request = 0;  // the current request's number
  bool awaiting_batch = false;
  // Prefetch (settings.prefetch, resolved when the core exists): the batch
  // that arrived and was staged, waiting for the next one (or `last`) to
  // arrive before its step.
  bool prefetch = false;
  training_batch_ptr held;
  std::unique_ptr<trainer_core> core;
  std::unique_ptr<metrics_writer> metrics;  // rank 0 only
  bool buffer_exhausted = false;  // this rank's buffer said `last`; others may go on
  bool done = false;
  std::string summary;  // once done
  std::vector<caf::typed_response_promise<std::string>> waiting_for_end;
  // Windows, validations, metrics rows, the status and summary figures.
  training_figures figures{{1, true}};
  // On-demand checkpoints: asked (taken at the next step boundary), then
  // being written (answered once their future is ready: tick_atom polls).
  struct asked_checkpoint {
    std::string reason;
    caf::typed_response_promise<std::string> promise;
  };
  std::vector<asked_checkpoint> asked;
  std::vector<std::pair<std::shared_future<std::string>, caf::typed_response_promise<std::string>>>
      writing;
  // Several ranks: a checkpoint that stops the server was taken; no more
  // steps (the other ranks stop too), `stopped` hears its answer once.
  bool parked = false;
  std::shared_future<std::string> stop_answer;
  bool stop_reported = false;

  static inline const char* name = "trainer";
};

using trainer_ptr = trainer_actor::stateful_pointer<trainer_state>;

// The figures plus who and where: the live status (train_atom) and, with
// the totals, the summary.
nlohmann::json status_json(const trainer_state& st, nlohmann::json figures) {
  figures["rank"] = st.settings.rank;
  figures["ranks"] = st.settings.ranks;
  figures["state"] = st.done ? "done" : st.core ? "training" : "starting";
  // Optimizer steps: every rank takes each one (some ranks without a batch).
  figures["steps"] = st.core ? st.core->batches() : 0;
  figures["learning_rate"] = st.core ? st.core->learning_rate() : 0.0;
  if (st.settings.checkpoint_figures)
    figures["checkpoints"] = nlohmann::json::parse(st.settings.checkpoint_figures());
  if (st.core) {
    figures["device"] = st.core->model().device;
    figures["model_kind"] = st.core->model().kind;
    figures["parameter_count"] = st.core->parameter_count();
  }
  return figures;
}

// The newest checkpoint written, as checkpoint_atom answers it.
std::string last_checkpoint(const trainer_state& st) {
  const auto f = nlohmann::json::parse(st.settings.checkpoint_figures ? st.settings.checkpoint_figures()
                                                                      : std::string("{}"));
  if (f.value("last_path", nlohmann::json()).is_string())
    return nlohmann::json{{"path", f["last_path"]}, {"batch", f["last_batch"]}}.dump();
  return R"({"error": "training has ended without a checkpoint"})";
}

// Rank 0: the model as it is now, in <output_dir>/model (model.pt,
// model_state.pt), named in `summary` (or why it could not be saved).
void save_model(trainer_state& st, nlohmann::json& summary) {
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

// A checkpoint the study stops on (SIGTERM, a lost launcher, Ctrl-C of
// melissa-run): rank 0 also saves the model reached so far, so that a study
// that is never resumed still leaves its surrogate where a finished one does.
void save_model_if_stopping(trainer_state& st, const std::string& reason) {
  if (st.settings.rank != 0) return;
  if (reason != "sigterm" && reason != "launcher_lost" && reason != "interrupt") return;
  nlohmann::json ignored;
  save_model(st, ignored);
  spdlog::info("trainer: the model at batch {} saved in {}/model (the study stops: {})",
               st.core->batches(), st.settings.output_dir, reason);
}

// At a step boundary: the checkpoints asked for are taken now (all at
// once: one checkpoint answers them all), unless the writer is busy.
void take_asked(trainer_ptr self) {
  auto& st = self->state;
  if (st.asked.empty() || !st.settings.checkpoint_now) return;
  const auto reason = st.asked.front().reason;
  auto future = st.settings.checkpoint_now(*st.core, reason);
  if (!future) return;
  save_model_if_stopping(st, reason);
  const auto shared = future->share();
  for (auto& a : st.asked) st.writing.emplace_back(shared, a.promise);
  st.asked.clear();
  self->delayed_send(self, std::chrono::milliseconds(50), tick_atom::value);
}

bool collective(const trainer_state& st) { return static_cast<bool>(st.settings.collective_boundary); }

std::uint32_t step_signal(const trainer_state& st) {
  if (!collective(st)) return 0;
  std::vector<std::string> reasons;
  for (const auto& a : st.asked) reasons.push_back(a.reason);
  return st.settings.step_signal(st.core->batches(), reasons);
}

void note_checkpoint_pause(trainer_state& st);

// Several ranks, at the boundary after a step: the checkpoint the ranks'
// bits decided (the same on every rank), answering this rank's asked ones.
void take_collective(trainer_ptr self, std::uint32_t bits) {
  auto& st = self->state;
  auto taken = st.settings.collective_boundary(*st.core, bits, st.buffer_exhausted);
  if (!taken) return;
  note_checkpoint_pause(st);
  save_model_if_stopping(st, taken->reason);
  const auto shared = taken->answer.share();
  for (auto& a : st.asked) st.writing.emplace_back(shared, a.promise);
  st.asked.clear();
  if (taken->reason == "sigterm" || taken->reason == "launcher_lost") {
    st.parked = true;
    st.stop_answer = shared;
    // No batch request follows to cut the buffer at: it cuts on this
    // message, with nothing drawn since this step's batch.
    self->send(st.reservoir, checkpoint_atom::value);
    spdlog::warn("trainer: checkpoint at batch {} ({}): training stops here on every rank",
                 st.core->batches(), taken->reason);
  }
  self->delayed_send(self, std::chrono::milliseconds(50), tick_atom::value);
}

// Several ranks, waiting for a batch with a stopping checkpoint asked
// (SIGTERM, a lost launcher: every rank is asked, or the others are
// stepping): a step without a batch carries the bits, so that the ranks
// meet at a step without waiting for data that may never come. Its
// idle_step_signal tells the ranks that it is not the end of training. The
// batch request in flight stays; the buffer cuts on checkpoint_atom.
void idle_step(trainer_ptr self) {
  auto& st = self->state;
  spdlog::info("trainer: waiting for data at batch {}; a step without a batch carries the checkpoint asked",
               st.core->batches());
  const auto result = st.core->step(nullptr, step_signal(st) | idle_step_signal);
  take_collective(self, result.signal);
  // Not taken (a rank's writer was busy): again shortly, if still waiting.
  if (!st.parked && !st.asked.empty())
    self->delayed_send(self, std::chrono::milliseconds(200), tick_atom::value);
}

bool stop_asked(const trainer_state& st) {
  for (const auto& a : st.asked)
    if (a.reason == "sigterm" || a.reason == "launcher_lost") return true;
  return false;
}

// The pause of the checkpoints just taken, into the open metrics window.
void note_checkpoint_pause(trainer_state& st) {
  if (!st.settings.checkpoint_pause) return;
  if (const auto pause = st.settings.checkpoint_pause()) st.figures.checkpoint_paused(*pause);
}

void validate(trainer_ptr self) {
  auto& st = self->state;
  if (!st.settings.validation || st.settings.rank != 0) return;
  const auto t0 = clock_type::now();
  const double loss = st.core->evaluate(*st.settings.validation);
  st.figures.validated(loss, seconds_between(t0, clock_type::now()));
}

void close_window(trainer_ptr self) {
  auto& st = self->state;
  const auto row = st.figures.close_window(clock_type::now(), st.core->learning_rate());
  if (st.metrics) st.metrics->record(static_cast<std::int64_t>(st.figures.batches()), row);
}

void finish(trainer_ptr self) {
  auto& st = self->state;
  st.done = true;
  if (st.figures.window_batches() > 0) {
    validate(self);
    close_window(self);
  }
  if (st.settings.at_step_boundary) st.settings.at_step_boundary(*st.core, true);
  // The writer is idle now: every on-demand checkpoint is answered.
  for (auto& [future, promise] : st.writing) promise.deliver(future.get());
  st.writing.clear();
  for (auto& a : st.asked) a.promise.deliver(last_checkpoint(st));
  st.asked.clear();
  auto summary = status_json(st, st.figures.summary(clock_type::now()));
  summary["weights_checksum"] = st.core->weights_checksum();
  if (st.settings.checkpoint_figures)
    summary["checkpoints"] = nlohmann::json::parse(st.settings.checkpoint_figures());
  if (st.settings.rank == 0) save_model(st, summary);
  st.summary = summary.dump();
  const auto best = st.figures.best_validation();
  spdlog::info("training ended: {} batches, {} samples, {:.1f} samples/s, min validation loss {}",
               st.figures.batches(), st.figures.samples_seen(), st.figures.mean_samples_per_s(),
               best ? std::to_string(*best) : std::string("n/a"));
  for (auto& rp : st.waiting_for_end) rp.deliver(st.summary);
  st.waiting_for_end.clear();
}

// One step with this batch (nullptr: this rank has nothing, others may).
void run_step(trainer_ptr self, const training_batch* batch) {
  auto& st = self->state;
  const auto result = st.core->step(batch, step_signal(st));
  if (!result.trained && (result.signal & idle_step_signal)) {
    // No rank had a batch, but some rank only waits for data (idle_step):
    // not the end; the boundary is shared all the same.
    take_collective(self, result.signal);
    if (!st.parked) self->send(self, next_atom::value);
    return;
  }
  if (!result.trained) return finish(self);  // no rank had a batch: training is over
  if (batch && st.settings.steering && !result.sample_losses.empty())
    caf::anon_send(st.settings.steering, losses_atom::value, batch->sim_ids, batch->time_steps,
                   result.sample_losses, result.batch_mean, result.batch_std);
  if (batch) st.figures.trained(batch->size, result.loss);
  const auto batches = st.figures.batches();
  if (batches > 0 && batches % st.settings.validation_every == 0) validate(self);
  if (st.figures.window_batches() >= st.settings.metrics_every) close_window(self);
  if (collective(st)) {
    take_collective(self, result.signal);
    if (st.parked) return;  // the ranks stop: no step (a peer may be gone)
  } else if (st.settings.at_step_boundary) {
    if (st.held) {
      // A batch drawn ahead is here: the buffer's cut would not match the
      // trainer's counter. When a checkpoint is due, train it now, without
      // drawing the next, and checkpoint at that step's boundary.
      const auto& due = st.settings.checkpoint_due;
      if (!due || due(st.core->batches()) || !st.asked.empty()) {
        const auto drained = std::move(st.held);
        st.held = nullptr;
        return run_step(self, drained.get());
      }
    } else {
      take_asked(self);
      st.settings.at_step_boundary(*st.core, false);
      note_checkpoint_pause(st);
    }
  }
  self->send(self, next_atom::value);
}

void request_batch(trainer_ptr self);

void next_step(trainer_ptr self) {
  auto& st = self->state;
  if (st.done || st.parked) return;
  if (!st.core) {
    // Joining the group blocks until every rank is there: fine on this thread.
    auto group = st.settings.join_group ? st.settings.join_group() : nullptr;
    st.core = std::make_unique<trainer_core>(st.settings.core, std::move(group));
    if (!st.settings.restore_dir.empty()) {
      st.core->load(st.settings.restore_dir);
      spdlog::info("trainer: restored from {} at batch {}", st.settings.restore_dir,
                   st.core->batches());
      st.figures.resume_at(st.core->batches());
    }
    if (st.settings.rank == 0 && !st.settings.output_dir.empty()) {
      // Restored: metrics.csv goes on from the checkpoint's batch, without
      // the rows the lost server wrote after it (they are trained again).
      metrics_options options;
      if (!st.settings.restore_dir.empty()) {
        options.append = true;
        options.keep_through_step = static_cast<std::int64_t>(st.core->batches());
      }
      st.metrics = std::make_unique<metrics_writer>(st.settings.output_dir, st.figures.columns(), options);
    }
    st.figures.start(clock_type::now());
    st.prefetch = st.settings.prefetch.value_or(st.core->model().device.rfind("cuda", 0) == 0);
    if (st.prefetch && collective(st)) {
      // A batch drawn ahead would put the buffer's cut a batch ahead on some ranks.
      spdlog::info("trainer: no prefetch (checkpoints with several ranks)");
      st.prefetch = false;
    }
    if (st.prefetch) spdlog::info("trainer: prefetching one batch ahead of each step");
  }
  if (st.buffer_exhausted) {
    if (st.held) {  // cannot happen (`last` trains it), kept for safety
      const auto held = std::move(st.held);
      st.held = nullptr;
      return run_step(self, held.get());
    }
    return run_step(self, nullptr);
  }
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
            if (st.parked) return;  // stopped on a checkpoint: this batch is not trained
            st.figures.waited(seconds_between(asked, clock_type::now()));
            st.figures.buffer(batch->buffer_population, batch->buffer_unseen);
            if (batch->last) {
              st.buffer_exhausted = true;
              if (st.held) {  // the batch drawn ahead is trained first
                const auto held = std::move(st.held);
                st.held = nullptr;
                return run_step(self, held.get());
              }
              return run_step(self, nullptr);
            }
            if (!st.prefetch) return run_step(self, batch.get());
            // Its copy starts now and overlaps the step of the held batch.
            st.core->stage(*batch);
            if (!st.held) {
              st.held = batch;  // the first one (or after a drain): draw the next
              return request_batch(self);
            }
            const auto current = std::move(st.held);
            st.held = batch;
            run_step(self, current.get());
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
  st.figures = training_figures(
      {st.settings.ranks, true, static_cast<bool>(st.settings.checkpoint_pause)});
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
      [self](train_atom) {
        auto& st = self->state;
        return status_json(st, st.figures.status(clock_type::now())).dump();
      },
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
      [self](checkpoint_atom, std::string& reason) -> caf::result<std::string> {
        auto& st = self->state;
        if (!st.settings.checkpoint_now)
          return std::string(R"json({"error": "checkpoints are off ([checkpoint] every_batches = 0 and every_seconds = 0)"})json");
        if (st.done) return last_checkpoint(st);
        auto rp = self->make_response_promise<std::string>();
        if (st.parked) {  // the stopping checkpoint answers it
          st.writing.emplace_back(st.stop_answer, rp);
          self->send(self, tick_atom::value);
          return rp;
        }
        st.asked.push_back({std::move(reason), rp});
        // Several ranks: taken at a step the ranks share (at the next one;
        // while waiting for data, a stopping one at an idle step).
        if (collective(st)) {
          if (st.core && st.awaiting_batch && !st.held && stop_asked(st)) {
            try {
              idle_step(self);
            } catch (const std::exception& e) {
              spdlog::error("training step failed: {}", e.what());
              self->quit(caf::make_error(caf::sec::runtime_error, e.what()));
            }
          }
          return rp;
        }
        // Waiting for a batch (the buffer may stay empty for long): between
        // two steps now, so take it at once; the buffer cuts when this
        // message reaches it, after the request it already holds.
        if (st.core && st.awaiting_batch && !st.held) {
          take_asked(self);
          note_checkpoint_pause(st);
          if (st.asked.empty()) self->send(st.reservoir, checkpoint_atom::value);
        }
        return rp;
      },
      [self](tick_atom) {
        auto& st = self->state;
        if (collective(st) && st.core && !st.parked && !st.done && st.awaiting_batch && !st.held &&
            stop_asked(st)) {
          try {
            idle_step(self);
          } catch (const std::exception& e) {
            spdlog::error("training step failed: {}", e.what());
            return self->quit(caf::make_error(caf::sec::runtime_error, e.what()));
          }
        }
        auto& w = st.writing;
        for (auto it = w.begin(); it != w.end();) {
          if (it->first.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
            ++it;
            continue;
          }
          it->second.deliver(it->first.get());
          it = w.erase(it);
        }
        bool stop_pending = st.parked && !st.stop_reported;
        if (stop_pending &&
            st.stop_answer.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
          st.stop_reported = true;
          stop_pending = false;
          if (st.settings.stopped) st.settings.stopped(st.stop_answer.get());
        }
        if (!w.empty() || stop_pending)
          self->delayed_send(self, std::chrono::milliseconds(100), tick_atom::value);
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
