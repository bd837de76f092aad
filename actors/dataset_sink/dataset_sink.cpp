#include "actors/dataset_sink/dataset_sink.hpp"

#include <memory>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/dataset_sink/dataset_writer.hpp"

namespace melissa {
namespace {

struct dataset_sink_state {
  std::unique_ptr<dataset_writer> writer;
  std::uint64_t steps = 0;
  static inline const char* name = "dataset_sink";
};

sink_actor::behavior_type dataset_sink_fn(sink_actor::stateful_pointer<dataset_sink_state> self,
                                          std::string dir, std::vector<std::string> fields,
                                          std::vector<std::vector<double>> parameters) {
  self->state.writer =
      std::make_unique<dataset_writer>(std::move(dir), std::move(fields), std::move(parameters));
  return {
      [self](store_atom, const step_sample& s) {
        self->state.writer->write_step(s.sim_id, s.field_id, s.time_step, s.f32(), s.count);
        ++self->state.steps;
        return true;
      },
      [self](sim_done_atom, std::uint32_t sim) {
        self->state.writer->finish(sim);
        return true;
      },
      [](production_over_atom) {},
      [self](report_atom) {
        auto& w = *self->state.writer;
        return nlohmann::json{{"kind", "dataset"},
                              {"dir", w.dir()},
                              {"steps", self->state.steps},
                              {"simulations_finished", w.finished()}}
            .dump();
      },
  };
}

}  // namespace

sink_actor spawn_dataset_sink(caf::actor_system& sys, std::string dir,
                              std::vector<std::string> field_names,
                              std::vector<std::vector<double>> parameters) {
  return sys.spawn<caf::detached>(dataset_sink_fn, std::move(dir), std::move(field_names),
                                  std::move(parameters));
}

}  // namespace melissa
