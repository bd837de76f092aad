#include "actors/monitor/live_source.hpp"

#include <utility>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace melissa::monitor {
namespace {

class live_source final : public study_source {
 public:
  live_source(caf::actor_system& sys, launcher_query_actor launcher, std::chrono::milliseconds timeout)
      : sys_(sys), launcher_(std::move(launcher)), timeout_(timeout) {}

  bool live() const override { return true; }
  std::string status() override { return ask("status", status_atom::value); }
  std::string jobs(const std::string& filter) override { return ask("jobs", jobs_atom::value, filter); }
  std::string job(std::uint32_t id) override { return ask("job", job_atom::value, id); }
  std::string kill(std::uint32_t id) override {
    spdlog::info("monitor: kill {}", id);
    return ask("kill", kill_atom::value, id);
  }
  std::string pause() override {
    spdlog::info("monitor: pause");
    return ask("pause", pause_atom::value);
  }
  std::string resume() override {
    spdlog::info("monitor: resume");
    return ask("resume", resume_atom::value);
  }
  std::string set(const std::string& key, const std::string& value) override {
    spdlog::info("monitor: set {} {}", key, value);
    return ask("set", set_atom::value, key, value);
  }
  std::string training() override { return ask("train", train_atom::value); }
  std::string buffer() override { return ask("buffer", buffer_atom::value); }
  std::string steering() override { return ask("steering", steering_atom::value); }

 private:
  // One blocking request from this (HTTP) thread; a scoped actor per call, so
  // that concurrent requests never share a mailbox.
  template <class... Ts>
  std::string ask(const char* what, Ts&&... xs) {
    std::string out;
    caf::scoped_actor self{sys_};
    self->request(launcher_, timeout_, std::forward<Ts>(xs)...)
        .receive([&](std::string& text) { out = std::move(text); },
                 [&](caf::error& err) {
                   out = nlohmann::json{{"ok", false},
                                        {"error", std::string("the launcher did not answer ") + what +
                                                      ": " + sys_.render(err)}}
                             .dump();
                 });
    return out;
  }

  caf::actor_system& sys_;
  launcher_query_actor launcher_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

std::shared_ptr<study_source> make_live_source(caf::actor_system& sys, launcher_query_actor launcher,
                                               std::chrono::milliseconds timeout) {
  return std::make_shared<live_source>(sys, std::move(launcher), timeout);
}

}  // namespace melissa::monitor
