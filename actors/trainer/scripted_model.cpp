#include "actors/trainer/scripted_model.hpp"

#include <filesystem>
#include <map>
#include <sstream>
#include <stdexcept>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/jit/serialization/import.h>

#include "actors/trainer/surrogate_model.hpp"

namespace melissa {

namespace {

// The line of a LibTorch error that says what went wrong: TorchScript's
// interpreter puts it last, after its traceback; c10::Error's backtrace
// follows its message when what() is used.
std::string short_reason(const std::exception& error) {
  std::string text;
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&error))
    text = c10_error->what_without_backtrace();
  else
    text = error.what();
  std::istringstream lines(text);
  std::string line, last;
  while (std::getline(lines, line))
    if (line.find_first_not_of(" \t\r") != std::string::npos) last = line;
  last.erase(0, last.find_first_not_of(" \t"));
  if (last.size() > 300) last = last.substr(0, 300) + "...";
  return last;
}

std::string shape_of(const at::Tensor& t) {
  std::string out = "[";
  for (std::int64_t d = 0; d < t.dim(); ++d) out += (d ? ", " : "") + std::to_string(t.size(d));
  return out + "]";
}

}  // namespace

scripted_model::scripted_model(torch::jit::Module module, torch::jit::Module export_copy,
                               const model_settings& settings, at::Device device,
                               std::vector<std::string> state_names)
    : module_(std::move(module)),
      export_copy_(std::move(export_copy)),
      settings_(settings),
      device_(device) {
  // One flat tensor; each parameter becomes a view of its slice (as
  // `p.data = flat[a:b].view_as(p)` in Python): Adam and the all-reduce
  // then see one tensor, and the module computes with the same memory.
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& entry : module_.named_parameters(/*recurse=*/true))
    named.emplace_back(entry.name, entry.value);
  std::int64_t total = 0;
  for (const auto& [name, p] : named) total += p.numel();
  parameters_ = at::empty({total}, at::TensorOptions().dtype(at::kFloat).device(device_));
  at::NoGradGuard no_grad;
  std::int64_t offset = 0;
  for (auto& [name, p] : named) {
    at::Tensor slice = parameters_.narrow(0, offset, p.numel());
    slice.copy_(p.detach().reshape({-1}));
    p.set_data(slice.view(p.sizes()));
    p.set_requires_grad(true);
    live_.push_back(p);
    offset += p.numel();
  }
  state_names_ = state_names.empty() ? std::vector<std::string>{} : std::move(state_names);
  if (state_names_.empty())
    for (const auto& [name, p] : named) state_names_.push_back(name);
  module_.train();
}

std::unique_ptr<scripted_model> scripted_model::load(const std::string& path,
                                                     const model_settings& settings,
                                                     at::Device device) {
  const std::string what = "training.model: " + path + ": ";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw std::invalid_argument(what + "no such file");
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, device);
  } catch (const std::exception& e) {
    throw std::invalid_argument(what + "not a TorchScript module torch::jit::load can read (" +
                                short_reason(e) + ")");
  }
  std::size_t count = 0;
  for (const auto& entry : module.named_parameters(true)) {
    ++count;
    if (entry.value.scalar_type() != at::kFloat)
      throw std::invalid_argument(what + "parameter '" + entry.name + "' is " +
                                  std::string(c10::toString(entry.value.scalar_type())) +
                                  "; the trainer trains float32 parameters (.float() before saving)");
  }
  if (count == 0) throw std::invalid_argument(what + "the module has no parameters (nothing to train)");

  // One dummy forward: a model that does not fit the study is refused now,
  // not after the simulations have started.
  const std::int64_t rows = 2;
  c10::IValue output;
  try {
    at::NoGradGuard no_grad;
    module.eval();
    output = module.forward({at::zeros({rows, static_cast<std::int64_t>(settings.input_dim)},
                                       at::TensorOptions().dtype(at::kFloat).device(device))});
  } catch (const std::exception& e) {
    throw std::invalid_argument(what + "forward of a float32 batch [2, " +
                                std::to_string(settings.input_dim) + "] (parameters and time) failed: " +
                                short_reason(e));
  }
  if (!output.isTensor())
    throw std::invalid_argument(what + "forward returned a " + output.tagKind() +
                                ", not a tensor");
  const at::Tensor y = output.toTensor();
  if (y.numel() != rows * static_cast<std::int64_t>(settings.output_dim))
    throw std::invalid_argument(what + "forward of a batch of 2 gives " + shape_of(y) + " = " +
                                std::to_string(y.numel() / rows) +
                                " values per sample; the trained field has " +
                                std::to_string(settings.output_dim));
  torch::jit::Module export_copy = torch::jit::load(path, at::kCPU);
  return std::unique_ptr<scripted_model>(
      new scripted_model(std::move(module), std::move(export_copy), settings, device, {}));
}

std::unique_ptr<scripted_model> scripted_model::of_mlp(const surrogate_model& mlp,
                                                       const model_settings& settings,
                                                       at::Device device) {
  torch::jit::Module module = mlp.torchscript_module(false, 0, 1);
  module.to(device);
  std::vector<std::string> names;
  for (const auto& [name, tensor] : mlp.named_parameters()) names.push_back(name);
  return std::unique_ptr<scripted_model>(new scripted_model(
      std::move(module), mlp.torchscript_module(false, 0, 1), settings, device, std::move(names)));
}

at::Tensor scripted_model::output_rows(const c10::IValue& output, std::int64_t rows) const {
  if (!output.isTensor())
    throw std::runtime_error(std::string("the model's forward returned a ") + output.tagKind() +
                             ", not a tensor");
  at::Tensor y = output.toTensor();
  if (y.numel() != rows * static_cast<std::int64_t>(settings_.output_dim))
    throw std::runtime_error("the model's forward gave " + shape_of(y) + " for " +
                             std::to_string(rows) + " samples of " +
                             std::to_string(settings_.output_dim) + " values");
  return y.reshape({rows, static_cast<std::int64_t>(settings_.output_dim)});
}

at::Tensor scripted_model::forward(const at::Tensor& inputs) const {
  at::NoGradGuard no_grad;
  module_.eval();
  at::Tensor y = output_rows(module_.forward({inputs.to(device_)}), inputs.size(0));
  module_.train();
  return y;
}

std::vector<std::pair<std::string, at::Tensor>> scripted_model::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (std::size_t i = 0; i < live_.size(); ++i) named.emplace_back(state_names_[i], live_[i].detach());
  return named;
}

std::vector<std::pair<std::string, at::Tensor>> scripted_model::named_buffers() const {
  std::vector<std::pair<std::string, at::Tensor>> named;
  for (const auto& entry : module_.named_buffers(/*recurse=*/true))
    named.emplace_back(entry.name, entry.value.detach());
  return named;
}

void scripted_model::use_gradient_buffer(const at::Tensor& flat) {
  std::int64_t offset = 0;
  for (auto& p : live_) {
    p.mutable_grad() = flat.narrow(0, offset, p.numel()).view(p.sizes());
    offset += p.numel();
  }
}

scripted_model::pass_result scripted_model::train_pass(const at::Tensor& inputs,
                                                       const at::Tensor& targets, double mean,
                                                       double std, double stat_center) {
  const std::int64_t rows = inputs.size(0);
  at::Tensor outputs = output_rows(module_.forward({inputs}), rows);
  at::Tensor normalized = (targets - mean) / std;
  at::Tensor error = outputs - normalized;
  // The fused pass's loss: mean over rows x outputs of error^2.
  at::Tensor loss = error.square().mean();
  loss.backward();
  pass_result result;
  {
    at::NoGradGuard no_grad;
    result.sample_squared_error = error.detach().square().sum({1}, false, at::kDouble);
    at::Tensor centered = targets.to(at::kDouble) - stat_center;
    result.target_sums = at::stack({centered.sum(), centered.square().sum()});
  }
  return result;
}

void scripted_model::save_torchscript(const std::string& path, double output_mean,
                                      double output_std) const {
  {
    at::NoGradGuard no_grad;
    std::map<std::string, at::Tensor> trained;
    for (const auto& entry : module_.named_parameters(true)) trained[entry.name] = entry.value;
    for (const auto& entry : module_.named_buffers(true)) trained[entry.name] = entry.value;
    for (const auto& entry : export_copy_.named_parameters(true))
      entry.value.detach().copy_(trained.at(entry.name));
    for (const auto& entry : export_copy_.named_buffers(true))
      entry.value.detach().copy_(trained.at(entry.name));
  }
  torch::jit::Module network = export_copy_;
  network.eval();
  torch::jit::Module wrapper("melissa.ScriptedSurrogate");
  wrapper.register_module("network", network);
  wrapper.register_buffer("output_mean", at::scalar_tensor(output_mean, at::kFloat));
  wrapper.register_buffer("output_std", at::scalar_tensor(output_std, at::kFloat));
  wrapper.register_attribute("input_dim", c10::IntType::get(),
                             static_cast<std::int64_t>(settings_.input_dim));
  wrapper.register_attribute("output_dim", c10::IntType::get(),
                             static_cast<std::int64_t>(settings_.output_dim));
  wrapper.define(R"(
def forward(self, x):
    y = self.network.forward(x)
    if x.dim() == 1:
        return y.reshape(-1) * self.output_std + self.output_mean
    return y.reshape(x.size(0), -1) * self.output_std + self.output_mean
)");
  wrapper.eval();
  wrapper.save(path);
}

}  // namespace melissa
