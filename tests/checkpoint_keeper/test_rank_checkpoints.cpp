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

TEST_CASE("rank_checkpoints, two ranks: a step's bits decide the same checkpoints on both, rank 0 commits both parts") {
  melissa::testing::temp_dir dir("melissa-rank-checkpoints");
  rank_checkpoint_settings s0;
  s0.dir = dir / "ckpt";
  s0.keep = 10;
  s0.every_batches = 3;
  s0.every_seconds = 0;
  s0.study = "unit";
  s0.ranks = 2;
  s0.part_wait = std::chrono::seconds(20);
  std::filesystem::create_directories(s0.dir);
  auto s1 = s0;
  s1.rank = 1;
  // A stopped server's leftovers: rank 0 removes them when it starts.
  std::filesystem::create_directories(s0.dir + "/.parts-3-1/rank-1");
  rank_checkpoints k0(s0, 0.0), k1(s1, 0.0);
  CHECK_FALSE(std::filesystem::exists(s0.dir + "/.parts-3-1"));
  auto b0 = fifo_with(3), b1 = fifo_with(2);
  step_log log0 = received_of(1, 3, true), log1 = received_of(1, 2, true);
  for (std::uint32_t t = 0; t < 2; ++t) log1.insert(2, 0, t);  // sim 2: not done on rank 1
  std::promise<write_result> heard0, heard1;
  // One step: each rank's bits (what it sends with the step), OR-ed as the
  // all-reduce does, then each rank's boundary with the same bits.
  auto step = [&](std::uint64_t batch, std::vector<std::string> asked0, std::vector<std::string> asked1,
                  bool cut1 = true) {
    const auto bits = k0.step_signal(batch - 1, 0.0, asked0) | k1.step_signal(batch - 1, 0.0, asked1);
    const auto r0 = k0.at_collective_boundary(batch, 0.0, bits, false, no_trainer,
                                              [&](const write_result& r) { heard0.set_value(r); });
    const auto r1 = k1.at_collective_boundary(batch, 0.0, bits, false, no_trainer,
                                              [&](const write_result& r) { heard1.set_value(r); });
    CHECK(r0 == r1);
    if (!r0.empty()) {
      offer(*k0.handoff(), *b0, log0);
      if (cut1) offer(*k1.handoff(), *b1, log1);
    }
    return r0;
  };
  auto written = [&] {
    auto f0 = heard0.get_future(), f1 = heard1.get_future();
    REQUIRE(f0.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    REQUIRE(f1.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    const auto w0 = f0.get(), w1 = f1.get();
    heard0 = {};
    heard1 = {};
    CHECK_MESSAGE(w0.ok, w0.error);
    CHECK_MESSAGE(w1.ok, w1.error);
    CHECK(w0.path == w1.path);
    // The result is heard just before the writer says idle.
    k0.wait_idle();
    k1.wait_idle();
    return w0.path;
  };
  CHECK(step(1, {}, {}) == "");
  CHECK(step(2, {}, {}) == "");
  CHECK(step(3, {}, {}) == "every_batches");  // the same counter on both
  const auto first = written();
  // Rank 1's buffer does not hand its cut over yet: rank 1 is busy.
  CHECK(step(4, {"shell"}, {}, false) == "shell");
  CHECK((k1.step_signal(4, 0.0, {}) & signal_busy) != 0);
  CHECK(step(5, {}, {}) == "");  // nothing asked (shell was taken), nothing due
  CHECK(step(6, {}, {}) == "");
  CHECK(step(7, {}, {}) == "");  // every_batches due, but rank 1 said busy: neither takes it
  CHECK(k0.figures()["refused_busy"] == 1);
  CHECK(k1.figures()["refused_busy"] == 1);
  offer(*k1.handoff(), *b1, log1);
  const auto second = written();
  k1.wait_idle();
  k0.wait_idle();
  // SIGTERM on rank 1 only: both take it, with that reason, at the same batch.
  CHECK(step(8, {}, {"sigterm"}) == "sigterm");
  const auto third = written();
  // After it nothing scheduled follows (the server stops).
  CHECK(step(11, {}, {}) == "");
  k0.wait_idle();
  for (const auto& path : {first, second, third}) {
    const auto v = verify_checkpoint(path);
    REQUIRE_MESSAGE(v.valid, v.why);
    CHECK(v.contents.ranks == 2);
  }
  const auto v = verify_checkpoint(third);
  CHECK(v.contents.reason == "sigterm");
  CHECK(v.contents.batch == 8);
  CHECK(verify_checkpoint(second).contents.reason == "shell");
  CHECK(verify_checkpoint(second).contents.batch == 4);
  // Each rank restores its own part; complete = done on both ranks.
  const auto part1 = read_rank_part(third, 1);
  REQUIRE(part1.buffer);
  CHECK(part1.buffer->stats().inserts == 2);
  CHECK(part1.received.total_stored() == 4);
  const auto r = read_server_restore(third, 0, 2);
  CHECK(r.complete == std::vector<std::uint32_t>{1});
  CHECK(read_server_restore(third, 1, 2).received.total_stored() == 4);
  CHECK(checkpoint_directory(s0.dir).list().size() == 3);
}

TEST_CASE("checkpoint signal bits: the most urgent reason wins; unknown reasons ask as the shell does") {
  CHECK(reason_of(signal_sigterm | signal_shell | signal_every_seconds) == "sigterm");
  CHECK(reason_of(signal_launcher_lost | signal_interrupt) == "launcher_lost");
  CHECK(reason_of(signal_interrupt | signal_shell) == "interrupt");
  CHECK(reason_of(signal_busy) == "");
  CHECK(reason_of(signal_of("shell")) == "shell");
  CHECK(reason_of(signal_of("whatever")) == "shell");
  CHECK(stops("sigterm"));
  CHECK(stops("launcher_lost"));
  CHECK_FALSE(stops("interrupt"));
}

TEST_CASE("rank_checkpoints: a rank whose buffer is drained while others train writes the end's part") {
  // Several ranks: this rank's buffer said `last` (no batch request comes
  // to cut at) but the others still train; its part is its final received
  // steps, without samples, and is written without waiting for a cut.
  melissa::testing::temp_dir dir("melissa-rank-checkpoints");
  rank_checkpoint_settings s;
  s.dir = dir / "ckpt";
  s.every_batches = 1000;
  s.every_seconds = 0;
  s.study = "unit";
  std::filesystem::create_directories(s.dir);
  auto buffer = fifo_with(0);
  rank_checkpoints keeper(s, 0.0);
  offer(*keeper.handoff(), *buffer, received_of(1, 6, true), {}, true);  // production over
  std::promise<write_result> heard;
  CHECK(keeper.at_step_boundary(12, 1.0, false, no_trainer, "shell",
                                [&](const write_result& r) { heard.set_value(r); }, true));
  auto result = heard.get_future();
  REQUIRE(result.wait_for(std::chrono::seconds(30)) == std::future_status::ready);  // no cut awaited
  const auto r = result.get();
  REQUIRE_MESSAGE(r.ok, r.error);
  const auto v = verify_checkpoint(r.path);
  REQUIRE(v.valid);
  for (const auto& f : v.contents.files) CHECK(f.path != "rank-0/buffer.bin");
  const auto part = read_rank_part(r.path, 0);
  CHECK_FALSE(part.buffer);
  CHECK(part.received.total_stored() == 6);
  CHECK(part.received.simulations().at(1).done);
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
