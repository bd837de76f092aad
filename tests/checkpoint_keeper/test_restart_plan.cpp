// The launcher's decision when the server job ends: restart from the newest
// valid checkpoint (resubmitting what is not complete in it, never what is),
// skip a corrupt one with the reason, restart from scratch only before any
// training, fail with what was lost otherwise, and stop after
// max_server_restarts.
#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <string>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"
#include "actors/checkpoint_keeper/restart_plan.hpp"
#include "actors/checkpoint_keeper/state_files.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa;
using namespace melissa::checkpoint;
namespace fs = std::filesystem;

namespace {

// A checkpoint at `batch` whose table has sims [0, complete) complete, then
// one failed, the rest submitted.
std::string make_checkpoint(const std::string& root, std::uint64_t batch, std::uint32_t complete) {
  checkpoint_directory d(root);
  simulation_table table(std::vector<std::vector<double>>(6, {1.0, 2.0}));
  for (std::uint32_t sim = 0; sim < 6; ++sim) table.mark_submitted(sim);
  for (std::uint32_t sim = 0; sim < complete; ++sim) table.mark_complete(sim);
  table.mark_failed(complete);
  auto s = d.begin();
  const auto text = simulation_table_to_json(table.snapshot());
  file_writer out(s.prepare("study/simulation_table.json"));
  out.write(text.data(), text.size());
  s.add("study/simulation_table.json", out.close());
  manifest m;
  m.study = "heat";
  m.batch = batch;
  return d.commit(std::move(s), m);
}

restart_inputs killed(const std::string& dir) {
  restart_inputs in;
  in.end = {"signal 9", std::nullopt, SIGKILL};
  in.checkpoint_dir = dir;
  in.batches_trained = 500;
  in.simulations = 6;
  return in;
}

}  // namespace

TEST_CASE("how the server ended: clean or not, and the reason's words") {
  CHECK_FALSE(ended_abnormally({"exited 0", 0, std::nullopt}));
  CHECK_FALSE(ended_abnormally({"COMPLETED", std::nullopt, std::nullopt}));
  CHECK(ended_abnormally({"exited 1", 1, std::nullopt}));
  CHECK(ended_abnormally({"signal 9", std::nullopt, SIGKILL}));
  for (const char* state : {"TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY", "FAILED"})
    CHECK(ended_abnormally({state, std::nullopt, std::nullopt}));
  CHECK(describe({"signal 9", std::nullopt, SIGKILL}) == "signal 9 (SIGKILL)");
  CHECK(describe({"exited 3", 3, std::nullopt}) == "exit code 3");
  CHECK(describe({"TIMEOUT", std::nullopt, std::nullopt}) == "scheduler state TIMEOUT");
}

TEST_CASE("a clean end restarts nothing") {
  melissa::testing::temp_dir dir("restart-plan");
  auto in = killed(dir.path);
  in.end = {"exited 0", 0, std::nullopt};
  CHECK(plan_server_restart(in).action == restart_action::none);
}

TEST_CASE("restart from the newest valid checkpoint: complete sims kept, the others resubmitted") {
  melissa::testing::temp_dir dir("restart-plan");
  make_checkpoint(dir.path, 100, 1);
  const auto newest = make_checkpoint(dir.path, 200, 3);
  auto in = killed(dir.path);
  in.given_up = {5};
  const auto plan = plan_server_restart(in);
  CHECK(plan.action == restart_action::from_checkpoint);
  CHECK(plan.reason == "signal 9 (SIGKILL)");
  CHECK(plan.checkpoint == newest);
  CHECK(plan.batch == 200);
  CHECK(plan.skipped.empty());
  CHECK(plan.complete == std::vector<std::uint32_t>{0, 1, 2});
  // 3 failed in the checkpoint, 5 given up by the launcher since: neither rerun.
  CHECK(plan.resubmit == std::vector<std::uint32_t>{4});
}

TEST_CASE("a corrupt newest checkpoint is skipped with the reason; the previous one is used") {
  melissa::testing::temp_dir dir("restart-plan");
  const auto older = make_checkpoint(dir.path, 100, 1);
  const auto newest = make_checkpoint(dir.path, 200, 3);
  fs::resize_file(newest + "/study/simulation_table.json", 10);
  const auto plan = plan_server_restart(killed(dir.path));
  CHECK(plan.action == restart_action::from_checkpoint);
  CHECK(plan.checkpoint == older);
  CHECK(plan.batch == 100);
  REQUIRE(plan.skipped.size() == 1);
  CHECK(plan.skipped[0].rfind(newest + ": study/simulation_table.json has 10 bytes, the manifest says ", 0) == 0);
  CHECK(plan.complete == std::vector<std::uint32_t>{0});
  CHECK(plan.resubmit == std::vector<std::uint32_t>{2, 3, 4, 5});
}

TEST_CASE("no valid checkpoint: from scratch before any training, else fail saying what is lost") {
  melissa::testing::temp_dir dir("restart-plan");
  const auto only = make_checkpoint(dir.path, 100, 2);
  fs::remove(only + "/manifest.json");
  auto in = killed(dir.path);
  in.batches_trained = 0;
  in.given_up = {1};
  auto plan = plan_server_restart(in);
  CHECK(plan.action == restart_action::from_scratch);
  CHECK(plan.complete.empty());
  CHECK(plan.resubmit == std::vector<std::uint32_t>{0, 2, 3, 4, 5});
  CHECK(plan.skipped == std::vector<std::string>{only + ": manifest.json is missing"});

  in.batches_trained = 500;
  plan = plan_server_restart(in);
  CHECK(plan.action == restart_action::fail);
  CHECK(plan.message == "the server ended (signal 9 (SIGKILL)) and " + dir.path +
                            " holds no valid checkpoint (1 skipped): the model trained for 500 "
                            "batches and the steps received are lost; the study stops");
}

TEST_CASE("max_server_restarts bounds the restarts") {
  melissa::testing::temp_dir dir("restart-plan");
  make_checkpoint(dir.path, 100, 1);
  auto in = killed(dir.path);
  in.end = {"TIMEOUT", std::nullopt, std::nullopt};
  in.restarts_so_far = 2;
  CHECK(plan_server_restart(in).action == restart_action::from_checkpoint);
  in.restarts_so_far = 3;
  const auto plan = plan_server_restart(in);
  CHECK(plan.action == restart_action::fail);
  CHECK(plan.message ==
        "the server ended (scheduler state TIMEOUT) after 3 restart(s); max_server_restarts = 3");
}

TEST_CASE("a checkpoint directory that does not exist: no checkpoint, and none is created") {
  melissa::testing::temp_dir dir("restart-plan");
  auto in = killed(dir.path + "/never-written");
  in.batches_trained = 0;
  auto plan = plan_server_restart(in);
  CHECK(plan.action == restart_action::from_scratch);
  CHECK(plan.skipped.empty());
  CHECK_FALSE(fs::exists(dir.path + "/never-written"));
  in.batches_trained = 7;
  CHECK(plan_server_restart(in).action == restart_action::fail);
}

TEST_CASE("the attempts each simulation reached in the checkpoint, over every rank (--resume)") {
  melissa::testing::temp_dir dir("restart-plan");
  checkpoint_directory d(dir.path);
  simulation_table table(std::vector<std::vector<double>>(4, {1.0}));
  for (std::uint32_t sim = 0; sim < 4; ++sim) table.mark_submitted(sim);
  auto s = d.begin();
  auto put = [&](const std::string& path, const std::string& text) {
    file_writer out(s.prepare(path));
    out.write(text.data(), text.size());
    s.add(path, out.close());
  };
  put("study/simulation_table.json", simulation_table_to_json(table.snapshot()));
  step_log rank0, rank1;
  rank0.note_attempt(0, 1);
  rank0.note_attempt(1, 1);
  rank0.note_attempt(1, 2);
  rank1.note_attempt(1, 3);  // the other rank saw a later attempt
  rank1.note_attempt(2, 2);
  put("rank-0/received_steps.json", step_log_to_json(rank0));
  put("rank-1/received_steps.json", step_log_to_json(rank1));
  manifest m;
  m.study = "heat";
  m.batch = 10;
  m.ranks = 2;
  d.commit(std::move(s), m);
  const auto plan = plan_server_restart(killed(dir.path));
  REQUIRE(plan.action == restart_action::from_checkpoint);
  CHECK(plan.attempts == std::map<std::uint32_t, std::uint32_t>{{0, 1}, {1, 3}, {2, 2}});
}
