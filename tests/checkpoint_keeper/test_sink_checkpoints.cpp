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
