// Training buffer checkpoints: snapshot -> bytes -> restore gives a buffer
// with the same samples, seen states, draw counts and counters, whose batches
// from then on are exactly those the uninterrupted buffer draws (the random
// generator's state is part of the snapshot).
#include <doctest/doctest.h>

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/reservoir/buffer_snapshot_io.hpp"
#include "actors/reservoir/training_buffer.hpp"

using namespace melissa;

namespace {

constexpr std::size_t output_dim = 5;

training_sample make_sample(std::uint32_t sim, std::uint32_t step) {
  training_sample s;
  s.sim_id = sim;
  s.time_step = step;
  s.input = {static_cast<float>(sim) * 0.5f, static_cast<float>(step) * 0.25f, 1.0f};
  std::vector<float> target(output_dim);
  for (std::size_t j = 0; j < output_dim; ++j) target[j] = sim * 100.0f + step + 0.125f * j;
  s.target = std::make_shared<const std::vector<float>>(std::move(target));
  return s;
}

// Puts samples first..last (sim = i / 10, step = i % 10) whenever the buffer
// takes one, drawing a batch whenever it gives one; returns the batches.
std::vector<training_batch> feed(training_buffer& b, std::uint32_t first, std::uint32_t last) {
  std::vector<training_batch> batches;
  for (std::uint32_t i = first; i < last;) {
    if (b.can_put()) {
      b.put(make_sample(i / 10, i % 10));
      ++i;
    }
    if (b.can_draw(4)) batches.push_back(b.draw(4));
  }
  return batches;
}

std::vector<training_batch> drain(training_buffer& b) {
  std::vector<training_batch> batches;
  b.end_production();
  while (!b.exhausted()) batches.push_back(b.draw(4));
  batches.push_back(b.draw(4));  // the `last` marker
  return batches;
}

void check_same_batches(const std::vector<training_batch>& a, const std::vector<training_batch>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    CAPTURE(k);
    CHECK(a[k].size == b[k].size);
    CHECK(a[k].last == b[k].last);
    CHECK(a[k].sim_ids == b[k].sim_ids);
    CHECK(a[k].time_steps == b[k].time_steps);
    CHECK(a[k].inputs == b[k].inputs);
    CHECK(a[k].targets == b[k].targets);
  }
}

void check_same_state(const training_buffer& a, const training_buffer& b) {
  const auto sa = a.stats(), sb = b.stats();
  CHECK(sa.policy == sb.policy);
  CHECK(sa.capacity == sb.capacity);
  CHECK(sa.threshold == sb.threshold);
  CHECK(sa.population == sb.population);
  CHECK(sa.unseen == sb.unseen);
  CHECK(sa.inserts == sb.inserts);
  CHECK(sa.evictions == sb.evictions);
  CHECK(sa.batches == sb.batches);
  CHECK(sa.samples_drawn == sb.samples_drawn);
  CHECK(sa.production_over == sb.production_over);
  CHECK(a.repetition_histogram() == b.repetition_histogram());
  CHECK(a.input_dim() == b.input_dim());
  CHECK(a.output_dim() == b.output_dim());
  const auto xa = a.snapshot(), xb = b.snapshot();
  CHECK(xa.unseen == xb.unseen);
  CHECK(xa.rng_state == xb.rng_state);
  REQUIRE(xa.samples.size() == xb.samples.size());
  for (std::size_t i = 0; i < xa.samples.size(); ++i) {
    CAPTURE(i);
    CHECK(xa.samples[i].sample.sim_id == xb.samples[i].sample.sim_id);
    CHECK(xa.samples[i].sample.time_step == xb.samples[i].sample.time_step);
    CHECK(xa.samples[i].times_drawn == xb.samples[i].times_drawn);
    CHECK(xa.samples[i].sample.input == xb.samples[i].sample.input);
    CHECK(*xa.samples[i].sample.target == *xb.samples[i].sample.target);
  }
}

std::string to_bytes(const buffer_snapshot& s) {
  std::string bytes;
  write_buffer_snapshot(s, [&](const void* data, std::size_t n) {
    bytes.append(static_cast<const char*>(data), n);
  });
  return bytes;
}

buffer_snapshot from_bytes(const std::string& bytes) {
  std::size_t at = 0;
  return read_buffer_snapshot([&](void* data, std::size_t n) {
    if (bytes.size() - at < n) throw std::runtime_error("end of input");
    std::memcpy(data, bytes.data() + at, n);
    at += n;
  });
}

}  // namespace

TEST_CASE("snapshot, bytes and restore: same state, then the same batches as uninterrupted") {
  for (auto policy : {buffer_policy::fifo, buffer_policy::firo, buffer_policy::reservoir}) {
    CAPTURE(to_string(policy));
    auto uninterrupted = make_training_buffer({policy, 16, 8, 42});
    feed(*uninterrupted, 0, 70);
    if (policy == buffer_policy::reservoir) {
      // The interesting state: evictions happened, seen and unseen mixed.
      REQUIRE(uninterrupted->stats().evictions > 0);
      REQUIRE(uninterrupted->unseen() > 0);
      REQUIRE(uninterrupted->unseen() < uninterrupted->population());
    }
    REQUIRE(uninterrupted->population() > 0);

    const std::string bytes = to_bytes(uninterrupted->snapshot());
    CHECK(bytes.size() == buffer_snapshot_bytes(uninterrupted->snapshot()));
    auto restored = restore_training_buffer(from_bytes(bytes));
    check_same_state(*uninterrupted, *restored);

    // From here both get the same calls: every batch must be the same.
    auto expected = feed(*uninterrupted, 70, 130);
    auto got = feed(*restored, 70, 130);
    REQUIRE(!expected.empty());
    check_same_batches(expected, got);
    check_same_batches(drain(*uninterrupted), drain(*restored));
    check_same_state(*uninterrupted, *restored);
    CHECK(restored->stats().inserts == 130);
  }
}

TEST_CASE("the random state decides the draws: restored with another one, the batches differ") {
  auto original = make_training_buffer({buffer_policy::reservoir, 16, 8, 42});
  feed(*original, 0, 40);
  auto snapshot = original->snapshot();
  auto same = restore_training_buffer(snapshot);
  snapshot.rng_state = make_training_buffer({buffer_policy::reservoir, 16, 8, 43})->snapshot().rng_state;
  auto other = restore_training_buffer(snapshot);
  auto from_same = feed(*same, 40, 80);
  auto from_other = feed(*other, 40, 80);
  check_same_batches(feed(*original, 40, 80), from_same);
  bool differs = from_same.size() != from_other.size();
  for (std::size_t k = 0; k < from_same.size() && !differs; ++k)
    differs = from_same[k].sim_ids != from_other[k].sim_ids ||
              from_same[k].time_steps != from_other[k].time_steps;
  CHECK(differs);
}

TEST_CASE("corrupt or inconsistent buffer files are refused with the reason") {
  auto buffer = make_training_buffer({buffer_policy::reservoir, 16, 8, 42});
  feed(*buffer, 0, 30);
  const std::string bytes = to_bytes(buffer->snapshot());

  std::string other_magic = bytes;
  other_magic[0] = 'X';
  CHECK_THROWS_WITH_AS(from_bytes(other_magic), "training buffer checkpoint: not a training buffer file",
                       std::runtime_error);

  CHECK_THROWS_WITH_AS(from_bytes(bytes.substr(0, bytes.size() - 20)), "end of input",
                       std::runtime_error);

  std::string no_end = bytes;
  no_end[no_end.size() - 9] = '?';  // inside "END!"
  CHECK_THROWS_WITH_AS(from_bytes(no_end),
                       "training buffer checkpoint: no end marker after 16 samples",
                       std::runtime_error);

  auto too_many = buffer->snapshot();
  too_many.settings.capacity = 4;
  CHECK_THROWS_WITH_AS(from_bytes(to_bytes(too_many)),
                       "training buffer checkpoint: 16 samples for a capacity of 4",
                       std::runtime_error);
  CHECK_THROWS_AS(restore_training_buffer(too_many), std::invalid_argument);

  auto bad_rng = buffer->snapshot();
  bad_rng.rng_state = "not a state";
  CHECK_THROWS_WITH_AS(restore_training_buffer(bad_rng),
                       "buffer snapshot: unreadable random generator state", std::invalid_argument);

  auto fifo_seen = make_training_buffer({buffer_policy::fifo, 16, 8, 42})->snapshot();
  fifo_seen.samples = buffer->snapshot().samples;
  fifo_seen.input_dim = 3;
  fifo_seen.output_dim = output_dim;
  fifo_seen.unseen = 0;
  CHECK_THROWS_WITH_AS(restore_training_buffer(fifo_seen),
                       "buffer snapshot: FIFO and FIRO hold only unseen samples",
                       std::invalid_argument);
}

TEST_CASE("the snapshot shares the targets instead of copying them") {
  auto buffer = make_training_buffer({buffer_policy::fifo, 8, 1, 1});
  auto sample = make_sample(1, 2);
  const auto* target = sample.target.get();
  buffer->put(std::move(sample));
  auto snapshot = buffer->snapshot();
  REQUIRE(snapshot.samples.size() == 1);
  CHECK(snapshot.samples[0].sample.target.get() == target);
}

TEST_CASE("stores pending while the buffer was full round-trip in arrival order") {
  auto buffer = make_training_buffer({buffer_policy::fifo, 4, 1, 42});
  for (std::uint32_t t = 0; t < 4; ++t) buffer->put(make_sample(6, t));
  REQUIRE_FALSE(buffer->can_put());
  auto snap = buffer->snapshot();
  CHECK(snap.pending.empty());  // the buffer itself holds none: its owner adds them
  snap.pending = {make_sample(7, 3), make_sample(7, 4)};
  const auto back = from_bytes(to_bytes(snap));
  REQUIRE(back.pending.size() == 2);
  CHECK(back.pending[0].sim_id == 7);
  CHECK(back.pending[0].time_step == 3);
  CHECK(back.pending[1].time_step == 4);
  CHECK(back.pending[1].input == snap.pending[1].input);
  CHECK(*back.pending[1].target == *snap.pending[1].target);
  CHECK(back.samples.size() == 4);
  auto wrong = snap;
  wrong.pending[0].input.push_back(1.0f);
  CHECK_THROWS_WITH_AS(to_bytes(wrong),
                       "training buffer checkpoint: a pending sample's row lengths differ",
                       std::invalid_argument);
}
