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
    settings.model = {3, {32, 300}, activation, 500};
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
