#include "actors/dataset_sink/dataset_sink.hpp"

#include <memory>
#include <set>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/dataset_sink/dataset_writer.hpp"

namespace melissa {
namespace {

struct dataset_sink_state {
  std::unique_ptr<dataset_writer> writer;
  std::uint64_t steps = 0;
  std::set<std::uint32_t> warned;  // finished simulations that got steps again
  // After an I/O error (disk full...): why. Nothing is written any more and
  // no store is answered, so no client gets credit and none is blamed.
  std::string error;
  std::vector<caf::typed_response_promise<bool>> held;  // kept: a dropped promise would answer
  sink_failure_listener_actor on_error;
  static inline const char* name = "dataset_sink";
};

using sink_ptr = sink_actor::stateful_pointer<dataset_sink_state>;

// Runs `io`; on failure enters the error state and tells `on_error` once.
template <class F>
bool guarded(sink_ptr self, F io) {
  auto& st = self->state;
  if (!st.error.empty()) return false;
  try {
    io();
    return true;
  } catch (const std::exception& e) {
    st.error = e.what();
    spdlog::error("dataset sink: {}; no more data is written", st.error);
    if (st.on_error) caf::anon_send(st.on_error, sink_failed_atom::value, st.error);
    return false;
  }
}

sink_actor::behavior_type dataset_sink_fn(sink_ptr self, std::string dir,
                                          std::vector<std::string> fields,
                                          std::vector<std::vector<double>> parameters,
                                          sink_failure_listener_actor on_error,
                                          std::vector<std::uint32_t> finished) {
  self->state.on_error = std::move(on_error);
  guarded(self, [&] {
    self->state.writer =
        std::make_unique<dataset_writer>(std::move(dir), std::move(fields), std::move(parameters));
    self->state.writer->mark_finished(finished);
  });
  return {
      [self](store_atom, const step_sample& s) {
        auto& st = self->state;
        auto rp = self->make_response_promise<bool>();
        bool written = true;
        if (!guarded(self, [&] {
              written = st.writer->write_step(s.sim_id, s.field_id, s.time_step, s.f32(), s.count);
            })) {
          st.held.push_back(rp);
          return rp;
        }
        if (written)
          ++st.steps;
        else if (st.warned.insert(s.sim_id).second)
          spdlog::warn("dataset sink: simulation {} is already complete on disk; steps sent for it "
                       "again are dropped, its files are kept",
                       s.sim_id);
        rp.deliver(true);
        return rp;
      },
      [self](sim_done_atom, std::uint32_t sim) {
        auto& st = self->state;
        auto rp = self->make_response_promise<bool>();
        if (guarded(self, [&] { st.writer->finish(sim); }))
          rp.deliver(true);
        else
          st.held.push_back(rp);
        return rp;
      },
      [](production_over_atom) {},
      [self](report_atom) {
        auto& st = self->state;
        nlohmann::json j{{"kind", "dataset"},
                         {"steps", st.steps},
                         {"simulations_finished", st.writer ? st.writer->finished() : 0},
                         {"steps_after_finish", st.writer ? st.writer->steps_after_finish() : 0}};
        if (st.writer) j["dir"] = st.writer->dir();
        if (!st.error.empty()) j["error"] = st.error;
        return j.dump();
      },
  };
}

}  // namespace

sink_actor spawn_dataset_sink(caf::actor_system& sys, std::string dir,
                              std::vector<std::string> field_names,
                              std::vector<std::vector<double>> parameters,
                              sink_failure_listener_actor on_error,
                              std::vector<std::uint32_t> finished) {
  return sys.spawn<caf::detached>(dataset_sink_fn, std::move(dir), std::move(field_names),
                                  std::move(parameters), std::move(on_error), std::move(finished));
}

}  // namespace melissa
