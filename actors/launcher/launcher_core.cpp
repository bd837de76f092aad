#include "actors/launcher/launcher_core.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace melissa {

using scheduler::job_kind;
using scheduler::job_state;

launcher_core::request_outcome launcher_core::request(std::uint32_t sim, std::string parameters) {
  const bool asked_by_this_server = requested_in_.count(sim) && requested_in_[sim] == generation_;
  requested_in_[sim] = generation_;
  if (!parameters_.count(sim)) {
    parameters_[sim] = std::move(parameters);
    queue_.emplace_back(sim, first_attempt(sim));
    return request_outcome::queued;
  }
  // Asked twice by the same server (a reconnecting rank): once is enough.
  if (asked_by_this_server || completed_.count(sim) || failed_.count(sim)) return request_outcome::ignored;
  for (const auto& entry : queue_)
    if (entry.first == sim) return request_outcome::ignored;  // waiting for a slot already
  const auto* latest = table_.latest_of(sim);
  if (!latest) return request_outcome::ignored;  // never submitted: not in the queue either
  // Running attempts were superseded and cancelled by server_restarted();
  // this one sends every step again, to the restored server.
  if (!scheduler::is_final(latest->state)) superseded_.insert(latest->id);
  queue_.emplace_back(sim, latest->attempt + 1);
  return request_outcome::resubmitted;
}

std::vector<std::uint32_t> launcher_core::server_restarted() {
  ++generation_;
  std::vector<std::uint32_t> cancel;
  for (const auto& [id, row] : table_.rows()) {
    if (row.kind != job_kind::client || scheduler::is_final(row.state)) continue;
    superseded_.insert(id);
    cancel.push_back(id);
  }
  return cancel;
}

void launcher_core::restored(const std::vector<std::uint32_t>& complete) {
  completed_ = {complete.begin(), complete.end()};
  // Complete in the checkpoint but never asked of this launcher (--resume):
  // known, so that the counts add up and a request for it is ignored.
  for (auto sim : complete) parameters_.emplace(sim, std::string());
  for (auto sim : complete) failed_.erase(sim);
  // Confirmations came from the lost server; its successor confirms again.
  for (auto it = confirmed_by_.begin(); it != confirmed_by_.end();)
    it = completed_.count(it->first) ? std::next(it) : confirmed_by_.erase(it);
  awaiting_confirmation_.clear();
}

bool launcher_core::change_parameters(std::uint32_t sim, std::string parameters) {
  auto it = parameters_.find(sim);
  if (it == parameters_.end() || started_.count(sim)) return false;
  it->second = std::move(parameters);
  return true;
}

std::vector<std::uint32_t> launcher_core::next_submissions(double) {
  std::vector<std::uint32_t> jobs;
  if (paused_ || fatal_error_) return jobs;
  const auto c = count();
  auto active = c.running + (c.pending - static_cast<std::uint32_t>(queue_.size()));
  auto submit = [&](std::uint32_t sim, std::uint32_t attempt) {
    jobs.push_back(table_.add(job_kind::client, sim, attempt, parameters_[sim]).id);
    started_.insert(sim);
    highest_submitted_ = std::max(highest_submitted_, sim);
    ++active;
  };
  while (!queue_.empty() && active < limits_.job_limit) {
    const auto [sim, attempt] = queue_.front();
    if (limits_.group_size > 1 && attempt == first_attempt(sim)) {
      // A whole group at once: when it fits in the limit, or alone when the
      // group is larger than the limit.
      const auto members = group_at_front();
      if (members.empty()) break;  // the rest of the group is not requested yet
      if (active > 0 && active + members.size() > limits_.job_limit) break;
      for (auto i : members) submit(queue_[i].first, queue_[i].second);
      for (auto it = members.rbegin(); it != members.rend(); ++it)
        queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(*it));
      continue;
    }
    queue_.pop_front();
    if (attempt > first_attempt(sim) && --queued_retries_[sim] == 0) queued_retries_.erase(sim);
    submit(sim, attempt);
  }
  return jobs;
}

std::vector<std::size_t> launcher_core::group_at_front() const {
  const std::uint32_t size = limits_.group_size;
  const std::uint32_t group = queue_.front().first / size;
  std::vector<std::size_t> members;
  std::uint32_t started = 0;
  for (std::uint32_t m = 0; m < size; ++m)
    if (started_.count(group * size + m)) ++started;
  for (std::size_t i = 0; i < queue_.size(); ++i)
    if (queue_[i].second == first_attempt(queue_[i].first) && queue_[i].first / size == group)
      members.push_back(i);
  if (members.size() + started < size) return {};
  return members;
}

void launcher_core::submitted(std::uint32_t job, std::string backend_id, double now,
                              bool started) {
  if (auto* row = table_.find(job)) {
    table_.set_backend_id(job, std::move(backend_id));
    row->submitted_at = now;
    // A local job runs once submit returns: its slot is taken and its start
    // is now, whether or not a poll ever sees it running.
    if (started && row->state == job_state::pending) {
      row->state = job_state::running;
      row->raw_state = "running";
      row->started_at = now;
    }
  }
}

void launcher_core::submit_failed(std::uint32_t job, const std::string& error, double now) {
  if (auto* row = table_.find(job)) {
    row->state = job_state::failed;
    row->raw_state = "not submitted";
    row->reason = error;
    row->ended_at = now;
    failed_.insert(row->sim_id);
  }
  fatal_error_ = error;
}

launcher_core::outcome launcher_core::update(std::uint32_t job, const scheduler::job_status& status,
                                             double now) {
  auto* row = table_.find(job);
  if (!row || scheduler::is_final(row->state)) return outcome::none;
  row->raw_state = status.raw_state;
  row->exit_code = status.exit_code;
  row->signal = status.signal;
  if (status.state == job_state::running && row->started_at < 0) row->started_at = now;
  if (!scheduler::is_final(status.state)) {
    row->state = status.state;
    return outcome::none;
  }
  // A job the launcher ended (kill from the shell, client timeout) did not
  // finish on its own whatever its exit status says: mpirun can exit 0 when
  // its ranks die of the SIGTERM it forwarded.
  const bool ended_by_launcher = row->kind == job_kind::client && !row->reason.empty();
  const bool completed = status.state == job_state::completed && !ended_by_launcher;
  row->state = completed ? job_state::completed
               : stopping_ || ended_by_launcher ? job_state::cancelled
               : status.state;
  row->ended_at = now;
  if (row->started_at < 0) row->started_at = now;
  if (row->kind != job_kind::client) return outcome::none;
  // Cancelled by a server restart: its simulation is resubmitted as the
  // restored server asks for it, not retried here.
  if (superseded_.count(job)) {
    if (!completed) row->state = job_state::cancelled;
    if (row->reason.empty()) row->reason = "the server restarted";
    return outcome::none;
  }
  // The server already holds all of it: however this job ends, nothing to redo.
  if (completed_.count(row->sim_id)) return outcome::none;
  if (completed) {
    // Exit 0 says the process ended, not that the server has every step.
    if (confirmed_by_[row->sim_id].size() >= limits_.server_ranks) {
      completed_.insert(row->sim_id);
      return outcome::completed;
    }
    awaiting_confirmation_[job] = now;
    return outcome::none;
  }
  if (stopping_) return outcome::none;
  if (!ended_by_launcher && status.exit_code == refused_exit_status) {
    failed_.insert(row->sim_id);
    fatal_error_ = "simulation " + std::to_string(row->sim_id) + " was refused by the server";
    return outcome::refused;
  }
  // Failed, or cancelled by the launcher after a timeout or a kill: try again.
  return retry_or_give_up(*row);
}

launcher_core::outcome launcher_core::retry_or_give_up(job_row& row) {
  if (row.attempt <= limits_.max_retries) {
    ++retries_;
    queue_.emplace_front(row.sim_id, row.attempt + 1);
    ++queued_retries_[row.sim_id];
    return outcome::retry;
  }
  failed_.insert(row.sim_id);
  return outcome::gave_up;
}

launcher_core::outcome launcher_core::confirm(std::uint32_t sim, std::uint32_t rank) {
  auto& ranks = confirmed_by_[sim];
  ranks.insert(rank);
  if (ranks.size() < limits_.server_ranks || completed_.count(sim)) return outcome::none;
  // Complete: every step is on the server, exactly once. A retry still waiting
  // for a slot is dropped; one already running only resends duplicates.
  completed_.insert(sim);
  failed_.erase(sim);
  for (auto it = awaiting_confirmation_.begin(); it != awaiting_confirmation_.end();) {
    const auto* row = table_.find(it->first);
    it = row && row->sim_id == sim ? awaiting_confirmation_.erase(it) : std::next(it);
  }
  // Only a retry can be queued for a simulation that ran: the queue (maybe
  // 100,000 first attempts long) is scanned only when this one has one.
  if (queued_retries_.erase(sim) > 0) {
    const auto queued = queue_.size();
    queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                                [sim](const auto& entry) { return entry.first == sim; }),
                 queue_.end());
    retries_ -= static_cast<std::uint32_t>(queued - queue_.size());  // never run: not retries
  }
  return outcome::completed;
}

std::vector<std::pair<std::uint32_t, launcher_core::outcome>> launcher_core::unconfirmed_exits(
    double now) {
  std::vector<std::pair<std::uint32_t, outcome>> out;
  for (auto it = awaiting_confirmation_.begin(); it != awaiting_confirmation_.end();) {
    if (now - it->second < limits_.confirm_grace) {
      ++it;
      continue;
    }
    auto* row = table_.find(it->first);
    it = awaiting_confirmation_.erase(it);
    if (!row) continue;
    row->state = job_state::failed;
    row->reason = "exited 0 without ending its session with every time step";
    if (stopping_) continue;
    out.emplace_back(row->id, retry_or_give_up(*row));
  }
  return out;
}

void launcher_core::connected(std::uint32_t sim, std::uint32_t attempt) {
  if (auto* row = table_.attempt_of(sim, attempt)) row->connected = true;
}

std::vector<std::uint32_t> launcher_core::silent_jobs(double now) const {
  std::vector<std::uint32_t> jobs;
  for (const auto* row : table_.open_rows())
    if (row->kind == job_kind::client && row->state == job_state::running && !row->connected &&
        row->reason.empty() && row->started_at >= 0 &&
        now - row->started_at > limits_.client_timeout)
      jobs.push_back(row->id);
  return jobs;
}

void launcher_core::end_by_launcher(std::uint32_t job, std::string reason) {
  if (auto* row = table_.find(job)) row->reason = std::move(reason);
}

launcher_core::counts launcher_core::count() const {
  counts c;
  c.requested = static_cast<std::uint32_t>(parameters_.size());
  c.completed = static_cast<std::uint32_t>(completed_.size());
  c.failed = static_cast<std::uint32_t>(failed_.size());
  c.retries = retries_;
  for (const auto* row : table_.open_rows()) {
    if (row->kind != job_kind::client) continue;
    if (row->state == job_state::running) ++c.running;
    if (row->state == job_state::pending) ++c.pending;
  }
  c.pending += static_cast<std::uint32_t>(queue_.size());
  return c;
}

bool launcher_core::finished() const {
  const auto c = count();
  return c.requested > 0 && c.completed + c.failed == c.requested && c.running == 0;
}

std::vector<std::uint32_t> launcher_core::failed_simulations() const {
  return {failed_.begin(), failed_.end()};
}

}  // namespace melissa
