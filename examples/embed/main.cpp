// Embedding Melissa's training actors in another CAF application: no
// launcher, no server process, no client connection. This program spawns a
// training buffer (a Reservoir) and a trainer, feeds the buffer from its own
// source actor (a made-up "simulation": a damped wave whose amplitude and
// frequency are the parameters), then waits for training to end.
//
//   embed OUTPUT_DIR        writes OUTPUT_DIR/metrics/ and OUTPUT_DIR/model/
//
// Build against an installed Melissa (pkg-config finds melissa-actors.pc):
//   c++ -std=c++17 main.cpp $(pkg-config --cflags --libs melissa-actors) -o embed
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/reservoir/reservoir.hpp"
#include "actors/trainer/trainer.hpp"

namespace {

constexpr std::uint32_t simulations = 40;
constexpr std::uint32_t steps = 25;
constexpr std::uint32_t field_size = 32;

// The "simulation": field value i at step t for parameters (a, f) in [0, 1]^2.
std::vector<float> wave(double a, double f, std::uint32_t t) {
  std::vector<float> v(field_size);
  for (std::uint32_t i = 0; i < field_size; ++i)
    v[i] = static_cast<float>((0.5 + a) * std::sin(3.14159 * (1 + 2 * f) * i / field_size) *
                              std::exp(-2.0 * t / steps));
  return v;
}

std::vector<double> parameters_of(std::uint32_t sim) {
  // A fixed low-discrepancy-ish design: reproducible without a sampler.
  return {std::fmod(sim * 0.618034, 1.0), std::fmod(sim * 0.414214, 1.0)};
}

melissa::step_sample make_step(std::uint32_t sim, std::uint32_t t) {
  const auto p = parameters_of(sim);
  const auto values = wave(p[0], p[1], t);
  // melissa::payload_bytes: a std::vector of bytes left uninitialised (filled next).
  auto bytes = std::make_shared<melissa::payload_bytes>(values.size() * sizeof(float));
  std::memcpy(bytes->data(), values.data(), bytes->size());
  melissa::step_sample s;
  s.sim_id = sim;
  s.time_step = t;
  s.data_type = melissa::wire::dtype::f32;
  s.count = values.size();
  s.payload = std::move(bytes);
  return s;
}

// The source actor: stores every step, one at a time (the reply to `store`
// comes when the buffer has room: the buffer paces the source), then tells
// the buffer that production is over.
caf::behavior source(caf::event_based_actor* self, melissa::reservoir_actor buffer) {
  auto next = std::make_shared<std::function<void(std::uint32_t, std::uint32_t)>>();
  *next = [self, buffer, next](std::uint32_t sim, std::uint32_t t) {
    if (sim == simulations) {
      self->send(buffer, melissa::production_over_atom::value);
      return self->quit();
    }
    self->request(buffer, caf::infinite, melissa::store_atom::value, make_step(sim, t))
        .then([self, buffer, next, sim, t](bool) {
          if (t + 1 < steps) return (*next)(sim, t + 1);
          self->request(buffer, caf::infinite, melissa::sim_done_atom::value, sim)
              .then([next, sim](bool) { (*next)(sim + 1, 0); });
        });
  };
  (*next)(0, 0);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: embed OUTPUT_DIR\n";
    return 2;
  }
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};

  melissa::sample_encoder encoder;
  encoder.lo = {0, 0};
  encoder.hi = {1, 1};
  encoder.time_scale = steps;

  melissa::reservoir_settings buffer;
  buffer.buffer.policy = melissa::buffer_policy::reservoir;
  buffer.buffer.capacity = 300;
  buffer.buffer.threshold = 50;
  buffer.encoder = encoder;
  buffer.parameters_of = parameters_of;
  auto reservoir = melissa::spawn_reservoir(sys, buffer);

  melissa::trainer_actor_settings training;
  training.core.model.input_dim = encoder.input_dim();
  training.core.model.hidden = {32, 32};
  training.core.model.activation = "tanh";
  training.core.model.output_dim = field_size;
  training.core.optimizer.learning_rate = 3e-3;
  training.core.output.running = false;  // the wave is already of order 1
  training.core.threads = 1;
  training.batch_size = 8;
  training.metrics_every = 20;
  training.validation_every = 100;
  training.output_dir = argv[1];
  // Validation: two simulations the buffer never sees.
  auto validation = std::make_shared<melissa::training_batch>();
  validation->input_dim = encoder.input_dim();
  validation->output_dim = field_size;
  for (std::uint32_t sim : {1000u, 1001u})
    for (std::uint32_t t = 0; t < steps; ++t) {
      const auto p = parameters_of(sim);
      std::vector<float> in(encoder.input_dim());
      encoder.encode(p.data(), t, in.data());
      const auto out = wave(p[0], p[1], t);
      validation->inputs.insert(validation->inputs.end(), in.begin(), in.end());
      validation->targets.insert(validation->targets.end(), out.begin(), out.end());
      validation->sim_ids.push_back(sim);
      validation->time_steps.push_back(t);
      ++validation->size;
    }
  training.validation = validation;
  auto trainer = melissa::spawn_trainer(sys, training, reservoir);

  sys.spawn(source, reservoir);

  caf::scoped_actor self{sys};
  int status = 1;
  self->request(trainer, caf::infinite, melissa::await_training_atom::value)
      .receive(
          [&](const std::string& summary) {
            std::cout << summary << std::endl;
            status = 0;
          },
          [&](const caf::error& err) { std::cerr << "training failed: " << sys.render(err) << "\n"; });
  self->send_exit(trainer, caf::exit_reason::user_shutdown);
  self->send_exit(reservoir, caf::exit_reason::user_shutdown);
  return status;
}
