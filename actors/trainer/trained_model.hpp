// The network a trainer_core trains, whichever it is: the built-in MLP with
// its fused CPU pass (surrogate_model.hpp) or a TorchScript module trained
// through autograd (scripted_model.hpp). What the trainer does with any
// model (validation, the all-reduce, Adam, checksums, save and load) goes
// through this interface; only the training pass differs. Internal to the
// trainer (includes ATen).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace melissa {

class trained_model {
 public:
  virtual ~trained_model() = default;
  virtual std::int64_t parameter_count() const = 0;
  // Every parameter, one flat float32 tensor on the training device: the
  // layout of the gradient buffer the all-reduce sends and of Adam's state.
  virtual const at::Tensor& parameters() const = 0;
  // Inference, no gradient: batch x input_dim -> batch x output_dim (normalized units).
  virtual at::Tensor forward(const at::Tensor& inputs) const = 0;
  // Name -> live view into parameters() (a state dict's names, in layout order).
  virtual std::vector<std::pair<std::string, at::Tensor>> named_parameters() const = 0;
  // Live views of the model's buffers (a TorchScript module's, e.g. a batch
  // norm's running statistics), which training may change and a checkpoint
  // must keep. The built-in MLP has none.
  virtual std::vector<std::pair<std::string, at::Tensor>> named_buffers() const { return {}; }
  // A TorchScript module whose forward(x) returns the field in its own
  // units (network(x) * output_std + output_mean), saved on the CPU to `path`.
  virtual void save_torchscript(const std::string& path, double output_mean,
                                double output_std) const = 0;
};

}  // namespace melissa
