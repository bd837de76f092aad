#include "actors/launcher/study_phases.hpp"

namespace melissa {

const char* to_string(study_phase p) {
  switch (p) {
    case study_phase::idle: return "idle";
    case study_phase::starting: return "starting";
    case study_phase::running: return "running";
    case study_phase::draining: return "draining";
    case study_phase::finishing: return "finishing";
    case study_phase::stopping: return "stopping";
    case study_phase::done: return "done";
    case study_phase::restarting: return "restarting";
  }
  return "?";
}

bool study_phases::all_ranks_registered() {
  if (phase_ != study_phase::starting) return false;
  phase_ = was_draining_ ? study_phase::draining : study_phase::running;
  return true;
}

bool study_phases::server_lost(double now) {
  if (!server_end_fails()) return false;
  if (phase_ == study_phase::draining) was_draining_ = true;
  phase_ = study_phase::restarting;
  deadline_ = now + deadlines_.restart_grace;
  return true;
}

void study_phases::ranks_finished(double now) {
  phase_ = study_phase::finishing;
  deadline_ = now + deadlines_.finishing_grace;
}

bool study_phases::stop(double now) {
  if (phase_ == study_phase::stopping || phase_ == study_phase::done) return false;
  phase_ = study_phase::stopping;
  deadline_ = now + deadlines_.stop_grace;
  return true;
}

bool study_phases::finish() {
  if (phase_ == study_phase::done) return false;
  phase_ = study_phase::done;
  return true;
}

study_phases::action study_phases::on_tick(double now, bool jobs_active) {
  switch (phase_) {
    case study_phase::starting:
      return now > deadline_ ? action::server_timed_out : action::none;
    case study_phase::restarting:
      return now > deadline_ ? action::restart_server : action::none;
    case study_phase::finishing:
      // The server has every step it expected; wait for its process and for
      // client jobs still winding down, then cancel what is left.
      if (!jobs_active) return action::finish;
      if (now > deadline_) {
        phase_ = study_phase::stopping;
        deadline_ = now + deadlines_.stop_grace;
        return action::cancel_jobs;
      }
      return action::none;
    case study_phase::stopping:
      return !jobs_active || now > deadline_ ? action::finish : action::none;
    default:
      return action::none;
  }
}

}  // namespace melissa
