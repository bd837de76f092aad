// The trainer's pure core: a surrogate (the built-in MLP or a TorchScript
// module of the user's) trained online with Adam on the batches the training
// buffer hands over, on the CPU or a CUDA device, data-parallel over a
// gradient group. No CAF, and no torch in this header (pimpl): the trainer
// actor, the offline trainer and the tests include it without torch's
// compile time.
#pragma once

#include <cstdint>
#include <functional>
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
  // A TorchScript file (torch.jit.script or trace, then save) mapping float32
  // [B, input_dim] to B x output_dim values (any shape): trained instead of
  // the built-in MLP (hidden and activation then unused). "": the MLP.
  std::string torchscript;
};

// Adam (torch.optim.Adam defaults: betas 0.9/0.999, eps 1e-8, no weight
// decay). The learning rate is halved every `halve_every_batches` trained
// batches (0: never), never below `min_learning_rate` (SC23 paper, section 4).
// weight_decay: torch.optim.Adam's (grad += weight_decay * weight).
// clip_grad_norm > 0: the mean gradient is scaled down to this 2-norm when
// larger (torch.nn.utils.clip_grad_norm_), before Adam sees it.
struct optimizer_settings {
  double learning_rate = 1e-3;
  std::uint64_t halve_every_batches = 0;
  double min_learning_rate = 1e-5;
  double weight_decay = 0;
  double clip_grad_norm = 0;
};

// Where a rank trains. `requested`: "auto" (the rank's GPU when LibTorch
// sees CUDA, else the CPU), "cpu", "cuda" (an error without a GPU), or an
// explicit "cuda:N". A rank takes GPU `local_rank mod device count` (the
// devices CUDA_VISIBLE_DEVICES leaves visible, as Slurm's gres sets it).
struct device_choice {
  bool cuda = false;
  int index = 0;
  std::string reason;  // why this device, for the log
  std::string name() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
};
// Pure: the rule, given the count of visible CUDA devices. Throws
// std::invalid_argument for an unknown request or "cuda" without devices.
device_choice pick_device(const std::string& requested, int local_rank, int cuda_devices);
// The rule with LibTorch's count of CUDA devices (0 in a CPU-only build).
device_choice choose_device(const std::string& requested, int local_rank);
// This process's rank among the ranks of its node: OMPI_COMM_WORLD_LOCAL_RANK,
// SLURM_LOCALID, MPI_LOCALRANKID or PMI_LOCAL_RANK, else `fallback`.
int local_rank_from_environment(int fallback);

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
  // "auto", "cpu", "cuda" or "cuda:N" (see device_choice) and the rank on
  // its node that picks the GPU.
  std::string device = "cpu";
  int local_rank = 0;
  // The device-generic path (plain LibTorch operations and autograd, what a
  // GPU runs) even for the built-in MLP on the CPU, whose default is the
  // fused pass. A TorchScript model or a CUDA device always takes it.
  bool generic_path = false;
};

// What check_model found.
struct model_report {
  std::string kind;         // "mlp" or "torchscript"
  std::string description;  // e.g. "TorchScript cnn.pt: 12345 parameters" or "MLP 6->256->256->4096"
  std::size_t parameter_count = 0;
  std::string device;       // where it would train ("cpu", "cuda:0")
  std::string device_reason;  // why there (device_choice::reason)
};
// Everything the trainer would refuse at its first step, checked now (the
// server calls it before any simulation starts): the device, the TorchScript
// file (loads; has float32 parameters; one dummy forward of a batch of 2
// gives 2 x output_dim values). Throws std::invalid_argument with a message
// naming the file.
model_report check_model(const trainer_settings& settings);
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

  // The checkpoint format (docs/checkpoints.md, "What each part holds"):
  // raw arrays, not LibTorch's pickler (several times slower to write).
  // tensors.bin holds every array's bytes back to back (host byte order,
  // row-major); tensors.json indexes them:
  //   {"format": "melissa-trainer-tensors", "version": 1, "data": "tensors.bin",
  //    "bytes": N, "batches": B, "tensors": [{"name": "model/0.weight",
  //    "dtype": "float32", "shape": [256, 6], "offset": 0, "bytes": 6144}, ...]}
  // Names: model/<parameter> (and model/output_mean, model/output_std),
  // buffer/<buffer> (a TorchScript model's), trainer/<state> (exp_avg,
  // exp_avg_sq, batches, learning_rate, stat_count, stat_mean, stat_m2).
  static constexpr const char* index_file = "tensors.json";
  static constexpr const char* data_file = "tensors.bin";
  std::string index_json() const;
  // Calls `write` with each array's bytes, in the index's order: the content
  // of tensors.bin (the checkpoint keeper streams it through its hashing
  // file writer). Thread-safe (reads only its own copy).
  void write_arrays(const std::function<void(const void* data, std::size_t bytes)>& write) const;
  // Writes dir/tensors.bin and dir/tensors.json (what trainer_core::load(dir)
  // reads; dir must exist) and returns those file names. Not atomic by itself.
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
  // Starts moving `batch`'s rows to the device now (the device path: pinned
  // host rows, an asynchronous copy on a side stream), so that the copy
  // overlaps the step that runs next; the later step(&batch) uses them. The
  // batch must stay alive and unchanged until that step; at most two batches
  // are staged ahead (a third drops the oldest, which is then copied again
  // at its step). Not collective. On the fused CPU path: nothing (the pass
  // reads the batch itself); on the CPU generic path the rows are wrapped.
  // Throws std::invalid_argument as step() does for a mismatched batch.
  void stage(const training_batch& batch);
  // MSE in the field's own units over `set` (no gradient, in chunks).
  double evaluate(const training_batch& set) const;
  // Predictions in the field's own units, size x output_dim row-major.
  std::vector<float> predict(const std::vector<float>& inputs) const;

  // dir/model.pt: TorchScript module; forward(x) takes encoded input rows
  // (N x input_dim, or one row) and returns the field in its own units;
  // torch.jit.load (Python) and torch::jit::load (C++) run it.
  // dir/model_state.pt: the state dict (torch.load in Python): "0.weight",
  // "0.bias", "2.weight", ... as an nn.Sequential of Linear and activation
  // layers (a TorchScript model: its own parameter names), plus
  // "output_mean", "output_std". A TorchScript model's model.pt wraps it:
  // forward(x) = network(x) reshaped to N x output_dim, in the field's units.
  // dir/trainer_state.pt: Adam's moments and the counters, so load() resumes.
  // Creates dir; writes each file atomically (temporary name, then rename).
  void save(const std::string& dir) const;
  // Restores what a snapshot's write() (tensors.json + tensors.bin) or
  // save() (trainer_state.pt + model_state.pt) wrote, same model settings;
  // bit-exact. Throws std::runtime_error naming the file and the tensor when
  // they do not fit. Not collective: every rank loads the same checkpoint.
  void load(const std::string& dir);
  // The state load() restores, copied in memory now (see trainer_snapshot).
  trainer_snapshot snapshot() const;

  // The model and the device it trains on, as check_model reports them.
  const model_report& model() const;

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
