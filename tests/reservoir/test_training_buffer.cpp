// The three training buffer policies (FIFO, FIRO, Reservoir) driven directly:
// their invariants, the producer's blocking, the watermark, the end of
// production, determinism, and the uniformity of Reservoir batches.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include "actors/reservoir/training_buffer.hpp"

using namespace melissa;

namespace {

constexpr std::size_t input_dim = 2;
constexpr std::size_t output_dim = 3;

// A sample whose values say where it came from: input (sim, step), target
// sim * 1000 + step + {0, 0.25, 0.5}, so that a batch row can be checked.
training_sample make_sample(std::uint32_t sim, std::uint32_t step) {
  training_sample s;
  s.sim_id = sim;
  s.time_step = step;
  s.input = {static_cast<float>(sim), static_cast<float>(step)};
  std::vector<float> target(output_dim);
  for (std::size_t j = 0; j < output_dim; ++j) target[j] = sim * 1000.0f + step + 0.25f * j;
  s.target = std::make_shared<const std::vector<float>>(std::move(target));
  return s;
}

std::unique_ptr<training_buffer> make(buffer_policy policy, std::size_t capacity,
                                      std::size_t threshold, std::uint64_t seed = 7) {
  return make_training_buffer({policy, capacity, threshold, seed});
}

using sample_key = std::pair<std::uint32_t, std::uint32_t>;  // (sim, step)

// The keys of a batch's rows, after checking every row's values match its key.
std::vector<sample_key> rows_of(const training_batch& b) {
  REQUIRE(b.input_dim == input_dim);
  REQUIRE(b.output_dim == output_dim);
  REQUIRE(b.inputs.size() == b.size * input_dim);
  REQUIRE(b.targets.size() == b.size * output_dim);
  REQUIRE(b.sim_ids.size() == b.size);
  REQUIRE(b.time_steps.size() == b.size);
  std::vector<sample_key> keys;
  for (std::uint32_t r = 0; r < b.size; ++r) {
    const auto sim = b.sim_ids[r], step = b.time_steps[r];
    CHECK(b.inputs[r * input_dim] == static_cast<float>(sim));
    CHECK(b.inputs[r * input_dim + 1] == static_cast<float>(step));
    for (std::size_t j = 0; j < output_dim; ++j)
      CHECK(b.targets[r * output_dim + j] == sim * 1000.0f + step + 0.25f * j);
    keys.emplace_back(sim, step);
  }
  return keys;
}

std::uint64_t sum(const std::vector<std::uint64_t>& v) {
  std::uint64_t s = 0;
  for (auto x : v) s += x;
  return s;
}

}  // namespace

TEST_CASE("settings: bad capacity, policy names, dimension checks, misuse") {
  CHECK_THROWS_AS(make(buffer_policy::reservoir, 0, 0), std::invalid_argument);
  CHECK(parse_buffer_policy("fifo") == buffer_policy::fifo);
  CHECK(parse_buffer_policy("firo") == buffer_policy::firo);
  CHECK(parse_buffer_policy("reservoir") == buffer_policy::reservoir);
  CHECK_THROWS_AS(parse_buffer_policy("lifo"), std::invalid_argument);

  for (auto policy : {buffer_policy::fifo, buffer_policy::firo, buffer_policy::reservoir}) {
    CAPTURE(to_string(policy));
    auto buf = make(policy, 2, 0);
    CHECK_THROWS_AS(buf->draw(1), std::logic_error);  // nothing to draw, production running
    CHECK_THROWS_AS(buf->draw(0), std::invalid_argument);
    CHECK_FALSE(buf->can_draw(0));
    buf->put(make_sample(0, 0));
    auto wrong = make_sample(0, 1);
    wrong.input.push_back(1.0f);
    CHECK_THROWS_AS(buf->put(std::move(wrong)), std::invalid_argument);
    auto no_target = make_sample(0, 1);
    no_target.target.reset();
    CHECK_THROWS_AS(buf->put(std::move(no_target)), std::invalid_argument);
    buf->put(make_sample(0, 1));
    CHECK_FALSE(buf->can_put());
    CHECK_THROWS_AS(buf->put(make_sample(0, 2)), std::logic_error);
    CHECK(buf->stats().inserts == 2);
    CHECK(buf->input_dim() == input_dim);
    CHECK(buf->output_dim() == output_dim);
  }
}

TEST_CASE("FIFO: arrival order, each sample once, producer blocked when full") {
  auto buf = make(buffer_policy::fifo, 8, 5);  // FIFO ignores the threshold
  for (std::uint32_t i = 0; i < 8; ++i) {
    REQUIRE(buf->can_put());
    buf->put(make_sample(1, i));
    // A batch of 3 as soon as 3 are stored.
    CHECK(buf->can_draw(3) == (i + 1 >= 3));
  }
  CHECK_FALSE(buf->can_put());  // full: the producer waits
  CHECK(buf->population() == 8);
  CHECK(buf->unseen() == 8);

  auto b = buf->draw(3);
  CHECK(b.size == 3);
  CHECK_FALSE(b.last);
  CHECK(rows_of(b) == std::vector<sample_key>{{1, 0}, {1, 1}, {1, 2}});
  CHECK(buf->can_put());  // the draw made room
  buf->put(make_sample(2, 0));
  buf->put(make_sample(2, 1));
  buf->put(make_sample(2, 2));
  CHECK_FALSE(buf->can_put());

  CHECK(rows_of(buf->draw(4)) == std::vector<sample_key>{{1, 3}, {1, 4}, {1, 5}, {1, 6}});
  CHECK(rows_of(buf->draw(4)) == std::vector<sample_key>{{1, 7}, {2, 0}, {2, 1}, {2, 2}});
  CHECK(buf->population() == 0);
  CHECK_FALSE(buf->can_draw(1));
  CHECK_FALSE(buf->exhausted());  // production still running

  buf->put(make_sample(3, 0));
  buf->put(make_sample(3, 1));
  CHECK_FALSE(buf->can_draw(4));
  buf->end_production();
  CHECK(buf->can_draw(4));  // partial last batch
  auto tail = buf->draw(4);
  CHECK(tail.size == 2);
  CHECK(rows_of(tail) == std::vector<sample_key>{{3, 0}, {3, 1}});
  CHECK(buf->exhausted());
  CHECK_FALSE(buf->can_draw(1));
  auto end = buf->draw(4);
  CHECK(end.last);
  CHECK(end.size == 0);

  const auto st = buf->stats();
  CHECK(st.policy == "fifo");
  CHECK(st.inserts == 13);
  CHECK(st.batches == 4);  // the `last` marker is not a batch
  CHECK(st.samples_drawn == 13);
  CHECK(st.evictions == 0);
  CHECK(buf->repetition_histogram() == std::vector<std::uint64_t>{0, 13});
}

TEST_CASE("FIFO: a batch larger than the capacity is served when full") {
  auto buf = make(buffer_policy::fifo, 4, 0);
  for (std::uint32_t i = 0; i < 3; ++i) buf->put(make_sample(0, i));
  CHECK_FALSE(buf->can_draw(10));
  buf->put(make_sample(0, 3));
  REQUIRE(buf->can_draw(10));  // otherwise producer and consumer would wait on each other
  CHECK(buf->draw(10).size == 4);
}

TEST_CASE("FIRO: watermark, random order, each sample exactly once") {
  const std::size_t capacity = 50, threshold = 20, batch = 7;
  auto buf = make(buffer_policy::firo, capacity, threshold, 11);
  std::mt19937 ops(3);  // the test's own interleaving of puts and draws
  std::map<sample_key, int> drawn;
  std::vector<sample_key> order;
  std::uint32_t next = 0;
  const std::uint32_t total = 600;
  while (next < total) {
    if (ops() % 2 == 0 && buf->can_put()) {
      buf->put(make_sample(next / 100, next % 100));
      ++next;
    } else if (buf->can_draw(batch)) {
      const auto before = buf->population();
      CHECK(before >= threshold);  // no batch under the watermark
      auto b = buf->draw(batch);
      CHECK(b.size == batch);
      CHECK(buf->population() == before - batch);
      for (auto k : rows_of(b)) {
        ++drawn[k];
        order.push_back(k);
      }
    } else {
      // Neither: only possible below the watermark with room to put.
      CHECK(buf->population() < threshold);
      CHECK(buf->can_put());
    }
    CHECK(buf->population() <= capacity);
  }
  buf->end_production();  // threshold lifted
  while (!buf->exhausted()) {
    auto b = buf->draw(batch);
    for (auto k : rows_of(b)) {
      ++drawn[k];
      order.push_back(k);
    }
  }
  CHECK(buf->draw(batch).last);
  REQUIRE(drawn.size() == total);
  for (const auto& [k, n] : drawn) CHECK(n == 1);
  // Random positions: the order differs from arrival order.
  CHECK_FALSE(std::is_sorted(order.begin(), order.end()));
  CHECK(buf->repetition_histogram() == std::vector<std::uint64_t>{0, total});
  CHECK(buf->stats().samples_drawn == total);
}

TEST_CASE("FIRO: blocking, threshold lifted at the end, partial last batch") {
  auto buf = make(buffer_policy::firo, 10, 5);
  for (std::uint32_t i = 0; i < 4; ++i) buf->put(make_sample(0, i));
  CHECK_FALSE(buf->can_draw(2));  // 4 < threshold 5
  buf->put(make_sample(0, 4));
  CHECK(buf->can_draw(2));
  CHECK_FALSE(buf->can_draw(6));  // not enough for a full batch while producing
  for (std::uint32_t i = 5; i < 10; ++i) buf->put(make_sample(0, i));
  CHECK_FALSE(buf->can_put());
  CHECK(buf->can_draw(20));  // full buffer: a (capacity-sized) batch, never a deadlock
  CHECK(buf->draw(4).size == 4);
  CHECK(buf->can_put());
  CHECK(buf->population() == 6);
  CHECK(buf->draw(1).size == 1);
  CHECK(buf->population() == 5);
  CHECK(buf->can_draw(1));  // 5 stored: at the watermark
  CHECK(buf->draw(1).size == 1);
  CHECK_FALSE(buf->can_draw(1));  // 4: below it
}

TEST_CASE("FIRO: below the watermark nothing is drawn until production ends") {
  auto buf = make(buffer_policy::firo, 10, 5);
  for (std::uint32_t i = 0; i < 3; ++i) buf->put(make_sample(0, i));
  CHECK_FALSE(buf->can_draw(2));
  buf->end_production();
  CHECK(buf->can_draw(2));
  CHECK(buf->draw(2).size == 2);
  CHECK(buf->draw(2).size == 1);
  CHECK(buf->exhausted());
  CHECK(buf->draw(2).last);
}

TEST_CASE("Reservoir: producer blocked only when full of unseen samples; seen ones evicted") {
  auto buf = make(buffer_policy::reservoir, 4, 0);
  for (std::uint32_t i = 0; i < 4; ++i) buf->put(make_sample(0, i));
  CHECK_FALSE(buf->can_put());  // 4 unseen: nothing may be discarded
  CHECK(buf->unseen() == 4);

  auto b = buf->draw(1);
  REQUIRE(b.size == 1);
  const auto seen = rows_of(b)[0];
  CHECK(buf->unseen() == 3);
  CHECK(buf->can_put());  // one seen sample may make room

  buf->put(make_sample(1, 0));
  CHECK(buf->population() == 4);
  CHECK(buf->unseen() == 4);
  CHECK(buf->stats().evictions == 1);
  CHECK_FALSE(buf->can_put());

  // The evicted sample is the only seen one: drain and look.
  buf->end_production();
  std::set<sample_key> left;
  while (!buf->exhausted())
    for (auto k : rows_of(buf->draw(3))) CHECK(left.insert(k).second);  // no repeat when draining
  CHECK(left.size() == 4);
  CHECK(left.count(seen) == 0);
  CHECK(left.count({1, 0}) == 1);
  // 5 samples: the evicted one drawn once, the four others drawn once while draining.
  CHECK(buf->repetition_histogram() == std::vector<std::uint64_t>{0, 5});
}

TEST_CASE("Reservoir: capacity never exceeded, no unseen sample ever discarded") {
  const std::size_t capacity = 32, threshold = 8, batch = 5;
  auto buf = make(buffer_policy::reservoir, capacity, threshold, 2024);
  std::mt19937 ops(5);
  std::map<sample_key, std::uint64_t> times_drawn;  // tallied from the batches
  std::uint32_t next = 0;
  const std::uint32_t total = 2000;
  std::uint64_t producer_blocked = 0;
  while (next < total) {
    // Production much faster than consumption, so that the producer does get
    // blocked, and then only by a buffer full of unseen samples.
    const bool want_put = ops() % 8 != 0;
    if (want_put && !buf->can_put()) {
      ++producer_blocked;
      CHECK(buf->unseen() == capacity);
    }
    if (want_put && buf->can_put()) {
      buf->put(make_sample(next / 50, next % 50));
      times_drawn[{next / 50, next % 50}];
      ++next;
    } else if (buf->can_draw(batch)) {
      CHECK(buf->population() >= threshold);
      auto b = buf->draw(batch);
      CHECK(b.size == batch);  // with replacement: always a full batch
      for (auto k : rows_of(b)) ++times_drawn.at(k);
    } else {
      CHECK(buf->population() < threshold);
    }
    const auto st = buf->stats();
    REQUIRE(st.population <= capacity);
    CHECK(st.inserts - st.population == st.evictions);
    // Samples never drawn are exactly the unseen ones still stored: an
    // evicted sample had been drawn at least once.
    CHECK(buf->repetition_histogram()[0] == st.unseen);
  }
  CHECK(buf->stats().evictions > 0);
  CHECK(producer_blocked > 0);

  buf->end_production();
  const auto left = buf->population();
  std::size_t drained = 0;
  while (!buf->exhausted()) {
    auto b = buf->draw(batch);
    drained += b.size;
    for (auto k : rows_of(b)) ++times_drawn.at(k);
  }
  CHECK(drained == left);
  // Every sample ever put was used at least once: none was discarded unseen.
  std::vector<std::uint64_t> expected;
  for (const auto& [k, n] : times_drawn) {
    CHECK(n >= 1);
    if (expected.size() <= n) expected.resize(n + 1, 0);
    ++expected[n];
  }
  CHECK(times_drawn.size() == total);
  CHECK(buf->repetition_histogram() == expected);
  CHECK(sum(buf->repetition_histogram()) == total);
}

TEST_CASE("Reservoir: no batch before the watermark; lifted when production ends") {
  auto buf = make(buffer_policy::reservoir, 100, 10);
  for (std::uint32_t i = 0; i < 9; ++i) buf->put(make_sample(0, i));
  CHECK_FALSE(buf->can_draw(4));
  buf->put(make_sample(0, 9));
  CHECK(buf->can_draw(4));
  CHECK(buf->can_draw(50));  // with replacement: larger than the population is fine
  CHECK(buf->draw(50).size == 50);

  auto small = make(buffer_policy::reservoir, 100, 10);
  for (std::uint32_t i = 0; i < 3; ++i) small->put(make_sample(0, i));
  CHECK_FALSE(small->can_draw(2));
  small->end_production();
  REQUIRE(small->can_draw(2));
  CHECK(small->draw(2).size == 2);
  CHECK(small->draw(2).size == 1);  // partial: drained
  CHECK(small->exhausted());
  CHECK(small->draw(2).last);

  // A threshold above the capacity is clamped: a full buffer can be drawn from.
  auto clamped = make(buffer_policy::reservoir, 4, 1000);
  for (std::uint32_t i = 0; i < 4; ++i) clamped->put(make_sample(0, i));
  CHECK(clamped->can_draw(10));
}

TEST_CASE("Reservoir: after production ends every drawn sample leaves; it empties") {
  auto buf = make(buffer_policy::reservoir, 100, 20, 99);
  for (std::uint32_t i = 0; i < 100; ++i) buf->put(make_sample(i / 10, i % 10));
  for (int i = 0; i < 30; ++i) CHECK(buf->draw(10).size == 10);  // repeats allowed
  CHECK(buf->population() == 100);
  const auto unseen_before = buf->unseen();
  CHECK(unseen_before < 100);
  CHECK(unseen_before > 0);

  buf->end_production();
  std::set<sample_key> drained;
  int batches = 0;
  while (!buf->exhausted()) {
    auto b = buf->draw(30);
    ++batches;
    CHECK(b.size == (batches < 4 ? 30u : 10u));
    for (auto k : rows_of(b)) CHECK(drained.insert(k).second);
    CHECK(buf->unseen() <= buf->population());
  }
  CHECK(batches == 4);
  CHECK(drained.size() == 100);
  CHECK(buf->population() == 0);
  CHECK(buf->unseen() == 0);
  CHECK(buf->draw(30).last);
  const auto st = buf->stats();
  CHECK(st.samples_drawn == 400);
  CHECK(st.batches == 34);
  CHECK(st.production_over);
  CHECK(sum(buf->repetition_histogram()) == 100);
  CHECK(buf->repetition_histogram()[0] == 0);
}

TEST_CASE("Reservoir: batch selection is uniform over the stored samples (chi-square)") {
  // 200 stored samples (so no eviction), 20000 draws: each is expected 100 times.
  const std::size_t n = 200, batch = 10, batches = 2000;
  auto buf = make(buffer_policy::reservoir, n, n, 123456789);
  for (std::uint32_t i = 0; i < n; ++i) buf->put(make_sample(i, 0));
  std::vector<std::uint64_t> counts(n, 0);
  for (std::size_t b = 0; b < batches; ++b) {
    auto drawn = buf->draw(batch);
    REQUIRE(drawn.size == batch);
    for (auto sim : drawn.sim_ids) ++counts.at(sim);
  }
  const double expected = static_cast<double>(batch * batches) / n;
  double chi2 = 0;
  for (auto c : counts) chi2 += (c - expected) * (c - expected) / expected;
  // 99.9% quantile of chi-square with n - 1 degrees of freedom, Wilson-Hilferty:
  // k (1 - 2/(9k) + z sqrt(2/(9k)))^3 with z = 3.090232 (standard normal 99.9%).
  const double k = n - 1;
  const double z = 3.090232;
  const double critical = k * std::pow(1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k)), 3);
  MESSAGE("chi2 = " << chi2 << ", 99.9% critical value = " << critical);
  CHECK(critical == doctest::Approx(266.39).epsilon(0.001));  // exact: 266.386 for 199 dof
  CHECK(chi2 < critical);
  // Every sample was selected, so every one is now seen.
  CHECK(buf->unseen() == 0);
  CHECK(buf->repetition_histogram()[0] == 0);
}

TEST_CASE("same seed and arrival order give the same batches; another seed does not") {
  for (auto policy : {buffer_policy::fifo, buffer_policy::firo, buffer_policy::reservoir}) {
    CAPTURE(to_string(policy));
    auto run = [policy](std::uint64_t seed) {
      auto buf = make(policy, 40, 10, seed);
      std::vector<std::uint32_t> sequence;
      std::uint32_t next = 0;
      for (int round = 0; round < 60; ++round) {
        for (int i = 0; i < 5 && buf->can_put(); ++i, ++next) buf->put(make_sample(next / 10, next % 10));
        if (buf->can_draw(4))
          for (auto k : rows_of(buf->draw(4))) sequence.push_back(k.first * 10 + k.second);
      }
      buf->end_production();
      while (!buf->exhausted())
        for (auto k : rows_of(buf->draw(4))) sequence.push_back(k.first * 10 + k.second);
      return sequence;
    };
    const auto a = run(42), b = run(42), c = run(43);
    CHECK(a.size() > 100);
    CHECK(a == b);
    if (policy == buffer_policy::fifo)
      CHECK(a == c);  // no randomness in a queue
    else
      CHECK(a != c);
  }
}

TEST_CASE("seeded index mapping is platform independent: fixed first draws") {
  // Pinned so that a change of generator or mapping (e.g. to a library
  // distribution) is noticed: these values follow from mt19937_64(1).
  auto buf = make(buffer_policy::reservoir, 1000, 0, 1);
  for (std::uint32_t i = 0; i < 1000; ++i) buf->put(make_sample(i, 0));
  auto b = buf->draw(20);
  // The reference: the slots' permutation as the Reservoir keeps it (a drawn
  // unseen sample swaps with the last unseen one) and the index mapping,
  // high 64 bits of x * n (its rejection step is vanishingly rare for n = 1000).
  std::vector<std::uint32_t> slots(1000);
  for (std::uint32_t i = 0; i < 1000; ++i) slots[i] = i;
  std::size_t unseen = 1000;
  std::mt19937_64 reference(1);
  for (std::uint32_t r = 0; r < 20; ++r) {
    const auto i = static_cast<std::size_t>((static_cast<unsigned __int128>(reference()) * 1000) >> 64);
    CHECK(b.sim_ids[r] == slots[i]);
    if (i < unseen) std::swap(slots[i], slots[--unseen]);
  }
}
