#include "actors/checkpoint_keeper/server_restore.hpp"

#include <filesystem>
#include <cmath>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "actors/checkpoint_keeper/checkpoint_files.hpp"
#include "actors/checkpoint_keeper/checkpoint_manifest.hpp"
#include "actors/checkpoint_keeper/state_files.hpp"

namespace melissa::checkpoint {
namespace {

step_log read_received(const std::string& dir, std::uint32_t rank) {
  const auto path = dir + "/rank-" + std::to_string(rank) + "/received_steps.json";
  try {
    return step_log_from_json(read_text(path));
  } catch (const std::runtime_error& e) {
    const std::string why = e.what();
    throw std::runtime_error(why.rfind(path, 0) == 0 ? why : path + ": " + why);
  }
}

}  // namespace

std::string study_state_to_json(double elapsed_s) {
  return nlohmann::json{{"elapsed_s", elapsed_s}}.dump();
}

double study_state_elapsed(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("elapsed_s") || !j["elapsed_s"].is_number())
    throw std::runtime_error("no number \"elapsed_s\"");
  const double elapsed = j["elapsed_s"].get<double>();
  if (!std::isfinite(elapsed) || elapsed < 0)
    throw std::runtime_error("\"elapsed_s\" is not a time: " + j["elapsed_s"].dump());
  return elapsed;
}

server_restore read_server_restore(const std::string& dir, std::uint32_t rank, std::uint32_t ranks) {
  const auto v = verify_checkpoint(dir);
  if (!v.valid) throw std::runtime_error(dir + " does not verify: " + v.why);
  if (v.contents.ranks != ranks)
    throw std::runtime_error(dir + " holds " + std::to_string(v.contents.ranks) +
                             " server rank(s); this server has " + std::to_string(ranks));
  server_restore out;
  out.dir = dir;
  out.batch = v.contents.batch;
  out.received = read_received(dir, rank);
  if (rank != 0) return out;
  // Complete: done in every rank's received steps (each rank holds its
  // share of every simulation's steps).
  std::vector<step_log> logs;
  for (std::uint32_t r = 0; r < ranks; ++r) logs.push_back(r == rank ? out.received : read_received(dir, r));
  for (const auto& [sim, record] : out.received.simulations()) {
    bool done = record.done;
    for (const auto& log : logs) {
      const auto it = log.simulations().find(sim);
      done = done && it != log.simulations().end() && it->second.done;
    }
    if (done) out.complete.push_back(sim);
  }
  const auto state_path = dir + "/study/study_state.json";
  if (std::filesystem::exists(state_path)) {
    try {
      out.elapsed_s = study_state_elapsed(read_text(state_path));
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(state_path + ": " + e.what());
    }
  }
  // Read as text here; the steering parses it (breed_steering::restore_state).
  const auto breed_path = dir + "/study/breed_state.json";
  if (std::filesystem::exists(breed_path)) out.breed_state = read_text(breed_path);
  const auto table_path = dir + "/study/simulation_table.json";
  if (std::filesystem::exists(table_path)) {
    try {
      out.table = simulation_table_from_json(read_text(table_path));
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(table_path + ": " + e.what());
    }
    std::vector<std::uint32_t> both;
    for (auto sim : out.complete)
      if (sim < out.table->states.size() && out.table->states[sim] == sim_state::complete)
        both.push_back(sim);
    for (auto& state : out.table->states)
      if (state == sim_state::complete) state = sim_state::submitted;
    for (auto sim : both) out.table->states[sim] = sim_state::complete;
    out.complete = std::move(both);
  }
  return out;
}

}  // namespace melissa::checkpoint
