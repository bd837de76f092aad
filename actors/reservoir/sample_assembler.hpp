// Sample assembly: how a stored time step (simulation, time step, payload,
// the simulation's parameters) becomes a training sample, and how a sample
// becomes one row of a training batch. The one place the online path builds
// samples; the offline reader (actors/trainer/dataset/) builds its rows with
// the same sample_encoder.
//
//   training_sample s = assembler.assemble(sim, step, dtype, count, payload, bytes);
//   training_batch b = begin_batch(rows, s.input.size(), s.target->size());
//   append_row(s, b);  // rows times
//
// Checks: none against the study. A step's field size and dtype are checked
// once, where it enters the server (actors/client_proxy/client_session.cpp,
// admit_header: count == the study's size, float32 in training mode); the
// buffer keeps its rows rectangular (training_buffer::put). What assemble()
// still refuses is what it cannot decode or would read out of bounds (see
// assemble()).
//
// Cost: assemble() copies the field once (float32: one memcpy; float64: one
// conversion per value) and encodes parameters + 1 inputs; parameters_of is
// called once per simulation until forget(sim). append_row copies
// input_dim + output_dim floats. Thread safety: a sample_assembler is not
// thread-safe (one owner: the reservoir actor); begin_batch and append_row
// are free functions, safe on distinct batches. Plain C++ (no CAF, no torch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "messages/sample_encoding.hpp"
#include "messages/training_batch.hpp"
#include "messages/wire.hpp"

namespace melissa {

// One stored sample: the encoded input row and the target field. The target is
// shared (immutable) so that a sample can be handed around without copying it.
struct training_sample {
  std::uint32_t sim_id = 0;
  std::uint32_t time_step = 0;
  std::vector<float> input;
  std::shared_ptr<const std::vector<float>> target;
};

class sample_assembler {
 public:
  // The parameters of simulation `sim` (encoder.lo.size() values); may throw
  // for an unknown simulation.
  using parameters_fn = std::function<std::vector<double>(std::uint32_t sim)>;

  // Throws std::invalid_argument when parameters_of is empty.
  sample_assembler(sample_encoder encoder, parameters_fn parameters_of);

  // The step as a sample: input = encoder(parameters of `sim`, time_step),
  // target = the `count` values of `payload` as float32. Throws
  // std::invalid_argument, naming the reason, for
  //  - a dtype other than f32 / f64: not a re-check of the session's (which
  //    admits only f32 in training mode), but what this function can decode
  //    (a statistics-mode study, or an embedding application, may send others);
  //  - `bytes` != count x the dtype's size: the payload would be read out of
  //    bounds (the client proxy builds both from one header; a step built by
  //    an embedding application, examples/embed, went through no session);
  //  - parameters_of(sim) throwing, or returning a count other than the
  //    encoder's (encode() would read out of bounds).
  training_sample assemble(std::uint32_t sim, std::uint32_t time_step, wire::dtype type,
                           std::uint64_t count, const char* payload, std::size_t bytes);

  // The simulation has ended: drop its cached parameters.
  void forget(std::uint32_t sim) { parameters_.erase(sim); }
  std::size_t cached_simulations() const { return parameters_.size(); }
  const sample_encoder& encoder() const { return encoder_; }

 private:
  sample_encoder encoder_;
  parameters_fn parameters_of_;
  std::map<std::uint32_t, std::vector<double>> parameters_;  // per simulation, until forget
};

// An empty batch of the given row lengths, its arrays reserved for `rows`
// rows (reserve, not resize: no zero-fill of arrays about to be overwritten).
training_batch begin_batch(std::size_t rows, std::uint32_t input_dim, std::uint32_t output_dim);

// Appends `s` as the next row of `batch` (input, target, sim id, time step)
// and counts it in batch.size. The caller keeps the rows rectangular: `s`
// has batch.input_dim inputs and batch.output_dim targets (training_buffer
// checks this when a sample is stored).
void append_row(const training_sample& s, training_batch& batch);

}  // namespace melissa
