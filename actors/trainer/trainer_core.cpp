#include "actors/trainer/trainer_core.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <ATen/core/grad_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <nlohmann/json.hpp>

#include "actors/trainer/batch_stager.hpp"
#include "actors/trainer/chunk_pool.hpp"
#include "actors/trainer/gradient_group.hpp"
#include "actors/trainer/scripted_model.hpp"
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
  float weight_decay;  // torch.optim.Adam's: grad += weight_decay * parameter
};

// torch.optim.Adam's update (_single_tensor_adam, no amsgrad): the same
// float operations in the same order, but in one pass over the four arrays
// instead of six tensor operations of one or two passes each (with 2.6M
// parameters the arrays do not fit in cache: the optimizer is bound by
// memory traffic). Weight decay is a template parameter: the loop without
// it stays as it was.
template <bool decay>
void fused_adam_loop(float* __restrict parameters, const float* __restrict gradients,
                     float* __restrict exp_avg, float* __restrict exp_avg_sq, std::int64_t count,
                     const adam_coefficients& c) {
  for (std::int64_t i = 0; i < count; ++i) {
    float grad = gradients[i] * c.gradient_scale;
    if (decay) grad = grad + c.weight_decay * parameters[i];
    float m = exp_avg[i] * c.beta1 + c.one_minus_beta1 * grad;
    float v = exp_avg_sq[i] * c.beta2 + c.one_minus_beta2 * (grad * grad);
    float denom = std::sqrt(v) / c.bias_correction2_sqrt + c.eps;
    exp_avg[i] = m;
    exp_avg_sq[i] = v;
    parameters[i] = parameters[i] + c.negative_step_size * (m / denom);
  }
}

void fused_adam(float* parameters, const float* gradients, float* exp_avg, float* exp_avg_sq,
                std::int64_t count, const adam_coefficients& c) {
  if (c.weight_decay != 0)
    fused_adam_loop<true>(parameters, gradients, exp_avg, exp_avg_sq, count, c);
  else
    fused_adam_loop<false>(parameters, gradients, exp_avg, exp_avg_sq, count, c);
}

// The same update with plain tensor operations, on any device (the generic
// path): torch.optim.Adam's _single_tensor_adam.
void tensor_adam(at::Tensor& parameters, const at::Tensor& gradients, at::Tensor& exp_avg,
                 at::Tensor& exp_avg_sq, const adam_coefficients& c) {
  at::Tensor grad = c.gradient_scale == 1.0f ? gradients : gradients * c.gradient_scale;
  if (c.weight_decay != 0) grad = grad.add(parameters, c.weight_decay);
  exp_avg.mul_(c.beta1).add_(grad, c.one_minus_beta1);
  exp_avg_sq.mul_(c.beta2).addcmul_(grad, grad, c.one_minus_beta2);
  at::Tensor denom = (exp_avg_sq.sqrt() / c.bias_correction2_sqrt).add_(c.eps);
  parameters.addcdiv_(exp_avg, denom, c.negative_step_size);
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

std::string mlp_description(const model_settings& model) {
  std::string text = "MLP " + std::to_string(model.input_dim);
  for (auto width : model.hidden) text += "->" + std::to_string(width);
  return text + "->" + std::to_string(model.output_dim) + " (" + model.activation + ")";
}

std::int64_t mlp_parameter_count(const model_settings& model) {
  std::int64_t count = 0, in = model.input_dim;
  std::vector<std::uint32_t> widths = model.hidden;
  widths.push_back(model.output_dim);
  for (auto width : widths) {
    count += in * width + width;
    in = width;
  }
  return count;
}

bool uses_fused_path(const trainer_settings& settings, const device_choice& device) {
  return settings.model.torchscript.empty() && !device.cuda && !settings.generic_path;
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

device_choice pick_device(const std::string& requested, int local_rank, int cuda_devices) {
  device_choice choice;
  if (requested == "cpu") {
    choice.reason = "device = \"cpu\"";
    return choice;
  }
  if (requested.rfind("cuda:", 0) == 0) {
    const std::string index = requested.substr(5);
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos)
      throw std::invalid_argument("device: '" + requested + "' is not cuda:N");
    choice.cuda = true;
    choice.index = std::stoi(index);
    if (choice.index >= cuda_devices)
      throw std::invalid_argument("device: " + requested + " asked, but LibTorch sees " +
                                  std::to_string(cuda_devices) + " CUDA device(s)");
    choice.reason = "device = \"" + requested + "\"";
    return choice;
  }
  if (requested != "auto" && requested != "cuda")
    throw std::invalid_argument("device: unknown '" + requested +
                                "' (expected auto, cpu, cuda or cuda:N)");
  if (cuda_devices <= 0) {
    if (requested == "cuda")
      throw std::invalid_argument(
          "device = \"cuda\", but LibTorch sees no CUDA device (a CPU-only build, no GPU, or "
          "CUDA_VISIBLE_DEVICES empty)");
    choice.reason = "device = \"auto\" and LibTorch sees no CUDA device";
    return choice;
  }
  choice.cuda = true;
  const int rank = local_rank < 0 ? 0 : local_rank;
  choice.index = rank % cuda_devices;
  choice.reason = "local rank " + std::to_string(rank) + " mod " + std::to_string(cuda_devices) +
                  " visible CUDA device(s)";
  return choice;
}

device_choice choose_device(const std::string& requested, int local_rank) {
  int devices = 0;
  if (requested != "cpu") devices = static_cast<int>(torch::cuda::device_count());
  return pick_device(requested, local_rank, devices);
}

int local_rank_from_environment(int fallback) {
  for (const char* name :
       {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "PMI_LOCAL_RANK"}) {
    const char* value = std::getenv(name);
    if (value && *value) {
      char* end = nullptr;
      long rank = std::strtol(value, &end, 10);
      if (end && *end == '\0' && rank >= 0) return static_cast<int>(rank);
    }
  }
  return fallback;
}

namespace {

at::Device torch_device(const device_choice& choice) {
  return at::Device(choice.cuda ? at::kCUDA : at::kCPU, static_cast<c10::DeviceIndex>(choice.index));
}

model_report report_of(const trainer_settings& settings, const device_choice& device,
                       std::int64_t torchscript_parameters) {
  model_report report;
  report.device = device.name();
  report.device_reason = device.reason;
  if (settings.model.torchscript.empty()) {
    report.kind = "mlp";
    report.description = mlp_description(settings.model);
    report.parameter_count = static_cast<std::size_t>(mlp_parameter_count(settings.model));
  } else {
    report.kind = "torchscript";
    report.parameter_count = static_cast<std::size_t>(torchscript_parameters);
    report.description = "TorchScript " + settings.model.torchscript + " (" +
                         std::to_string(report.parameter_count) + " parameters)";
  }
  return report;
}

}  // namespace

model_report check_model(const trainer_settings& settings) {
  const device_choice device = choose_device(settings.device, settings.local_rank);
  if (settings.model.input_dim == 0 || settings.model.output_dim == 0)
    throw std::invalid_argument("model: input_dim and output_dim must be positive");
  if (settings.model.torchscript.empty()) {
    parse_activation(settings.model.activation);
    return report_of(settings, device, 0);
  }
  auto model =
      scripted_model::load(settings.model.torchscript, settings.model, torch_device(device));
  return report_of(settings, device, model->parameter_count());
}

struct trainer_core::impl {
  trainer_settings settings;
  std::shared_ptr<gradient_group> group;
  device_choice device_chosen;
  at::Device device;
  model_report report;
  // The model: the fused MLP (CPU) or a TorchScript module (generic path).
  // `model` is whichever is used; save, load, validation go through it.
  std::unique_ptr<surrogate_model> fused;
  std::unique_ptr<scripted_model> generic;
  trained_model* model = nullptr;
  std::int64_t parameter_count;
  chunk_pool pool;  // the fused pass's threads (settings.threads, the caller included)
  batch_stager stager;
  // Batches whose copy to the device started ahead of their step (stage()),
  // oldest first, at most two (the stager's slots).
  struct staged_batch {
    const training_batch* batch;
    const float* rows;  // batch->inputs.data() then: a batch since replaced at the same address differs
    staged_rows copy;
  };
  std::vector<staged_batch> staged;
  // [gradients | tail]: the one tensor a step all-reduces, on the device.
  at::Tensor reduce_buffer;
  at::Tensor gradients;
  at::Tensor exp_avg, exp_avg_sq;
  std::uint64_t batches = 0;
  double learning_rate;
  at::Tensor step_count;  // the fused CUDA Adam's step, on the device
  const bool fused_adam_kernel = !(std::getenv("MELISSA_FUSED_ADAM") &&
                                   std::string(std::getenv("MELISSA_FUSED_ADAM")) == "0");
  // Running output statistics over every target value trained on (all
  // ranks), kept in double: count, mean, sum of squared deviations.
  double stat_count = 0, stat_mean = 0, stat_m2 = 0;

  impl(trainer_settings s, std::shared_ptr<gradient_group> g)
      : settings(std::move(s)),
        group(std::move(g)),
        device_chosen(choose_device(settings.device, settings.local_rank)),
        device(torch_device(device_chosen)),
        parameter_count(0),
        pool(settings.threads > 0 ? settings.threads : at::get_num_threads()),
        stager(device),
        learning_rate(settings.optimizer.learning_rate) {
    if (settings.model.torchscript.empty()) {
      // The same seed gives the same initial weights on either path.
      fused = std::make_unique<surrogate_model>(settings.model, settings.seed);
      if (!uses_fused_path(settings, device_chosen)) {
        generic = scripted_model::of_mlp(*fused, settings.model, device);
        fused.reset();
      }
    } else {
      generic = scripted_model::load(settings.model.torchscript, settings.model, device);
    }
    model = fused ? static_cast<trained_model*>(fused.get()) : generic.get();
    parameter_count = model->parameter_count();
    report = report_of(settings, device_chosen, parameter_count);
    const auto options = at::TensorOptions().dtype(at::kFloat).device(device);
    reduce_buffer = at::zeros({parameter_count + tail_size}, options);
    gradients = reduce_buffer.narrow(0, 0, parameter_count);
    exp_avg = at::zeros({parameter_count}, options);
    exp_avg_sq = at::zeros({parameter_count}, options);
    if (generic) generic->use_gradient_buffer(gradients);
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
    c.weight_decay = static_cast<float>(settings.optimizer.weight_decay);
    return c;
  }
  void adam_range(std::int64_t offset, std::int64_t count, const adam_coefficients& c) {
    fused_adam(fused->parameters().data_ptr<float>() + offset, gradients.data_ptr<float>() + offset,
               exp_avg.data_ptr<float>() + offset, exp_avg_sq.data_ptr<float>() + offset, count,
               c);
  }
  void adam_all(const adam_coefficients& c) {
    if (!fused) {
      at::Tensor parameters = generic->parameters();
      at::NoGradGuard no_grad;
#if TORCH_VERSION_MAJOR >= 2
      // LibTorch 2's fused Adam kernel (torch.optim.Adam(fused=True)): one
      // pass over the four flat arrays on the GPU instead of six kernels.
      // MELISSA_FUSED_ADAM=0 keeps the plain operations (to compare).
      if (device.is_cuda() && fused_adam_kernel) {
        if (!step_count.defined())
          step_count = at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(device));
        step_count.fill_(static_cast<double>(batches + 1));
        std::optional<at::Tensor> grad_scale;
        if (c.gradient_scale != 1.0f)  // the kernel divides the gradients by it
          grad_scale = at::full({1}, 1.0 / c.gradient_scale,
                                at::TensorOptions().dtype(at::kFloat).device(device));
        std::vector<at::Tensor> p{parameters}, g{gradients}, m{exp_avg}, v{exp_avg_sq}, none, steps{step_count};
        at::_fused_adam_(p, g, m, v, none, steps, learning_rate, adam_beta1, adam_beta2,
                         settings.optimizer.weight_decay, adam_eps, false, false, grad_scale,
                         std::nullopt);
        return;
      }
#endif
      tensor_adam(parameters, gradients, exp_avg, exp_avg_sq, c);
      return;
    }
    pool.run(parameter_count, 1 << 16, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
      adam_range(begin, end - begin, c);
    });
  }
  // clip_grad_norm: the factor (<= 1) that brings the mean gradient
  // (gradients * scale) down to the maximum norm, as clip_grad_norm_ does.
  float clip_factor(float scale) const {
    const double max_norm = settings.optimizer.clip_grad_norm;
    if (max_norm <= 0) return 1.0f;
    const double norm = gradients.norm().item<double>() * scale;
    const double factor = max_norm / (norm + 1e-6);
    return factor < 1 ? static_cast<float>(factor) : 1.0f;
  }

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

  // Saved tensors own their memory on the CPU (a view would save the whole
  // flat storage; a CUDA tensor would not load on a CPU machine).
  std::vector<std::pair<std::string, at::Tensor>> model_state() const {
    std::vector<std::pair<std::string, at::Tensor>> state;
    for (const auto& [name, tensor] : model->named_parameters())
      state.emplace_back(name, tensor.detach().to(at::kCPU).clone());
    state.emplace_back("output_mean", at::scalar_tensor(normalization_mean(), at::kDouble));
    state.emplace_back("output_std", at::scalar_tensor(normalization_std(), at::kDouble));
    return state;
  }

  // Starts `batch`'s copy; a batch staged earlier in the slot it takes is dropped.
  staged_rows start_copy(const training_batch& batch) {
    auto copy = stager.start(batch.inputs, batch.targets, batch.size, batch.input_dim,
                             batch.output_dim);
    if (copy.slot >= 0)
      staged.erase(std::remove_if(staged.begin(), staged.end(),
                                  [&](const staged_batch& b) { return b.copy.slot == copy.slot; }),
                   staged.end());
    return copy;
  }

  // The batch's rows on the device: those stage() started, else copied now.
  std::pair<at::Tensor, at::Tensor> rows_of(const training_batch& batch) {
    for (auto it = staged.begin(); it != staged.end(); ++it) {
      if (it->batch == &batch && it->rows == batch.inputs.data()) {
        const staged_rows copy = it->copy;
        staged.erase(it);
        return stager.ready(copy);
      }
    }
    return stager.ready(start_copy(batch));
  }

  // The generic pass for this rank's batch; fills the tail and `result`.
  void generic_pass(const training_batch& batch, double mean, double std, bool running,
                    bool bootstrapped, float* tail, step_result& result) {
    const std::int64_t rows = batch.size;
    auto [inputs, targets] = rows_of(batch);
    gradients.zero_();
    auto pass = generic->train_pass(inputs, targets, mean, std, mean);
    // One copy back per step: the per-sample errors and the target sums.
    at::Tensor host = at::cat({pass.sample_squared_error, pass.target_sums}).to(at::kCPU);
    const double* values = host.data_ptr<double>();
    result.sample_losses.resize(static_cast<std::size_t>(rows));
    double loss_sum = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      double sample_loss = values[r] / static_cast<double>(batch.output_dim);
      result.sample_losses[static_cast<std::size_t>(r)] = static_cast<float>(sample_loss);
      loss_sum += sample_loss;
    }
    finish_batch(rows, loss_sum, values[rows], values[rows + 1], running, bootstrapped, tail,
                 result);
  }

  void finish_batch(std::int64_t rows, double loss_sum, double target_sum, double target_sumsq,
                    bool running, bool bootstrapped, float* tail, step_result& result) {
    double loss = loss_sum / static_cast<double>(rows);
    double sumsq = 0;
    for (float value : result.sample_losses) sumsq += (value - loss) * (value - loss);
    result.batch_mean = loss;
    result.batch_std = std::sqrt(sumsq / static_cast<double>(rows));
    tail[tail_had_batch] = 1;
    tail[tail_loss] = static_cast<float>(loss);
    if (running && !bootstrapped) {
      tail[tail_samples] = static_cast<float>(rows);
      tail[tail_centered_sum] = static_cast<float>(target_sum);
      tail[tail_centered_sumsq] = static_cast<float>(target_sumsq);
    }
  }
};

trainer_core::trainer_core(trainer_settings settings, std::shared_ptr<gradient_group> group) {
  if (settings.threads > 0) at::set_num_threads(settings.threads);
  single_threaded_blas();
  if (!settings.output.running && !(settings.output.std > 0))
    throw std::invalid_argument("output normalization: std must be positive");
  impl_ = std::make_unique<impl>(std::move(settings), std::move(group));
  // The same seed already gives the same weights; rank 0's broadcast makes
  // sure of it (a rank started with another seed or library cannot diverge),
  // and for a TorchScript model it is what makes the ranks start equal.
  if (impl_->distributed()) {
    at::Tensor parameters = impl_->model->parameters();
    at::NoGradGuard no_grad;
    impl_->group->broadcast(parameters, 0);
  }
}

trainer_core::~trainer_core() = default;

void trainer_core::stage(const training_batch& batch) {
  impl& s = *impl_;
  if (!s.generic || batch.size == 0) return;  // the fused CPU pass reads the batch itself
  check_batch(batch, s.settings.model);
  auto copy = s.start_copy(batch);
  s.staged.push_back({&batch, batch.inputs.data(), std::move(copy)});
  if (s.staged.size() > 2) s.staged.erase(s.staged.begin());
}

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

  // Alone, the gradient is final as soon as it is computed: the fused pass
  // updates each chunk of the output layer inside the pass, while it is in
  // cache (not when clipping needs the whole gradient's norm first).
  const bool update_in_pass =
      s.fused && !distributed && !(s.settings.optimizer.clip_grad_norm > 0);
  const adam_coefficients local_coefficients = s.coefficients(1.0f);
  float tail_values[tail_size] = {0, 0, 0, 0, 0};
  float* tail = s.fused ? s.reduce_buffer.data_ptr<float>() + s.parameter_count : tail_values;
  std::fill(tail, tail + tail_size, 0.0f);
  if (batch && s.generic) {
    s.generic_pass(*batch, mean, std, running, bootstrapped, tail, result);
  } else if (batch) {
    const std::int64_t rows = batch->size;
    surrogate_model::range_update update = [&](std::int64_t offset, std::int64_t count) {
      s.adam_range(offset, count, local_coefficients);
    };
    auto pass = s.fused->train_pass(batch->inputs.data(), batch->targets.data(), rows, mean, std,
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
    s.finish_batch(rows, loss_sum, pass.target_sum, pass.target_sumsq, running, bootstrapped,
                   tail, result);
    if (update_in_pass) s.adam_range(0, s.fused->hidden_parameter_count(), local_coefficients);
  } else if (s.fused) {
    // This rank adds nothing to the sum.
    s.pool.run(s.parameter_count, 1 << 16, [&](std::int64_t, std::int64_t begin, std::int64_t end) {
      std::fill(s.gradients.data_ptr<float>() + begin, s.gradients.data_ptr<float>() + end, 0.0f);
    });
  } else {
    s.gradients.zero_();
  }
  if (!s.fused)  // the tail travels in the device's buffer
    s.reduce_buffer.narrow(0, s.parameter_count, tail_size)
        .copy_(at::from_blob(tail_values, {tail_size}, at::kFloat));

  float ranks_with_batch = 1;
  double loss_sum = tail[tail_loss];
  if (distributed) {
    // One all-reduce of one flat buffer per step: [gradients | tail].
    s.group->all_reduce_sum(s.reduce_buffer);
    if (!s.fused) {
      at::Tensor reduced_tail = s.reduce_buffer.narrow(0, s.parameter_count, tail_size).to(at::kCPU);
      std::copy_n(reduced_tail.data_ptr<float>(), tail_size, tail_values);
    }
    ranks_with_batch = tail[tail_had_batch];
    if (ranks_with_batch < 0.5f) return result;  // nobody trained: nothing changes
    loss_sum = tail[tail_loss];
  }
  if (!update_in_pass) {
    const float scale = static_cast<float>(1.0 / ranks_with_batch);
    s.adam_all(s.coefficients(scale * s.clip_factor(scale)));
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
  at::NoGradGuard no_grad;  // the in-place denormalization works on inference outputs
  double mean = s.normalization_mean();
  double std = s.normalization_std();
  constexpr std::int64_t chunk = 256;  // bounds the activations' memory
  double squared_error = 0;
  for (std::int64_t first = 0; first < set.size; first += chunk) {
    std::int64_t rows = std::min<std::int64_t>(chunk, set.size - first);
    at::Tensor inputs =
        wrap_rows(set.inputs, set.size, set.input_dim).narrow(0, first, rows).to(s.device);
    at::Tensor targets =
        wrap_rows(set.targets, set.size, set.output_dim).narrow(0, first, rows).to(s.device);
    at::Tensor error = s.model->forward(inputs).mul_(std).add_(mean).sub_(targets);
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
  at::NoGradGuard no_grad;
  at::Tensor output = s.model->forward(wrap_rows(inputs, rows, input_dim).to(s.device))
                          .mul_(s.normalization_std())
                          .add_(s.normalization_mean())
                          .to(at::kCPU)
                          .contiguous();
  return {output.data_ptr<float>(), output.data_ptr<float>() + output.numel()};
}

void trainer_core::save(const std::string& dir) const {
  const impl& s = *impl_;
  std::filesystem::path root(dir);
  std::filesystem::create_directories(root);
  write_atomically(root / "model.pt", [&](const std::string& path) {
    s.model->save_torchscript(path, s.normalization_mean(), s.normalization_std());
  });
  write_atomically(root / "model_state.pt",
                   [&](const std::string& path) { save_tensor_dict(path, s.model_state()); });
  write_atomically(root / "trainer_state.pt", [&](const std::string& path) {
    auto scalar = [](double value) { return at::scalar_tensor(value, at::kDouble); };
    save_tensor_dict(path, {{"exp_avg", s.exp_avg.to(at::kCPU)},
                            {"exp_avg_sq", s.exp_avg_sq.to(at::kCPU)},
                            {"batches", at::scalar_tensor(static_cast<std::int64_t>(s.batches),
                                                          at::kLong)},
                            {"learning_rate", scalar(s.learning_rate)},
                            {"stat_count", scalar(s.stat_count)},
                            {"stat_mean", scalar(s.stat_mean)},
                            {"stat_m2", scalar(s.stat_m2)}});
  });
}

namespace {

using named_tensors = std::vector<std::pair<std::string, at::Tensor>>;

constexpr const char* tensors_format = "melissa-trainer-tensors";
constexpr int tensors_version = 1;

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: break;
  }
  throw std::runtime_error(std::string("checkpoint: no raw format for tensors of type ") +
                           c10::toString(t));
}

std::optional<at::ScalarType> dtype_of(const std::string& name) {
  for (auto t : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16, at::kLong, at::kInt, at::kByte,
                 at::kBool})
    if (name == dtype_name(t)) return t;
  return std::nullopt;
}

// The raw format's three groups (trainer_snapshot, index_json()).
struct raw_state {
  named_tensors model, buffers, trainer;
};

raw_state read_raw_tensors(const std::filesystem::path& root) {
  const std::string index_path = (root / trainer_snapshot::index_file).string();
  std::ifstream index_in(index_path, std::ios::binary);
  if (!index_in) throw std::runtime_error(index_path + " cannot be read");
  const auto index = nlohmann::json::parse(index_in, nullptr, false);
  if (!index.is_object() || index.value("format", "") != tensors_format)
    throw std::runtime_error(index_path + ": not a \"" + tensors_format + "\" index");
  if (index.value("version", 0) != tensors_version)
    throw std::runtime_error(index_path + ": version " + index.value("version", nlohmann::json()).dump() +
                             ", this build reads " + std::to_string(tensors_version));
  const std::string data_path = (root / index.value("data", std::string(trainer_snapshot::data_file))).string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(data_path, ec);
  if (ec) throw std::runtime_error(data_path + " cannot be read: " + ec.message());
  if (size != index.value("bytes", std::uint64_t{0}))
    throw std::runtime_error(data_path + " has " + std::to_string(size) + " bytes, " + index_path +
                             " says " + index.value("bytes", nlohmann::json()).dump());
  std::ifstream data(data_path, std::ios::binary);
  if (!data) throw std::runtime_error(data_path + " cannot be read");
  raw_state out;
  if (!index.contains("tensors") || !index["tensors"].is_array())
    throw std::runtime_error(index_path + ": no \"tensors\" list");
  for (const auto& entry : index["tensors"]) {
    const std::string name = entry.value("name", "");
    const auto fail = [&](const std::string& why) {
      return std::runtime_error(index_path + ": tensor '" + name + "': " + why);
    };
    const auto dtype = dtype_of(entry.value("dtype", ""));
    if (!dtype) throw fail("unknown dtype " + entry.value("dtype", nlohmann::json()).dump());
    std::vector<std::int64_t> shape;
    std::uint64_t offset = 0, bytes = 0;
    try {
      shape = entry.at("shape").get<std::vector<std::int64_t>>();
      offset = entry.at("offset").get<std::uint64_t>();
      bytes = entry.at("bytes").get<std::uint64_t>();
    } catch (const nlohmann::json::exception& e) {
      throw fail(e.what());
    }
    std::uint64_t numel = 1;
    for (auto d : shape) {
      if (d < 0) throw fail("negative dimension");
      numel *= static_cast<std::uint64_t>(d);
    }
    if (numel * c10::elementSize(*dtype) != bytes) throw fail("shape and bytes disagree");
    if (offset > size || bytes > size - offset)
      throw fail("bytes " + std::to_string(offset) + ".." + std::to_string(offset + bytes) +
                 " lie past the end of " + data_path);
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(*dtype));
    data.seekg(static_cast<std::streamoff>(offset));
    data.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes));
    if (!data) throw fail("cannot read its bytes from " + data_path);
    const auto slash = name.find('/');
    const std::string group = name.substr(0, slash), key = slash == std::string::npos ? "" : name.substr(slash + 1);
    if (group == "model") out.model.emplace_back(key, std::move(t));
    else if (group == "buffer") out.buffers.emplace_back(key, std::move(t));
    else if (group == "trainer") out.trainer.emplace_back(key, std::move(t));
    else throw fail("not model/, buffer/ or trainer/");
  }
  return out;
}

}  // namespace

void trainer_core::load(const std::string& dir) {
  impl& s = *impl_;
  std::filesystem::path root(dir);
  auto find = [](const named_tensors& tensors, const std::string& name, const std::string& file) {
    for (const auto& [key, tensor] : tensors)
      if (key == name) return tensor;
    throw std::runtime_error(file + ": no '" + name + "'");
  };
  auto copy_into = [](at::Tensor destination, const at::Tensor& source, const std::string& what) {
    if (!source.sizes().equals(destination.sizes()))
      throw std::runtime_error("checkpoint: '" + what + "' has another shape than the model's");
    if (source.scalar_type() != destination.scalar_type())
      throw std::runtime_error("checkpoint: '" + what + "' has another type than the model's");
    at::NoGradGuard no_grad;
    destination.copy_(source);
  };
  named_tensors model_state, trainer_state, buffers;
  std::string model_file, trainer_file;
  bool raw = false;
  if (std::filesystem::exists(root / trainer_snapshot::index_file)) {
    auto state = read_raw_tensors(root);  // a checkpoint (trainer_snapshot::write)
    model_state = std::move(state.model);
    trainer_state = std::move(state.trainer);
    buffers = std::move(state.buffers);
    model_file = trainer_file = (root / trainer_snapshot::index_file).string();
    raw = true;
  } else if (std::filesystem::exists(root / "trainer_state.pt")) {
    model_file = (root / "model_state.pt").string();  // a saved model (save())
    trainer_file = (root / "trainer_state.pt").string();
    model_state = load_tensor_dict(model_file);
    trainer_state = load_tensor_dict(trainer_file);
  } else {
    throw std::runtime_error(dir + " holds neither " + trainer_snapshot::index_file +
                             " (a checkpoint) nor trainer_state.pt (a saved model)");
  }
  // Check every shape before changing anything.
  const auto parameters = s.model->named_parameters();
  for (const auto& [name, tensor] : parameters)
    if (!find(model_state, name, model_file).sizes().equals(tensor.sizes()))
      throw std::runtime_error("checkpoint: '" + name + "' has another shape than the model's");
  const auto model_buffers = s.model->named_buffers();
  if (raw)  // save()'s files have no buffers: a TorchScript model keeps its own
    for (const auto& [name, tensor] : model_buffers)
      if (!find(buffers, name, model_file).sizes().equals(tensor.sizes()))
        throw std::runtime_error("checkpoint: buffer '" + name + "' has another shape than the model's");
  for (const auto& [name, tensor] : parameters)
    copy_into(tensor, find(model_state, name, model_file), name);
  if (raw)
    for (const auto& [name, tensor] : model_buffers)
      copy_into(tensor, find(buffers, name, model_file), name);
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
  std::vector<std::pair<std::string, at::Tensor>> buffers;
  std::vector<std::pair<std::string, at::Tensor>> trainer_state;
  // Every array in the index's order: group prefix + name, contiguous CPU tensor.
  std::vector<std::pair<std::string, at::Tensor>> arrays() const {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& [name, t] : model_state) out.emplace_back("model/" + name, t.contiguous());
    for (const auto& [name, t] : buffers) out.emplace_back("buffer/" + name, t.contiguous());
    for (const auto& [name, t] : trainer_state) out.emplace_back("trainer/" + name, t.contiguous());
    return out;
  }
};

trainer_snapshot::trainer_snapshot() = default;
trainer_snapshot::~trainer_snapshot() = default;
trainer_snapshot::trainer_snapshot(const trainer_snapshot&) = default;
trainer_snapshot& trainer_snapshot::operator=(const trainer_snapshot&) = default;

std::uint64_t trainer_snapshot::batches() const { return impl_ ? impl_->batches : 0; }

std::uint64_t trainer_snapshot::bytes() const {
  std::uint64_t total = 0;
  if (!impl_) return 0;
  for (const auto* state : {&impl_->model_state, &impl_->buffers, &impl_->trainer_state})
    for (const auto& [name, tensor] : *state) total += tensor.numel() * tensor.element_size();
  return total;
}

std::string trainer_snapshot::index_json() const {
  if (!impl_) throw std::logic_error("trainer snapshot: empty");
  nlohmann::json tensors = nlohmann::json::array();
  std::uint64_t offset = 0;
  for (const auto& [name, t] : impl_->arrays()) {
    const auto bytes = static_cast<std::uint64_t>(t.numel()) * t.element_size();
    tensors.push_back({{"name", name},
                       {"dtype", dtype_name(t.scalar_type())},
                       {"shape", t.sizes().vec()},
                       {"offset", offset},
                       {"bytes", bytes}});
    offset += bytes;
  }
  return nlohmann::json{{"format", tensors_format},
                        {"version", tensors_version},
                        {"data", data_file},
                        {"bytes", offset},
                        {"batches", impl_->batches},
                        {"tensors", std::move(tensors)}}
      .dump(1);
}

void trainer_snapshot::write_arrays(
    const std::function<void(const void* data, std::size_t bytes)>& write) const {
  if (!impl_) throw std::logic_error("trainer snapshot: empty");
  for (const auto& [name, t] : impl_->arrays())
    write(t.data_ptr(), static_cast<std::size_t>(t.numel()) * t.element_size());
}

std::vector<std::string> trainer_snapshot::write(const std::string& dir) const {
  if (!impl_) throw std::logic_error("trainer snapshot: empty");
  std::filesystem::path root(dir);
  const std::string data_path = (root / data_file).string(), index_path = (root / index_file).string();
  std::ofstream data(data_path, std::ios::binary | std::ios::trunc);
  write_arrays([&](const void* bytes, std::size_t n) {
    data.write(static_cast<const char*>(bytes), static_cast<std::streamsize>(n));
  });
  if (!data.flush()) throw std::runtime_error("cannot write " + data_path);
  std::ofstream index(index_path, std::ios::binary | std::ios::trunc);
  index << index_json();
  if (!index.flush()) throw std::runtime_error("cannot write " + index_path);
  return {data_file, index_file};
}

trainer_snapshot trainer_core::snapshot() const {
  const impl& s = *impl_;
  auto copy = std::make_shared<trainer_snapshot::impl>();
  copy->batches = s.batches;
  copy->model_state = s.model_state();  // already CPU copies
  for (const auto& [name, tensor] : s.model->named_buffers())
    copy->buffers.emplace_back(name, tensor.detach().to(at::kCPU).clone());
  auto scalar = [](double value) { return at::scalar_tensor(value, at::kDouble); };
  copy->trainer_state = {
      {"exp_avg", s.exp_avg.to(at::kCPU, false, true)},
      {"exp_avg_sq", s.exp_avg_sq.to(at::kCPU, false, true)},
      {"batches", at::scalar_tensor(static_cast<std::int64_t>(s.batches), at::kLong)},
      {"learning_rate", scalar(s.learning_rate)},
      {"stat_count", scalar(s.stat_count)},
      {"stat_mean", scalar(s.stat_mean)},
      {"stat_m2", scalar(s.stat_m2)}};
  trainer_snapshot out;
  out.impl_ = std::move(copy);
  return out;
}
const model_report& trainer_core::model() const { return impl_->report; }

std::uint64_t trainer_core::weights_checksum() const {
  const at::Tensor parameters = impl_->model->parameters().to(at::kCPU).contiguous();
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
