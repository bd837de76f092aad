// melissa-shell: attach to a running study (its launcher's shell endpoint).
//
//   melissa-shell <output-dir | host:port> [--token T] [-c COMMAND] [--json] [--timeout S]
//
// With -c it runs one command and exits 0 if the study answered ok, 1 if not;
// without, it reads commands at a `melissa> ` prompt (readline and history on
// a terminal, plain lines from a pipe). docs/shell.md describes every command.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <thread>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <fcntl.h>
#include <signal.h>
#include <readline/history.h>
#include <readline/readline.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/remote_actor.hpp>

#include "actors/shell_endpoint/shell_command.hpp"
#include "apps/melissa-shell/shell_render.hpp"
#include "apps/melissa-shell/shell_target.hpp"
#include "messages/actor_types.hpp"
#include "security/tls.hpp"

namespace {

using namespace melissa;
using namespace melissa::shell;

const char* usage =
    "usage: melissa-shell <output-dir | host:port> [--token T] [--study-dir DIR]\n"
    "                     [-c COMMAND] [--json] [--timeout SECONDS]\n"
    "Attaches to a running study. <output-dir> is the study's output directory\n"
    "(melissa-run writes shell.json there: address and token, and .melissa/: the\n"
    "study's TLS key and certificate, readable by its owner only); with host:port,\n"
    "--token and --study-dir are required.\n"
    "  -c COMMAND      run one command and exit (0 if the study answered ok, 1 if not)\n"
    "  --json          print the study's JSON answers as they are\n"
    "  --token T       the study's token (default: from shell.json)\n"
    "  --study-dir DIR the study's output directory, for its credentials (default:\n"
    "                  the directory of shell.json)\n"
    "  --timeout S     a study silent for S seconds counts as lost (default 10)\n"
    "Without -c, commands are read at a `melissa> ` prompt; type help.\n"
    "Exit status: 0 ok, 1 the command failed, 2 usage error, 3 the study cannot be\n"
    "reached or the connection was lost.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "melissa-shell: " << msg << "\n" << usage;
  std::exit(exit_usage);
}

struct options {
  std::string target;
  std::optional<std::string> token;
  std::optional<std::string> study_dir;
  std::optional<std::string> command;
  bool json = false;
  int timeout_s = 10;
};

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " expects a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::cout << usage;
      std::exit(exit_ok);
    } else if (a == "--token") {
      o.token = value();
    } else if (a == "--study-dir") {
      o.study_dir = value();
    } else if (a == "-c" || a == "--command") {
      o.command = value();
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--timeout") {
      const auto v = value();
      try {
        std::size_t used = 0;
        o.timeout_s = std::stoi(v, &used);
        if (used != v.size() || o.timeout_s < 1 || o.timeout_s > 3600) throw std::out_of_range("");
      } catch (const std::exception&) {
        usage_error("--timeout expects seconds in [1, 3600], got '" + v + "'");
      }
    } else if (!a.empty() && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else if (o.target.empty()) {
      o.target = a;
    } else {
      usage_error("unexpected argument '" + a + "' (quote a command: -c \"jobs running\")");
    }
  }
  if (o.target.empty()) usage_error("which study? give its output directory or host:port");
  return o;
}

// Set from a CAF thread when the endpoint's proxy dies (connection closed,
// connection timeout); read by the readline thread.
struct connection_watch {
  std::atomic<bool> lost{false};
  std::mutex mutex;
  std::string reason;
};

std::shared_ptr<connection_watch> watch;

// Called by readline about ten times a second while it waits for a key: ends
// the prompt as soon as the study is gone, instead of at the next command.
int check_connection_hook() {
  if (watch && watch->lost) rl_done = 1;
  return 0;
}

class session {
 public:
  session(caf::actor_system& sys, shell_endpoint_actor endpoint, shell_address address,
          std::chrono::seconds answer_timeout)
      : self_(sys), endpoint_(std::move(endpoint)), address_(std::move(address)),
        answer_timeout_(answer_timeout) {
    watch = std::make_shared<connection_watch>();
    auto w = watch;
    caf::actor_cast<caf::abstract_actor*>(endpoint_)->attach_functor([w](const caf::error& why) {
      std::lock_guard<std::mutex> lock(w->mutex);
      w->reason = why ? caf::to_string(why) : "closed";
      w->lost = true;
    });
  }

  bool lost() const { return watch->lost; }

  std::string where() const { return address_.host + ":" + std::to_string(address_.port); }

  std::string lost_message() const {
    std::lock_guard<std::mutex> lock(watch->mutex);
    return "lost the connection to the study at " + where() + " (" + watch->reason +
           "); it has ended or is unreachable";
  }

  // The endpoint's JSON answer, or nothing when the connection is gone
  // (`error` says why).
  std::optional<std::string> ask(const std::string& line, std::string& error) {
    if (lost()) {
      error = lost_message();
      return std::nullopt;
    }
    std::optional<std::string> result;
    self_->request(endpoint_, answer_timeout_, shell_atom::value, address_.token, line)
        .receive([&](std::string& json) { result = std::move(json); },
                 [&](caf::error& err) {
                   error = lost() ? lost_message()
                                  : "no answer from the study at " + where() + ": " +
                                        self_->system().render(err);
                 });
    return result;
  }

 private:
  caf::scoped_actor self_;
  shell_endpoint_actor endpoint_;
  shell_address address_;
  std::chrono::seconds answer_timeout_;
};

// Ctrl-C during `train --watch` ends the watch, not the shell.
volatile std::sig_atomic_t watch_interrupted = 0;
void on_watch_interrupt(int) { watch_interrupted = 1; }

// Our SIGINT handler for the life of a watch; the previous one afterwards
// (readline's prompt and a -c run keep their usual Ctrl-C).
struct interrupt_guard {
  struct sigaction previous {};
  interrupt_guard() {
    watch_interrupted = 0;
    struct sigaction sa {};
    sa.sa_handler = on_watch_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &previous);
  }
  ~interrupt_guard() { sigaction(SIGINT, &previous, nullptr); }
  interrupt_guard(const interrupt_guard&) = delete;
  interrupt_guard& operator=(const interrupt_guard&) = delete;
};

std::string clock_now() {
  const auto t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  char buf[16];
  std::strftime(buf, sizeof buf, "%H:%M:%S", &local);
  return buf;
}

// train --watch: asks `train` every interval and redraws (a terminal: in
// place; a pipe: one block per refresh, --json: one answer per line) until
// Ctrl-C (exit 0), training is over on every rank (exit 0), or the study is
// gone (exit 3). A first answer that is an error (the study does not train)
// ends it at once (exit 1); a later one is shown and the watch goes on.
int watch_train(session& s, const shell_command& cmd, bool json) {
  interrupt_guard guard;
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  char every[32];
  std::snprintf(every, sizeof every, "%g", cmd.watch_interval_s);
  bool answered = false;
  while (!watch_interrupted) {
    std::string error;
    const auto answer = s.ask("train", error);
    if (watch_interrupted) break;
    if (!answer) {
      std::cerr << "melissa-shell: " << error << "\n";
      return exit_unreachable;
    }
    const bool ok = answer_ok(*answer);
    const auto out = render_answer(command_kind::train, *answer);
    if (!ok && !answered) {
      (json ? std::cout : std::cerr) << (json ? *answer + "\n" : out.text) << std::flush;
      return exit_command_failed;
    }
    answered = true;
    if (json) {
      std::cout << *answer << "\n" << std::flush;
    } else {
      std::string screen = tty ? "\033[H\033[2J" : "";
      screen += "train, every " + std::string(every) + "s (Ctrl-C to stop), " + clock_now() + "\n";
      screen += out.text;
      if (!tty) screen += "\n";
      std::cout << screen << std::flush;
    }
    if (ok && training_over(nlohmann::json::parse(*answer, nullptr, false))) {
      if (!json) std::cout << "training is over\n" << std::flush;
      return exit_ok;
    }
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(cmd.watch_interval_s));
    while (std::chrono::steady_clock::now() < until && !watch_interrupted && !s.lost())
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (s.lost() && !watch_interrupted) {
      std::cerr << "melissa-shell: " << s.lost_message() << "\n";
      return exit_unreachable;
    }
  }
  if (tty && !json) std::cout << "\n" << std::flush;  // past the ^C the terminal echoed
  return exit_ok;
}

// Runs one parsed line; prints the answer. Returns the exit status it deserves.
int run_command(session& s, const std::string& line, const parse_result& parsed, bool json) {
  if (parsed.command().kind == command_kind::train && parsed.command().watch)
    return watch_train(s, parsed.command(), json);
  std::string error;
  const auto answer = s.ask(line, error);
  if (!answer) {
    std::cerr << "melissa-shell: " << error << "\n";
    return exit_unreachable;
  }
  if (json) {
    std::cout << *answer << "\n" << std::flush;
    return answer_ok(*answer) ? exit_ok : exit_command_failed;
  }
  const auto& cmd = parsed.command();
  const auto out = render_answer(cmd.kind, *answer, cmd.state_filter);
  (out.ok ? std::cout : std::cerr) << out.text << std::flush;
  return out.ok ? exit_ok : exit_command_failed;
}

// A line that does not parse: the error, then the help (typos are the usual cause).
void print_parse_error(const parse_result& parsed) {
  std::cerr << "melissa-shell: " << parsed.error() << "\n";
  std::cout << help_text() << std::flush;
}

std::string history_path() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return "";
  return std::string(home) + "/.melissa_shell_history";
}

// One line from the user: readline on a terminal (editing, history), plain
// getline from a pipe (scripts, tests: no escape sequences in the output).
std::optional<std::string> read_line(bool tty) {
  if (tty) {
    char* raw = readline("melissa> ");
    if (raw == nullptr) return std::nullopt;
    std::string line{raw};
    std::free(raw);
    return line;
  }
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  return line;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

int interactive(session& s, bool json) {
  const bool tty = ::isatty(STDIN_FILENO) != 0;
  // The token is checked on the first command: a wrong one ends the session
  // at once rather than after the user typed something.
  std::string error;
  const auto first = s.ask("status", error);
  if (!first) {
    std::cerr << "melissa-shell: " << error << "\n";
    return exit_unreachable;
  }
  if (!answer_ok(*first)) {
    std::cerr << render_answer(command_kind::status, *first).text;
    return exit_command_failed;
  }
  {
    const auto doc = nlohmann::json::parse(*first, nullptr, false);
    std::string name;
    for (const char* key : {"study", "name"})
      if (name.empty() && doc.contains(key) && doc[key].is_string()) name = doc[key].get<std::string>();
    std::cout << "connected to " << (name.empty() ? "the study" : "study '" + name + "'") << " at "
              << s.where();
    if (doc.contains("state")) std::cout << " (" << format_value(doc["state"]) << ")";
    std::cout << "; type help for the commands, quit to leave (the study goes on)\n" << std::flush;
  }

  const auto history = tty ? history_path() : "";
  if (!history.empty()) {
    // Created 0600: commands typed here are nobody else's business.
    const int fd = ::open(history.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
    read_history(history.c_str());
  }
  if (tty) {
    rl_event_hook = check_connection_hook;
    rl_set_keyboard_input_timeout(100000);  // microseconds: the hook runs ten times a second
  }

  int status = exit_ok;
  for (;;) {
    const auto raw = read_line(tty);
    if (s.lost()) {
      // On a terminal readline has already ended the line it was reading.
      std::cerr << "melissa-shell: " << s.lost_message() << "\n";
      status = exit_unreachable;
      break;
    }
    if (!raw) {  // EOF (Ctrl-D)
      if (tty) std::cout << "\n";
      break;
    }
    const auto line = trim(*raw);
    if (line.empty()) continue;
    if (!history.empty()) {
      add_history(line.c_str());
      append_history(1, history.c_str());
    }
    if (line == "quit" || line == "exit") break;
    const auto parsed = parse_command(line);
    if (!parsed.ok()) {
      print_parse_error(parsed);
      continue;
    }
    if (parsed.command().kind == command_kind::help && !json) {
      std::cout << help_text() << std::flush;
      continue;
    }
    const auto rc = run_command(s, line, parsed, json);
    if (rc == exit_unreachable) {
      status = rc;
      break;
    }
    if (rc == exit_ok && parsed.command().kind == command_kind::stop) {
      std::cout << "the study is stopping; leaving the shell\n";
      break;
    }
  }
  if (!history.empty()) history_truncate_file(history.c_str(), 1000);
  return status;
}

int run(const options& opt) {
  // A command that does not parse needs no study: answer it before connecting.
  std::optional<parse_result> parsed;
  if (opt.command) {
    parsed = parse_command(*opt.command);
    if (!parsed->ok()) {
      print_parse_error(*parsed);
      return exit_command_failed;
    }
    if (parsed->command().kind == command_kind::help && !opt.json) {
      std::cout << help_text();
      return exit_ok;
    }
  }

  shell_address address;
  try {
    address = resolve_target(opt.target, opt.token);
  } catch (const target_error& e) {
    std::cerr << "melissa-shell: " << e.what() << "\n";
    return e.exit_status;
  }
  const auto where = address.host + ":" + std::to_string(address.port);
  // The study's ports speak mutual TLS: without its key nothing gets through.
  security::credentials creds;
  try {
    const auto dir = opt.study_dir ? *opt.study_dir : address.study_dir;
    if (dir.empty())
      throw std::runtime_error("--study-dir is required with host:port (the study's output "
                               "directory, whose .melissa/ holds its TLS credentials)");
    creds = security::find_study_credentials(dir);
  } catch (const std::runtime_error& e) {
    std::cerr << "melissa-shell: " << e.what() << "\n";
    return opt.study_dir || !address.study_dir.empty() ? exit_unreachable : exit_usage;
  }

  caf::actor_system_config cfg;
  security::use_study_tls(cfg, creds);
  // Heartbeats both ways: ours let the study see a dead shell, and the
  // connection timeout drops a study that stopped sending its own (a killed
  // host, a network cut), which TCP alone would notice only after minutes.
  cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::seconds(1)});
  cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(opt.timeout_s)});
  // The shell mostly waits for the user: idle workers sleep instead of polling.
  cfg.set("scheduler.max-threads", static_cast<int64_t>(2));
  cfg.set("work-stealing.aggressive-poll-attempts", static_cast<int64_t>(0));
  cfg.set("work-stealing.moderate-poll-attempts", static_cast<int64_t>(0));
  caf::actor_system sys{cfg};

  // CAF starts the silence clock of an outgoing connection at zero, not at the
  // connect: a heartbeat tick that lands before the study's handshake arrives
  // drops the connection as timed out. Try again until the study has really
  // been silent for the whole timeout.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(opt.timeout_s);
  auto connect = [&] {
    const auto left = std::max(give_up - std::chrono::steady_clock::now(),
                               std::chrono::steady_clock::duration(std::chrono::milliseconds(100)));
    return security::remote_actor_within<shell_endpoint_actor>(
        sys, address.host, address.port, std::chrono::duration_cast<caf::timespan>(left));
  };
  auto endpoint = connect();
  while (!endpoint && endpoint.error() == caf::sec::connection_timeout &&
         std::chrono::steady_clock::now() < give_up)
    endpoint = connect();
  if (!endpoint) {
    std::cerr << "melissa-shell: cannot reach the study at " << where << ": "
              << sys.render(endpoint.error()) << "\n"
              << "  (is it still running? a shell.json left by a study that ended points "
                 "nowhere)\n";
    // A handshake the peer never answered may still be pending in CAF's
    // middleman, and ~actor_system would wait for it: nothing is left to
    // clean up, so leave now.
    std::cerr.flush();
    std::_Exit(exit_unreachable);
  }
  // Answers come within the endpoint's own launcher timeout (20 s); this one
  // only guards against an endpoint that never answers at all.
  session s{sys, std::move(*endpoint), address,
            std::chrono::seconds(std::max(30, 2 * opt.timeout_s))};
  if (opt.command) return run_command(s, *opt.command, *parsed, opt.json);
  return interactive(s, opt.json);
}

}  // namespace

int main(int argc, char** argv) {
  const auto opt = parse_options(argc, argv);
  const int status = run(opt);
  watch.reset();
  return status;
}
