// A rank's part end to end: trainer + buffer + received steps snapshotted,
// written by the writer thread while "training" goes on, chosen back as the
// newest valid checkpoint and restored: the restored rank trains and draws
// exactly as the uninterrupted one, and resent steps count once.
#include <doctest/doctest.h>

#include <filesystem>

#include "actors/checkpoint_keeper/rank_parts.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa;
using namespace melissa::checkpoint;

namespace {

constexpr std::uint32_t input_dim = 4;
constexpr std::uint32_t output_dim = 30;

training_sample sample(std::uint32_t sim, std::uint32_t step) {
  training_sample s;
  s.sim_id = sim;
  s.time_step = step;
  s.input = {0.1f * sim, 0.2f, 0.3f, 0.01f * step};
  std::vector<float> target(output_dim);
  for (std::uint32_t j = 0; j < output_dim; ++j) target[j] = 5.0f + 0.1f * sim - 0.05f * step + 0.01f * j;
  s.target = std::make_shared<const std::vector<float>>(std::move(target));
  return s;
}

trainer_settings settings() {
  trainer_settings t;
  t.model = {input_dim, {16, 16}, "tanh", output_dim};
  t.seed = 3;
  t.threads = 1;
  return t;
}

// One "server rank": steps arrive (aggregator + buffer), batches are trained.
struct rank_model {
  std::unique_ptr<training_buffer> buffer =
      make_training_buffer({buffer_policy::reservoir, 12, 4, 77});
  step_log received;
  trainer_core trainer{settings()};
  std::vector<double> losses;

  void run(std::uint32_t first_sim, std::uint32_t last_sim) {
    for (std::uint32_t sim = first_sim; sim < last_sim; ++sim)
      for (std::uint32_t step = 0; step < 6;) {
        if (buffer->can_put()) {
          if (received.insert(sim, 0, step)) buffer->put(sample(sim, step));
          ++step;
        }
        if (buffer->can_draw(4)) {
          auto batch = buffer->draw(4);
          losses.push_back(trainer.step(&batch).loss);
        }
      }
  }
};

}  // namespace

TEST_CASE("a rank restored from its part goes on exactly as the uninterrupted rank") {
  melissa::testing::temp_dir dir("ckpt-rank");
  rank_model original;
  original.run(0, 5);
  REQUIRE(original.trainer.batches() > 0);

  write_result written;
  {
    checkpoint_writer writer(dir / "ck", 2, [&](const write_result& r) { written = r; });
    rank_snapshot snapshot;
    snapshot.rank = 1;
    snapshot.trainer = original.trainer.snapshot();
    snapshot.buffer = original.buffer->snapshot();
    snapshot.received = original.received;
    checkpoint_job job;
    job.header.study = "rank";
    job.header.batch = original.trainer.batches();
    job.parts = rank_parts(std::move(snapshot));
    REQUIRE(writer.submit(std::move(job)));
    // Training goes on while the checkpoint is written.
    original.run(5, 9);
    writer.wait_idle();
  }
  REQUIRE(written.ok);
  CHECK(written.error == "");

  const auto chosen = checkpoint_directory(dir / "ck").newest_valid();
  REQUIRE(chosen.checkpoint);
  CHECK(chosen.contents.files.size() == 4);  // 2 trainer files, buffer, received steps
  auto part = read_rank_part(chosen.checkpoint->path, 1);
  REQUIRE(part.buffer);
  REQUIRE(!part.trainer_dir.empty());

  rank_model restored;
  restored.trainer.load(part.trainer_dir);
  restored.buffer = std::move(part.buffer);
  restored.received = std::move(part.received);
  const std::size_t before = restored.losses.size();
  CHECK(before == 0);
  // A client of simulation 4 restarts and resends every step: those already
  // received count once (dropped), then simulations 5..8 arrive as before.
  const auto stored_before = restored.received.total_stored();
  for (std::uint32_t step = 0; step < 6; ++step) CHECK_FALSE(restored.received.insert(4, 0, step));
  CHECK(restored.received.total_stored() == stored_before);
  restored.run(5, 9);

  const std::size_t after_cut = original.losses.size() - restored.losses.size();
  REQUIRE(restored.losses.size() > 0);
  for (std::size_t k = 0; k < restored.losses.size(); ++k) {
    CAPTURE(k);
    CHECK(restored.losses[k] == original.losses[after_cut + k]);
  }
  CHECK(restored.trainer.weights_checksum() == original.trainer.weights_checksum());
  CHECK(restored.buffer->stats().inserts == original.buffer->stats().inserts);
  CHECK(restored.received.total_stored() == original.received.total_stored());
  CHECK(restored.received.total_stored() == 9 * 6);
}

TEST_CASE("without a trainer or a buffer only the received steps are written") {
  melissa::testing::temp_dir dir("ckpt-rank");
  rank_snapshot snapshot;
  snapshot.rank = 0;
  snapshot.received.insert(2, 0, 5);
  const auto parts = rank_parts(std::move(snapshot));
  CHECK(parts.size() == 1);
  checkpoint_directory d(dir.path);
  auto s = d.begin();
  for (const auto& p : parts) p(s);
  const auto path = d.commit(std::move(s), manifest{});
  auto part = read_rank_part(path, 0);
  CHECK(part.trainer_dir.empty());
  CHECK_FALSE(part.buffer);
  CHECK(part.received.contains(2, 0, 5));
  CHECK_THROWS_WITH(read_rank_part(path, 3), (path + "/rank-3/received_steps.json cannot be read").c_str());
}
