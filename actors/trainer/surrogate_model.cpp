#include "actors/trainer/surrogate_model.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <cblas.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/pickle.h>

namespace melissa {

activation_kind parse_activation(const std::string& name) {
  if (name == "relu") return activation_kind::relu;
  if (name == "tanh") return activation_kind::tanh;
  if (name == "gelu") return activation_kind::gelu;
  if (name == "silu") return activation_kind::silu;
  throw std::invalid_argument("unknown activation '" + name +
                              "' (expected relu, tanh, gelu or silu)");
}

namespace {

const char* torchscript_activation(activation_kind kind) {
  switch (kind) {
    case activation_kind::relu: return "torch.relu";
    case activation_kind::tanh: return "torch.tanh";
    case activation_kind::gelu: return "torch.gelu";
    case activation_kind::silu: return "torch.silu";
  }
  return "";
}

at::Tensor activate(activation_kind kind, const at::Tensor& x) {
  switch (kind) {
    case activation_kind::relu: return at::relu(x);
    case activation_kind::tanh: return at::tanh(x);
    case activation_kind::gelu: return at::gelu(x);
    case activation_kind::silu: return at::silu(x);
  }
  return x;
}

// d(loss)/d(pre-activation) from d(loss)/d(activation output).
at::Tensor activation_backward(activation_kind kind, const at::Tensor& grad, const at::Tensor& pre,
                               const at::Tensor& post) {
  switch (kind) {
    case activation_kind::relu: return at::threshold_backward(grad, post, 0);
    case activation_kind::tanh: return at::tanh_backward(grad, post);
    case activation_kind::gelu: return at::gelu_backward(grad, pre);
    case activation_kind::silu: return at::silu_backward(grad, pre);
  }
  return grad;
}

// x W^T + b. addmm with a broadcast bias copies the bias into every row
// first; mm then an in-place add is the same arithmetic with fewer passes.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return at::mm(x, weight.t()).add_(bias);
}

}  // namespace

surrogate_model::surrogate_model(const model_settings& settings, std::uint64_t seed)
    : settings_(settings), activation_(parse_activation(settings.activation)) {
  if (settings.input_dim == 0 || settings.output_dim == 0)
    throw std::invalid_argument("model: input_dim and output_dim must be positive");
  std::vector<std::int64_t> widths{settings.input_dim};
  for (auto width : settings.hidden) {
    if (width == 0) throw std::invalid_argument("model: hidden layer widths must be positive");
    widths.push_back(width);
  }
  widths.push_back(settings.output_dim);

  std::int64_t offset = 0;
  for (std::size_t l = 0; l + 1 < widths.size(); ++l) {
    layer entry;
    entry.in = widths[l];
    entry.out = widths[l + 1];
    entry.weight_offset = offset;
    offset += entry.in * entry.out;
    entry.bias_offset = offset;
    offset += entry.out;
    layers_.push_back(entry);
  }
  parameter_count_ = offset;
  // Output-layer chunks of about 64k weights (256 KB: L2-resident while the
  // chunk's forward, backward and update run), but at most 256 chunks so
  // the per-chunk partials stay small for million-output fields.
  const layer& last = layers_.back();
  output_chunk_rows_ = std::max<std::int64_t>(16, (1 << 16) / last.in);
  output_chunk_rows_ = std::max(output_chunk_rows_, (last.out + 255) / 256);
  parameters_ = at::empty({parameter_count_}, at::kFloat);

  // Same seed, same generator (mt19937 on the CPU): the same weights on
  // every machine, drawn in a fixed order.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& entry : layers_) {
    entry.weight = parameters_.narrow(0, entry.weight_offset, entry.in * entry.out)
                       .view({entry.out, entry.in});
    entry.bias = parameters_.narrow(0, entry.bias_offset, entry.out);
    double bound = 1.0 / std::sqrt(static_cast<double>(entry.in));
    entry.weight.uniform_(-bound, bound, generator);
    entry.bias.uniform_(-bound, bound, generator);
  }
}

at::Tensor surrogate_model::forward(const at::Tensor& inputs) const {
  at::Tensor h = inputs;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    h = linear(h, layers_[l].weight, layers_[l].bias);
    if (l + 1 < layers_.size()) h = activate(activation_, h);
  }
  return h;
}

surrogate_model::pass_result surrogate_model::train_pass(
    const float* inputs, const float* targets, std::int64_t rows, double mean, double std,
    double stat_center, float* gradients, chunk_pool& pool, const range_update* update) {
  const layer& last = layers_.back();
  const std::int64_t hidden_width = last.in, outputs = last.out;
  const std::int64_t hidden_layers = static_cast<std::int64_t>(layers_.size()) - 1;

  // Hidden layers: small (rows x 256), plain ATen operations.
  std::vector<at::Tensor> layer_inputs{
      at::from_blob(const_cast<float*>(inputs), {rows, settings_.input_dim}, at::kFloat)};
  std::vector<at::Tensor> pre_activations;
  for (std::int64_t l = 0; l < hidden_layers; ++l) {
    pre_activations.push_back(linear(layer_inputs.back(), layers_[l].weight, layers_[l].bias));
    layer_inputs.push_back(activate(activation_, pre_activations.back()).contiguous());
  }
  const float* hidden = layer_inputs.back().data_ptr<float>();  // rows x hidden_width

  const std::int64_t chunks = (outputs + output_chunk_rows_ - 1) / output_chunk_rows_;
  output_scratch_.resize(static_cast<std::size_t>(rows * outputs));
  hidden_grad_partials_.resize(static_cast<std::size_t>(chunks * rows * hidden_width));
  loss_partials_.assign(static_cast<std::size_t>(chunks * rows), 0.0);
  target_partials_.assign(static_cast<std::size_t>(chunks * 2), 0.0);

  const float* weights = parameters_.data_ptr<float>() + last.weight_offset;
  const float* biases = parameters_.data_ptr<float>() + last.bias_offset;
  float* weight_grads = gradients + last.weight_offset;
  float* bias_grads = gradients + last.bias_offset;
  float* output = output_scratch_.data();
  const float mean_f = static_cast<float>(mean);
  const float inv_std = static_cast<float>(1.0 / std);
  // d(mean over rows x outputs of error^2)/d(error) = 2 error / (rows x outputs)
  const float grad_scale = static_cast<float>(2.0 / static_cast<double>(rows * outputs));

  pool.run(outputs, output_chunk_rows_, [&](std::int64_t chunk, std::int64_t first,
                                            std::int64_t end) {
    const std::int64_t n = end - first;
    const float* chunk_weights = weights + first * hidden_width;  // n x hidden_width
    // outputs[:, first:end] = hidden x W[first:end]^T
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, hidden_width, 1.0f, hidden,
                hidden_width, chunk_weights, hidden_width, 0.0f, output + first, outputs);
    // Loss, its gradient (over the outputs, in place) and target statistics.
    double target_sum = 0, target_sumsq = 0;
    for (std::int64_t r = 0; r < rows; ++r) {
      float* out_row = output + r * outputs;
      const float* target_row = targets + r * outputs;
      double squared_error = 0;
      for (std::int64_t j = first; j < end; ++j) {
        float error = (out_row[j] + biases[j]) - (target_row[j] - mean_f) * inv_std;
        squared_error += static_cast<double>(error) * error;
        out_row[j] = error * grad_scale;
        double centered = static_cast<double>(target_row[j]) - stat_center;
        target_sum += centered;
        target_sumsq += centered * centered;
      }
      loss_partials_[static_cast<std::size_t>(chunk * rows + r)] = squared_error;
    }
    target_partials_[static_cast<std::size_t>(2 * chunk)] = target_sum;
    target_partials_[static_cast<std::size_t>(2 * chunk + 1)] = target_sumsq;
    // dW[first:end] = grad[:, first:end]^T x hidden
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, hidden_width, rows, 1.0f,
                output + first, outputs, hidden, hidden_width, 0.0f,
                weight_grads + first * hidden_width, hidden_width);
    // db[first:end] = sum over rows of grad[:, first:end]
    for (std::int64_t j = first; j < end; ++j) bias_grads[j] = 0;
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t j = first; j < end; ++j) bias_grads[j] += output[r * outputs + j];
    // This chunk's share of d(loss)/d(hidden) = grad[:, first:end] x W[first:end]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hidden_width, n, 1.0f,
                output + first, outputs, chunk_weights, hidden_width, 0.0f,
                hidden_grad_partials_.data() + chunk * rows * hidden_width, hidden_width);
    if (update) {
      (*update)(last.weight_offset + first * hidden_width, n * hidden_width);
      (*update)(last.bias_offset + first, n);
    }
  });

  pass_result result;
  result.sample_squared_error.assign(static_cast<std::size_t>(rows), 0.0);
  for (std::int64_t chunk = 0; chunk < chunks; ++chunk) {
    for (std::int64_t r = 0; r < rows; ++r)
      result.sample_squared_error[static_cast<std::size_t>(r)] +=
          loss_partials_[static_cast<std::size_t>(chunk * rows + r)];
    result.target_sum += target_partials_[static_cast<std::size_t>(2 * chunk)];
    result.target_sumsq += target_partials_[static_cast<std::size_t>(2 * chunk + 1)];
  }
  // Partials summed in chunk order: the same result whichever thread did what.
  at::Tensor grad = at::empty({rows, hidden_width}, at::kFloat);
  float* grad_data = grad.data_ptr<float>();
  std::copy_n(hidden_grad_partials_.data(), rows * hidden_width, grad_data);
  for (std::int64_t chunk = 1; chunk < chunks; ++chunk) {
    const float* partial = hidden_grad_partials_.data() + chunk * rows * hidden_width;
    for (std::int64_t i = 0; i < rows * hidden_width; ++i) grad_data[i] += partial[i];
  }

  at::Tensor flat_gradients =
      at::from_blob(gradients, {parameter_count_}, at::kFloat);
  for (std::int64_t l = hidden_layers; l-- > 0;) {
    // grad: d(loss)/d(output of layer l's activation) -> d(loss)/d(pre-activation)
    grad = activation_backward(activation_, grad, pre_activations[l], layer_inputs[l + 1]);
    const layer& entry = layers_[l];
    at::Tensor weight_grad = flat_gradients.narrow(0, entry.weight_offset, entry.in * entry.out)
                                 .view({entry.out, entry.in});
    at::Tensor bias_grad = flat_gradients.narrow(0, entry.bias_offset, entry.out);
    at::mm_out(weight_grad, grad.t(), layer_inputs[l]);
    at::sum_out(bias_grad, grad, {0});
    if (l > 0) grad = at::mm(grad, entry.weight);
  }
  return result;
}

std::vector<std::pair<std::string, at::Tensor>> surrogate_model::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    // nn.Sequential numbering: Linear at 0, activation at 1, Linear at 2, ...
    std::string prefix = std::to_string(2 * l);
    named.emplace_back(prefix + ".weight", layers_[l].weight);
    named.emplace_back(prefix + ".bias", layers_[l].bias);
  }
  return named;
}

void surrogate_model::save_torchscript(const std::string& path, double output_mean,
                                       double output_std) const {
  torchscript_module(true, output_mean, output_std).save(path);
}

torch::jit::Module surrogate_model::torchscript_module(bool denormalize, double output_mean,
                                                       double output_std) const {
  torch::jit::Module module(denormalize ? "melissa.Surrogate" : "melissa.MLP");
  std::ostringstream source;
  source << "def forward(self, x):\n    h = x\n";
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    std::string index = std::to_string(l);
    module.register_parameter("weight" + index, layers_[l].weight.clone(), false);
    module.register_parameter("bias" + index, layers_[l].bias.clone(), false);
    source << "    h = torch.matmul(h, self.weight" << index << ".t()) + self.bias" << index
           << "\n";
    if (l + 1 < layers_.size())
      source << "    h = " << torchscript_activation(activation_) << "(h)\n";
  }
  if (denormalize) {
    source << "    return h * self.output_std + self.output_mean\n";
    module.register_buffer("output_mean", at::scalar_tensor(output_mean, at::kFloat));
    module.register_buffer("output_std", at::scalar_tensor(output_std, at::kFloat));
  } else {
    source << "    return h\n";
  }
  module.register_attribute("input_dim", c10::IntType::get(),
                            static_cast<std::int64_t>(settings_.input_dim));
  module.register_attribute("output_dim", c10::IntType::get(),
                            static_cast<std::int64_t>(settings_.output_dim));
  module.define(source.str());
  return module;
}

void save_tensor_dict(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : tensors) dict.insert(name, tensor);
  std::vector<char> bytes = torch::jit::pickle_save(dict);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

std::vector<std::pair<std::string, at::Tensor>> load_tensor_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  c10::IValue value = torch::jit::pickle_load(bytes);
  if (!value.isGenericDict()) throw std::runtime_error(path + ": not a dictionary of tensors");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& entry : value.toGenericDict())
    tensors.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
  return tensors;
}

}  // namespace melissa
