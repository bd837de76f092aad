// melissa-torch-info: which LibTorch this build uses (Debian's CPU build, or
// the one given by -Dtorch_prefix), whether it sees a GPU, and how fast a
// matrix product runs, which tells whether OpenBLAS is in use.
#include <torch/torch.h>

#include <chrono>
#include <iostream>

int main() {
  std::cout << "LibTorch " << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "."
            << TORCH_VERSION_PATCH << "\n";
  std::cout << "CUDA available: " << (torch::cuda::is_available() ? "yes" : "no");
  if (torch::cuda::is_available()) std::cout << " (" << torch::cuda::device_count() << " devices)";
  std::cout << "\nthreads: " << torch::get_num_threads() << "\n";
  // Debian's LibTorch falls back to the reference BLAS without libopenblas0-pthread
  // (about 25x slower): a 512^3 product shows it at once.
  auto a = torch::rand({512, 512});
  auto b = torch::rand({512, 512});
  torch::mm(a, b);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 10; ++i) torch::mm(a, b);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double gflops = 10 * 2.0 * 512 * 512 * 512 / secs / 1e9;
  std::cout << "512x512 matmul: " << gflops << " GFLOP/s"
            << (gflops < 2 ? "  (slow: is libopenblas0-pthread installed?)" : "") << "\n";
  return 0;
}
