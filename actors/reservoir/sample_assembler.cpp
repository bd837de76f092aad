#include "actors/reservoir/sample_assembler.hpp"

#include <cstring>
#include <stdexcept>
#include <string>

namespace melissa {

sample_assembler::sample_assembler(sample_encoder encoder, parameters_fn parameters_of)
    : encoder_(std::move(encoder)), parameters_of_(std::move(parameters_of)) {
  if (!parameters_of_) throw std::invalid_argument("sample assembler: parameters_of is not set");
}

training_sample sample_assembler::assemble(std::uint32_t sim, std::uint32_t time_step,
                                           wire::dtype type, std::uint64_t count,
                                           const char* payload, std::size_t bytes) {
  if (type != wire::dtype::f32 && type != wire::dtype::f64)
    throw std::invalid_argument(std::string("field values must be f32 or f64, got ") +
                                wire::to_string(type));
  const std::size_t value_size = wire::dtype_size(type);
  if ((bytes > 0 && !payload) || bytes != count * value_size)
    throw std::invalid_argument("payload of " + std::to_string(bytes) + " bytes for " +
                                std::to_string(count) + " values");

  auto cached = parameters_.find(sim);
  if (cached == parameters_.end()) {
    std::vector<double> params;
    try {
      params = parameters_of_(sim);
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("no parameters: ") + e.what());
    }
    if (params.size() != encoder_.lo.size())
      throw std::invalid_argument("simulation " + std::to_string(sim) + " has " +
                                  std::to_string(params.size()) + " parameters, the encoder expects " +
                                  std::to_string(encoder_.lo.size()));
    cached = parameters_.emplace(sim, std::move(params)).first;
  }

  auto target = std::make_shared<std::vector<float>>(count);
  if (type == wire::dtype::f32) {
    if (bytes > 0) std::memcpy(target->data(), payload, bytes);
  } else {
    for (std::uint64_t i = 0; i < count; ++i) {
      double v;  // memcpy: the payload carries no alignment promise
      std::memcpy(&v, payload + i * sizeof(double), sizeof(double));
      (*target)[i] = static_cast<float>(v);
    }
  }
  training_sample out;
  out.sim_id = sim;
  out.time_step = time_step;
  out.input.resize(encoder_.input_dim());
  encoder_.encode(cached->second.data(), time_step, out.input.data());
  out.target = std::move(target);
  return out;
}

training_batch begin_batch(std::size_t rows, std::uint32_t input_dim, std::uint32_t output_dim) {
  training_batch batch;
  batch.input_dim = input_dim;
  batch.output_dim = output_dim;
  batch.inputs.reserve(rows * input_dim);
  batch.targets.reserve(rows * output_dim);
  batch.sim_ids.reserve(rows);
  batch.time_steps.reserve(rows);
  return batch;
}

void append_row(const training_sample& s, training_batch& batch) {
  batch.inputs.insert(batch.inputs.end(), s.input.begin(), s.input.end());
  const auto& target = *s.target;
  batch.targets.insert(batch.targets.end(), target.begin(), target.end());
  batch.sim_ids.push_back(s.sim_id);
  batch.time_steps.push_back(s.time_step);
  ++batch.size;
}

}  // namespace melissa
