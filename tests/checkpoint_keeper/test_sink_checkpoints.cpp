// sink_checkpoints: the checkpoints of a rank without a trainer (statistics
// mode), driven without CAF: the schedule in the sink's units, the on-demand
// and end-of-study reasons, the files (the sink's bytes, the received steps,
// rank 0's table checked against them), verified and read back by --restore.
#include <doctest/doctest.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"
#include "actors/checkpoint_keeper/checkpoint_manifest.hpp"
#include "actors/checkpoint_keeper/rank_commit.hpp"
#include "actors/checkpoint_keeper/server_restore.hpp"
#include "actors/checkpoint_keeper/sink_checkpoints.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa;
using namespace melissa::checkpoint;

namespace {

// What a statistics sink would hand over after `units` steps: its bytes and
// the steps in them (sims 0 and 1 of 2 steps, sim 0 done).
sink_snapshot fake_cut(std::uint64_t units) {
  sink_snapshot s;
  s.files.emplace_back("statistics.bin",
                       std::make_shared<const std::string>("state after " + std::to_string(units)));
  s.received.insert(0, 0, 0);
  s.received.insert(0, 0, 1);
  s.received.mark_done(0);
  s.received.insert(1, 0, 0);
  return s;
}

}  // namespace

TEST_CASE("statistics checkpoints: every N steps folded, on demand, at the end; read back by --restore") {
  testing::temp_dir tmp("sink-checkpoints");
  sink_checkpoint_settings cfg;
  cfg.dir = tmp.path + "/ck";
  cfg.keep = 2;
  cfg.every_units = 5;
  cfg.every_seconds = 0;
  cfg.study = "sa";
  // The table says 0 and 1 complete; only 0 is done in the cut: 1 is rerun.
  cfg.table = [] {
    simulation_table_snapshot t;
    t.parameters = {{1.0}, {2.0}, {3.0}};
    t.states = {sim_state::complete, sim_state::complete, sim_state::pending};
    t.changes = {0, 0, 0};
    return std::optional<simulation_table_snapshot>(t);
  };
  cfg.elapsed = [] { return 12.5; };
  sink_checkpoints keeper(cfg, 0.0);
  int cuts = 0;
  auto snapshot = [&cuts](std::uint64_t units) {
    return [&cuts, units] {
      ++cuts;
      return fake_cut(units);
    };
  };
  for (std::uint64_t u = 1; u <= 12; ++u) {
    keeper.at_unit(u, 0.0, snapshot(u));
    keeper.wait_idle();
  }
  CHECK(cuts == 2);  // at 5 and 10
  std::promise<write_result> written;
  CHECK(keeper.at_unit(12, 0.0, snapshot(12), "shell",
                       [&written](const write_result& r) { written.set_value(r); }));
  const auto r = written.get_future().get();
  REQUIRE(r.ok);
  CHECK(r.batch == 12);
  CHECK_FALSE(keeper.at_unit(12, 0.0, snapshot(12), "end_of_study"));  // nothing new since
  CHECK(keeper.at_unit(13, 0.0, snapshot(13), "end_of_study"));        // waits until written
  CHECK(cuts == 4);
  const auto f = keeper.figures();
  CHECK(f["written"] == 4);
  CHECK(f["last_batch"] == 13);
  CHECK(f["failed"] == 0);

  checkpoint_directory dir(cfg.dir);
  const auto list = dir.list();
  REQUIRE(list.size() == 2);  // keep = 2
  const auto newest = list.front().path;
  const auto v = verify_checkpoint(newest);
  REQUIRE(v.valid);
  CHECK(v.contents.reason == "end_of_study");
  CHECK(read_sink_file(newest, 0, "statistics.bin") == "state after 13");
  CHECK_THROWS_WITH_AS(read_sink_file(newest, 0, "missing.bin"),
                       doctest::Contains("rank-0/missing.bin"), std::runtime_error);
  const auto restored = read_server_restore(newest, 0, 1);
  CHECK(restored.batch == 13);
  REQUIRE(restored.elapsed_s);
  CHECK(*restored.elapsed_s == 12.5);
  CHECK(restored.complete == std::vector<std::uint32_t>{0});
  REQUIRE(restored.table);
  CHECK(restored.table->states[1] == sim_state::submitted);
  CHECK(restored.received.contains(1, 0, 0));
  CHECK_FALSE(restored.received.contains(1, 0, 1));

  // After a "sigterm" checkpoint (the server stops on it) none is scheduled.
  CHECK(keeper.at_unit(14, 0.0, snapshot(14), "sigterm"));
  keeper.wait_idle();
  CHECK_FALSE(keeper.at_unit(30, 0.0, snapshot(30)));
  CHECK_FALSE(keeper.at_unit(31, 0.0, snapshot(31), "end_of_study"));
}

TEST_CASE("statistics checkpoints with two ranks: rank 0 decides, rank 1 writes its part of each request") {
  testing::temp_dir tmp("sink-checkpoints-ranks");
  sink_checkpoint_settings cfg;
  cfg.dir = tmp.path + "/ck";
  cfg.keep = 2;
  cfg.every_units = 5;
  cfg.every_seconds = 0;
  cfg.study = "sa";
  cfg.ranks = 2;
  cfg.part_wait = std::chrono::seconds(20);
  std::filesystem::create_directories(cfg.dir);
  // A request a lost run left: rank 1 never answers it, rank 0 removes it.
  post_request(cfg.dir, "3-1-deadbeef", "shell");
  auto cfg1 = cfg;
  cfg1.rank = 1;
  sink_checkpoints rank1(cfg1, 0.0);
  sink_checkpoints rank0(cfg, 0.0);
  CHECK(posted_requests(cfg.dir).empty());
  CHECK(rank1.requested().empty());

  // Rank 1 keeps no schedule of its own: rank 0's every_batches asks it.
  CHECK_FALSE(rank1.at_unit(5, 0.0, [] { return fake_cut(5); }));
  CHECK(rank0.at_unit(5, 0.0, [] { return fake_cut(5); }));
  CHECK(rank1.requested() == "every_batches");
  std::promise<write_result> part_written;
  CHECK(rank1.serve(4, 0.0, [] { return fake_cut(4); },
                    [&part_written](const write_result& r) { part_written.set_value(r); }) ==
        "every_batches");
  CHECK(rank1.requested().empty());  // answered
  const auto r1 = part_written.get_future().get();  // once rank 0 committed
  REQUIRE(r1.ok);
  rank0.wait_idle();
  checkpoint_directory dir(cfg.dir);
  auto list = dir.list();
  REQUIRE(list.size() == 1);
  CHECK(r1.path == list.front().path);
  auto v = verify_checkpoint(list.front().path);
  REQUIRE(v.valid);
  CHECK(v.contents.ranks == 2);
  CHECK(v.contents.batch == 5);  // rank 0's count
  CHECK(read_sink_file(list.front().path, 0, "statistics.bin") == "state after 5");
  CHECK(read_sink_file(list.front().path, 1, "statistics.bin") == "state after 4");
  const auto restored1 = read_server_restore(list.front().path, 1, 2);
  CHECK(restored1.received.contains(1, 0, 0));
  const auto restored0 = read_server_restore(list.front().path, 0, 2);
  CHECK(restored0.complete == std::vector<std::uint32_t>{0});  // done on both ranks

  // Rank 1 gets SIGTERM: it asks, rank 0 takes a "sigterm" checkpoint for it.
  CHECK(rank0.asked_by_others().empty());
  rank1.ask("sigterm");
  rank1.ask("sigterm");  // again: harmless
  CHECK(rank0.asked_by_others() == "sigterm");
  CHECK(rank0.asked_by_others().empty());  // taken
  CHECK(rank0.at_unit(6, 0.0, [] { return fake_cut(6); }, "sigterm"));
  CHECK(rank1.serve(6, 0.0, [] { return fake_cut(6); }) == "sigterm");
  rank1.wait_idle();
  rank0.wait_idle();
  CHECK(rank0.stopped());
  CHECK(rank1.stopped());
  list = dir.list();
  REQUIRE(list.size() == 2);
  v = verify_checkpoint(list.front().path);
  REQUIRE(v.valid);
  CHECK(v.contents.reason == "sigterm");
  CHECK(rank0.figures()["written"] == 2);
  CHECK(rank1.figures()["written"] == 2);
}

TEST_CASE("statistics checkpoints with two ranks: a part that never comes abandons that checkpoint only") {
  testing::temp_dir tmp("sink-checkpoints-ranks-lost");
  sink_checkpoint_settings cfg;
  cfg.dir = tmp.path + "/ck";
  cfg.every_units = 0;
  cfg.every_seconds = 0;
  cfg.study = "sa";
  cfg.ranks = 2;
  cfg.part_wait = std::chrono::milliseconds(300);
  std::filesystem::create_directories(cfg.dir);
  sink_checkpoints rank0(cfg, 0.0);
  std::promise<write_result> written;
  // At the end rank 0 takes one even with nothing new on its side (rank 1 may have more).
  CHECK(rank0.at_unit(0, 0.0, [] { return fake_cut(0); }, "end_of_study",
                      [&written](const write_result& r) { written.set_value(r); }));
  const auto r = written.get_future().get();
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("rank 1's part did not come") != std::string::npos);
  CHECK(posted_requests(cfg.dir).empty());  // removed with the abandoned checkpoint
  CHECK(checkpoint_directory(cfg.dir).list().empty());
  CHECK(rank0.figures()["failed"] == 1);
}
