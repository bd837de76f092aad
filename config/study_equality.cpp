// Equality of the study structs (a parsed study against its to_toml round trip).
#include <tuple>

#include "config/study.hpp"

namespace melissa::config {

bool operator==(const study_section& a, const study_section& b) {
  return std::tie(a.name, a.output_dir, a.seed, a.mode) ==
         std::tie(b.name, b.output_dir, b.seed, b.mode);
}
bool operator==(const job_placement& a, const job_placement& b) {
  return std::tie(a.partition, a.account, a.time, a.nodes, a.gres, a.extra) ==
         std::tie(b.partition, b.account, b.time, b.nodes, b.gres, b.extra);
}
bool operator==(const launcher_config& a, const launcher_config& b) {
  return std::tie(a.backend, a.job_limit, a.max_retries, a.max_server_restarts, a.client_timeout, a.server_timeout,
                  a.poll_interval, a.shell_host, a.shell_port, a.monitor_host, a.monitor_port, a.schedule_in_schedule,
                  a.allocation_nodes, a.allocation_time, a.slurm_array_size, a.server_job, a.client_job) ==
         std::tie(b.backend, b.job_limit, b.max_retries, b.max_server_restarts, b.client_timeout, b.server_timeout,
                  b.poll_interval, b.shell_host, b.shell_port, b.monitor_host, b.monitor_port, b.schedule_in_schedule,
                  b.allocation_nodes, b.allocation_time, b.slurm_array_size, b.server_job, b.client_job);
}
bool operator==(const server_config& a, const server_config& b) {
  return std::tie(a.ranks, a.host, a.port, a.max_frame_mb, a.window_mb, a.budget_mb, a.io_threads, a.sink, a.dataset_dir) ==
         std::tie(b.ranks, b.host, b.port, b.max_frame_mb, b.window_mb, b.budget_mb, b.io_threads, b.sink, b.dataset_dir);
}
bool operator==(const client_config& a, const client_config& b) {
  return std::tie(a.command, a.ranks, a.env, a.steps) == std::tie(b.command, b.ranks, b.env, b.steps);
}
bool operator==(const parameter_bounds& a, const parameter_bounds& b) {
  return a.lo == b.lo && a.hi == b.hi;
}
bool operator==(const parameters_config& a, const parameters_config& b) {
  return std::tie(a.names, a.bounds, a.sampler, a.scramble, a.count) ==
         std::tie(b.names, b.bounds, b.sampler, b.scramble, b.count);
}
bool operator==(const field_config& a, const field_config& b) {
  return a.name == b.name && a.size == b.size;
}
bool operator==(const buffer_config& a, const buffer_config& b) {
  return std::tie(a.policy, a.capacity, a.threshold) == std::tie(b.policy, b.capacity, b.threshold);
}
bool operator==(const training_config& a, const training_config& b) {
  return std::tie(a.field, a.time_steps, a.hidden, a.activation, a.batch_size, a.learning_rate,
                  a.lr_halving_batches, a.min_learning_rate, a.output, a.output_mean, a.output_std,
                  a.validation_dir, a.validation_every, a.metrics_every, a.threads, a.model,
                  a.device, a.weight_decay, a.clip_grad_norm) ==
         std::tie(b.field, b.time_steps, b.hidden, b.activation, b.batch_size, b.learning_rate,
                  b.lr_halving_batches, b.min_learning_rate, b.output, b.output_mean, b.output_std,
                  b.validation_dir, b.validation_every, b.metrics_every, b.threads, b.model,
                  b.device, b.weight_decay, b.clip_grad_norm);
}
bool operator==(const breed_config& a, const breed_config& b) {
  return std::tie(a.enabled, a.period, a.window, a.sigma, a.r_start, a.r_end, a.r_steps) ==
         std::tie(b.enabled, b.period, b.window, b.sigma, b.r_start, b.r_end, b.r_steps);
}
bool operator==(const checkpoint_config& a, const checkpoint_config& b) {
  return std::tie(a.every_batches, a.every_seconds, a.keep, a.buffer, a.dir) ==
         std::tie(b.every_batches, b.every_seconds, b.keep, b.buffer, b.dir);
}
bool operator==(const statistics_config& a, const statistics_config& b) {
  return std::tie(a.moments, a.min_max, a.thresholds, a.quantiles, a.sobol, a.group_budget_mb) ==
         std::tie(b.moments, b.min_max, b.thresholds, b.quantiles, b.sobol, b.group_budget_mb);
}
bool operator==(const study_config& a, const study_config& b) {
  return std::tie(a.study, a.launcher, a.server, a.client, a.parameters, a.fields, a.buffer,
                  a.training, a.breed, a.checkpoint, a.statistics) ==
         std::tie(b.study, b.launcher, b.server, b.client, b.parameters, b.fields, b.buffer,
                  b.training, b.breed, b.checkpoint, b.statistics);
}

}  // namespace melissa::config
