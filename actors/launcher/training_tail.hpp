// The training tail: every simulation of the study has ended, so nothing is
// ingested any more, but the trainer goes on with what its buffer holds.
// melissa-run's progress line then shows the training's progress (batches,
// loss, samples/s) instead of "0 steps/s", and the monitor's status says so
// ("training_tail": true). Plain C++ (no CAF, no JSON): the launcher asks
// rank 0 for its figures and keeps the last ones here.
#pragma once

#include <cstdint>
#include <string>

#include "actors/launcher/launcher_core.hpp"

namespace melissa::launcher_detail {

struct tail_figures {
  bool known = false;  // rank 0 answered at least once
  std::uint64_t batches = 0;
  double train_loss = 0;
  double samples_per_s = 0;
  std::string trainer_state;  // "training", "done", ...
};

struct training_tail {
  bool asking = false;  // a request to rank 0 is in flight
  tail_figures figures;
};

// Whether a study is in its training tail: it trains, it is running (not
// stopping), every one of its `design_count` simulations was asked for and has
// completed or failed for good.
bool in_training_tail(bool trains, bool running, const launcher_core::counts& c,
                      std::uint32_t design_count);

// The progress line of the tail, e.g.
// "[  61.0 s] training tail: 20/20 completed, 0 failed | 1234 batches, loss 0.0123, 565 samples/s"
std::string tail_progress_line(double now, const launcher_core::counts& c, const tail_figures& f);

// Reads rank 0's `train` figures (its JSON text, docs/shell.md) into `f`;
// false (f unchanged) when the text has none.
bool read_tail_figures(const std::string& rank_json, tail_figures& f);

}  // namespace melissa::launcher_detail
