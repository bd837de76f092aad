// rank_checkpoints (what a running rank does about [checkpoint]) and
// buffer_handoff, without CAF: the schedule's checkpoints, the end one, keep,
// the figures, and the buffer's part cut at the "next batch request".
#include <doctest/doctest.h>

#include <filesystem>
#include <future>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"
#include "actors/checkpoint_keeper/checkpoint_manifest.hpp"
#include "actors/checkpoint_keeper/rank_checkpoints.hpp"
#include "actors/checkpoint_keeper/rank_parts.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa;
using namespace melissa::checkpoint;

namespace {

training_sample sample(std::uint32_t sim, std::uint32_t step) {
  training_sample s;
  s.sim_id = sim;
  s.time_step = step;
  s.input = {0.1f * sim, 0.01f * step};
  s.target = std::make_shared<const std::vector<float>>(std::vector<float>{1.0f * sim, 2.0f * step});
  return s;
}

std::unique_ptr<training_buffer> fifo_with(std::uint32_t n) {
  auto b = make_training_buffer({buffer_policy::fifo, 100, 1, 7});
  for (std::uint32_t i = 0; i < n; ++i) b->put(sample(1, i));
  return b;
}

rank_snapshot no_trainer() { return rank_snapshot{}; }

}  // namespace

TEST_CASE("buffer_handoff: only an armed request takes the buffer's snapshot, once") {
  auto buffer = fifo_with(3);
  buffer_handoff handoff;
  handoff.offer(*buffer);  // not armed: nothing happens
  auto future = handoff.request();
  CHECK(future.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  handoff.offer(*buffer);
  buffer->put(sample(2, 0));  // after the cut: not in the snapshot
  handoff.offer(*buffer);     // disarmed: the first offer's snapshot stays
  REQUIRE(future.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  const auto snap = future.get();
  CHECK(snap.samples.size() == 3);
  CHECK(snap.inserts == 3);
}

TEST_CASE("rank_checkpoints: every_batches, the end of training, keep, figures, buffer part") {
  melissa::testing::temp_dir dir("melissa-rank-checkpoints");
  rank_checkpoint_settings s;
  s.dir = dir / "ckpt";
  s.keep = 2;
  s.every_batches = 3;
  s.every_seconds = 0;
  s.study = "unit";
  std::filesystem::create_directories(s.dir);
  auto buffer = fifo_with(5);
  std::uint64_t taken = 0;
  {
    rank_checkpoints keeper(s, 0.0);
    for (std::uint64_t batch = 1; batch <= 7; ++batch) {
      const bool took = keeper.at_step_boundary(batch, double(batch), false, no_trainer);
      if (took) {
        ++taken;
        // The trainer's next batch request reaches the buffer: it hands over.
        keeper.handoff()->offer(*buffer);
        keeper.wait_idle();
      }
      CHECK(took == (batch % 3 == 0));
    }
    // The end at batch 7: one more (no buffer part); again at 7: nothing new.
    CHECK(keeper.at_step_boundary(7, 7.5, true, no_trainer));
    CHECK_FALSE(keeper.at_step_boundary(7, 7.6, true, no_trainer));
    const auto f = keeper.figures();
    CHECK(f["taken"] == 3);
    CHECK(f["written"] == 3);
    CHECK(f["failed"] == 0);
    CHECK(f["last_batch"] == 7);
    CHECK(f["pause_seconds"]["max"].get<double>() >= 0.0);
  }
  CHECK(taken == 2);
  checkpoint_directory d(s.dir);
  const auto listed = d.list();
  REQUIRE(listed.size() == 2);  // keep = 2 of the 3
  const auto periodic = verify_checkpoint(listed[1].path);  // newest first
  const auto end = verify_checkpoint(listed[0].path);
  REQUIRE(periodic.valid);
  REQUIRE(end.valid);
  CHECK(periodic.contents.batch == 6);
  CHECK(periodic.contents.reason == "every_batches");
  CHECK(end.contents.batch == 7);
  CHECK(end.contents.reason == "end_of_training");
  auto has = [](const manifest& m, const std::string& p) {
    for (const auto& f : m.files)
      if (f.path == p) return true;
    return false;
  };
  CHECK(has(periodic.contents, "rank-0/buffer.bin"));
  CHECK_FALSE(has(end.contents, "rank-0/buffer.bin"));
  // The buffer's part reads back as the buffer at the cut.
  const auto restored = read_rank_part(listed[1].path, 0);
  REQUIRE(restored.buffer);
  CHECK(restored.buffer->stats().inserts == 5);
}
