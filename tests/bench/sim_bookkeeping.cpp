// The server's per-simulation bookkeeping from 1,000 to 100,000 simulations
// (issue 16, item 4): the aggregator's step_log (received-steps bitsets,
// attempts, done) and session_tickets, driven as one rank sees a study:
// ticket issued, session admitted, STEPS steps of one field stored, missing
// steps counted at the clean end, done, ticket revoked. Prints CPU time and
// memory per simulation: constant per simulation is the goal. Two arms in
// the same run: "bitsets", a log that keeps a complete simulation's
// received-steps bitsets (as before), and "compact", the default, which
// replaces them by one series record when the simulation is done. Heap
// bytes are counted by this program's operator new (each block's
// malloc_usable_size); RSS is the process's, after malloc_trim between arms.
//
//   sim_bookkeeping [max_simulations=100000] [steps=100]
//
// Measured here (2 shared cores, release, 100 steps): 3.0, 2.7, 3.0 us and
// 410, 310, 315 bytes per simulation at 1,000 / 10,000 / 100,000. Before
// step_log cached the simulation looked up last: 7.1, 9.2, 19.7 us (perf:
// step_log::insert and ::contains 78%, each step a walk of the std::map).
// Compacted (both arms in one run, 100,000 simulations): 262 heap bytes per
// complete simulation whatever its steps, against 326 (100 steps), 438
// (1,000) and 2,352 (10,000, at 10,000 simulations) with the bitsets kept;
// CPU time unchanged. What is left: the map node (the 112-byte record) and
// the attempts set node. The last column: the checkpoint's
// received_steps.json per simulation (step_log_to_json; since format 2 a
// compacted simulation is one series record instead of its bits in hex).
// Figures: docs/launcher.md.
#include <malloc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <new>
#include <string>

#include "actors/aggregator/session_tickets.hpp"
#include "actors/aggregator/step_log.hpp"
#include "actors/checkpoint_keeper/state_files.hpp"
#include "tests/bench/process_figures.hpp"

using namespace melissa;
using bench::cpu_s;
using bench::rss_bytes;

namespace {
std::int64_t live_bytes = 0;  // one thread
}  // namespace

void* operator new(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (!p) throw std::bad_alloc();
  live_bytes += static_cast<std::int64_t>(malloc_usable_size(p));
  return p;
}
void operator delete(void* p) noexcept {
  if (!p) return;
  live_bytes -= static_cast<std::int64_t>(malloc_usable_size(p));
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }

int main(int argc, char** argv) {
  const std::uint32_t max_sims = argc > 1 ? static_cast<std::uint32_t>(std::atoi(argv[1])) : 100000;
  const std::uint32_t steps = argc > 2 ? static_cast<std::uint32_t>(std::atoi(argv[2])) : 100;
  std::printf("server bookkeeping (step_log + session_tickets), %u steps of one field per simulation\n",
              steps);
  std::printf("(a bitset of %u steps: %u bytes of bits, in whole 8-byte words, plus its vector<bool>)\n",
              steps, (steps + 7) / 8);
  std::printf("%10s %9s %10s %14s %15s %10s %14s %14s\n", "sims", "arm", "us/sim", "RSS bytes/sim",
              "heap bytes/sim", "ratio/1k", "heap/bitsets", "json bytes/sim");
  double base[2] = {0, 0};  // us/sim at 1,000, per arm
  for (std::uint32_t n = 1000; n <= max_sims; n *= 10) {
    double bitsets_heap = 0;
    for (const bool compact : {false, true}) {
      malloc_trim(0);
      const double rss0 = rss_bytes();
      const std::int64_t heap0 = live_bytes;
      const double t0 = cpu_s();
      auto* log = new step_log(compact);
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
      const double heap = static_cast<double>(live_bytes - heap0);
      if (missing != 0 || log->done_count() != n || log->compacted_count() != (compact ? n : 0)) {
        std::fprintf(stderr, "bookkeeping wrong: %llu missing, %u done, %u compacted\n",
                     static_cast<unsigned long long>(missing), log->done_count(), log->compacted_count());
        return 1;
      }
      // A resent step of a complete simulation must still be a duplicate.
      if (log->insert(n / 2, 0, steps - 1) || !log->contains(n - 1, 0, 0)) {
        std::fprintf(stderr, "a complete simulation's steps were lost\n");
        return 1;
      }
      const double per = cpu / n * 1e6;
      if (base[compact] == 0) base[compact] = per;
      if (!compact) bitsets_heap = heap;
      const double json = static_cast<double>(checkpoint::step_log_to_json(*log).size());
      std::printf("%10u %9s %10.2f %14.0f %15.0f %10.2f %14.2f %14.0f\n", n, compact ? "compact" : "bitsets", per,
                  rss / n, heap / n, per / base[compact], heap / bitsets_heap, json / n);
      delete tickets;
      delete log;
    }
  }
  return 0;
}
