#include "actors/trainer/trainer_core.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>

#include "actors/trainer/chunk_pool.hpp"
#include "actors/trainer/gradient_group.hpp"
#include "actors/trainer/surrogate_model.hpp"

namespace melissa {

namespace {

// torch.optim.Adam's defaults.
constexpr double adam_beta1 = 0.9;
constexpr double adam_beta2 = 0.999;
constexpr double adam_eps = 1e-8;

// What travels after the gradients in the step's one all-reduce.
enum tail_slot : std::int64_t {
  tail_had_batch,       // 1 per rank with a batch: the divisor of the mean gradient
  tail_loss,            // that rank's loss
  tail_samples,         // samples in that rank's batch
  tail_centered_sum,    // sum of (target - current mean), running normalization
  tail_centered_sumsq,  // sum of (target - current mean)^2
  tail_size
};

struct adam_coefficients {
  float gradient_scale;  // 1 / ranks that had a batch
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float negative_step_size;  // -lr / (1 - beta1^t)
  float bias_correction2_sqrt;
  float eps;
};

// torch.optim.Adam's update (_single_tensor_adam, no amsgrad, no weight
// decay): the same float operations in the same order, but in one pass over
// the four arrays instead of six tensor operations of one or two passes each
// (with 2.6M parameters the arrays do not fit in cache: the optimizer is
// bound by memory traffic).
void fused_adam(float* __restrict parameters, const float* __restrict gradients,
                float* __restrict exp_avg, float* __restrict exp_avg_sq, std::int64_t count,
                const adam_coefficients& c) {
  for (std::int64_t i = 0; i < count; ++i) {
    float grad = gradients[i] * c.gradient_scale;
    float m = exp_avg[i] * c.beta1 + c.one_minus_beta1 * grad;
    float v = exp_avg_sq[i] * c.beta2 + c.one_minus_beta2 * (grad * grad);
    float denom = std::sqrt(v) / c.bias_correction2_sqrt + c.eps;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    parameters[i] = parameters[i] + c.negative_step_size * (m / denom);
  }
}

// The pool runs BLAS calls side by side: OpenBLAS must not start threads of
// its own in each (2 x 2 threads on 2 cores measured 3x slower). Looked up at
// run time: another BLAS simply lacks the symbol.
void single_threaded_blas() {
  using set_threads_fn = void (*)(int);
  if (auto set_threads =
          reinterpret_cast<set_threads_fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set_threads(1);
}

at::Tensor wrap_rows(const std::vector<float>& values, std::int64_t rows, std::int64_t columns) {
  // from_blob: no copy; the batch is only read (never written through it).
  return at::from_blob(const_cast<float*>(values.data()), {rows, columns}, at::kFloat);
}

void check_batch(const training_batch& batch, const model_settings& model) {
  if (batch.input_dim != model.input_dim || batch.output_dim != model.output_dim)
    throw std::invalid_argument(
        "training batch of " + std::to_string(batch.input_dim) + " inputs -> " +
        std::to_string(batch.output_dim) + " outputs does not fit the model (" +
        std::to_string(model.input_dim) + " -> " + std::to_string(model.output_dim) + ")");
  if (batch.inputs.size() != std::size_t{batch.size} * batch.input_dim ||
      batch.targets.size() != std::size_t{batch.size} * batch.output_dim)
    throw std::invalid_argument("training batch: inputs or targets size does not match " +
                                std::to_string(batch.size) + " samples");
}

void write_atomically(const std::filesystem::path& path,
                      const std::function<void(const std::string&)>& write) {
  auto temporary = path;
  temporary += ".tmp";
  write(temporary.string());
  std::filesystem::rename(temporary, path);
}

}  // namespace

struct trainer_core::impl {
  trainer_settings settings;
  std::shared_ptr<gradient_group> group;
  surrogate_model model;
  std::int64_t parameter_count;
  chunk_pool pool;  // the step's threads (settings.threads, the caller included)
  // [gradients | tail]: the one tensor a step all-reduces.
  at::Tensor reduce_buffer;
  at::Tensor gradients;
  at::Tensor exp_avg, exp_avg_sq;
  std::uint64_t batches = 0;
  double learning_rate;
  // Running output statistics over every target value trained on (all
  // ranks), kept in double: count, mean, sum of squared deviations.
  double stat_count = 0, stat_mean = 0, stat_m2 = 0;

  impl(trainer_settings s, std::shared_ptr<gradient_group> g)
      : settings(std::move(s)),
        group(std::move(g)),
        model(settings.model, settings.seed),
        parameter_count(model.parameter_count()),
        pool(settings.threads > 0 ? settings.threads : at::get_num_threads()),
        learning_rate(settings.optimizer.learning_rate) {
    reduce_buffer = at::zeros({parameter_count + tail_size}, at::kFloat);
    gradients = reduce_buffer.narrow(0, 0, parameter_count);
    exp_avg = at::zeros({parameter_count}, at::kFloat);
    exp_avg_sq = at::zeros({parameter_count}, at::kFloat);
  }

  bool distributed() const { return group && group->size() > 1; }

  // Adam's coefficients for the coming update (step number batches + 1).
  adam_coefficients coefficients(float gradient_scale) const {
    double t = static_cast<double>(batches + 1);
    adam_coefficients c;
    c.gradient_scale = gradient_scale;
    c.beta1 = static_cast<float>(adam_beta1);
    c.one_minus_beta1 = static_cast<float>(1 - adam_beta1);
    c.beta2 = static_cast<float>(adam_beta2);
    c.one_minus_beta2 = static_cast<float>(1 - adam_beta2);
    c.negative_step_size = static_cast<float>(-(learning_rate / (1 - std::pow(adam_beta1, t))));
    c.bias_correction2_sqrt = static_cast<float>(std::sqrt(1 - std::pow(adam_beta2, t)));
    c.eps = static_cast<float>(adam_eps);
    return c;
  }
  void adam_range(std::int64_t offset, std::int64_t count, const adam_coefficients& c) {
    fused_adam(model.parameters().data_ptr<float>() + offset, gradients.data_ptr<float>() + offset,
               exp_avg.data_ptr<float>() + offset, exp_avg_sq.data_ptr<float>() + offset, count,
               c);
  }
  void adam_all(const adam_coefficients& c) {
    pool.run(parameter_count, 1 << 16, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
      adam_range(begin, end - begin, c);
    });
  }
  float* tail() { return reduce_buffer.data_ptr<float>() + parameter_count; }

  double normalization_mean() const {
    return settings.output.running ? stat_mean : settings.output.mean;
  }
  double normalization_std() const {
    if (!settings.output.running) return settings.output.std;
    double std = stat_count > 0 ? std::sqrt(stat_m2 / stat_count) : 1.0;
    // A constant field has no spread: leave it unscaled rather than divide by 0.
    return std > 1e-12 ? std : 1.0;
  }

  // Chan et al.'s parallel combination, with the new values' sums taken
  // about the current mean (keeps float sums accurate for fields far from 0).
  void fold_statistics(double count, double centered_sum, double centered_sumsq) {
    if (count <= 0) return;
    double shift = centered_sum / count;  // new values' mean minus the current mean
    double m2 = std::max(0.0, centered_sumsq - centered_sum * shift);
    double total = stat_count + count;
    stat_m2 += m2 + shift * shift * stat_count * count / total;
    stat_mean += shift * count / total;
    stat_count = total;
  }

  // Sum and sum of squares of (targets - center), in double.
  static std::pair<double, double> centered_sums(const training_batch& batch, double center) {
    double sum = 0, sumsq = 0;
    for (float value : batch.targets) {
      double d = static_cast<double>(value) - center;
      sum += d;
      sumsq += d * d;
    }
    return {sum, sumsq};
  }

  // Before the first trained batch there is no mean to normalize with: all
  // ranks first share their first batches' statistics (in double, once).
  void bootstrap_statistics(const training_batch* batch) {
    double sums[3] = {0, 0, 0};
    if (batch) {
      auto [sum, sumsq] = centered_sums(*batch, 0.0);
      sums[0] = static_cast<double>(batch->targets.size());
      sums[1] = sum;
      sums[2] = sumsq;
    }
    if (distributed()) group->all_reduce_sum(sums, 3);
    fold_statistics(sums[0], sums[1], sums[2]);
  }

  void halve_learning_rate_when_due() {
    auto every = settings.optimizer.halve_every_batches;
    if (every == 0 || batches % every != 0) return;
    learning_rate = std::max(learning_rate / 2, settings.optimizer.min_learning_rate);
  }

  std::vector<std::pair<std::string, at::Tensor>> model_state() const {
    auto state = model.named_parameters();
    state.emplace_back("output_mean", at::scalar_tensor(normalization_mean(), at::kDouble));
    state.emplace_back("output_std", at::scalar_tensor(normalization_std(), at::kDouble));
    return state;
  }
};

trainer_core::trainer_core(trainer_settings settings, std::shared_ptr<gradient_group> group) {
  if (settings.threads > 0) at::set_num_threads(settings.threads);
  single_threaded_blas();
  if (!settings.output.running && !(settings.output.std > 0))
    throw std::invalid_argument("output normalization: std must be positive");
  impl_ = std::make_unique<impl>(std::move(settings), std::move(group));
  // The same seed already gives the same weights; rank 0's broadcast makes
  // sure of it (a rank started with another seed or library cannot diverge).
  if (impl_->distributed())
    impl_->group->broadcast(impl_->model.parameters().data_ptr<float>(),
                            static_cast<std::size_t>(impl_->parameter_count), 0);
}

trainer_core::~trainer_core() = default;

step_result trainer_core::step(const training_batch* batch) {
  impl& s = *impl_;
  if (batch && batch->size == 0) batch = nullptr;
  if (batch) check_batch(*batch, s.settings.model);

  step_result result;
  result.learning_rate = s.learning_rate;
  const bool distributed = s.distributed();
  if (!batch && !distributed) return result;
  const bool running = s.settings.output.running;
  bool bootstrapped = false;
  if (running && s.stat_count == 0) {
    s.bootstrap_statistics(batch);
    bootstrapped = true;
    // Every rank saw the same sums: all return here together.
    if (s.stat_count == 0) return result;
  }
  const double mean = s.normalization_mean();
  const double std = s.normalization_std();

  // Alone, the gradient is final as soon as it is computed: Adam updates
  // each chunk of the output layer inside the pass, while it is in cache.
  const bool update_in_pass = !distributed;
  const adam_coefficients local_coefficients = s.coefficients(1.0f);
  float* tail = s.tail();
  std::fill(tail, tail + tail_size, 0.0f);
  if (batch) {
    const std::int64_t rows = batch->size;
    surrogate_model::range_update update = [&](std::int64_t offset, std::int64_t count) {
      s.adam_range(offset, count, local_coefficients);
    };
    auto pass = s.model.train_pass(batch->inputs.data(), batch->targets.data(), rows, mean, std,
                                   mean, s.gradients.data_ptr<float>(), s.pool,
                                   update_in_pass ? &update : nullptr);
    result.sample_losses.resize(static_cast<std::size_t>(rows));
    double loss_sum = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      double sample_loss = pass.sample_squared_error[static_cast<std::size_t>(r)] /
                           static_cast<double>(batch->output_dim);
      result.sample_losses[static_cast<std::size_t>(r)] = static_cast<float>(sample_loss);
      loss_sum += sample_loss;
    }
    double loss = loss_sum / static_cast<double>(rows);
    double sumsq = 0;
    for (float value : result.sample_losses) sumsq += (value - loss) * (value - loss);
    result.batch_mean = loss;
    result.batch_std = std::sqrt(sumsq / static_cast<double>(rows));

    tail[tail_had_batch] = 1;
    tail[tail_loss] = static_cast<float>(loss);
    if (running && !bootstrapped) {
      tail[tail_samples] = static_cast<float>(rows);
      tail[tail_centered_sum] = static_cast<float>(pass.target_sum);
      tail[tail_centered_sumsq] = static_cast<float>(pass.target_sumsq);
    }
    if (update_in_pass) s.adam_range(0, s.model.hidden_parameter_count(), local_coefficients);
  } else {
    // This rank adds nothing to the sum.
    s.pool.run(s.parameter_count, 1 << 16, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
      std::fill(s.gradients.data_ptr<float>() + begin, s.gradients.data_ptr<float>() + end, 0.0f);
    });
  }

  float ranks_with_batch = 1;
  double loss_sum = tail[tail_loss];
  if (distributed) {
    s.group->all_reduce_sum(s.reduce_buffer.data_ptr<float>(),
                            static_cast<std::size_t>(s.parameter_count + tail_size));
    ranks_with_batch = tail[tail_had_batch];
    if (ranks_with_batch < 0.5f) return result;  // nobody trained: nothing changes
    loss_sum = tail[tail_loss];
    s.adam_all(s.coefficients(static_cast<float>(1.0 / ranks_with_batch)));
  }

  ++s.batches;
  if (running && !bootstrapped)
    s.fold_statistics(static_cast<double>(tail[tail_samples]) * s.settings.model.output_dim,
                      tail[tail_centered_sum], tail[tail_centered_sumsq]);
  result.trained = true;
  result.loss = loss_sum / ranks_with_batch;
  s.halve_learning_rate_when_due();
  return result;
}

double trainer_core::evaluate(const training_batch& set) const {
  const impl& s = *impl_;
  if (set.size == 0) return 0;
  check_batch(set, s.settings.model);
  double mean = s.normalization_mean();
  double std = s.normalization_std();
  constexpr std::int64_t chunk = 256;  // bounds the activations' memory
  double squared_error = 0;
  for (std::int64_t first = 0; first < set.size; first += chunk) {
    std::int64_t rows = std::min<std::int64_t>(chunk, set.size - first);
    at::Tensor inputs = wrap_rows(set.inputs, set.size, set.input_dim).narrow(0, first, rows);
    at::Tensor targets = wrap_rows(set.targets, set.size, set.output_dim).narrow(0, first, rows);
    at::Tensor error = s.model.forward(inputs).mul_(std).add_(mean).sub_(targets);
    squared_error += error.square().sum(at::kDouble).item<double>();
  }
  return squared_error / (static_cast<double>(set.size) * set.output_dim);
}

std::vector<float> trainer_core::predict(const std::vector<float>& inputs) const {
  const impl& s = *impl_;
  std::int64_t input_dim = s.settings.model.input_dim;
  if (inputs.size() % static_cast<std::size_t>(input_dim) != 0)
    throw std::invalid_argument("predict: inputs are not whole rows of " +
                                std::to_string(input_dim));
  std::int64_t rows = static_cast<std::int64_t>(inputs.size()) / input_dim;
  at::Tensor output = s.model.forward(wrap_rows(inputs, rows, input_dim))
                          .mul_(s.normalization_std())
                          .add_(s.normalization_mean())
                          .contiguous();
  return {output.data_ptr<float>(), output.data_ptr<float>() + output.numel()};
}

void trainer_core::save(const std::string& dir) const {
  const impl& s = *impl_;
  std::filesystem::path root(dir);
  std::filesystem::create_directories(root);
  write_atomically(root / "model.pt", [&](const std::string& path) {
    s.model.save_torchscript(path, s.normalization_mean(), s.normalization_std());
  });
  write_atomically(root / "model_state.pt",
                   [&](const std::string& path) { save_tensor_dict(path, s.model_state()); });
  write_atomically(root / "trainer_state.pt", [&](const std::string& path) {
    auto scalar = [](double value) { return at::scalar_tensor(value, at::kDouble); };
    save_tensor_dict(path, {{"exp_avg", s.exp_avg},
                            {"exp_avg_sq", s.exp_avg_sq},
                            {"batches", at::scalar_tensor(static_cast<std::int64_t>(s.batches),
                                                          at::kLong)},
                            {"learning_rate", scalar(s.learning_rate)},
                            {"stat_count", scalar(s.stat_count)},
                            {"stat_mean", scalar(s.stat_mean)},
                            {"stat_m2", scalar(s.stat_m2)}});
  });
}

void trainer_core::load(const std::string& dir) {
  impl& s = *impl_;
  std::filesystem::path root(dir);
  auto find = [](const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                 const std::string& name, const std::string& file) {
    for (const auto& [key, tensor] : tensors)
      if (key == name) return tensor;
    throw std::runtime_error(file + ": no '" + name + "'");
  };
  auto copy_into = [](const at::Tensor& destination, const at::Tensor& source,
                      const std::string& what) {
    if (!source.sizes().equals(destination.sizes()))
      throw std::runtime_error("checkpoint: '" + what + "' has another shape than the model's");
    destination.copy_(source);
  };
  std::string model_file = (root / "model_state.pt").string();
  std::string trainer_file = (root / "trainer_state.pt").string();
  auto model_state = load_tensor_dict(model_file);
  auto trainer_state = load_tensor_dict(trainer_file);
  // Check every shape before changing anything.
  for (const auto& [name, tensor] : s.model.named_parameters())
    if (!find(model_state, name, model_file).sizes().equals(tensor.sizes()))
      throw std::runtime_error("checkpoint: '" + name + "' has another shape than the model's");
  for (std::size_t l = 0; l < s.model.layers().size(); ++l) {
    std::string prefix = std::to_string(2 * l);
    copy_into(s.model.layers()[l].weight, find(model_state, prefix + ".weight", model_file),
              prefix + ".weight");
    copy_into(s.model.layers()[l].bias, find(model_state, prefix + ".bias", model_file),
              prefix + ".bias");
  }
  copy_into(s.exp_avg, find(trainer_state, "exp_avg", trainer_file), "exp_avg");
  copy_into(s.exp_avg_sq, find(trainer_state, "exp_avg_sq", trainer_file), "exp_avg_sq");
  s.batches = static_cast<std::uint64_t>(find(trainer_state, "batches", trainer_file).item<std::int64_t>());
  s.learning_rate = find(trainer_state, "learning_rate", trainer_file).item<double>();
  s.stat_count = find(trainer_state, "stat_count", trainer_file).item<double>();
  s.stat_mean = find(trainer_state, "stat_mean", trainer_file).item<double>();
  s.stat_m2 = find(trainer_state, "stat_m2", trainer_file).item<double>();
}

struct trainer_snapshot::impl {
  std::uint64_t batches = 0;
  std::vector<std::pair<std::string, at::Tensor>> model_state;
  std::vector<std::pair<std::string, at::Tensor>> trainer_state;
};

trainer_snapshot::trainer_snapshot() = default;
trainer_snapshot::~trainer_snapshot() = default;
trainer_snapshot::trainer_snapshot(const trainer_snapshot&) = default;
trainer_snapshot& trainer_snapshot::operator=(const trainer_snapshot&) = default;

std::uint64_t trainer_snapshot::batches() const { return impl_ ? impl_->batches : 0; }

std::uint64_t trainer_snapshot::bytes() const {
  std::uint64_t total = 0;
  if (!impl_) return 0;
  for (const auto* state : {&impl_->model_state, &impl_->trainer_state})
    for (const auto& [name, tensor] : *state) total += tensor.numel() * tensor.element_size();
  return total;
}

std::vector<std::string> trainer_snapshot::write(const std::string& dir) const {
  if (!impl_) throw std::logic_error("trainer snapshot: empty");
  std::filesystem::path root(dir);
  save_tensor_dict((root / "model_state.pt").string(), impl_->model_state);
  save_tensor_dict((root / "trainer_state.pt").string(), impl_->trainer_state);
  return {"model_state.pt", "trainer_state.pt"};
}

trainer_snapshot trainer_core::snapshot() const {
  const impl& s = *impl_;
  auto copy = std::make_shared<trainer_snapshot::impl>();
  copy->batches = s.batches;
  for (auto& [name, tensor] : s.model_state()) copy->model_state.emplace_back(name, tensor.clone());
  auto scalar = [](double value) { return at::scalar_tensor(value, at::kDouble); };
  copy->trainer_state = {
      {"exp_avg", s.exp_avg.clone()},
      {"exp_avg_sq", s.exp_avg_sq.clone()},
      {"batches", at::scalar_tensor(static_cast<std::int64_t>(s.batches), at::kLong)},
      {"learning_rate", scalar(s.learning_rate)},
      {"stat_count", scalar(s.stat_count)},
      {"stat_mean", scalar(s.stat_mean)},
      {"stat_m2", scalar(s.stat_m2)}};
  trainer_snapshot out;
  out.impl_ = std::move(copy);
  return out;
}

std::uint64_t trainer_core::weights_checksum() const {
  const at::Tensor& parameters = impl_->model.parameters();
  const auto* bytes = static_cast<const unsigned char*>(parameters.data_ptr());
  std::size_t size = static_cast<std::size_t>(parameters.numel()) * sizeof(float);
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

std::uint64_t trainer_core::batches() const { return impl_->batches; }
double trainer_core::learning_rate() const { return impl_->learning_rate; }
double trainer_core::output_mean() const { return impl_->normalization_mean(); }
double trainer_core::output_std() const { return impl_->normalization_std(); }
std::size_t trainer_core::parameter_count() const {
  return static_cast<std::size_t>(impl_->parameter_count);
}
const trainer_settings& trainer_core::settings() const { return impl_->settings; }

}  // namespace melissa
