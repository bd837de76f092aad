// The study file: one TOML file describes a whole study (docs/study.md).
//
// This header holds the typed, fully resolved configuration and nothing of
// TOML++: every other part of Melissa links melissa-config and reads these
// structs, so the parser (study.cpp) is the only place that knows the file
// format. Every value here is already validated and every default filled in.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace melissa::config {

// A user error in a study file. what() reads
//   "study.toml:12:9: server.port: must be in [0, 65535], got 70000"
// i.e. "<source>:<line>:<column>: <dotted key>: <reason>". Errors without a
// position (an unreadable file) read "<source>: <reason>".
struct config_error : std::runtime_error {
  config_error(std::string source, std::uint32_t line, std::uint32_t column, std::string key,
               std::string reason);
  // Without a position in the file (line = column = 0).
  config_error(std::string source, std::string reason);

  std::string source;     // file name as given to load_study / parse_study
  std::uint32_t line;     // 1-based; 0 when the error has no position
  std::uint32_t column;   // 1-based; 0 when the error has no position
  std::string key;        // dotted key, e.g. "server.port", "fields[1].name"; may be empty
  std::string reason;     // the message without the prefix
};

enum class study_mode { training, statistics };
enum class launcher_backend { local, slurm, oar };
enum class sink_kind { count, dataset, train };
// Training buffer policies (the SC23 paper's FIFO, FIRO and Reservoir).
enum class buffer_policy { fifo, firo, reservoir };
// How the trainer normalizes its targets.
enum class output_scaling { running, constant };
// Designs of experiments (config/design.hpp): Monte Carlo, Latin hypercube,
// and GSL's Halton, reverse Halton and Sobol low-discrepancy sequences.
enum class sampler_kind { uniform, lhs, halton, reverse_halton, sobol };

// The spellings used in the file ("training", "slurm", ...).
const char* to_string(study_mode m);
const char* to_string(launcher_backend b);
const char* to_string(sink_kind s);
const char* to_string(buffer_policy p);
const char* to_string(output_scaling o);
const char* to_string(sampler_kind s);

// [study]
struct study_section {
  std::string name;                     // [A-Za-z0-9_.-]+
  std::string output_dir;               // default "studies/<name>"
  std::uint64_t seed = 0;               // 0 .. 2^63-1 (a TOML integer is signed 64-bit)
  study_mode mode = study_mode::training;
};

// [launcher.server_job] / [launcher.client_job]: where a batch scheduler
// (Slurm, OAR) places the jobs of one kind. The number of tasks (MPI ranks) is
// not here: it is server.ranks / client.ranks. The local backend ignores these.
struct job_placement {
  std::string partition;                // Slurm partition / OAR queue; "": the default
  std::string account;                  // Slurm account / OAR project; "": none
  std::string time;                     // "[D-]H:MM:SS" time limit / walltime; "": the default
  std::uint32_t nodes = 1;              // >= 1
  std::string gres;                     // Slurm --gres / OAR resource suffix; "": none
  std::vector<std::string> extra;       // options passed verbatim to sbatch / oarsub
};

// [launcher]
struct launcher_config {
  launcher_backend backend = launcher_backend::local;
  std::uint32_t job_limit = 4;          // simulations running at once, >= 1
  std::uint32_t max_retries = 2;        // restarts of a failed simulation, >= 0
  std::uint32_t max_server_restarts = 3;  // restarts of a failed server (from a checkpoint), >= 0
  double client_timeout = 300;          // seconds, > 0
  double server_timeout = 60;           // seconds, > 0
  double poll_interval = 1;             // seconds between two polls of the backend, (0, max_poll_interval]
  std::string shell_host = "127.0.0.1";  // address of the melissa-shell endpoint
  std::uint16_t shell_port = 0;         // 0: any free port
  std::string monitor_host = "127.0.0.1";  // address of the REST API and dashboard (docs/monitor.md)
  std::uint16_t monitor_port = 0;       // 0: any free port
  bool schedule_in_schedule = false;    // Slurm only: clients as steps of one allocation
  std::uint32_t allocation_nodes = 1;   // nodes of that allocation, >= 1
  std::string allocation_time = "01:00:00";  // its time limit, "[D-]H:MM:SS"
  // Slurm only: waiting simulations submitted together as one job array
  // (sbatch --array) of at most this many tasks; 0 or 1: one sbatch each.
  std::uint32_t slurm_array_size = 0;
  job_placement server_job;
  job_placement client_job;
};

// [server]
struct server_config {
  std::uint32_t ranks = 1;              // server processes, >= 1
  std::string host = "127.0.0.1";       // bind address
  std::uint16_t port = 0;               // 0: any free port
  std::uint32_t max_frame_mb = 256;     // MiB, 1 .. 4095 (the frame length prefix is u32)
  std::uint32_t window_mb = 64;         // MiB of credit per client connection, 1 .. 65536
  std::uint32_t budget_mb = 1024;       // MiB of step payloads held by a rank, all clients together; 0: no limit
  std::uint32_t io_threads = 2;         // threads reading client sockets, 1 .. 64
  sink_kind sink = sink_kind::count;
  std::string dataset_dir;              // default "<output_dir>/dataset"

  std::uint64_t max_frame_bytes() const { return std::uint64_t{max_frame_mb} << 20; }
  std::uint64_t window_bytes() const { return std::uint64_t{window_mb} << 20; }
  std::uint64_t budget_bytes() const { return std::uint64_t{budget_mb} << 20; }
};

// [client]
struct client_config {
  std::vector<std::string> command;           // argv; the launcher appends the parameters
  std::uint32_t ranks = 1;                    // MPI ranks per simulation (mpirun -n), 1 .. max_client_ranks
  std::map<std::string, std::string> env;     // extra environment variables
  // Time steps each simulation sends (0: not checked). A session that ends
  // with fewer, or sends a step index beyond, is a failed attempt.
  std::uint32_t steps = 0;
};

struct parameter_bounds {
  double lo = 100;
  double hi = 500;
};

// [parameters]
struct parameters_config {
  std::vector<std::string> names;             // unique, non-empty
  std::vector<parameter_bounds> bounds;       // one per name (a single pair in the file is expanded)
  sampler_kind sampler = sampler_kind::uniform;
  // Cranley-Patterson random shift (seeded by study.seed) of the
  // quasi-random samplers; refused with uniform and lhs, already random.
  bool scramble = false;
  std::uint64_t count = 0;                    // simulations, 1 .. max_simulations
};

// Bounds on values that are valid on paper but would break a running study.
// The launcher and the server keep a row per simulation in memory (the design,
// the job table, the received-step logs): a million is ten times the largest
// ensemble Melissa has run (80,000) and still fits in a few GB.
constexpr std::uint64_t max_simulations = 1'000'000;
// About what one simulation costs in memory (server and launcher together)
// with `parameters` parameters: the figure the count error quotes.
constexpr std::uint64_t bytes_per_simulation(std::size_t parameters) {
  return 1024 + 96 * static_cast<std::uint64_t>(parameters);
}
// Scheduler polls further apart than this would leave jobs that ended
// unnoticed for minutes; the launcher serves signals and submits on its own
// sub-second tick whatever this value.
constexpr double max_poll_interval = 60;
// Ranks of one simulation: a study value no backend places beyond this (the
// local backend has a smaller bound of its own, see backends/scheduler/).
constexpr std::uint32_t max_client_ranks = 1u << 20;
// Tasks of one Slurm job array: Slurm's default MaxArraySize is 1001 (task
// ids 0..1000), and a larger array buys nothing once sbatch calls are rare.
constexpr std::uint32_t max_slurm_array_size = 1000;

// What each sampler supports, from GSL's own tables (defined in design.cpp):
// Sobol 40 parameters and 2^30 - 1 points, (reverse) Halton 1229 parameters
// and 2^31 - 1 points; uniform and lhs have no limit of their own.
std::size_t max_parameters(sampler_kind s);
std::uint64_t max_count(sampler_kind s);

// [[fields]]
struct field_config {
  std::string name;                           // [A-Za-z0-9_.-]+, unique
  std::uint64_t size = 0;                     // global number of values per time step, >= 1
};

// [buffer]: the training buffer of each server rank (server.sink = "train").
struct buffer_config {
  buffer_policy policy = buffer_policy::reservoir;
  std::uint64_t capacity = 6000;        // samples per server rank, >= 1
  std::uint64_t threshold = 1000;       // watermark: no batch below this population, < capacity
};

// [training]: the surrogate each server rank trains (server.sink = "train").
struct training_config {
  std::string field;                          // the field the model predicts; default: fields[0]
  std::uint32_t time_steps = 100;             // steps per simulation: the time input is step / time_steps
  // The network: the built-in MLP (hidden, activation), or a TorchScript
  // file of the user's (`model`; excludes hidden and activation).
  std::string model;                          // path of a TorchScript module; "": the built-in MLP
  std::vector<std::uint32_t> hidden{256, 256};  // hidden layer widths, each >= 1
  std::string activation = "relu";            // relu | tanh | gelu | silu
  std::string device = "auto";                // auto | cpu | cuda: where each rank trains
  double weight_decay = 0;                    // Adam's L2 term (torch.optim.Adam), >= 0
  double clip_grad_norm = 0;                  // max gradient 2-norm; 0: no clipping
  std::uint32_t batch_size = 10;              // samples per batch and rank, >= 1
  double learning_rate = 1e-3;                // Adam, > 0
  std::uint64_t lr_halving_batches = 0;       // halve the rate every N batches; 0: never
  double min_learning_rate = 1e-5;            // halving stops here, > 0
  output_scaling output = output_scaling::running;
  double output_mean = 0;                     // output = "constant": targets become (y - mean) / std
  double output_std = 1;                      // > 0
  std::string validation_dir;                 // a dataset directory; "": no validation
  std::uint64_t validation_every = 100;       // batches between validations, >= 1
  std::uint32_t metrics_every = 10;           // batches per metrics window (throughput), >= 1
  std::uint32_t threads = 0;                  // torch threads per rank; 0: torch's default
};

// [breed]: Breed active-learning steering of the parameters of simulations not
// yet submitted (MelissaDL x Breed, SC24). Present in the file = enabled.
struct breed_config {
  bool enabled = false;
  std::uint32_t period = 200;    // P: training batches between two resamplings, >= 1
  std::uint32_t window = 200;    // N: population (last completed simulations), >= 1
  double sigma = 0.025;          // proposal width, in units of each parameter's range, in (0, 1]
  double r_start = 0.5;          // share of proposal points (else uniform) at the first resampling, [0, 1]
  double r_end = 0.9;            // ... after r_steps resamplings, [0, 1]
  std::uint32_t r_steps = 3;     // >= 1
};

// [checkpoint]: periodic checkpoints of the server (docs/checkpoints.md).
struct checkpoint_config {
  std::uint64_t every_batches = 1000;  // trained batches between two checkpoints; 0: not by batches
  double every_seconds = 600;          // seconds between two checkpoints, whichever comes first; 0: not by time
  std::uint32_t keep = 2;              // complete checkpoints kept, >= 1
  bool buffer = true;                  // save the training buffers' samples
  std::string dir;                     // default "<output_dir>/checkpoints"
};

// [statistics]: the statistics each server rank computes in statistics mode
// (study.mode = "statistics"; docs/statistics.md). Per field, time step and cell.
struct statistics_config {
  std::uint32_t moments = 2;            // 1: mean, 2: + variance, 3: + skewness, 4: + kurtosis
  bool min_max = true;                  // min and max, with the simulation that produced them
  std::vector<double> thresholds;       // exceedance counts (value > threshold), distinct
  std::vector<double> quantiles;        // Robbins-Monro quantiles, each in (0, 1), distinct
  bool sobol = false;                   // pick-freeze groups and Martinez Sobol indices
  std::uint32_t group_budget_mb = 256;  // MiB per server rank for steps of incomplete groups, >= 1

  std::uint64_t group_budget_bytes() const { return std::uint64_t{group_budget_mb} << 20; }
};

struct study_config {
  study_section study;
  launcher_config launcher;
  server_config server;
  client_config client;
  parameters_config parameters;
  std::vector<field_config> fields;           // at least one
  buffer_config buffer;
  training_config training;
  breed_config breed;
  checkpoint_config checkpoint;
  statistics_config statistics;               // read only in statistics mode
};

// Simulations of the study: parameters.count, or with statistics.sobol
// (pick-freeze) parameters.count groups of (parameters + 2) simulations.
std::uint64_t simulation_count(const study_config& c);
// Simulations per pick-freeze group: parameters + 2 with statistics.sobol, else 1.
std::uint32_t group_size(const study_config& c);

// Reads and validates a study file. Throws config_error for an unreadable
// file, a TOML syntax error, or any invalid value.
study_config load_study(const std::string& path);
// The same from text; `source_name` is the file name used in error messages.
study_config parse_study(std::string_view text, const std::string& source_name);
// The resolved configuration (every default written out) as TOML that
// parse_study reads back to an equal study_config.
std::string to_toml(const study_config& config);

// Seconds of a duration written "[D-]H:MM:SS" (the form of job_placement::time
// and launcher_config::allocation_time), or -1 when `text` is not one.
std::int64_t duration_seconds(std::string_view text);

bool operator==(const study_section& a, const study_section& b);
bool operator==(const job_placement& a, const job_placement& b);
bool operator==(const launcher_config& a, const launcher_config& b);
bool operator==(const server_config& a, const server_config& b);
bool operator==(const client_config& a, const client_config& b);
bool operator==(const parameter_bounds& a, const parameter_bounds& b);
bool operator==(const parameters_config& a, const parameters_config& b);
bool operator==(const field_config& a, const field_config& b);
bool operator==(const buffer_config& a, const buffer_config& b);
bool operator==(const training_config& a, const training_config& b);
bool operator==(const breed_config& a, const breed_config& b);
bool operator==(const checkpoint_config& a, const checkpoint_config& b);
bool operator==(const statistics_config& a, const statistics_config& b);
bool operator==(const study_config& a, const study_config& b);
inline bool operator!=(const study_section& a, const study_section& b) { return !(a == b); }
inline bool operator!=(const job_placement& a, const job_placement& b) { return !(a == b); }
inline bool operator!=(const launcher_config& a, const launcher_config& b) { return !(a == b); }
inline bool operator!=(const server_config& a, const server_config& b) { return !(a == b); }
inline bool operator!=(const client_config& a, const client_config& b) { return !(a == b); }
inline bool operator!=(const parameter_bounds& a, const parameter_bounds& b) { return !(a == b); }
inline bool operator!=(const parameters_config& a, const parameters_config& b) { return !(a == b); }
inline bool operator!=(const field_config& a, const field_config& b) { return !(a == b); }
inline bool operator!=(const study_config& a, const study_config& b) { return !(a == b); }

}  // namespace melissa::config
