// What a server started with --restore reads (read_server_restore): the
// checkpoint verified again, this rank's received steps, and on rank 0 the
// simulations complete in it: done in EVERY rank's received steps and
// complete in the simulation table; the table's other complete states are
// downgraded so that they are rerun.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"
#include "actors/checkpoint_keeper/checkpoint_files.hpp"
#include "actors/checkpoint_keeper/server_restore.hpp"
#include "actors/checkpoint_keeper/state_files.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa;
using namespace melissa::checkpoint;

namespace {

void put_text(staging& s, const std::string& relative, const std::string& text) {
  file_writer out(s.prepare(relative));
  out.write(text.data(), text.size());
  s.add(relative, out.close());
}

// sims 0..3 of 4 steps; rank r holds steps t with (sim + t) % 2 == r. Done:
// sim 0 on both ranks, sim 1 on rank 0 only, sim 2 on both (but the table
// has it submitted: its completion came after the table's copy).
std::string two_rank_checkpoint(const std::string& root) {
  checkpoint_directory dir(root);
  auto s = dir.begin();
  for (std::uint32_t r = 0; r < 2; ++r) {
    step_log log;
    for (std::uint32_t sim = 0; sim < 3; ++sim)
      for (std::uint32_t t = 0; t < 4; ++t)
        if ((sim + t) % 2 == r) log.insert(sim, 0, t);
    log.note_attempt(0, 1);
    log.mark_done(0);
    if (r == 0) log.mark_done(1);
    log.mark_done(2);
    put_text(s, "rank-" + std::to_string(r) + "/received_steps.json", step_log_to_json(log));
  }
  simulation_table_snapshot table;
  table.parameters = {{1.0}, {2.0}, {3.0}, {4.0}};
  table.states = {sim_state::complete, sim_state::complete, sim_state::submitted, sim_state::failed};
  table.changes = {0, 0, 0, 0};
  put_text(s, "study/simulation_table.json", simulation_table_to_json(table));
  manifest header;
  header.study = "t";
  header.batch = 40;
  header.ranks = 2;
  header.reason = "every_batches";
  return dir.commit(std::move(s), header);
}

}  // namespace

TEST_CASE("restore: complete means done on every rank and complete in the table") {
  testing::temp_dir tmp("melissa-server-restore");
  const auto path = two_rank_checkpoint(tmp / "ckpt");
  const auto r0 = read_server_restore(path, 0, 2);
  CHECK(r0.batch == 40);
  CHECK(r0.complete == std::vector<std::uint32_t>{0});
  REQUIRE(r0.table);
  // sim 1 (done on rank 0 only) is rerun; sim 2 stays submitted; failed stays failed.
  CHECK(r0.table->states == std::vector<sim_state>{sim_state::complete, sim_state::submitted,
                                                   sim_state::submitted, sim_state::failed});
  CHECK(r0.received.total_stored() == 6);
  CHECK(r0.received.contains(0, 0, 0));  // rank 0 holds sim 0's even steps
  CHECK_FALSE(r0.received.contains(0, 0, 1));

  const auto r1 = read_server_restore(path, 1, 2);
  CHECK(r1.complete.empty());  // rank 0 decides
  CHECK_FALSE(r1.table);
  CHECK(r1.received.contains(0, 0, 1));
  CHECK(r1.received.simulations().at(0).attempts == std::set<std::uint32_t>{1});
}

TEST_CASE("restore: refused with the reason") {
  testing::temp_dir tmp("melissa-server-restore");
  const auto path = two_rank_checkpoint(tmp / "ckpt");
  CHECK_THROWS_WITH(read_server_restore(path, 0, 1),
                    (path + " holds 2 server rank(s); this server has 1").c_str());
  {
    std::fstream f(path + "/rank-1/received_steps.json", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3);
    f.put('#');
  }
  try {
    read_server_restore(path, 0, 2);
    FAIL("a flipped byte was not detected");
  } catch (const std::runtime_error& e) {
    const std::string why = e.what();
    CHECK(why.find(path + " does not verify: ") == 0);
    CHECK(why.find("rank-1/received_steps.json") != std::string::npos);
  }
  CHECK_THROWS_WITH(read_server_restore(tmp / "none", 0, 1),
                    doctest::Contains("does not verify: manifest.json"));
}
