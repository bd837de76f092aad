#include "actors/checkpoint_keeper/restart_plan.hpp"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"
#include "actors/checkpoint_keeper/checkpoint_files.hpp"
#include "actors/checkpoint_keeper/state_files.hpp"

namespace melissa::checkpoint {
namespace {

const char* signal_name(int signal) {
  switch (signal) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    default: return nullptr;
  }
}

bool contains(const std::vector<std::uint32_t>& v, std::uint32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

bool ended_abnormally(const server_end& end) {
  if (end.signal) return true;
  if (end.exit_code) return *end.exit_code != 0;
  return end.raw_state != "COMPLETED" && end.raw_state != "Terminated";
}

std::string describe(const server_end& end) {
  if (end.signal) {
    const char* name = signal_name(*end.signal);
    return "signal " + std::to_string(*end.signal) + (name ? std::string(" (") + name + ")" : "");
  }
  if (end.exit_code) return "exit code " + std::to_string(*end.exit_code);
  return "scheduler state " + end.raw_state;
}

const char* to_string(restart_action a) {
  switch (a) {
    case restart_action::none: return "none";
    case restart_action::from_checkpoint: return "from_checkpoint";
    case restart_action::from_scratch: return "from_scratch";
    case restart_action::fail: return "fail";
  }
  return "?";
}

restart_plan plan_server_restart(const restart_inputs& in) {
  restart_plan plan;
  plan.reason = describe(in.end);
  if (!ended_abnormally(in.end)) return plan;  // a clean end: nothing to restart
  if (in.restarts_so_far >= in.max_restarts) {
    plan.action = restart_action::fail;
    plan.message = "the server ended (" + plan.reason + ") after " +
                   std::to_string(in.restarts_so_far) + " restart(s); max_server_restarts = " +
                   std::to_string(in.max_restarts);
    return plan;
  }

  std::optional<chosen_checkpoint> chosen;
  std::error_code missing;
  // No directory, no checkpoint (and none is created: checkpoint_directory would).
  if (std::filesystem::exists(in.checkpoint_dir, missing)) try {
    checkpoint_directory dir(in.checkpoint_dir);
    for (const auto& c : dir.list()) {
      auto v = verify_checkpoint(c.path);
      if (!v.valid) {
        plan.skipped.push_back(c.path + ": " + v.why);
        continue;
      }
      simulation_table_snapshot table;
      try {
        table = simulation_table_from_json(read_text(c.path + "/study/simulation_table.json"));
      } catch (const std::exception& e) {
        plan.skipped.push_back(c.path + ": " + e.what());
        continue;
      }
      plan.action = restart_action::from_checkpoint;
      plan.checkpoint = c.path;
      plan.batch = v.contents.batch;
      for (std::uint32_t sim = 0; sim < table.states.size(); ++sim) {
        if (table.states[sim] == sim_state::complete) plan.complete.push_back(sim);
        else if (table.states[sim] != sim_state::failed && !contains(in.given_up, sim))
          plan.resubmit.push_back(sim);
      }
      // The attempts seen, best effort (a rank's file that does not parse
      // only loses its attempts: the restored server refuses it anyway).
      for (std::uint32_t rank = 0; rank < v.contents.ranks; ++rank) try {
          const auto log = step_log_from_json(
              read_text(c.path + "/rank-" + std::to_string(rank) + "/received_steps.json"));
          for (const auto& [sim, record] : log.simulations())
            if (!record.attempts.empty())
              plan.attempts[sim] = std::max(plan.attempts[sim], *record.attempts.rbegin());
        } catch (const std::exception&) {
        }
      return plan;
    }
  } catch (const std::exception& e) {
    plan.skipped.push_back(in.checkpoint_dir + ": " + e.what());
  }

  if (in.batches_trained == 0) {
    // Nothing trained yet: starting over loses only received steps.
    plan.action = restart_action::from_scratch;
    for (std::uint32_t sim = 0; sim < in.simulations; ++sim)
      if (!contains(in.given_up, sim)) plan.resubmit.push_back(sim);
    return plan;
  }
  plan.action = restart_action::fail;
  plan.message = "the server ended (" + plan.reason + ") and " + in.checkpoint_dir +
                 " holds no valid checkpoint" +
                 (plan.skipped.empty() ? std::string()
                                       : " (" + std::to_string(plan.skipped.size()) + " skipped)") +
                 ": the model trained for " + std::to_string(in.batches_trained) +
                 " batches and the steps received are lost; the study stops";
  return plan;
}

}  // namespace melissa::checkpoint
