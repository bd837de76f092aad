// From the study file to a backend: the one place that knows both
// config/study.hpp and the backends.
#pragma once

#include <memory>

#include "backends/scheduler/backend.hpp"
#include "config/study.hpp"

namespace melissa::scheduler {

// The backend of launcher.backend: local_backend, slurm_backend (with the
// schedule-in-schedule options of [launcher] and the placement of
// [launcher.client_job] for the allocation, whose log goes to
// "<study.output_dir>/slurm-allocation-%j.log") or oar_backend. The batch
// backends run their commands with `runner`.
std::unique_ptr<backend> make_backend(const config::study_config& study,
                                      command_runner runner = run_command);

// The scheduler settings of a job kind: the placement table of that kind,
// with tasks = server.ranks (server) or client.ranks (client).
job_settings job_settings_for(const config::study_config& study, job_kind kind);
job_settings to_job_settings(const config::job_placement& placement, std::uint32_t tasks);

}  // namespace melissa::scheduler
