#include "actors/trainer/batch_stager.hpp"

#include <cstring>
#include <optional>
#include <stdexcept>

#include <ATen/ATen.h>

#ifdef MELISSA_TORCH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace melissa {

namespace {

at::Tensor wrap_rows(const std::vector<float>& values, std::int64_t rows, std::int64_t columns) {
  // from_blob: no copy; the batch is only read (never written through it).
  return at::from_blob(const_cast<float*>(values.data()), {rows, columns}, at::kFloat);
}

}  // namespace

struct batch_stager::impl {
  c10::Device device;
#ifdef MELISSA_TORCH_CUDA
  // One slot: pinned host rows and their device copy, grown to the largest batch.
  struct slot {
    at::Tensor pinned, on_device;
    at::cuda::CUDAEvent copied;  // this slot's last copy's end
  };
  slot slots[2];
  int next_slot = 0;
  std::optional<c10::cuda::CUDAStream> copy_stream;
#endif
  explicit impl(c10::Device d) : device(d) {}
};

batch_stager::batch_stager(c10::Device device) : impl_(std::make_unique<impl>(device)) {
#ifndef MELISSA_TORCH_CUDA
  if (device.is_cuda())
    throw std::invalid_argument("this build's LibTorch has no CUDA (rebuild with -Dtorch_prefix= "
                                "pointing at a CUDA LibTorch)");
#endif
}

batch_stager::~batch_stager() = default;

staged_rows batch_stager::start(const std::vector<float>& inputs,
                                const std::vector<float>& targets, std::int64_t rows,
                                std::int64_t input_dim, std::int64_t output_dim) {
  if (!impl_->device.is_cuda())
    return {wrap_rows(inputs, rows, input_dim), wrap_rows(targets, rows, output_dim), -1};
#ifdef MELISSA_TORCH_CUDA
  impl& s = *impl_;
  const int index = s.next_slot;
  s.next_slot = 1 - index;
  impl::slot& slot = s.slots[index];
  const std::int64_t need = rows * (input_dim + output_dim);
  // The slot's previous copy must have left the pinned buffer before it is
  // rewritten (or freed, when it grows).
  slot.copied.synchronize();
  if (!slot.pinned.defined() || slot.pinned.numel() < need) {
    slot.pinned = at::empty({need}, at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
    slot.on_device = at::empty({need}, at::TensorOptions().dtype(at::kFloat).device(s.device));
  }
  if (!s.copy_stream) s.copy_stream = c10::cuda::getStreamFromPool(false, s.device.index());
  float* host = slot.pinned.data_ptr<float>();
  std::memcpy(host, inputs.data(), sizeof(float) * static_cast<std::size_t>(rows * input_dim));
  std::memcpy(host + rows * input_dim, targets.data(),
              sizeof(float) * static_cast<std::size_t>(rows * output_dim));
  auto current = c10::cuda::getCurrentCUDAStream(s.device.index());
  {
    // The copy must not overwrite device rows a step enqueued so far still
    // reads (the step that used this slot, two batches ago); a step enqueued
    // after this call, on the other slot, runs alongside the copy.
    at::cuda::CUDAEvent enqueued_so_far;
    enqueued_so_far.record(current);
    c10::cuda::CUDAStreamGuard guard(*s.copy_stream);
    enqueued_so_far.block(*s.copy_stream);
    slot.on_device.narrow(0, 0, need).copy_(slot.pinned.narrow(0, 0, need), /*non_blocking=*/true);
    slot.copied.record(*s.copy_stream);
  }
  at::Tensor staged = slot.on_device.narrow(0, 0, need);
  return {staged.narrow(0, 0, rows * input_dim).view({rows, input_dim}),
          staged.narrow(0, rows * input_dim, rows * output_dim).view({rows, output_dim}), index};
#else
  throw std::logic_error("unreachable: no CUDA in this build");
#endif
}

std::pair<at::Tensor, at::Tensor> batch_stager::ready(const staged_rows& staged) {
#ifdef MELISSA_TORCH_CUDA
  if (staged.slot >= 0)
    impl_->slots[staged.slot].copied.block(
        c10::cuda::getCurrentCUDAStream(impl_->device.index()));
#endif
  return {staged.inputs, staged.targets};
}

}  // namespace melissa
