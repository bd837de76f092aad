// The surrogate network (an MLP) with all parameters in one flat float
// tensor, and its forward and backward written out by hand. Internal to the
// trainer (includes ATen); the public interface is trainer_core.hpp.
//
// Why not torch::nn + autograd: autograd allocates each gradient then adds it
// into .grad (after a zeroing pass), and the optimizer then walks a list of
// tensors. Here backward writes each gradient straight into its slice of one
// flat buffer (mm_out/sum_out), which is also the one tensor the all-reduce
// sends, and Adam is one pass over flat arrays.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "actors/trainer/chunk_pool.hpp"
#include "actors/trainer/trained_model.hpp"
#include "actors/trainer/trainer_core.hpp"

namespace torch::jit {
struct Module;
}

namespace melissa {

enum class activation_kind { relu, tanh, gelu, silu };

// Throws std::invalid_argument naming the accepted values.
activation_kind parse_activation(const std::string& name);

class surrogate_model : public trained_model {
 public:
  // Initialized as torch.nn.Linear does (uniform in +-1/sqrt(fan_in) for
  // weights and biases) from a generator seeded with `seed`.
  surrogate_model(const model_settings& settings, std::uint64_t seed);

  struct layer {
    std::int64_t in = 0, out = 0;
    std::int64_t weight_offset = 0, bias_offset = 0;  // in the flat buffers
    at::Tensor weight;                                 // out x in, a view of parameters()
    at::Tensor bias;                                   // out, a view of parameters()
  };

  const model_settings& settings() const { return settings_; }
  activation_kind activation() const { return activation_; }
  std::int64_t parameter_count() const override { return parameter_count_; }
  // All weights and biases, layer after layer (weight row-major, then bias).
  const at::Tensor& parameters() const override { return parameters_; }
  const std::vector<layer>& layers() const { return layers_; }

  // Inference (batch x input_dim -> batch x output_dim, normalized units).
  at::Tensor forward(const at::Tensor& inputs) const override;

  // What a training pass measured on its batch.
  struct pass_result {
    // Per sample: sum over the outputs of the squared error (normalized units).
    std::vector<double> sample_squared_error;
    // Sum and sum of squares of (target - stat_center) over the batch.
    double target_sum = 0, target_sumsq = 0;
  };
  // Called once per chunk of the output layer with flat ranges (offset,
  // count) whose gradients are final and whose weights the pass no longer
  // reads: single-rank training updates them there, still in cache.
  using range_update = std::function<void(std::int64_t offset, std::int64_t count)>;

  // Forward, loss (mean squared error against (target - mean) / std) and
  // backward for `rows` samples, in one pass over the output layer's rows in
  // chunks on `pool`: each chunk of its weights is read once for the forward
  // and the backward, and the loss and the target statistics are computed
  // while the outputs are in cache. Writes d(loss)/d(parameters) over
  // `gradients` (parameters()' layout). Deterministic whatever the threads.
  pass_result train_pass(const float* inputs, const float* targets, std::int64_t rows,
                         double mean, double std, double stat_center, float* gradients,
                         chunk_pool& pool, const range_update* update);
  // Parameters before the output layer's, which `update` does not cover.
  std::int64_t hidden_parameter_count() const { return layers_.back().weight_offset; }

  // A TorchScript module whose forward(x) returns
  // network(x) * output_std + output_mean, saved to `path`.
  void save_torchscript(const std::string& path, double output_mean,
                        double output_std) const override;
  // The same module without saving it; `denormalize` false: forward(x)
  // returns the network's output in normalized units (the generic path
  // trains this one, see scripted_model::of_mlp). Parameters weight0,
  // bias0, weight1, ...: parameters()' layout, cloned.
  torch::jit::Module torchscript_module(bool denormalize, double output_mean,
                                        double output_std) const;
  // Name -> live view, as nn.Sequential(Linear, act, Linear, ...) names them.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const override;

 private:
  model_settings settings_;
  activation_kind activation_;
  std::int64_t parameter_count_ = 0;
  at::Tensor parameters_;
  std::vector<layer> layers_;
  std::int64_t output_chunk_rows_ = 0;  // output-layer rows per chunk
  // Scratch reused by train_pass: outputs then their gradients (rows x
  // output_dim), and per chunk the partial d(loss)/d(last hidden output) and
  // the partial loss and target sums, summed in chunk order afterwards.
  std::vector<float> output_scratch_;
  std::vector<float> hidden_grad_partials_;
  std::vector<double> loss_partials_;
  std::vector<double> target_partials_;
};

// Pickled as Python's torch.save does (torch.load reads it; a zip archive).
void save_tensor_dict(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors);
std::vector<std::pair<std::string, at::Tensor>> load_tensor_dict(const std::string& path);

}  // namespace melissa
