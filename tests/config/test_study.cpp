// The study file: round trip, defaults, and the exact text of each error kind
// (file:line:column, dotted key, reason) since users read these messages.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "config/study.hpp"
#include "tests/config/error_of.hpp"

using namespace melissa::config;

namespace {

// The smallest valid study: only the required keys.
const char* const minimal = R"(
[study]
name = "mini"

[client]
command = ["solver"]

[parameters]
names = ["a", "b"]
count = 3

[[fields]]
name = "u"
size = 10
)";

// Every key set to something other than its default.
const char* const full = R"(# every key
[study]
name = "full-study_1.0"
output_dir = "/scratch/out dir"
seed = 9223372036854775807
mode = "statistics"

[launcher]
backend = "slurm"
job_limit = 16
max_retries = 0
client_timeout = 12.5
server_timeout = 7
poll_interval = 0.25
shell_host = "0.0.0.0"
shell_port = 4242
schedule_in_schedule = true
allocation_nodes = 8
allocation_time = "2-12:30:00"

[launcher.server_job]
partition = "gpu"
account = "proj-42"
time = "10:00:00"
nodes = 2
gres = "gpu:4"
extra = ["--qos=high", "--constraint=a100"]

[launcher.client_job]
partition = "cpu"
time = "0:05:00"

[server]
ranks = 4
host = "0.0.0.0"
port = 65535
max_frame_mb = 4095
window_mb = 1
sink = "count"
dataset_dir = "/tmp/ds"

[client]
command = ["mpirun-wrapper", "--flag", "with \"quotes\" and \\ backslash", "", "tab\there"]
ranks = 8
env = { OMP_NUM_THREADS = "1", _X9 = "a=b", EMPTY = "" }
steps = 7

[parameters]
names = ["x", "y.z", "w-1"]
bounds = [[-1, 1], [0.1, 0.30000000000000004], [-1e300, 1e300]]
sampler = "uniform"
count = 1000000

[[fields]]
name = "temperature"
size = 4096

[[fields]]
name = "pressure"
size = 9223372036854775807

[statistics]
moments = 4
min_max = false
thresholds = [0.5, -1e300]
quantiles = [0.05, 0.95]
sobol = false
group_budget_mb = 17
)";


// `minimal` with `extra` appended (keys land in the [[fields]] table unless
// `extra` opens a section).
std::string minimal_plus(const std::string& extra) { return std::string(minimal) + extra; }

// `minimal` with client.steps = 4 on its empty line 7 (no line moves), then
// `extra`: what the sinks "train" and "dataset" need.
std::string minimal_steps_plus(const std::string& extra) {
  std::string text = minimal;
  const std::string command = "command = [\"solver\"]\n";
  text.replace(text.find(command) + command.size(), 1, "steps = 4\n");
  return text + extra;
}

}  // namespace

TEST_CASE("a minimal study gets every default") {
  const study_config c = parse_study(minimal, "s.toml");
  CHECK(c.study.name == "mini");
  CHECK(c.study.output_dir == "studies/mini");
  CHECK(c.study.seed == 0);
  CHECK(c.study.mode == study_mode::training);

  CHECK(c.launcher.backend == launcher_backend::local);
  CHECK(c.launcher.job_limit == 4);
  CHECK(c.launcher.max_retries == 2);
  CHECK(c.launcher.max_server_restarts == 3);
  CHECK(c.launcher.client_timeout == 300.0);
  CHECK(c.launcher.server_timeout == 60.0);
  CHECK(c.launcher.poll_interval == 1.0);
  CHECK(c.launcher.shell_host == "127.0.0.1");
  CHECK(c.launcher.shell_port == 0);
  CHECK_FALSE(c.launcher.schedule_in_schedule);
  CHECK(c.launcher.allocation_nodes == 1);
  CHECK(c.launcher.allocation_time == "01:00:00");
  for (const job_placement* p : {&c.launcher.server_job, &c.launcher.client_job}) {
    CHECK(p->partition.empty());
    CHECK(p->account.empty());
    CHECK(p->time.empty());
    CHECK(p->nodes == 1);
    CHECK(p->gres.empty());
    CHECK(p->extra.empty());
  }

  CHECK(c.server.ranks == 1);
  CHECK(c.server.host == "127.0.0.1");
  CHECK(c.server.port == 0);
  CHECK(c.server.max_frame_mb == 256);
  CHECK(c.server.max_frame_bytes() == 256ull << 20);
  CHECK(c.server.window_mb == 64);
  CHECK(c.server.window_bytes() == 64ull << 20);
  CHECK(c.server.sink == sink_kind::count);
  CHECK(c.server.dataset_dir == "studies/mini/dataset");

  CHECK(c.client.command == std::vector<std::string>{"solver"});
  CHECK(c.client.ranks == 1);
  CHECK(c.client.env.empty());

  CHECK(c.parameters.names == std::vector<std::string>{"a", "b"});
  REQUIRE(c.parameters.bounds.size() == 2);
  CHECK(c.parameters.bounds[0] == parameter_bounds{100, 500});
  CHECK(c.parameters.bounds[1] == parameter_bounds{100, 500});
  CHECK(c.parameters.sampler == sampler_kind::uniform);
  CHECK(c.parameters.count == 3);

  REQUIRE(c.fields.size() == 1);
  CHECK(c.fields[0] == field_config{"u", 10});
}

TEST_CASE("defaults derive from other keys: output_dir from name, dataset_dir from output_dir") {
  const auto c = parse_study(R"(
[study]
name = "n"
output_dir = "elsewhere"
[client]
command = ["s"]
[parameters]
names = ["p"]
bounds = [0, 1]
count = 1
[[fields]]
name = "f"
size = 1
)", "s.toml");
  CHECK(c.server.dataset_dir == "elsewhere/dataset");
  CHECK(c.parameters.bounds == std::vector<parameter_bounds>{{0, 1}});
}

TEST_CASE("a full study is read as written") {
  const study_config c = parse_study(full, "full.toml");
  CHECK(c.study.name == "full-study_1.0");
  CHECK(c.study.output_dir == "/scratch/out dir");
  CHECK(c.study.seed == 9223372036854775807ull);
  CHECK(c.study.mode == study_mode::statistics);
  CHECK(c.launcher.backend == launcher_backend::slurm);
  CHECK(c.launcher.job_limit == 16);
  CHECK(c.launcher.max_retries == 0);
  CHECK(c.launcher.client_timeout == 12.5);
  CHECK(c.launcher.server_timeout == 7.0);  // an integer where a float is expected is fine
  CHECK(c.launcher.poll_interval == 0.25);
  CHECK(c.launcher.shell_host == "0.0.0.0");
  CHECK(c.launcher.shell_port == 4242);
  CHECK(c.launcher.schedule_in_schedule);
  CHECK(c.launcher.allocation_nodes == 8);
  CHECK(c.launcher.allocation_time == "2-12:30:00");
  CHECK(c.launcher.server_job ==
        job_placement{"gpu", "proj-42", "10:00:00", 2, "gpu:4", {"--qos=high", "--constraint=a100"}});
  CHECK(c.launcher.client_job == job_placement{"cpu", "", "0:05:00", 1, "", {}});
  CHECK(c.server.ranks == 4);
  CHECK(c.server.host == "0.0.0.0");
  CHECK(c.server.port == 65535);
  CHECK(c.server.max_frame_mb == 4095);
  CHECK(c.server.window_mb == 1);
  CHECK(c.server.dataset_dir == "/tmp/ds");
  CHECK(c.client.command == std::vector<std::string>{"mpirun-wrapper", "--flag",
                                                     "with \"quotes\" and \\ backslash", "",
                                                     "tab\there"});
  CHECK(c.client.ranks == 8);
  CHECK(c.client.env == std::map<std::string, std::string>{
                            {"OMP_NUM_THREADS", "1"}, {"_X9", "a=b"}, {"EMPTY", ""}});
  CHECK(c.parameters.names == std::vector<std::string>{"x", "y.z", "w-1"});
  CHECK(c.parameters.bounds ==
        std::vector<parameter_bounds>{{-1, 1}, {0.1, 0.30000000000000004}, {-1e300, 1e300}});
  CHECK(c.parameters.count == 1000000);
  REQUIRE(c.fields.size() == 2);
  CHECK(c.fields[1] == field_config{"pressure", 9223372036854775807ull});
  CHECK(c.client.steps == 7);
  CHECK(c.statistics.moments == 4);
  CHECK_FALSE(c.statistics.min_max);
  CHECK(c.statistics.thresholds == std::vector<double>{0.5, -1e300});
  CHECK(c.statistics.quantiles == std::vector<double>{0.05, 0.95});
  CHECK(c.statistics.group_budget_mb == 17);
}

TEST_CASE("parse -> to_toml -> parse gives equal values") {
  for (const char* text : {minimal, full}) {
    CAPTURE(text);
    const study_config first = parse_study(text, "a.toml");
    const std::string written = to_toml(first);
    CAPTURE(written);
    const study_config second = parse_study(written, "resolved.toml");
    CHECK(second == first);
    // Writing is deterministic: the resolved file is a fixed point.
    CHECK(to_toml(second) == written);
  }
}

TEST_CASE("to_toml escapes strings and keeps every bit of the numbers") {
  study_config c = parse_study(minimal, "s.toml");
  c.study.output_dir = "C:\\odd \"dir\"\x01\x7f/été";
  c.client.command = {"prog", "line\nbreak", "\x1f", "tab\t", "\u00e9\u4e2d"};
  c.client.env = {{"A_1", "x\"y"}, {"_", ""}};
  c.parameters.bounds = {{5e-324, 1.7976931348623157e308}, {-0.1, 0.30000000000000004}};
  c.launcher.client_timeout = 1e-300;
  c.launcher.server_timeout = 123456789.123456789;
  const std::string written = to_toml(c);
  CAPTURE(written);
  CHECK(parse_study(written, "resolved.toml") == c);
}

TEST_CASE("to_toml writes every default explicitly") {
  const std::string written = to_toml(parse_study(minimal, "s.toml"));
  for (const char* key : {"output_dir = \"studies/mini\"", "seed = 0", "mode = \"training\"",
                          "backend = \"local\"", "job_limit = 4", "max_retries = 2", "max_server_restarts = 3",
                          "client_timeout = 300.0", "server_timeout = 60.0", "poll_interval = 1.0",
                          "shell_host = \"127.0.0.1\"", "shell_port = 0", "monitor_host = \"127.0.0.1\"", "monitor_port = 0", "schedule_in_schedule = false",
                          "allocation_nodes = 1", "allocation_time = \"01:00:00\"", "slurm_array_size = 0",
                          "[launcher.server_job]\npartition = \"\"\naccount = \"\"\ntime = \"\"\nnodes = 1\n"
                          "gres = \"\"\nextra = []\n",
                          "[launcher.client_job]\n", "host = \"127.0.0.1\"",
                          "port = 0", "max_frame_mb = 256", "window_mb = 64", "sink = \"count\"",
                          "dataset_dir = \"studies/mini/dataset\"", "env = {}",
                          "bounds = [[100.0, 500.0], [100.0, 500.0]]", "sampler = \"uniform\""}) {
    CAPTURE(key);
    CHECK(written.find(key) != std::string::npos);
  }
}

TEST_CASE("to_toml refuses a seed that TOML cannot hold") {
  study_config c = parse_study(minimal, "s.toml");
  c.study.seed = 1ull << 63;
  CHECK_THROWS_AS(to_toml(c), config_error);
}

TEST_CASE("equality notices every field") {
  const study_config base = parse_study(full, "s.toml");
  study_config c = base;
  c.launcher.client_timeout += 1;
  CHECK(c != base);
  c = base;
  c.client.env["X"] = "y";
  CHECK(c != base);
  c = base;
  c.launcher.poll_interval = 3;
  CHECK(c != base);
  c = base;
  c.launcher.shell_port = 1;
  CHECK(c != base);
  c = base;
  c.launcher.schedule_in_schedule = false;
  CHECK(c != base);
  c = base;
  c.launcher.slurm_array_size = 7;
  CHECK(c != base);
  c = base;
  c.launcher.allocation_time = "01:00:00";
  CHECK(c != base);
  c = base;
  c.launcher.server_job.extra.pop_back();
  CHECK(c != base);
  c = base;
  c.launcher.client_job.nodes = 3;
  CHECK(c != base);
  c = base;
  c.parameters.bounds[2].hi = 2e300;
  CHECK(c != base);
  c = base;
  c.fields[1].size = 1;
  CHECK(c != base);
}

TEST_CASE("the example study parses as documented") {
  const char* dir = std::getenv("MELISSA_SOURCE_DIR");
  const std::string path = std::string(dir ? dir : MELISSA_SOURCE_DIR) + "/examples/heat/study.toml";
  const study_config c = load_study(path);
  CHECK(c.study.name == "heat");
  CHECK(c.study.output_dir == "studies/heat");
  CHECK(c.parameters.count == 20);
  CHECK(c.parameters.names == std::vector<std::string>{"T0", "T1", "T2", "T3", "T4"});
  CHECK(c.parameters.bounds == std::vector<parameter_bounds>(5, {100, 500}));
  CHECK(c.client.command ==
        std::vector<std::string>{"melissa-heat", "--grid", "64", "--steps", "50"});
  CHECK(c.client.ranks == 2);
  CHECK(c.client.steps == 50);
  REQUIRE(c.fields.size() == 1);
  CHECK(c.fields[0] == field_config{"temperature", 4096});
  CHECK(c.server.sink == sink_kind::dataset);
  CHECK(c.server.dataset_dir == "studies/heat/dataset");
  CHECK(c.launcher.job_limit == 2);
}

TEST_CASE("config_error carries the parts of the message") {
  try {
    parse_study("[study]\nname = \"x\"\nseed = -1\n", "p.toml");
    FAIL("no error");
  } catch (const config_error& e) {
    CHECK(std::string(e.what()) == "p.toml:3:8: study.seed: must be in [0, 9223372036854775807], got -1");
    CHECK(e.source == "p.toml");
    CHECK(e.line == 3);
    CHECK(e.column == 8);
    CHECK(e.key == "study.seed");
    CHECK(e.reason == "must be in [0, 9223372036854775807], got -1");
  }
}

// Line numbers below count from the first line of `minimal`, which is empty:
// [study] is on line 2, [client] on 5, [parameters] on 8, [[fields]] on 12,
// and the first line of `extra` in minimal_plus(extra) is line 15.

TEST_CASE("errors: unknown keys") {
  CHECK(error_of(minimal_plus("[server]\nport = 1\nprot = 2\n")) ==
        "s.toml:17:1: server.prot: unknown key (did you mean \"port\"?)");
  CHECK(error_of(minimal_plus("[server]\nfoo = 1\n")) ==
        "s.toml:16:1: server.foo: unknown key; [server] has ranks, host, port, max_frame_mb, "
        "window_mb, budget_mb, io_threads, sink, dataset_dir");
  // In an entry of an array of tables (here: the [[fields]] table of `minimal`).
  CHECK(error_of(minimal_plus("unit = \"K\"\n")) ==
        "s.toml:15:1: fields[0].unit: unknown key; [fields] has name, size");
  // Several unknown keys: the first one in the file is reported.
  CHECK(error_of(minimal_plus("[launcher]\nzzz = 1\naaa = 2\n")) ==
        "s.toml:16:1: launcher.zzz: unknown key; [launcher] has backend, job_limit, max_retries, "
        "max_server_restarts, client_timeout, server_timeout, poll_interval, shell_host, shell_port, monitor_host, monitor_port, "
        "schedule_in_schedule, "
        "allocation_nodes, allocation_time, slurm_array_size, server_job, client_job");
  CHECK(error_of(minimal_plus("[launcher.client_job]\nqueue = \"x\"\n")) ==
        "s.toml:16:1: launcher.client_job.queue: unknown key; [launcher.client_job] has partition, "
        "account, time, nodes, gres, extra");
  CHECK(error_of(minimal_plus("[launcher.server_job]\nparttion = \"x\"\n")) ==
        "s.toml:16:1: launcher.server_job.parttion: unknown key (did you mean \"partition\"?)");
  CHECK(error_of(minimal_plus("[launcher]\nallocation_node = 2\n")) ==
        "s.toml:16:1: launcher.allocation_node: unknown key (did you mean \"allocation_nodes\"?)");
  // The number of tasks has one home per job kind: server.ranks, client.ranks.
  CHECK(error_of(minimal_plus("[launcher.client_job]\ntasks = 4\n")) ==
        "s.toml:16:9: launcher.client_job.tasks: not a key here: the number of tasks is client.ranks");
  CHECK(error_of(minimal_plus("[launcher.server_job]\nntasks = 4\n")) ==
        "s.toml:16:10: launcher.server_job.ntasks: not a key here: the number of tasks is server.ranks");
  // A misspelt required key: the missing key is the error, the typo the hint.
  CHECK(error_of("[study]\nnmae = \"x\"\n") ==
        "s.toml:1:1: study.name: missing required key (is \"nmae\" on line 2 a misspelling?)");
  // Nested tables inside a section are unknown keys too.
  CHECK(error_of(minimal_plus("[server.tls]\ncert = \"c\"\n")) ==
        "s.toml:15:9: server.tls: unknown key; [server] has ranks, host, port, max_frame_mb, "
        "window_mb, budget_mb, io_threads, sink, dataset_dir");
}

TEST_CASE("errors: unknown sections") {
  CHECK(error_of(minimal_plus("[model]\nepochs = 3\n")) ==
        "s.toml:15:2: model: unknown section; the study file has the sections study, "
        "launcher, server, client, parameters, fields, buffer, training, breed, checkpoint");
  CHECK(error_of(minimal_steps_plus("[server]\nsink = \"train\"\n[training]\nepochs = 3\n")) ==
        "s.toml:18:1: training.epochs: unknown key; [training] has field, time_steps, model, hidden, "
        "activation, device, weight_decay, clip_grad_norm, batch_size, learning_rate, lr_halving_batches, min_learning_rate, output, "
        "output_mean, output_std, validation_dir, validation_every, metrics_every, threads");
  CHECK(error_of(minimal_plus("[sever]\nport = 3\n")) ==
        "s.toml:15:2: sever: unknown section (did you mean [server]?)");
  CHECK(error_of(std::string("top = 1\n") + minimal) ==
        "s.toml:1:1: top: unknown key; the study file has the sections study, launcher, server, "
        "client, parameters, fields, buffer, training, breed, checkpoint");
  // A misspelt required section.
  CHECK(error_of("[study]\nname = \"x\"\n[cleint]\ncommand = [\"s\"]\n") ==
        "s.toml:1:1: client: missing required section (is \"cleint\" on line 3 a misspelling?)");
}

TEST_CASE("errors: wrong types") {
  CHECK(error_of(minimal_plus("[server]\nport = \"80\"\n")) ==
        "s.toml:16:8: server.port: expected an integer, got a string");
  // A float where an integer is expected is an error, not a truncation.
  CHECK(error_of(minimal_plus("[launcher]\njob_limit = 2.0\n")) ==
        "s.toml:16:13: launcher.job_limit: expected an integer, got a float");
  CHECK(error_of(minimal_plus("[launcher]\nclient_timeout = true\n")) ==
        "s.toml:16:18: launcher.client_timeout: expected a number, got a boolean");
  CHECK(error_of(minimal_plus("[launcher]\nbackend = 1\n")) ==
        "s.toml:16:11: launcher.backend: expected a string, got an integer");
  CHECK(error_of(minimal_plus("[launcher]\nbackend = \"slurm\"\nschedule_in_schedule = \"yes\"\n")) ==
        "s.toml:17:24: launcher.schedule_in_schedule: expected a boolean, got a string");
  CHECK(error_of(minimal_plus("[launcher]\nserver_job = \"gpu\"\n")) ==
        "s.toml:16:14: launcher.server_job: expected a table, got a string");
  CHECK(error_of(minimal_plus("[launcher.client_job]\nextra = \"--qos=fast\"\n")) ==
        "s.toml:16:9: launcher.client_job.extra: expected an array, got a string");
  CHECK(error_of(minimal_plus("[launcher.client_job]\nextra = [\"--a\", 1]\n")) ==
        "s.toml:16:17: launcher.client_job.extra[1]: expected a string, got an integer");
  CHECK(error_of(minimal_plus("[launcher.client_job]\nnodes = 1.0\n")) ==
        "s.toml:16:9: launcher.client_job.nodes: expected an integer, got a float");
  CHECK(error_of(minimal_plus("[server]\nhost = 1979-05-27\n")) ==
        "s.toml:16:8: server.host: expected a string, got a date");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = \"solver --flag\"\n") ==
        "s.toml:4:11: client.command: expected an array, got a string");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"solver\", 3]\n") ==
        "s.toml:4:22: client.command[1]: expected a string, got an integer");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\nenv = { A = 1 }\n") ==
        "s.toml:5:13: client.env.A: expected a string, got an integer");
  CHECK(error_of("study = \"x\"\n") == "s.toml:1:9: study: expected a table, got a string");
  CHECK(error_of(minimal_plus("[[server]]\nport = 1\n")) ==
        "s.toml:15:1: server: expected a table, got an array");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n"
                 "[parameters]\nnames = [\"a\"]\ncount = 1\n[fields]\nname = \"u\"\n") ==
        "s.toml:8:1: fields: expected [[fields]] tables, got a table");
  CHECK(error_of("fields = [1]\n[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n"
                 "[parameters]\nnames = [\"a\"]\ncount = 1\n") ==
        "s.toml:1:11: fields[0]: expected a table, got an integer");
}

TEST_CASE("errors: values out of range") {
  CHECK(error_of(minimal_plus("[server]\nport = 70000\n")) ==
        "s.toml:16:8: server.port: must be in [0, 65535], got 70000");
  CHECK(error_of(minimal_plus("[server]\nmax_frame_mb = 4096\n")) ==
        "s.toml:16:16: server.max_frame_mb: must be in [1, 4095], got 4096");
  CHECK(error_of(minimal_plus("[server]\nranks = 0\n")) ==
        "s.toml:16:9: server.ranks: must be >= 1, got 0");
  CHECK(error_of(minimal_plus("[launcher]\nmax_retries = -1\n")) ==
        "s.toml:16:15: launcher.max_retries: must be >= 0, got -1");
  CHECK(error_of(minimal_plus("[launcher]\nmax_server_restarts = -2\n")) ==
        "s.toml:16:23: launcher.max_server_restarts: must be >= 0, got -2");
  CHECK(error_of(minimal_plus("[launcher]\nmax_server_restarts = \"3\"\n")) ==
        "s.toml:16:23: launcher.max_server_restarts: expected an integer, got a string");
  CHECK(error_of(minimal_plus("[launcher]\njob_limit = 4294967296\n")) ==
        "s.toml:16:13: launcher.job_limit: must be <= 4294967295, got 4294967296");
  CHECK(error_of(minimal_plus("[launcher]\nserver_timeout = 0\n")) ==
        "s.toml:16:18: launcher.server_timeout: must be > 0, got 0.0");
  CHECK(error_of(minimal_plus("[launcher]\nclient_timeout = inf\n")) ==
        "s.toml:16:18: launcher.client_timeout: must be a finite number, got inf");
  CHECK(error_of(minimal_plus("[launcher]\npoll_interval = -0.5\n")) ==
        "s.toml:16:17: launcher.poll_interval: must be > 0, got -0.5");
  CHECK(error_of(minimal_plus("[launcher]\nshell_port = 65536\n")) ==
        "s.toml:16:14: launcher.shell_port: must be in [0, 65535], got 65536");
  CHECK(error_of(minimal_plus("[launcher]\nmonitor_port = -1\n")) ==
        "s.toml:16:16: launcher.monitor_port: must be in [0, 65535], got -1");
  CHECK(error_of(minimal_plus("[launcher]\nshell_host = \"\"\n")) ==
        "s.toml:16:14: launcher.shell_host: must not be empty");
  CHECK(error_of(minimal_plus("[launcher]\nallocation_nodes = 0\n")) ==
        "s.toml:16:20: launcher.allocation_nodes: must be >= 1, got 0");
  CHECK(error_of(minimal_plus("[launcher]\nallocation_time = \"1h\"\n")) ==
        "s.toml:16:19: launcher.allocation_time: must be a duration \"H:MM:SS\" or \"D-H:MM:SS\", "
        "got \"1h\" (and > 0)");
  CHECK(error_of(minimal_plus("[launcher]\nallocation_time = \"00:00:00\"\n")) ==
        "s.toml:16:19: launcher.allocation_time: must be a duration \"H:MM:SS\" or \"D-H:MM:SS\", "
        "got \"00:00:00\" (and > 0)");
  CHECK(error_of(minimal_plus("[launcher.server_job]\ntime = \"30:00\"\n")) ==
        "s.toml:16:8: launcher.server_job.time: must be a duration \"H:MM:SS\" or \"D-H:MM:SS\", "
        "got \"30:00\" (and > 0)");
  CHECK(error_of(minimal_plus("[launcher.server_job]\nnodes = 0\n")) ==
        "s.toml:16:9: launcher.server_job.nodes: must be >= 1, got 0");
  CHECK(error_of(minimal_plus("[launcher.client_job]\npartition = \"cpu gpu\"\n")) ==
        "s.toml:16:13: launcher.client_job.partition: must not contain spaces or control characters, "
        "got \"cpu gpu\"");
  CHECK(error_of(minimal_plus("[launcher.client_job]\nextra = [\"--qos=a\", \"\"]\n")) ==
        "s.toml:16:21: launcher.client_job.extra[1]: must not be empty (each element is one option, "
        "e.g. \"--qos=fast\")");
  // Job steps inside one allocation exist only on Slurm.
  CHECK(error_of(minimal_plus("[launcher]\nschedule_in_schedule = true\n")) ==
        "s.toml:16:24: launcher.schedule_in_schedule: true requires launcher.backend = \"slurm\", "
        "got \"local\"");
  CHECK(error_of(minimal_plus("[launcher]\nbackend = \"oar\"\nschedule_in_schedule = true\n")) ==
        "s.toml:17:24: launcher.schedule_in_schedule: true requires launcher.backend = \"slurm\", "
        "got \"oar\"");
  CHECK(error_of(minimal_plus("[launcher]\nbackend = \"slurm\"\nschedule_in_schedule = true\n")) ==
        "no error");
  // Job arrays: Slurm only, not with job steps, 0 .. 1000 tasks.
  CHECK(error_of(minimal_plus("[launcher]\nslurm_array_size = 8\n")) ==
        "s.toml:16:20: launcher.slurm_array_size: > 1 requires launcher.backend = \"slurm\", got \"local\"");
  CHECK(error_of(minimal_plus("[launcher]\nbackend = \"slurm\"\nschedule_in_schedule = true\nslurm_array_size = 8\n")) ==
        "s.toml:18:20: launcher.slurm_array_size: > 1 cannot be combined with schedule_in_schedule = true "
        "(clients are job steps, not jobs)");
  CHECK(error_of(minimal_plus("[launcher]\nbackend = \"slurm\"\nslurm_array_size = 1001\n")).find(
            "s.toml:17:20: launcher.slurm_array_size: ") == 0);
  CHECK(error_of(minimal_plus("[launcher]\nbackend = \"slurm\"\nslurm_array_size = -1\n")).find(
            "s.toml:17:20: launcher.slurm_array_size: ") == 0);
  CHECK(error_of(minimal_plus("[launcher]\nbackend = \"slurm\"\nslurm_array_size = \"8\"\n")).find(
            "s.toml:17:20: launcher.slurm_array_size: expected an integer") == 0);
  CHECK(error_of(minimal_plus("[launcher]\nslurm_array_size = 1\n")) == "no error");  // 0 and 1: off
  CHECK(parse_study(minimal_plus("[launcher]\nbackend = \"slurm\"\nslurm_array_size = 1000\n"), "s.toml")
            .launcher.slurm_array_size == 1000);
  CHECK(error_of("[study]\nname = \"x\"\nseed = 9223372036854775808\n").find(
            "s.toml:3:") == 0);  // beyond TOML's integers: a syntax error, still located
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n"
                 "[parameters]\nnames = [\"a\"]\ncount = 0\n") ==
        "s.toml:7:9: parameters.count: must be in [1, 4294967295], got 0");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n"
                 "[parameters]\nnames = [\"a\"]\ncount = 4294967296\n") ==
        "s.toml:7:9: parameters.count: must be in [1, 4294967295], got 4294967296");
  CHECK(error_of(minimal_plus("[server]\nsink = \"hdf5\"\n")) ==
        "s.toml:16:8: server.sink: must be one of \"count\", \"dataset\", \"train\", got \"hdf5\"");
  CHECK(error_of("[study]\nname = \"x\"\nmode = \"train\"\n") ==
        "s.toml:3:8: study.mode: must be one of \"training\", \"statistics\", got \"train\"");
  CHECK(error_of(minimal_plus("[launcher]\nbackend = \"pbs\"\n")) ==
        "s.toml:16:11: launcher.backend: must be one of \"local\", \"slurm\", \"oar\", got \"pbs\"");
  // Only implemented samplers are accepted (more sampler errors: test_design.cpp).
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n"
                 "[parameters]\nnames = [\"a\"]\ncount = 1\nsampler = \"faure\"\n") ==
        "s.toml:8:11: parameters.sampler: must be one of \"uniform\", \"lhs\", \"halton\", "
        "\"reverse-halton\", \"sobol\", got \"faure\"");
  CHECK(error_of("[study]\nname = \"my study\"\n") ==
        "s.toml:2:8: study.name: must match [A-Za-z0-9_.-]+ (and not be . or ..), got \"my study\"");
  CHECK(error_of("[study]\nname = \"..\"\n") ==
        "s.toml:2:8: study.name: must match [A-Za-z0-9_.-]+ (and not be . or ..), got \"..\"");
  CHECK(error_of("[study]\nname = \"x\"\noutput_dir = \"\"\n") ==
        "s.toml:3:14: study.output_dir: must not be empty");
  CHECK(error_of(minimal_plus("[server]\nhost = \"local host\"\n")) ==
        "s.toml:16:8: server.host: must be a host name or an IP address, got \"local host\"");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = []\n") ==
        "s.toml:4:11: client.command: must name the program to run, got an empty array");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"\", \"a\"]\n") ==
        "s.toml:4:11: client.command: the program name (first element) is empty");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"a\\u0000b\"]\n") ==
        "s.toml:4:12: client.command[0]: must not contain a NUL character");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\nenv = { 1A = \"x\" }\n") ==
        "s.toml:5:9: client.env.1A: not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
}

TEST_CASE("errors: missing required keys point at their table") {
  CHECK(error_of("[study]\nseed = 1\n") == "s.toml:1:1: study.name: missing required key");
  CHECK(error_of("\n\n[study]\nname = \"x\"\n[client]\nranks = 2\n") ==
        "s.toml:5:1: client.command: missing required key");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n[parameters]\nnames = [\"a\"]\n") ==
        "s.toml:5:1: parameters.count: missing required key");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n[parameters]\ncount = 2\n") ==
        "s.toml:5:1: parameters.names: missing required key");
  CHECK(error_of("# nothing\n") == "s.toml:1:1: study: missing required section");
  CHECK(error_of("[study]\nname = \"x\"\n") == "s.toml:1:1: client: missing required section");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n") ==
        "s.toml:1:1: parameters: missing required section");
  CHECK(error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n"
                 "[parameters]\nnames = [\"a\"]\ncount = 1\n") ==
        "s.toml:1:1: fields: missing required [[fields]] table");
  CHECK(error_of(std::string(minimal) + "[[fields]]\nname = \"v\"\n") ==
        "s.toml:15:1: fields[1].size: missing required key");
  CHECK(error_of("fields = []\n[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n"
                 "[parameters]\nnames = [\"a\"]\ncount = 1\n") ==
        "s.toml:1:10: fields: at least one [[fields]] table is required");
}

namespace {
std::string parameters_error(const std::string& parameters) {
  return error_of("[study]\nname = \"x\"\n[client]\ncommand = [\"s\"]\n[[fields]]\nname = \"u\"\n"
                  "size = 1\n[parameters]\ncount = 1\n" + parameters);
}
}  // namespace
// In parameters_error(text) the first line of `text` is line 10.

TEST_CASE("errors: parameter names and bounds") {
  CHECK(parameters_error("names = []\n") ==
        "s.toml:10:9: parameters.names: at least one parameter name is required");
  CHECK(parameters_error("names = [\"a\", \"b\", \"a\"]\n") ==
        "s.toml:10:9: parameters.names: duplicate parameter name \"a\" (names[0] and names[2])");
  CHECK(parameters_error("names = [\"a b\"]\n") ==
        "s.toml:10:10: parameters.names[0]: must match [A-Za-z0-9_.-]+ (and not be . or ..), got \"a b\"");
  // Bounds count mismatch.
  CHECK(parameters_error("names = [\"a\", \"b\", \"c\"]\nbounds = [[0, 1], [0, 1]]\n") ==
        "s.toml:11:10: parameters.bounds: 2 pairs given for 3 names (give one [lo, hi] for all "
        "names, or one pair per name)");
  CHECK(parameters_error("names = [\"a\"]\nbounds = [0, 1, 2]\n") ==
        "s.toml:11:10: parameters.bounds: expected a [lo, hi] pair, got 3 values");
  CHECK(parameters_error("names = [\"a\", \"b\"]\nbounds = [[0, 1], 5]\n") ==
        "s.toml:11:19: parameters.bounds[1]: expected a [lo, hi] pair, got an integer");
  CHECK(parameters_error("names = [\"a\", \"b\"]\nbounds = [[0, 1], [3]]\n") ==
        "s.toml:11:19: parameters.bounds[1]: expected a [lo, hi] pair, got 1 value");
  CHECK(parameters_error("names = [\"a\", \"b\"]\nbounds = [[0, 1]]\n") ==
        "s.toml:11:10: parameters.bounds: 1 pair given for 2 names (give one [lo, hi] for all "
        "names, or one pair per name)");
  CHECK(parameters_error("names = [\"a\"]\nbounds = [2, 1]\n") ==
        "s.toml:11:10: parameters.bounds: lo must be < hi, got [2.0, 1.0]");
  CHECK(parameters_error("names = [\"a\"]\nbounds = [1, 1]\n") ==
        "s.toml:11:10: parameters.bounds: lo must be < hi, got [1.0, 1.0]");
  CHECK(parameters_error("names = [\"a\"]\nbounds = [0, \"1\"]\n") ==
        "s.toml:11:14: parameters.bounds[1]: expected a number, got a string");
  CHECK(parameters_error("names = [\"a\"]\nbounds = [[0, nan]]\n") ==
        "s.toml:11:15: parameters.bounds[0][1]: must be a finite number, got nan");
  CHECK(parameters_error("names = [\"a\"]\nbounds = []\n") ==
        "s.toml:11:10: parameters.bounds: expected [lo, hi] or one [lo, hi] pair per name, got []");
}

TEST_CASE("errors: fields") {
  CHECK(error_of(std::string(minimal) + "[[fields]]\nname = \"u\"\nsize = 2\n") ==
        "s.toml:16:8: fields[1].name: duplicate field name \"u\" (also fields[0] on line 13)");
  CHECK(error_of(std::string(minimal) + "[[fields]]\nname = \"v\"\nsize = 0\n") ==
        "s.toml:17:8: fields[1].size: must be >= 1, got 0");
  // A training step travels as one float32 frame: it must fit in max_frame_mb.
  CHECK(error_of(std::string(minimal) + "[[fields]]\nname = \"v\"\nsize = 67108855\n") ==
        "s.toml:17:8: fields[1].size: 67108855 float32 values per time step do not fit in a "
        "frame of server.max_frame_mb = 256 MiB");
  CHECK(error_of(std::string(minimal) + "[[fields]]\nname = \"v\"\nsize = 67108854\n") == "no error");
  // Statistics mode splits a step over the server ranks: no such limit here.
  CHECK(error_of("[study]\nname = \"x\"\nmode = \"statistics\"\n[client]\ncommand = [\"s\"]\nsteps = 1\n"
                 "[parameters]\nnames = [\"a\"]\ncount = 1\n[[fields]]\nname = \"v\"\n"
                 "size = 1000000000\n") == "no error");
}

TEST_CASE("errors: the Sobol group budget must leave room in the server's read budget") {
  const std::string study =
      "[study]\nname = \"x\"\nmode = \"statistics\"\n[client]\ncommand = [\"s\"]\nsteps = 1\n"
      "[parameters]\nnames = [\"a\", \"b\"]\ncount = 1\n[[fields]]\nname = \"v\"\nsize = 10\n"
      "[server]\nbudget_mb = 100\n[statistics]\nsobol = true\n";
  CHECK(error_of(study + "group_budget_mb = 100\n") ==
        "s.toml:17:19: statistics.group_budget_mb: 100 MiB must be below server.budget_mb = 100 MiB "
        "(held group steps count against it; the steps they wait for must still be read)");
  CHECK(error_of(study + "group_budget_mb = 99\n") == "no error");
}

TEST_CASE("errors: the dataset sink needs a single server rank") {
  CHECK(error_of(minimal_plus("[server]\nsink = \"dataset\"\nranks = 2\n")) ==
        "s.toml:16:8: server.sink: \"dataset\" requires server.ranks = 1, got server.ranks = 2");
  CHECK(error_of(minimal_steps_plus("[server]\nsink = \"dataset\"\nranks = 1\n")) == "no error");
}

TEST_CASE("errors: client.steps is required when the server trains or writes a dataset") {
  // At the [client] header (line 5), like a missing required key.
  CHECK(error_of(minimal_plus("[server]\nsink = \"train\"\n")) ==
        "s.toml:5:1: client.steps: required with server.sink = \"train\" (the number of time steps "
        "each simulation sends: a simulation that ends early is then retried, not counted complete)");
  CHECK(error_of(minimal_plus("[server]\nsink = \"dataset\"\n")) ==
        "s.toml:5:1: client.steps: required with server.sink = \"dataset\" (the number of time steps "
        "each simulation sends: a simulation that ends early is then retried, not counted complete)");
  // Optional with the count sink (0: not checked), and read when given.
  CHECK(parse_study(minimal_plus("[server]\nsink = \"count\"\n"), "s.toml").client.steps == 0);
  CHECK(parse_study(minimal, "s.toml").client.steps == 0);
  for (const char* sink : {"count", "dataset", "train"}) {
    const auto c = parse_study(minimal_steps_plus(std::string("[server]\nsink = \"") + sink + "\"\n"), "s.toml");
    CHECK(c.client.steps == 4);
    // The resolved study keeps it, so that the server started from it checks it.
    CHECK(parse_study(to_toml(c), "resolved.toml") == c);
  }
  // An out-of-range value is reported as such, not as missing.
  std::string zero = minimal_steps_plus("[server]\nsink = \"train\"\n");
  zero.replace(zero.find("steps = 4"), 9, "steps = 0");
  CHECK(error_of(zero) == "s.toml:7:9: client.steps: must be in [1, 16777216], got 0");
}

TEST_CASE("errors: TOML syntax errors report their line") {
  const std::string msg = error_of("[study]\nname = \"x\"\nseed = \n");
  CHECK(msg.rfind("s.toml:3:", 0) == 0);
  CHECK(msg.find("TOML syntax error: ") != std::string::npos);
  const std::string dup = error_of("[study]\nname = \"x\"\nname = \"y\"\n");
  CHECK(dup.rfind("s.toml:3:", 0) == 0);
  CHECK(dup.find("name") != std::string::npos);
  const std::string unterminated = error_of("\n\n\n[client\n");
  CHECK(unterminated.rfind("s.toml:4:", 0) == 0);
}

TEST_CASE("load_study: unreadable file") {
  try {
    load_study("/nonexistent/dir/study.toml");
    FAIL("no error");
  } catch (const config_error& e) {
    CHECK(std::string(e.what()) ==
          "/nonexistent/dir/study.toml: cannot read the study file: No such file or directory");
    CHECK(e.line == 0);
  }
}

TEST_CASE("duration_seconds: [D-]H:MM:SS") {
  CHECK(duration_seconds("00:00:01") == 1);
  CHECK(duration_seconds("0:01:00") == 60);
  CHECK(duration_seconds("01:00:00") == 3600);
  CHECK(duration_seconds("100:59:59") == 100 * 3600 + 59 * 60 + 59);
  CHECK(duration_seconds("1-00:00:00") == 86400);
  CHECK(duration_seconds("2-12:30:00") == 2 * 86400 + 12 * 3600 + 30 * 60);
  CHECK(duration_seconds("00:00:00") == 0);
  for (const char* bad : {"", "1", "30:00", "1:2:3", "01:60:00", "01:00:60", "-01:00:00", "1-", "1-30:00",
                          "a:00:00", "01:00:00 ", " 01:00:00", "1--01:00:00", "01:00:00:00", "1h"}) {
    CAPTURE(bad);
    CHECK(duration_seconds(bad) == -1);
  }
}

TEST_CASE("the complete example of docs/study.md parses and shows every default") {
  const char* dir = std::getenv("MELISSA_SOURCE_DIR");
  std::ifstream in(std::string(dir ? dir : MELISSA_SOURCE_DIR) + "/docs/study.md");
  std::stringstream doc;
  doc << in.rdbuf();
  const std::string text = doc.str();
  const auto begin = text.find("```toml\n");
  REQUIRE(begin != std::string::npos);
  const auto end = text.find("```", begin + 8);
  const study_config c = parse_study(text.substr(begin + 8, end - begin - 8), "docs/study.md");
  // Its launcher keys are the defaults.
  study_config defaults = parse_study(minimal, "s.toml");
  CHECK(c.launcher == defaults.launcher);
}
