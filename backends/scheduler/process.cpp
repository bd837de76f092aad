// fork/exec without a shell: run_command (the Slurm and OAR commands) and
// spawn_in_session / process_table (the local jobs and the srun steps).
//
// Between fork and exec the child only makes async-signal-safe calls: the
// launcher is multithreaded (CAF), and another thread may hold the malloc
// lock at the moment of the fork. Everything the child needs (argv, envp,
// open log files) is prepared before the fork.
#include "backends/scheduler/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <utility>

extern char** environ;

namespace melissa::scheduler {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

// argv / envp as execve wants them; the strings must outlive the pointers.
std::vector<char*> c_strings(std::vector<std::string>& items) {
  std::vector<char*> out;
  out.reserve(items.size() + 1);
  for (auto& s : items) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// This process's environment with `overrides` added (replacing same names).
std::vector<std::string> merged_environment(const std::map<std::string, std::string>& overrides) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos && overrides.count(entry.substr(0, eq))) continue;
    out.push_back(entry);
  }
  for (const auto& [name, value] : overrides) out.push_back(name + "=" + value);
  return out;
}

void close_quietly(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// --- child side (async-signal-safe only) -----------------------------------

// What went wrong in the child before exec, sent back through the pipe.
struct child_failure {
  int stage;  // 0: chdir, 1: dup2, 2: setsid, 3: exec
  int err;
};

[[noreturn]] void child_fail(int fd, int stage) {
  const child_failure f{stage, errno};
  // Nothing useful can be done if this write fails: the parent then sees EOF
  // without data and an exit status of 127.
  [[maybe_unused]] const auto n = ::write(fd, &f, sizeof f);
  ::_exit(127);
}

// Signal state is inherited through exec: ignored signals stay ignored and a
// blocked mask stays blocked (the launcher blocks SIGPIPE around writes, CAF
// may ignore SIGPIPE). Jobs start with the defaults.
void reset_signals_in_child() {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

// Descriptors the launcher holds (CAF sockets, other jobs' pipes) must not
// leak into jobs: mark every fd from 3 up close-on-exec. `max_fd` comes from
// the parent (sysconf is not async-signal-safe).
void close_on_exec_from_3(long max_fd) {
#ifdef CLOSE_RANGE_CLOEXEC
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
#endif
  for (long fd = 3; fd < max_fd; ++fd) {
    const int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
  }
}

long max_fd_for_child() {
  const long n = ::sysconf(_SC_OPEN_MAX);
  return n > 0 && n < 65536 ? n : 65536;
}

// Reads what the child reported before exec; false when exec succeeded (EOF).
bool read_child_failure(int fd, child_failure& f) {
  for (;;) {
    const ssize_t n = ::read(fd, &f, sizeof f);
    if (n < 0 && errno == EINTR) continue;
    return n == static_cast<ssize_t>(sizeof f);
  }
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return status;
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Opens a log for the child; its parent directory is created if missing.
int open_log(const std::string& path) {
  std::error_code ignored;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ignored);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw backend_error("cannot open the log file '" + path + "': " + errno_text(errno));
  return fd;
}

}  // namespace

// ---------------------------------------------------------------------------

namespace detail {

std::string current_path() {
  const char* p = std::getenv("PATH");
  return p ? p : "";
}

std::optional<std::string> find_program(const std::string& program, const std::string& path_env,
                                        const std::string& workdir) {
  if (program.empty()) return std::nullopt;
  auto relative_to_workdir = [&](const std::string& p) {
    return p.front() == '/' || workdir.empty() ? p : workdir + "/" + p;
  };
  if (program.find('/') != std::string::npos) {
    const std::string path = relative_to_workdir(program);
    return is_executable_file(path) ? std::optional<std::string>(path) : std::nullopt;
  }
  std::size_t begin = 0;
  for (;;) {
    const auto end = path_env.find(':', begin);
    std::string dir = path_env.substr(begin, end == std::string::npos ? end : end - begin);
    if (dir.empty()) dir = ".";  // POSIX: an empty PATH entry is the current directory
    const std::string candidate = relative_to_workdir(dir) + "/" + program;
    if (is_executable_file(candidate)) return candidate;
    if (end == std::string::npos) return std::nullopt;
    begin = end + 1;
  }
}

pid_t spawn_in_session(const spawn_request& request) {
  if (request.argv.empty()) throw backend_error("cannot start a job without a command");
  std::vector<std::string> argv_strings = request.argv;
  std::vector<std::string> env_strings = merged_environment(request.env);
  const std::vector<char*> argv = c_strings(argv_strings);
  const std::vector<char*> envp = c_strings(env_strings);
  int out_fd = -1, err_fd = -1;
  try {
    if (!request.stdout_path.empty()) out_fd = open_log(request.stdout_path);
    if (!request.stderr_path.empty())
      err_fd = request.stderr_path == request.stdout_path ? out_fd : open_log(request.stderr_path);
  } catch (...) {
    close_quietly(out_fd);
    throw;
  }

  // posix_spawn, not fork: glibc clones with CLONE_VM | CLONE_VFORK, so the
  // launcher's page tables are neither copied nor torn down at exec (with
  // fork that was most of the launcher's CPU per local job, issue 16), and
  // an exec failure comes back as its return value. In the child: a session
  // of its own, every signal to its default and none blocked, the workdir,
  // the logs, and nothing of the launcher's open above stderr.
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  ::posix_spawnattr_init(&attr);
  ::posix_spawn_file_actions_init(&actions);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  if (!request.workdir.empty()) ::posix_spawn_file_actions_addchdir_np(&actions, request.workdir.c_str());
  if (out_fd >= 0) ::posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  if (err_fd >= 0) ::posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  ::posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, request.executable.c_str(), &actions, &attr, argv.data(), envp.data());
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (err_fd != out_fd) close_quietly(err_fd);
  close_quietly(out_fd);
  if (rc == 0) return pid;
  // posix_spawn does not say which step failed: the working directory is
  // the one a user gets wrong besides the program.
  struct stat st {};
  const bool bad_workdir = !request.workdir.empty() &&
                           (::stat(request.workdir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
                            ::access(request.workdir.c_str(), X_OK) != 0);
  const std::string why = bad_workdir
                              ? "cannot change to the working directory '" + request.workdir + "'"
                              : "cannot execute '" + request.executable + "'";
  throw backend_error("cannot start '" + request.argv[0] + "': " + why + ": " + errno_text(rc));
}

// --- process_table -----------------------------------------------------------

bool signal_session(pid_t sid, int sig) {
  // The group first: it is the job itself in the common case.
  bool found = ::kill(-sid, sig) == 0;
  // Then every process of the session, whatever its group: mpirun (Open MPI
  // 4) puts each rank in a process group of its own, in mpirun's session.
  DIR* proc = ::opendir("/proc");
  if (!proc) return found;
  while (const dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || pid == sid) continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[512];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) continue;
    buf[n] = '\0';
    // "pid (comm) state ppid pgrp session ...": comm may hold spaces and ')'.
    const char* close = std::strrchr(buf, ')');
    char state = 0;
    long ppid = 0, pgrp = 0, session = 0;
    if (!close || std::sscanf(close + 1, " %c %ld %ld %ld", &state, &ppid, &pgrp, &session) != 4) continue;
    if (session == sid && ::kill(static_cast<pid_t>(pid), sig) == 0) found = true;
  }
  ::closedir(proc);
  return found;
}

job_status status_of_wait(const std::string& id, int wait_status, bool cancelled) {
  job_status s;
  s.id = id;
  if (WIFEXITED(wait_status)) {
    const int code = WEXITSTATUS(wait_status);
    s.exit_code = code;
    s.raw_state = "exited " + std::to_string(code);
    s.state = code == 0 ? job_state::completed : cancelled ? job_state::cancelled : job_state::failed;
  } else {
    const int sig = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;
    s.signal = sig;
    s.raw_state = "signal " + std::to_string(sig);
    s.state = cancelled ? job_state::cancelled : job_state::failed;
  }
  return s;
}

// --- exit_watcher ------------------------------------------------------------

struct exit_watcher::shared {
  std::mutex mutex;
  std::function<void()> notify;
  std::vector<std::pair<int, pid_t>> to_add;  // pidfds for the thread to take
  std::vector<pid_t> exited;
  bool stop = false;
  int wake = -1;  // eventfd: new pidfds or stop
};

namespace {

int pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

void watch_exits(const std::shared_ptr<exit_watcher::shared>& sh) {
  std::vector<pollfd> fds{pollfd{sh->wake, POLLIN, 0}};
  std::vector<pid_t> pids{0};
  for (;;) {
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;  // EINVAL/ENOMEM: polling still tells the ends
    }
    std::vector<pid_t> ended;
    for (std::size_t i = fds.size(); i-- > 1;) {
      if (!fds[i].revents) continue;
      ended.push_back(pids[i]);
      ::close(fds[i].fd);
      fds.erase(fds.begin() + static_cast<std::ptrdiff_t>(i));
      pids.erase(pids.begin() + static_cast<std::ptrdiff_t>(i));
    }
    std::lock_guard lock(sh->mutex);
    if (fds[0].revents) {
      std::uint64_t n = 0;
      [[maybe_unused]] auto r = ::read(sh->wake, &n, sizeof n);
      if (sh->stop) break;
      for (const auto& [fd, pid] : sh->to_add) {
        fds.push_back(pollfd{fd, POLLIN, 0});
        pids.push_back(pid);
      }
      sh->to_add.clear();
    }
    if (ended.empty()) continue;
    sh->exited.insert(sh->exited.end(), ended.begin(), ended.end());
    // Under the lock: once set_notify(nullptr) returns, no call is under way
    // (the listener may be an actor that is going away). It only enqueues.
    if (sh->notify) sh->notify();
  }
  for (std::size_t i = 1; i < fds.size(); ++i) ::close(fds[i].fd);
}

}  // namespace

exit_watcher::exit_watcher() : shared_(std::make_shared<shared>()) {}

exit_watcher::~exit_watcher() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->stop = true;
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] auto w = ::write(shared_->wake, &one, sizeof one);
    thread_.join();
  }
  for (const auto& [fd, pid] : shared_->to_add) ::close(fd);
  if (shared_->wake >= 0) ::close(shared_->wake);
}

void exit_watcher::set_notify(std::function<void()> notify) {
  std::lock_guard lock(shared_->mutex);
  shared_->notify = std::move(notify);
}

bool exit_watcher::watch(pid_t pid) {
  if (shared_->wake < 0) {
    shared_->wake = ::eventfd(0, EFD_CLOEXEC);
    if (shared_->wake < 0) return false;
  }
  // PIDFD_NONBLOCK is not needed: the fd is only polled. Close-on-exec is
  // implied for pidfds.
  const int fd = pidfd_open(pid);
  if (fd < 0) return false;
  if (!thread_.joinable()) thread_ = std::thread(watch_exits, shared_);
  {
    std::lock_guard lock(shared_->mutex);
    shared_->to_add.emplace_back(fd, pid);
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] auto w = ::write(shared_->wake, &one, sizeof one);
  return true;
}

std::vector<pid_t> exit_watcher::take_exited() {
  std::lock_guard lock(shared_->mutex);
  return std::exchange(shared_->exited, {});
}

// --- process_table -------------------------------------------------------------

process_table::process_table(std::chrono::milliseconds kill_grace) : kill_grace_(kill_grace) {}

process_table::~process_table() {
  for (auto& [id, e] : entries_) {
    reap(e);
    if (!e.ended) {
      signal_session(e.pid, SIGKILL);
      wait_for(e.pid);
    } else if (e.kill_at) {
      signal_session(e.pid, SIGKILL);
    }
  }
}

std::string process_table::add(pid_t pid) {
  std::string id = std::to_string(pid);
  for (int n = 2; entries_.count(id); ++n) id = std::to_string(pid) + "-" + std::to_string(n);
  add(id, pid);
  return id;
}

void process_table::add(const std::string& id, pid_t pid) {
  entry e;
  e.pid = pid;
  entries_.emplace(id, e);
  watcher_.watch(pid);
}

bool process_table::contains(const std::string& id) const { return entries_.count(id) > 0; }

void process_table::reap(entry& e) {
  if (e.ended) return;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(e.pid, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == e.pid) {
    e.ended = true;
    e.wait_status = status;
  } else if (r < 0 && errno == ECHILD) {
    e.ended = true;
    e.lost = true;
  }
}

void process_table::kill_if_due(entry& e, std::chrono::steady_clock::time_point now) {
  if (!e.kill_at || now < *e.kill_at) return;
  // The leader may be gone while a grandchild that ignored SIGTERM lives on:
  // the session id stays valid (and is not reused) while one member exists.
  signal_session(e.pid, SIGKILL);
  e.kill_at.reset();
}

void process_table::kill_later(const std::string& id, entry& e,
                               std::chrono::steady_clock::time_point now) {
  e.kill_at = now + kill_grace_;
  killing_.insert(id);
}

job_status process_table::status(const std::string& id) {
  const auto it = entries_.find(id);
  if (it == entries_.end()) {
    return job_status{id, job_state::failed, "unknown job id"};
  }
  entry& e = it->second;
  reap(e);
  kill_if_due(e, std::chrono::steady_clock::now());
  if (e.lost) {
    return job_status{id, e.cancelled ? job_state::cancelled : job_state::failed, "lost"};
  }
  if (!e.ended) {
    return job_status{id, job_state::running, e.cancelled ? "stopping" : "running"};
  }
  return status_of_wait(id, e.wait_status, e.cancelled);
}

void process_table::cancel(const std::string& id) {
  const auto it = entries_.find(id);
  if (it == entries_.end()) return;
  entry& e = it->second;
  reap(e);
  const auto now = std::chrono::steady_clock::now();
  if (e.kill_at) {
    kill_if_due(e, now);
    return;
  }
  if (e.ended) {
    // The job itself is over (its state stays what it was), but what it left
    // running in its group is stopped too. ESRCH: nothing left.
    if (signal_session(e.pid, SIGTERM)) kill_later(id, e, now);
    return;
  }
  if (e.cancelled) return;
  e.cancelled = true;
  signal_session(e.pid, SIGTERM);
  kill_later(id, e, now);
}

void process_table::finish_kills() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = killing_.begin(); it != killing_.end();) {
    auto& e = entries_.at(*it);
    reap(e);
    kill_if_due(e, now);
    it = e.kill_at ? std::next(it) : killing_.erase(it);
  }
}

}  // namespace detail

// --- run_command --------------------------------------------------------------

namespace {

// SIGPIPE would kill the launcher when a command exits without reading its
// stdin: block it in this thread while writing, and swallow the one raised here.
class sigpipe_guard {
 public:
  sigpipe_guard() {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask_);
  }
  ~sigpipe_guard() {
    if (!was_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        sigset_t pipe_only;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

 private:
  sigset_t old_mask_{};
  bool was_pending_ = false;
};

}  // namespace

command_result run_command(const std::vector<std::string>& argv_in, const std::string& stdin_text) {
  if (argv_in.empty()) throw backend_error("run_command: empty command");
  const std::string path_env = detail::current_path();
  const auto executable = detail::find_program(argv_in[0], path_env, "");
  if (!executable)
    throw backend_error("cannot run '" + argv_in[0] + "': command not found (PATH=" + path_env + ")");

  std::vector<std::string> argv_strings = argv_in;
  const std::vector<char*> argv = c_strings(argv_strings);
  const long max_fd = max_fd_for_child();

  sigpipe_guard guard;
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
  auto close_all = [&] {
    for (int* p : {in, out, err, report}) {
      close_quietly(p[0]);
      close_quietly(p[1]);
    }
  };
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC) ||
      ::pipe2(report, O_CLOEXEC)) {
    const int e = errno;
    close_all();
    throw backend_error("cannot run '" + argv_in[0] + "': pipe: " + errno_text(e));
  }

  const pid_t pid = ::fork();
  if (pid == 0) {
    reset_signals_in_child();
    if (::dup2(in[0], STDIN_FILENO) < 0 || ::dup2(out[1], STDOUT_FILENO) < 0 ||
        ::dup2(err[1], STDERR_FILENO) < 0)
      child_fail(report[1], 1);
    close_on_exec_from_3(max_fd);
    ::execv(executable->c_str(), argv.data());
    child_fail(report[1], 3);
  }
  const int fork_errno = errno;
  close_quietly(in[0]);
  close_quietly(out[1]);
  close_quietly(err[1]);
  close_quietly(report[1]);
  if (pid < 0) {
    close_all();
    throw backend_error("cannot run '" + argv_in[0] + "': fork: " + errno_text(fork_errno));
  }
  child_failure failure{};
  if (read_child_failure(report[0], failure)) {
    close_all();
    wait_for(pid);
    throw backend_error("cannot run '" + argv_in[0] + "': " + errno_text(failure.err));
  }
  close_quietly(report[0]);
  // A blocking write of the whole stdin would wait for the command to read
  // it while the command waits for us to read its output.
  ::fcntl(in[1], F_SETFL, ::fcntl(in[1], F_GETFL) | O_NONBLOCK);

  // Feed stdin and drain stdout/stderr together: a command that writes a lot
  // before reading would otherwise deadlock against us.
  command_result result;
  std::size_t written = 0;
  if (stdin_text.empty()) close_quietly(in[1]);
  char buffer[65536];
  while (out[0] >= 0 || err[0] >= 0) {
    pollfd fds[3];
    nfds_t n = 0;
    int* targets[3];
    auto watch = [&](int& fd, short events) {
      if (fd < 0) return;
      fds[n] = pollfd{fd, events, 0};
      targets[n++] = &fd;
    };
    watch(out[0], POLLIN);
    watch(err[0], POLLIN);
    watch(in[1], POLLOUT);
    if (::poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      close_all();
      wait_for(pid);
      throw backend_error("cannot run '" + argv_in[0] + "': poll: " + errno_text(e));
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      int& fd = *targets[i];
      if (&fd == &in[1]) {
        const ssize_t w = ::write(fd, stdin_text.data() + written, stdin_text.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EINTR && errno != EAGAIN) || written == stdin_text.size())
          close_quietly(fd);  // done, or the command stopped reading (EPIPE)
      } else {
        const ssize_t r = ::read(fd, buffer, sizeof buffer);
        if (r > 0)
          (&fd == &out[0] ? result.out : result.err).append(buffer, static_cast<std::size_t>(r));
        else if (r == 0 || (errno != EINTR && errno != EAGAIN))
          close_quietly(fd);
      }
    }
  }
  close_quietly(in[1]);
  const int status = wait_for(pid);
  if (status < 0) throw backend_error("cannot run '" + argv_in[0] + "': waitpid: " + errno_text(errno));
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

}  // namespace melissa::scheduler
