// Moves a batch's rows to the training device. On the CPU the batch's own
// memory is wrapped (no copy). On a CUDA device (a LibTorch built with CUDA,
// MELISSA_TORCH_CUDA) the rows are written into pinned host buffers and
// copied asynchronously on a side stream; the training stream waits for that
// copy's event only, not for the whole device. Internal to the trainer.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace melissa {

class batch_stager {
 public:
  explicit batch_stager(c10::Device device);
  ~batch_stager();
  batch_stager(const batch_stager&) = delete;
  batch_stager& operator=(const batch_stager&) = delete;

  // [rows, input_dim] and [rows, output_dim] float32 tensors on the device,
  // ready for the current stream. `inputs` and `targets` must outlive their
  // use on the CPU (they are wrapped, not copied).
  std::pair<at::Tensor, at::Tensor> stage(const std::vector<float>& inputs,
                                          const std::vector<float>& targets, std::int64_t rows,
                                          std::int64_t input_dim, std::int64_t output_dim);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace melissa
