#include "backends/scheduler/local_backend.hpp"

#include <algorithm>
#include <cstdlib>

#include <sys/stat.h>
#include <unistd.h>

#include "backends/scheduler/script.hpp"

namespace melissa::scheduler {

local_backend::local_backend(local_options opts) : processes_(opts.kill_grace) {}

std::vector<std::string> local_backend::command_line(const job_request& request, bool as_root) {
  if (request.settings.tasks <= 1) return request.argv;
  // --oversubscribe: a workstation often has fewer cores than the ranks a
  // study asks for; correctness first, the scheduler backends place ranks.
  std::vector<std::string> out = {"mpirun", "--oversubscribe", "-n",
                                  std::to_string(request.settings.tasks)};
  // Open MPI refuses to start as root without it (containers, CI).
  if (as_root) out.push_back("--allow-run-as-root");
  out.insert(out.end(), request.argv.begin(), request.argv.end());
  return out;
}

std::uint32_t local_backend::max_tasks() {
  const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<std::uint32_t>(16 * std::max(1L, cpus));
}

void local_backend::check_tasks(std::uint32_t tasks, const std::string& key) {
  if (tasks > max_tasks())
    throw backend_error(key + " = " + std::to_string(tasks) +
                        " is more than the local backend runs on this machine (at most " +
                        std::to_string(max_tasks()) + ": 16 per CPU, " +
                        std::to_string(max_tasks() / 16) +
                        " CPUs); use a batch scheduler backend (slurm, oar) for larger jobs");
}

std::string local_backend::submit(const job_request& request) {
  detail::check_request(request);
  const std::string kind = to_string(request.kind);
  check_tasks(request.settings.tasks, kind + " job '" + request.name + "': tasks");
  if (!request.workdir.empty()) {
    struct stat st {};
    if (::stat(request.workdir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw backend_error(kind + " job '" + request.name + "': the working directory '" +
                          request.workdir + "' does not exist");
  }
  // The job's PATH is the one that finds its program.
  const auto path_it = request.env.find("PATH");
  const std::string path_env = path_it != request.env.end() ? path_it->second : detail::current_path();
  const auto program = detail::find_program(request.argv[0], path_env, request.workdir);
  if (!program) {
    const bool bare_name = request.argv[0].find('/') == std::string::npos;
    throw backend_error(kind + " command '" + request.argv[0] + "' not found" +
                        (bare_name ? " (PATH=" + path_env + ")"
                                   : request.argv[0].front() == '/' || request.workdir.empty()
                                         ? " or not executable"
                                         : " or not executable (relative to " + request.workdir + ")"));
  }

  detail::spawn_request spawn;
  spawn.argv = command_line(request, ::geteuid() == 0);
  if (request.settings.tasks > 1) {
    const auto mpirun = detail::find_program("mpirun", path_env, request.workdir);
    if (!mpirun)
      throw backend_error(kind + " job '" + request.name + "' needs mpirun for " +
                          std::to_string(request.settings.tasks) + " tasks: mpirun not found (PATH=" +
                          path_env + ")");
    spawn.executable = *mpirun;
    // mpirun runs the program we checked, not whatever its own search finds.
    spawn.argv[spawn.argv.size() - request.argv.size()] = *program;
  } else {
    spawn.executable = *program;
  }
  spawn.env = detail::job_environment(request);
  // A one-task job runs without mpirun, as an MPI "singleton": Open MPI then
  // starts its own runtime daemon, whose start-up took up to 2.5 s here
  // against 0.2 s isolated; a local simulation does not need it (it spawns
  // no processes). The user's own setting wins.
  if (request.settings.tasks <= 1 && !std::getenv("OMPI_MCA_ess_singleton_isolated"))
    spawn.env.emplace("OMPI_MCA_ess_singleton_isolated", "1");
  spawn.workdir = request.workdir;
  spawn.stdout_path = request.stdout_path;
  spawn.stderr_path = request.stderr_path;
  return processes_.add(detail::spawn_in_session(spawn));
}

std::vector<job_status> local_backend::poll(const std::vector<std::string>& ids) {
  processes_.finish_kills();
  std::vector<job_status> out;
  out.reserve(ids.size());
  for (const auto& id : ids) out.push_back(processes_.status(id));
  return out;
}

void local_backend::cancel(const std::string& id) { processes_.cancel(id); }

}  // namespace melissa::scheduler
