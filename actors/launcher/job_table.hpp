// The launcher's job table: one row per job (the server and every attempt of
// every simulation), with the launcher's state and the scheduler's raw state
// side by side. Plain C++, no CAF.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "backends/scheduler/backend.hpp"

namespace melissa {

struct job_row {
  std::uint32_t id = 0;                     // launcher job id (1, 2, ...)
  scheduler::job_kind kind = scheduler::job_kind::client;
  std::uint32_t sim_id = 0;                 // clients only
  std::uint32_t attempt = 0;                // clients only (1, 2, ...)
  std::string parameters;                   // as appended to the command line
  scheduler::job_state state = scheduler::job_state::pending;
  std::string raw_state;                    // the scheduler's word ("RUNNING", "exited 3")
  std::string backend_id;                   // empty until submitted
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;                       // why the launcher ended it (timeout, kill, ...)
  double submitted_at = -1;                 // seconds since the study started; -1: not yet
  double started_at = -1;
  double ended_at = -1;
  bool connected = false;                   // the server saw its session open
};

// Every lookup that an event makes (a job's status, a session that opened,
// a simulation's latest attempt) goes through an index, and the jobs still
// active are kept apart: with 100,000 jobs no event scans the table.
class job_table {
 public:
  job_row& add(scheduler::job_kind kind, std::uint32_t sim_id, std::uint32_t attempt,
               std::string parameters);
  job_row* find(std::uint32_t id);
  const job_row* find(std::uint32_t id) const;
  job_row* find_backend(const std::string& backend_id);
  // Sets the row's backend id (once, when submitted) and indexes it.
  void set_backend_id(std::uint32_t id, std::string backend_id);
  // The newest attempt of a simulation.
  job_row* latest_of(std::uint32_t sim_id);
  // The client job of (sim, attempt), if any.
  job_row* attempt_of(std::uint32_t sim_id, std::uint32_t attempt);
  const std::map<std::uint32_t, job_row>& rows() const { return rows_; }
  // Jobs submitted to the scheduler and not yet ended, in job order.
  std::vector<std::string> active_backend_ids() const;
  // Rows not final yet (pending or running), submitted or not: what the
  // launcher's counts and timeouts look at.
  std::vector<const job_row*> open_rows() const;

 private:
  // Drops the rows that have become final from open_ (lazily: rows are
  // changed through find()).
  void prune() const;
  std::map<std::uint32_t, job_row> rows_;
  std::unordered_map<std::string, std::uint32_t> by_backend_;
  std::unordered_map<std::uint32_t, std::uint32_t> latest_;  // sim -> its newest client job
  static std::uint64_t attempt_key(std::uint32_t sim, std::uint32_t attempt) {
    return (std::uint64_t{sim} << 32) | attempt;
  }
  std::unordered_map<std::uint64_t, std::uint32_t> by_attempt_;  // (sim, attempt) -> job
  mutable std::set<std::uint32_t> open_;                     // ids of rows not final
  std::uint32_t next_id_ = 1;
};

}  // namespace melissa
