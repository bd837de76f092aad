// Moves a batch's rows to the training device. On the CPU the batch's own
// memory is wrapped (no copy). On a CUDA device (a LibTorch built with CUDA,
// MELISSA_TORCH_CUDA) the rows are written into pinned host buffers and
// copied asynchronously on a side stream; the training stream waits for that
// copy's event only, not for the whole device. Two slots alternate, so that
// the next batch's copy (start) runs while the current step, enqueued after
// it, still reads the other slot (the trainer's prefetch). Internal to the
// trainer.
#pragma once

#include <memory>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace melissa {

// A batch whose copy has started: its slot, and the tensors once copied.
struct staged_rows {
  at::Tensor inputs, targets;  // [rows, input_dim], [rows, output_dim] on the device
  int slot = -1;               // -1: the batch's own memory (CPU), no copy to wait for
};

class batch_stager {
 public:
  explicit batch_stager(c10::Device device);
  ~batch_stager();
  batch_stager(const batch_stager&) = delete;
  batch_stager& operator=(const batch_stager&) = delete;

  // Starts the copy into the next slot (the slot's previous rows must have
  // been used: by a step enqueued before this call). `inputs` and `targets`
  // must outlive their use on the CPU (they are wrapped, not copied).
  staged_rows start(const std::vector<float>& inputs, const std::vector<float>& targets,
                    std::int64_t rows, std::int64_t input_dim, std::int64_t output_dim);
  // The tensors, with the current stream made to wait for their copy.
  std::pair<at::Tensor, at::Tensor> ready(const staged_rows& staged);
  // start() then ready(): a batch used at once.
  std::pair<at::Tensor, at::Tensor> stage(const std::vector<float>& inputs,
                                          const std::vector<float>& targets, std::int64_t rows,
                                          std::int64_t input_dim, std::int64_t output_dim) {
    return ready(start(inputs, targets, rows, input_dim, output_dim));
  }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace melissa
