// The local backend and run_command, with real processes (sh, sleep, cat,
// mpirun): states and raw states, cancellation of whole process groups,
// the missing-executable message, environment, working directory and logs.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <filesystem>
#include <thread>

#include "backends/scheduler/local_backend.hpp"
#include "helpers.hpp"

using namespace melissa::scheduler;
using namespace melissa::scheduler::testing;
using namespace std::chrono_literals;

namespace {

job_request shell_job(const std::string& script, const temp_dir& dir, const std::string& name = "j") {
  job_request r;
  r.name = name;
  r.argv = {"sh", "-c", script};
  r.workdir = dir.path;
  r.stdout_path = dir / (name + ".out");
  r.stderr_path = dir / (name + ".err");
  return r;
}

// Live (not zombie) processes whose process group (or session) is `id`, from /proc.
int live_members(pid_t id, bool session = false) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string stat = read_file(entry.path().string() + "/stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0, sid = 0;
    rest >> state >> ppid >> pgrp >> sid;
    if ((session ? sid : pgrp) == id && state != 'Z' && state != 'X') ++n;
  }
  return n;
}

// Orphaned grandchildren come to this process (see the subreaper below):
// reap them so that their group really disappears.
void reap_orphans() {
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

}  // namespace

TEST_CASE("local: exit 0, exit 3 and a signal give completed, failed \"exited 3\", failed \"signal 9\"") {
  temp_dir dir;
  local_backend b;
  const auto ok = b.submit(shell_job("exit 0", dir, "ok"));
  const auto three = b.submit(shell_job("exit 3", dir, "three"));
  const auto killed = b.submit(shell_job("kill -9 $$", dir, "killed"));

  const job_status s_ok = wait_final(b, ok);
  CHECK(s_ok.id == ok);
  CHECK(s_ok.state == job_state::completed);
  CHECK(s_ok.raw_state == "exited 0");
  CHECK(s_ok.exit_code == 0);
  CHECK_FALSE(s_ok.signal);

  const job_status s_three = wait_final(b, three);
  CHECK(s_three.state == job_state::failed);
  CHECK(s_three.raw_state == "exited 3");
  CHECK(s_three.exit_code == 3);

  const job_status s_killed = wait_final(b, killed);
  CHECK(s_killed.state == job_state::failed);
  CHECK(s_killed.raw_state == "signal 9");
  CHECK(s_killed.signal == 9);
  CHECK_FALSE(s_killed.exit_code);

  // The job id is the pid; polling several at once keeps the order asked.
  CHECK(ok == std::to_string(std::stoi(ok)));
  const auto all = b.poll({three, ok, killed});
  REQUIRE(all.size() == 3);
  CHECK(all[0].id == three);
  CHECK(all[1].id == ok);
  CHECK(all[2].id == killed);
}

TEST_CASE("local: a running job reads running; an unknown id reads failed") {
  temp_dir dir;
  local_backend b;
  const auto id = b.submit(shell_job("sleep 5", dir));
  const auto s = b.poll({id, "999999999"});
  CHECK(s[0].state == job_state::running);
  CHECK(s[0].raw_state == "running");
  CHECK(s[1].state == job_state::failed);
  CHECK(s[1].raw_state == "unknown job id");
  b.cancel(id);
  CHECK(wait_final(b, id).state == job_state::cancelled);
}

TEST_CASE("local: cancel stops the whole process group, grandchildren included") {
  // Orphans are reparented to us rather than to PID 1 (which may not reap
  // them in a container), so that the group truly disappears once reaped.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  temp_dir dir;
  local_backend b;
  const auto id = b.submit(shell_job("sleep 100 & sleep 100 & wait", dir));
  const pid_t pgid = std::stoi(id);
  // Both sleeps started.
  for (int i = 0; i < 200 && live_members(pgid) < 3; ++i) std::this_thread::sleep_for(10ms);
  CHECK(live_members(pgid) == 3);
  CHECK(::getpgid(pgid) == pgid);  // the job leads its own group
  CHECK(::getsid(pgid) == pgid);   // and its own session

  const auto before = std::chrono::steady_clock::now();
  b.cancel(id);
  CHECK(std::chrono::steady_clock::now() - before < 100ms);  // never waits for the grace period
  const job_status s = wait_final(b, id);
  CHECK(s.state == job_state::cancelled);
  CHECK(s.raw_state == "signal 15");
  CHECK(s.signal == 15);
  for (int i = 0; i < 200 && live_members(pgid) > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(live_members(pgid) == 0);
  reap_orphans();
  CHECK(::kill(-pgid, 0) == -1);
  CHECK(errno == ESRCH);
  // Cancelling a finished job is not an error and changes nothing.
  b.cancel(id);
  CHECK(b.poll({id})[0].state == job_state::cancelled);
}

TEST_CASE("local: a group that ignores SIGTERM gets SIGKILL after the grace period, on a later poll") {
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  temp_dir dir;
  local_backend b(local_options{300ms});
  // The shell and its sleep (which inherits the ignored SIGTERM) both survive SIGTERM.
  const auto id = b.submit(shell_job("trap '' TERM; sleep 100 & wait; wait", dir));
  const pid_t pgid = std::stoi(id);
  for (int i = 0; i < 200 && live_members(pgid) < 2; ++i) std::this_thread::sleep_for(10ms);
  b.cancel(id);
  std::this_thread::sleep_for(100ms);
  const job_status early = b.poll({id})[0];
  CHECK(early.state == job_state::running);
  CHECK(early.raw_state == "stopping");
  const job_status s = wait_final(b, id, 5s);
  CHECK(s.state == job_state::cancelled);
  CHECK(s.raw_state == "signal 9");
  for (int i = 0; i < 200 && live_members(pgid) > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(live_members(pgid) == 0);
  reap_orphans();
  CHECK(::kill(-pgid, 0) == -1);
}

TEST_CASE("local: cancel reaches processes of the job's session in other process groups (mpirun's ranks)") {
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  temp_dir dir;
  local_backend b(local_options{300ms});
  // A grandchild that leaves the job's process group (as Open MPI's ranks
  // do) and ignores SIGTERM: only a session-wide SIGKILL stops it.
  const auto id = b.submit(shell_job(
      "python3 -c 'import os, signal; os.setpgid(0, 0); signal.signal(signal.SIGTERM, signal.SIG_IGN); "
      "os.execvp(\"sleep\", [\"sleep\", \"100\"])' & wait",
      dir));
  const pid_t sid = std::stoi(id);
  for (int i = 0; i < 300 && (live_members(sid, true) < 2 || live_members(sid) > 1); ++i)
    std::this_thread::sleep_for(10ms);
  REQUIRE(live_members(sid, true) == 2);
  CHECK(live_members(sid) == 1);  // the sleep is in a group of its own
  b.cancel(id);
  const job_status s = wait_final(b, id, 5s);
  CHECK(s.state == job_state::cancelled);
  for (int i = 0; i < 300 && live_members(sid, true) > 0; ++i) {
    b.poll({id});  // the SIGKILL after the grace period comes with a poll
    std::this_thread::sleep_for(10ms);
  }
  CHECK(live_members(sid, true) == 0);
  reap_orphans();
}

TEST_CASE("local: cancel of an mpirun job leaves no rank behind, even ranks that ignore SIGTERM") {
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  temp_dir dir;
  local_backend b(local_options{500ms});
  job_request r = shell_job("trap '' TERM; echo started; sleep 100", dir, "mpi-cancel");
  r.settings.tasks = 2;
  const auto id = b.submit(r);
  const pid_t sid = std::stoi(id);
  // mpirun, 2 shells, 2 sleeps (at least).
  for (int i = 0; i < 1000 && read_file(r.stdout_path).size() < 16; ++i) std::this_thread::sleep_for(10ms);
  CHECK(read_file(r.stdout_path) == "started\nstarted\n");
  // Each shell forks its sleep after its echo: wait for them (a loaded machine may lag).
  for (int i = 0; i < 500 && live_members(sid, true) < 5; ++i) std::this_thread::sleep_for(10ms);
  CHECK(live_members(sid, true) >= 5);
  b.cancel(id);
  const job_status s = wait_final(b, id, 10s);
  CHECK(s.state == job_state::cancelled);
  for (int i = 0; i < 300 && live_members(sid, true) > 0; ++i) {
    b.poll({id});
    std::this_thread::sleep_for(10ms);
  }
  CHECK(live_members(sid, true) == 0);
  reap_orphans();
}

TEST_CASE("local: a job that exits 0 after cancel stays completed; a non-zero exit reads cancelled") {
  temp_dir dir;
  local_backend b;
  const auto clean = b.submit(shell_job("trap 'exit 0' TERM; sleep 100 & wait", dir, "clean"));
  const auto dirty = b.submit(shell_job("trap 'exit 7' TERM; sleep 100 & wait", dir, "dirty"));
  std::this_thread::sleep_for(200ms);  // let the shells install their traps
  b.cancel(clean);
  b.cancel(dirty);
  CHECK(wait_final(b, clean).state == job_state::completed);
  const job_status d = wait_final(b, dirty);
  CHECK(d.state == job_state::cancelled);
  CHECK(d.raw_state == "exited 7");
}

TEST_CASE("local: a missing executable is a clear error at submit, nothing started") {
  temp_dir dir;
  local_backend b;
  job_request r = shell_job("", dir);
  r.argv = {"no-such-program-melissa", "--flag"};
  r.env = {{"PATH", "/usr/bin:/bin"}};
  try {
    b.submit(r);
    FAIL("no error");
  } catch (const backend_error& e) {
    CHECK(std::string(e.what()) == "client command 'no-such-program-melissa' not found (PATH=/usr/bin:/bin)");
  }
  r.kind = job_kind::server;
  CHECK_THROWS_WITH_AS(b.submit(r), "server command 'no-such-program-melissa' not found (PATH=/usr/bin:/bin)",
                       backend_error);
  // Without PATH in the job's environment, the launcher's PATH is searched and named.
  r.env.clear();
  const std::string path = std::getenv("PATH");
  CHECK_THROWS_WITH_AS(b.submit(r),
                       ("server command 'no-such-program-melissa' not found (PATH=" + path + ")").c_str(),
                       backend_error);
  // A path is taken relative to the job's working directory.
  r.kind = job_kind::client;
  r.argv = {"./solver"};
  CHECK_THROWS_WITH_AS(b.submit(r),
                       ("client command './solver' not found or not executable (relative to " + dir.path + ")")
                           .c_str(),
                       backend_error);
  write_file(dir / "solver", "#!/bin/sh\necho solved\n");
  CHECK_THROWS_AS(b.submit(r), backend_error);  // not executable yet
  std::filesystem::permissions(dir / "solver", std::filesystem::perms::owner_all);
  const auto id = b.submit(r);
  CHECK(wait_final(b, id).state == job_state::completed);
  CHECK(read_file(r.stdout_path) == "solved\n");
  // A directory on PATH with the name is not a program.
  std::filesystem::create_directory(dir / "bin");
  std::filesystem::create_directory(dir / "bin/tool");
  r.argv = {"tool"};
  r.env = {{"PATH", dir / "bin"}};
  CHECK_THROWS_WITH_AS(b.submit(r), ("client command 'tool' not found (PATH=" + dir / "bin" + ")").c_str(),
                       backend_error);
}

TEST_CASE("local: other submit errors: empty command, missing workdir, unwritable log") {
  temp_dir dir;
  local_backend b;
  job_request r = shell_job("true", dir, "x");
  r.argv.clear();
  CHECK_THROWS_WITH_AS(b.submit(r), "client job 'x': the command is empty", backend_error);
  r = shell_job("true", dir, "x");
  r.workdir = dir / "missing";
  CHECK_THROWS_WITH_AS(b.submit(r),
                       ("client job 'x': the working directory '" + dir / "missing" + "' does not exist").c_str(),
                       backend_error);
  r = shell_job("true", dir, "x");
  r.stdout_path = "/proc/melissa/cannot.out";
  CHECK_THROWS_AS(b.submit(r), backend_error);
  r = shell_job("true", dir, "x");
  r.env = {{"1BAD", "x"}};
  CHECK_THROWS_AS(b.submit(r), backend_error);
}

TEST_CASE("local: environment added, working directory, separate and shared log files") {
  temp_dir dir;
  std::filesystem::create_directory(dir / "work");
  local_backend b;
  job_request r = shell_job("echo \"$MELISSA_SIM_ID $HOME_SEEN\"; pwd; echo oops >&2", dir, "env");
  r.workdir = dir / "work";
  r.env = {{"MELISSA_SIM_ID", "12"}, {"HOME_SEEN", "a b'c"}};
  r.stdout_path = dir / "logs/deep/env.out";  // parent directories are created
  r.stderr_path = dir / "logs/deep/env.err";
  CHECK(wait_final(b, b.submit(r)).state == job_state::completed);
  CHECK(read_file(r.stdout_path) == "12 a b'c\n" + dir / "work" + "\n");
  CHECK(read_file(r.stderr_path) == "oops\n");

  // The inherited environment is kept; an added variable replaces an inherited one.
  ::setenv("MELISSA_TEST_INHERITED", "kept", 1);
  ::setenv("MELISSA_TEST_REPLACED", "old", 1);
  job_request both = shell_job("echo $MELISSA_TEST_INHERITED $MELISSA_TEST_REPLACED; echo e >&2", dir, "both");
  both.env = {{"MELISSA_TEST_REPLACED", "new"}};
  both.stderr_path = both.stdout_path;
  CHECK(wait_final(b, b.submit(both)).state == job_state::completed);
  CHECK(read_file(both.stdout_path) == "kept new\ne\n");

  // Logs are truncated by a new job with the same paths.
  CHECK(wait_final(b, b.submit(shell_job("echo second", dir, "both"))).state == job_state::completed);
  CHECK(read_file(both.stdout_path) == "second\n");
}

TEST_CASE("local: the command line of tasks > 1 goes through mpirun") {
  job_request r;
  r.argv = {"solver", "1.5"};
  CHECK(local_backend::command_line(r, false) == std::vector<std::string>{"solver", "1.5"});
  r.settings.tasks = 4;
  CHECK(local_backend::command_line(r, false) ==
        std::vector<std::string>{"mpirun", "--oversubscribe", "-n", "4", "solver", "1.5"});
  CHECK(local_backend::command_line(r, true) ==
        std::vector<std::string>{"mpirun", "--oversubscribe", "-n", "4", "--allow-run-as-root", "solver", "1.5"});
}

TEST_CASE("local: mpirun with 2 tasks runs the program twice") {
  temp_dir dir;
  local_backend b;
  job_request r = shell_job("echo rank=$OMPI_COMM_WORLD_RANK", dir, "mpi");
  r.settings.tasks = 2;
  const job_status s = wait_final(b, b.submit(r), 60s);
  CHECK(s.state == job_state::completed);
  const std::string out = read_file(r.stdout_path);
  CAPTURE(out);
  CAPTURE(read_file(r.stderr_path));
  CHECK(out.find("rank=0\n") != std::string::npos);
  CHECK(out.find("rank=1\n") != std::string::npos);
}

TEST_CASE("local: destroying the backend kills what still runs, its whole session") {
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  temp_dir dir;
  pid_t sid = 0;
  {
    local_backend b;
    sid = std::stoi(b.submit(shell_job(
        "python3 -c 'import os; os.setpgid(0, 0); os.execvp(\"sleep\", [\"sleep\", \"100\"])' & wait", dir)));
    for (int i = 0; i < 300 && (live_members(sid, true) < 2 || live_members(sid) > 1); ++i)
      std::this_thread::sleep_for(10ms);
    // On a mismatch, show the session (a diagnostic, the next CHECK fails too).
    if (live_members(sid, true) != 2) CHECK(run_command({"ps", "-s", std::to_string(sid), "-o", "pid,pgid,sid,stat,args"}).out == "");
    CHECK(live_members(sid, true) == 2);
  }
  // The leader was reaped by the destructor: the pid is gone; so is the rest.
  CHECK(::kill(sid, 0) == -1);
  for (int i = 0; i < 300 && live_members(sid, true) > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(live_members(sid, true) == 0);
  reap_orphans();
}

// --- run_command ------------------------------------------------------------

TEST_CASE("run_command: exit status, stdout and stderr apart, stdin") {
  const command_result r = run_command({"sh", "-c", "echo out; echo err >&2; exit 4"});
  CHECK(r.exit_code == 4);
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  CHECK(run_command({"cat"}, "from stdin\n").out == "from stdin\n");
  CHECK(run_command({"sh", "-c", "kill -9 $$"}).exit_code == 128 + 9);
  // Arguments are not interpreted by a shell.
  CHECK(run_command({"echo", "$HOME", "a;b", "*"}).out == "$HOME a;b *\n");
}

TEST_CASE("run_command: large stdin and outputs do not deadlock") {
  const std::string big(4 << 20, 'x');
  const command_result r = run_command({"sh", "-c", "cat; cat /dev/null >&2; head -c 3000000 /dev/zero >&2"}, big);
  CHECK(r.exit_code == 0);
  CHECK(r.out.size() == big.size());
  CHECK(r.err.size() == 3000000);
}

TEST_CASE("run_command: a command that ignores its stdin does not kill us with SIGPIPE") {
  const std::string big(1 << 20, 'y');
  for (int i = 0; i < 5; ++i) CHECK(run_command({"true"}, big).exit_code == 0);
}

TEST_CASE("run_command: a missing program is a backend_error naming it") {
  CHECK_THROWS_WITH_AS(run_command({"no-such-scheduler-command"}),
                       doctest::Contains("cannot run 'no-such-scheduler-command': command not found"),
                       backend_error);
  CHECK_THROWS_AS(run_command({}), backend_error);
}

TEST_CASE("run_command: robust to signals interrupting its system calls") {
  // A SIGALRM handler without SA_RESTART makes read/poll/waitpid return EINTR.
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  struct sigaction old {};
  ::sigaction(SIGALRM, &sa, &old);
  itimerval every_ms{{0, 1000}, {0, 1000}};
  ::setitimer(ITIMER_REAL, &every_ms, nullptr);
  const command_result r = run_command({"sh", "-c", "sleep 0.2; echo done"});
  itimerval off{};
  ::setitimer(ITIMER_REAL, &off, nullptr);
  ::sigaction(SIGALRM, &old, nullptr);
  CHECK(r.exit_code == 0);
  CHECK(r.out == "done\n");
}

TEST_CASE("state names") {
  CHECK(std::string(to_string(job_state::pending)) == "pending");
  CHECK(std::string(to_string(job_state::cancelled)) == "cancelled");
  CHECK(std::string(to_string(job_kind::server)) == "server");
  CHECK(is_final(job_state::completed));
  CHECK(is_final(job_state::failed));
  CHECK(is_final(job_state::cancelled));
  CHECK_FALSE(is_final(job_state::pending));
  CHECK_FALSE(is_final(job_state::running));
}

// Issue 16: the launcher learns a job's end the moment its process exits,
// not at its next poll.
TEST_CASE("local: the change listener is told when a job's process exits, once per exit") {
  temp_dir dir;
  local_backend backend;
  std::mutex m;
  std::condition_variable cv;
  int notices = 0;
  backend.set_change_listener([&] {
    std::lock_guard lock(m);
    ++notices;
    cv.notify_all();
  });
  const auto quick = backend.submit(shell_job("exit 0", dir, "quick"));
  const auto slow = backend.submit(shell_job("exec sleep 30", dir, "slow"));
  {
    std::unique_lock lock(m);
    // No poll has run: only the watcher can have said so (a generous bound:
    // this is no timing test, it only must not hang).
    REQUIRE(cv.wait_for(lock, 20s, [&] { return notices >= 1; }));
  }
  const auto states = backend.poll({quick, slow});
  CHECK(states[0].state == job_state::completed);
  CHECK(states[1].state == job_state::running);
  {
    std::lock_guard lock(m);
    CHECK(notices == 1);  // the sleeping job has not ended: no second notice
  }
  backend.cancel(slow);
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, 20s, [&] { return notices >= 2; }));
  }
  CHECK(backend.poll({slow})[0].state == job_state::cancelled);
  backend.set_change_listener(nullptr);
}

TEST_CASE("exit_watcher: every watched pid is reported once, in any order") {
  melissa::scheduler::detail::exit_watcher watcher;
  std::atomic<int> notices{0};
  watcher.set_notify([&] { ++notices; });
  std::vector<pid_t> pids;
  for (int i = 0; i < 5; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) ::_exit(i);
    REQUIRE(pid > 0);
    REQUIRE(watcher.watch(pid));
    pids.push_back(pid);
  }
  std::vector<pid_t> seen;
  for (int tries = 0; tries < 2000 && seen.size() < pids.size(); ++tries) {
    for (auto p : watcher.take_exited()) seen.push_back(p);
    std::this_thread::sleep_for(10ms);
  }
  std::sort(seen.begin(), seen.end());
  std::sort(pids.begin(), pids.end());
  CHECK(seen == pids);
  CHECK(notices.load() >= 1);
  CHECK(notices.load() <= 5);
  for (auto p : pids) ::waitpid(p, nullptr, 0);  // the watcher never reaps
}
