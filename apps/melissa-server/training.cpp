#include "apps/melissa-server/training.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <caf/all.hpp>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/checkpoint_keeper/rank_checkpoints.hpp"
#include "actors/checkpoint_keeper/rank_parts.hpp"
#include "actors/checkpoint_keeper/server_restore.hpp"
#include "actors/reservoir/reservoir.hpp"
#include "actors/steering/steering.hpp"
#include "actors/trainer/study_settings.hpp"
#include "actors/trainer/dataset/dataset_reader.hpp"
#include "actors/trainer/gradient_group.hpp"
#include "actors/trainer/trainer.hpp"

namespace melissa {

// The wiring below, checked at compile time: the buffer is the sink the
// aggregator and coordinator use; the trainer hears the restarts of the
// buffer and the steering; the buffer's on_sim_done reaches the steering.
static_assert(converts_to_v<reservoir_actor, sink_actor>);
static_assert(converts_to_v<trainer_actor, restart_listener_actor>);
static_assert(!converts_to_v<sink_actor, reservoir_actor>);

namespace {

buffer_policy policy_of(config::buffer_policy p) {
  switch (p) {
    case config::buffer_policy::fifo: return buffer_policy::fifo;
    case config::buffer_policy::firo: return buffer_policy::firo;
    case config::buffer_policy::reservoir: break;
  }
  return buffer_policy::reservoir;
}

// Rank 0 publishes the c10d store's address in a file of the output
// directory (shared by the ranks on a cluster); the others wait for it. The
// file name carries the run token so that a previous run's file is never read.
// The group all-reduces with NCCL when the ranks train on GPUs, Gloo otherwise.
std::function<std::shared_ptr<gradient_group>()> group_joiner(const training_rank& where,
                                                              const device_choice& device) {
  if (where.ranks <= 1) return {};
  const auto path = where.output_dir + "/.c10d-" + where.run_token;
  return [where, path, device]() -> std::shared_ptr<gradient_group> {
    gradient_group_options options;
    options.hostname = where.host;
    options.backend = device.cuda ? "nccl" : "gloo";
    options.cuda_device = device.index;
    const int rank = static_cast<int>(where.rank), size = static_cast<int>(where.ranks);
    if (where.rank == 0) {
      options.on_listening = [path, host = where.host](std::uint16_t port) {
        const auto tmp = path + ".tmp";
        std::ofstream(tmp) << host << ":" << port << "\n";
        std::filesystem::rename(tmp, path);
      };
      auto group = gradient_group::over_tcp(where.host, 0, rank, size, options);
      std::filesystem::remove(path);
      return group;
    }
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    std::string address;
    while (address.empty()) {
      std::ifstream in(path);
      if (in) std::getline(in, address);
      if (!address.empty()) break;
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("rank 0 never published its c10d store in " + path);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const auto colon = address.rfind(':');
    const auto port = static_cast<std::uint16_t>(std::stoul(address.substr(colon + 1)));
    return gradient_group::over_tcp(address.substr(0, colon), port, rank, size, options);
  };
}

// The design's parameters of simulation `sim` (an immutable copy per user).
// Breed's changes live in rank 0's simulation table (the coordinator owns
// it): the coordinator sends them to the training buffer and answers the
// steering.
std::function<std::vector<double>(std::uint32_t)> design_row(config::design_matrix design) {
  return [design = std::move(design)](std::uint32_t sim) {
    if (sim >= design.size())
      throw std::out_of_range("simulation " + std::to_string(sim) + " is not in the design");
    return design[sim];
  };
}

// A handle filled once the steering child has started (the buffer is
// started before it and reports completed simulations to it).
struct steering_slot {
  std::mutex mutex;
  steering_actor handle;
  void set(steering_actor a) {
    std::lock_guard<std::mutex> lock(mutex);
    handle = std::move(a);
  }
  steering_actor get() {
    std::lock_guard<std::mutex> lock(mutex);
    return handle;
  }
};

steering_settings steering_settings_of(const config::study_config& study,
                                       const config::design_matrix& design, bool under_launcher) {
  steering_settings s;
  const auto& b = study.breed;
  s.breed.period = b.period;
  s.breed.window = b.window;
  s.breed.sigma = b.sigma;
  s.breed.r_start = b.r_start;
  s.breed.r_end = b.r_end;
  s.breed.r_steps = b.r_steps;
  s.breed.seed = study.study.seed ^ 0xB5EEDull;  // not the design's stream
  s.breed.bounds = study.parameters.bounds;
  if (under_launcher) {
    // Rank 0's coordinator owns the simulation table and introduces itself
    // (owner_atom): submissions, parameters and changes go through it.
    s.owned = true;
    return s;
  }
  // Standalone: whoever starts the clients has their parameters already.
  const auto count = static_cast<std::uint32_t>(study.parameters.count);
  s.parameters_of = design_row(design);
  s.submissions = [count] { return submission_view{count, 0, count}; };
  s.apply = [](parameter_changes) {};
  return s;
}

// Rank 0's extras (docs/checkpoints.md): the study's elapsed time and
// Breed's state. Breed is copied on the trainer's thread once the steering
// has recorded the losses of the batches trained so far (at most 0.5 s of
// waiting), so that the copy matches the checkpoint's batch; the JSON is made
// on the writer's thread. When Breed's count lags for good (a restored
// state that lagged, a step without a batch on this rank), later
// checkpoints expect the same lag instead of waiting each time.
std::function<std::vector<checkpoint::checkpoint_part>(std::uint64_t)> rank0_extras(
    std::function<double()> elapsed, std::shared_ptr<breed_box> box) {
  if (!elapsed && !box) return {};
  auto lag = std::make_shared<std::uint64_t>(0);
  return [elapsed, box, lag](std::uint64_t batch) {
    std::vector<checkpoint::checkpoint_part> parts;
    if (elapsed)
      parts.push_back(checkpoint::text_part("study/study_state.json",
                                            checkpoint::study_state_to_json(elapsed())));
    if (!box) return parts;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    const std::uint64_t target = batch > *lag ? batch - *lag : 0;
    std::optional<breed_steering> copy;
    while (!copy) {
      {
        std::lock_guard<std::mutex> lock(box->mutex);
        if (!box->breed) return parts;
        if (box->breed->batches() >= target || std::chrono::steady_clock::now() > deadline)
          copy = *box->breed;
      }
      if (!copy) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (copy->batches() < target) *lag = batch - copy->batches();
    if (copy->batches() != batch)
      spdlog::warn("checkpoint at batch {}: Breed's state is at batch {}", batch, copy->batches());
    parts.push_back([breed = std::make_shared<const breed_steering>(std::move(*copy))](
                        checkpoint::staging& s) {
      checkpoint::text_part("study/breed_state.json", breed->state_json())(s);
    });
    return parts;
  };
}

// [checkpoint]: this rank's trainer checkpoints itself between two steps
// (docs/checkpoints.md): the trainer's part, then at the trainer's next
// batch request the buffer's cut (its samples, the steps it received) and
// on rank 0 the simulation table. Not yet with several ranks (their cut and
// commit need rank 0's coordination).
void add_checkpoints(trainer_actor_settings& trainer, reservoir_settings& buffer,
                     const config::study_config& study, const training_rank& where,
                     std::shared_ptr<breed_box> breed = nullptr) {
  const auto& c = study.checkpoint;
  if (c.every_batches == 0 && c.every_seconds <= 0) return;
  if (where.ranks > 1) {
    spdlog::warn("[checkpoint]: checkpoints with server.ranks > 1 are not written yet");
    trainer.checkpoint_now = [](const trainer_core&, const std::string&) {
      std::promise<std::string> refused;
      refused.set_value(R"({"error": "checkpoints with server.ranks > 1 are not written yet"})");
      return std::optional<std::future<std::string>>(refused.get_future());
    };
    return;
  }
  checkpoint::rank_checkpoint_settings s;
  s.dir = c.dir.empty() ? where.output_dir + "/checkpoints" : c.dir;
  s.keep = c.keep;
  s.every_batches = c.every_batches;
  s.every_seconds = c.every_seconds;
  s.study = study.study.name;
  s.rank = where.rank;
  s.ranks = where.ranks;
  s.buffer = c.buffer;
  s.start_batch = where.restored_batch;
  s.table = where.table;
  s.extras = rank0_extras(where.rank == 0 ? where.elapsed : nullptr, std::move(breed));
  const auto now = [] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  };
  std::filesystem::create_directories(s.dir);
  auto keeper = std::make_shared<checkpoint::rank_checkpoints>(s, now());
  const auto rank = where.rank;
  trainer.at_step_boundary = [keeper, now, rank](const trainer_core& core, bool ended) {
    keeper->at_step_boundary(core.batches(), now(), ended, [&] {
      checkpoint::rank_snapshot snap;
      snap.rank = rank;
      snap.trainer = core.snapshot();
      return snap;
    });
  };
  trainer.checkpoint_now = [keeper, now, rank](const trainer_core& core, const std::string& reason)
      -> std::optional<std::future<std::string>> {
    auto answer = std::make_shared<std::promise<std::string>>();
    auto future = answer->get_future();
    const bool taken = keeper->at_step_boundary(
        core.batches(), now(), false,
        [&] {
          checkpoint::rank_snapshot snap;
          snap.rank = rank;
          snap.trainer = core.snapshot();
          return snap;
        },
        reason,
        [answer](const checkpoint::write_result& r) {
          answer->set_value(r.ok ? nlohmann::json{{"path", r.path}, {"batch", r.batch}}.dump()
                                 : nlohmann::json{{"error", r.error}}.dump());
        });
    if (!taken) return std::nullopt;
    return future;
  };
  trainer.checkpoint_due = [keeper, now](std::uint64_t batches) {
    return keeper->due(batches, now());
  };
  trainer.checkpoint_figures = [keeper] { return keeper->figures().dump(); };
  trainer.checkpoint_pause = [keeper] { return keeper->take_pauses(); };
  buffer.at_batch_request = [handoff = keeper->handoff()](
                                const std::function<buffer_snapshot()>& snapshot,
                                const step_log& received, bool production_over) {
    handoff->offer(snapshot, received, production_over);
  };
}

}  // namespace

bool training_available() { return true; }

void add_training_children(std::vector<child_spec>& tree, const config::study_config& study,
                           const config::design_matrix& design, const training_rank& where) {
  const auto& t = study.training;
  const auto field = std::find_if(study.fields.begin(), study.fields.end(),
                                  [&](const config::field_config& f) { return f.name == t.field; });
  if (field == study.fields.end())
    throw std::runtime_error("training.field: no field is named \"" + t.field + "\"");

  reservoir_settings buffer;
  buffer.buffer.policy = policy_of(study.buffer.policy);
  buffer.buffer.capacity = study.buffer.capacity;
  buffer.buffer.threshold = study.buffer.threshold;
  // Each rank draws its own batches; the same study seed replays the same draws.
  buffer.buffer.seed = study.study.seed * 1000003 + where.rank;
  buffer.field_id = static_cast<std::uint32_t>(field - study.fields.begin());
  buffer.encoder = encoder_of(study);
  buffer.parameters_of = design_row(design);
  const bool steering = study.breed.enabled && where.rank == 0;
  auto slot = std::make_shared<steering_slot>();
  // Breed lives here, shared by the steering and the checkpoints; with
  // --restore it starts from the checkpoint's state (a state that does not
  // fit stops the server now: exit 2).
  std::shared_ptr<breed_box> breed;
  if (steering) {
    breed = std::make_shared<breed_box>();
    breed->breed = std::make_shared<breed_steering>(
        steering_settings_of(study, design, static_cast<bool>(where.launcher)).breed);
    if (!where.restored_breed_state.empty()) {
      try {
        breed->breed->restore_state(where.restored_breed_state);
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(where.restore_dir + "/study/breed_state.json: " + e.what());
      }
      spdlog::info("Breed restored: {} batches recorded, {} resamplings",
                   breed->breed->batches(), breed->breed->status().resamplings);
    }
  }
  if (steering)
    buffer.on_sim_done = [slot](std::uint32_t sim, std::uint32_t steps) {
      if (auto s = slot->get()) caf::anon_send(s, sim_done_atom::value, sim, steps);
    };

  trainer_actor_settings trainer;
  trainer.core = trainer_settings_of(study, *field);
  trainer.core.local_rank = local_rank_from_environment(static_cast<int>(where.rank));
  // The model and the device are checked now, before this rank registers
  // with the launcher: a model that cannot train stops the study before any
  // simulation starts (std::invalid_argument naming the file: exit 2).
  const model_report model = check_model(trainer.core);
  const device_choice device = choose_device(model.device, trainer.core.local_rank);
  spdlog::info("rank {}: training {} on {} ({})", where.rank, model.description, model.device,
               model.device_reason);
  trainer.core.device = model.device;  // chosen once: the trainer does not choose again
  trainer.batch_size = t.batch_size;
  trainer.rank = where.rank;
  trainer.ranks = where.ranks;
  trainer.metrics_every = t.metrics_every;
  trainer.validation_every = t.validation_every;
  trainer.output_dir = where.output_dir;
  trainer.join_group = group_joiner(where, device);
  if (!t.validation_dir.empty() && where.rank == 0) {
    trainer.validation = load_dataset(t.validation_dir, t.field, buffer.encoder);
    spdlog::info("validation set: {} samples from {}", trainer.validation->size, t.validation_dir);
  }

  if (!where.restore_dir.empty()) {
    // Verified by main; a part that cannot be read stops this rank (exit 2).
    auto part = checkpoint::read_rank_part(where.restore_dir, where.rank);
    if (part.trainer_dir.empty())
      throw std::runtime_error(where.restore_dir + " holds no trainer part for rank " +
                               std::to_string(where.rank));
    trainer.restore_dir = part.trainer_dir;
    auto restored = std::make_shared<restored_buffer>();
    restored->buffer = std::move(part.buffer);
    restored->pending = std::move(part.pending);
    restored->received = std::move(part.received);
    buffer.restored = std::move(restored);
  }

  add_checkpoints(trainer, buffer, study, where, breed);

  tree.push_back({"sink", restart_policy::permanent,
                  [buffer](caf::actor_system& s, const child_lookup&) {
                    // The aggregator and the coordinator hold it as a sink_actor.
                    const sink_actor as_sink = spawn_reservoir(s, buffer);
                    return caf::actor_cast<caf::actor>(as_sink);
                  },
                  {}});
  if (steering) {
    auto settings = steering_settings_of(study, design, static_cast<bool>(where.launcher));
    settings.box = breed;
    tree.push_back({"steering", restart_policy::permanent,
                    [settings, slot](caf::actor_system& s, const child_lookup&) {
                      auto actor = spawn_steering(s, settings);
                      slot->set(actor);
                      return caf::actor_cast<caf::actor>(actor);
                    },
                    {}});
  }
  tree.push_back({"trainer", restart_policy::permanent,
                  [trainer](caf::actor_system& s, const child_lookup& find) {
                    // The supervisor's lookup is untyped: cast once, here.
                    auto settings = trainer;
                    settings.steering = caf::actor_cast<steering_actor>(find("steering"));
                    const trainer_actor actor =
                        spawn_trainer(s, settings, caf::actor_cast<reservoir_actor>(find("sink")));
                    return caf::actor_cast<caf::actor>(actor);
                  },
                  // Its buffer and (rank 0 with Breed) the steering: a restart
                  // of either reaches it as (restarted_atom, name, handle).
                  steering ? std::vector<std::string>{"sink", "steering"}
                           : std::vector<std::string>{"sink"}});
}

}  // namespace melissa
