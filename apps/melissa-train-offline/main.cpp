// melissa-train-offline: the classic way, as the baseline of online training.
// Trains the study's surrogate (the model, optimizer and normalization of its
// [training] section, the input encoding of its [parameters] bounds and
// training.time_steps: exactly what the online trainer builds) epoch by epoch
// from a dataset directory (the dataset sink's or `melissa-heat --mode
// dataset`'s layout), through the memory-mapped reader and the seeded,
// multi-threaded shuffling loader.
//
//   melissa-train-offline --config study.toml --dataset DIR [--validation DIR]
//                         [--epochs N] [--output DIR] [--workers N] [--seed S]
//                         [--max-batches N] [--progress-every SECONDS]
//
// Output directory (default <study.output_dir>-offline):
//   metrics/metrics.csv (+ TensorBoard events)  the online trainer's columns but
//                        buffer_population and buffer_unseen (no buffer here)
//   model/model.pt, model_state.pt, trainer_state.pt   trainer_core::save
//   summary.json         {"training": the online summary's keys + epochs, ...}
//   study.toml           the resolved study
//
// Exit status: 0 done, 2 bad input (arguments, study file, dataset), 1 other
// failures (cannot write the output), 130 interrupted (model and summary are
// still written).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actors/metrics/metrics_writer.hpp"
#include "actors/metrics/training_figures.hpp"
#include "actors/trainer/dataset/dataset_reader.hpp"
#include "actors/trainer/dataset/shuffling_loader.hpp"
#include "actors/trainer/study_settings.hpp"
#include "actors/trainer/trainer_core.hpp"
#include "config/study.hpp"
#include "messages/atomic_file.hpp"
#include "messages/sample_encoding.hpp"

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr const char* kProgram = "melissa-train-offline";

// A user error: exit status 2.
struct input_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::atomic<int> stop_signal{0};
extern "C" void on_signal(int sig) { stop_signal.store(sig); }

const char* kUsage =
    "usage: melissa-train-offline --config STUDY.toml --dataset DIR [--validation DIR]\n"
    "                             [--epochs N] [--output DIR] [--workers N] [--seed S]\n"
    "                             [--max-batches N] [--progress-every SECONDS]\n"
    "\n"
    "Trains the study's surrogate ([training], inputs encoded from [parameters] bounds and\n"
    "training.time_steps) epoch by epoch from DIR/sim_NNNNNN/<field>.npy + parameters.npy.\n"
    "  --validation DIR      validation dataset (default: training.validation_dir of the study;\n"
    "                        \"\" for none), evaluated every training.validation_every batches\n"
    "  --epochs N            epochs (default 1)\n"
    "  --output DIR          default <study.output_dir>-offline: metrics/, model/, summary.json\n"
    "  --workers N           loader threads assembling batches ahead (default 2; 0: inline)\n"
    "  --seed S              initial weights and shuffling (default study.seed)\n"
    "  --max-batches N       stop after N batches (0: no limit)\n"
    "  --progress-every S    seconds between progress lines on stderr (default 5; 0: none)\n";

struct options {
  std::string config;
  std::string dataset;
  std::optional<std::string> validation;
  std::uint64_t epochs = 1;
  std::optional<std::string> output;
  unsigned workers = 2;
  std::optional<std::uint64_t> seed;
  std::uint64_t max_batches = 0;
  double progress_every = 5;
};

std::uint64_t parse_count(const std::string& flag, const std::string& text, std::uint64_t lo,
                          std::uint64_t hi) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    if (text.empty() || text[0] == '-') throw std::invalid_argument("sign");
    v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || used == 0 || v < lo || v > hi)
    throw input_error(flag + ": expected an integer in [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "], got '" + text + "'");
  return v;
}

options parse_options(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw input_error(a + ": missing value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      std::exit(0);
    } else if (a == "--config") {
      o.config = value();
    } else if (a == "--dataset") {
      o.dataset = value();
    } else if (a == "--validation") {
      o.validation = value();
    } else if (a == "--epochs") {
      o.epochs = parse_count(a, value(), 1, 1000000);
    } else if (a == "--output") {
      o.output = value();
      if (o.output->empty()) throw input_error("--output: must not be empty");
    } else if (a == "--workers") {
      o.workers = static_cast<unsigned>(parse_count(a, value(), 0, 256));
    } else if (a == "--seed") {
      o.seed = parse_count(a, value(), 0, std::numeric_limits<std::int64_t>::max());
    } else if (a == "--max-batches") {
      o.max_batches = parse_count(a, value(), 0, std::numeric_limits<std::int64_t>::max());
    } else if (a == "--progress-every") {
      const auto text = value();
      char* end = nullptr;
      o.progress_every = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !(o.progress_every >= 0) || o.progress_every > 1e9)
        throw input_error("--progress-every: expected seconds >= 0, got '" + text + "'");
    } else {
      throw input_error("unknown argument '" + a + "' (see --help)");
    }
  }
  if (o.config.empty()) throw input_error("--config STUDY.toml is required");
  if (o.dataset.empty()) throw input_error("--dataset DIR is required");
  return o;
}

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int run(const options& opt) {
  // --- the study -----------------------------------------------------------
  melissa::config::study_config study;
  try {
    study = melissa::config::load_study(opt.config);
  } catch (const melissa::config::config_error& e) {
    throw input_error(e.what());
  }
  const auto& t = study.training;
  const std::string field_name = t.field.empty() ? study.fields.front().name : t.field;
  const auto field = std::find_if(study.fields.begin(), study.fields.end(),
                                  [&](const auto& f) { return f.name == field_name; });
  if (field == study.fields.end())
    throw input_error(opt.config + ": training.field: no field is named \"" + field_name + "\"");

  const melissa::sample_encoder encoder = melissa::encoder_of(study);

  // --- the datasets ----------------------------------------------------------
  std::shared_ptr<const melissa::dataset_reader> reader;
  try {
    reader = std::make_shared<const melissa::dataset_reader>(opt.dataset, field_name, encoder);
  } catch (const std::exception& e) {
    throw input_error(std::string("training dataset: ") + e.what());
  }
  if (reader->output_dim() != field->size)
    throw input_error("training dataset: " + opt.dataset + ": " + field_name + " has " +
                      std::to_string(reader->output_dim()) + " values per step, but " + opt.config +
                      " declares size = " + std::to_string(field->size));
  if (reader->max_time_steps() > t.time_steps)
    std::cerr << kProgram << ": warning: " << opt.dataset << " holds up to "
              << reader->max_time_steps() << " steps per simulation, training.time_steps is "
              << t.time_steps << ": time inputs exceed 1\n";

  const std::string validation_dir = opt.validation ? *opt.validation : t.validation_dir;
  melissa::training_batch_ptr validation;
  if (!validation_dir.empty()) {
    try {
      validation = melissa::load_dataset(validation_dir, field_name, encoder);
    } catch (const std::exception& e) {
      throw input_error(std::string("validation dataset: ") + e.what());
    }
    if (validation->output_dim != field->size)
      throw input_error("validation dataset: " + validation_dir + ": " + field_name + " has " +
                        std::to_string(validation->output_dim) + " values per step, but " +
                        opt.config + " declares size = " + std::to_string(field->size));
  }

  // --- the trainer (the online trainer's settings, apps/melissa-server/training.cpp)
  melissa::trainer_settings settings = melissa::trainer_settings_of(study, *field);
  const std::uint64_t seed = opt.seed ? *opt.seed : study.study.seed;
  settings.seed = seed;

  const fs::path output = opt.output ? fs::path(*opt.output) : fs::path(study.study.output_dir + "-offline");
  std::error_code ec;
  fs::create_directories(output, ec);
  if (ec) throw std::runtime_error(output.string() + ": cannot create: " + ec.message());
  melissa::write_file_atomically((output / "study.toml").string(), melissa::config::to_toml(study));

  settings.local_rank = melissa::local_rank_from_environment(0);
  // A model file that cannot train (cannot load, no parameters, wrong output
  // size) or a device that is not there is bad input: exit 2 naming it.
  std::unique_ptr<melissa::trainer_core> core_holder;
  try {
    core_holder = std::make_unique<melissa::trainer_core>(settings);
  } catch (const std::invalid_argument& e) {
    throw input_error(e.what());
  }
  melissa::trainer_core& core = *core_holder;
  // The online trainer's figures and columns, less the buffer's (no buffer here).
  melissa::training_figures figures({1, false});
  melissa::metrics_writer metrics(output.string(), figures.columns());

  melissa::shuffling_options loader_options;
  loader_options.batch_size = t.batch_size;
  loader_options.workers = opt.workers;
  loader_options.prefetch = std::max<std::size_t>(4, 2 * std::size_t(opt.workers));
  loader_options.seed = seed;
  melissa::shuffling_loader loader(reader, loader_options);
  const std::size_t per_epoch = loader.batches_per_epoch();

  std::cerr << kProgram << ": " << reader->simulation_count() << " simulations, " << reader->size()
            << " samples (" << per_epoch << " batches of " << t.batch_size << " per epoch) from "
            << opt.dataset;
  if (validation)
    std::cerr << "; validation: " << validation->size << " samples from " << validation_dir;
  std::cerr << "; model " << core.model().description;
  if (core.model().kind == "mlp") std::cerr << " (" << core.parameter_count() << " parameters)";
  std::cerr << " on " << core.model().device << "; " << opt.epochs << " epoch(s)\n";

  // --- training ---------------------------------------------------------------
  std::uint64_t epochs_done = 0;
  figures.start(clock_type::now());
  auto last_progress = clock_type::now();

  auto validate = [&] {
    if (!validation) return;
    const auto t0 = clock_type::now();
    const double loss = core.evaluate(*validation);
    figures.validated(loss, seconds_between(t0, clock_type::now()));
  };
  std::uint64_t last_validated_batch = 0;
  auto close_window = [&] {
    metrics.record(static_cast<std::int64_t>(figures.batches()),
                   figures.close_window(clock_type::now(), core.learning_rate()));
  };
  auto progress = [&](std::uint64_t epoch, std::size_t in_epoch) {
    const auto now = clock_type::now();
    const auto last_validation = figures.last_validation();
    std::fprintf(stderr,
                 "%s: epoch %llu/%llu batch %zu/%zu loss %.5g samples/s %.1f%s elapsed %.1f s\n",
                 kProgram, static_cast<unsigned long long>(epoch + 1),
                 static_cast<unsigned long long>(opt.epochs), in_epoch, per_epoch,
                 figures.last_loss(), figures.overall_samples_per_s(now),
                 last_validation ? (" validation " + std::to_string(*last_validation)).c_str() : "",
                 figures.elapsed_s(now));
  };

  bool stopped_early = false;
  for (std::uint64_t epoch = 0; epoch < opt.epochs && !stopped_early; ++epoch) {
    std::size_t in_epoch = 0;
    for (;;) {
      if (stop_signal.load() != 0 || (opt.max_batches && figures.batches() >= opt.max_batches)) {
        stopped_early = true;
        break;
      }
      const auto asked = clock_type::now();
      const auto batch = loader.next();
      const double waited = seconds_between(asked, clock_type::now());
      if (!batch) break;  // the epoch is over
      figures.waited(waited);
      const auto result = core.step(batch.get());
      ++in_epoch;
      figures.trained(batch->size, result.loss);
      if (figures.batches() % t.validation_every == 0) {
        validate();
        last_validated_batch = figures.batches();
      }
      if (figures.window_batches() >= t.metrics_every) close_window();
      const auto now = clock_type::now();
      if (opt.progress_every > 0 && seconds_between(last_progress, now) >= opt.progress_every) {
        progress(epoch, in_epoch);
        last_progress = now;
      }
    }
    if (!stopped_early) {
      ++epochs_done;
      if (opt.progress_every > 0) progress(epoch, in_epoch);
    }
  }
  // The last figures: a validation of the final weights (unless the last
  // batch was just validated) and the partial window.
  if (figures.batches() > 0 && last_validated_batch != figures.batches()) validate();
  if (figures.window_batches() > 0) close_window();
  const auto ended = clock_type::now();

  // --- model and summary ---------------------------------------------------------
  nlohmann::json training = figures.summary(ended);
  training["rank"] = 0;
  training["ranks"] = 1;
  training["state"] = stop_signal.load() ? "interrupted" : "done";
  training["steps"] = core.batches();
  training["learning_rate"] = core.learning_rate();
  training["epochs"] = epochs_done;
  training["batches_per_epoch"] = per_epoch;
  training["weights_checksum"] = core.weights_checksum();
  training["output_mean"] = core.output_mean();
  training["output_std"] = core.output_std();
  training["parameter_count"] = core.parameter_count();
  training["model_kind"] = core.model().kind;
  training["device"] = core.model().device;
  training["seed"] = seed;
  training["workers"] = opt.workers;

  const fs::path model_dir = output / "model";
  fs::create_directories(model_dir, ec);
  if (ec) throw std::runtime_error(model_dir.string() + ": cannot create: " + ec.message());
  core.save(model_dir.string());
  training["model"] = {{"torchscript", (model_dir / "model.pt").string()},
                       {"state_dict", (model_dir / "model_state.pt").string()}};

  // A probe for whoever loads model.pt: the first sample's encoded input (of the
  // validation set, else of the training set) and what the trained model predicts.
  const auto probe_set = validation ? validation : reader->batch({0});
  std::vector<float> probe_input(probe_set->inputs.begin(),
                                 probe_set->inputs.begin() + probe_set->input_dim);
  const auto prediction = core.predict(probe_input);
  double prediction_mean = 0;
  for (float v : prediction) prediction_mean += v;
  prediction_mean /= static_cast<double>(std::max<std::size_t>(prediction.size(), 1));
  nlohmann::json probe{{"sim_id", probe_set->sim_ids.front()},
                       {"time_step", probe_set->time_steps.front()},
                       {"input", probe_input},
                       {"output_size", prediction.size()},
                       {"output_head", std::vector<float>(prediction.begin(),
                                                          prediction.begin() +
                                                              std::min<std::size_t>(8, prediction.size()))},
                       {"output_mean", prediction_mean}};

  nlohmann::json summary{
      {"program", kProgram},
      {"study", study.study.name},
      {"config", opt.config},
      {"dataset", {{"dir", opt.dataset}, {"field", field_name}, {"simulations", reader->simulation_count()},
                   {"samples", reader->size()}}},
      {"validation", validation ? nlohmann::json{{"dir", validation_dir}, {"samples", validation->size}}
                                : nlohmann::json()},
      {"training", training},
      {"probe", probe}};
  melissa::write_file_atomically((output / "summary.json").string(), summary.dump(2) + "\n");

  std::fprintf(stderr,
               "%s: %llu epoch(s), %llu batches, %llu samples in %.1f s (%.1f s validating); "
               "mean %.1f samples/s, busy %.1f %%; min validation MSE %s; model in %s\n",
               kProgram, static_cast<unsigned long long>(epochs_done),
               static_cast<unsigned long long>(figures.batches()),
               static_cast<unsigned long long>(figures.samples_seen()), figures.elapsed_s(ended),
               figures.validation_s(), figures.mean_samples_per_s(),
               100.0 * figures.busy_fraction(ended),
               figures.best_validation() ? std::to_string(*figures.best_validation()).c_str() : "n/a",
               model_dir.string().c_str());
  return stop_signal.load() ? 130 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  try {
    return run(parse_options(argc, argv));
  } catch (const input_error& e) {
    std::cerr << kProgram << ": " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << kProgram << ": error: " << e.what() << "\n";
    return 1;
  }
}
