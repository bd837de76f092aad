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
  // Pinned host rows and their device copies, grown to the largest batch.
  at::Tensor pinned, on_device;
  std::optional<c10::cuda::CUDAStream> copy_stream;
  at::cuda::CUDAEvent copied;  // the last copy's end: the next one waits for it
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

std::pair<at::Tensor, at::Tensor> batch_stager::stage(const std::vector<float>& inputs,
                                                      const std::vector<float>& targets,
                                                      std::int64_t rows, std::int64_t input_dim,
                                                      std::int64_t output_dim) {
  if (!impl_->device.is_cuda())
    return {wrap_rows(inputs, rows, input_dim), wrap_rows(targets, rows, output_dim)};
#ifdef MELISSA_TORCH_CUDA
  impl& s = *impl_;
  const std::int64_t need = rows * (input_dim + output_dim);
  if (!s.pinned.defined() || s.pinned.numel() < need) {
    s.copied.synchronize();  // the old buffers may still be read by a copy
    s.pinned = at::empty({need}, at::TensorOptions().dtype(at::kFloat).pinned_memory(true));
    s.on_device = at::empty({need}, at::TensorOptions().dtype(at::kFloat).device(s.device));
  }
  if (!s.copy_stream) s.copy_stream = c10::cuda::getStreamFromPool(false, s.device.index());
  // The previous copy must have left the pinned buffer before it is rewritten.
  s.copied.synchronize();
  float* host = s.pinned.data_ptr<float>();
  std::memcpy(host, inputs.data(), sizeof(float) * static_cast<std::size_t>(rows * input_dim));
  std::memcpy(host + rows * input_dim, targets.data(),
              sizeof(float) * static_cast<std::size_t>(rows * output_dim));
  auto current = c10::cuda::getCurrentCUDAStream(s.device.index());
  {
    // The copy must not overwrite device rows the previous step still reads.
    at::cuda::CUDAEvent previous_step_done;
    previous_step_done.record(current);
    c10::cuda::CUDAStreamGuard guard(*s.copy_stream);
    previous_step_done.block(*s.copy_stream);
    s.on_device.narrow(0, 0, need).copy_(s.pinned.narrow(0, 0, need), /*non_blocking=*/true);
    s.copied.record(*s.copy_stream);
  }
  s.copied.block(current);
  at::Tensor staged = s.on_device.narrow(0, 0, need);
  return {staged.narrow(0, 0, rows * input_dim).view({rows, input_dim}),
          staged.narrow(0, rows * input_dim, rows * output_dim).view({rows, output_dim})};
#else
  throw std::logic_error("unreachable: no CUDA in this build");
#endif
}

}  // namespace melissa
