// The trainers' data-parallel group: a c10d Gloo process group (CPU
// collectives over TCP), or on CUDA devices a c10d NCCL one, behind a
// torch-free interface, so that the trainer actor and the server include
// this header without paying torch's compile time. All calls are
// collective: every rank calls them in the same order.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace at {
class Tensor;
}

namespace melissa {

struct gradient_group_options {
  // "gloo" (CPU tensors) or "nccl" (CUDA tensors on `cuda_device`; only in a
  // build against a CUDA LibTorch with NCCL, MELISSA_HAVE_NCCL).
  std::string backend = "gloo";
  int cuda_device = 0;
  // Where Gloo's point-to-point connections bind. First non-empty wins:
  // `interface` (e.g. "eth0"), `hostname` (a name or address of this host,
  // e.g. "127.0.0.1"), the GLOO_SOCKET_IFNAME environment variable, then
  // Gloo's default (this host's name if it resolves, else loopback).
  std::string interface;
  std::string hostname;
  // How long the rendezvous and each collective may wait for the other ranks
  // before throwing (a rank that died must not hang the others forever).
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  // TCP store only, rank 0 only: called with the port the store listens on
  // (the bound one when port 0 was asked) before the rendezvous blocks, so
  // that the server can publish it to the other ranks.
  std::function<void(std::uint16_t)> on_listening;
};

class gradient_group {
 public:
  // Rank 0 hosts a c10d::TCPStore on `port` (0: any free port, reported
  // through options.on_listening and store_port()); the other ranks connect
  // to host:port. Blocks until all `size` ranks have joined (or timeout).
  static std::shared_ptr<gradient_group> over_tcp(const std::string& host, std::uint16_t port,
                                                  int rank, int size,
                                                  const gradient_group_options& options = {});
  // Ranks meet through a file on a shared file system (c10d::FileStore).
  static std::shared_ptr<gradient_group> over_file(const std::string& path, int rank, int size,
                                                   const gradient_group_options& options = {});
  // (A group over a caller's c10d::Store: gradient_group_c10d.hpp.)

  ~gradient_group();
  gradient_group(const gradient_group&) = delete;
  gradient_group& operator=(const gradient_group&) = delete;

  int rank() const;
  int size() const;
  // The TCP store's port (the bound one on rank 0); 0 for other stores.
  std::uint16_t store_port() const;

  // In place, blocking: every rank ends with the element-wise sum. The
  // result is bit-identical on all ranks (one reduction order, then shared).
  void all_reduce_sum(float* data, std::size_t count);
  void all_reduce_sum(double* data, std::size_t count);
  // In place, blocking: every rank ends with root's values.
  void broadcast(float* data, std::size_t count, int root);
  // The same on a tensor: contiguous, on the CPU (Gloo) or this rank's GPU
  // (NCCL). Host pointers above are staged through the GPU with NCCL.
  void all_reduce_sum(at::Tensor& tensor);
  void broadcast(at::Tensor& tensor, int root);
  void barrier();
  const std::string& backend() const;

  struct impl;
  explicit gradient_group(std::unique_ptr<impl> state);

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace melissa
