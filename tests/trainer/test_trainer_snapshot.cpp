// trainer_core::snapshot(): an in-memory copy that the checkpoint keeper
// writes from its own thread while the trainer goes on. What it writes must
// be what load() needs to resume exactly where the snapshot was taken.
#include <doctest/doctest.h>

#include <filesystem>
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
  CHECK(files == std::vector<std::string>{"model_state.pt", "trainer_state.pt"});

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
