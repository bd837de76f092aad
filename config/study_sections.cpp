// The sections of the study file: one read_* function per [section], each
// with the checks of its own values. Each reads its keys, then calls finish()
// so that its unknown keys are reported before the next section is looked at.
// Adding a section is one struct (study.hpp), one read_* function here, one
// write_* function (study_toml.cpp), one operator== (study_equality.cpp) and
// one line in each of parse_study (study.cpp) / to_toml.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "config/study_sections.hpp"

namespace melissa::config::detail {
namespace {

// ---------------------------------------------------------------------------
// String checks. A string check returns why the value is invalid, or "" when
// it is fine.

// Names end up in paths, CSV headers and key=value protocol lines.
std::string check_name(const std::string& s) {
  const bool ok = !s.empty() && s != "." && s != ".." &&
                  std::all_of(s.begin(), s.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' ||
                           c == '-';
                  });
  return ok ? std::string() : "must match [A-Za-z0-9_.-]+ (and not be . or ..), got " + quoted(s);
}

std::string check_not_empty(const std::string& s) {
  return s.empty() ? "must not be empty" : std::string();
}

std::string check_host(const std::string& s) {
  if (s.empty()) return "must not be empty";
  const bool ok = std::none_of(s.begin(), s.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c));
  });
  return ok ? std::string() : "must be a host name or an IP address, got " + quoted(s);
}

std::string check_env_name(const std::string& s) {
  const bool ok = !s.empty() && !std::isdigit(static_cast<unsigned char>(s[0])) &&
                  std::all_of(s.begin(), s.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                  });
  return ok ? std::string() : "not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)";
}

// Scheduler words (partition, account, gres) reach sbatch / oarsub as one
// argument each: no blanks, no control characters. Empty means "not set".
std::string check_word(const std::string& s) {
  const bool ok = std::none_of(s.begin(), s.end(), [](char c) {
    return std::isspace(static_cast<unsigned char>(c)) || std::iscntrl(static_cast<unsigned char>(c));
  });
  return ok ? std::string() : "must not contain spaces or control characters, got " + quoted(s);
}

// An extra scheduler option: one argument, so it cannot be empty.
std::string check_option(const std::string& s) {
  return s.empty() ? "must not be empty (each element is one option, e.g. \"--qos=fast\")"
                   : std::string();
}

std::string duration_form_error(const std::string& s) {
  return "must be a duration \"H:MM:SS\" or \"D-H:MM:SS\", got " + quoted(s);
}

// Time limits: empty means the scheduler's default; zero is refused (Slurm
// reads it as "no limit", OAR as nothing at all).
std::string check_time_limit(const std::string& s) {
  return s.empty() || duration_seconds(s) > 0 ? std::string()
                                              : duration_form_error(s) + " (and > 0)";
}

std::string check_duration(const std::string& s) {
  return duration_seconds(s) > 0 ? std::string() : duration_form_error(s) + " (and > 0)";
}

std::string check_activation(const std::string& s) {
  for (const char* a : {"relu", "tanh", "gelu", "silu"})
    if (s == a) return std::string();
  return "must be one of \"relu\", \"tanh\", \"gelu\", \"silu\", got " + quoted(s);
}

std::string check_device(const std::string& s) {
  for (const char* d : {"auto", "cpu", "cuda"})
    if (s == d) return std::string();
  return "must be one of \"auto\", \"cpu\", \"cuda\", got " + quoted(s);
}

// [launcher.server_job] / [launcher.client_job]. `ranks_key` is where the
// number of tasks of these jobs comes from (server.ranks / client.ranks).
job_placement read_job_placement(table_reader t, const char* ranks_key) {
  job_placement p;
  p.partition = t.string("partition", p.partition, check_word);
  p.account = t.string("account", p.account, check_word);
  p.time = t.string("time", p.time, check_time_limit);
  p.nodes = t.integer<std::uint32_t>("nodes", p.nodes, {1, {}});
  p.gres = t.string("gres", p.gres, check_word);
  p.extra = t.string_array("extra", check_option, false);
  // One number of tasks per job kind, kept where the rest of the study reads it.
  for (const char* tasks : {"tasks", "ntasks"})
    if (t.peek(tasks))
      t.fail_key(tasks, std::string("not a key here: the number of tasks is ") + ranks_key);
  t.finish();
  return p;
}

parameter_bounds read_pair(const table_reader& t, const toml::node& n, const std::string& key) {
  const auto* a = n.as_array();
  if (!a) t.fail(n, key, std::string("expected a [lo, hi] pair, got ") + type_name(n));
  if (a->size() != 2)
    t.fail(n, key, "expected a [lo, hi] pair, got " + count_of(a->size(), "value"));
  const parameter_bounds b{t.as_number((*a)[0], key + "[0]"), t.as_number((*a)[1], key + "[1]")};
  if (!(b.lo < b.hi))
    t.fail(n, key, "lo must be < hi, got [" + format_number(b.lo) + ", " + format_number(b.hi) + "]");
  return b;
}

// bounds = [lo, hi] for every name, or [[lo, hi], ...] with one pair per name.
std::vector<parameter_bounds> read_bounds(table_reader& t, std::size_t names) {
  const toml::node* n = t.find("bounds");
  if (!n) return std::vector<parameter_bounds>(names, parameter_bounds{});
  const std::string key = t.key_path("bounds");
  const toml::array& a = t.as_array(*n, key);
  if (a.empty()) t.fail(*n, key, "expected [lo, hi] or one [lo, hi] pair per name, got []");
  if (!a[0].is_array()) return std::vector<parameter_bounds>(names, read_pair(t, *n, key));
  std::vector<parameter_bounds> out;
  for (std::size_t i = 0; i < a.size(); ++i)
    out.push_back(read_pair(t, a[i], key + "[" + std::to_string(i) + "]"));
  if (out.size() != names)
    t.fail(*n, key,
           count_of(out.size(), "pair") + " given for " + count_of(names, "name") +
               " (give one [lo, hi] for all names, or one pair per name)");
  return out;
}

double read_fraction(table_reader& t, std::string_view key, double fallback) {
  const double v = t.number(key, fallback);
  if (v < 0 || v > 1) t.fail_key(key, "must be in [0, 1], got " + format_number(v));
  return v;
}

}  // namespace

study_section read_study(table_reader t) {
  study_section s;
  s.name = t.required_string("name", check_name);
  s.output_dir = t.string("output_dir", "studies/" + s.name, check_not_empty);
  // A TOML integer is signed 64-bit, hence the upper bound.
  s.seed = t.integer<std::uint64_t>("seed", s.seed, {0, int64_max});
  s.mode = t.choice("mode", s.mode, study_modes);
  t.finish();
  return s;
}

launcher_config read_launcher(table_reader t) {
  launcher_config l;
  l.backend = t.choice("backend", l.backend, backends);
  l.job_limit = t.integer<std::uint32_t>("job_limit", l.job_limit, {1, {}});
  l.max_retries = t.integer<std::uint32_t>("max_retries", l.max_retries, {0, {}});
  l.max_server_restarts =
      t.integer<std::uint32_t>("max_server_restarts", l.max_server_restarts, {0, {}});
  l.client_timeout = t.positive_number("client_timeout", l.client_timeout);
  l.server_timeout = t.positive_number("server_timeout", l.server_timeout);
  l.poll_interval = t.positive_number("poll_interval", l.poll_interval);
  if (l.poll_interval > max_poll_interval)
    t.fail_key("poll_interval", "must be in (0, " + format_number(max_poll_interval) +
                                    "] seconds, got " + format_number(l.poll_interval));
  l.shell_host = t.string("shell_host", l.shell_host, check_host);
  l.shell_port = t.integer<std::uint16_t>("shell_port", l.shell_port, {0, 65535});
  l.monitor_host = t.string("monitor_host", l.monitor_host, check_host);
  l.monitor_port = t.integer<std::uint16_t>("monitor_port", l.monitor_port, {0, 65535});
  l.schedule_in_schedule = t.boolean("schedule_in_schedule", l.schedule_in_schedule);
  l.allocation_nodes = t.integer<std::uint32_t>("allocation_nodes", l.allocation_nodes, {1, {}});
  l.allocation_time = t.string("allocation_time", l.allocation_time, check_duration);
  l.slurm_array_size = t.integer<std::uint32_t>("slurm_array_size", l.slurm_array_size, {0, max_slurm_array_size});
  l.server_job = read_job_placement(t.table("server_job", false), "server.ranks");
  l.client_job = read_job_placement(t.table("client_job", false), "client.ranks");
  t.finish();
  // Job steps inside one allocation are a Slurm notion (srun --jobid).
  if (l.schedule_in_schedule && l.backend != launcher_backend::slurm)
    t.fail_key("schedule_in_schedule", std::string("true requires launcher.backend = \"slurm\", got \"") +
                                           to_string(l.backend) + "\"");
  // Job arrays are a Slurm notion; steps of one allocation are not submitted at all.
  if (l.slurm_array_size > 1 && l.backend != launcher_backend::slurm)
    t.fail_key("slurm_array_size", "> 1 requires launcher.backend = \"slurm\", got \"" +
                                       std::string(to_string(l.backend)) + "\"");
  if (l.slurm_array_size > 1 && l.schedule_in_schedule)
    t.fail_key("slurm_array_size", "> 1 cannot be combined with schedule_in_schedule = true "
                                   "(clients are job steps, not jobs)");
  return l;
}

server_config read_server(table_reader t, const study_section& study) {
  server_config s;
  s.ranks = t.integer<std::uint32_t>("ranks", s.ranks, {1, {}});
  s.host = t.string("host", s.host, check_host);
  s.port = t.integer<std::uint16_t>("port", s.port, {0, 65535});
  // The frame length prefix is a u32: 4095 MiB plus a header still fits.
  s.max_frame_mb = t.integer<std::uint32_t>("max_frame_mb", s.max_frame_mb, {1, 4095});
  s.window_mb = t.integer<std::uint32_t>("window_mb", s.window_mb, {1, {}});
  s.budget_mb = t.integer<std::uint32_t>("budget_mb", s.budget_mb, {0, {}});
  s.io_threads = t.integer<std::uint32_t>("io_threads", s.io_threads, {1, 64});
  s.sink = t.choice("sink", s.sink, sinks);
  s.dataset_dir = t.string("dataset_dir", study.output_dir + "/dataset", check_not_empty);
  t.finish();
  // Each server rank would write its own part of the same files.
  if (s.sink == sink_kind::dataset && s.ranks != 1)
    t.fail_key("sink", "\"dataset\" requires server.ranks = 1, got server.ranks = " +
                           std::to_string(s.ranks));
  return s;
}

client_config read_client(table_reader t, sink_kind sink) {
  client_config c;
  c.command = t.string_array("command");
  if (c.command.empty()) t.fail_key("command", "must name the program to run, got an empty array");
  if (c.command.front().empty()) t.fail_key("command", "the program name (first element) is empty");
  c.ranks = t.integer<std::uint32_t>("ranks", c.ranks, {1, max_client_ranks});
  c.steps = t.integer<std::uint32_t>("steps", c.steps, {1, 1u << 24});
  c.env = t.string_table("env", check_env_name);
  t.finish();
  check_client_steps(t, c, sink);
  return c;
}

parameters_config read_parameters(table_reader t) {
  parameters_config p;
  p.names = t.string_array("names", check_name);
  if (p.names.empty()) t.fail_key("names", "at least one parameter name is required");
  for (std::size_t i = 1; i < p.names.size(); ++i) {
    const auto first = std::find(p.names.begin(), p.names.begin() + i, p.names[i]);
    if (first != p.names.begin() + i)
      t.fail_key("names", "duplicate parameter name " + quoted(p.names[i]) + " (names[" +
                              std::to_string(first - p.names.begin()) + "] and names[" +
                              std::to_string(i) + "])");
  }
  p.bounds = read_bounds(t, p.names.size());
  p.sampler = t.choice("sampler", p.sampler, samplers);
  p.scramble = t.boolean("scramble", p.scramble);
  // Simulation ids travel as u32 in every frame: that is the hard limit.
  p.count = t.required_integer<std::uint64_t>("count", {1, uint32_max});
  t.finish();
  // GSL's sequences stop at a number of dimensions and of points: say so here
  // rather than when the server draws the design.
  const std::string sampler = quoted(to_string(p.sampler));
  if (p.names.size() > max_parameters(p.sampler))
    t.fail_key("sampler", sampler + " supports at most " + std::to_string(max_parameters(p.sampler)) +
                              " parameters, got " + count_of(p.names.size(), "name"));
  if (p.count > max_count(p.sampler))
    t.fail_key("count", "sampler " + sampler + " supports at most " +
                            std::to_string(max_count(p.sampler)) + " simulations, got " +
                            std::to_string(p.count));
  // Every simulation costs memory up front (the whole design is drawn and
  // submitted at once): refuse here what would exhaust it mid-study.
  if (p.count > max_simulations)
    t.fail_key("count", "at most " + std::to_string(max_simulations) +
                            " simulations per study (the server and the launcher keep about " +
                            human_bytes(bytes_per_simulation(p.names.size())) +
                            " per simulation in memory: " + std::to_string(p.count) +
                            " would need about " +
                            human_bytes(static_cast<double>(p.count) *
                                        static_cast<double>(bytes_per_simulation(p.names.size()))) +
                            "), got " + std::to_string(p.count));
  if (p.scramble && (p.sampler == sampler_kind::uniform || p.sampler == sampler_kind::lhs))
    t.fail_key("scramble", "true requires a quasi-random sampler (\"halton\", \"reverse-halton\", "
                           "\"sobol\"), got " + sampler);
  return p;
}

std::vector<field_config> read_fields(table_reader& file, const study_config& c) {
  std::vector<field_config> fields;
  std::vector<std::uint32_t> name_lines;
  for (table_reader& t : file.tables("fields")) {
    field_config f;
    f.name = t.required_string("name", check_name);
    f.size = t.required_integer<std::uint64_t>("size", {1, {}});
    t.finish();
    for (std::size_t i = 0; i < fields.size(); ++i)
      if (fields[i].name == f.name)
        t.fail_key("name", "duplicate field name " + quoted(f.name) + " (also fields[" +
                               std::to_string(i) + "] on line " + std::to_string(name_lines[i]) +
                               ")");
    check_field_frame(t, f, c);
    fields.push_back(std::move(f));
    name_lines.push_back(t.line_of_key("name"));
  }
  return fields;
}

buffer_config read_buffer(table_reader t) {
  buffer_config b;
  b.policy = t.choice("policy", b.policy, buffer_policies);
  b.capacity = t.integer<std::uint64_t>("capacity", b.capacity, {1, {}});
  b.threshold = t.integer<std::uint64_t>("threshold", b.threshold, {0, {}});
  t.finish();
  // A threshold the buffer can never exceed would hold every batch back.
  if (b.threshold >= b.capacity)
    t.fail_key("threshold", "must be < buffer.capacity = " + std::to_string(b.capacity) + ", got " +
                                std::to_string(b.threshold));
  return b;
}

training_config read_training(table_reader t, const std::vector<field_config>& fields,
                              const buffer_config& buffer) {
  training_config c;
  c.field = t.string("field", fields.empty() ? std::string() : fields.front().name, check_not_empty);
  c.time_steps = t.integer<std::uint32_t>("time_steps", c.time_steps, {1, {}});
  c.model = t.string("model", c.model, check_not_empty);
  // The built-in MLP's shape means nothing next to a model of the user's.
  for (const char* builtin : {"hidden", "activation"})
    if (!c.model.empty() && t.peek(builtin))
      t.fail_key("model", std::string("excludes training.") + builtin + " (line " +
                              std::to_string(t.line_of_key(builtin)) +
                              "): a TorchScript model brings its own layers");
  c.hidden = t.integer_array<std::uint32_t>("hidden", c.hidden, {1, 1 << 20});
  c.activation = t.string("activation", c.activation, check_activation);
  c.device = t.string("device", c.device, check_device);
  c.weight_decay = t.number("weight_decay", c.weight_decay);
  if (c.weight_decay < 0)
    t.fail_key("weight_decay", "must be >= 0, got " + format_number(c.weight_decay));
  c.clip_grad_norm = t.number("clip_grad_norm", c.clip_grad_norm);
  if (c.clip_grad_norm < 0)
    t.fail_key("clip_grad_norm", "must be >= 0 (0: no clipping), got " + format_number(c.clip_grad_norm));
  c.batch_size = t.integer<std::uint32_t>("batch_size", c.batch_size, {1, 1 << 20});
  c.learning_rate = t.positive_number("learning_rate", c.learning_rate);
  c.lr_halving_batches = t.integer<std::uint64_t>("lr_halving_batches", c.lr_halving_batches, {0, {}});
  c.min_learning_rate = t.positive_number("min_learning_rate", c.min_learning_rate);
  c.output = t.choice("output", c.output, output_scalings);
  c.output_mean = t.number("output_mean", c.output_mean);
  c.output_std = t.positive_number("output_std", c.output_std);
  c.validation_dir = t.string("validation_dir", c.validation_dir);
  c.validation_every = t.integer<std::uint64_t>("validation_every", c.validation_every, {1, {}});
  c.metrics_every = t.integer<std::uint32_t>("metrics_every", c.metrics_every, {1, {}});
  c.threads = t.integer<std::uint32_t>("threads", c.threads, {0, 1024});
  t.finish();
  check_training_against(t, c, fields, buffer);
  return c;
}

breed_config read_breed(table_reader t, const study_config& c) {
  breed_config b;
  b.enabled = true;
  b.period = t.integer<std::uint32_t>("period", b.period, {1, {}});
  b.window = t.integer<std::uint32_t>("window", b.window, {1, {}});
  b.sigma = t.positive_number("sigma", b.sigma);
  b.r_start = read_fraction(t, "r_start", b.r_start);
  b.r_end = read_fraction(t, "r_end", b.r_end);
  b.r_steps = t.integer<std::uint32_t>("r_steps", b.r_steps, {1, {}});
  t.finish();
  if (b.sigma > 1) t.fail_key("sigma", "must be in (0, 1] (a share of each parameter's range), got " +
                                           format_number(b.sigma));
  check_breed_sink(t, c);
  return b;
}

checkpoint_config read_checkpoint(table_reader t, const study_section& study) {
  checkpoint_config c;
  c.every_batches = t.integer<std::uint64_t>("every_batches", c.every_batches, {0, {}});
  if (const toml::node* n = t.find("every_seconds")) {
    c.every_seconds = t.as_number(*n, t.key_path("every_seconds"));
    if (c.every_seconds < 0)
      t.fail(*n, t.key_path("every_seconds"), "must be >= 0, got " + format_number(c.every_seconds));
  }
  c.keep = t.integer<std::uint32_t>("keep", c.keep, {1, 1000});
  c.buffer = t.boolean("buffer", c.buffer);
  c.dir = t.string("dir", study.output_dir + "/checkpoints", check_not_empty);
  t.finish();
  return c;
}

statistics_config read_statistics(table_reader t, const study_config& c) {
  statistics_config s;
  s.moments = t.integer<std::uint32_t>("moments", s.moments, {1, 4});
  s.min_max = t.boolean("min_max", s.min_max);
  s.thresholds = t.number_array("thresholds");
  s.quantiles = t.number_array("quantiles");
  s.sobol = t.boolean("sobol", s.sobol);
  s.group_budget_mb = t.integer<std::uint32_t>("group_budget_mb", s.group_budget_mb, {1, 1 << 20});
  t.finish();
  // The steps held for incomplete pick-freeze groups count against the
  // rank's read budget: a group budget as large would let them take it all,
  // and the partner steps they wait for could never be read (a stall).
  if (s.sobol && c.server.budget_mb != 0 && s.group_budget_mb >= c.server.budget_mb)
    t.fail_key("group_budget_mb", std::to_string(s.group_budget_mb) +
                                      " MiB must be below server.budget_mb = " +
                                      std::to_string(c.server.budget_mb) +
                                      " MiB (held group steps count against it; the steps they "
                                      "wait for must still be read)");
  // Each threshold and quantile names an output file (threshold_<value>.npy).
  auto check_distinct = [&](const char* key, const std::vector<double>& values) {
    for (std::size_t i = 0; i < values.size(); ++i)
      for (std::size_t j = 0; j < i; ++j)
        if (values[j] == values[i])
          t.fail_key(key, "duplicate value " + format_number(values[i]) + " (" + key + "[" +
                              std::to_string(j) + "] and " + key + "[" + std::to_string(i) + "])");
  };
  check_distinct("thresholds", s.thresholds);
  for (std::size_t i = 0; i < s.quantiles.size(); ++i)
    if (!(s.quantiles[i] > 0 && s.quantiles[i] < 1))
      t.fail_key("quantiles", "quantiles[" + std::to_string(i) + "] must be in (0, 1), got " +
                                  format_number(s.quantiles[i]));
  check_distinct("quantiles", s.quantiles);
  if (s.sobol) {
    const std::size_t p = c.parameters.names.size();
    // A first-order index of the only parameter is 1 by construction.
    if (p < 2)
      t.fail_key("sobol", "true needs at least 2 parameters (parameters.names), got " +
                              count_of(p, "name"));
    // A and B are one draw of 2 x parameters dimensions of the study's sampler.
    if (2 * p > max_parameters(c.parameters.sampler))
      t.fail_key("sobol", "true draws 2 x " + std::to_string(p) + " dimensions with sampler " +
                              quoted(to_string(c.parameters.sampler)) + ", which supports at most " +
                              std::to_string(max_parameters(c.parameters.sampler)));
    const std::uint64_t sims = c.parameters.count * (p + 2);
    if (sims > max_simulations)
      t.fail_key("sobol", "true makes parameters.count = " + std::to_string(c.parameters.count) +
                              " groups of " + std::to_string(p + 2) + " simulations: " +
                              std::to_string(sims) + ", above the limit of " +
                              std::to_string(max_simulations) + " simulations per study");
  }
  return s;
}

}  // namespace melissa::config::detail
