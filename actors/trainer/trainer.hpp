// The trainer of one server rank: it takes batches from the rank's training
// buffer (the reservoir actor), trains the surrogate (trainer_core: LibTorch,
// gradients all-reduced across ranks), validates, writes metrics and, when the
// buffer is exhausted, saves the model and reports a summary.
//
// It runs detached (its own thread): a training step blocks for tens of
// milliseconds and must not hold a CAF scheduler thread. Between two steps it
// answers status queries (melissa-shell `train`).
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/typed_actor.hpp>

#include "actors/trainer/trainer_core.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

struct trainer_actor_settings {
  trainer_settings core;
  std::uint32_t batch_size = 10;
  std::uint32_t rank = 0;
  std::uint32_t ranks = 1;
  std::uint32_t metrics_every = 10;       // batches per metrics window
  std::uint64_t validation_every = 100;   // batches between validations (rank 0)
  training_batch_ptr validation;          // null: no validation
  std::string output_dir;                 // rank 0 writes metrics/ and model/ here
  // Breed's steering actor (rank 0 with [breed]): gets every batch's
  // per-sample losses as (losses_atom, sims, steps, losses, mean, std).
  // A restart of the steering reaches the trainer as (restarted_atom,
  // "steering", handle); so does a restart of its buffer ("sink").
  steering_actor steering;
  // Joins the ranks' c10d group (blocks until every rank joined); null with one rank.
  std::function<std::shared_ptr<gradient_group>()> join_group;
  // [checkpoint] (docs/checkpoints.md): called between two steps and once
  // when training ends (training_ended), on the trainer's thread, with the
  // core to snapshot; it checkpoints when one is due. Null: no checkpoints.
  std::function<void(const trainer_core&, bool training_ended)> at_step_boundary;
  // Whether a checkpoint is due after `batches` batches (rank_checkpoints::due).
  // With prefetch, a batch drawn ahead is in the trainer at a step boundary:
  // at_step_boundary is only called at a boundary without one, and when this
  // says a checkpoint is due the trainer first trains the batch it holds,
  // without drawing the next (the buffer's cut at the next request then
  // matches the trainer's counter). Null with at_step_boundary set: the
  // trainer drains before every boundary (prefetch without its overlap).
  std::function<bool(std::uint64_t batches)> checkpoint_due;
  // Prefetch (docs/training.md, "Device path"): the next batch is requested
  // right after a step and, once it arrives, staged on the device
  // (trainer_core::stage) before the step of the batch the trainer holds, so
  // its copy overlaps that step. Batches are trained in the order drawn.
  // Unset ("auto"): on when the model trains on a CUDA device. true forces it
  // (the tests, on the CPU), false never.
  std::optional<bool> prefetch;
  // The checkpoints' figures (JSON) for the summary's "checkpoints".
  std::function<std::string()> checkpoint_figures;
  // The trainer's pause for the checkpoints taken since the last call (none:
  // no checkpoint taken): the metrics' checkpoint_pause_s column. Null: no column.
  std::function<std::optional<double>()> checkpoint_pause;
  // An on-demand checkpoint (checkpoint_atom: melissa-shell, SIGTERM, a lost
  // launcher), taken with `reason` at this step boundary: the future gets
  // the answer JSON ({"path", "batch"} or {"error"}) once it is written;
  // none when the writer is still busy (asked again at the next boundary).
  // Null: checkpoints are off.
  std::function<std::optional<std::future<std::string>>(const trainer_core&, const std::string& reason)>
      checkpoint_now;
  // --restore: the checkpoint's rank-R/trainer directory; the core loads it
  // (trainer_core::load) before the first step. Empty: a fresh start.
  std::string restore_dir;
};

// Training starts at once: the first batch comes when the buffer allows it.
trainer_actor spawn_trainer(caf::actor_system& sys, trainer_actor_settings settings,
                            reservoir_actor reservoir);

}  // namespace melissa
