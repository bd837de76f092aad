// The SC23 paper's full-scale surrogate step through trainer_core: an MLP
// 6 -> 256 -> 256 -> outputs (1,000,000 by default), batch 10, Adam, on the
// device asked (tests/gpu/check.sh runs it on the GPU; on the CPU it runs
// the fused path). Prints one JSON line: samples/s and ms per step over
// --steps steps after --warmup, each step a fresh host batch staged to the
// device, as the online trainer gets them.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "actors/trainer/trainer_core.hpp"

int main(int argc, char** argv) {
  std::string device = "cuda";
  std::uint32_t outputs = 1000000, batch_size = 10;
  int steps = 50, warmup = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--device") device = value;
    else if (flag == "--outputs") outputs = static_cast<std::uint32_t>(std::stoul(value));
    else if (flag == "--batch") batch_size = static_cast<std::uint32_t>(std::stoul(value));
    else if (flag == "--steps") steps = std::stoi(value);
    else if (flag == "--warmup") warmup = std::stoi(value);
    else {
      std::fprintf(stderr, "usage: sc23_step [--device D] [--outputs N] [--batch B] [--steps S] [--warmup W]\n");
      return 2;
    }
  }
  melissa::trainer_settings settings;
  settings.model = {6, {256, 256}, "relu", outputs, ""};
  settings.output = {false, 0.0, 1.0};
  settings.device = device;
  std::unique_ptr<melissa::trainer_core> holder;
  try {
    holder = std::make_unique<melissa::trainer_core>(settings);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sc23_step: %s\n", e.what());
    return 2;
  }
  melissa::trainer_core& core = *holder;

  // A few distinct host batches, reused in turn.
  std::mt19937 random(1);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::vector<melissa::training_batch> batches(4);
  for (auto& b : batches) {
    b.size = batch_size;
    b.input_dim = 6;
    b.output_dim = outputs;
    b.inputs.resize(std::size_t{batch_size} * 6);
    b.targets.resize(std::size_t{batch_size} * outputs);
    for (auto& v : b.inputs) v = uniform(random);
    for (auto& v : b.targets) v = uniform(random);
    for (std::uint32_t r = 0; r < batch_size; ++r) {
      b.sim_ids.push_back(r);
      b.time_steps.push_back(r);
    }
  }
  for (int k = 0; k < warmup; ++k) core.step(&batches[k % 4]);
  // step() returns after its losses came back to the host: the GPU is idle
  // between two steps, so wall time over the steps is the step's time.
  const auto start = std::chrono::steady_clock::now();
  double loss = 0;
  for (int k = 0; k < steps; ++k) loss = core.step(&batches[k % 4]).loss;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const char* plain = std::getenv("MELISSA_FUSED_ADAM");
  std::printf(
      "{\"impl\": \"melissa-caf%s\", \"device\": \"%s\", \"parameters\": %zu, \"batch\": %u, "
      "\"steps\": %d, \"samples_per_s\": %.3f, \"ms_per_step\": %.4f, \"last_loss\": %.6g}\n",
      plain && std::string(plain) == "0" ? " (plain Adam)" : "", core.model().device.c_str(),
      core.parameter_count(), batch_size, steps, steps * batch_size / seconds,
      1e3 * seconds / steps, loss);
  return 0;
}
