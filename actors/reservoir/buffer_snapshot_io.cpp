#include "actors/reservoir/buffer_snapshot_io.hpp"

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

namespace melissa {
namespace {

constexpr char magic[16] = {'M', 'E', 'L', 'I', 'S', 'S', 'A', '-', 'B', 'U', 'F', 'F', 'E', 'R', 0, 0};
constexpr std::uint32_t format_version = 2;  // 2: pending stores
constexpr char end_marker[4] = {'E', 'N', 'D', '!'};
// A sane bound on the random state's text (mt19937_64: ~6 KB).
constexpr std::uint64_t max_rng_state = 1 << 20;

template <class T>
void put(const byte_sink& sink, T value) {
  sink(&value, sizeof value);
}

template <class T>
T get(const byte_source& source) {
  T value;
  source(&value, sizeof value);
  return value;
}

[[noreturn]] void bad(const std::string& why) {
  throw std::runtime_error("training buffer checkpoint: " + why);
}

}  // namespace

void write_buffer_snapshot(const buffer_snapshot& s, const byte_sink& sink) {
  sink(magic, sizeof magic);
  put<std::uint32_t>(sink, format_version);
  put<std::uint8_t>(sink, static_cast<std::uint8_t>(s.settings.policy));
  put<std::uint64_t>(sink, s.settings.capacity);
  put<std::uint64_t>(sink, s.settings.threshold);
  put<std::uint64_t>(sink, s.settings.seed);
  put<std::uint8_t>(sink, s.production_over ? 1 : 0);
  put<std::uint32_t>(sink, s.input_dim);
  put<std::uint32_t>(sink, s.output_dim);
  put<std::uint64_t>(sink, s.inserts);
  put<std::uint64_t>(sink, s.evictions);
  put<std::uint64_t>(sink, s.batches);
  put<std::uint64_t>(sink, s.samples_drawn);
  put<std::uint64_t>(sink, s.unseen);
  put<std::uint64_t>(sink, s.retired_histogram.size());
  if (!s.retired_histogram.empty())
    sink(s.retired_histogram.data(), s.retired_histogram.size() * sizeof(std::uint64_t));
  put<std::uint64_t>(sink, s.rng_state.size());
  sink(s.rng_state.data(), s.rng_state.size());
  put<std::uint64_t>(sink, s.samples.size());
  for (const auto& stored : s.samples) {
    const auto& sample = stored.sample;
    if (sample.input.size() != s.input_dim || !sample.target || sample.target->size() != s.output_dim)
      throw std::invalid_argument("training buffer checkpoint: a sample's row lengths differ");
    std::uint32_t head[3] = {sample.sim_id, sample.time_step, stored.times_drawn};
    sink(head, sizeof head);
    sink(sample.input.data(), sample.input.size() * sizeof(float));
    sink(sample.target->data(), sample.target->size() * sizeof(float));
  }
  put<std::uint64_t>(sink, s.pending.size());
  for (const auto& sample : s.pending) {
    if (sample.input.size() != s.input_dim || !sample.target || sample.target->size() != s.output_dim)
      throw std::invalid_argument("training buffer checkpoint: a pending sample's row lengths differ");
    std::uint32_t head[2] = {sample.sim_id, sample.time_step};
    sink(head, sizeof head);
    sink(sample.input.data(), sample.input.size() * sizeof(float));
    sink(sample.target->data(), sample.target->size() * sizeof(float));
  }
  sink(end_marker, sizeof end_marker);
  put<std::uint64_t>(sink, s.samples.size());
}

buffer_snapshot read_buffer_snapshot(const byte_source& source) {
  char header[sizeof magic];
  source(header, sizeof header);
  if (std::memcmp(header, magic, sizeof magic) != 0) bad("not a training buffer file");
  const auto version = get<std::uint32_t>(source);
  if (version != format_version)
    bad("format version " + std::to_string(version) + ", this build reads version " +
        std::to_string(format_version));
  buffer_snapshot s;
  const auto policy = get<std::uint8_t>(source);
  if (policy > static_cast<std::uint8_t>(buffer_policy::reservoir))
    bad("unknown policy " + std::to_string(policy));
  s.settings.policy = static_cast<buffer_policy>(policy);
  s.settings.capacity = get<std::uint64_t>(source);
  s.settings.threshold = get<std::uint64_t>(source);
  s.settings.seed = get<std::uint64_t>(source);
  s.production_over = get<std::uint8_t>(source) != 0;
  s.input_dim = get<std::uint32_t>(source);
  s.output_dim = get<std::uint32_t>(source);
  s.inserts = get<std::uint64_t>(source);
  s.evictions = get<std::uint64_t>(source);
  s.batches = get<std::uint64_t>(source);
  s.samples_drawn = get<std::uint64_t>(source);
  s.unseen = get<std::uint64_t>(source);
  const auto histogram = get<std::uint64_t>(source);
  // A draw count never exceeds the draws made.
  if (histogram > s.samples_drawn + 1) bad("histogram of " + std::to_string(histogram) + " bins");
  s.retired_histogram.resize(histogram);
  if (histogram) source(s.retired_histogram.data(), histogram * sizeof(std::uint64_t));
  const auto rng_bytes = get<std::uint64_t>(source);
  if (rng_bytes > max_rng_state) bad("random state of " + std::to_string(rng_bytes) + " bytes");
  s.rng_state.resize(rng_bytes);
  source(s.rng_state.data(), rng_bytes);
  const auto count = get<std::uint64_t>(source);
  if (count > s.settings.capacity)
    bad(std::to_string(count) + " samples for a capacity of " + std::to_string(s.settings.capacity));
  if (s.unseen > count) bad("more unseen samples than samples");
  s.samples.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint32_t head[3];
    source(head, sizeof head);
    buffer_snapshot::stored_sample stored;
    stored.sample.sim_id = head[0];
    stored.sample.time_step = head[1];
    stored.times_drawn = head[2];
    stored.sample.input.resize(s.input_dim);
    source(stored.sample.input.data(), s.input_dim * sizeof(float));
    auto target = std::make_shared<std::vector<float>>(s.output_dim);
    source(target->data(), s.output_dim * sizeof(float));
    stored.sample.target = std::move(target);
    s.samples.push_back(std::move(stored));
  }
  // Pending stores wait for room: fewer than the producers could send, and
  // never more than a buffer's worth is a sane bound here.
  const auto pending = get<std::uint64_t>(source);
  if (pending > s.settings.capacity + (std::uint64_t{1} << 20))
    bad(std::to_string(pending) + " pending stores");
  s.pending.reserve(pending);
  for (std::uint64_t i = 0; i < pending; ++i) {
    std::uint32_t head[2];
    source(head, sizeof head);
    training_sample sample;
    sample.sim_id = head[0];
    sample.time_step = head[1];
    sample.input.resize(s.input_dim);
    source(sample.input.data(), s.input_dim * sizeof(float));
    auto target = std::make_shared<std::vector<float>>(s.output_dim);
    source(target->data(), s.output_dim * sizeof(float));
    sample.target = std::move(target);
    s.pending.push_back(std::move(sample));
  }
  char end[sizeof end_marker];
  source(end, sizeof end);
  if (std::memcmp(end, end_marker, sizeof end) != 0 || get<std::uint64_t>(source) != count)
    bad("no end marker after " + std::to_string(count) + " samples");
  return s;
}

std::uint64_t buffer_snapshot_bytes(const buffer_snapshot& s) {
  std::uint64_t bytes = 0;
  write_buffer_snapshot(s, [&](const void*, std::size_t n) { bytes += n; });
  return bytes;
}

}  // namespace melissa
