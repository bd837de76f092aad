// Batch assembly from a full Reservoir (the paper's setting: 6000 samples of
// a 10000-value field, 6 inputs, batches of 10): the cost of drawing a batch,
// i.e. picking rows and copying them into the batch's contiguous arrays.
// Baseline, measured in the same run: copying 10 random rows of a plain
// contiguous 6000 x 10000 array into a fresh batch (the copy alone).
// Prints one JSON line. Usage: batch_assembly [iterations]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "actors/reservoir/training_buffer.hpp"

using namespace melissa;

namespace {

constexpr std::size_t capacity = 6000;
constexpr std::size_t output_dim = 10000;
constexpr std::size_t input_dim = 6;
constexpr std::size_t batch_size = 10;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t iterations = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 5000;

  auto buffer = make_training_buffer({buffer_policy::reservoir, capacity, 1000, 1});
  for (std::uint32_t i = 0; i < capacity; ++i) {
    training_sample s;
    s.sim_id = i / 100;
    s.time_step = i % 100;
    s.input.assign(input_dim, static_cast<float>(i));
    s.target = std::make_shared<const std::vector<float>>(output_dim, static_cast<float>(i));
    buffer->put(std::move(s));
  }

  // Keep the results alive until after timing so that nothing is optimized out.
  double checksum = 0;
  for (std::size_t i = 0; i < 100; ++i) checksum += buffer->draw(batch_size).targets[0];  // warm-up
  auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < iterations; ++i) {
    auto b = buffer->draw(batch_size);
    checksum += b.targets[output_dim * (i % batch_size)];
  }
  const double ms_per_batch = seconds_since(start) * 1e3 / iterations;

  std::vector<float> plain(capacity * output_dim);
  for (std::size_t i = 0; i < capacity; ++i)
    std::fill_n(plain.data() + i * output_dim, output_dim, static_cast<float>(i));
  std::mt19937_64 rng(1);
  auto copy_rows = [&] {
    std::vector<float> rows(batch_size * output_dim);
    for (std::size_t r = 0; r < batch_size; ++r)
      std::memcpy(rows.data() + r * output_dim, plain.data() + (rng() % capacity) * output_dim,
                  output_dim * sizeof(float));
    return rows;
  };
  for (std::size_t i = 0; i < 100; ++i) checksum += copy_rows()[0];
  start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < iterations; ++i) checksum += copy_rows()[output_dim * (i % batch_size)];
  const double baseline_ms = seconds_since(start) * 1e3 / iterations;

  std::printf(
      "{\"ms_per_batch\": %.5f, \"baseline_copy_ms_per_batch\": %.5f, \"ratio\": %.3f, "
      "\"capacity\": %zu, \"output_dim\": %zu, \"input_dim\": %zu, \"batch\": %zu, "
      "\"iterations\": %zu, \"checksum\": %.1f}\n",
      ms_per_batch, baseline_ms, ms_per_batch / baseline_ms, capacity, output_dim, input_dim,
      batch_size, iterations, checksum);
  return 0;
}
