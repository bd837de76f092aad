// melissa-run: runs a study. Validates the study file, creates the output
// directory, starts the server through the scheduler backend, runs the
// simulations it asks for, and exits with a status that says whether the
// study succeeded (0), failed (1), had a bad study file (2), ended with
// simulations that failed for good (3) or was interrupted (128 + signal).
//
//   melissa-run STUDY.toml [--output DIR] [--dry-run]
//   melissa-run --resume DIR           (a stopped study, from its newest checkpoint)
//   melissa-run --monitor-only DIR     (the dashboard of a finished study)
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "actors/checkpoint_keeper/checkpoint_files.hpp"
#include "actors/checkpoint_keeper/restart_plan.hpp"
#include "actors/checkpoint_keeper/server_restore.hpp"
#include "actors/launcher/launcher.hpp"
#include "actors/monitor/archive_source.hpp"
#include "actors/monitor/live_source.hpp"
#include "actors/monitor/monitor_assets.hpp"
#include "actors/monitor/monitor_server.hpp"
#include "actors/scheduler_backend/scheduler_backend.hpp"
#include "actors/shell_endpoint/shell_endpoint.hpp"
#include "actors/supervisor/supervisor.hpp"
#include "backends/scheduler/factory.hpp"
#include "config/design.hpp"
#include "config/study.hpp"
#include "messages/atomic_file.hpp"
#include "security/tls.hpp"

namespace fs = std::filesystem;

// The wiring below, checked at compile time (melissa::converts_to).
namespace melissa {
// The launcher child is what gets published, and what the shell endpoint asks.
static_assert(converts_to_v<launcher_impl_actor, launcher_actor>);
static_assert(converts_to_v<launcher_impl_actor, launcher_query_actor>);
static_assert(converts_to_v<launcher_impl_actor, launcher_server_actor>);
// It depends on the scheduler backend: it handles the restart notice.
static_assert(converts_to_v<launcher_impl_actor, restart_listener_actor>);
// What a server rank registers is a coordinator's launcher-facing part.
static_assert(!converts_to_v<server_rank_actor, restart_listener_actor>);
}  // namespace melissa

namespace {

std::atomic<int> stop_signal{0};
std::atomic<int> signal_count{0};  // a second Ctrl-C stops without waiting for the checkpoint
extern "C" void on_signal(int sig) {
  stop_signal = sig;
  ++signal_count;
}

const char* usage =
    "usage: melissa-run STUDY.toml [--output DIR] [--dry-run]\n"
    "       melissa-run --resume DIR\n"
    "       melissa-run --monitor-only DIR\n"
    "Runs the study: starts the server, then the simulations it asks for.\n"
    "  --output DIR  output directory (default: study.output_dir)\n"
    "  --dry-run     check the study and print what would run, run nothing\n"
    "  --resume DIR  resume the stopped study in DIR (Ctrl-C, a killed launcher,\n"
    "                an ended allocation) with DIR/study.resolved.toml from its\n"
    "                newest valid checkpoint: complete simulations are not rerun,\n"
    "                training goes on from the checkpoint's batch; a study that\n"
    "                already finished says so and exits 0\n"
    "  --monitor-only DIR  serve the dashboard of the finished study in DIR\n"
    "                (from its summary.json) until Ctrl-C\n"
    "Ctrl-C: no new simulation, the server checkpoints (at most 60 s; a second\n"
    "Ctrl-C does not wait), every job is cancelled; then --resume goes on.\n"
    "Exit status: 0 succeeded, 1 failed, 2 bad study file or arguments,\n"
    "3 some simulations failed for good, 128+N interrupted by signal N.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "melissa-run: " << msg << "\n" << usage;
  std::exit(melissa::study_config_error);
}

// melissa-server next to this program (build tree or install), else from PATH.
std::string find_server_program() {
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto dir = self.parent_path();
    for (const auto& candidate : {dir / "melissa-server", dir / ".." / "melissa-server" / "melissa-server"})
      if (::access(candidate.c_str(), X_OK) == 0) return fs::weakly_canonical(candidate).string();
  }
  return "melissa-server";
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "127.0.0.1";
  return name;
}

// <output>/.lock, flock'ed for the life of this process (the kernel drops the
// lock when the process ends, however it ends). It holds the owner's pid, so
// that a second melissa-run can name it.
struct output_lock {
  int fd = -1;
  output_lock() = default;
  output_lock(output_lock&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  output_lock& operator=(output_lock&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~output_lock() {
    if (fd >= 0) ::close(fd);
  }
};

output_lock lock_output_dir(const std::string& output) {
  const auto path = output + "/.lock";
  output_lock lock;
  // O_CLOEXEC: jobs started from here must not inherit (and outlive us with) the lock.
  lock.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock.fd < 0)
    throw std::system_error(errno, std::generic_category(), "cannot open the lock file " + path);
  if (::flock(lock.fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK)
      throw std::system_error(err, std::generic_category(), "cannot lock " + path);
    char pid[32] = {};
    const auto n = ::pread(lock.fd, pid, sizeof pid - 1, 0);
    std::string holder = n > 0 ? std::string(pid, static_cast<std::size_t>(n)) : "";
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    throw std::runtime_error("the output directory " + output + " is in use by another melissa-run" +
                             (holder.empty() ? "" : " (pid " + holder + ")") + ", which holds " +
                             path + "; wait for it to end or choose another --output");
  }
  const auto text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock.fd, 0) != 0 || ::pwrite(lock.fd, text.data(), text.size(), 0) < 0)
    throw std::system_error(errno, std::generic_category(), "cannot write " + path);
  return lock;
}

// The dashboard's address for a user: a wildcard bind is reached through the
// machine's name.
std::string monitor_url_host(const std::string& bind) {
  return bind == "0.0.0.0" || bind == "::" ? host_name() : bind;
}

// The monitor of a study: its REST API and dashboard (docs/monitor.md).
// Throws std::runtime_error when it cannot listen or write monitor.json.
std::unique_ptr<melissa::monitor::monitor_server> start_monitor(
    std::shared_ptr<melissa::monitor::study_source> source, const melissa::config::study_config& study,
    const std::string& output, const std::string& token) {
  using namespace melissa::monitor;
  auto api = std::make_shared<monitor_api>(std::move(source), token, output,
                                           study.parameters.names, dashboard_assets());
  auto server = std::make_unique<monitor_server>(api, study.launcher.monitor_host,
                                                 study.launcher.monitor_port);
  server->start();
  const auto host = monitor_url_host(study.launcher.monitor_host);
  const auto url = server->url(host, token);
  write_monitor_file(output, url, host, server->port(), token);
  return server;
}

// melissa-run --monitor-only DIR: a finished study's dashboard, from its
// summary.json (and metrics/, breed-provenance.csv), until a signal.
int serve_finished_study(const std::string& dir) {
  using namespace melissa;
  const auto output = fs::absolute(dir).lexically_normal().string();
  config::study_config study;
  try {
    study = config::load_study(output + "/study.resolved.toml");
  } catch (const std::exception& e) {
    std::cerr << "melissa-run: " << e.what() << "\n";
    return study_config_error;
  }
  try {
    const auto token = shell::random_token();
    auto server = start_monitor(monitor::make_archive_source(output), study, output, token);
    std::cout << "dashboard of the finished study " << study.study.name << ": "
              << server->url(monitor_url_host(study.launcher.monitor_host), token)
              << "\n(Ctrl-C to stop)" << std::endl;
    while (stop_signal == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    server->stop();
    monitor::remove_monitor_file(output);
  } catch (const std::exception& e) {
    std::cerr << "melissa-run: " << e.what() << "\n";
    return study_failed;
  }
  return 0;
}

// --resume: whether the study in `output` already ran to its end (its
// summary.json says exit code 0 or 3: every simulation completed or failed
// for good, and the server finished), and if so the summary's message.
std::optional<std::string> finished_study(const std::string& output) {
  std::ifstream in(output + "/summary.json");
  if (!in) return std::nullopt;
  const auto summary = nlohmann::json::parse(in, nullptr, false);
  if (!summary.is_object() || !summary.contains("exit_code") || !summary["exit_code"].is_number_integer())
    return std::nullopt;
  const int code = summary["exit_code"].get<int>();
  if (code != melissa::study_succeeded && code != melissa::study_incomplete) return std::nullopt;
  return summary.value("message", std::string("finished"));
}

// --resume: the highest attempt of each simulation in the previous run's
// summary.json (its jobs), merged into `attempts` (the checkpoint's). A
// missing or unreadable summary (melissa-run was killed) adds nothing.
void previous_attempts(const std::string& output, std::map<std::uint32_t, std::uint32_t>& attempts) {
  std::ifstream in(output + "/summary.json");
  if (!in) return;
  const auto summary = nlohmann::json::parse(in, nullptr, false);
  if (!summary.is_object() || !summary.contains("jobs") || !summary["jobs"].is_array()) return;
  for (const auto& job : summary["jobs"]) {
    if (!job.is_object() || job.value("kind", "") != "client") continue;
    const auto sim = job.find("sim_id"), attempt = job.find("attempt");
    if (sim == job.end() || attempt == job.end() || !sim->is_number_unsigned() ||
        !attempt->is_number_unsigned())
      continue;
    auto& highest = attempts[sim->get<std::uint32_t>()];
    highest = std::max(highest, attempt->get<std::uint32_t>());
  }
}

// --resume: the previous runs' job logs are kept under jobs.<k> (the
// resumed run numbers its jobs from 1 again).
void keep_previous_job_logs(const std::string& output) {
  const auto jobs = output + "/jobs";
  if (!fs::exists(jobs)) return;
  for (int k = 1;; ++k) {
    const auto kept = jobs + "." + std::to_string(k);
    if (fs::exists(kept)) continue;
    fs::rename(jobs, kept);
    return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace melissa;
  // From the start: a signal that arrives while the study is being set up is
  // served once the launcher runs (the loop at the end), not a silent kill.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::string study_path, output, resume_dir;
  bool dry_run = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--output") {
      if (i + 1 >= argc) usage_error("--output needs a value");
      output = argv[++i];
    } else if (a == "--monitor-only") {
      if (i + 1 >= argc) usage_error("--monitor-only needs the study's output directory");
      if (argc != 3) usage_error("--monitor-only DIR takes no other argument");
      return serve_finished_study(argv[i + 1]);
    } else if (a == "--resume") {
      if (i + 1 >= argc) usage_error("--resume needs the study's output directory");
      if (argc != 3) usage_error("--resume DIR takes no other argument");
      resume_dir = argv[++i];
    } else if (a == "--dry-run") {
      dry_run = true;
    } else if (a == "-h" || a == "--help") {
      std::cout << usage;
      return 0;
    } else if (!a.empty() && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else if (study_path.empty()) {
      study_path = a;
    } else {
      usage_error("one study file only ('" + study_path + "', then '" + a + "')");
    }
  }
  if (!resume_dir.empty()) {
    // The study as it ran: its resolved file holds absolute paths already.
    output = fs::absolute(resume_dir).lexically_normal().string();
    study_path = output + "/study.resolved.toml";
    if (!fs::exists(study_path)) {
      std::cerr << "melissa-run: " << output << " holds no study.resolved.toml: not the output "
                << "directory of a study\n";
      return study_config_error;
    }
    if (const auto done = finished_study(output)) {
      std::cout << "melissa-run: the study in " << output << " already finished (" << *done
                << "; see summary.json): nothing to resume\n";
      return study_succeeded;
    }
  }
  if (study_path.empty()) usage_error("no study file");

  config::study_config study;
  try {
    study = config::load_study(study_path);
  } catch (const config::config_error& e) {
    std::cerr << "melissa-run: " << e.what() << "\n";
    return study_config_error;
  }
  // The default dataset directory follows the output directory (--output too).
  const bool default_dataset_dir = study.server.dataset_dir == study.study.output_dir + "/dataset";
  const bool default_checkpoint_dir = study.checkpoint.dir == study.study.output_dir + "/checkpoints";
  if (output.empty()) output = study.study.output_dir;
  output = fs::absolute(output).lexically_normal().string();
  study.study.output_dir = output;
  // Jobs run in the output directory: relative paths of the study are taken
  // from where melissa-run was started, as the output directory is.
  study.server.dataset_dir = default_dataset_dir
                                 ? output + "/dataset"
                                 : fs::absolute(study.server.dataset_dir).lexically_normal().string();
  study.checkpoint.dir = default_checkpoint_dir
                             ? output + "/checkpoints"
                             : fs::absolute(study.checkpoint.dir).lexically_normal().string();
  if (!study.training.validation_dir.empty())
    study.training.validation_dir =
        fs::absolute(study.training.validation_dir).lexically_normal().string();
  if (!study.training.model.empty())
    study.training.model = fs::absolute(study.training.model).lexically_normal().string();

  const bool local = study.launcher.backend == config::launcher_backend::local;
  launcher_settings settings;
  settings.study = study;
  settings.output_dir = output;
  settings.resolved_study = output + "/study.resolved.toml";
  settings.server_program = find_server_program();
  settings.launcher_host = local ? "127.0.0.1" : host_name();
  settings.poll_interval = study.launcher.poll_interval;
  settings.tty = ::isatty(STDERR_FILENO) != 0;

  // --resume: the newest checkpoint that verifies and holds the simulation
  // table (the choice a server restart makes: plan_server_restart).
  checkpoint::restart_plan resume_plan;
  // A dataset study takes no checkpoint: its complete files are its state,
  // and a server started on them skips them (docs/checkpoints.md, "Dataset
  // mode"). Resuming it runs it again in place, with the attempts numbered on.
  const bool dataset_study = study.study.mode != config::study_mode::statistics &&
                             study.server.sink == config::sink_kind::dataset;
  if (!resume_dir.empty() && dataset_study) {
    previous_attempts(output, settings.restore_attempts);
    std::cerr << "melissa-run: resuming the dataset study in " << output
              << ": the simulations complete in " << study.server.dataset_dir << " do not run again\n";
  } else if (!resume_dir.empty()) {
    checkpoint::restart_inputs in;
    in.end.raw_state = "resumed";
    in.max_restarts = 1;
    in.checkpoint_dir = study.checkpoint.dir;
    in.batches_trained = 1;  // never "from scratch": that is running the study again
    resume_plan = checkpoint::plan_server_restart(in);
    for (const auto& line : resume_plan.skipped)
      std::cerr << "melissa-run: skipping checkpoint " << line << "\n";
    if (resume_plan.action != checkpoint::restart_action::from_checkpoint) {
      std::cerr << "melissa-run: " << study.checkpoint.dir << " holds no valid checkpoint"
                << (resume_plan.skipped.empty() ? "" : " (" + std::to_string(resume_plan.skipped.size()) + " skipped)")
                << ": nothing to resume from; run the study again (melissa-run "
                << study_path << ")\n";
      return study_failed;
    }
    settings.restore = resume_plan.checkpoint;
    settings.restore_batch = resume_plan.batch;
    settings.restore_complete = resume_plan.complete;
    // The next attempts are numbered after the earlier runs' (and count
    // against max_retries as they would in one run).
    settings.restore_attempts = resume_plan.attempts;
    previous_attempts(output, settings.restore_attempts);
    // The study's elapsed time goes on from the checkpoint's (older
    // checkpoints have none: 0).
    try {
      settings.elapsed_offset_s = checkpoint::study_state_elapsed(
          checkpoint::read_text(resume_plan.checkpoint + "/study/study_state.json"));
    } catch (const std::exception&) {
    }
  }

  if (dry_run) {
    std::cout << config::to_toml(study) << "\n# server: " << settings.server_program << " --config "
              << settings.resolved_study << " --output " << output << " (" << study.server.ranks
              << " rank" << (study.server.ranks > 1 ? "s" : "") << ", backend "
              << config::to_string(study.launcher.backend) << ")\n";
    const auto design = config::make_study_design(study);
    for (std::size_t i = 0; i < design.size() && i < 5; ++i) {
      std::cout << "# simulation " << i << ":";
      for (const auto& c : study.client.command) std::cout << " " << c;
      for (double v : design[i]) std::cout << " " << v;
      std::cout << "\n";
    }
    if (design.size() > 5) std::cout << "# ... " << design.size() << " simulations in all\n";
    return 0;
  }

  std::shared_ptr<scheduler::backend> backend;
  output_lock lock;
  try {
    fs::create_directories(output);
    // Before anything in the directory is written: two studies must not interleave there.
    lock = lock_output_dir(output);
    if (resume_dir.empty()) {
      write_file_atomically(settings.resolved_study, config::to_toml(study));
    } else {
      keep_previous_job_logs(output);
    }
    fs::create_directories(output + "/jobs");
    backend = scheduler::make_backend(study);
  } catch (const std::exception& e) {
    std::cerr << "melissa-run: " << e.what() << "\n";
    return study_failed;
  }

  // Logs: the terminal and <output>/launcher.log.
  auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  // A resumed study appends to its log.
  auto file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(output + "/launcher.log",
                                                                  resume_dir.empty());
  auto logger = std::make_shared<spdlog::logger>("melissa-run", spdlog::sinks_init_list{console, file});
  logger->set_pattern("[%H:%M:%S.%e] [launcher] [%l] %v");
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));

  // The study's secret: every CAF port of the study speaks mutual TLS with it
  // (security/study_credentials.hpp says why); a fresh one for every run.
  security::credentials creds;
  try {
    creds = security::create_study_credentials(output);
  } catch (const std::exception& e) {
    std::cerr << "melissa-run: " << e.what() << "\n";
    return study_failed;
  }
  caf::actor_system_config cfg;
  add_remote_message_types(cfg);
  security::use_study_tls(cfg, creds);
  // A server that dies silently (node failure) is noticed by heartbeats, and
  // an idle melissa-shell stays connected thanks to them.
  enable_middleman_heartbeats(cfg, std::chrono::seconds(1), std::chrono::seconds(30));
  cfg.set("work-stealing.aggressive-poll-attempts", static_cast<int64_t>(0));
  cfg.set("work-stealing.moderate-poll-attempts", static_cast<int64_t>(0));
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  // The supervision tree: the backend actor is restarted if it crashes (the
  // backend object, with the jobs it tracks, survives the restart); the
  // launcher holds the study's state, so its death ends the study instead.
  // main's scoped actor hears the launcher's (study_finished_atom, code, message).
  const auto listener = caf::actor_cast<study_listener_actor>(self);
  std::vector<child_spec> tree;
  tree.push_back({"scheduler_backend", restart_policy::permanent,
                  [backend](caf::actor_system& s, const child_lookup&) {
                    return caf::actor_cast<caf::actor>(spawn_scheduler_backend(s, backend));
                  },
                  {}});
  tree.push_back({"launcher", restart_policy::temporary,
                  [settings, listener](caf::actor_system& s, const child_lookup& find) {
                    // The supervisor's lookup is untyped: cast once, here.
                    const launcher_impl_actor launcher = spawn_launcher(
                        s, settings, caf::actor_cast<backend_actor>(find("scheduler_backend")),
                        listener);
                    return caf::actor_cast<caf::actor>(launcher);
                  },
                  {"scheduler_backend"}});
  auto root = spawn_supervisor(sys, "launcher", std::move(tree));
  caf::actor launcher_child;
  self->request(root, std::chrono::seconds(10), lookup_atom::value, std::string("launcher"))
      .receive([&](const caf::actor& a) { launcher_child = a; }, [&](const caf::error&) {});
  if (!launcher_child) {
    std::cerr << "melissa-run: the launcher did not start\n";
    return study_failed;
  }
  auto launcher = caf::actor_cast<launcher_impl_actor>(launcher_child);
  self->monitor(launcher);
  const std::string bind = local ? "127.0.0.1" : "0.0.0.0";
  auto port = caf::openssl::publish(launcher, 0, bind.c_str(), true);
  if (!port) {
    std::cerr << "melissa-run: cannot open the launcher's port on " << bind << ": "
              << sys.render(port.error()) << "\n";
    self->send_exit(root, caf::exit_reason::user_shutdown);
    return study_failed;
  }
  spdlog::info("study '{}' in {} (backend {}, launcher port {})", study.study.name, output,
               config::to_string(study.launcher.backend), *port);
  if (!resume_dir.empty() && dataset_study) {
    spdlog::info("resuming the dataset study: the simulations complete in {} are not rerun",
                 study.server.dataset_dir);
  } else if (!resume_dir.empty()) {
    for (const auto& line : resume_plan.skipped) spdlog::warn("skipping checkpoint {}", line);
    spdlog::info("resuming from {} (batch {}): {} simulation{} complete there are not rerun",
                 resume_plan.checkpoint, resume_plan.batch, resume_plan.complete.size(),
                 resume_plan.complete.size() == 1 ? "" : "s");
  }
  self->send(launcher, port_atom::value, *port);

  // melissa-shell attaches here: loopback by default, a token in a 0600 file.
  shell_endpoint_actor shell;
  std::string token;
  try {
    token = shell::random_token();
    const launcher_query_actor queries = launcher;  // checked at compile time
    shell = spawn_shell_endpoint(sys, queries, token);
    auto shell_port = publish_shell_endpoint(shell, study.launcher.shell_port, study.launcher.shell_host);
    if (!shell_port) throw std::runtime_error(sys.render(shell_port.error()));
    const auto shell_host = study.launcher.shell_host == "0.0.0.0" ? host_name() : study.launcher.shell_host;
    shell::write_shell_file(output, shell_host, *shell_port, token);
    spdlog::info("attach with: melissa-shell {}", output);
  } catch (const std::exception& e) {
    spdlog::warn("no shell endpoint ({}); the study runs without it", e.what());
  }
  // The REST API and dashboard: the shell's token, and the launcher asked
  // through CAF from the server's own threads.
  std::unique_ptr<monitor::monitor_server> monitor_http;
  try {
    if (token.empty()) throw std::runtime_error("no token");
    monitor_http = start_monitor(monitor::make_live_source(sys, launcher), study, output, token);
    // The URL carries the token, which is all the HTTP port asks for: the
    // terminal gets it, launcher.log (not owner-only) gets the address only.
    const std::string url = monitor_http->url(monitor_url_host(study.launcher.monitor_host), token);
    spdlog::logger terminal("melissa-run", console), log_file("melissa-run", file);
    terminal.set_pattern("[%H:%M:%S.%e] [launcher] [%l] %v");
    log_file.set_pattern("[%H:%M:%S.%e] [launcher] [%l] %v");
    terminal.info("dashboard: {}", url);
    log_file.info("dashboard: {} (the token is in {}/monitor.json)", url.substr(0, url.find('?')), output);
  } catch (const std::exception& e) {
    spdlog::warn("no monitor ({}); the study runs without its dashboard", e.what());
  }

  int exit_code = study_failed;
  bool running = true;
  int signals_sent = 0;
  while (running) {
    self->receive(
        [&](study_finished_atom, std::int32_t code, const std::string&) {
          exit_code = code;
          running = false;
        },
        [&](const caf::down_msg& msg) {
          std::cerr << "melissa-run: the launcher failed: " << sys.render(msg.reason) << "\n";
          running = false;
        },
        caf::after(std::chrono::milliseconds(100)) >> [&] {
          // Each new signal: the first asks for a checkpoint, a second stops at once.
          if (signal_count == signals_sent || signals_sent >= 2) return;
          signals_sent = signal_count;
          // The launcher's exit code is the process's: 128 + signal.
          self->send(launcher, interrupt_atom::value, static_cast<std::int32_t>(128 + stop_signal),
                     std::string("interrupted by ") + (stop_signal == SIGINT ? "SIGINT" : "SIGTERM"));
        });
  }
  shell::remove_shell_file(output);
  if (monitor_http) {
    monitor_http->stop();
    monitor::remove_monitor_file(output);
  }
  // Let a last shell reply (e.g. to `stop`) leave before the middleman goes.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  self->send_exit(root, caf::exit_reason::user_shutdown);
  // (caf::openssl::unpublish does not compile in CAF 0.17.6: ask its middleman directly.)
  caf::anon_send(sys.openssl_manager().actor_handle(), caf::unpublish_atom::value,
                 launcher.address(), *port);
  spdlog::default_logger()->flush();
  return exit_code;
}
