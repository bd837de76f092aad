#include "actors/statistics_sink/statistics_sink.hpp"

#include <deque>
#include <memory>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace melissa {
namespace {

struct statistics_sink_state {
  std::unique_ptr<statistics_core> core;
  std::string dir;
  std::deque<caf::typed_response_promise<bool>> waiting;  // stores whose reply waits for room
  bool written = false;
  std::string write_error;
  static inline const char* name = "statistics_sink";

  void release() {
    while (!waiting.empty() && !core->over_budget()) {
      waiting.front().deliver(true);
      waiting.pop_front();
    }
  }
};

sink_actor::behavior_type statistics_sink_fn(sink_actor::stateful_pointer<statistics_sink_state> self,
                                             statistics_core_settings settings, std::string dir) {
  self->state.core = std::make_unique<statistics_core>(std::move(settings));
  self->state.dir = std::move(dir);
  return {
      [self](store_atom, step_sample& s) -> caf::result<bool> {
        auto& st = self->state;
        try {
          st.core->fold(s.sim_id, s.field_id, s.time_step, std::move(s.payload));
        } catch (const std::exception& e) {
          return caf::make_error(caf::sec::runtime_error, e.what());
        }
        st.release();
        if (!st.core->over_budget()) return true;
        // Folded in, but held group steps exceed the budget: the credit waits.
        auto rp = self->make_response_promise<bool>();
        st.waiting.push_back(rp);
        return rp;
      },
      [](sim_done_atom, std::uint32_t) { return true; },
      [self](production_over_atom) {
        auto& st = self->state;
        for (auto& rp : st.waiting) rp.deliver(true);
        st.waiting.clear();
        if (st.written) return;
        st.written = true;
        try {
          st.core->write(st.dir);
          spdlog::info("statistics written to {}", st.dir);
        } catch (const std::exception& e) {
          st.write_error = e.what();
          spdlog::error("cannot write the statistics: {}", e.what());
        }
      },
      [self](report_atom) {
        auto& st = self->state;
        auto r = nlohmann::json::parse(st.core->report());
        r["directory"] = st.dir;
        r["written"] = st.written && st.write_error.empty();
        if (!st.write_error.empty()) r["error"] = st.write_error;
        return r.dump();
      },
  };
}

}  // namespace

sink_actor spawn_statistics_sink(caf::actor_system& sys, statistics_core_settings settings,
                                 std::string statistics_dir) {
  return sys.spawn<caf::detached>(statistics_sink_fn, std::move(settings), std::move(statistics_dir));
}

}  // namespace melissa
