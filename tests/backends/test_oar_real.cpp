// The OAR backend against a real one-node OAR 2.5 (tests/backends/oar/start-oar.sh
// starts it): jobs that complete, fail (exit 3), exceed a one-minute
// walltime, are cancelled (oardel), and a two-task job under mpirun. Every
// poll is counted: exactly one oarstat.
//
// OAR's default admission rules refuse jobs from root, so the backend's
// commands run as the user melissa-oar (`runuser -u melissa-oar --`): the
// injected command_runner is the only thing that differs from production.
//
// doctest, with a main of its own: exit 77 (skipped) when not root or when
// OAR is not installed, checked before any test case runs. Takes about
// 90-120 s, most of it waiting for OAR's walltime check. The jobs' logs stay
// in /tmp/melissa-oar-* when a check fails.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "backends/scheduler/oar_backend.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::scheduler;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

const char* const oar_user = "melissa-oar";
// The jobs' directory (owned by oar_user), made by main once OAR is up.
std::string dir;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct counting_runner {
  std::map<std::string, int> calls;
  command_runner runner() {
    return [this](const std::vector<std::string>& argv, const std::string& in) {
      ++calls[argv.at(0)];
      std::vector<std::string> as_user = {"runuser", "-u", oar_user, "--"};
      as_user.insert(as_user.end(), argv.begin(), argv.end());
      return run_command(as_user, in);
    };
  }
};

job_request shell_job(const std::string& name, const std::string& script, const std::string& dir) {
  job_request r;
  r.name = name;
  r.argv = {"sh", "-c", script};
  r.workdir = dir;
  r.stdout_path = dir + "/" + name + ".out";
  r.stderr_path = dir + "/" + name + ".err";
  return r;
}

}  // namespace

TEST_CASE("jobs: 2 tasks under mpirun, exit 0, exit 3, a 1-minute walltime, a cancelled one") {
  counting_runner counter;
  oar_backend b(counter.runner());
  job_request two = shell_job("two-tasks", "echo rank $OMPI_COMM_WORLD_RANK", dir);
  two.settings.tasks = 2;
  const auto two_id = b.submit(two);
  job_request ok = shell_job("ok", "echo hello $MELISSA_X from $(pwd)", dir);
  ok.env = {{"MELISSA_X", "it's here"}};
  const auto ok_id = b.submit(ok);
  const auto fail_id = b.submit(shell_job("fail", "echo failing >&2; exit 3", dir));
  job_request slow = shell_job("walltime", "sleep 150", dir);
  slow.settings.time_limit = "00:01:00";
  const auto walltime_id = b.submit(slow);
  const auto cancel_id = b.submit(shell_job("cancel", "sleep 100", dir));
  CHECK(counter.calls["oarsub"] == 5);

  const std::vector<std::string> ids = {two_id, ok_id, fail_id, walltime_id, cancel_id};
  const auto start = clock_type::now();
  const auto end = start + 170s;
  std::map<std::string, job_status> last;
  bool cancel_sent = false;
  for (;;) {
    counter.calls.clear();
    bool all_final = true;
    for (const auto& s : b.poll(ids)) {
      last[s.id] = s;
      all_final = all_final && is_final(s.state);
    }
    CHECK(counter.calls["oarstat"] <= 1);
    if (!cancel_sent && last[cancel_id].state == job_state::running) {
      b.cancel(cancel_id);
      cancel_sent = true;
    }
    if (all_final || clock_type::now() > end) break;
    std::this_thread::sleep_for(1s);
  }
  std::cout << "all final after " << std::chrono::duration<double>(clock_type::now() - start).count() << " s\n";
  for (const auto& id : ids)
    std::cout << "  " << id << ": " << to_string(last[id].state) << " (" << last[id].raw_state << ")\n";

  CHECK(last[two_id].state == job_state::completed);
  const std::string two_out = read_file(two.stdout_path);
  CHECK(two_out.find("rank 0") != std::string::npos);
  CHECK(two_out.find("rank 1") != std::string::npos);
  CHECK(last[ok_id].state == job_state::completed);
  CHECK(last[ok_id].raw_state == "Terminated");
  CHECK(last[ok_id].exit_code == 0);
  CHECK(read_file(ok.stdout_path) == "hello it's here from " + dir + "\n");
  CHECK(last[fail_id].state == job_state::failed);
  CHECK(last[fail_id].exit_code == 3);
  CHECK(read_file(dir + "/fail.err") == "failing\n");
  CHECK(last[walltime_id].state == job_state::failed);
  CHECK(cancel_sent);
  CHECK(last[cancel_id].state == job_state::cancelled);
  CHECK(last[cancel_id].raw_state == "Error");
}

int main(int argc, char** argv) {
  if (::geteuid() != 0) {
    std::cout << "skipped: starting OAR needs root\n";
    return 77;
  }
  const char* source = std::getenv("MELISSA_SOURCE_DIR");
  const std::string script =
      std::string(source ? source : MELISSA_SOURCE_DIR) + "/tests/backends/oar/start-oar.sh";
  const command_result started = run_command({"bash", script});
  std::cout << started.out << started.err;
  if (started.exit_code == 77) {
    std::cout << "skipped: OAR is not installed\n";
    return 77;
  }
  if (started.exit_code != 0) {
    std::cerr << "cannot start OAR (exit " << started.exit_code << ")\n";
    return 1;
  }
  const passwd* pw = ::getpwnam(oar_user);
  if (!pw) {
    std::cerr << "no user " << oar_user << "\n";
    return 1;
  }
  melissa::testing::temp_dir jobs("melissa-oar", "/tmp");
  dir = jobs.path;
  // The jobs run as melissa-oar and write their logs here.
  if (::chown(dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) std::perror("chown");

  doctest::Context context(argc, argv);
  const int status = context.run();
  if (status != 0 && !context.shouldExit()) {
    jobs.keep();
    std::cerr << "logs kept in " << dir << "\n";
  }
  return status;
}
