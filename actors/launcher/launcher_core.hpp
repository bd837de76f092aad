// The launcher's decisions, without CAF or a scheduler: which simulations to
// submit now (job_limit, pause), what a job's end means (completed, retried
// with attempt + 1, given up after max_retries), which jobs hang (client
// timeout), and when the study is over. The launcher actor carries them out.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/launcher/job_table.hpp"

namespace melissa {

struct launcher_limits {
  std::uint32_t job_limit = 4;
  std::uint32_t max_retries = 2;
  double client_timeout = 300;  // seconds without a step (or without connecting)
  // Server ranks that must each report a simulation complete before it counts.
  std::uint32_t server_ranks = 1;
  // How long a client job that exited 0 may wait for those reports before
  // its attempt counts as failed (it ended without ending its sessions).
  double confirm_grace = 10;
  // Pick-freeze groups (statistics mode with Sobol): simulations
  // g * group_size .. g * group_size + group_size - 1 are first submitted
  // together, so that the server holds a group's steps as briefly as
  // possible. Retries go alone. 1: no groups.
  std::uint32_t group_size = 1;
};



class launcher_core {
 public:
  explicit launcher_core(launcher_limits limits) : limits_(limits) {}

  // The server asks for simulation `sim` with these parameters (command-line text).
  // Once per server: asked twice by the same server, once is enough. Asked
  // again by a restarted server (server_restarted), a simulation that is not
  // complete, not given up and not waiting for a slot is resubmitted as its
  // next attempt (the restarted server lost its steps after the checkpoint).
  enum class request_outcome { queued, resubmitted, ignored };
  request_outcome request(std::uint32_t sim, std::string parameters);

  // The server is lost and will be restarted (issue 11): every client job
  // not yet ended is superseded (its end is neither a retry nor a failure)
  // and returned, to be cancelled: its steps after the checkpoint are gone.
  // Simulations waiting for a slot keep their place; the new server's
  // requests do the rest.
  std::vector<std::uint32_t> server_restarted();
  // The simulations complete are exactly `complete`: those of the checkpoint
  // the new server restores (plan_server_restart, then the server's own
  // restored_atom), none from scratch. The others' confirmations are
  // forgotten (their steps were lost with the server).
  void restored(const std::vector<std::uint32_t>& complete);
  // How many times the server was restarted.
  std::uint32_t server_generation() const { return generation_; }
  // melissa-run --resume: the highest attempt each simulation reached in the
  // runs before (the checkpoint's received steps, the previous summary's
  // jobs). Its first job in this run is that attempt + 1, and max_retries
  // counts the earlier attempts too, as within one run.
  void carry_attempts(const std::map<std::uint32_t, std::uint32_t>& attempts) {
    carried_attempts_ = attempts;
  }
  // The attempt a simulation's first job of this run gets (1 + carried).
  std::uint32_t first_attempt(std::uint32_t sim) const {
    const auto it = carried_attempts_.find(sim);
    return it == carried_attempts_.end() ? 1 : it->second + 1;
  }
  // Steering: new parameters for a requested simulation that has never been
  // submitted. False (nothing changes) once it has a job.
  bool change_parameters(std::uint32_t sim, std::string parameters);
  // The highest simulation id that got a job so far (0 when none).
  std::uint32_t highest_submitted() const { return highest_submitted_; }

  // New client jobs to submit now (their rows are created, state pending);
  // the caller submits them and reports submitted() or submit_failed().
  std::vector<std::uint32_t> next_submissions(double now);
  // `started`: the backend runs a job as soon as it is submitted (local), so
  // it is running from now on (a poll may never see it running: a short job
  // ends before).
  void submitted(std::uint32_t job, std::string backend_id, double now, bool started = false);
  // The scheduler refused the job (e.g. missing executable): a user error
  // that retrying cannot fix, so it fails the study.
  void submit_failed(std::uint32_t job, const std::string& error, double now);

  // What a job's new scheduler state means for its simulation. `refused`:
  // the client exited with refused_exit_status, the server refused it (the
  // client and the study disagree); every attempt would end the same way, so
  // the simulation fails without a retry and fatal_error() is set.
  enum class outcome { none, completed, retry, gave_up, refused };
  // MELISSA_EXIT_REFUSED of the client API (api/include/melissa/api.h).
  static constexpr int refused_exit_status = 78;
  outcome update(std::uint32_t job, const scheduler::job_status& status, double now);

  // The server saw the session of (sim, attempt) open.
  void connected(std::uint32_t sim, std::uint32_t attempt);
  // Server rank `rank` holds every step of `sim` and saw a clean end. Once
  // every rank has said so the simulation is complete (`completed`), whatever
  // its jobs do afterwards: the server's data decides, not exit statuses.
  outcome confirm(std::uint32_t sim, std::uint32_t rank);
  // Client jobs that exited 0 more than confirm_grace ago without the
  // server's confirmation: each attempt fails (retry or gave_up), with a reason.
  std::vector<std::pair<std::uint32_t, outcome>> unconfirmed_exits(double now);
  // Running client jobs that never connected within the client timeout.
  std::vector<std::uint32_t> silent_jobs(double now) const;
  // Marks a job to be ended by the launcher (timeout, kill from the shell): its
  // coming failure is expected; `reason` goes to the job table.
  void end_by_launcher(std::uint32_t job, std::string reason);

  // The study is being stopped: nothing is submitted or retried any more, and
  // jobs that end from now on count as cancelled.
  void stop() {
    stopping_ = true;
    paused_ = true;
  }

  void set_job_limit(std::uint32_t n) { limits_.job_limit = n; }
  std::uint32_t job_limit() const { return limits_.job_limit; }
  void pause() { paused_ = true; }
  void resume() { paused_ = false; }
  bool paused() const { return paused_; }

  struct counts {
    std::uint32_t requested = 0, completed = 0, running = 0, pending = 0, failed = 0, retries = 0;
  };
  counts count() const;
  // Every requested simulation completed or failed, and nothing is running.
  bool finished() const;
  const std::optional<std::string>& fatal_error() const { return fatal_error_; }
  std::vector<std::uint32_t> failed_simulations() const;
  // Every server rank holds all of `sim` (confirm).
  bool complete(std::uint32_t sim) const { return completed_.count(sim) > 0; }

  job_table& table() { return table_; }
  const job_table& table() const { return table_; }

 private:
  launcher_limits limits_;
  job_table table_;
  std::map<std::uint32_t, std::string> parameters_;  // sim -> parameters
  std::deque<std::pair<std::uint32_t, std::uint32_t>> queue_;  // (sim, attempt) waiting for a slot
  std::map<std::uint32_t, std::uint32_t> queued_retries_;      // sim -> its retries in queue_
  std::map<std::uint32_t, std::uint32_t> carried_attempts_;    // --resume: sim -> attempts before
  outcome retry_or_give_up(job_row& row);
  // The first attempts of the group of the queue's front, all requested:
  // their queue positions; empty while some member is not requested yet.
  std::vector<std::size_t> group_at_front() const;
  std::set<std::uint32_t> completed_, failed_;
  std::map<std::uint32_t, std::set<std::uint32_t>> confirmed_by_;  // sim -> ranks
  std::map<std::uint32_t, double> awaiting_confirmation_;           // job -> when it exited 0
  std::set<std::uint32_t> started_;  // simulations that got a job (their parameters are fixed)
  std::uint32_t generation_ = 0;     // server restarts so far
  std::map<std::uint32_t, std::uint32_t> requested_in_;  // sim -> generation that last asked
  std::set<std::uint32_t> superseded_;  // client jobs cancelled by a server restart
  std::uint32_t highest_submitted_ = 0;
  std::uint32_t retries_ = 0;
  bool paused_ = false;
  bool stopping_ = false;
  std::optional<std::string> fatal_error_;
};

}  // namespace melissa
