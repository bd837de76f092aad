// The device-generic path: a TorchScript module (the user's file, or the
// built-in MLP written as one) trained through autograd with plain LibTorch
// operations, on the CPU or a CUDA device. Its parameters are views into one
// flat tensor and their .grad views into the caller's flat gradient buffer,
// so that the all-reduce sends one tensor and Adam runs over flat arrays, as
// on the fused path. Internal to the trainer (includes torch).
#pragma once

#include <memory>
#include <string>

#include <torch/csrc/jit/api/module.h>

#include "actors/trainer/trained_model.hpp"
#include "actors/trainer/trainer_core.hpp"

namespace melissa {

class surrogate_model;

class scripted_model : public trained_model {
 public:
  // The user's TorchScript file, on `device`. Throws std::invalid_argument
  // naming the file: it cannot be loaded, has no (or non-float32)
  // parameters, its forward fails on a [2, input_dim] batch or does not give
  // output_dim values per sample.
  static std::unique_ptr<scripted_model> load(const std::string& path,
                                              const model_settings& settings, at::Device device);
  // The built-in MLP as a TorchScript module with `mlp`'s weights (same
  // flat layout, same state-dict names).
  static std::unique_ptr<scripted_model> of_mlp(const surrogate_model& mlp,
                                                const model_settings& settings, at::Device device);

  std::int64_t parameter_count() const override { return parameters_.numel(); }
  const at::Tensor& parameters() const override { return parameters_; }
  at::Tensor forward(const at::Tensor& inputs) const override;
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const override;
  std::vector<std::pair<std::string, at::Tensor>> named_buffers() const override;
  void save_torchscript(const std::string& path, double output_mean,
                        double output_std) const override;

  // Every parameter's .grad becomes a view of `flat` (parameters()' layout,
  // same device): backward accumulates there, so the caller zeroes it.
  void use_gradient_buffer(const at::Tensor& flat);

  struct pass_result {
    at::Tensor sample_squared_error;  // [rows] double: per sample, sum over outputs
    at::Tensor target_sums;           // [2] double: sum and sum of squares of (target - center)
  };
  // Forward, loss (MSE against (targets - mean) / std, normalized units) and
  // backward; inputs [rows, input_dim] and targets [rows, output_dim] on the device.
  pass_result train_pass(const at::Tensor& inputs, const at::Tensor& targets, double mean,
                         double std, double stat_center);

 private:
  scripted_model(torch::jit::Module module, torch::jit::Module export_copy,
                 const model_settings& settings, at::Device device,
                 std::vector<std::string> state_names);
  // Output of forward as rows x output_dim; throws naming what came back.
  at::Tensor output_rows(const c10::IValue& output, std::int64_t rows) const;

  mutable torch::jit::Module module_;  // forward() switches eval/train
  // A second instance on the CPU whose parameters own their memory: the
  // export copies the trained values into it (module_'s parameters are
  // views of one flat tensor, which a saved module would carry whole).
  mutable torch::jit::Module export_copy_;
  model_settings settings_;
  at::Device device_;
  at::Tensor parameters_;
  std::vector<at::Tensor> live_;          // the module's parameters (views of parameters_)
  std::vector<std::string> state_names_;  // their state-dict names
};

}  // namespace melissa
