#include "actors/reservoir/training_buffer.hpp"

#include <algorithm>
#include <deque>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace melissa {

const char* to_string(buffer_policy p) {
  switch (p) {
    case buffer_policy::fifo: return "fifo";
    case buffer_policy::firo: return "firo";
    case buffer_policy::reservoir: return "reservoir";
  }
  return "unknown";
}

buffer_policy parse_buffer_policy(const std::string& name) {
  if (name == "fifo") return buffer_policy::fifo;
  if (name == "firo") return buffer_policy::firo;
  if (name == "reservoir") return buffer_policy::reservoir;
  throw std::invalid_argument("unknown buffer policy '" + name +
                              "' (expected fifo, firo or reservoir)");
}

// ---------------------------------------------------------------- common part

training_buffer::training_buffer(const buffer_settings& settings)
    : settings_(settings), rng_(settings.seed) {}

void training_buffer::put(training_sample&& sample) {
  if (!can_put()) throw std::logic_error("training buffer: put() while the buffer cannot take a sample");
  if (!sample.target) throw std::invalid_argument("training buffer: sample without a target");
  const auto in = static_cast<std::uint32_t>(sample.input.size());
  const auto out = static_cast<std::uint32_t>(sample.target->size());
  if (inserts_ == 0) {
    input_dim_ = in;
    output_dim_ = out;
  } else if (in != input_dim_ || out != output_dim_) {
    throw std::invalid_argument("training buffer: sample of " + std::to_string(in) + " inputs and " +
                                std::to_string(out) + " targets, expected " +
                                std::to_string(input_dim_) + " and " + std::to_string(output_dim_));
  }
  do_put(std::move(sample));
  ++inserts_;
}

training_batch training_buffer::draw(std::size_t batch_size) {
  if (batch_size == 0) throw std::invalid_argument("training buffer: batch size 0");
  if (exhausted()) {
    training_batch batch = begin_batch(0, input_dim_, output_dim_);
    batch.last = true;
    return batch;
  }
  if (!can_draw(batch_size)) throw std::logic_error("training buffer: draw() while no batch can be drawn");
  const std::size_t rows = rows_for(batch_size);
  training_batch batch = begin_batch(rows, input_dim_, output_dim_);
  do_draw(rows, batch);  // append_row counts batch.size
  ++batches_;
  samples_drawn_ += rows;
  return batch;
}

void training_buffer::end_production() { production_over_ = true; }

buffer_stats training_buffer::stats() const {
  buffer_stats s;
  s.policy = to_string(settings_.policy);
  s.capacity = settings_.capacity;
  s.threshold = settings_.threshold;
  s.population = population();
  s.unseen = unseen();
  s.inserts = inserts_;
  s.evictions = evictions_;
  s.batches = batches_;
  s.samples_drawn = samples_drawn_;
  s.production_over = production_over_;
  return s;
}

std::vector<std::uint64_t> training_buffer::repetition_histogram() const {
  std::vector<std::uint64_t> histogram = retired_histogram_;
  if (histogram.empty()) histogram.resize(1, 0);
  count_stored(histogram);
  while (histogram.size() > 1 && histogram.back() == 0) histogram.pop_back();
  return histogram;
}

buffer_snapshot training_buffer::snapshot() const {
  buffer_snapshot out;
  out.settings = settings_;
  out.production_over = production_over_;
  out.input_dim = input_dim_;
  out.output_dim = output_dim_;
  out.inserts = inserts_;
  out.evictions = evictions_;
  out.batches = batches_;
  out.samples_drawn = samples_drawn_;
  out.retired_histogram = retired_histogram_;
  std::ostringstream rng;
  rng << rng_;
  out.rng_state = rng.str();
  snapshot_slots(out);
  return out;
}

std::size_t training_buffer::effective_threshold() const {
  return std::min(settings_.threshold, settings_.capacity);
}

std::size_t training_buffer::random_below(std::size_t n) {
  // Lemire, "Fast random integer generation in an interval" (2019): the high
  // word of x * n is uniform in [0, n) once the biased low words are rejected.
  const std::uint64_t range = n;
  std::uint64_t x = rng_();
  unsigned __int128 m = static_cast<unsigned __int128>(x) * range;
  auto low = static_cast<std::uint64_t>(m);
  if (low < range) {
    const std::uint64_t reject_below = (0 - range) % range;
    while (low < reject_below) {
      x = rng_();
      m = static_cast<unsigned __int128>(x) * range;
      low = static_cast<std::uint64_t>(m);
    }
  }
  return static_cast<std::size_t>(m >> 64);
}

void training_buffer::append_row(slot& s, training_batch& batch) {
  melissa::append_row(s.sample, batch);
  ++s.times_drawn;
}

void training_buffer::retire(const slot& s) {
  if (retired_histogram_.size() <= s.times_drawn) retired_histogram_.resize(s.times_drawn + 1, 0);
  ++retired_histogram_[s.times_drawn];
}

namespace {

void count_into(std::vector<std::uint64_t>& histogram, std::uint32_t times_drawn) {
  if (histogram.size() <= times_drawn) histogram.resize(times_drawn + 1, 0);
  ++histogram[times_drawn];
}

// Slots reserved up front: enough to avoid regrowth in the common case
// without committing a huge configured capacity before any sample arrives.
constexpr std::size_t max_initial_reserve = 1 << 16;

// ----------------------------------------------------------------------- FIFO

// A queue: batches in arrival order, each sample consumed by its draw.
class fifo_buffer final : public training_buffer {
 public:
  explicit fifo_buffer(const buffer_settings& settings) : training_buffer(settings) {}

  bool can_put() const override { return queue_.size() < settings_.capacity; }

  bool can_draw(std::size_t batch_size) const override {
    if (batch_size == 0 || queue_.empty()) return false;
    if (production_over_) return true;
    // A full buffer always yields a batch, even one smaller than asked.
    return queue_.size() >= std::min(batch_size, settings_.capacity);
  }

  std::size_t population() const override { return queue_.size(); }
  std::size_t unseen() const override { return queue_.size(); }

 protected:
  void do_put(training_sample&& sample) override { queue_.push_back(slot{std::move(sample), 0}); }

  std::size_t rows_for(std::size_t batch_size) const override {
    return std::min(batch_size, queue_.size());
  }

  void do_draw(std::size_t rows, training_batch& batch) override {
    for (std::size_t r = 0; r < rows; ++r) {
      append_row(queue_.front(), batch);
      retire(queue_.front());
      queue_.pop_front();
    }
  }

  void count_stored(std::vector<std::uint64_t>& histogram) const override {
    for (const auto& s : queue_) count_into(histogram, s.times_drawn);
  }

  void snapshot_slots(buffer_snapshot& out) const override {
    out.samples.reserve(queue_.size());
    for (const auto& s : queue_) out.samples.push_back({s.sample, s.times_drawn});
    out.unseen = queue_.size();
  }
  void restore_slots(const buffer_snapshot& in) override {
    for (const auto& s : in.samples) queue_.push_back(slot{s.sample, s.times_drawn});
  }

 private:
  std::deque<slot> queue_;
};

// ----------------------------------------------------------------------- FIRO

// Each sample consumed by its draw, taken from a random position once the
// watermark is reached. Dense vector + swap-remove: O(1) per drawn sample.
class firo_buffer final : public training_buffer {
 public:
  explicit firo_buffer(const buffer_settings& settings) : training_buffer(settings) {
    slots_.reserve(std::min(settings.capacity, max_initial_reserve));
  }

  bool can_put() const override { return slots_.size() < settings_.capacity; }

  bool can_draw(std::size_t batch_size) const override {
    if (batch_size == 0 || slots_.empty()) return false;
    if (production_over_) return true;  // threshold lifted: drain
    // Both bounds are <= capacity, so a full buffer can always be drawn from.
    return slots_.size() >= std::max(effective_threshold(), std::min(batch_size, settings_.capacity));
  }

  std::size_t population() const override { return slots_.size(); }
  std::size_t unseen() const override { return slots_.size(); }

 protected:
  void do_put(training_sample&& sample) override { slots_.push_back(slot{std::move(sample), 0}); }

  std::size_t rows_for(std::size_t batch_size) const override {
    return std::min(batch_size, slots_.size());
  }

  void do_draw(std::size_t rows, training_batch& batch) override {
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t i = random_below(slots_.size());
      append_row(slots_[i], batch);
      retire(slots_[i]);
      if (i + 1 != slots_.size()) slots_[i] = std::move(slots_.back());
      slots_.pop_back();
    }
  }

  void count_stored(std::vector<std::uint64_t>& histogram) const override {
    for (const auto& s : slots_) count_into(histogram, s.times_drawn);
  }

  void snapshot_slots(buffer_snapshot& out) const override {
    out.samples.reserve(slots_.size());
    for (const auto& s : slots_) out.samples.push_back({s.sample, s.times_drawn});
    out.unseen = slots_.size();
  }
  void restore_slots(const buffer_snapshot& in) override {
    slots_.reserve(in.samples.size());
    for (const auto& s : in.samples) slots_.push_back(slot{s.sample, s.times_drawn});
  }

 private:
  std::vector<slot> slots_;
};

// ------------------------------------------------------------------ Reservoir

// Algorithm 1 of the paper. One dense vector partitioned in place:
// slots_[0, unseen_) are unseen, slots_[unseen_, size) are seen. Marking a
// sample seen, evicting a random seen one and inserting are O(1) swaps, so a
// batch costs O(batch) index work plus the row copies, whatever the capacity.
class reservoir_buffer final : public training_buffer {
 public:
  explicit reservoir_buffer(const buffer_settings& settings) : training_buffer(settings) {
    slots_.reserve(std::min(settings.capacity, max_initial_reserve));
  }

  // Only a buffer full of unseen samples refuses: no unseen sample is dropped.
  bool can_put() const override {
    return slots_.size() < settings_.capacity || unseen_ < settings_.capacity;
  }

  bool can_draw(std::size_t batch_size) const override {
    if (batch_size == 0 || slots_.empty()) return false;
    if (production_over_) return true;  // threshold lifted: drain
    // Drawn with replacement, so any population at the watermark will do.
    return slots_.size() >= effective_threshold();
  }

  std::size_t population() const override { return slots_.size(); }
  std::size_t unseen() const override { return unseen_; }

 protected:
  void do_put(training_sample&& sample) override {
    std::size_t landing;
    if (slots_.size() < settings_.capacity) {
      slots_.push_back(slot{std::move(sample), 0});
      landing = slots_.size() - 1;
    } else {
      // Full: a random seen sample makes room (can_put guarantees one exists).
      landing = unseen_ + random_below(slots_.size() - unseen_);
      retire(slots_[landing]);
      ++evictions_;
      slots_[landing] = slot{std::move(sample), 0};
    }
    // Move the newcomer to the end of the unseen region.
    if (landing != unseen_) std::swap(slots_[landing], slots_[unseen_]);
    ++unseen_;
  }

  std::size_t rows_for(std::size_t batch_size) const override {
    // With replacement while production runs; without once it drains.
    return production_over_ ? std::min(batch_size, slots_.size()) : batch_size;
  }

  void do_draw(std::size_t rows, training_batch& batch) override {
    if (production_over_) {
      drain(rows, batch);
      return;
    }
    for (std::size_t r = 0; r < rows; ++r) {
      // Uniform over every stored sample, seen or unseen.
      const std::size_t i = random_below(slots_.size());
      append_row(slots_[i], batch);
      if (i < unseen_) {
        // Now seen: swap it to the boundary and move the boundary left.
        --unseen_;
        if (i != unseen_) std::swap(slots_[i], slots_[unseen_]);
      }
    }
  }

  void count_stored(std::vector<std::uint64_t>& histogram) const override {
    for (const auto& s : slots_) count_into(histogram, s.times_drawn);
  }

  void snapshot_slots(buffer_snapshot& out) const override {
    out.samples.reserve(slots_.size());
    for (const auto& s : slots_) out.samples.push_back({s.sample, s.times_drawn});
    out.unseen = unseen_;
  }
  void restore_slots(const buffer_snapshot& in) override {
    slots_.reserve(in.samples.size());
    for (const auto& s : in.samples) slots_.push_back(slot{s.sample, s.times_drawn});
    unseen_ = in.unseen;
  }

 private:
  // Production is over: seen or unseen no longer matters, each drawn sample
  // leaves the buffer so that it empties and training can end.
  void drain(std::size_t rows, training_batch& batch) {
    for (std::size_t r = 0; r < rows; ++r) {
      std::size_t hole = random_below(slots_.size());
      append_row(slots_[hole], batch);
      retire(slots_[hole]);
      if (hole < unseen_) {
        // Keep the partition: the last unseen sample fills the hole, which
        // moves to the boundary (now the first seen position).
        --unseen_;
        if (hole != unseen_) slots_[hole] = std::move(slots_[unseen_]);
        hole = unseen_;
      }
      if (hole + 1 != slots_.size()) slots_[hole] = std::move(slots_.back());
      slots_.pop_back();
    }
  }

  std::vector<slot> slots_;
  std::size_t unseen_ = 0;
};

}  // namespace

std::unique_ptr<training_buffer> make_training_buffer(const buffer_settings& settings) {
  if (settings.capacity == 0) throw std::invalid_argument("training buffer: capacity must be > 0");
  switch (settings.policy) {
    case buffer_policy::fifo: return std::make_unique<fifo_buffer>(settings);
    case buffer_policy::firo: return std::make_unique<firo_buffer>(settings);
    case buffer_policy::reservoir: return std::make_unique<reservoir_buffer>(settings);
  }
  throw std::invalid_argument("training buffer: unknown policy");
}

std::unique_ptr<training_buffer> restore_training_buffer(const buffer_snapshot& snapshot) {
  const auto& settings = snapshot.settings;
  if (snapshot.samples.size() > settings.capacity)
    throw std::invalid_argument("buffer snapshot: " + std::to_string(snapshot.samples.size()) +
                                " samples for a capacity of " + std::to_string(settings.capacity));
  if (snapshot.unseen > snapshot.samples.size())
    throw std::invalid_argument("buffer snapshot: more unseen samples than samples");
  if (settings.policy != buffer_policy::reservoir && snapshot.unseen != snapshot.samples.size())
    throw std::invalid_argument("buffer snapshot: FIFO and FIRO hold only unseen samples");
  for (const auto& s : snapshot.samples)
    if (!s.sample.target || s.sample.input.size() != snapshot.input_dim ||
        s.sample.target->size() != snapshot.output_dim)
      throw std::invalid_argument("buffer snapshot: a sample's row lengths differ from " +
                                  std::to_string(snapshot.input_dim) + " inputs and " +
                                  std::to_string(snapshot.output_dim) + " targets");
  auto buffer = make_training_buffer(settings);
  std::istringstream rng(snapshot.rng_state);
  rng >> buffer->rng_;
  if (!rng) throw std::invalid_argument("buffer snapshot: unreadable random generator state");
  buffer->production_over_ = snapshot.production_over;
  buffer->evictions_ = snapshot.evictions;
  buffer->input_dim_ = snapshot.input_dim;
  buffer->output_dim_ = snapshot.output_dim;
  buffer->inserts_ = snapshot.inserts;
  buffer->batches_ = snapshot.batches;
  buffer->samples_drawn_ = snapshot.samples_drawn;
  buffer->retired_histogram_ = snapshot.retired_histogram;
  buffer->restore_slots(snapshot);
  return buffer;
}

}  // namespace melissa
