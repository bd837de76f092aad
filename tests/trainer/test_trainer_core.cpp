// trainer_core against torch::nn + torch::optim::Adam, its schedules,
// normalization, checkpoints and TorchScript export.
// torch first: Debian's c10 logs through glog, whose CHECK macros must not
// replace doctest's (undefined here, then doctest defines its own).
#include <torch/script.h>
#include <torch/torch.h>
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "actors/trainer/surrogate_model.hpp"
#include "actors/trainer/trainer_core.hpp"
#include "trainer_test_data.hpp"

using melissa::trainer_core;
using melissa::trainer_settings;
using melissa::training_batch;
using melissa::testing::make_batch;
using melissa::testing::small_settings;

namespace {

std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("melissa-trainer-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

torch::Tensor as_tensor(const std::vector<float>& values, std::int64_t rows, std::int64_t cols) {
  return torch::from_blob(const_cast<float*>(values.data()), {rows, cols}).clone();
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

torch::nn::AnyModule activation_module(const std::string& name) {
  if (name == "relu") return torch::nn::AnyModule(torch::nn::ReLU());
  if (name == "tanh") return torch::nn::AnyModule(torch::nn::Tanh());
  if (name == "gelu") return torch::nn::AnyModule(torch::nn::GELU());
  return torch::nn::AnyModule(torch::nn::SiLU());
}

// The same network as torch::nn layers, weights copied from a trainer's
// saved state dict.
torch::nn::Sequential reference_network(const trainer_settings& settings,
                                        const std::string& state_file) {
  torch::nn::Sequential network;
  std::vector<std::uint32_t> widths{settings.model.input_dim};
  widths.insert(widths.end(), settings.model.hidden.begin(), settings.model.hidden.end());
  widths.push_back(settings.model.output_dim);
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    network->push_back(torch::nn::Linear(widths[l], widths[l + 1]));
    if (l + 2 < widths.size()) network->push_back(activation_module(settings.model.activation));
  }
  auto state = melissa::load_tensor_dict(state_file);
  torch::NoGradGuard no_grad;
  auto parameters = network->named_parameters();
  for (const auto& [name, tensor] : state) {
    if (auto* parameter = parameters.find(name)) parameter->copy_(tensor);
  }
  return network;
}

}  // namespace

TEST_CASE("an unknown activation is refused with the accepted names") {
  auto settings = small_settings();
  settings.model.activation = "sigmoid";
  CHECK_THROWS_WITH_AS(trainer_core{settings},
                       "unknown activation 'sigmoid' (expected relu, tanh, gelu or silu)",
                       std::invalid_argument);
  settings.model.activation = "relu";
  settings.model.output_dim = 0;
  CHECK_THROWS_AS(trainer_core{settings}, std::invalid_argument);
}

TEST_CASE("a batch of the wrong shape is refused before anything changes") {
  trainer_core trainer(small_settings());
  auto batch = make_batch(5, 3, 300, 1);  // 3 inputs, the model takes 4
  CHECK_THROWS_AS(trainer.step(&batch), std::invalid_argument);
  CHECK(trainer.batches() == 0);
}

TEST_CASE("the same seed gives the same weights, another seed others") {
  auto settings = small_settings();
  trainer_core a(settings), b(settings);
  CHECK(a.weights_checksum() == b.weights_checksum());
  settings.seed = 8;
  trainer_core c(settings);
  CHECK(a.weights_checksum() != c.weights_checksum());
}

TEST_CASE("steps match torch::nn with torch::optim::Adam") {
  // Hidden width 300: the output layer runs in 3 chunks on 2 threads.
  for (std::string activation : {"relu", "tanh", "gelu", "silu"}) {
    CAPTURE(activation);
    trainer_settings settings;
    settings.model = {3, {32, 300}, activation, 500, ""};
    settings.output = {false, 0.5, 2.0};
    settings.optimizer.learning_rate = 1e-3;
    settings.seed = 3;
    settings.threads = 2;
    trainer_core trainer(settings);
    auto dir = fresh_dir("reference-" + activation);
    trainer.save(dir.string());
    auto network = reference_network(settings, (dir / "model_state.pt").string());
    torch::optim::Adam optimizer(network->parameters(), torch::optim::AdamOptions(1e-3));

    for (std::uint32_t k = 0; k < 6; ++k) {
      auto batch = make_batch(7, 3, 500, 100 + k, 0.5, 2.0);
      auto result = trainer.step(&batch);
      REQUIRE(result.trained);

      optimizer.zero_grad();
      torch::Tensor targets = (as_tensor(batch.targets, 7, 500) - 0.5) / 2.0;
      torch::Tensor loss =
          torch::mse_loss(network->forward(as_tensor(batch.inputs, 7, 3)), targets);
      loss.backward();
      optimizer.step();
      CHECK(result.loss == doctest::Approx(loss.item<double>()).epsilon(1e-5));
      REQUIRE(result.sample_losses.size() == 7);
      double mean = 0;
      for (float value : result.sample_losses) mean += value / 7.0;
      CHECK(mean == doctest::Approx(result.loss).epsilon(1e-6));
      CHECK(result.batch_mean == doctest::Approx(result.loss).epsilon(1e-6));
    }
    auto probe = make_batch(9, 3, 500, 999, 0.5, 2.0);
    std::vector<float> ours = trainer.predict(probe.inputs);
    torch::NoGradGuard no_grad;
    torch::Tensor theirs =
        (network->forward(as_tensor(probe.inputs, 9, 3)) * 2.0 + 0.5).contiguous();
    std::vector<float> reference(theirs.data_ptr<float>(), theirs.data_ptr<float>() + 9 * 500);
    CHECK(max_abs_diff(ours, reference) < 1e-4);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("one thread and several threads give the same weights") {
  auto settings = small_settings(4, 3000);
  settings.model.hidden = {16, 64};  // 1024 rows per chunk: 3 chunks
  settings.threads = 1;
  trainer_core alone(settings);
  settings.threads = 3;
  trainer_core pooled(settings);
  for (std::uint32_t k = 0; k < 4; ++k) {
    auto batch = make_batch(6, 4, 3000, k);
    auto a = alone.step(&batch);
    auto b = pooled.step(&batch);
    CHECK(a.loss == b.loss);
  }
  CHECK(alone.weights_checksum() == pooled.weights_checksum());
}

TEST_CASE("the learning rate halves every N batches down to the minimum") {
  auto settings = small_settings();
  settings.optimizer = {1e-3, 2, 3e-4};
  trainer_core trainer(settings);
  auto batch = make_batch(4, 4, 300, 5);
  std::vector<double> used;
  for (int k = 0; k < 7; ++k) used.push_back(trainer.step(&batch).learning_rate);
  std::vector<double> expected{1e-3, 1e-3, 5e-4, 5e-4, 3e-4, 3e-4, 3e-4};
  for (std::size_t k = 0; k < used.size(); ++k) CHECK(used[k] == doctest::Approx(expected[k]));
  CHECK(trainer.batches() == 7);
  CHECK(trainer.learning_rate() == doctest::Approx(3e-4));

  settings.optimizer = {1e-3, 0, 1e-5};  // 0: never
  trainer_core constant(settings);
  for (int k = 0; k < 5; ++k) constant.step(&batch);
  CHECK(constant.learning_rate() == 1e-3);
}

TEST_CASE("running normalization follows every target trained on") {
  auto settings = small_settings();
  trainer_core trainer(settings);
  CHECK(trainer.output_mean() == 0);
  CHECK(trainer.output_std() == 1);
  double sum = 0, count = 0;
  std::vector<training_batch> batches;
  for (std::uint32_t k = 0; k < 4; ++k) batches.push_back(make_batch(5, 4, 300, k, 300.0, 5.0));
  for (const auto& batch : batches) {
    trainer.step(&batch);
    for (float value : batch.targets) sum += value, count += 1;
  }
  double mean = sum / count, squares = 0;
  for (const auto& batch : batches)
    for (float value : batch.targets) squares += (value - mean) * (value - mean);
  CHECK(trainer.output_mean() == doctest::Approx(mean).epsilon(1e-7));
  CHECK(trainer.output_std() == doctest::Approx(std::sqrt(squares / count)).epsilon(1e-5));
  // Normalized, the loss starts near 1, not near 300^2.
  trainer_core fresh(settings);
  CHECK(fresh.step(&batches[0]).loss < 10);
}

TEST_CASE("no batch, no step") {
  trainer_core trainer(small_settings());
  auto before = trainer.weights_checksum();
  CHECK_FALSE(trainer.step(nullptr).trained);
  training_batch empty;
  empty.last = true;
  CHECK_FALSE(trainer.step(&empty).trained);
  CHECK(trainer.batches() == 0);
  CHECK(trainer.weights_checksum() == before);
}

TEST_CASE("evaluate is the MSE of predict in the field's units") {
  trainer_core trainer(small_settings());
  for (std::uint32_t k = 0; k < 3; ++k) {
    auto batch = make_batch(8, 4, 300, k, 10.0, 3.0);
    trainer.step(&batch);
  }
  auto set = make_batch(600, 4, 300, 77, 10.0, 3.0);  // more than one evaluation chunk
  std::vector<float> predicted = trainer.predict(set.inputs);
  double squared = 0;
  for (std::size_t i = 0; i < predicted.size(); ++i)
    squared += (static_cast<double>(predicted[i]) - set.targets[i]) *
               (static_cast<double>(predicted[i]) - set.targets[i]);
  CHECK(trainer.evaluate(set) == doctest::Approx(squared / predicted.size()).epsilon(1e-6));
}

TEST_CASE("save writes a TorchScript model that torch::jit::load runs") {
  auto settings = small_settings();
  settings.model.activation = "gelu";
  trainer_core trainer(settings);
  for (std::uint32_t k = 0; k < 3; ++k) {
    auto batch = make_batch(8, 4, 300, k, 2.0, 0.5);
    trainer.step(&batch);
  }
  auto dir = fresh_dir("jit");
  trainer.save(dir.string());
  CHECK(std::filesystem::exists(dir / "model.pt"));
  CHECK(std::filesystem::exists(dir / "model_state.pt"));
  CHECK_FALSE(std::filesystem::exists(dir / "model.pt.tmp"));

  torch::jit::Module module = torch::jit::load((dir / "model.pt").string());
  auto probe = make_batch(5, 4, 300, 42);
  torch::Tensor output = module.forward({as_tensor(probe.inputs, 5, 4)}).toTensor().contiguous();
  REQUIRE(output.sizes() == torch::IntArrayRef({5, 300}));
  std::vector<float> from_module(output.data_ptr<float>(), output.data_ptr<float>() + 5 * 300);
  CHECK(max_abs_diff(from_module, trainer.predict(probe.inputs)) < 1e-5);
  // One row, without a batch dimension.
  torch::Tensor row = module.forward({as_tensor(probe.inputs, 5, 4)[0]}).toTensor();
  CHECK(row.sizes() == torch::IntArrayRef({300}));
  CHECK(module.attr("input_dim").toInt() == 4);
  CHECK(module.attr("output_dim").toInt() == 300);
  std::filesystem::remove_all(dir);
}

TEST_CASE("load resumes where save left off") {
  auto settings = small_settings();
  settings.optimizer = {1e-3, 2, 1e-5};
  trainer_core original(settings);
  for (std::uint32_t k = 0; k < 3; ++k) {
    auto batch = make_batch(6, 4, 300, k, 5.0, 2.0);
    original.step(&batch);
  }
  auto dir = fresh_dir("resume");
  original.save(dir.string());
  settings.seed = 1234;  // other initial weights: load must replace them all
  trainer_core resumed(settings);
  resumed.load(dir.string());
  CHECK(resumed.weights_checksum() == original.weights_checksum());
  CHECK(resumed.batches() == 3);
  CHECK(resumed.learning_rate() == original.learning_rate());
  CHECK(resumed.output_mean() == original.output_mean());
  for (std::uint32_t k = 3; k < 6; ++k) {
    auto batch = make_batch(6, 4, 300, k, 5.0, 2.0);
    CHECK(original.step(&batch).loss == resumed.step(&batch).loss);
  }
  CHECK(resumed.weights_checksum() == original.weights_checksum());

  auto other = small_settings();
  other.model.hidden = {8, 8};
  trainer_core mismatched(other);
  CHECK_THROWS_AS(mismatched.load(dir.string()), std::runtime_error);
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------
// Devices, the generic path, TorchScript models of the user's.

namespace {

// A small network as the user would script it: 2 layers, output shaped
// [B, 10, out/10] (any shape with out values per sample is fine).
torch::jit::Module user_module(std::int64_t in, std::int64_t out, std::int64_t hidden = 24) {
  torch::manual_seed(11);
  torch::jit::Module m("UserNet");
  m.register_parameter("w1", torch::randn({hidden, in}) * 0.4, false);
  m.register_parameter("b1", torch::zeros({hidden}), false);
  m.register_parameter("w2", torch::randn({out, hidden}) * 0.1, false);
  m.register_parameter("b2", torch::zeros({out}), false);
  m.define(R"(
def forward(self, x):
    h = torch.tanh(torch.matmul(x, self.w1.t()) + self.b1)
    y = torch.matmul(h, self.w2.t()) + self.b2
    return y.reshape(x.size(0), 10, -1)
)");
  return m;
}

std::string save_module(torch::jit::Module m, const std::filesystem::path& path) {
  std::filesystem::create_directories(path.parent_path());
  m.save(path.string());
  return path.string();
}

std::map<std::string, torch::Tensor> state_of(const trainer_core& trainer,
                                              const std::filesystem::path& dir) {
  trainer.save(dir.string());
  std::map<std::string, torch::Tensor> state;
  for (const auto& [name, tensor] : melissa::load_tensor_dict((dir / "model_state.pt").string()))
    state[name] = tensor;
  return state;
}

double max_weight_diff(const std::map<std::string, torch::Tensor>& a,
                       const std::map<std::string, torch::Tensor>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (const auto& [name, tensor] : a) {
    REQUIRE(b.count(name) == 1);
    worst = std::max(worst, (tensor.to(torch::kDouble) - b.at(name).to(torch::kDouble))
                                .abs().max().item<double>());
  }
  return worst;
}

}  // namespace

TEST_CASE("the device rule: local rank mod visible devices, CPU without CUDA") {
  using melissa::pick_device;
  CHECK(pick_device("auto", 5, 0).name() == "cpu");
  CHECK(pick_device("auto", 5, 0).reason == "device = \"auto\" and LibTorch sees no CUDA device");
  CHECK(pick_device("auto", 5, 4).name() == "cuda:1");
  CHECK(pick_device("auto", 5, 4).reason == "local rank 5 mod 4 visible CUDA device(s)");
  CHECK(pick_device("auto", 0, 1).name() == "cuda:0");
  CHECK(pick_device("cuda", 3, 2).name() == "cuda:1");
  CHECK(pick_device("cpu", 3, 8).name() == "cpu");
  CHECK(pick_device("cuda:2", 0, 4).name() == "cuda:2");
  CHECK_THROWS_WITH_AS(pick_device("cuda", 0, 0),
                       "device = \"cuda\", but LibTorch sees no CUDA device (a CPU-only build, no "
                       "GPU, or CUDA_VISIBLE_DEVICES empty)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(pick_device("cuda:4", 0, 4),
                       "device: cuda:4 asked, but LibTorch sees 4 CUDA device(s)",
                       std::invalid_argument);
  CHECK_THROWS_AS(pick_device("gpu", 0, 4), std::invalid_argument);
  // This build's LibTorch (Debian's is CPU only): "auto" trains on what it sees.
  auto report = melissa::check_model(small_settings());
  CHECK(report.kind == "mlp");
  CHECK(report.parameter_count == (4 * 16 + 16) + (16 * 16 + 16) + (16 * 300 + 300));
  CHECK(report.device == "cpu");
}

TEST_CASE("the generic path gives the fused path's weights after 20 steps") {
  // Stated tolerance: 5e-6 on every weight (measured: at most 5.2e-7) (float32 sums in another order;
  // Adam's normalized steps are 1e-3, so a mismatch of the update shows at once).
  for (std::string activation : {"relu", "gelu"}) {
    for (bool options : {false, true}) {
      CAPTURE(activation);
      CAPTURE(options);
      auto settings = small_settings(4, 300);
      settings.model.hidden = {16, 64};
      settings.model.activation = activation;
      if (options) settings.optimizer.weight_decay = 0.01, settings.optimizer.clip_grad_norm = 0.05;
      trainer_core fused(settings);
      settings.generic_path = true;
      trainer_core generic(settings);
      CHECK(fused.weights_checksum() == generic.weights_checksum());  // same start
      for (std::uint32_t k = 0; k < 20; ++k) {
        auto batch = make_batch(8, 4, 300, 40 + k, 5.0, 2.0);
        auto a = fused.step(&batch);
        auto b = generic.step(&batch);
        REQUIRE(b.trained);
        CHECK(b.loss == doctest::Approx(a.loss).epsilon(1e-4));
        REQUIRE(b.sample_losses.size() == 8);
        CHECK(b.sample_losses[3] == doctest::Approx(a.sample_losses[3]).epsilon(1e-4));
      }
      CHECK(fused.output_mean() == doctest::Approx(generic.output_mean()).epsilon(1e-7));
      auto dir = fresh_dir("generic-fused");
      double diff = max_weight_diff(state_of(fused, dir / "fused"), state_of(generic, dir / "generic"));
      MESSAGE("max weight difference after 20 steps: " << diff);
      CHECK(diff < 5e-6);
      std::filesystem::remove_all(dir);
    }
  }
}

TEST_CASE("weight decay and gradient clipping match torch.optim.Adam and clip_grad_norm_") {
  for (bool generic : {false, true}) {
    CAPTURE(generic);
    trainer_settings settings;
    settings.model = {3, {32}, "tanh", 200, ""};
    settings.output = {false, 0.5, 2.0};
    settings.optimizer.weight_decay = 0.05;
    settings.optimizer.clip_grad_norm = 0.02;  // below the gradients' norms: clipping acts
    settings.seed = 3;
    settings.threads = 2;
    settings.generic_path = generic;
    trainer_core trainer(settings);
    auto dir = fresh_dir("decay-clip");
    trainer.save(dir.string());
    auto network = reference_network(settings, (dir / "model_state.pt").string());
    torch::optim::Adam optimizer(network->parameters(),
                                 torch::optim::AdamOptions(1e-3).weight_decay(0.05));
    double largest_norm = 0;
    for (std::uint32_t k = 0; k < 6; ++k) {
      auto batch = make_batch(7, 3, 200, 300 + k, 0.5, 2.0);
      trainer.step(&batch);
      optimizer.zero_grad();
      torch::Tensor targets = (as_tensor(batch.targets, 7, 200) - 0.5) / 2.0;
      torch::mse_loss(network->forward(as_tensor(batch.inputs, 7, 3)), targets).backward();
      largest_norm = std::max(
          largest_norm, torch::nn::utils::clip_grad_norm_(network->parameters(), 0.02));
      optimizer.step();
    }
    CHECK(largest_norm > 0.02);
    auto probe = make_batch(9, 3, 200, 999, 0.5, 2.0);
    torch::NoGradGuard no_grad;
    torch::Tensor theirs = (network->forward(as_tensor(probe.inputs, 9, 3)) * 2.0 + 0.5).contiguous();
    std::vector<float> reference(theirs.data_ptr<float>(), theirs.data_ptr<float>() + 9 * 200);
    CHECK(max_abs_diff(trainer.predict(probe.inputs), reference) < 1e-4);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("a TorchScript model of the user's trains, exports and resumes") {
  auto dir = fresh_dir("user-model");
  auto settings = small_settings(4, 300);
  settings.model.torchscript = save_module(user_module(4, 300), dir / "net.pt");
  settings.optimizer.learning_rate = 3e-3;
  auto report = melissa::check_model(settings);
  CHECK(report.kind == "torchscript");
  CHECK(report.parameter_count == (24 * 4 + 24) + (300 * 24 + 300));
  CHECK(report.description == "TorchScript " + settings.model.torchscript + " (7620 parameters)");

  trainer_core trainer(settings);
  CHECK(trainer.parameter_count() == 7620);
  CHECK(trainer.model().kind == "torchscript");
  auto validation = make_batch(64, 4, 300, 4242, 10.0, 3.0);
  const double before = trainer.evaluate(validation);
  for (std::uint32_t k = 0; k < 80; ++k) {
    auto batch = make_batch(16, 4, 300, k, 10.0, 3.0);
    REQUIRE(trainer.step(&batch).trained);
  }
  const double after = trainer.evaluate(validation);
  MESSAGE("validation MSE " << before << " -> " << after);
  CHECK(after < 0.5 * before);

  // model.pt: the user's network wrapped, in the field's units, N x 300.
  auto saved = dir / "saved";
  trainer.save(saved.string());
  torch::jit::Module module = torch::jit::load((saved / "model.pt").string());
  torch::Tensor output =
      module.forward({as_tensor(validation.inputs, 64, 4)}).toTensor().contiguous();
  REQUIRE(output.sizes() == torch::IntArrayRef({64, 300}));
  std::vector<float> from_module(output.data_ptr<float>(), output.data_ptr<float>() + 64 * 300);
  CHECK(max_abs_diff(from_module, trainer.predict(validation.inputs)) < 1e-5);
  CHECK(module.attr("output_dim").toInt() == 300);
  // The export owns its weights: not the whole flat buffer per parameter.
  CHECK(std::filesystem::file_size(saved / "model.pt") < 200000);
  auto state = melissa::load_tensor_dict((saved / "model_state.pt").string());
  std::vector<std::string> names;
  for (const auto& [name, tensor] : state) names.push_back(name);
  CHECK(names == std::vector<std::string>{"w1", "b1", "w2", "b2", "output_mean", "output_std"});

  // load() resumes: the same weights, then the same steps.
  trainer_core resumed(settings);
  CHECK(resumed.weights_checksum() != trainer.weights_checksum());
  resumed.load(saved.string());
  CHECK(resumed.weights_checksum() == trainer.weights_checksum());
  auto batch = make_batch(16, 4, 300, 500, 10.0, 3.0);
  CHECK(resumed.step(&batch).loss == trainer.step(&batch).loss);
  CHECK(resumed.weights_checksum() == trainer.weights_checksum());
  std::filesystem::remove_all(dir);
}

TEST_CASE("each bad model file gets its clear error before training") {
  auto dir = fresh_dir("bad-models");
  std::filesystem::create_directories(dir);
  auto settings = small_settings(4, 300);
  auto error_of = [&](const std::string& path) -> std::string {
    settings.model.torchscript = path;
    try {
      melissa::check_model(settings);
    } catch (const std::invalid_argument& e) {
      // The trainer refuses it the same way.
      CHECK_THROWS_WITH_AS(trainer_core{settings}, e.what(), std::invalid_argument);
      return e.what();
    }
    return "accepted";
  };
  const std::string missing = (dir / "missing.pt").string();
  CHECK(error_of(missing) == "training.model: " + missing + ": no such file");

  const std::string garbage = (dir / "garbage.pt").string();
  std::ofstream(garbage) << "not a zip archive\n";
  const std::string garbage_error = error_of(garbage);
  CHECK(garbage_error.rfind("training.model: " + garbage +
                                ": not a TorchScript module torch::jit::load can read (",
                            0) == 0);

  torch::jit::Module empty("Empty");
  empty.define("def forward(self, x):\n    return x\n");
  const std::string no_parameters = save_module(empty, dir / "empty.pt");
  CHECK(error_of(no_parameters) ==
        "training.model: " + no_parameters + ": the module has no parameters (nothing to train)");

  const std::string short_output = save_module(user_module(4, 290), dir / "short.pt");
  CHECK(error_of(short_output) == "training.model: " + short_output +
                                      ": forward of a batch of 2 gives [2, 10, 29] = 290 values "
                                      "per sample; the trained field has 300");

  const std::string other_inputs = save_module(user_module(6, 300), dir / "inputs6.pt");
  const std::string input_error = error_of(other_inputs);
  CHECK(input_error.rfind("training.model: " + other_inputs +
                              ": forward of a float32 batch [2, 4] (parameters and time) failed: ",
                          0) == 0);
  CHECK(input_error.find("cannot be multiplied") != std::string::npos);

  torch::jit::Module doubles = user_module(4, 300);
  doubles.to(torch::kDouble);
  const std::string double_path = save_module(doubles, dir / "double.pt");
  CHECK(error_of(double_path) == "training.model: " + double_path +
                                     ": parameter 'w1' is Double; the trainer trains float32 "
                                     "parameters (.float() before saving)");

  torch::jit::Module pair("Pair");
  pair.register_parameter("w", torch::ones({300, 4}), false);
  pair.define("def forward(self, x):\n    y = torch.matmul(x, self.w.t())\n    return (y, y)\n");
  const std::string tuple_path = save_module(pair, dir / "pair.pt");
  CHECK(error_of(tuple_path) ==
        "training.model: " + tuple_path + ": forward returned a Tuple, not a tensor");
  std::filesystem::remove_all(dir);
}
