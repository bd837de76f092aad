// The training buffer between the aggregator (producer) and a trainer
// (consumer), with the three policies of the SC23 paper (section 3.2.3):
//
//   FIFO       batches in arrival order; each sample used once.
//   FIRO       each sample used once, drawn from random positions, once the
//              population has reached the threshold (watermark).
//   Reservoir  (Algorithm 1) samples may be used several times: batches are
//              drawn uniformly WITH replacement among all stored samples; a
//              sample arriving when full evicts a random SEEN sample, so an
//              unseen sample is never discarded and the producer waits only
//              when the buffer is full of unseen samples.
//
// Plain C++ (no CAF, no torch): the reservoir actor wraps it and the unit
// tests drive it directly. Not thread-safe: one owner (the actor) calls it.
//
// Watermark: while production runs, FIRO and Reservoir give no batch before
// the population has reached min(threshold, capacity) (clamped so that a
// full buffer can always be drawn from: otherwise producer and consumer would
// wait on each other). FIFO has no threshold (paper: "batch extraction is
// enabled as soon as the buffer can provide one"); its setting is ignored.
//
// End of production: the threshold is lifted and the buffer drains. FIFO and
// FIRO hand out what is left (the last batch may be partial). The Reservoir
// stops distinguishing seen and unseen samples and every drawn sample is
// removed (drawn without replacement), so it empties in about
// population / batch_size batches, the last one partial. Once production is
// over and the buffer is empty it is exhausted and draw() returns the
// `last` marker batch: training ends.
//
// Randomness: std::mt19937_64 seeded with `seed`, mapped to indices with an
// explicit integer method (not std::uniform_int_distribution, whose output
// differs between standard libraries): same seed + same sequence of calls =
// same batches on every platform.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "actors/reservoir/sample_assembler.hpp"  // training_sample, append_row
#include "messages/training_batch.hpp"

namespace melissa {

enum class buffer_policy : std::uint8_t { fifo = 0, firo = 1, reservoir = 2 };

// "fifo", "firo", "reservoir".
const char* to_string(buffer_policy p);
// Parses those names; throws std::invalid_argument for anything else.
buffer_policy parse_buffer_policy(const std::string& name);

struct buffer_settings {
  buffer_policy policy = buffer_policy::reservoir;
  std::size_t capacity = 6000;  // samples stored at most (> 0)
  std::size_t threshold = 1000; // watermark: population before the first batch (FIRO, Reservoir)
  std::uint64_t seed = 0;
};

struct buffer_stats {
  std::string policy;
  std::size_t capacity = 0;
  std::size_t threshold = 0;       // as configured (lifted once production is over)
  std::size_t population = 0;      // samples stored now
  std::size_t unseen = 0;          // stored samples never drawn yet
  std::uint64_t inserts = 0;       // samples ever put
  std::uint64_t evictions = 0;     // seen samples pushed out by a put (Reservoir only)
  std::uint64_t batches = 0;       // non-empty batches drawn
  std::uint64_t samples_drawn = 0; // rows in those batches (repetitions included)
  bool production_over = false;
};

struct buffer_snapshot;

class training_buffer {
 public:
  virtual ~training_buffer() = default;

  // Whether put() may be called now; false means the producer must wait
  // (FIFO/FIRO full, Reservoir full of unseen samples).
  virtual bool can_put() const = 0;
  // Stores a sample. Throws std::logic_error if !can_put(), and
  // std::invalid_argument for a sample with no target, or whose input or
  // target length differs from the first sample's. That length check is not
  // a validation of client data (client_session checks a step's size against
  // the study where it enters the server): it keeps this buffer's batches
  // rectangular whoever stores samples (an embedding application stores
  // steps without a session, examples/embed).
  void put(training_sample&& sample);

  // Whether draw(batch_size) would return a batch now (false for 0).
  virtual bool can_draw(std::size_t batch_size) const = 0;
  // A batch of at most batch_size samples, copied into the batch's contiguous
  // arrays. Full batches while production runs (Reservoir: possibly with
  // repeated samples); the last batch before exhaustion may be partial. Once
  // exhausted(): an empty batch with `last` set. Throws std::logic_error when
  // neither can_draw(batch_size) nor exhausted(), std::invalid_argument for 0.
  training_batch draw(std::size_t batch_size);

  // No more samples will come: the threshold is lifted and the buffer drains.
  void end_production();
  bool production_over() const { return production_over_; }
  // Production is over and nothing is left: training ends.
  bool exhausted() const { return production_over_ && population() == 0; }

  virtual std::size_t population() const = 0;
  virtual std::size_t unseen() const = 0;
  buffer_stats stats() const;
  // histogram[k] = number of samples ever put that have been drawn exactly k
  // times so far, counting stored samples and those already evicted or
  // consumed (the paper's Fig. 3). Its sum is stats().inserts.
  std::vector<std::uint64_t> repetition_histogram() const;

  const buffer_settings& settings() const { return settings_; }

  // Everything this buffer holds, for a checkpoint: the stored samples in
  // their internal order with their draw counts, the seen/unseen partition,
  // the counters and the random generator's state. Cheap: a sample's target
  // is shared, not copied (targets are immutable), so the owner can hand the
  // snapshot to another thread to write while it goes on.
  buffer_snapshot snapshot() const;

  // Row lengths, fixed by the first sample (0 before it).
  std::uint32_t input_dim() const { return input_dim_; }
  std::uint32_t output_dim() const { return output_dim_; }

 protected:
  explicit training_buffer(const buffer_settings& settings);

  // A stored sample and how many times it has been drawn.
  struct slot {
    training_sample sample;
    std::uint32_t times_drawn = 0;
  };

  // Policy hooks, called once the preconditions (can_put, can_draw,
  // dimensions) have been checked.
  virtual void do_put(training_sample&& sample) = 0;
  // Appends `rows` rows to `batch` with append_row.
  virtual void do_draw(std::size_t rows, training_batch& batch) = 0;
  // Rows the next batch of batch_size will have (<= population).
  virtual std::size_t rows_for(std::size_t batch_size) const = 0;
  // Adds the draw counts of stored samples to `histogram`.
  virtual void count_stored(std::vector<std::uint64_t>& histogram) const = 0;
  // The stored slots in internal order and the unseen count (snapshot), and
  // back (restore: called on an empty buffer).
  virtual void snapshot_slots(buffer_snapshot& out) const = 0;
  virtual void restore_slots(const buffer_snapshot& in) = 0;

  friend std::unique_ptr<training_buffer> restore_training_buffer(const buffer_snapshot& snapshot);

  // The watermark while production runs, clamped so a full buffer can draw.
  std::size_t effective_threshold() const;
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift with rejection).
  std::size_t random_below(std::size_t n);
  // Appends s as the next row of `batch` (melissa::append_row) and counts the draw.
  static void append_row(slot& s, training_batch& batch);
  // A sample leaves the buffer (consumed, evicted, drained): keep its count.
  void retire(const slot& s);

  buffer_settings settings_;
  bool production_over_ = false;
  std::uint64_t evictions_ = 0;

 private:
  std::mt19937_64 rng_;
  std::uint32_t input_dim_ = 0;
  std::uint32_t output_dim_ = 0;
  std::uint64_t inserts_ = 0;
  std::uint64_t batches_ = 0;
  std::uint64_t samples_drawn_ = 0;
  std::vector<std::uint64_t> retired_histogram_;
};

// Throws std::invalid_argument for capacity 0.
std::unique_ptr<training_buffer> make_training_buffer(const buffer_settings& settings);

// A training buffer as training_buffer::snapshot() saw it.
struct buffer_snapshot {
  struct stored_sample {
    training_sample sample;
    std::uint32_t times_drawn = 0;
  };
  buffer_settings settings;
  std::vector<stored_sample> samples;  // in the buffer's internal order
  std::size_t unseen = 0;              // Reservoir: samples[0, unseen) are unseen
  bool production_over = false;
  std::uint32_t input_dim = 0;
  std::uint32_t output_dim = 0;
  std::uint64_t inserts = 0;
  std::uint64_t evictions = 0;
  std::uint64_t batches = 0;
  std::uint64_t samples_drawn = 0;
  std::vector<std::uint64_t> retired_histogram;  // draw counts of samples gone
  std::string rng_state;                         // std::mt19937_64 as operator<< writes it
  // Stores the buffer's owner held waiting for room (full buffer), in
  // arrival order: not in the buffer yet, but received. training_buffer
  // leaves it empty and restore_training_buffer ignores it; the reservoir
  // actor fills it and queues them again when restored.
  std::vector<training_sample> pending;
};

// A buffer equal to the one snapshotted: same samples in the same order,
// counts, counters and random state, so that the same calls give the same
// batches as the original would have. Throws std::invalid_argument when the
// snapshot is inconsistent (more samples than the capacity, rows of other
// lengths, an unreadable random state).
std::unique_ptr<training_buffer> restore_training_buffer(const buffer_snapshot& snapshot);

}  // namespace melissa
