#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "actors/launcher/launcher_core.hpp"

using namespace melissa;
using scheduler::job_state;

namespace {

scheduler::job_status status(job_state s, std::string raw, std::optional<int> code = {}) {
  scheduler::job_status st;
  st.state = s;
  st.raw_state = std::move(raw);
  st.exit_code = code;
  return st;
}

// Submits what the core hands out, giving backend ids "b<job>".
std::vector<std::uint32_t> submit(launcher_core& core, double now = 0) {
  auto jobs = core.next_submissions(now);
  for (auto j : jobs) core.submitted(j, "b" + std::to_string(j), now);
  return jobs;
}

}  // namespace

TEST_CASE("no more than job_limit simulations run at once, in request order") {
  launcher_core core({3, 2, 300});
  for (std::uint32_t s = 0; s < 10; ++s) core.request(s, "p" + std::to_string(s));
  auto first = submit(core);
  REQUIRE(first.size() == 3);
  CHECK(core.table().find(first[0])->sim_id == 0);
  CHECK(core.table().find(first[2])->sim_id == 2);
  CHECK(core.table().find(first[1])->parameters == "p1");
  CHECK(submit(core).empty());  // all slots taken
  for (auto j : first) core.update(j, status(job_state::running, "RUNNING"), 1);
  CHECK(core.count().running == 3);
  CHECK(core.count().pending == 7);
  CHECK(core.update(first[0], status(job_state::completed, "exited 0", 0), 2) ==
        launcher_core::outcome::none);  // until the server holds all of it
  CHECK(core.confirm(0, 0) == launcher_core::outcome::completed);
  auto next = submit(core);
  REQUIRE(next.size() == 1);
  CHECK(core.table().find(next[0])->sim_id == 3);
}

TEST_CASE("a failed simulation is retried first with attempt + 1, up to max_retries") {
  launcher_core core({1, 2, 300});
  core.request(7, "x");
  core.request(8, "y");
  for (std::uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto jobs = submit(core);
    REQUIRE(jobs.size() == 1);
    const auto& row = *core.table().find(jobs[0]);
    CHECK(row.sim_id == 7);  // the retry goes before simulation 8
    CHECK(row.attempt == attempt);
    const auto expected = attempt <= 2 ? launcher_core::outcome::retry : launcher_core::outcome::gave_up;
    CHECK(core.update(jobs[0], status(job_state::failed, "exited 1", 1), attempt) == expected);
  }
  CHECK(core.failed_simulations() == std::vector<std::uint32_t>{7});
  CHECK(core.count().retries == 2);
  auto jobs = submit(core);
  REQUIRE(jobs.size() == 1);
  CHECK(core.table().find(jobs[0])->sim_id == 8);
  CHECK_FALSE(core.finished());
  core.confirm(8, 0);
  core.update(jobs[0], status(job_state::completed, "exited 0", 0), 9);
  CHECK(core.finished());
  CHECK(core.count().completed == 1);
  CHECK(core.count().failed == 1);
}

TEST_CASE("Slurm failure states end a job as failed and keep the raw state") {
  launcher_core core({1, 0, 300});
  core.request(0, "");
  auto jobs = submit(core);
  CHECK(core.update(jobs[0], status(job_state::failed, "TIMEOUT"), 5) ==
        launcher_core::outcome::gave_up);
  CHECK(core.table().find(jobs[0])->raw_state == "TIMEOUT");
  CHECK(core.table().find(jobs[0])->state == job_state::failed);
}

TEST_CASE("pause stops submissions, resume and a larger job_limit restart them") {
  launcher_core core({1, 0, 300});
  for (std::uint32_t s = 0; s < 4; ++s) core.request(s, "");
  core.pause();
  CHECK(submit(core).empty());
  core.resume();
  CHECK(submit(core).size() == 1);
  core.set_job_limit(3);
  CHECK(submit(core).size() == 2);
}

TEST_CASE("a job that never connects within the client timeout is silent; a connected one is not") {
  launcher_core core({2, 1, 10});
  core.request(0, "");
  core.request(1, "");
  auto jobs = submit(core, 0);
  for (auto j : jobs) core.update(j, status(job_state::running, "RUNNING"), 1);
  core.connected(1, 1);
  CHECK(core.silent_jobs(5).empty());
  CHECK(core.silent_jobs(12) == std::vector<std::uint32_t>{jobs[0]});
  core.end_by_launcher(jobs[0], "did not connect within client_timeout");
  CHECK(core.silent_jobs(12).empty());  // reported once
  // Its cancellation then shows up as a failure and is retried.
  CHECK(core.update(jobs[0], status(job_state::cancelled, "signal 15"), 13) ==
        launcher_core::outcome::retry);
}

TEST_CASE("a submission refused by the scheduler is a fatal study error") {
  launcher_core core({2, 2, 300});
  core.request(0, "");
  auto jobs = core.next_submissions(0);
  core.submit_failed(jobs[0], "client command 'nope' not found", 0);
  REQUIRE(core.fatal_error());
  CHECK(*core.fatal_error() == "client command 'nope' not found");
  CHECK(core.next_submissions(1).empty());
}

TEST_CASE("a simulation requested twice runs once") {
  launcher_core core({5, 0, 300});
  core.request(3, "a");
  core.request(3, "a");
  CHECK(submit(core).size() == 1);
  CHECK(core.count().requested == 1);
}

TEST_CASE("once the study is stopping, ended jobs are cancelled, not retried") {
  launcher_core core({2, 3, 300});
  core.request(0, "");
  core.request(1, "");
  auto jobs = submit(core);
  core.stop();
  CHECK(core.update(jobs[0], status(job_state::failed, "signal 15"), 1) == launcher_core::outcome::none);
  CHECK(core.table().find(jobs[0])->state == job_state::cancelled);
  CHECK(core.count().retries == 0);
  CHECK(core.next_submissions(2).empty());
  // A job that completes while the study winds down still counts as completed.
  CHECK(core.confirm(1, 0) == launcher_core::outcome::completed);
  CHECK(core.update(jobs[1], status(job_state::completed, "exited 0", 0), 2) ==
        launcher_core::outcome::none);
  CHECK(core.count().completed == 1);
}

TEST_CASE("steering changes the parameters of simulations that have no job yet, and only those") {
  launcher_core core({2, 2, 300});
  for (std::uint32_t s = 0; s < 5; ++s) core.request(s, "p" + std::to_string(s));
  CHECK(core.highest_submitted() == 0);
  auto first = submit(core);
  REQUIRE(first.size() == 2);
  CHECK(core.highest_submitted() == 1);
  CHECK_FALSE(core.change_parameters(1, "new"));  // submitted: fixed
  CHECK_FALSE(core.change_parameters(9, "new"));  // never requested
  CHECK(core.change_parameters(3, "q3"));
  for (auto j : first) core.update(j, status(job_state::completed, "exited 0", 0), 1);
  auto next = submit(core);
  REQUIRE(next.size() == 2);
  CHECK(core.table().find(next[1])->sim_id == 3);
  CHECK(core.table().find(next[1])->parameters == "q3");  // the job runs the new parameters
  CHECK(core.highest_submitted() == 3);
  CHECK_FALSE(core.change_parameters(3, "late"));
}

TEST_CASE("a job the launcher killed is cancelled and retried even if it exits 0") {
  launcher_core core({1, 2, 300});
  core.request(0, "p0");
  auto first = submit(core);
  REQUIRE(first.size() == 1);
  core.update(first[0], status(job_state::running, "RUNNING"), 1);
  core.end_by_launcher(first[0], "killed from melissa-shell");
  // mpirun forwarded SIGTERM to its ranks and exited 0.
  CHECK(core.update(first[0], status(job_state::completed, "exited 0", 0), 2) ==
        launcher_core::outcome::retry);
  CHECK(core.table().find(first[0])->state == job_state::cancelled);
  CHECK(core.table().find(first[0])->reason == "killed from melissa-shell");
  auto retry = submit(core);
  REQUIRE(retry.size() == 1);
  CHECK(core.table().find(retry[0])->attempt == 2);
  CHECK(core.count().completed == 0);
}

TEST_CASE("exit 0 completes a simulation only once every server rank holds all of it") {
  launcher_limits limits{2, 1, 300};
  limits.server_ranks = 2;
  limits.confirm_grace = 5;
  launcher_core core(limits);
  core.request(0, "a");
  core.request(1, "b");
  auto jobs = submit(core);
  REQUIRE(jobs.size() == 2);
  // Simulation 0: both ranks confirm while it runs: complete; then it exits 3
  // (a crash after melissa_finalize): nothing to redo.
  CHECK(core.confirm(0, 0) == launcher_core::outcome::none);
  CHECK(core.confirm(0, 1) == launcher_core::outcome::completed);
  CHECK(core.update(jobs[0], status(job_state::failed, "exited 3", 3), 1) ==
        launcher_core::outcome::none);
  CHECK(core.count().retries == 0);
  // Simulation 1 exits 0 with one rank's confirmation only: not complete yet.
  core.confirm(1, 0);
  CHECK(core.update(jobs[1], status(job_state::completed, "exited 0", 0), 2) ==
        launcher_core::outcome::none);
  CHECK(core.count().completed == 1);
  CHECK_FALSE(core.finished());
  CHECK(core.unconfirmed_exits(6).empty());  // within the grace period
  const auto late = core.unconfirmed_exits(7.5);
  REQUIRE(late.size() == 1);
  CHECK(late[0] == std::make_pair(jobs[1], launcher_core::outcome::retry));
  CHECK(core.table().find(jobs[1])->state == job_state::failed);
  CHECK(core.table().find(jobs[1])->reason == "exited 0 without ending its session with every time step");
  auto retry = submit(core);
  REQUIRE(retry.size() == 1);
  CHECK(core.table().find(retry[0])->attempt == 2);
  // The retry's confirmation arrives after its exit 0: complete then.
  CHECK(core.update(retry[0], status(job_state::completed, "exited 0", 0), 8) ==
        launcher_core::outcome::none);
  CHECK(core.confirm(1, 1) == launcher_core::outcome::completed);
  CHECK(core.finished());
  CHECK(core.count().completed == 2);
}

TEST_CASE("a client the server refused (exit 78) fails the study at once, without a retry") {
  launcher_core core({2, 3, 300});
  for (std::uint32_t s = 0; s < 4; ++s) core.request(s, "p");
  auto jobs = submit(core);
  REQUIRE(jobs.size() == 2);
  CHECK(core.update(jobs[0], status(job_state::failed, "exited 78", 78), 1) ==
        launcher_core::outcome::refused);
  CHECK(core.failed_simulations() == std::vector<std::uint32_t>{0});
  CHECK(core.count().retries == 0);
  REQUIRE(core.fatal_error());
  CHECK(*core.fatal_error() == "simulation 0 was refused by the server");
  CHECK(submit(core).empty());  // nothing more is started
  // A job the launcher ended is not a refusal, whatever its status.
  launcher_core other({1, 3, 300});
  other.request(0, "p");
  auto job = submit(other);
  other.end_by_launcher(job[0], "killed from melissa-shell");
  CHECK(other.update(job[0], status(job_state::failed, "exited 78", 78), 1) ==
        launcher_core::outcome::retry);
}

TEST_CASE("a retry still waiting for a slot is dropped when the server confirms the simulation") {
  launcher_core core({1, 2, 300});
  core.request(0, "a");
  core.request(1, "b");
  auto jobs = submit(core);
  REQUIRE(jobs.size() == 1);
  // Simulation 0 crashes after melissa_finalize; its exit is seen first.
  CHECK(core.update(jobs[0], status(job_state::failed, "exited 3", 3), 1) ==
        launcher_core::outcome::retry);
  CHECK(core.count().retries == 1);
  CHECK(core.confirm(0, 0) == launcher_core::outcome::completed);
  CHECK(core.count().retries == 0);
  auto next = submit(core);
  REQUIRE(next.size() == 1);
  CHECK(core.table().find(next[0])->sim_id == 1);  // not a second attempt of 0
}

TEST_CASE("pick-freeze groups are submitted whole; retries go alone") {
  launcher_limits limits{5, 2, 300};
  limits.group_size = 4;  // p = 2: A, B, C_1, C_2
  launcher_core core(limits);
  // Group 0 and half of group 1 requested: only group 0 can go.
  for (std::uint32_t s = 0; s < 6; ++s) core.request(s, "p" + std::to_string(s));
  auto first = submit(core);
  REQUIRE(first.size() == 4);
  for (std::uint32_t i = 0; i < 4; ++i) CHECK(core.table().find(first[i])->sim_id == i);
  // The rest of group 1 arrives: 4 running + 4 is above the limit of 5, it waits.
  core.request(6, "p6");
  core.request(7, "p7");
  CHECK(submit(core).empty());
  // Member 2 fails: its retry goes alone into the free slot.
  CHECK(core.update(first[2], status(job_state::failed, "exited 1", 1), 1) ==
        launcher_core::outcome::retry);
  auto retry = submit(core);
  REQUIRE(retry.size() == 1);
  CHECK(core.table().find(retry[0])->sim_id == 2);
  CHECK(core.table().find(retry[0])->attempt == 2);
  // Once group 0 is done, group 1 goes as a whole.
  for (std::uint32_t s : {0u, 1u, 3u}) {
    for (auto j : first)
      if (core.table().find(j)->sim_id == s)
        core.update(j, status(job_state::completed, "exited 0", 0), 2);
    core.confirm(s, 0);
  }
  core.update(retry[0], status(job_state::completed, "exited 0", 0), 2);
  core.confirm(2, 0);
  auto second = submit(core);
  REQUIRE(second.size() == 4);
  for (std::uint32_t i = 0; i < 4; ++i) CHECK(core.table().find(second[i])->sim_id == 4 + i);
}

TEST_CASE("a group larger than job_limit goes alone once nothing runs") {
  launcher_limits limits{2, 0, 300};
  limits.group_size = 3;
  launcher_core core(limits);
  for (std::uint32_t s = 0; s < 6; ++s) core.request(s, "p");
  auto first = submit(core);
  CHECK(first.size() == 3);
  CHECK(submit(core).empty());
}

// Issue 16: a local job is running from its submission on (a short one ends
// before any poll could see it running), so started_at < ended_at and the
// slot counts as running.
TEST_CASE("a job started at submission is running, with started_at its submission time") {
  launcher_core core({2, 2, 300});
  core.request(0, "p0");
  const auto jobs = core.next_submissions(1.0);
  REQUIRE(jobs.size() == 1);
  core.submitted(jobs[0], "4242", 1.5, true);
  const auto* row = core.table().find(jobs[0]);
  CHECK(row->state == job_state::running);
  CHECK(row->started_at == 1.5);
  CHECK(core.count().running == 1);
  CHECK(core.count().pending == 0);
  core.update(jobs[0], status(job_state::completed, "exited 0", 0), 1.75);
  CHECK(row->started_at == 1.5);
  CHECK(row->ended_at == 1.75);
  // A batch job (not started at submission) stays pending until a poll says otherwise.
  core.request(1, "p1");
  const auto more = core.next_submissions(2.0);
  REQUIRE(more.size() == 1);
  core.submitted(more[0], "b1", 2.0);
  CHECK(core.table().find(more[0])->state == job_state::pending);
  CHECK(core.table().find(more[0])->started_at == -1);
}

TEST_CASE("job table: lookups by backend id, by attempt, latest attempt, active ids") {
  job_table t;
  auto& a1 = t.add(scheduler::job_kind::client, 7, 1, "p");
  auto& b1 = t.add(scheduler::job_kind::client, 8, 1, "q");
  const auto a1_id = a1.id, b1_id = b1.id;
  t.set_backend_id(a1_id, "100");
  t.set_backend_id(b1_id, "101");
  CHECK(t.find_backend("100")->id == a1_id);
  CHECK(t.find_backend("nope") == nullptr);
  CHECK(t.active_backend_ids() == std::vector<std::string>{"100", "101"});
  t.find(a1_id)->state = job_state::failed;
  CHECK(t.active_backend_ids() == std::vector<std::string>{"101"});
  CHECK(t.open_rows().size() == 1);
  auto& a2 = t.add(scheduler::job_kind::client, 7, 2, "p");
  CHECK(t.latest_of(7)->id == a2.id);
  CHECK(t.attempt_of(7, 1)->id == a1_id);
  CHECK(t.attempt_of(7, 2)->id == a2.id);
  CHECK(t.attempt_of(7, 3) == nullptr);
  CHECK(t.attempt_of(9, 1) == nullptr);
  // A recycled pid names the newer job.
  t.set_backend_id(a2.id, "100");
  CHECK(t.find_backend("100")->id == a2.id);
}

TEST_CASE("a confirmed simulation drops its queued retry, whatever the queue's length") {
  launcher_core core({1, 2, 300});
  for (std::uint32_t s = 0; s < 1000; ++s) core.request(s, "p");
  auto first = submit(core);
  REQUIRE(first.size() == 1);
  CHECK(core.update(first[0], status(job_state::failed, "exited 1", 1), 1) ==
        launcher_core::outcome::retry);
  CHECK(core.count().retries == 1);
  CHECK(core.count().pending == 1000);  // the retry waits first in line
  CHECK(core.confirm(0, 0) == launcher_core::outcome::completed);
  CHECK(core.count().retries == 0);
  CHECK(core.count().pending == 999);
  const auto next = submit(core, 2);
  REQUIRE(next.size() == 1);
  CHECK(core.table().find(next[0])->sim_id == 1);
}

TEST_CASE("a server restart cancels the running attempts without counting them as retries") {
  launcher_core core({4, 2, 300});
  for (std::uint32_t s = 0; s < 3; ++s) core.request(s, "p" + std::to_string(s));
  auto jobs = submit(core);
  REQUIRE(jobs.size() == 3);
  for (auto j : jobs) core.update(j, status(job_state::running, "RUNNING"), 1);
  // Simulation 0 completes, then the server dies; its checkpoint holds 0 only.
  core.update(jobs[0], status(job_state::completed, "exited 0", 0), 2);
  core.confirm(0, 0);
  const auto cancel = core.server_restarted();
  core.restored({0});
  CHECK(cancel == std::vector<std::uint32_t>{jobs[1], jobs[2]});
  CHECK(core.server_generation() == 1);
  // Their end (the launcher's cancel) neither retries nor fails them.
  CHECK(core.update(jobs[1], status(job_state::failed, "signal 15"), 3) == launcher_core::outcome::none);
  CHECK(core.update(jobs[2], status(job_state::cancelled, "CANCELLED"), 3) == launcher_core::outcome::none);
  CHECK(core.table().find(jobs[1])->state == job_state::cancelled);
  CHECK(core.table().find(jobs[1])->reason == "the server restarted");
  CHECK(core.count().retries == 0);
  CHECK(core.count().failed == 0);
  CHECK(submit(core).empty());  // nothing resubmitted until the new server asks
}

TEST_CASE("the restarted server's requests resubmit what is not complete, as attempt + 1") {
  launcher_core core({4, 2, 300});
  for (std::uint32_t s = 0; s < 4; ++s) core.request(s, "p" + std::to_string(s));
  auto jobs = submit(core);
  for (auto j : jobs) core.update(j, status(job_state::running, "RUNNING"), 1);
  // 0 and 1 complete; the server checkpointed when only 0 was complete.
  for (std::uint32_t s = 0; s < 2; ++s) {
    core.update(jobs[s], status(job_state::completed, "exited 0", 0), 2);
    core.confirm(s, 0);
  }
  CHECK(core.count().completed == 2);
  core.server_restarted();
  core.restored({0});
  for (auto j : {jobs[2], jobs[3]}) core.update(j, status(job_state::cancelled, "CANCELLED"), 3);
  CHECK(core.count().completed == 1);
  // The restored server asks for 1, 2, 3 (not 0: complete in its checkpoint).
  using ro = launcher_core::request_outcome;
  CHECK(core.request(0, "p0") == ro::ignored);  // complete: never rerun
  CHECK(core.request(1, "p1") == ro::resubmitted);
  CHECK(core.request(2, "p2") == ro::resubmitted);
  CHECK(core.request(3, "p3") == ro::resubmitted);
  CHECK(core.request(3, "p3") == ro::ignored);  // twice by the same server: once
  CHECK(core.request(4, "p4") == ro::queued);   // a new one: attempt 1
  auto again = submit(core);
  REQUIRE(again.size() == 4);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> got;
  for (auto j : again) got.emplace_back(core.table().find(j)->sim_id, core.table().find(j)->attempt);
  CHECK(got == std::vector<std::pair<std::uint32_t, std::uint32_t>>{{1, 2}, {2, 2}, {3, 2}, {4, 1}});
  CHECK(core.table().find(again[0])->parameters == "p1");
  // A confirmation by the lost server does not count for the new one.
  CHECK_FALSE(core.complete(1));
  CHECK(core.confirm(1, 0) == launcher_core::outcome::completed);
}

TEST_CASE("the restored server's list of complete simulations replaces the launcher's") {
  launcher_core core({4, 2, 300, 2});  // two ranks
  for (std::uint32_t s = 0; s < 3; ++s) core.request(s, "");
  auto jobs = submit(core);
  core.confirm(2, 0);  // one rank of two: not complete
  core.server_restarted();
  core.restored({});  // from scratch
  CHECK(core.count().completed == 0);
  core.restored({0, 1});
  CHECK(core.complete(0));
  CHECK(core.complete(1));
  CHECK_FALSE(core.complete(2));
  CHECK(core.confirm(2, 1) == launcher_core::outcome::none);  // rank 0's old word is forgotten
  CHECK(core.confirm(2, 0) == launcher_core::outcome::completed);
}

TEST_CASE("a simulation given up, or waiting for a slot, is not resubmitted by a restarted server") {
  launcher_core core({1, 0, 300});  // max_retries 0: one failure gives up
  core.request(0, "");
  core.request(1, "");
  auto jobs = submit(core);
  CHECK(core.update(jobs[0], status(job_state::failed, "exited 1", 1), 1) == launcher_core::outcome::gave_up);
  core.server_restarted();
  core.restored({});
  using ro = launcher_core::request_outcome;
  CHECK(core.request(0, "") == ro::ignored);  // given up for good
  CHECK(core.request(1, "") == ro::ignored);  // never started: still in the queue
  auto next = submit(core);
  REQUIRE(next.size() == 1);
  CHECK(core.table().find(next[0])->sim_id == 1);
  CHECK(core.table().find(next[0])->attempt == 1);
}

TEST_CASE("--resume: attempts carried from the earlier runs, the next one is attempt + 1") {
  launcher_core core({4, 3, 300});  // max_retries 3: attempts 1 .. 4
  core.restored({0});               // complete in the checkpoint
  core.carry_attempts({{1, 2}, {2, 4}});
  CHECK(core.first_attempt(1) == 3);
  CHECK(core.first_attempt(3) == 1);  // never ran before
  using ro = launcher_core::request_outcome;
  CHECK(core.request(0, "") == ro::ignored);  // complete: never rerun
  for (std::uint32_t s = 1; s < 4; ++s) CHECK(core.request(s, "") == ro::queued);
  auto jobs = submit(core);
  REQUIRE(jobs.size() == 3);
  CHECK(core.table().find(jobs[0])->sim_id == 1);
  CHECK(core.table().find(jobs[0])->attempt == 3);
  CHECK(core.table().find(jobs[1])->attempt == 5);
  CHECK(core.table().find(jobs[2])->attempt == 1);
  // A failure retries with the next number; max_retries counts the earlier runs' attempts.
  CHECK(core.update(jobs[0], status(job_state::failed, "exited 1", 1), 1) == launcher_core::outcome::retry);
  CHECK(core.update(jobs[1], status(job_state::failed, "exited 1", 1), 1) == launcher_core::outcome::gave_up);
  auto retry = submit(core);
  REQUIRE(retry.size() == 1);
  CHECK(core.table().find(retry[0])->sim_id == 1);
  CHECK(core.table().find(retry[0])->attempt == 4);
}

TEST_CASE("--resume with groups: a group's first jobs go together at their carried attempts") {
  launcher_limits limits{4, 2, 300};
  limits.group_size = 2;
  launcher_core core(limits);
  core.carry_attempts({{1, 1}});
  core.request(0, "");
  CHECK(submit(core).empty());  // its group is not all requested yet
  core.request(1, "");
  auto jobs = submit(core);
  REQUIRE(jobs.size() == 2);
  CHECK(core.table().find(jobs[0])->attempt == 1);
  CHECK(core.table().find(jobs[1])->attempt == 2);
}
