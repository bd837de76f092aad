// C++ side of the trainer_step benchmark: trainer_core's step on the SC23
// surrogate (6 -> 256 -> 256 -> 10000, ReLU, Adam) with batches of 10.
// Prints one line per measurement, `name value`, for tests/bench/trainer_step.
//   trainer_step [--steps N] [--warmup N] [--threads T] [--output M] [--batch B]
//                [--breakdown]
// --breakdown also times the model's forward, loss and backward alone
// (surrogate_model::train_pass without the optimizer).
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "actors/trainer/surrogate_model.hpp"
#include "actors/trainer/trainer_core.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point start, int repetitions) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count() /
         repetitions;
}

}  // namespace

int main(int argc, char** argv) {
  int steps = 100, warmup = 10, threads = 2, batch_size = 10;
  std::uint32_t output_dim = 10000;
  bool breakdown = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() { return i + 1 < argc ? std::atoi(argv[++i]) : 0; };
    if (arg == "--steps") steps = next();
    else if (arg == "--warmup") warmup = next();
    else if (arg == "--threads") threads = next();
    else if (arg == "--output") output_dim = static_cast<std::uint32_t>(next());
    else if (arg == "--batch") batch_size = next();
    else if (arg == "--breakdown") breakdown = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", arg.c_str());
      return 2;
    }
  }

  melissa::trainer_settings settings;
  settings.model.input_dim = 6;
  settings.model.output_dim = output_dim;
  settings.threads = threads;
  melissa::trainer_core trainer(settings);

  // A few distinct batches, as a buffer would hand them over.
  std::mt19937 random(42);
  std::normal_distribution<float> normal;
  std::vector<melissa::training_batch> batches(4);
  for (auto& batch : batches) {
    batch.size = static_cast<std::uint32_t>(batch_size);
    batch.input_dim = 6;
    batch.output_dim = output_dim;
    batch.inputs.resize(std::size_t{6} * batch_size);
    batch.targets.resize(std::size_t{output_dim} * batch_size);
    for (auto& v : batch.inputs) v = normal(random);
    for (auto& v : batch.targets) v = normal(random);
  }

  for (int i = 0; i < warmup; ++i) trainer.step(&batches[i % batches.size()]);
  auto start = clock_type::now();
  std::clock_t cpu_start = std::clock();
  for (int i = 0; i < steps; ++i) trainer.step(&batches[i % batches.size()]);
  double step_ms = ms_since(start, steps);
  // CPU time of all the process's threads: on a busy machine wall time
  // includes waiting for a core, CPU time does not.
  double cpu_ms = 1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC / steps;
  std::printf("threads %d\n", at::get_num_threads());
  std::printf("parameters %zu\n", trainer.parameter_count());
  std::printf("step_ms %.4f\n", step_ms);
  std::printf("cpu_ms %.4f\n", cpu_ms);
  std::printf("samples_per_s %.2f\n", 1000.0 * batch_size / step_ms);

  if (breakdown) {
    // The same pass without the optimizer: forward, loss and backward.
    melissa::surrogate_model model(settings.model, 0);
    melissa::chunk_pool pool(threads);
    std::vector<float> gradients(static_cast<std::size_t>(model.parameter_count()));
    auto pass = [&](int i) {
      const auto& batch = batches[static_cast<std::size_t>(i) % batches.size()];
      model.train_pass(batch.inputs.data(), batch.targets.data(), batch_size, 0.0, 1.0, 0.0,
                       gradients.data(), pool, nullptr);
    };
    for (int i = 0; i < warmup; ++i) pass(i);
    start = clock_type::now();
    for (int i = 0; i < steps; ++i) pass(i);
    double pass_ms = ms_since(start, steps);
    std::printf("forward_backward_ms %.4f\n", pass_ms);
    std::printf("optimizer_and_rest_ms %.4f\n", step_ms - pass_ms);
  }
  return 0;
}
