// dataset_reader and shuffling_loader on small datasets written here with the
// project's npy writer (and one with the server's dataset_writer).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "actors/dataset_sink/dataset_writer.hpp"
#include "actors/trainer/dataset/dataset_reader.hpp"
#include "actors/trainer/dataset/shuffling_loader.hpp"
#include "messages/npy.hpp"
#include "tests/lib/temp_dir.hpp"

using melissa::testing::temp_dir;

namespace fs = std::filesystem;
using melissa::dataset_reader;
using melissa::sample_encoder;
using melissa::shuffling_loader;
using melissa::shuffling_options;
using melissa::training_batch;
using melissa::training_batch_ptr;

namespace {

constexpr std::size_t field_size = 6;

// A value that tells where it came from.
float value_at(std::uint32_t sim, std::uint32_t step, std::size_t j) {
  return static_cast<float>(sim * 1000 + step * 10) + 0.5f * static_cast<float>(j);
}

std::vector<double> params_of(std::uint32_t sim) { return {0.1 * sim, 10.0 + sim}; }

sample_encoder encoder() {
  sample_encoder e;
  e.lo = {0, 10};
  e.hi = {1, 20};
  e.time_scale = 5;
  return e;
}

std::string sim_dir(const std::string& dir, std::uint32_t sim) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "/sim_%06u", sim);
  return dir + buf;
}

void write_sim(const std::string& dir, std::uint32_t sim, std::uint32_t steps,
               std::size_t size = field_size, std::vector<double> params = {}) {
  const auto d = sim_dir(dir, sim);
  fs::create_directories(d);
  std::vector<float> rows(steps * size);
  for (std::uint32_t t = 0; t < steps; ++t)
    for (std::size_t j = 0; j < size; ++j) rows[t * size + j] = value_at(sim, t, j);
  melissa::npy::save(d + "/temperature.npy", rows.data(), {steps, size});
  if (params.empty()) params = params_of(sim);
  melissa::npy::save(d + "/parameters.npy", params.data(), {params.size()});
}

// Simulations 0, 2 and 7 with 4, 3 and 5 steps: 12 samples.
void write_dataset(const std::string& dir) {
  write_sim(dir, 0, 4);
  write_sim(dir, 2, 3);
  write_sim(dir, 7, 5);
  fs::create_directories(dir + "/notes");     // not a simulation folder
  fs::create_directories(dir + "/sim_abc");   // nor this
  fs::create_directories(dir + "/sim_000009");  // another field only
  std::ofstream(dir + "/sim_000009/pressure.npy") << "x";
}

// Every batch of one epoch (until next() says nullptr).
std::vector<training_batch_ptr> one_epoch(shuffling_loader& loader) {
  std::vector<training_batch_ptr> batches;
  while (auto b = loader.next()) batches.push_back(b);
  return batches;
}

void check_same(const training_batch& a, const training_batch& b) {
  CHECK(a.size == b.size);
  CHECK(a.sim_ids == b.sim_ids);
  CHECK(a.time_steps == b.time_steps);
  CHECK(a.inputs == b.inputs);
  CHECK(a.targets == b.targets);
}

std::string error_of(const std::string& dir, const std::vector<std::uint32_t>& sims = {},
                     sample_encoder e = encoder()) {
  try {
    dataset_reader r(dir, "temperature", e, sims);
  } catch (const std::runtime_error& err) {
    return err.what();
  }
  return "no error";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("reader: samples of every simulation folder, in id then step order") {
  temp_dir tmp;
  write_dataset(tmp.path);
  CHECK(dataset_reader::list_simulations(tmp.path, "temperature") ==
        std::vector<std::uint32_t>{0, 2, 7});
  dataset_reader r(tmp.path, "temperature", encoder());
  CHECK(r.size() == 12);
  CHECK(r.simulation_count() == 3);
  CHECK(r.max_time_steps() == 5);
  CHECK(r.input_dim() == 3);
  CHECK(r.output_dim() == field_size);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> got;
  for (const auto& s : r.samples()) got.emplace_back(s.sim_id, s.time_step);
  CHECK(got == std::vector<std::pair<std::uint32_t, std::uint32_t>>{
                   {0, 0}, {0, 1}, {0, 2}, {0, 3}, {2, 0}, {2, 1}, {2, 2},
                   {7, 0}, {7, 1}, {7, 2}, {7, 3}, {7, 4}});
}

TEST_CASE("reader: a batch holds encoded inputs and the rows of the files") {
  temp_dir tmp;
  write_dataset(tmp.path);
  dataset_reader r(tmp.path, "temperature", encoder());
  const auto b = r.batch({5, 0, 11});  // (2, 1), (0, 0), (7, 4)
  REQUIRE(b->size == 3);
  CHECK(b->input_dim == 3);
  CHECK(b->output_dim == field_size);
  CHECK_FALSE(b->last);
  CHECK(b->sim_ids == std::vector<std::uint32_t>{2, 0, 7});
  CHECK(b->time_steps == std::vector<std::uint32_t>{1, 0, 4});
  // Sim 2: params (0.2, 12) in [0,1]x[10,20] -> (0.2, 0.2); step 1 / 5 = 0.2.
  CHECK(b->inputs[0] == doctest::Approx(0.2f));
  CHECK(b->inputs[1] == doctest::Approx(0.2f));
  CHECK(b->inputs[2] == doctest::Approx(0.2f));
  // Sim 7 step 4: (0.7, 0.7, 0.8).
  CHECK(b->inputs[6] == doctest::Approx(0.7f));
  CHECK(b->inputs[7] == doctest::Approx(0.7f));
  CHECK(b->inputs[8] == doctest::Approx(0.8f));
  for (std::size_t k = 0; k < 3; ++k) {
    float expected[3];
    const auto p = params_of(b->sim_ids[k]);
    encoder().encode(p.data(), b->time_steps[k], expected);
    for (int i = 0; i < 3; ++i) CHECK(b->inputs[k * 3 + i] == expected[i]);  // the one encoder, bit for bit
    for (std::size_t j = 0; j < field_size; ++j)
      CHECK(b->targets[k * field_size + j] == value_at(b->sim_ids[k], b->time_steps[k], j));
  }
  CHECK_THROWS_AS(r.batch({12}), std::out_of_range);
}

TEST_CASE("reader: the whole set as one batch, and a subset of simulations") {
  temp_dir tmp;
  write_dataset(tmp.path);
  const auto all = melissa::load_dataset(tmp.path, "temperature", encoder());
  REQUIRE(all->size == 12);
  CHECK(all->targets.size() == 12 * field_size);
  CHECK(all->sim_ids.back() == 7);
  CHECK(all->targets.back() == value_at(7, 4, field_size - 1));

  const auto validation = melissa::load_dataset(tmp.path, "temperature", encoder(), {7, 2});
  CHECK(validation->size == 8);
  CHECK(validation->sim_ids == std::vector<std::uint32_t>{2, 2, 2, 7, 7, 7, 7, 7});
}

TEST_CASE("reader: a dataset written by the server's dataset sink") {
  temp_dir tmp;
  {
    melissa::dataset_writer w(tmp.path, {"temperature"}, {params_of(0), params_of(1)});
    for (std::uint32_t sim : {1u, 0u})
      for (std::uint32_t step : {2u, 0u, 1u}) {  // steps arrive in any order
        std::vector<float> row(field_size);
        for (std::size_t j = 0; j < field_size; ++j) row[j] = value_at(sim, step, j);
        w.write_step(sim, 0, step, row.data(), field_size);
      }
    w.finish(0);
    w.finish(1);
  }
  dataset_reader r(tmp.path, "temperature", encoder());
  REQUIRE(r.size() == 6);
  const auto b = r.all();
  for (std::uint32_t k = 0; k < 6; ++k) {
    CHECK(b->sim_ids[k] == k / 3);
    CHECK(b->time_steps[k] == k % 3);
    CHECK(b->targets[k * field_size + 5] == value_at(k / 3, k % 3, 5));
  }
}

TEST_CASE("reader: errors name the file and what is wrong") {
  temp_dir tmp;
  const auto& dir = tmp.path;

  CHECK(contains(error_of(dir + "/nowhere"), dir + "/nowhere: no such dataset directory"));
  CHECK(contains(error_of(dir), "no simulation folder (sim_NNNNNN) holds temperature.npy"));

  write_dataset(dir);
  CHECK(error_of(dir) == "no error");

  SUBCASE("a simulation asked for that is not there") {
    CHECK(contains(error_of(dir, {0, 3}), dir + "/sim_000003/temperature.npy: no such file"));
  }
  SUBCASE("missing parameters") {
    fs::remove(sim_dir(dir, 2) + "/parameters.npy");
    CHECK(contains(error_of(dir), dir + "/sim_000002/parameters.npy: no such file"));
  }
  SUBCASE("truncated field file") {
    const auto path = sim_dir(dir, 7) + "/temperature.npy";
    fs::resize_file(path, fs::file_size(path) - 10);
    const auto e = error_of(dir);
    CHECK(contains(e, path + ": truncated"));
    CHECK(contains(e, "shape (5, 6)"));
  }
  SUBCASE("truncated header") {
    const auto path = sim_dir(dir, 0) + "/temperature.npy";
    fs::resize_file(path, 20);
    CHECK(contains(error_of(dir), path));
  }
  SUBCASE("not a .npy file") {
    const auto path = sim_dir(dir, 0) + "/temperature.npy";
    std::ofstream(path) << "hello, I am text";
    CHECK(error_of(dir) == path + ": not a .npy file");
  }
  SUBCASE("float64 field") {
    const auto path = sim_dir(dir, 2) + "/temperature.npy";
    std::vector<double> rows(3 * field_size);
    melissa::npy::save(path, rows.data(), {3, field_size});
    CHECK(error_of(dir) == path + ": dtype <f8, expected <f4 (float32)");
  }
  SUBCASE("one-dimensional field") {
    const auto path = sim_dir(dir, 2) + "/temperature.npy";
    std::vector<float> rows(field_size);
    melissa::npy::save(path, rows.data(), {field_size});
    CHECK(error_of(dir) == path + ": shape (6,), expected (time steps, field size)");
  }
  SUBCASE("field size differs between simulations") {
    write_sim(dir, 2, 3, 4);
    CHECK(error_of(dir) == sim_dir(dir, 2) + "/temperature.npy: field size 4, but " +
                               sim_dir(dir, 0) + "/temperature.npy has 6");
  }
  SUBCASE("parameter count differs from the encoder's") {
    write_sim(dir, 7, 5, field_size, {0.5, 15, 3});
    CHECK(error_of(dir) == sim_dir(dir, 7) +
                               "/parameters.npy: 3 parameters, expected 2 (the sample encoder's bounds)");
  }
  SUBCASE("float32 parameters") {
    const auto path = sim_dir(dir, 0) + "/parameters.npy";
    const float p[2] = {0, 10};
    melissa::npy::save(path, p, {2});
    CHECK(contains(error_of(dir), path + ": dtype <f4, expected <f8"));
  }
  SUBCASE("encoder without a time scale") {
    auto e = encoder();
    e.time_scale = 0;
    CHECK_THROWS_AS(dataset_reader(dir, "temperature", e), std::invalid_argument);
  }
}

TEST_CASE("epoch_order is a seeded permutation") {
  const auto a = melissa::epoch_order(1000, 42, 0);
  std::vector<std::size_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) REQUIRE(sorted[i] == i);
  CHECK(melissa::epoch_order(1000, 42, 0) == a);
  CHECK(melissa::epoch_order(1000, 43, 0) != a);
  CHECK(melissa::epoch_order(1000, 42, 1) != a);
  CHECK(melissa::epoch_order(0, 1, 0).empty());
  CHECK(melissa::epoch_order(1, 1, 0) == std::vector<std::size_t>{0});
}

TEST_CASE("loader: every sample exactly once per epoch, nullptr at the end of each") {
  temp_dir tmp;
  write_dataset(tmp.path);
  auto reader = std::make_shared<const dataset_reader>(tmp.path, "temperature", encoder());
  for (unsigned workers : {0u, 1u, 3u}) {
    CAPTURE(workers);
    shuffling_options o;
    o.batch_size = 5;
    o.workers = workers;
    o.seed = 7;
    shuffling_loader loader(reader, o);
    CHECK(loader.batches_per_epoch() == 3);
    for (std::uint64_t epoch = 0; epoch < 4; ++epoch) {
      CHECK(loader.epoch() == epoch);
      const auto batches = one_epoch(loader);
      REQUIRE(batches.size() == 3);
      CHECK(batches[0]->size == 5);
      CHECK(batches[1]->size == 5);
      CHECK(batches[2]->size == 2);  // 12 = 5 + 5 + 2
      std::multiset<std::pair<std::uint32_t, std::uint32_t>> seen;
      for (const auto& b : batches) {
        for (std::uint32_t k = 0; k < b->size; ++k) {
          seen.emplace(b->sim_ids[k], b->time_steps[k]);
          CHECK(b->targets[k * field_size + 1] == value_at(b->sim_ids[k], b->time_steps[k], 1));
        }
      }
      std::multiset<std::pair<std::uint32_t, std::uint32_t>> all;
      for (const auto& s : reader->samples()) all.emplace(s.sim_id, s.time_step);
      CHECK(seen == all);
    }
  }
}

TEST_CASE("loader: batch k holds the same samples for a seed, whatever the thread count") {
  temp_dir tmp;
  write_dataset(tmp.path);
  auto reader = std::make_shared<const dataset_reader>(tmp.path, "temperature", encoder());
  auto run = [&](unsigned workers, std::uint64_t seed, std::size_t prefetch = 4) {
    shuffling_options o;
    o.batch_size = 4;
    o.workers = workers;
    o.seed = seed;
    o.prefetch = prefetch;
    shuffling_loader loader(reader, o);
    std::vector<std::vector<training_batch_ptr>> epochs;
    for (int e = 0; e < 3; ++e) epochs.push_back(one_epoch(loader));
    return epochs;
  };
  const auto reference = run(0, 11);
  // Batch k of epoch e is order[4k, 4k+4) of epoch_order(seed, e).
  for (std::uint64_t e = 0; e < 3; ++e) {
    const auto order = melissa::epoch_order(reader->size(), 11, e);
    for (std::size_t k = 0; k < 3; ++k)
      for (std::size_t i = 0; i < 4; ++i) {
        const auto& s = reader->samples()[order[4 * k + i]];
        CHECK(reference[e][k]->sim_ids[i] == s.sim_id);
        CHECK(reference[e][k]->time_steps[i] == s.time_step);
      }
  }
  for (auto [workers, prefetch] : {std::pair<unsigned, std::size_t>{1, 4}, {2, 1}, {4, 4}, {3, 16}}) {
    CAPTURE(workers);
    const auto other = run(workers, 11, prefetch);
    for (std::size_t e = 0; e < 3; ++e)
      for (std::size_t k = 0; k < 3; ++k) check_same(*reference[e][k], *other[e][k]);
  }
  // Epochs differ from each other, and another seed gives another order.
  CHECK(reference[0][0]->sim_ids != reference[1][0]->sim_ids);
  const auto reseeded = run(2, 12);
  bool differs = false;
  for (std::size_t k = 0; k < 3; ++k)
    differs = differs || reseeded[0][k]->time_steps != reference[0][k]->time_steps ||
              reseeded[0][k]->sim_ids != reference[0][k]->sim_ids;
  CHECK(differs);
}

TEST_CASE("loader: drop_last, first_epoch, a batch larger than the set") {
  temp_dir tmp;
  write_dataset(tmp.path);
  auto reader = std::make_shared<const dataset_reader>(tmp.path, "temperature", encoder());
  shuffling_options o;
  o.batch_size = 5;
  o.drop_last = true;
  {
    shuffling_loader loader(reader, o);
    CHECK(loader.batches_per_epoch() == 2);
    CHECK(one_epoch(loader).size() == 2);
  }
  SUBCASE("resuming at epoch 2 gives what a run from 0 gives in its epoch 2") {
    o.drop_last = false;
    o.workers = 2;
    shuffling_loader from_start(reader, o);
    one_epoch(from_start);
    one_epoch(from_start);
    const auto expected = one_epoch(from_start);
    o.first_epoch = 2;
    shuffling_loader resumed(reader, o);
    CHECK(resumed.epoch() == 2);
    const auto got = one_epoch(resumed);
    REQUIRE(got.size() == expected.size());
    for (std::size_t k = 0; k < got.size(); ++k) check_same(*got[k], *expected[k]);
    CHECK(resumed.epoch() == 3);
  }
  SUBCASE("one batch of everything") {
    o.batch_size = 100;
    o.drop_last = false;
    shuffling_loader loader(reader, o);
    const auto batches = one_epoch(loader);
    REQUIRE(batches.size() == 1);
    CHECK(batches[0]->size == 12);
  }
  SUBCASE("drop_last with fewer samples than a batch is refused") {
    o.batch_size = 13;
    CHECK_THROWS_AS(shuffling_loader(reader, o), std::invalid_argument);
  }
}

TEST_CASE("loader: destroyed in the middle of an epoch with workers waiting") {
  temp_dir tmp;
  write_dataset(tmp.path);
  auto reader = std::make_shared<const dataset_reader>(tmp.path, "temperature", encoder());
  shuffling_options o;
  o.batch_size = 1;
  o.workers = 4;
  o.prefetch = 2;
  for (int i = 0; i < 20; ++i) {
    shuffling_loader loader(reader, o);
    CHECK(loader.next() != nullptr);
  }
}
