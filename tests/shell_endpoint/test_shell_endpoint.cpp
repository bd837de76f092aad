// The shell endpoint in process: token check, forwarding to the launcher,
// answers of its own (help, parse errors), a silent launcher, and its end.
#include <doctest/doctest.h>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/shell_endpoint/shell_endpoint.hpp"

using namespace melissa;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

// Tells `recorder` what it was asked, and answers {"ok": true, "asked": ...}.
launcher_query_actor::behavior_type recording_launcher(launcher_query_actor::pointer self,
                                                       caf::actor recorder) {
  auto reply = [self, recorder](std::string what) {
    caf::anon_send(recorder, what);
    return json{{"ok", true}, {"asked", what}}.dump();
  };
  return {
      [=](status_atom) { return reply("status"); },
      [=](jobs_atom, const std::string& filter) { return reply("jobs '" + filter + "'"); },
      [=](job_atom, std::uint32_t id) { return reply("job " + std::to_string(id)); },
      [=](kill_atom, std::uint32_t id) { return reply("kill " + std::to_string(id)); },
      [=](pause_atom) { return reply("pause"); },
      [=](resume_atom) { return reply("resume"); },
      [=](set_atom, const std::string& k, const std::string& v) { return reply("set " + k + "=" + v); },
      [=](stop_atom) { return reply("stop"); },
      [=](train_atom) { return reply("train"); },
      [=](buffer_atom) { return reply("buffer"); },
      [=](steering_atom) { return reply("steering"); },
      [=](statistics_atom) { return reply("stats"); },
      [=](checkpoint_atom, const std::string& reason) { return reply("checkpoint " + reason); },
  };
}

// Never answers status (the promise is kept, never delivered); answers the rest.
struct silent_state {
  std::vector<caf::typed_response_promise<std::string>> held;
  static inline const char* name = "silent_launcher";
};

launcher_query_actor::behavior_type silent_launcher(
    launcher_query_actor::stateful_pointer<silent_state> self) {
  const auto no = [] { return std::string(R"({"ok": false, "error": "stub"})"); };
  return {
      [self](status_atom) {
        auto rp = self->make_response_promise<std::string>();
        self->state.held.push_back(rp);
        return rp;
      },
      [no](jobs_atom, const std::string&) { return no(); },
      [no](job_atom, std::uint32_t) { return no(); },
      [no](kill_atom, std::uint32_t) { return no(); },
      [no](pause_atom) { return no(); },
      [no](resume_atom) { return no(); },
      [no](set_atom, const std::string&, const std::string&) { return no(); },
      [no](stop_atom) { return no(); },
      [no](train_atom) { return no(); },
      [no](buffer_atom) { return no(); },
      [no](steering_atom) { return no(); },
      [no](statistics_atom) { return no(); },
      [no](checkpoint_atom, const std::string&) { return no(); },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  caf::scoped_actor recorder{sys};
  launcher_query_actor launcher;
  shell_endpoint_actor endpoint;

  fixture() {
    launcher = sys.spawn(recording_launcher, caf::actor_cast<caf::actor>(recorder));
    endpoint = spawn_shell_endpoint(sys, launcher, "s3cret");
  }
  ~fixture() {
    self->send_exit(launcher, caf::exit_reason::user_shutdown);
    self->send_exit(endpoint, caf::exit_reason::user_shutdown);
  }

  json ask(const std::string& token, const std::string& line,
           const shell_endpoint_actor& to = {}) {
    json answer;
    self->request(to ? to : endpoint, 5s, shell_atom::value, token, line)
        .receive([&](const std::string& text) { answer = json::parse(text); },
                 [&](const caf::error& err) { FAIL("no answer: " << sys.render(err)); });
    return answer;
  }

  // What the launcher was asked, or "" if nothing within `wait`.
  std::string asked(std::chrono::milliseconds wait = 1000ms) {
    std::string what;
    recorder->receive([&](const std::string& s) { what = s; }, caf::after(wait) >> [] {});
    return what;
  }
};

}  // namespace

TEST_CASE_FIXTURE(fixture, "each command reaches the launcher and its answer comes back as is") {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"status", "status"},           {"jobs", "jobs ''"},
      {"jobs Running", "jobs 'running'"}, {"job 12", "job 12"},
      {"kill 3", "kill 3"},           {"pause", "pause"},
      {"resume", "resume"},           {"set job_limit 007", "set job_limit=7"},
      {"stop", "stop"},               {"train", "train"},
      {"TRAIN --watch 5", "train"},   {"buffer", "buffer"},
      {"steering", "steering"},       {"checkpoint", "checkpoint shell"}};
  for (const auto& [line, expected] : cases) {
    INFO(line);
    const auto answer = ask("s3cret", line);
    CHECK(answer == json{{"ok", true}, {"asked", expected}});
    CHECK(asked() == expected);
  }
}

TEST_CASE_FIXTURE(fixture, "a wrong token is refused and the launcher hears nothing") {
  for (const char* token : {"", "s3cre", "s3cret!", "S3CRET", "wrong"}) {
    INFO(token);
    CHECK(ask(token, "stop") == json{{"ok", false}, {"error", "wrong token"}});
    CHECK(ask(token, "help") == json{{"ok", false}, {"error", "wrong token"}});
  }
  CHECK(asked(200ms).empty());
}

TEST_CASE_FIXTURE(fixture, "help and lines that do not parse are answered by the endpoint") {
  CHECK(ask("s3cret", "help") == json{{"ok", true}, {"help", shell::help_text()}});
  CHECK(ask("s3cret", "stat") ==
        json{{"ok", false}, {"error", "unknown command 'stat'; try: help"}});
  CHECK(ask("s3cret", "kill x") == json{{"ok", false}, {"error", "kill expects a job id, got 'x'"}});
  CHECK(ask("s3cret", "set seed 1") ==
        json{{"ok", false}, {"error", "cannot set 'seed'; settable keys: job_limit"}});
  CHECK(ask("s3cret", "train --watch 0") ==
        json{{"ok", false},
             {"error", "train --watch expects seconds between 0.2 and 3600, got '0'"}});
  CHECK(ask("s3cret", "buffer 0") == json{{"ok", false}, {"error", "buffer takes no arguments, got '0'"}});
  CHECK(asked(200ms).empty());
}

TEST_CASE_FIXTURE(fixture, "a launcher that does not answer gives a JSON error, not silence") {
  auto silent = sys.spawn(silent_launcher);
  auto ep = spawn_shell_endpoint(sys, silent, "t", 200ms);
  const auto answer = ask("t", "status", ep);
  CHECK(answer["ok"] == false);
  CHECK(answer["error"].get<std::string>().find("the launcher did not answer status: ") == 0);
  CHECK(ask("t", "pause", ep) == json{{"ok", false}, {"error", "stub"}});
  self->send_exit(silent, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(fixture, "without a launcher every forwarded command is a JSON error") {
  auto ep = spawn_shell_endpoint(sys, launcher_query_actor{}, "t");
  CHECK(ask("t", "status", ep) ==
        json{{"ok", false}, {"error", "the study has no launcher to answer status"}});
  CHECK(ask("t", "help", ep)["ok"] == true);
  self->send_exit(ep, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(fixture, "the endpoint quits with its launcher") {
  self->monitor(endpoint);
  self->send_exit(launcher, caf::exit_reason::user_shutdown);
  bool down = false;
  self->receive([&](const caf::down_msg& msg) { down = msg.source == endpoint.address(); },
                caf::after(5s) >> [] {});
  CHECK(down);
}
