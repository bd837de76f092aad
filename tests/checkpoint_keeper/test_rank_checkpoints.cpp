// rank_checkpoints (what a running rank does about [checkpoint]) and
// buffer_handoff, without CAF: the schedule's checkpoints, the end one, keep,
// the figures, and the buffer's part cut at the "next batch request".
#include <doctest/doctest.h>

#include <filesystem>
#include <future>
#include <set>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"
#include "actors/checkpoint_keeper/checkpoint_manifest.hpp"
#include "actors/checkpoint_keeper/rank_checkpoints.hpp"
#include "actors/checkpoint_keeper/rank_parts.hpp"
#include "actors/checkpoint_keeper/server_restore.hpp"
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

// What the buffer actor offers: its snapshot (with `pending` stores waiting
// for room) and the steps it has received.
void offer(buffer_handoff& h, const training_buffer& buffer, const step_log& received,
           std::vector<training_sample> pending = {}, bool production_over = false) {
  h.offer(
      [&] {
        auto snap = buffer.snapshot();
        snap.pending = pending;
        return snap;
      },
      received, production_over);
}

step_log received_of(std::uint32_t sim, std::uint32_t steps, bool done = false) {
  step_log log;
  for (std::uint32_t t = 0; t < steps; ++t) log.insert(sim, 0, t);
  log.note_attempt(sim, 1);
  if (done) log.mark_done(sim);
  return log;
}

}  // namespace

TEST_CASE("buffer_handoff: only an armed request takes the buffer's cut, once") {
  auto buffer = fifo_with(3);
  auto received = received_of(1, 3);
  buffer_handoff handoff;
  offer(handoff, *buffer, received);  // not armed: nothing happens
  auto future = handoff.request();
  CHECK(future.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  offer(handoff, *buffer, received, {sample(1, 3)});  // one store waits for room
  buffer->put(sample(2, 0));  // after the cut: not in the snapshot
  received.insert(2, 0, 0);
  offer(handoff, *buffer, received);  // disarmed: the first offer's cut stays
  REQUIRE(future.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  const auto cut = future.get();
  REQUIRE(cut.buffer);
  CHECK(cut.buffer->samples.size() == 3);
  CHECK(cut.buffer->inserts == 3);
  REQUIRE(cut.buffer->pending.size() == 1);
  CHECK(cut.buffer->pending[0].time_step == 3);
  CHECK(cut.received.total_stored() == 3);
  CHECK_FALSE(cut.received.contains(2, 0, 0));
  CHECK_FALSE(handoff.final_received());
  offer(handoff, *buffer, received, {}, true);  // production over: the final log is kept
  REQUIRE(handoff.final_received());
  CHECK(handoff.final_received()->total_stored() == 4);
}

TEST_CASE("buffer_handoff: with buffer = false only the received steps are cut") {
  auto buffer = fifo_with(2);
  buffer_handoff handoff(false);
  auto future = handoff.request();
  offer(handoff, *buffer, received_of(1, 2));
  const auto cut = future.get();
  CHECK_FALSE(cut.buffer);
  CHECK(cut.received.total_stored() == 2);
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
  const auto received = received_of(1, 5, true);
  // Rank 0's table as the coordinator published it: sim 1 complete (done in
  // the cut: kept), sim 2 complete too (not in the cut: written submitted).
  s.table = [] {
    simulation_table_snapshot t;
    t.parameters = {{0.0}, {1.0}, {2.0}};
    t.states = {sim_state::pending, sim_state::complete, sim_state::complete};
    t.changes = {0, 0, 0};
    return std::optional<simulation_table_snapshot>(t);
  };
  std::uint64_t taken = 0;
  {
    rank_checkpoints keeper(s, 0.0);
    for (std::uint64_t batch = 1; batch <= 7; ++batch) {
      const bool took = keeper.at_step_boundary(batch, double(batch), false, no_trainer);
      if (took) {
        ++taken;
        // The trainer's next batch request reaches the buffer: it hands over.
        offer(*keeper.handoff(), *buffer, received, {sample(1, 5)});
        keeper.wait_idle();
      }
      CHECK(took == (batch % 3 == 0));
    }
    // The end at batch 7: one more (no buffer part, the final received
    // steps); again at 7: nothing new.
    offer(*keeper.handoff(), *buffer, received, {}, true);
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
  REQUIRE(restored.pending.size() == 1);  // the store that waited for room
  CHECK(restored.pending[0].time_step == 5);
  CHECK(restored.received.total_stored() == 5);
  CHECK(restored.received.simulations().at(1).done);
  CHECK(has(periodic.contents, "study/simulation_table.json"));
  const auto at_end = read_rank_part(listed[0].path, 0);
  CHECK(at_end.received.total_stored() == 5);  // the final received steps
  const auto r = read_server_restore(listed[1].path, 0, 1);
  CHECK(r.complete == std::vector<std::uint32_t>{1});
  REQUIRE(r.table);
  CHECK(r.table->states[2] == sim_state::submitted);
}

TEST_CASE("rank_checkpoints: an on-demand checkpoint is taken when none is due, and reported") {
  melissa::testing::temp_dir dir("melissa-rank-checkpoints");
  rank_checkpoint_settings s;
  s.dir = dir / "ckpt";
  s.every_batches = 1000;
  s.every_seconds = 0;
  s.study = "unit";
  s.start_batch = 40;  // restored at batch 40: nothing due at 41
  std::filesystem::create_directories(s.dir);
  auto buffer = fifo_with(2);
  rank_checkpoints keeper(s, 0.0);
  CHECK_FALSE(keeper.due(41, 1.0));
  std::promise<write_result> heard;
  CHECK(keeper.at_step_boundary(41, 1.0, false, no_trainer, "shell",
                                [&](const write_result& r) { heard.set_value(r); }));
  offer(*keeper.handoff(), *buffer, received_of(1, 2));
  auto result = heard.get_future();
  REQUIRE(result.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  const auto r = result.get();
  CHECK(r.ok);
  CHECK(r.batch == 41);
  const auto v = verify_checkpoint(r.path);
  REQUIRE(v.valid);
  CHECK(v.contents.reason == "shell");
}

TEST_CASE("rank_checkpoints: rank 0's extras are in the manifest and read back by --restore") {
  melissa::testing::temp_dir dir("melissa-rank-extras");
  rank_checkpoint_settings s;
  s.dir = dir / "ckpt";
  s.every_batches = 2;
  s.every_seconds = 0;
  s.study = "unit";
  std::filesystem::create_directories(s.dir);
  std::vector<std::uint64_t> asked_at;
  double elapsed = 100.25;
  s.extras = [&](std::uint64_t batch) {
    asked_at.push_back(batch);
    // Made on the trainer's thread: a copy of what is current now.
    return std::vector<checkpoint_part>{
        text_part("study/study_state.json", study_state_to_json(elapsed)),
        text_part("study/breed_state.json", "{\"batches\": " + std::to_string(batch) + "}")};
  };
  auto buffer = fifo_with(3);
  const auto received = received_of(1, 3, true);
  rank_checkpoints keeper(s, 0.0);
  CHECK_FALSE(keeper.take_pauses());  // no checkpoint yet
  CHECK_FALSE(keeper.at_step_boundary(1, 1.0, false, no_trainer));
  REQUIRE(keeper.at_step_boundary(2, 2.0, false, no_trainer));
  elapsed = 999;  // later changes are not in the checkpoint
  offer(*keeper.handoff(), *buffer, received);
  keeper.wait_idle();
  CHECK(asked_at == std::vector<std::uint64_t>{2});
  const auto pauses = keeper.take_pauses();
  REQUIRE(pauses);
  CHECK(*pauses >= 0.0);
  CHECK(*pauses == keeper.figures()["pause_seconds"]["total"].get<double>());
  CHECK_FALSE(keeper.take_pauses());  // taken once

  const auto path = keeper.figures()["last_path"].get<std::string>();
  const auto v = verify_checkpoint(path);
  REQUIRE(v.valid);
  std::set<std::string> files;
  for (const auto& f : v.contents.files) files.insert(f.path);
  CHECK(files.count("study/study_state.json"));
  CHECK(files.count("study/breed_state.json"));
  const auto r = read_server_restore(path, 0, 1);
  REQUIRE(r.elapsed_s);
  CHECK(*r.elapsed_s == 100.25);
  CHECK(r.breed_state == "{\"batches\": 2}");
  // study_state.json's own reader.
  CHECK(study_state_elapsed(study_state_to_json(3.5)) == 3.5);
  CHECK_THROWS_AS(study_state_elapsed("{\"elapsed_s\": -1}"), std::runtime_error);
}
