// The phases of one study and the deadlines between them, without CAF: the
// launcher actor reports what happened (the server job was submitted, every
// rank registered, a stop, every rank finished) and asks on each tick what
// to do now; it carries out the answer (cancel the jobs, finish).
//
//   idle -> starting            starting_server()
//   starting -> running         all_ranks_registered() (draining again if it was)
//   starting/running/draining -> restarting   server_lost(): the server job
//                               ended abnormally or a rank was lost; the old
//                               job is ended, then a new one is started
//   restarting -> starting      starting_server() (server_timeout from then)
//   running -> draining         stop_from_shell(): no new simulation
//   running/draining -> finishing   ranks_finished(): wait finishing_grace for jobs
//   finishing -> stopping       tick after finishing_grace: cancel_jobs
//   any but stopping/done -> stopping   stop(): jobs are cancelled, stop_grace
//   stopping/finishing -> done  tick once no job is active or stop_grace passed
#pragma once

namespace melissa {

enum class study_phase { idle, starting, running, draining, finishing, stopping, done, restarting };

// "idle", "starting", ... as melissa-shell's `status` shows them.
const char* to_string(study_phase p);

struct study_deadlines {
  double server_timeout = 60;   // launcher.server_timeout: every rank registered by then
  double stop_grace = 15;       // stopping: jobs cancelled, wait this long for them to end
  double finishing_grace = 30;  // finishing: jobs may end on their own for this long
  double restart_grace = 20;    // restarting: the old server job may take this long to end
};

class study_phases {
 public:
  study_phases() = default;
  explicit study_phases(study_deadlines d) : deadlines_(d) {}

  study_phase phase() const { return phase_; }
  const study_deadlines& deadlines() const { return deadlines_; }

  // The server job is being submitted: idle or restarting -> starting; its
  // ranks must register within server_timeout from `now`.
  void starting_server(double now = 0) {
    if (phase_ != study_phase::idle && phase_ != study_phase::restarting) return;
    phase_ = study_phase::starting;
    deadline_ = now + deadlines_.server_timeout;
  }
  // The server is lost (its job ended abnormally, a rank disconnected) while
  // the study needs it: true (now restarting) when a restart may be tried;
  // false when the study is ending anyway or already restarting.
  bool server_lost(double now);
  bool restarting() const { return phase_ == study_phase::restarting; }
  // Every rank registered. True when this starts the run (starting -> running).
  bool all_ranks_registered();
  // `stop` from melissa-shell: a running study drains (no new simulation).
  void stop_from_shell() {
    if (phase_ == study_phase::running) phase_ = study_phase::draining;
  }
  // Every rank finished: the study waits finishing_grace for its jobs.
  void ranks_finished(double now);
  // Stop everything (a failure, a signal): false, and nothing changes, when
  // the study is already stopping or done; otherwise stopping, stop_grace.
  bool stop(double now);
  // The study ends: false when it had already ended.
  bool finish();

  // What the actor does on a tick, given whether jobs are still active.
  enum class action {
    none,
    server_timed_out,  // starting past server_timeout: stop the study (failed)
    cancel_jobs,       // finishing past its grace: cancel every job (now stopping)
    finish,            // no job is left, or stopping past its grace: finish()
    restart_server,    // restarting past restart_grace: start the new server anyway
  };
  action on_tick(double now, bool jobs_active);

  // New simulations are submitted only while running.
  bool submitting() const { return phase_ == study_phase::running; }
  // Clients are watched (timeouts, unconfirmed exits) while running or draining.
  bool watching_clients() const {
    return phase_ == study_phase::running || phase_ == study_phase::draining;
  }
  // Jobs are ending (poll faster; a job that ends is expected).
  bool ending() const {
    return phase_ == study_phase::stopping || phase_ == study_phase::finishing ||
           phase_ == study_phase::restarting;
  }
  bool stopping() const { return phase_ == study_phase::stopping; }
  bool done() const { return phase_ == study_phase::done; }
  // Before every rank registered (a shell query has no rank to ask yet).
  bool before_running() const {
    return phase_ == study_phase::idle || phase_ == study_phase::starting;
  }
  // A lost rank or server job ending now is a failure to act on (restart or
  // fail): not once every rank finished, nor while stopping or restarting.
  bool losing_a_rank_fails() const { return server_end_fails(); }
  bool server_end_fails() const {
    return phase_ == study_phase::idle || phase_ == study_phase::starting ||
           phase_ == study_phase::running || phase_ == study_phase::draining;
  }
  // The shell's `stop` drained the study before every rank finished.
  bool drained() const { return phase_ == study_phase::draining; }
  // When stopping/finishing gives up waiting (meaningless in other phases).
  double deadline() const { return deadline_; }

 private:
  study_deadlines deadlines_;
  study_phase phase_ = study_phase::idle;
  double deadline_ = 0;
  bool was_draining_ = false;  // a restart keeps a shell's stop
};

}  // namespace melissa
