// The study file's [parameters] and [training] as the trainer's settings, in
// one place: the online server and melissa-train-offline must build the same
// model from the same inputs, or the offline baseline compares nothing.
// Plain C++ (no torch, no CAF).
#pragma once

#include "actors/trainer/trainer_core.hpp"
#include "config/study.hpp"
#include "messages/sample_encoding.hpp"

namespace melissa {

// Parameters mapped from their bounds to [0, 1], time divided by training.time_steps.
sample_encoder encoder_of(const config::study_config& study);

// Model (inputs from encoder_of, outputs = `field`'s values; the built-in
// MLP or training.model), optimizer, output normalization, seed
// (study.seed), threads and device of the study.
trainer_settings trainer_settings_of(const config::study_config& study,
                                     const config::field_config& field);

}  // namespace melissa
