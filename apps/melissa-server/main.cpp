// melissa-server: one rank of the server that receives the clients' time
// steps. Runs standalone (tests, scripts) or under the launcher.
//
//   melissa-server --config study.toml [--output DIR] [--rank R] [--ranks N]
//                  [--host H] [--port P] [--address-file F] [--sink count|dataset|train]
//                  [--expect-sims N] [--sink-delay-ms MS] [--window-kb KB] [--print-design]
//                  [--print-config] [--no-checksum] [--launcher HOST:PORT]
//                  [--restore CHECKPOINT_DIR]
//
// --restore: start from a checkpoint (docs/checkpoints.md) the launcher
// chose: it is verified again (exit 2 when it does not verify); every part
// of this rank is restored, and rank 0 tells the launcher which simulations
// are complete in it and asks for the others only.
//
// --launcher: started by melissa-run; this rank registers with it, rank 0
// asks it to run the simulations of the design, and the rank reports
// progress, sessions and silent clients to it.
//
// --sink-delay-ms and --window-kb make a slow server with a small credit
// window: tests use them to make clients block in melissa_send.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unistd.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "actors/aggregator/aggregator.hpp"
#include "actors/checkpoint_keeper/server_restore.hpp"
#include "actors/client_acceptor/client_acceptor.hpp"
#include "actors/coordinator/coordinator.hpp"
#include "actors/counting_sink/counting_sink.hpp"
#include "actors/dataset_sink/dataset_sink.hpp"
#include "actors/statistics_sink/statistics_sink.hpp"
#include "actors/supervisor/supervisor.hpp"
#include "apps/melissa-server/sink_modes.hpp"
#include "apps/melissa-server/training.hpp"
#include "config/design.hpp"
#include "config/study.hpp"
#include "messages/atomic_file.hpp"
#include "security/tls.hpp"

// The wiring of the tree below, checked at compile time (melissa::converts_to:
// std::is_convertible cannot tell two typed_actor types apart in CAF 0.17).
namespace melissa {
// What the launcher holds of this rank (register_atom carries it).
static_assert(converts_to_v<coordinator_actor, server_rank_actor>);
// Every child with a depends_on list handles the supervisor's restart notice.
static_assert(converts_to_v<aggregator_actor, restart_listener_actor>);
static_assert(converts_to_v<acceptor_actor, restart_listener_actor>);
static_assert(converts_to_v<coordinator_actor, restart_listener_actor>);
static_assert(converts_to_v<trainer_actor, restart_listener_actor>);
// The training buffer is the sink the aggregator stores in.
static_assert(converts_to_v<reservoir_actor, sink_actor>);
}  // namespace melissa

namespace {

std::atomic<int> stop_signal{0};
extern "C" void on_signal(int sig) { stop_signal = sig; }

struct options {
  std::string config_path;
  std::optional<std::string> output_dir;
  std::optional<std::uint32_t> rank;
  std::optional<std::uint32_t> ranks;
  std::optional<std::string> host;
  std::optional<std::uint16_t> port;
  std::string address_file;
  std::optional<std::string> sink;
  std::optional<std::uint32_t> expect_sims;
  unsigned sink_delay_ms = 0;
  std::optional<std::uint64_t> window_kb;
  std::string launcher;  // host:port of melissa-run, when it started this server
  std::string restore;   // --restore: the checkpoint directory to start from
  bool print_design = false;
  bool print_config = false;
  bool checksums = true;
};

const char* usage =
    "usage: melissa-server --config STUDY.toml [--output DIR] [--rank R] [--ranks N]\n"
    "                      [--host H] [--port P] [--address-file FILE] [--sink count|dataset|train]\n"
    "                      [--expect-sims N] [--sink-delay-ms MS] [--window-kb KB]\n"
    "                      [--print-design] [--print-config] [--no-checksum]\n"
    "                      [--launcher HOST:PORT] [--restore CHECKPOINT_DIR]\n"
    "Receives the time steps of the study's simulations; exits 0 once the expected\n"
    "simulations (default: parameters.count) have all ended, writing\n"
    "DIR/server-summary.rank<R>.json. --print-design prints the parameters of every\n"
    "simulation as CSV and exits; --print-config prints the resolved study (TOML).\n"
    "--no-checksum: the count sink only counts (benchmarks of the transport alone).\n"
    "--restore: start from that checkpoint (server.sink = \"train\" or statistics mode); exit 2\n"
    "if it does not verify. Exit codes: 0 done, 1 failed, 2 bad input, 75 checkpointed and stopped.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::cerr << "melissa-server: " << msg << "\n" << usage;
  std::exit(2);
}

unsigned long parse_number(const std::string& flag, const std::string& text, unsigned long max) {
  try {
    std::size_t used = 0;
    const auto v = std::stoul(text, &used);
    if (used == text.size() && v <= max) return v;
  } catch (const std::exception&) {
  }
  usage_error(flag + " expects an integer in [0, " + std::to_string(max) + "], got '" + text + "'");
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--config") o.config_path = value();
    else if (a == "--output") o.output_dir = value();
    else if (a == "--rank") o.rank = parse_number(a, value(), 1u << 20);
    else if (a == "--ranks") o.ranks = parse_number(a, value(), 1u << 20);
    else if (a == "--host") o.host = value();
    else if (a == "--port") o.port = static_cast<std::uint16_t>(parse_number(a, value(), 65535));
    else if (a == "--address-file") o.address_file = value();
    else if (a == "--sink") o.sink = value();
    else if (a == "--expect-sims") o.expect_sims = parse_number(a, value(), 0xffffffffu);
    else if (a == "--sink-delay-ms") o.sink_delay_ms = parse_number(a, value(), 60000);
    else if (a == "--window-kb") o.window_kb = parse_number(a, value(), 1ul << 30);
    else if (a == "--print-design") o.print_design = true;
    else if (a == "--print-config") o.print_config = true;
    else if (a == "--no-checksum") o.checksums = false;
    else if (a == "--launcher") o.launcher = value();
    else if (a == "--restore") o.restore = value();
    else if (a == "-h" || a == "--help") {
      std::cout << usage;
      std::exit(0);
    } else usage_error("unknown argument '" + a + "'");
  }
  if (o.config_path.empty()) usage_error("--config is required");
  if (o.sink && *o.sink != "count" && *o.sink != "dataset" && *o.sink != "train")
    usage_error("--sink must be count, dataset or train, got '" + *o.sink + "'");
  return o;
}

std::uint32_t rank_from_environment() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"})
    if (const char* v = std::getenv(var)) return static_cast<std::uint32_t>(std::stoul(v));
  return 0;
}

// The parameters of simulation i as command-line text ("312.5,104.2,...").
std::vector<std::string> design_rows(const melissa::config::design_matrix& design) {
  std::vector<std::string> rows;
  for (const auto& row : design) rows.push_back(melissa::config::format_parameters(row));
  return rows;
}

// The children whose restarts the coordinator must hear about.
std::vector<std::string> coordinator_depends_on(bool training, bool steering) {
  std::vector<std::string> names{"aggregator", "sink"};
  if (training) names.push_back("trainer");
  if (steering) names.push_back("steering");
  return names;
}

// Names this run's c10d rendezvous file: the launcher's address is unique
// per run of melissa-run; a standalone server has none.
// The job's own id (the same on all its ranks) is added when the MPI launcher
// or Slurm gives one: a restarted server job of the same melissa-run must
// never read the file of the job it replaces (a surviving rank of a lost job
// may still publish one when its trainer restarts).
std::string run_token(const std::string& launcher) {
  std::string token = launcher.empty() ? "standalone" : launcher;
  for (const char* var : {"PMIX_NAMESPACE", "OMPI_MCA_ess_base_jobid", "SLURM_JOB_ID"})
    if (const char* job = std::getenv(var); job && *job) {
      token += std::string("-") + job;
      break;
    }
  for (char& c : token)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return token;
}

// The host clients should use to reach a server bound to `bind_host`.
std::string advertised_host(const std::string& bind_host) {
  if (bind_host != "0.0.0.0" && bind_host != "::" && !bind_host.empty()) return bind_host;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "127.0.0.1";
  return name;
}

// How long SIGTERM waits for its checkpoint (the trainer takes it at its
// next step boundary; Slurm's --signal grace is longer).
constexpr int sigterm_checkpoint_s = 120;

// Several ranks: this rank stopped with a checkpoint another rank asked for
// (SIGTERM, lost launcher), so its coordinator did not record the stop; the
// summary names it all the same, with the reason its manifest gives.
void note_peer_stop(const std::string& summary_path, const std::string& summary,
                    const nlohmann::json& answer) {
  auto j = nlohmann::json::parse(summary, nullptr, false);
  if (summary_path.empty() || !j.is_object() || j.contains("stopped")) return;
  std::string reason = "another rank";
  if (answer.is_object() && answer.contains("path")) {
    std::ifstream in(answer["path"].get<std::string>() + "/manifest.json");
    const auto manifest = nlohmann::json::parse(in, nullptr, false);
    if (manifest.is_object()) reason = manifest.value("reason", reason);
  }
  j["stopped"] = {{"reason", reason}, {"checkpoint", answer}};
  try {
    melissa::write_file_atomically(summary_path, j.dump(2) + "\n");
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
  }
}

// The exit status of a server that stopped with a checkpoint: 75 once it is
// committed, 1 (a visible failure) when it could not be written.
int checkpoint_status(const nlohmann::json& answer, std::uint32_t rank) {
  if (answer.is_object() && answer.contains("path")) {
    spdlog::warn("rank {}: checkpoint {} (batch {}) written; stopping (exit 75)", rank,
                 answer["path"].get<std::string>(), answer.value("batch", std::uint64_t{0}));
    return 75;
  }
  spdlog::error("rank {}: stopping without a checkpoint: {}", rank,
                answer.is_object() ? answer.value("error", answer.dump()) : std::string("unreadable answer"));
  return 1;
}

void print_design(const melissa::config::study_config& study) {
  std::cout << "sim_id";
  for (const auto& n : study.parameters.names) std::cout << "," << n;
  std::cout << "\n";
  const auto rows = design_rows(melissa::config::make_study_design(study));
  for (std::size_t i = 0; i < rows.size(); ++i) std::cout << i << "," << rows[i] << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace melissa;
  const auto opt = parse_options(argc, argv);
  config::study_config study;
  try {
    study = config::load_study(opt.config_path);
  } catch (const config::config_error& e) {
    std::cerr << "melissa-server: " << e.what() << "\n";
    return 2;
  }
  if (opt.print_config) {
    std::cout << config::to_toml(study);
    return 0;
  }
  if (opt.print_design) {
    print_design(study);
    return 0;
  }

  const std::uint32_t rank = opt.rank ? *opt.rank : rank_from_environment();
  const std::uint32_t ranks = opt.ranks ? *opt.ranks : study.server.ranks;
  const std::string output = opt.output_dir ? *opt.output_dir : study.study.output_dir;
  const std::string sink_name = opt.sink ? *opt.sink : config::to_string(study.server.sink);
  const bool dataset = sink_name == "dataset";
  const bool training = sink_name == "train";
  const std::uint32_t expected =
      opt.expect_sims ? *opt.expect_sims : static_cast<std::uint32_t>(config::simulation_count(study));
  if (rank >= ranks) usage_error("--rank must be below the number of ranks");
  // The study file requires client.steps with these sinks; so does the override.
  if ((dataset || training) && study.client.steps == 0)
    usage_error("--sink " + sink_name + " needs client.steps in the study file (the number of time "
                "steps each simulation sends: a simulation that ends early is then retried, not "
                "counted complete)");
  std::filesystem::create_directories(output);
  spdlog::set_pattern("[%H:%M:%S.%e] [server " + std::to_string(rank) + "] [%l] %v");

  // --restore: everything this rank needs from the checkpoint, read before
  // anything starts (the trainer's and the buffer's parts: the training children).
  std::optional<checkpoint::server_restore> restored;
  if (!opt.restore.empty()) {
    if (!training && study.study.mode != config::study_mode::statistics) {
      std::cerr << "melissa-server: --restore needs server.sink = \"train\" or study.mode = "
                   "\"statistics\" (only those write checkpoints; a dataset server restarts from "
                   "its dataset directory by itself)\n";
      return 2;
    }
    try {
      restored = checkpoint::read_server_restore(opt.restore, rank, ranks);
    } catch (const std::exception& e) {
      std::cerr << "melissa-server: cannot restore: " << e.what() << "\n";
      return 2;
    }
    spdlog::info("restoring {} (batch {}): {} simulations complete in it", restored->dir,
                 restored->batch, restored->complete.size());
  }

  acceptor_settings net;
  net.host = opt.host ? *opt.host : study.server.host;
  net.port = opt.port ? *opt.port : study.server.port;
  net.io_threads = study.server.io_threads;
  net.budget_bytes = study.server.budget_bytes();
  net.proxy.max_frame_bytes = study.server.max_frame_bytes();
  net.proxy.session.rank = rank;
  net.proxy.session.ranks = ranks;
  net.proxy.session.mode = config::to_string(study.study.mode);
  net.proxy.session.window_bytes = opt.window_kb ? *opt.window_kb << 10 : study.server.window_bytes();
  net.proxy.session.steps = study.client.steps;
  // Under a launcher only the sessions it started open (their tickets), the
  // ids of the design only, and a simulation is complete with all its steps.
  aggregator_settings ingest;
  ingest.require_tickets = !opt.launcher.empty();
  ingest.simulations = opt.launcher.empty() ? 0 : expected;
  ingest.steps = study.client.steps;
  ingest.fields = static_cast<std::uint32_t>(study.fields.size());
  ingest.rank = rank;
  ingest.ranks = ranks;
  if (restored) {
    ingest.restored = std::make_shared<restored_steps>();
    ingest.restored->log = restored->received;
  }
  // Statistics mode: every client rank sends slices; this rank assembles its share.
  const bool statistics = study.study.mode == config::study_mode::statistics;
  // Its checkpoints hold the accumulators too (rank-R/statistics.bin).
  std::shared_ptr<restored_statistics> restored_stats;
  if (restored && statistics) try {
    restored_stats = read_statistics_restore(*restored, rank, statistics_settings_for(study, rank, ranks));
  } catch (const std::exception& e) {
    std::cerr << "melissa-server: cannot restore: " << e.what() << "\n";
    return 2;
  }
  ingest.slices = statistics;
  if (statistics && opt.sink)
    usage_error("--sink does not apply to a study with study.mode = \"statistics\" (its sink is "
                "the statistics)");
  std::vector<std::string> field_names;
  for (const auto& f : study.fields) {
    net.proxy.session.fields.push_back({f.name, f.size});
    field_names.push_back(f.name);
    ingest.field_sizes.push_back(f.size);
  }
  // The acceptor rebinds the same port if it is restarted.
  auto shared_net = std::make_shared<acceptor_settings>(net);

  caf::actor_system_config cfg;
  add_remote_message_types(cfg);
  if (!opt.launcher.empty()) {
    // Under melissa-run: the launcher's port speaks mutual TLS with the
    // study's key, which melissa-run left (0600) in the output directory.
    try {
      security::use_study_tls(cfg, security::find_study_credentials(output));
    } catch (const std::exception& e) {
      std::cerr << "melissa-server: " << e.what() << "\n";
      return 1;
    }
  } else {
    cfg.load<caf::io::middleman>();
  }
  // Idle scheduler threads wait on a condition variable instead of polling:
  // the server shares its cores with the I/O thread (and on small machines
  // with clients), and polling workers took ~40% of its CPU in the ingest
  // benchmark for no throughput gain.
  cfg.set("work-stealing.aggressive-poll-attempts", static_cast<int64_t>(0));
  cfg.set("work-stealing.moderate-poll-attempts", static_cast<int64_t>(0));
  // Heartbeats keep the launcher's connection alive (it drops links silent
  // for 30 s) and let this rank notice a launcher that died silently.
  cfg.set("middleman.heartbeat-interval", caf::timespan{std::chrono::seconds(1)});
  cfg.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(30)});
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};

  // Under melissa-run: reach the launcher first (it waits for this rank).
  launcher_server_actor launcher;
  if (!opt.launcher.empty()) {
    const auto colon = opt.launcher.rfind(':');
    if (colon == std::string::npos) usage_error("--launcher expects HOST:PORT");
    const auto host = opt.launcher.substr(0, colon);
    const auto port = static_cast<std::uint16_t>(parse_number("--launcher", opt.launcher.substr(colon + 1), 65535));
    auto reached = caf::openssl::remote_actor<launcher_server_actor>(sys, host, port);
    if (!reached) {
      std::cerr << "melissa-server: cannot reach the launcher at " << opt.launcher << ": "
                << sys.render(reached.error()) << "\n";
      return 1;
    }
    launcher = *reached;
  }

  coordinator_settings progress;
  const auto design = config::make_study_design(study);
  progress.design = design;
  progress.client_timeout = study.launcher.client_timeout;
  progress.host = advertised_host(net.host);
  progress.rank = rank;
  progress.expected_simulations = expected;
  progress.summary_path = output + "/server-summary.rank" + std::to_string(rank) + ".json";
  progress.provenance_path = output + "/breed-provenance.csv";
  if (restored) {
    progress.restored_dir = restored->dir;
    progress.restored_batch = restored->batch;
    progress.restored_table = restored->table;
    progress.restored_complete = restored->complete;
    // Rank 0 under a launcher asks again (run_sim) for a simulation done in
    // its received steps but not complete in the table: that one ends when
    // its rerun does (all duplicates), else the study could end before the
    // launcher hears that it is complete.
    const bool asks_again = rank == 0 && !opt.launcher.empty() && restored->table;
    for (const auto& [sim, record] : restored->received.simulations())
      if (record.done && (!asks_again || std::binary_search(restored->complete.begin(),
                                                            restored->complete.end(), sim)))
        progress.restored_done.push_back(sim);
    if (restored->elapsed_s) progress.elapsed_offset_s = *restored->elapsed_s;
  }
  // Rank 0 under a launcher: the coordinator publishes its simulation table
  // here, the checkpoints read it (from the trainer's thread).
  struct table_copy {
    std::mutex mutex;
    std::optional<simulation_table_snapshot> latest;
  };
  auto table = std::make_shared<table_copy>();
  if (rank == 0 && !opt.launcher.empty())
    progress.publish_table = [table](const simulation_table_snapshot& t) {
      std::lock_guard<std::mutex> lock(table->mutex);
      table->latest = t;
    };
  std::function<std::optional<simulation_table_snapshot>()> latest_table;
  if (progress.publish_table)
    latest_table = [table]() -> std::optional<simulation_table_snapshot> {
      std::lock_guard<std::mutex> lock(table->mutex);
      return table->latest;
    };
  progress.sink_checkpoints = statistics;
  // Dataset mode: the complete files on disk are the state; a (re)started
  // server neither rewrites nor asks for those simulations (sink_modes.hpp).
  std::vector<std::uint32_t> dataset_complete;
  if (dataset && !statistics && !restored) {
    if (auto found = scan_dataset(study, design)) {
      spdlog::info("{} simulations are complete in {}: they are not run again",
                   found->complete.size(), study.server.dataset_dir);
      dataset_complete = found->complete;
      ingest.restored = std::make_shared<restored_steps>();
      ingest.restored->log = std::move(found->received);
      progress.restored_done = found->complete;
      if (progress.publish_table) {
        progress.restored_dir = study.server.dataset_dir;
        progress.restored_table = std::move(found->table);
        progress.restored_complete = found->complete;
      }
    }
  }

  struct stop_notice {
    std::mutex mutex;
    std::atomic<bool> set{false};
    std::string answer;
  };
  auto peer_stop = std::make_shared<stop_notice>();

  const auto dataset_dir = study.server.dataset_dir;
  const auto delay = std::chrono::milliseconds(opt.sink_delay_ms);
  const bool checksums = opt.checksums;
  // main's scoped actor hears the coordinator's (rank_finished_atom, summary)
  // and the dataset sink's (sink_failed_atom, why).
  const auto rank_listener = caf::actor_cast<rank_listener_actor>(self);
  const auto sink_listener = caf::actor_cast<sink_failure_listener_actor>(self);

  std::vector<child_spec> tree;
  if (training) {
    training_rank where;
    where.rank = rank;
    where.ranks = ranks;
    where.output_dir = output;
    where.host = advertised_host(net.host);
    where.run_token = run_token(opt.launcher);
    where.launcher = launcher;
    if (restored) {
      where.restore_dir = restored->dir;
      where.restored_batch = restored->batch;
      where.restored_breed_state = restored->breed_state;
    }
    // Several ranks: a checkpoint that stops the server, taken because
    // another rank got SIGTERM or lost the launcher, stops this one too.
    where.stopped = [peer_stop](const std::string& answer) {
      std::lock_guard<std::mutex> lock(peer_stop->mutex);
      peer_stop->answer = answer;
      peer_stop->set = true;
    };
    if (rank == 0)  // the checkpoints' study/study_state.json
      where.elapsed = [offset = progress.elapsed_offset_s, started = std::chrono::steady_clock::now()] {
        return offset +
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      };
    if (progress.publish_table)
      where.table = [table]() -> std::optional<simulation_table_snapshot> {
        std::lock_guard<std::mutex> lock(table->mutex);
        return table->latest;
      };
    try {
      add_training_children(tree, study, design, where);
    } catch (const std::exception& e) {
      std::cerr << "melissa-server: " << e.what() << "\n";
      return 2;
    }
  } else if (statistics) {
    const auto stats_settings = statistics_settings_for(study, rank, ranks);
    const auto stats_dir = output + "/statistics";
    auto stats_checkpoints = statistics_checkpoints(
        study, rank, ranks, output, restored ? &*restored : nullptr, latest_table,
        [offset = progress.elapsed_offset_s, started = std::chrono::steady_clock::now()] {
          return offset +
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        });
    // Several ranks: a checkpoint that stops the server, asked by another
    // rank, stops this one too (as for training).
    stats_checkpoints.stopped = [peer_stop](const std::string& answer) {
      std::lock_guard<std::mutex> lock(peer_stop->mutex);
      peer_stop->answer = answer;
      peer_stop->set = true;
    };
    tree.push_back({"sink", restart_policy::permanent,
                    [=](caf::actor_system& s, const child_lookup&) {
                      return caf::actor_cast<caf::actor>(spawn_statistics_sink(
                          s, stats_settings, stats_dir, stats_checkpoints, restored_stats));
                    },
                    {}});
  } else {
    tree.push_back({"sink", restart_policy::permanent,
                    [=](caf::actor_system& s, const child_lookup&) {
                      if (dataset)
                        return caf::actor_cast<caf::actor>(spawn_dataset_sink(
                            s, dataset_dir, field_names, design, sink_listener, dataset_complete));
                      return caf::actor_cast<caf::actor>(spawn_counting_sink(s, delay, checksums));
                    },
                    {}});
  }
  tree.push_back({"aggregator", restart_policy::permanent,
                  [ingest](caf::actor_system& s, const child_lookup& find) {
                    const sink_actor sink = caf::actor_cast<sink_actor>(find("sink"));
                    return caf::actor_cast<caf::actor>(spawn_aggregator(s, sink, ingest));
                  },
                  {"sink"}});
  tree.push_back({"acceptor", restart_policy::permanent,
                  [shared_net](caf::actor_system& s, const child_lookup& find) {
                    const aggregator_actor aggregator =
                        caf::actor_cast<aggregator_actor>(find("aggregator"));
                    return caf::actor_cast<caf::actor>(
                        spawn_client_acceptor(s, *shared_net, aggregator));
                  },
                  {"aggregator"}});
  // Started last: under a launcher it registers this rank's client address,
  // which needs the acceptor's port.
  tree.push_back({"coordinator", restart_policy::permanent,
                  [=](caf::actor_system& s, const child_lookup& find) {
                    // The supervisor's lookup is untyped: cast once, here.
                    const coordinator_actor coordinator = spawn_coordinator(
                        s, progress, caf::actor_cast<aggregator_actor>(find("aggregator")),
                        caf::actor_cast<sink_actor>(find("sink")), rank_listener,
                        caf::actor_cast<acceptor_actor>(find("acceptor")), launcher,
                        caf::actor_cast<trainer_actor>(find("trainer")),
                        caf::actor_cast<steering_actor>(find("steering")));
                    return caf::actor_cast<caf::actor>(coordinator);
                  },
                  coordinator_depends_on(training, training && study.breed.enabled && rank == 0)});
  auto root = spawn_supervisor(sys, "server", std::move(tree));
  self->monitor(root);

  // Where clients connect: ask the acceptor for the port it bound.
  acceptor_actor acceptor;
  self->request(root, std::chrono::seconds(10), lookup_atom::value, std::string("acceptor"))
      .receive([&](const caf::actor& a) { acceptor = caf::actor_cast<acceptor_actor>(a); },
               [&](const caf::error&) {});
  std::optional<std::uint16_t> port;
  if (acceptor)
    self->request(acceptor, std::chrono::seconds(10), port_atom::value)
        .receive([&](std::uint16_t p) { port = p; }, [&](const caf::error&) {});
  if (!port) {
    std::cerr << "melissa-server: cannot listen on " << net.host << ":" << net.port << "\n";
    self->send_exit(root, caf::exit_reason::user_shutdown);
    return 1;
  }
  shared_net->port = *port;
  const auto address = net.host + ":" + std::to_string(*port);
  std::cout << "melissa-server: rank " << rank << " listening on " << address << std::endl;
  if (!opt.address_file.empty()) {
    try {
      write_file_atomically(opt.address_file, address + "\n");
    } catch (const std::exception& e) {
      std::cerr << "melissa-server: " << e.what() << "\n";
      self->send_exit(root, caf::exit_reason::user_shutdown);
      return 1;
    }
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  int status = 0;
  bool running = true;
  std::optional<std::chrono::steady_clock::time_point> give_up_at;
  while (running) {
    self->receive(
        // The sink cannot write (disk full, I/O error): not the simulations'
        // fault. The launcher stops the study with this message (and cancels
        // this server); a standalone server stops at once.
        [&](sink_failed_atom, const std::string& why) {
          spdlog::error("rank {}: the study cannot go on: {}", rank, why);
          status = 1;
          if (!launcher) {
            running = false;
            return;
          }
          self->send(launcher, sink_failed_atom::value, rank, why);
          if (!give_up_at) give_up_at = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        },
        [&](rank_finished_atom, const std::string& summary) {
          running = false;
          // Stopped with a checkpoint (the launcher is gone): 75, or 1 without one.
          const auto j = nlohmann::json::parse(summary, nullptr, false);
          if (j.is_object() && j.contains("stopped")) {
            status = checkpoint_status(j["stopped"].value("checkpoint", nlohmann::json()), rank);
            return;
          }
          spdlog::info("all {} simulations ended; summary in {}", expected, progress.summary_path);
        },
        [&](const caf::down_msg& msg) {
          spdlog::error("the server's supervision tree failed: {}", sys.render(msg.reason));
          status = 1;
          running = false;
        },
        caf::after(std::chrono::milliseconds(200)) >> [&] {
          if (give_up_at && std::chrono::steady_clock::now() > *give_up_at) running = false;
          if (stop_signal == 0 && peer_stop->set) {
            // Every rank checkpointed and stops (another rank's SIGTERM or
            // lost launcher): a partial summary, then 75 (1 without a checkpoint).
            std::string text;
            {
              std::lock_guard<std::mutex> lock(peer_stop->mutex);
              text = peer_stop->answer;
            }
            spdlog::warn("rank {}: the ranks checkpointed to stop; writing a partial summary", rank);
            coordinator_actor coordinator;
            self->request(root, std::chrono::seconds(5), lookup_atom::value, std::string("coordinator"))
                .receive([&](const caf::actor& a) { coordinator = caf::actor_cast<coordinator_actor>(a); },
                         [&](const caf::error&) {});
            std::string summary;
            if (coordinator)
              self->request(coordinator, std::chrono::seconds(10), report_atom::value)
                  .receive([&](const std::string& s) { summary = s; }, [&](const caf::error&) {});
            const auto answer = nlohmann::json::parse(text, nullptr, false);
            note_peer_stop(progress.summary_path, summary, answer);
            status = checkpoint_status(answer, rank);
            running = false;
            return;
          }
          if (stop_signal == 0) return;
          spdlog::warn("stopped by signal {}; writing a partial summary", stop_signal.load());
          coordinator_actor coordinator;
          self->request(root, std::chrono::seconds(5), lookup_atom::value, std::string("coordinator"))
              .receive([&](const caf::actor& a) { coordinator = caf::actor_cast<coordinator_actor>(a); },
                       [&](const caf::error&) {});
          status = 128 + stop_signal;
          // SIGTERM (Slurm's notice before a time limit) to a training
          // server: checkpoint first (bounded), then exit 75; 1 without one.
          // Any rank (Slurm signals them all; one is enough): with several
          // ranks the trainers take it together, and in statistics mode rank
          // 0 takes it (asked by another rank) with every rank's part; every
          // rank stops.
          if (coordinator && (training || statistics) && stop_signal == SIGTERM) {
            spdlog::warn("SIGTERM: taking a checkpoint (at most {} s)", sigterm_checkpoint_s);
            nlohmann::json answer = {{"error", "no answer within " +
                                                   std::to_string(sigterm_checkpoint_s) + " s"}};
            self->request(coordinator, std::chrono::seconds(sigterm_checkpoint_s), checkpoint_atom::value,
                          std::string("sigterm"))
                .receive(
                    [&](const std::string& text) {
                      answer = nlohmann::json::parse(text, nullptr, false);
                    },
                    [&](const caf::error&) {});
            status = checkpoint_status(answer, rank);
          }
          if (coordinator)
            self->request(coordinator, std::chrono::seconds(10), report_atom::value)
                .receive([&](const std::string&) {}, [&](const caf::error&) {});
          running = false;
        });
  }
  self->send_exit(root, caf::exit_reason::user_shutdown);
  return status;
}
