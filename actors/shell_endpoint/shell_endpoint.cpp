#include "actors/shell_endpoint/shell_endpoint.hpp"

#include <utility>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/publish.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace melissa {
namespace {

struct shell_endpoint_state {
  launcher_query_actor launcher;
  std::string token;
  std::chrono::milliseconds launcher_timeout{default_launcher_timeout};
  static inline const char* name = "shell_endpoint";
};

using endpoint_pointer = shell_endpoint_actor::stateful_pointer<shell_endpoint_state>;
using answer = caf::typed_response_promise<std::string>;

std::string error_json(const std::string& message) {
  return nlohmann::json{{"ok", false}, {"error", message}}.dump();
}

answer answer_now(endpoint_pointer self, std::string json) {
  auto rp = self->make_response_promise<std::string>();
  rp.deliver(std::move(json));
  return rp;
}

// Asks the launcher and relays its JSON. A launcher that fails or stays silent
// still gets the shell an answer in JSON, so the shell never waits forever and
// never has to understand CAF errors.
template <class... Ts>
answer ask_launcher(endpoint_pointer self, const std::string& what, Ts... xs) {
  auto rp = self->make_response_promise<std::string>();
  if (!self->state.launcher) {
    rp.deliver(error_json("the study has no launcher to answer " + what));
    return rp;
  }
  self->request(self->state.launcher, self->state.launcher_timeout, std::move(xs)...)
      .then([rp](std::string& json) mutable { rp.deliver(std::move(json)); },
            [rp, what, self](caf::error& err) mutable {
              rp.deliver(error_json("the launcher did not answer " + what + ": " +
                                    self->system().render(err)));
            });
  return rp;
}

shell_endpoint_actor::behavior_type shell_endpoint_fn(endpoint_pointer self,
                                                      launcher_query_actor launcher,
                                                      std::string token,
                                                      std::chrono::milliseconds launcher_timeout) {
  self->state.launcher = std::move(launcher);
  self->state.token = std::move(token);
  self->state.launcher_timeout = launcher_timeout;
  if (self->state.launcher) {
    // A published actor outlives its launcher otherwise, and an actor that
    // never quits keeps ~actor_system waiting forever.
    self->monitor(self->state.launcher);
    self->set_down_handler([self](caf::down_msg& msg) {
      if (msg.source == self->state.launcher.address()) self->quit(msg.reason);
    });
  }
  return {
      [self](shell_atom, const std::string& token, const std::string& line) -> answer {
        if (!shell::tokens_equal(self->state.token, token)) {
          spdlog::warn("shell endpoint: refused a command with a wrong token");
          return answer_now(self, error_json("wrong token"));
        }
        const auto parsed = shell::parse_command(line);
        if (!parsed.ok()) return answer_now(self, error_json(parsed.error()));
        const auto& cmd = parsed.command();
        switch (cmd.kind) {
          case shell::command_kind::help:
            return answer_now(self,
                              nlohmann::json{{"ok", true}, {"help", shell::help_text()}}.dump());
          case shell::command_kind::status:
            return ask_launcher(self, "status", status_atom::value);
          case shell::command_kind::jobs:
            return ask_launcher(self, "jobs", jobs_atom::value, cmd.state_filter);
          case shell::command_kind::job:
            return ask_launcher(self, "job", job_atom::value, cmd.job_id);
          case shell::command_kind::kill:
            spdlog::info("shell endpoint: kill {}", cmd.job_id);
            return ask_launcher(self, "kill", kill_atom::value, cmd.job_id);
          case shell::command_kind::pause:
            spdlog::info("shell endpoint: pause");
            return ask_launcher(self, "pause", pause_atom::value);
          case shell::command_kind::resume:
            spdlog::info("shell endpoint: resume");
            return ask_launcher(self, "resume", resume_atom::value);
          case shell::command_kind::set:
            spdlog::info("shell endpoint: set {} {}", cmd.key, cmd.value);
            return ask_launcher(self, "set", set_atom::value, cmd.key, cmd.value);
          case shell::command_kind::stop:
            spdlog::info("shell endpoint: stop");
            return ask_launcher(self, "stop", stop_atom::value);
          // --watch is melissa-shell's loop: each refresh is one `train` here.
          case shell::command_kind::train:
            return ask_launcher(self, "train", train_atom::value);
          case shell::command_kind::buffer:
            return ask_launcher(self, "buffer", buffer_atom::value);
          case shell::command_kind::steering:
            return ask_launcher(self, "steering", steering_atom::value);
          case shell::command_kind::stats:
            return ask_launcher(self, "stats", statistics_atom::value);
          case shell::command_kind::checkpoint:
            spdlog::info("shell endpoint: checkpoint");
            return ask_launcher(self, "checkpoint", checkpoint_atom::value, std::string("shell"));
        }
        return answer_now(self, error_json("unhandled command"));
      },
  };
}

}  // namespace

shell_endpoint_actor spawn_shell_endpoint(caf::actor_system& sys, launcher_query_actor launcher,
                                          std::string token,
                                          std::chrono::milliseconds launcher_timeout) {
  return sys.spawn(shell_endpoint_fn, std::move(launcher), std::move(token), launcher_timeout);
}

caf::expected<std::uint16_t> publish_shell_endpoint(const shell_endpoint_actor& endpoint,
                                                    std::uint16_t port, const std::string& host) {
  // reuse = true: a study restarted right after a crash gets its port back
  // even while the old connections sit in TIME_WAIT.
  // Mutual TLS (security/tls.hpp): only holders of the study's key get through.
  return caf::openssl::publish(endpoint, port, host.c_str(), true);
}

void enable_middleman_heartbeats(caf::actor_system_config& cfg, caf::timespan interval,
                                 caf::timespan connection_timeout) {
  cfg.set("middleman.heartbeat-interval", interval);
  cfg.set("middleman.connection-timeout", connection_timeout);
}

}  // namespace melissa
