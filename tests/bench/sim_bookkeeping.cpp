// The server's per-simulation bookkeeping from 1,000 to 100,000 simulations
// (issue 16, item 4): the aggregator's step_log (received-steps bitsets,
// attempts, done) and session_tickets, driven as one rank sees a study:
// ticket issued, session admitted, STEPS steps of one field stored, missing
// steps counted at the clean end, done, ticket revoked. Prints CPU time and
// memory per simulation: constant per simulation is the goal.
//
//   sim_bookkeeping [max_simulations=100000] [steps=100]
//
// Measured here (2 shared cores, release, 100 steps): 3.0, 2.7, 3.0 us and
// 410, 310, 315 bytes per simulation at 1,000 / 10,000 / 100,000. Before
// step_log cached the simulation looked up last: 7.1, 9.2, 19.7 us (perf:
// step_log::insert and ::contains 78%, each step a walk of the std::map).
// What limits it now: the map node, the attempts set and the vector<bool>
// of each simulation (steps/8 bytes), which a complete simulation keeps
// (the checkpoints' snapshot of the received steps reads them; compacting
// them is not done), and malloc.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>

#include "actors/aggregator/session_tickets.hpp"
#include "actors/aggregator/step_log.hpp"
#include "tests/bench/process_figures.hpp"

using namespace melissa;
using bench::cpu_s;
using bench::rss_bytes;

int main(int argc, char** argv) {
  const std::uint32_t max_sims = argc > 1 ? static_cast<std::uint32_t>(std::atoi(argv[1])) : 100000;
  const std::uint32_t steps = argc > 2 ? static_cast<std::uint32_t>(std::atoi(argv[2])) : 100;
  std::printf("server bookkeeping (step_log + session_tickets), %u steps of one field per simulation\n",
              steps);
  std::printf("%10s %12s %16s %10s\n", "sims", "us/sim", "RSS bytes/sim", "ratio/1k");
  double base = 0;
  for (std::uint32_t n = 1000; n <= max_sims; n *= 10) {
    const double rss0 = rss_bytes();
    const double t0 = cpu_s();
    auto* log = new step_log;
    auto* tickets = new session_tickets;
    std::uint64_t missing = 0;
    for (std::uint32_t sim = 0; sim < n; ++sim) {
      const std::string ticket = std::to_string(sim * 2654435761u);
      tickets->issue(sim, 1, ticket);
      (void)tickets->check(sim, 1, ticket);
      log->note_attempt(sim, 1);
      for (std::uint32_t t = 0; t < steps; ++t) log->insert(sim, 0, t);
      missing += log->missing_steps(sim, 1, steps, 0, 1);
      log->mark_done(sim);
      tickets->revoke(sim, 1);
    }
    const double cpu = cpu_s() - t0;
    const double rss = rss_bytes() - rss0;
    if (missing != 0 || log->done_count() != n) {
      std::fprintf(stderr, "bookkeeping wrong: %llu missing, %u done\n",
                   static_cast<unsigned long long>(missing), log->done_count());
      return 1;
    }
    const double per = cpu / n * 1e6;
    if (base == 0) base = per;
    std::printf("%10u %12.2f %16.0f %10.2f\n", n, per, rss / n, per / base);
    delete tickets;
    delete log;
  }
  return 0;
}
