// The trainer's pure core: a surrogate (MLP) trained online with Adam on the
// batches the training buffer hands over, data-parallel over a gradient
// group. No CAF, and no torch in this header (pimpl): the trainer actor, the
// offline trainer and the tests include it without torch's compile time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "messages/training_batch.hpp"

namespace melissa {

class gradient_group;

struct model_settings {
  std::uint32_t input_dim = 0;
  std::vector<std::uint32_t> hidden{256, 256};
  // Hidden-layer activation: relu, tanh, gelu or silu.
  std::string activation = "relu";
  std::uint32_t output_dim = 0;
};

// Adam (torch.optim.Adam defaults: betas 0.9/0.999, eps 1e-8, no weight
// decay). The learning rate is halved every `halve_every_batches` trained
// batches (0: never), never below `min_learning_rate` (SC23 paper, section 4).
struct optimizer_settings {
  double learning_rate = 1e-3;
  std::uint64_t halve_every_batches = 0;
  double min_learning_rate = 1e-5;
};

// The network learns targets normalized to (target - mean) / std, one scalar
// mean and std for the whole field. `running`: the statistics of every target
// value trained on so far, on all ranks (they travel in the step's
// all-reduce, so all ranks agree); otherwise the given constants.
struct output_normalization {
  bool running = true;
  double mean = 0;
  double std = 1;
};

struct trainer_settings {
  model_settings model;
  optimizer_settings optimizer;
  output_normalization output;
  std::uint64_t seed = 0;  // same seed => same initial weights
  // Threads a step uses, the caller included (0: torch's default count).
  // The step runs on the trainer's own chunk pool with single-threaded BLAS
  // calls (OpenBLAS is set to 1 thread, process-wide) rather than torch's
  // OpenMP team, whose spinning barriers stall on a busy node; torch's
  // intra-op count (at::set_num_threads) is set too, for evaluate().
  int threads = 0;
};

struct step_result {
  bool trained = false;      // false: no rank had a batch this step
  double loss = 0;           // mean over the ranks that had a batch (normalized units)
  double learning_rate = 0;  // the rate this step used
  // This rank's samples only (empty without a batch): each sample's MSE in
  // normalized units, for Breed's active learning, and their mean and std.
  std::vector<float> sample_losses;
  double batch_mean = 0;
  double batch_std = 0;
};

// An in-memory copy of a trainer's state at a step boundary (weights,
// Adam's moments, batch counter, learning rate, output statistics), taken by
// trainer_core::snapshot() in the time of a memcpy of the model, so that a
// checkpoint is written from another thread while training goes on. Cheap to
// copy (shared, immutable). The core draws no random numbers after its
// construction (the seed only sets the initial weights; batches come from
// the buffer, whose random state the buffer's snapshot holds), so there is
// no trainer RNG state to save.
class trainer_snapshot {
 public:
  trainer_snapshot();
  ~trainer_snapshot();
  trainer_snapshot(const trainer_snapshot&);
  trainer_snapshot& operator=(const trainer_snapshot&);

  bool empty() const { return !impl_; }
  std::uint64_t batches() const;
  std::uint64_t bytes() const;  // tensor bytes held
  // Writes dir/model_state.pt and dir/trainer_state.pt (what
  // trainer_core::load(dir) reads; dir must exist) and returns those file
  // names. Not atomic by itself: the checkpoint keeper writes into a staging
  // directory. Thread-safe (reads only its own copy).
  std::vector<std::string> write(const std::string& dir) const;

 private:
  friend class trainer_core;
  struct impl;
  std::shared_ptr<const impl> impl_;
};

class trainer_core {
 public:
  // Collective when `group` is given: all ranks construct together (rank 0's
  // initial weights are broadcast). Throws std::invalid_argument on bad
  // settings (zero dimensions, unknown activation).
  explicit trainer_core(trainer_settings settings, std::shared_ptr<gradient_group> group = nullptr);
  ~trainer_core();
  trainer_core(const trainer_core&) = delete;
  trainer_core& operator=(const trainer_core&) = delete;

  // One optimizer step. Collective: every rank calls it once per step, with
  // nullptr (or an empty batch) when it has no batch; the gradient is the
  // mean over the ranks that had one, and one all-reduce carries it (plus,
  // once, a small one for the first normalization statistics). Throws
  // std::invalid_argument when the batch's dimensions do not match the model,
  // before any collective (the other ranks then time out in theirs).
  step_result step(const training_batch* batch);
  // MSE in the field's own units over `set` (no gradient, in chunks).
  double evaluate(const training_batch& set) const;
  // Predictions in the field's own units, size x output_dim row-major.
  std::vector<float> predict(const std::vector<float>& inputs) const;

  // dir/model.pt: TorchScript module; forward(x) takes encoded input rows
  // (N x input_dim, or one row) and returns the field in its own units;
  // torch.jit.load (Python) and torch::jit::load (C++) run it.
  // dir/model_state.pt: the state dict (torch.load in Python): "0.weight",
  // "0.bias", "2.weight", ... as an nn.Sequential of Linear and activation
  // layers, plus "output_mean", "output_std".
  // dir/trainer_state.pt: Adam's moments and the counters, so load() resumes.
  // Creates dir; writes each file atomically (temporary name, then rename).
  void save(const std::string& dir) const;
  // Restores what save() wrote (same model settings). Not collective: every
  // rank loads the same checkpoint.
  void load(const std::string& dir);
  // The state load() restores, copied in memory now (see trainer_snapshot).
  trainer_snapshot snapshot() const;

  // FNV-1a over the weights' bytes: equal on all ranks of a group.
  std::uint64_t weights_checksum() const;
  std::uint64_t batches() const;      // batches trained (all ranks agree)
  double learning_rate() const;       // the rate the next step uses
  double output_mean() const;
  double output_std() const;
  std::size_t parameter_count() const;
  const trainer_settings& settings() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace melissa
