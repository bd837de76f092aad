// Reads one field of a dataset directory for offline training and validation:
//   <dir>/sim_000012/<field>.npy     float32, shape (time steps, field size), row t = step t
//   <dir>/sim_000012/parameters.npy  float64, the simulation's parameters
// (the layout of the server's dataset sink and the heat solver's dataset mode,
// actors/dataset_sink/dataset_writer.hpp). Field files are memory-mapped
// read-only, so a dataset larger than memory is paged in as batches need it.
// A sample is (simulation, time step); its input row is built by the project's
// one sample_encoder, its target is the mapped row. Plain C++ (no CAF, no torch).
// All methods are const and thread-safe once constructed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "messages/sample_encoding.hpp"
#include "messages/training_batch.hpp"

namespace melissa {

struct dataset_sample {
  std::uint32_t sim_id = 0;
  std::uint32_t time_step = 0;
};

class dataset_reader {
 public:
  // Opens <dir>/sim_*/<field>.npy and parameters.npy of the simulations in
  // `simulations` (ids; empty: every sim_NNNNNN folder holding <field>.npy).
  // Throws std::runtime_error naming the path on a missing file, a dtype or
  // shape that is not float32 (steps, size) / float64 parameters, a truncated
  // file, a field size different from the other simulations', or a parameter
  // count different from encoder.lo.size().
  dataset_reader(const std::string& dir, const std::string& field, sample_encoder encoder,
                 const std::vector<std::uint32_t>& simulations = {});
  ~dataset_reader();
  dataset_reader(dataset_reader&&) noexcept;
  dataset_reader& operator=(dataset_reader&&) noexcept;

  // Ids of the sim_NNNNNN folders of `dir` that hold <field>.npy, ascending
  // (to split simulations between a training and a validation set).
  static std::vector<std::uint32_t> list_simulations(const std::string& dir, const std::string& field);

  // Every sample, simulation by simulation (ascending id), step by step.
  const std::vector<dataset_sample>& samples() const;
  std::size_t size() const { return samples().size(); }
  std::size_t simulation_count() const;
  std::uint32_t max_time_steps() const;  // the most rows of any simulation
  std::uint32_t input_dim() const;       // encoder.input_dim()
  std::uint32_t output_dim() const;      // field size
  const sample_encoder& encoder() const;
  const std::string& directory() const;
  const std::string& field() const;

  // Fills `out` with the samples at `indices` (into samples()), in that order:
  // size, dims, inputs, targets, sim_ids, time_steps; `last` = false.
  // std::out_of_range for an index >= size().
  void fill(const std::size_t* indices, std::size_t count, training_batch& out) const;
  training_batch_ptr batch(const std::vector<std::size_t>& indices) const;
  // Every sample as one batch (a small validation set).
  training_batch_ptr all() const;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

// One field of a whole (small) dataset directory as one batch: the validation set.
training_batch_ptr load_dataset(const std::string& dir, const std::string& field,
                                const sample_encoder& encoder,
                                const std::vector<std::uint32_t>& simulations = {});

}  // namespace melissa
