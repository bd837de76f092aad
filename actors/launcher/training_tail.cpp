#include "actors/launcher/training_tail.hpp"

#include <cstdio>

#include <nlohmann/json.hpp>

namespace melissa::launcher_detail {

bool in_training_tail(bool trains, bool running, const launcher_core::counts& c,
                      std::uint32_t design_count) {
  return trains && running && design_count > 0 && c.requested >= design_count && c.running == 0 &&
         c.pending == 0 && c.completed + c.failed == c.requested;
}

std::string tail_progress_line(double now, const launcher_core::counts& c, const tail_figures& f) {
  char line[256];
  if (!f.known) {
    std::snprintf(line, sizeof line,
                  "[%7.1f s] training tail: %u/%u completed, %u failed | waiting for rank 0's figures",
                  now, c.completed, c.requested, c.failed);
  } else {
    std::snprintf(line, sizeof line,
                  "[%7.1f s] training tail: %u/%u completed, %u failed | %llu batches, loss %.4g, "
                  "%.0f samples/s",
                  now, c.completed, c.requested, c.failed, static_cast<unsigned long long>(f.batches),
                  f.train_loss, f.samples_per_s);
  }
  return line;
}

bool read_tail_figures(const std::string& rank_json, tail_figures& f) {
  const auto j = nlohmann::json::parse(rank_json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || j.contains("error") || !j.contains("batches")) return false;
  tail_figures out;
  out.known = true;
  out.batches = j.value("batches", std::uint64_t{0});
  out.train_loss = j.contains("train_loss") && j["train_loss"].is_number() ? j["train_loss"].get<double>() : 0.0;
  out.samples_per_s = j.contains("samples_per_s") && j["samples_per_s"].is_number() ? j["samples_per_s"].get<double>() : 0.0;
  out.trainer_state = j.value("state", "");
  f = out;
  return true;
}

}  // namespace melissa::launcher_detail
