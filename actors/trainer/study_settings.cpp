#include "actors/trainer/study_settings.hpp"

namespace melissa {

sample_encoder encoder_of(const config::study_config& study) {
  sample_encoder e;
  for (const auto& b : study.parameters.bounds) {
    e.lo.push_back(b.lo);
    e.hi.push_back(b.hi);
  }
  e.time_scale = study.training.time_steps;
  return e;
}

trainer_settings trainer_settings_of(const config::study_config& study,
                                     const config::field_config& field) {
  const auto& t = study.training;
  trainer_settings s;
  s.model.input_dim = encoder_of(study).input_dim();
  s.model.hidden = t.hidden;
  s.model.activation = t.activation;
  s.model.torchscript = t.model;
  s.model.output_dim = static_cast<std::uint32_t>(field.size);
  s.optimizer.learning_rate = t.learning_rate;
  s.optimizer.halve_every_batches = t.lr_halving_batches;
  s.optimizer.min_learning_rate = t.min_learning_rate;
  s.optimizer.weight_decay = t.weight_decay;
  s.optimizer.clip_grad_norm = t.clip_grad_norm;
  s.output.running = t.output == config::output_scaling::running;
  s.output.mean = t.output_mean;
  s.output.std = t.output_std;
  // The same seed on every rank: the ranks start from the same weights.
  s.seed = study.study.seed;
  s.threads = static_cast<int>(t.threads);
  s.device = t.device;  // the rank's local rank is the caller's to set

  return s;
}

}  // namespace melissa
