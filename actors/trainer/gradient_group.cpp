// c10d's Gloo backend is compiled in only when this is defined before its
// header (Debian's libtorch has it; the header hides it otherwise). Meson
// defines MELISSA_HAVE_GLOO when gloo's headers match the LibTorch in use.
#if defined(MELISSA_HAVE_GLOO) && !defined(USE_C10D_GLOO)
#define USE_C10D_GLOO
#endif

#include "actors/trainer/gradient_group.hpp"
#include "actors/trainer/gradient_group_c10d.hpp"

#include <cstdlib>
#include <stdexcept>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#ifdef MELISSA_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>  // AllreduceOptions, also without Gloo

// NCCL: a CUDA LibTorch whose c10d has ProcessGroupNCCL and nccl.h at hand
// (meson defines MELISSA_HAVE_NCCL; Debian's CPU LibTorch ships the header
// but neither NCCL nor CUDA).
#ifdef MELISSA_HAVE_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace melissa {

struct gradient_group::impl {
  c10::intrusive_ptr<c10d::Store> store;
#ifdef MELISSA_HAVE_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> process_group;  // null with NCCL
#endif
#ifdef MELISSA_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::string backend = "gloo";
  int cuda_device = 0;
  int rank = 0;
  int size = 1;
  std::uint16_t store_port = 0;
};

namespace {

#ifdef MELISSA_HAVE_GLOO
std::shared_ptr<::gloo::transport::Device> make_device(const gradient_group_options& options) {
  if (!options.interface.empty())
    return c10d::ProcessGroupGloo::createDeviceForInterface(options.interface);
  if (!options.hostname.empty())
    return c10d::ProcessGroupGloo::createDeviceForHostname(options.hostname);
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

void check_rank(int rank, int size) {
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("gradient_group: rank " + std::to_string(rank) +
                                " is not in a group of " + std::to_string(size));
}

std::shared_ptr<gradient_group> join(c10::intrusive_ptr<c10d::Store> store, int rank, int size,
                                     const gradient_group_options& options,
                                     std::uint16_t store_port) {
  auto state = std::make_unique<gradient_group::impl>();
  state->store = std::move(store);
  state->rank = rank;
  state->size = size;
  state->store_port = store_port;
  state->backend = options.backend;
  state->cuda_device = options.cuda_device;
  if (options.backend == "nccl") {
#ifdef MELISSA_HAVE_NCCL
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(options.cuda_device));
    auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
    nccl_options->timeout = options.timeout;
    state->nccl =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(state->store, rank, size, nccl_options);
    // NCCL connects lazily: one small all-reduce now is the rendezvous.
    std::vector<at::Tensor> probe{at::zeros(
        {1}, at::TensorOptions().dtype(at::kFloat).device(at::kCUDA, options.cuda_device))};
    state->nccl->allreduce(probe)->wait();
    return std::make_shared<gradient_group>(std::move(state));
#else
    throw std::invalid_argument(
        "gradient_group: this build has no NCCL (a CPU LibTorch): use the gloo backend");
#endif
  }
  if (options.backend != "gloo")
    throw std::invalid_argument("gradient_group: unknown backend '" + options.backend +
                                "' (expected gloo or nccl)");
#ifndef MELISSA_HAVE_GLOO
  throw std::invalid_argument(
      "gradient_group: this build has no Gloo (its LibTorch came without gloo's headers): "
      "several ranks on the CPU need Debian's LibTorch or a libtorch archive");
#else
  auto pg_options = c10d::ProcessGroupGloo::Options::create(options.timeout);
  pg_options->devices.push_back(make_device(options));
  // One all-reduce at a time per trainer: one Gloo worker thread is enough
  // and leaves the cores to the training step.
  pg_options->threads = 1;
  // The constructor is the rendezvous: it connects every pair of ranks.
  state->process_group =
      c10::make_intrusive<c10d::ProcessGroupGloo>(state->store, rank, size, pg_options);
  return std::make_shared<gradient_group>(std::move(state));
#endif
}

at::Tensor wrap(float* data, std::size_t count) {
  return at::from_blob(data, {static_cast<std::int64_t>(count)}, at::kFloat);
}
at::Tensor wrap(double* data, std::size_t count) {
  return at::from_blob(data, {static_cast<std::int64_t>(count)}, at::kDouble);
}

template <class ProcessGroup>
void all_reduce_sum_tensor(ProcessGroup& process_group, at::Tensor tensor) {
  std::vector<at::Tensor> tensors{std::move(tensor)};
  c10d::AllreduceOptions reduce_options;
  reduce_options.reduceOp = c10d::ReduceOp::SUM;
  process_group.allreduce(tensors, reduce_options)->wait();
}

template <class ProcessGroup>
void broadcast_tensor(ProcessGroup& process_group, at::Tensor tensor, int root) {
  std::vector<at::Tensor> tensors{std::move(tensor)};
  c10d::BroadcastOptions broadcast_options;
  broadcast_options.rootRank = root;
  process_group.broadcast(tensors, broadcast_options)->wait();
}

// Every collective of the group, on the process group it has.
void all_reduce_sum_on(gradient_group::impl& group, at::Tensor tensor) {
#ifdef MELISSA_HAVE_NCCL
  if (group.nccl) {
    if (!tensor.is_cuda()) {
      // A host buffer: through the GPU and back (small ones: statistics).
      at::Tensor staged = tensor.to(at::Device(at::kCUDA, group.cuda_device));
      all_reduce_sum_tensor(*group.nccl, staged);
      tensor.copy_(staged);
      return;
    }
    return all_reduce_sum_tensor(*group.nccl, std::move(tensor));
  }
#endif
#ifdef MELISSA_HAVE_GLOO
  all_reduce_sum_tensor(*group.process_group, std::move(tensor));
#endif
}

void broadcast_on(gradient_group::impl& group, at::Tensor tensor, int root) {
#ifdef MELISSA_HAVE_NCCL
  if (group.nccl) {
    if (!tensor.is_cuda()) {
      at::Tensor staged = tensor.to(at::Device(at::kCUDA, group.cuda_device));
      broadcast_tensor(*group.nccl, staged, root);
      tensor.copy_(staged);
      return;
    }
    return broadcast_tensor(*group.nccl, std::move(tensor), root);
  }
#endif
#ifdef MELISSA_HAVE_GLOO
  broadcast_tensor(*group.process_group, std::move(tensor), root);
#endif
}

}  // namespace

std::shared_ptr<gradient_group> make_gradient_group(const c10::intrusive_ptr<c10d::Store>& store,
                                                    int rank, int size,
                                                    const gradient_group_options& options) {
  check_rank(rank, size);
  return join(store, rank, size, options, 0);
}

std::shared_ptr<gradient_group> gradient_group::over_tcp(const std::string& host,
                                                         std::uint16_t port, int rank, int size,
                                                         const gradient_group_options& options) {
  check_rank(rank, size);
  c10d::TCPStoreOptions store_options;
  store_options.port = port;
  store_options.isServer = rank == 0;
  store_options.numWorkers = size;
  // Do not wait for the workers here: with port 0 they cannot know where to
  // connect before on_listening has published the port. The Gloo rendezvous
  // below waits for everybody anyway.
  store_options.waitWorkers = false;
  store_options.timeout = options.timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(host, store_options);
  std::uint16_t bound_port = store->getPort();
  if (rank == 0 && options.on_listening) options.on_listening(bound_port);
  return join(store, rank, size, options, bound_port);
}

std::shared_ptr<gradient_group> gradient_group::over_file(const std::string& path, int rank,
                                                          int size,
                                                          const gradient_group_options& options) {
  check_rank(rank, size);
  auto store = c10::make_intrusive<c10d::FileStore>(path, size);
  store->setTimeout(options.timeout);
  return join(store, rank, size, options, 0);
}

gradient_group::gradient_group(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
gradient_group::~gradient_group() = default;

int gradient_group::rank() const { return impl_->rank; }
int gradient_group::size() const { return impl_->size; }
std::uint16_t gradient_group::store_port() const { return impl_->store_port; }

void gradient_group::all_reduce_sum(float* data, std::size_t count) {
  if (impl_->size == 1 || count == 0) return;
  all_reduce_sum_on(*impl_, wrap(data, count));
}

void gradient_group::all_reduce_sum(double* data, std::size_t count) {
  if (impl_->size == 1 || count == 0) return;
  all_reduce_sum_on(*impl_, wrap(data, count));
}

void gradient_group::broadcast(float* data, std::size_t count, int root) {
  if (impl_->size == 1 || count == 0) return;
  broadcast_on(*impl_, wrap(data, count), root);
}

void gradient_group::all_reduce_sum(at::Tensor& tensor) {
  if (impl_->size == 1 || tensor.numel() == 0) return;
  all_reduce_sum_on(*impl_, tensor);
}

void gradient_group::broadcast(at::Tensor& tensor, int root) {
  if (impl_->size == 1 || tensor.numel() == 0) return;
  broadcast_on(*impl_, tensor, root);
}

void gradient_group::barrier() {
  if (impl_->size == 1) return;
#ifdef MELISSA_HAVE_NCCL
  if (impl_->nccl) {
    impl_->nccl->barrier()->wait();
    return;
  }
#endif
#ifdef MELISSA_HAVE_GLOO
  impl_->process_group->barrier()->wait();
#endif
}

const std::string& gradient_group::backend() const { return impl_->backend; }

}  // namespace melissa
