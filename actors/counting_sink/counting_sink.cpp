#include "actors/counting_sink/counting_sink.hpp"

#include <map>
#include <thread>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "messages/checksum.hpp"

namespace melissa {
namespace {

struct counting_sink_state {
  struct per_sim {
    std::uint64_t steps = 0;
    std::uint64_t checksum = 0;  // wrapping sum of step checksums
  };
  std::map<std::uint32_t, per_sim> sims;
  std::uint64_t steps = 0;
  std::uint64_t bytes = 0;
  static inline const char* name = "counting_sink";
};

sink_actor::behavior_type counting_sink_fn(sink_actor::stateful_pointer<counting_sink_state> self,
                                           std::chrono::milliseconds delay, bool checksums) {
  return {
      [self, delay, checksums](store_atom, const step_sample& s) {
        // Detached when delayed, so sleeping blocks only this actor's thread.
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
        auto& sim = self->state.sims[s.sim_id];
        ++sim.steps;
        if (checksums) sim.checksum += step_checksum(s.time_step, s.payload->data(), s.bytes());
        ++self->state.steps;
        self->state.bytes += s.bytes();
        return true;
      },
      [](sim_done_atom, std::uint32_t) { return true; },
      [](production_over_atom) {},
      [self, checksums](report_atom) {
        nlohmann::json sims = nlohmann::json::object();
        for (const auto& [id, sim] : self->state.sims)
          sims[std::to_string(id)] = {{"steps", sim.steps},
                                      {"checksum", checksums ? checksum_hex(sim.checksum) : "off"}};
        return nlohmann::json{{"kind", "count"},
                              {"steps", self->state.steps},
                              {"bytes", self->state.bytes},
                              {"simulations", sims}}
            .dump();
      },
  };
}

}  // namespace

sink_actor spawn_counting_sink(caf::actor_system& sys, std::chrono::milliseconds delay,
                               bool checksums) {
  if (delay.count() > 0) return sys.spawn<caf::detached>(counting_sink_fn, delay, checksums);
  return sys.spawn(counting_sink_fn, delay, checksums);
}

}  // namespace melissa
