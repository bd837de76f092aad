// A batch of training samples as the training buffer hands it to a trainer:
// contiguous row-major arrays that a trainer wraps as tensors without copying.
// Plain C++ (no CAF, no torch), shared by the buffers, the trainer and the
// offline loader.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace melissa {

struct training_batch {
  std::uint32_t size = 0;         // samples in the batch (0 only when `last`)
  std::uint32_t input_dim = 0;    // values per input row (normalized parameters + time)
  std::uint32_t output_dim = 0;   // values per target row (the field)
  std::vector<float> inputs;      // size x input_dim
  std::vector<float> targets;     // size x output_dim
  std::vector<std::uint32_t> sim_ids;     // per sample: where it came from (Breed's statistics)
  std::vector<std::uint32_t> time_steps;
  // No batch: production is over and the buffer is exhausted; training ends.
  bool last = false;
  // The buffer right after this draw (the trainer's metrics; 0 offline).
  std::uint64_t buffer_population = 0;
  std::uint64_t buffer_unseen = 0;
};

// Batches travel between actors of one process behind a shared pointer.
using training_batch_ptr = std::shared_ptr<const training_batch>;

}  // namespace melissa
