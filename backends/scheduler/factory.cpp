#include "backends/scheduler/factory.hpp"

#include "backends/scheduler/local_backend.hpp"
#include "backends/scheduler/oar_backend.hpp"
#include "backends/scheduler/slurm_backend.hpp"

namespace melissa::scheduler {

job_settings to_job_settings(const config::job_placement& p, std::uint32_t tasks) {
  job_settings s;
  s.partition = p.partition;
  s.account = p.account;
  s.time_limit = p.time;
  s.nodes = p.nodes;
  s.tasks = tasks;
  s.gres = p.gres;
  s.extra = p.extra;
  return s;
}

job_settings job_settings_for(const config::study_config& study, job_kind kind) {
  return kind == job_kind::server ? to_job_settings(study.launcher.server_job, study.server.ranks)
                                  : to_job_settings(study.launcher.client_job, study.client.ranks);
}

std::unique_ptr<backend> make_backend(const config::study_config& study, command_runner runner) {
  const config::launcher_config& l = study.launcher;
  switch (l.backend) {
    case config::launcher_backend::local:
      // Refused before anything starts: mpirun would otherwise spin until the timeouts.
      local_backend::check_tasks(study.server.ranks, "server.ranks");
      local_backend::check_tasks(study.client.ranks, "client.ranks");
      return std::make_unique<local_backend>();
    case config::launcher_backend::slurm: {
      slurm_options o;
      o.schedule_in_schedule = l.schedule_in_schedule;
      o.allocation_nodes = l.allocation_nodes;
      o.allocation_time = l.allocation_time;
      o.allocation = to_job_settings(l.client_job, study.client.ranks);
      // The allocation holds the slots of job_limit clients, not whole nodes:
      // an exclusive allocation never starts on a node that also runs the
      // server (a one-node cluster, or a server sharing a client node).
      o.allocation_exclusive = false;
      o.allocation.extra.push_back("--ntasks=" + std::to_string(l.job_limit * study.client.ranks));
      o.allocation_log = study.study.output_dir + "/slurm-allocation-%j.log";
      o.array_size = l.slurm_array_size;
      return std::make_unique<slurm_backend>(std::move(runner), o);
    }
    case config::launcher_backend::oar:
      return std::make_unique<oar_backend>(std::move(runner));
  }
  throw backend_error("unknown backend");
}

}  // namespace melissa::scheduler
