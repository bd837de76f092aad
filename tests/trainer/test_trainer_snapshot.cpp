// trainer_core::snapshot(): an in-memory copy that the checkpoint keeper
// writes from its own thread while the trainer goes on. What it writes must
// be what load() needs to resume exactly where the snapshot was taken.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "actors/trainer/trainer_core.hpp"
#include "tests/lib/temp_dir.hpp"
#include "trainer_test_data.hpp"

using melissa::trainer_core;
using melissa::testing::make_batch;
using melissa::testing::small_settings;

TEST_CASE("a snapshot is unaffected by later steps and resumes exactly at its batch") {
  auto settings = small_settings();
  settings.optimizer = {1e-3, 2, 1e-5};  // the schedule halves: its position must survive
  trainer_core original(settings);
  for (std::uint32_t k = 0; k < 3; ++k) {
    auto batch = make_batch(6, 4, 300, k, 5.0, 2.0);
    original.step(&batch);
  }
  const auto at_snapshot = original.weights_checksum();
  const double rate_at_snapshot = original.learning_rate();
  auto snapshot = original.snapshot();
  CHECK(snapshot.batches() == 3);
  CHECK(snapshot.bytes() >= 3 * original.parameter_count() * sizeof(float));

  // The trainer goes on while the snapshot waits to be written.
  std::vector<double> later_losses;
  for (std::uint32_t k = 3; k < 6; ++k) {
    auto batch = make_batch(6, 4, 300, k, 5.0, 2.0);
    later_losses.push_back(original.step(&batch).loss);
  }
  REQUIRE(original.weights_checksum() != at_snapshot);

  melissa::testing::temp_dir dir("trainer-snapshot");
  auto files = snapshot.write(dir.path);
  CHECK(files == std::vector<std::string>{"tensors.bin", "tensors.json"});
  // Raw arrays: the data file is exactly the tensors' bytes.
  CHECK(std::filesystem::file_size(std::filesystem::path(dir.path) / "tensors.bin") == snapshot.bytes());

  settings.seed = 99;  // other initial weights: load must replace them all
  trainer_core resumed(settings);
  resumed.load(dir.path);
  CHECK(resumed.weights_checksum() == at_snapshot);
  CHECK(resumed.batches() == 3);
  CHECK(resumed.learning_rate() == rate_at_snapshot);
  for (std::uint32_t k = 3; k < 6; ++k) {
    auto batch = make_batch(6, 4, 300, k, 5.0, 2.0);
    CHECK(resumed.step(&batch).loss == later_losses[k - 3]);
  }
  CHECK(resumed.weights_checksum() == original.weights_checksum());
  CHECK(resumed.learning_rate() == original.learning_rate());
  CHECK(resumed.output_mean() == original.output_mean());
  CHECK(resumed.output_std() == original.output_std());
}

TEST_CASE("an empty snapshot refuses to write") {
  melissa::trainer_snapshot empty;
  CHECK(empty.empty());
  CHECK(empty.batches() == 0);
  CHECK_THROWS_AS(empty.write("/nonexistent"), std::logic_error);
}

namespace {

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_all(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

std::string load_error(const std::string& dir) {
  auto settings = small_settings();
  trainer_core core(settings);
  try {
    core.load(dir);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "loaded";
}

}  // namespace

TEST_CASE("the raw checkpoint format restores weights and Adam's state bit for bit") {
  auto settings = small_settings();
  trainer_core original(settings);
  for (std::uint32_t k = 0; k < 4; ++k) {
    auto batch = make_batch(6, 4, 300, k, 5.0, 2.0);
    original.step(&batch);
  }
  melissa::testing::temp_dir raw("trainer-raw"), pickled("trainer-pickled");
  original.snapshot().write(raw.path);
  original.save(pickled.path);  // the final model's format, still read by load()
  // The index lists every array once, in data order, with its type and shape.
  const auto index = read_all(std::filesystem::path(raw.path) / "tensors.json");
  CHECK(index.find("\"format\": \"melissa-trainer-tensors\"") != std::string::npos);
  for (const char* name : {"model/0.weight", "model/output_mean", "trainer/exp_avg",
                           "trainer/exp_avg_sq", "trainer/batches", "trainer/stat_m2"})
    CHECK_MESSAGE(index.find(std::string("\"") + name + "\"") != std::string::npos, name);
  CHECK(index.find("\"float32\"") != std::string::npos);
  CHECK(index.find("\"int64\"") != std::string::npos);

  settings.seed = 1234;
  trainer_core from_raw(settings), from_pickle(settings);
  from_raw.load(raw.path);
  from_pickle.load(pickled.path);
  for (auto* core : {&from_raw, &from_pickle}) {
    CHECK(core->weights_checksum() == original.weights_checksum());
    CHECK(core->batches() == original.batches());
    CHECK(core->output_mean() == original.output_mean());
    CHECK(core->output_std() == original.output_std());
  }
  // Adam's moments: the next steps match bit for bit only if they were restored exactly.
  for (std::uint32_t k = 4; k < 8; ++k) {
    auto batch = make_batch(6, 4, 300, k, 5.0, 2.0);
    const double expected = original.step(&batch).loss;
    CHECK(from_raw.step(&batch).loss == expected);
    CHECK(from_pickle.step(&batch).loss == expected);
  }
  CHECK(from_raw.weights_checksum() == original.weights_checksum());
  CHECK(from_pickle.weights_checksum() == original.weights_checksum());
}

TEST_CASE("a raw checkpoint that does not fit is refused, naming the file and the tensor") {
  auto settings = small_settings();
  trainer_core original(settings);
  melissa::testing::temp_dir dir("trainer-raw-bad");
  const std::filesystem::path root(dir.path);
  original.snapshot().write(dir.path);
  const auto index = read_all(root / "tensors.json");
  const auto data = read_all(root / "tensors.bin");

  write_all(root / "tensors.bin", data.substr(0, data.size() - 4));  // truncated
  CHECK(load_error(dir.path).find("tensors.bin has " + std::to_string(data.size() - 4) + " bytes") !=
        std::string::npos);
  write_all(root / "tensors.bin", data);

  std::string other = index;
  other.replace(other.find("\"float32\""), 9, "\"complex\"");
  write_all(root / "tensors.json", other);
  const auto why = load_error(dir.path);
  CHECK(why.find("tensors.json: tensor 'model/") != std::string::npos);
  CHECK(why.find("unknown dtype \"complex\"") != std::string::npos);

  other = index;
  other.replace(other.find("\"version\": 1"), 12, "\"version\": 7");
  write_all(root / "tensors.json", other);
  CHECK(load_error(dir.path).find("version 7, this build reads 1") != std::string::npos);

  std::filesystem::remove(root / "tensors.json");
  CHECK(load_error(dir.path).find("holds neither tensors.json") != std::string::npos);
}
