// A stand-in for melissa-run in the shell's integration test: a stub launcher
// (fixed JSON shaped like the real launcher's, state changed by kill, set,
// pause and resume; canned train / buffer / steering figures, `train` saying
// "done" from its 6th answer on so that a watch ends), and the real shell
// endpoint published on loopback with a known token, its shell.json written
// like the launcher does.
//
//   fake_study DIR TOKEN
//
// Prints "ready PORT" once shell.json is written, one "event: ..." line per
// command that changes the study, and exits 0 after `stop`.
#include <atomic>
#include <chrono>
#include <iostream>
#include <set>
#include <string>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <nlohmann/json.hpp>

#include "actors/shell_endpoint/shell_endpoint.hpp"
#include "security/tls.hpp"

using namespace melissa;
using json = nlohmann::json;

namespace {

struct stub_state {
  std::uint32_t train_queries = 0;  // `train` answers "done" from the 6th on (--watch ends)
  std::uint32_t job_limit = 2;
  bool paused = false;
  std::set<std::uint32_t> killed;
  caf::actor listener;
  static inline const char* name = "stub_launcher";
};

void event(const std::string& what) { std::cout << "event: " << what << std::endl; }

json job(std::uint32_t id, std::uint32_t sim, const char* state, const char* raw, json exit_code,
         double started, double ended) {
  return {{"id", id},           {"kind", "client"},        {"sim_id", sim},
          {"attempt", 1},       {"state", state},          {"raw_state", raw},
          {"backend_id", 4200 + id}, {"submitted_at", 0.5}, {"started_at", started},
          {"ended_at", ended},  {"exit_code", exit_code},  {"signal", nullptr},
          {"parameters", {100.0, 200.0}}};
}

json all_jobs(const stub_state& st) {
  json jobs = json::array();
  jobs.push_back({{"id", 0}, {"kind", "server"}, {"state", "running"}, {"raw_state", "running"},
                  {"started_at", 0.1}, {"ended_at", -1}, {"exit_code", nullptr},
                  {"signal", nullptr}});
  jobs.push_back(job(1, 0, "completed", "exited 0", 0, 0.6, 12.25));
  jobs.push_back(job(2, 1, "failed", "exited 3", 3, 0.7, 5.5));
  const bool k3 = st.killed.count(3) > 0;
  jobs.push_back(job(3, 2, k3 ? "cancelled" : "running", k3 ? "killed" : "running", nullptr, 13.0,
                     k3 ? 20.0 : -1));
  const bool k4 = st.killed.count(4) > 0;
  jobs.push_back(job(4, 3, k4 ? "cancelled" : "running", k4 ? "killed" : "running", nullptr, 14.0,
                     k4 ? 21.0 : -1));
  jobs.push_back(job(5, 4, "pending", "", nullptr, -1, -1));
  return jobs;
}

json ok(json j = json::object()) {
  j["ok"] = true;
  return j;
}

std::string error_reply(const std::string& why) { return json{{"ok", false}, {"error", why}}.dump(); }

// Shaped like the launcher's merge of two ranks' trainer status (actors/trainer).
json train_answer(std::uint32_t query) {
  const bool done = query >= 6;
  const auto rank = [&](std::uint32_t r, json validation, json best) {
    return json{{"rank", r},
                {"ranks", 2},
                {"state", done ? "done" : "training"},
                {"batches", 100 * query + r},
                {"samples_seen", 2000 * query},
                {"train_loss", 0.0123},
                {"validation_loss", validation},
                {"min_validation_loss", best},
                {"samples_per_s", 285.25},
                {"mean_samples_per_s", 280.0},
                {"batch_wait_s", 1.5},
                {"busy_fraction", 0.934},
                {"buffer_population", 5234},
                {"buffer_unseen", 120},
                {"learning_rate", 0.0005},
                {"elapsed_s", 42.5}};
  };
  return ok({{"state", "running"},
             {"elapsed_s", 43.0},
             {"ranks", {rank(0, 0.0456, 0.02), rank(1, nullptr, nullptr)}}});
}

// A reservoir's report (actors/reservoir) for one rank.
json buffer_answer() {
  return ok({{"state", "running"},
             {"ranks",
              {{{"rank", 0},
                {"kind", "reservoir"},
                {"policy", "reservoir"},
                {"capacity", 6000},
                {"threshold", 1000},
                {"population", 5234},
                {"unseen", 120},
                {"inserts", 9000},
                {"evictions", 3766},
                {"batches", 870},
                {"samples_drawn", 8700},
                {"production_over", false},
                {"repetitions",
                 {{"histogram", {1234, 3456, 2345, 100, 10, 2}}, {"mean", 0.9667}, {"max", 5}}}}}}});
}

launcher_query_actor::behavior_type stub_launcher(
    launcher_query_actor::stateful_pointer<stub_state> self, caf::actor listener) {
  self->state.listener = std::move(listener);
  return {
      [self](status_atom) {
        const auto& st = self->state;
        return ok({{"study", "fake"},
                   {"state", "running"},
                   {"elapsed_s", 42.5},
                   {"simulations",
                    {{"requested", 5}, {"completed", 1}, {"running", 2 - (int)st.killed.size()},
                     {"pending", 1}, {"failed", 1}, {"retries", 0}}},
                   {"job_limit", st.job_limit},
                   {"paused", st.paused},
                   {"steps_stored", 1234},
                   {"steps_per_s", 56.789},
                   {"server_ranks", 1},
                   {"output_dir", "/tmp/fake"}})
            .dump();
      },
      [self](jobs_atom, const std::string& filter) {
        json rows = json::array();
        for (const auto& j : all_jobs(self->state))
          if (filter.empty() || j["state"] == filter) rows.push_back(j);
        return ok({{"jobs", rows}}).dump();
      },
      [self](job_atom, std::uint32_t id) {
        for (const auto& j : all_jobs(self->state))
          if (j["id"] == id) return ok({{"job", j}}).dump();
        return error_reply("no job " + std::to_string(id));
      },
      [self](kill_atom, std::uint32_t id) {
        if (id != 3 && id != 4) return error_reply("no running job " + std::to_string(id));
        self->state.killed.insert(id);
        event("kill " + std::to_string(id));
        return ok({{"killed", id}}).dump();
      },
      [self](pause_atom) {
        self->state.paused = true;
        event("pause");
        return ok({{"paused", true}}).dump();
      },
      [self](resume_atom) {
        self->state.paused = false;
        event("resume");
        return ok({{"paused", false}}).dump();
      },
      [self](set_atom, const std::string& key, const std::string& value) {
        if (key != "job_limit") return error_reply("unknown setting '" + key + "'");
        self->state.job_limit = static_cast<std::uint32_t>(std::stoul(value));
        event("set " + key + " " + value);
        return ok({{"job_limit", self->state.job_limit}}).dump();
      },
      [self](train_atom) { return train_answer(++self->state.train_queries).dump(); },
      [](buffer_atom) { return buffer_answer().dump(); },
      [](statistics_atom) {
        return ok({{"ranks", {{{"rank", 0}, {"simulations_folded", 21}, {"groups_folded", 3},
                               {"widest_sobol_interval", 0.4125}, {"widest_sobol_interval_step", 5},
                               {"groups_left_out", json::array()}}}}})
            .dump();
      },
      [](checkpoint_atom, const std::string&) {
        return ok({{"message", "checkpoint written: /out/checkpoints/ckpt-00000001-batch-40 (batch 40)"},
                   {"path", "/out/checkpoints/ckpt-00000001-batch-40"},
                   {"batch", 40}})
            .dump();
      },
      [](steering_atom) {
        return ok({{"steering",
                    {{"r", 0.5},
                     {"sigma", {0.1, 0.25, 0.125}},
                     {"resampled", 12},
                     {"last_resampling_s", 30.5}}}})
            .dump();
      },
      [self](stop_atom) {
        event("stop");
        caf::anon_send(self->state.listener, stop_atom::value);
        return ok({{"stopping", true}}).dump();
      },
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: fake_study DIR TOKEN\n";
    return 2;
  }
  const std::string dir = argv[1];
  const std::string token = argv[2];

  caf::actor_system_config cfg;
  security::use_study_tls(cfg, security::create_study_credentials(dir));
  enable_middleman_heartbeats(cfg);
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  auto launcher = sys.spawn(stub_launcher, caf::actor_cast<caf::actor>(self));
  auto endpoint = spawn_shell_endpoint(sys, launcher, token);
  auto port = publish_shell_endpoint(endpoint, 0, "127.0.0.1");
  if (!port) {
    std::cerr << "fake_study: cannot publish: " << sys.render(port.error()) << "\n";
    self->send_exit(launcher, caf::exit_reason::user_shutdown);
    return 1;
  }
  shell::write_shell_file(dir, "127.0.0.1", *port, token);
  std::cout << "ready " << *port << std::endl;

  self->receive([](stop_atom) {});
  // The stop answer is on its way to the shell: let the middleman send it
  // before the process (and the connection) goes away.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  shell::remove_shell_file(dir);
  // The endpoint monitors the launcher and quits with it.
  self->send_exit(launcher, caf::exit_reason::user_shutdown);
  return 0;
}
