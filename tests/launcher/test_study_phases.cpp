// The study's phases and deadlines (actors/launcher/study_phases.hpp), as
// the launcher actor drives them: one test per behaviour.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <string>

#include "actors/launcher/study_phases.hpp"

using namespace melissa;
using action = study_phases::action;

namespace {

// A study whose every rank has registered at t = 1 s.
study_phases running_study(study_deadlines d = {}) {
  study_phases s(d);
  s.starting_server();
  REQUIRE(s.all_ranks_registered());
  return s;
}

}  // namespace

TEST_CASE("a study waits for its server once its server job is being submitted") {
  study_phases s;
  CHECK(s.phase() == study_phase::idle);
  CHECK(s.before_running());
  CHECK_FALSE(s.all_ranks_registered());  // no server job yet
  s.starting_server();
  CHECK(s.phase() == study_phase::starting);
  CHECK(s.before_running());
  CHECK_FALSE(s.submitting());
  CHECK(s.on_tick(59, false) == action::none);
}

TEST_CASE("a server that does not connect within server_timeout stops the study") {
  study_phases s(study_deadlines{20, 15, 30});
  s.starting_server();
  CHECK(s.on_tick(20, true) == action::none);
  CHECK(s.on_tick(20.1, true) == action::server_timed_out);
  // The actor stops the study then.
  CHECK(s.stop(20.1));
  CHECK(s.phase() == study_phase::stopping);
}

TEST_CASE("a study runs, and submits simulations, once every rank has registered") {
  study_phases s;
  s.starting_server();
  CHECK(s.all_ranks_registered());
  CHECK(s.phase() == study_phase::running);
  CHECK(s.submitting());
  CHECK(s.watching_clients());
  CHECK_FALSE(s.before_running());
  // A rank registering again later does not restart the run.
  CHECK_FALSE(s.all_ranks_registered());
  // Running has no deadline: the server timeout no longer applies.
  CHECK(s.on_tick(1e6, true) == action::none);
}

TEST_CASE("a stop from the shell drains a running study: no new simulation, clients still watched") {
  auto s = running_study();
  s.stop_from_shell();
  CHECK(s.phase() == study_phase::draining);
  CHECK(s.drained());
  CHECK_FALSE(s.submitting());
  CHECK(s.watching_clients());
  CHECK(s.on_tick(1e6, true) == action::none);
}

TEST_CASE("a stop from the shell before the run or while ending changes no phase") {
  study_phases s;
  s.starting_server();
  s.stop_from_shell();
  CHECK(s.phase() == study_phase::starting);
  auto f = running_study();
  f.ranks_finished(5);
  f.stop_from_shell();
  CHECK(f.phase() == study_phase::finishing);
}

TEST_CASE("a study stopping gives its jobs 15 s, then finishes") {
  auto s = running_study();
  CHECK(s.stop(100));
  CHECK(s.phase() == study_phase::stopping);
  CHECK(s.stopping());
  CHECK(s.ending());
  CHECK_FALSE(s.submitting());
  CHECK(s.deadline() == doctest::Approx(115));
  CHECK(s.on_tick(110, true) == action::none);
  CHECK(s.on_tick(115, true) == action::none);
  CHECK(s.on_tick(115.01, true) == action::finish);
  CHECK(s.finish());
  CHECK(s.done());
}

TEST_CASE("a stopping study finishes as soon as its jobs have ended") {
  auto s = running_study();
  CHECK(s.stop(100));
  CHECK(s.on_tick(100.5, false) == action::finish);
}

TEST_CASE("a second stop keeps the first stop's deadline") {
  auto s = running_study();
  CHECK(s.stop(100));
  CHECK_FALSE(s.stop(110));
  CHECK(s.deadline() == doctest::Approx(115));
  CHECK(s.on_tick(115.01, true) == action::finish);
}

TEST_CASE("a study whose ranks finished gives its jobs 30 s, then cancels them and waits 15 s more") {
  auto s = running_study();
  s.ranks_finished(200);
  CHECK(s.phase() == study_phase::finishing);
  CHECK(s.ending());
  CHECK_FALSE(s.watching_clients());
  CHECK_FALSE(s.losing_a_rank_fails());
  CHECK_FALSE(s.server_end_fails());
  CHECK(s.on_tick(230, true) == action::none);
  CHECK(s.on_tick(230.01, true) == action::cancel_jobs);
  CHECK(s.phase() == study_phase::stopping);
  CHECK(s.deadline() == doctest::Approx(245.01));
  CHECK(s.on_tick(245, true) == action::none);
  CHECK(s.on_tick(245.02, true) == action::finish);
}

TEST_CASE("a finishing study finishes as soon as its jobs have ended") {
  auto s = running_study();
  s.ranks_finished(200);
  CHECK(s.on_tick(200.1, false) == action::finish);
  CHECK(s.finish());
  CHECK(s.phase() == study_phase::done);
}

TEST_CASE("a study stopped while finishing gets the stop grace from then") {
  auto s = running_study();
  s.ranks_finished(200);
  CHECK(s.stop(210));
  CHECK(s.deadline() == doctest::Approx(225));
  CHECK(s.on_tick(225.01, true) == action::finish);
}

TEST_CASE("a lost rank or server job fails the study until every rank finished") {
  auto s = running_study();
  CHECK(s.losing_a_rank_fails());
  CHECK(s.server_end_fails());
  s.stop_from_shell();
  CHECK(s.losing_a_rank_fails());
  CHECK(s.server_end_fails());
  CHECK(s.stop(1));
  CHECK_FALSE(s.losing_a_rank_fails());  // stopping: the jobs are being cancelled anyway
  CHECK_FALSE(s.server_end_fails());
}

TEST_CASE("a lost server restarts: no submission until the new server's ranks registered") {
  auto s = running_study(study_deadlines{20, 15, 30, 10});
  CHECK(s.server_lost(100));
  CHECK(s.phase() == study_phase::restarting);
  CHECK(s.restarting());
  CHECK_FALSE(s.submitting());
  CHECK_FALSE(s.watching_clients());
  CHECK(s.ending());  // the old server job is expected to end: poll faster
  // A second loss (its other rank, its job's end) is the same restart.
  CHECK_FALSE(s.server_lost(101));
  CHECK_FALSE(s.server_end_fails());
  CHECK(s.on_tick(110, true) == action::none);
  // The old job never ends: the new server starts anyway.
  CHECK(s.on_tick(110.01, true) == action::restart_server);
  s.starting_server(111);
  CHECK(s.phase() == study_phase::starting);
  CHECK(s.server_end_fails());  // the new server dying is another restart
  // server_timeout counts from the new server's start, not the study's.
  CHECK(s.on_tick(131, true) == action::none);
  CHECK(s.all_ranks_registered());
  CHECK(s.phase() == study_phase::running);
  CHECK(s.submitting());
}

TEST_CASE("a restarted server that never registers times out from its own start") {
  auto s = running_study(study_deadlines{20, 15, 30, 10});
  CHECK(s.server_lost(500));
  s.starting_server(505);
  CHECK(s.on_tick(525, true) == action::none);
  CHECK(s.on_tick(525.01, true) == action::server_timed_out);
}

TEST_CASE("a drained study stays drained through a server restart") {
  auto s = running_study();
  s.stop_from_shell();
  CHECK(s.server_lost(1));
  s.starting_server(2);
  CHECK(s.all_ranks_registered());
  CHECK(s.phase() == study_phase::draining);
  CHECK_FALSE(s.submitting());
}

TEST_CASE("a server lost once every rank finished, or while stopping, is not restarted") {
  auto s = running_study();
  s.ranks_finished(5);
  CHECK_FALSE(s.server_lost(6));
  CHECK(s.phase() == study_phase::finishing);
  auto t = running_study();
  CHECK(t.stop(1));
  CHECK_FALSE(t.server_lost(2));
  CHECK(t.phase() == study_phase::stopping);
  // Stopping during a restart cancels it.
  auto u = running_study();
  CHECK(u.server_lost(1));
  CHECK(u.stop(2));
  CHECK(u.phase() == study_phase::stopping);
}

TEST_CASE("a study that is done stays done") {
  auto s = running_study();
  CHECK(s.finish());
  CHECK_FALSE(s.finish());
  CHECK_FALSE(s.stop(1));
  CHECK(s.done());
  CHECK(s.on_tick(1e6, false) == action::none);
}

TEST_CASE("the deadlines are the study's") {
  study_phases s(study_deadlines{60, 5, 7});
  s.starting_server();
  REQUIRE(s.all_ranks_registered());
  s.ranks_finished(0);
  CHECK(s.on_tick(7.01, true) == action::cancel_jobs);
  CHECK(s.on_tick(12.0, true) == action::none);
  CHECK(s.on_tick(12.02, true) == action::finish);
}

TEST_CASE("the phases are named as melissa-shell shows them") {
  CHECK(std::string(to_string(study_phase::idle)) == "idle");
  CHECK(std::string(to_string(study_phase::restarting)) == "restarting");
  CHECK(std::string(to_string(study_phase::starting)) == "starting");
  CHECK(std::string(to_string(study_phase::running)) == "running");
  CHECK(std::string(to_string(study_phase::draining)) == "draining");
  CHECK(std::string(to_string(study_phase::finishing)) == "finishing");
  CHECK(std::string(to_string(study_phase::stopping)) == "stopping");
  CHECK(std::string(to_string(study_phase::done)) == "done");
}
