// Launcher bookkeeping from 1,000 to 100,000 simulations (issue 16, item 4).
// A dry run: the launcher's real decision core and job table (launcher_core,
// job_table: what every poll, session notice and confirmation goes through)
// driven by simulated jobs, without processes, actors or a server. Each
// simulation: requested, submitted (job_limit at a time), started, connected,
// confirmed by the server, ended; every 50 events a poll of the active jobs
// and a progress count, as the launcher's tick does; at the end the job table
// as summary.json writes it. Prints CPU time and memory per job for each
// size: constant per job is the goal (nothing scans all jobs per event).
//
//   launcher_scale [max_simulations=100000] [job_limit=64]
//
// Measured here (2 shared cores, Debian 12, release build): 4.4, 3.9, 5.4 us
// of CPU per job at 1,000 / 10,000 / 100,000 jobs, about 2.3 KB of RSS per
// job (the row, its indexes and its summary JSON text), and 13-14 us per
// job to build and print summary.json's job table. The same loop over the
// job table before issue 16 took 13 us/job at 1,000 and 212 us/job at
// 10,000 (quadratic: find_backend, connected and count scanned every row on
// every event; perf: std::_Rb_tree_increment 51%, memcmp 20%). What limits
// it now (perf record -g on 100,000): malloc (18%) and page faults for the
// rows and the JSON (kernel ~22%), memmove of the JSON text (8%): no scan.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "actors/launcher/launcher_core.hpp"
#include "tests/bench/process_figures.hpp"

using namespace melissa;
using bench::cpu_s;
using bench::rss_bytes;
using scheduler::job_state;

namespace {

struct figures {
  double cpu_s, summary_s, rss_bytes;
  std::size_t summary_bytes;
};

figures run(std::uint32_t sims, std::uint32_t job_limit) {
  launcher_limits limits;
  limits.job_limit = job_limit;
  launcher_core core(limits);
  const double rss0 = rss_bytes();
  const double t0 = cpu_s();
  for (std::uint32_t s = 0; s < sims; ++s) core.request(s, std::to_string(0.5 + s * 1e-6));
  double now = 0;
  std::uint64_t events = 0;
  std::uint32_t done = 0;
  while (done < sims) {
    now += 0.01;
    for (auto job : core.next_submissions(now))
      core.submitted(job, std::to_string(100000 + job), now, true);
    // What a poll does: the active ids, then one status each.
    const auto ids = core.table().active_backend_ids();
    for (const auto& id : ids) {
      auto* row = core.table().find_backend(id);
      core.connected(row->sim_id, row->attempt);
      core.confirm(row->sim_id, 0);
      scheduler::job_status st;
      st.id = id;
      st.state = job_state::completed;
      st.raw_state = "exited 0";
      st.exit_code = 0;
      core.update(row->id, st, now);
      ++done;
      if (++events % 50 == 0) {
        (void)core.count();  // the progress line
        (void)core.silent_jobs(now);
        (void)core.unconfirmed_exits(now);
      }
    }
  }
  const double t1 = cpu_s();
  // summary.json's "jobs": one object per row.
  nlohmann::json jobs = nlohmann::json::array();
  for (const auto& [id, r] : core.table().rows())
    jobs.push_back({{"id", r.id}, {"kind", to_string(r.kind)}, {"simulation", r.sim_id},
                    {"attempt", r.attempt}, {"state", to_string(r.state)},
                    {"raw_state", r.raw_state}, {"backend_id", r.backend_id},
                    {"submitted_at", r.submitted_at}, {"started_at", r.started_at},
                    {"ended_at", r.ended_at}, {"connected", r.connected},
                    {"parameters", r.parameters}});
  const auto text = jobs.dump(2);
  const double t2 = cpu_s();
  const double rss = rss_bytes() - rss0;
  if (core.count().completed != sims) {
    std::fprintf(stderr, "only %u of %u completed\n", core.count().completed, sims);
    std::exit(1);
  }
  return {t1 - t0, t2 - t1, rss, text.size()};
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint32_t max_sims = argc > 1 ? static_cast<std::uint32_t>(std::atoi(argv[1])) : 100000;
  const std::uint32_t job_limit = argc > 2 ? static_cast<std::uint32_t>(std::atoi(argv[2])) : 64;
  std::printf("launcher bookkeeping, dry run (launcher_core + job_table, simulated jobs), job_limit %u\n",
              job_limit);
  std::printf("%10s %14s %14s %16s %12s\n", "jobs", "core us/job", "summary us/job", "RSS bytes/job",
              "ratio/1k");
  double base = 0;
  for (std::uint32_t n = 1000; n <= max_sims; n *= 10) {
    const auto f = run(n, job_limit);
    const double per_job = f.cpu_s / n * 1e6;
    if (base == 0) base = per_job;
    std::printf("%10u %14.2f %14.2f %16.0f %12.2f\n", n, per_job, f.summary_s / n * 1e6,
                f.rss_bytes / n, per_job / base);
  }
  return 0;
}
