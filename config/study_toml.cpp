// to_toml: the resolved study written back as TOML.
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "config/study_reader.hpp"

namespace melissa::config {

using namespace detail;

// to_toml: the same sections in the same order, every key written.

namespace {

std::string string_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quoted(items[i]);
  return out + "]";
}

void write_study(std::ostream& out, const study_section& s) {
  if (s.seed > static_cast<std::uint64_t>(int64_max))
    throw config_error("to_toml", 0, 0, "study.seed",
                       "must be <= " + std::to_string(int64_max) + " to be written as a TOML integer, got " +
                           std::to_string(s.seed));
  out << "[study]\n"
      << "name = " << quoted(s.name) << "\n"
      << "output_dir = " << quoted(s.output_dir) << "\n"
      << "seed = " << s.seed << "\n"
      << "mode = " << quoted(to_string(s.mode)) << "\n";
}

void write_job_placement(std::ostream& out, const char* header, const job_placement& p) {
  out << header << "\n"
      << "partition = " << quoted(p.partition) << "\n"
      << "account = " << quoted(p.account) << "\n"
      << "time = " << quoted(p.time) << "\n"
      << "nodes = " << p.nodes << "\n"
      << "gres = " << quoted(p.gres) << "\n"
      << "extra = " << string_list(p.extra) << "\n";
}

void write_launcher(std::ostream& out, const launcher_config& l) {
  out << "[launcher]\n"
      << "backend = " << quoted(to_string(l.backend)) << "\n"
      << "job_limit = " << l.job_limit << "\n"
      << "max_retries = " << l.max_retries << "\n"
      << "max_server_restarts = " << l.max_server_restarts << "\n"
      << "client_timeout = " << format_number(l.client_timeout) << "\n"
      << "server_timeout = " << format_number(l.server_timeout) << "\n"
      << "poll_interval = " << format_number(l.poll_interval) << "\n"
      << "shell_host = " << quoted(l.shell_host) << "\n"
      << "shell_port = " << l.shell_port << "\n"
      << "monitor_host = " << quoted(l.monitor_host) << "\n"
      << "monitor_port = " << l.monitor_port << "\n"
      << "schedule_in_schedule = " << (l.schedule_in_schedule ? "true" : "false") << "\n"
      << "allocation_nodes = " << l.allocation_nodes << "\n"
      << "allocation_time = " << quoted(l.allocation_time) << "\n"
      << "slurm_array_size = " << l.slurm_array_size << "\n";
  out << "\n";
  write_job_placement(out, "[launcher.server_job]", l.server_job);
  out << "\n";
  write_job_placement(out, "[launcher.client_job]", l.client_job);
}

void write_server(std::ostream& out, const server_config& s) {
  out << "[server]\n"
      << "ranks = " << s.ranks << "\n"
      << "host = " << quoted(s.host) << "\n"
      << "port = " << s.port << "\n"
      << "max_frame_mb = " << s.max_frame_mb << "\n"
      << "window_mb = " << s.window_mb << "\n"
      << "budget_mb = " << s.budget_mb << "\n"
      << "io_threads = " << s.io_threads << "\n"
      << "sink = " << quoted(to_string(s.sink)) << "\n"
      << "dataset_dir = " << quoted(s.dataset_dir) << "\n";
}

void write_client(std::ostream& out, const client_config& c) {
  out << "[client]\n"
      << "command = " << string_list(c.command) << "\n"
      << "ranks = " << c.ranks << "\n";
  if (c.steps > 0) out << "steps = " << c.steps << "\n";
  out << "env = {";
  bool first = true;
  for (const auto& [k, v] : c.env) {
    out << (first ? " " : ", ") << quoted(k) << " = " << quoted(v);
    first = false;
  }
  out << (first ? "}" : " }") << "\n";
}

void write_parameters(std::ostream& out, const parameters_config& p) {
  out << "[parameters]\n"
      << "names = " << string_list(p.names) << "\n"
      << "bounds = [";
  for (std::size_t i = 0; i < p.bounds.size(); ++i)
    out << (i ? ", " : "") << "[" << format_number(p.bounds[i].lo) << ", "
        << format_number(p.bounds[i].hi) << "]";
  out << "]\n"
      << "sampler = " << quoted(to_string(p.sampler)) << "\n"
      << "scramble = " << (p.scramble ? "true" : "false") << "\n"
      << "count = " << p.count << "\n";
}

void write_fields(std::ostream& out, const std::vector<field_config>& fields) {
  for (std::size_t i = 0; i < fields.size(); ++i) {
    out << (i ? "\n" : "") << "[[fields]]\n"
        << "name = " << quoted(fields[i].name) << "\n"
        << "size = " << fields[i].size << "\n";
  }
}

std::string number_list(const std::vector<std::uint32_t>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + std::to_string(items[i]);
  return out + "]";
}

void write_buffer(std::ostream& out, const buffer_config& b) {
  out << "[buffer]\n"
      << "policy = " << quoted(to_string(b.policy)) << "\n"
      << "capacity = " << b.capacity << "\n"
      << "threshold = " << b.threshold << "\n";
}

void write_training(std::ostream& out, const training_config& c) {
  out << "[training]\n"
      << "field = " << quoted(c.field) << "\n"
      << "time_steps = " << c.time_steps << "\n";
  // model excludes hidden and activation: write one or the other.
  if (c.model.empty())
    out << "hidden = " << number_list(c.hidden) << "\n"
        << "activation = " << quoted(c.activation) << "\n";
  else
    out << "model = " << quoted(c.model) << "\n";
  out << "device = " << quoted(c.device) << "\n"
      << "weight_decay = " << format_number(c.weight_decay) << "\n"
      << "clip_grad_norm = " << format_number(c.clip_grad_norm) << "\n"
      << "batch_size = " << c.batch_size << "\n"
      << "learning_rate = " << format_number(c.learning_rate) << "\n"
      << "lr_halving_batches = " << c.lr_halving_batches << "\n"
      << "min_learning_rate = " << format_number(c.min_learning_rate) << "\n"
      << "output = " << quoted(to_string(c.output)) << "\n"
      << "output_mean = " << format_number(c.output_mean) << "\n"
      << "output_std = " << format_number(c.output_std) << "\n"
      << "validation_dir = " << quoted(c.validation_dir) << "\n"
      << "validation_every = " << c.validation_every << "\n"
      << "metrics_every = " << c.metrics_every << "\n"
      << "threads = " << c.threads << "\n";
}

void write_breed(std::ostream& out, const breed_config& b) {
  out << "[breed]\n"
      << "period = " << b.period << "\n"
      << "window = " << b.window << "\n"
      << "sigma = " << format_number(b.sigma) << "\n"
      << "r_start = " << format_number(b.r_start) << "\n"
      << "r_end = " << format_number(b.r_end) << "\n"
      << "r_steps = " << b.r_steps << "\n";
}

void write_checkpoint(std::ostream& out, const checkpoint_config& c) {
  out << "[checkpoint]\n"
      << "every_batches = " << c.every_batches << "\n"
      << "every_seconds = " << format_number(c.every_seconds) << "\n"
      << "keep = " << c.keep << "\n"
      << "buffer = " << (c.buffer ? "true" : "false") << "\n"
      << "dir = " << quoted(c.dir) << "\n";
}

std::string number_array(const std::vector<double>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + format_number(items[i]);
  return out + "]";
}

void write_statistics(std::ostream& out, const statistics_config& s) {
  out << "[statistics]\n"
      << "moments = " << s.moments << "\n"
      << "min_max = " << (s.min_max ? "true" : "false") << "\n"
      << "thresholds = " << number_array(s.thresholds) << "\n"
      << "quantiles = " << number_array(s.quantiles) << "\n"
      << "sobol = " << (s.sobol ? "true" : "false") << "\n"
      << "group_budget_mb = " << s.group_budget_mb << "\n";
}

}  // namespace

std::string to_toml(const study_config& c) {
  std::ostringstream out;
  out << "# Resolved study configuration: every default written out.\n\n";
  write_study(out, c.study);
  out << "\n";
  write_launcher(out, c.launcher);
  out << "\n";
  write_server(out, c.server);
  out << "\n";
  write_client(out, c.client);
  out << "\n";
  write_parameters(out, c.parameters);
  out << "\n";
  write_fields(out, c.fields);
  // Only a training study may have these sections (parse_study refuses them otherwise).
  if (c.server.sink == sink_kind::train) {
    out << "\n";
    write_buffer(out, c.buffer);
    out << "\n";
    write_training(out, c.training);
  }
  if (c.breed.enabled) {  // the section's presence is what enables Breed
    out << "\n";
    write_breed(out, c.breed);
  }
  out << "\n";
  write_checkpoint(out, c.checkpoint);
  if (c.study.mode == study_mode::statistics) {  // parse_study refuses [statistics] otherwise
    out << "\n";
    write_statistics(out, c.statistics);
  }
  return out.str();
}

}  // namespace melissa::config
