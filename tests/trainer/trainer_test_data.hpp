// Random batches and small settings shared by the trainer tests.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "actors/trainer/trainer_core.hpp"
#include "messages/training_batch.hpp"

namespace melissa::testing {

// Targets = a smooth function of the inputs (learnable) * scale + offset.
inline training_batch make_batch(std::uint32_t size, std::uint32_t input_dim,
                                 std::uint32_t output_dim, std::uint32_t seed,
                                 double offset = 0.0, double scale = 1.0) {
  std::mt19937 random(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  training_batch batch;
  batch.size = size;
  batch.input_dim = input_dim;
  batch.output_dim = output_dim;
  batch.inputs.resize(std::size_t{size} * input_dim);
  batch.targets.resize(std::size_t{size} * output_dim);
  for (auto& value : batch.inputs) value = uniform(random);
  for (std::uint32_t r = 0; r < size; ++r) {
    float drive = 0;
    for (std::uint32_t i = 0; i < input_dim; ++i)
      drive += batch.inputs[std::size_t{r} * input_dim + i] * static_cast<float>(i + 1);
    for (std::uint32_t j = 0; j < output_dim; ++j) {
      float value = std::sin(drive + 0.01f * static_cast<float>(j)) + 0.1f * uniform(random);
      batch.targets[std::size_t{r} * output_dim + j] =
          static_cast<float>(offset + scale * static_cast<double>(value));
    }
    batch.sim_ids.push_back(r);
    batch.time_steps.push_back(seed);
  }
  return batch;
}

// The rows of a then the rows of b.
inline training_batch concatenate(const training_batch& a, const training_batch& b) {
  training_batch both = a;
  both.size = a.size + b.size;
  both.inputs.insert(both.inputs.end(), b.inputs.begin(), b.inputs.end());
  both.targets.insert(both.targets.end(), b.targets.begin(), b.targets.end());
  both.sim_ids.insert(both.sim_ids.end(), b.sim_ids.begin(), b.sim_ids.end());
  both.time_steps.insert(both.time_steps.end(), b.time_steps.begin(), b.time_steps.end());
  return both;
}

inline trainer_settings small_settings(std::uint32_t input_dim = 4,
                                       std::uint32_t output_dim = 300) {
  trainer_settings settings;
  settings.model.input_dim = input_dim;
  settings.model.hidden = {16, 16};
  settings.model.output_dim = output_dim;
  settings.seed = 7;
  settings.threads = 2;
  return settings;
}

}  // namespace melissa::testing
