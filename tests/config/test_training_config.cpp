// [buffer] and [training]: defaults, values as written, and the errors a user
// gets for bad values (file:line:col: key: reason).
#include <doctest/doctest.h>

#include "config/study.hpp"
#include "tests/config/error_of.hpp"

using namespace melissa::config;

namespace {

const char* base = R"([study]
name = "t"
[server]
sink = "train"
[client]
command = ["sim"]
steps = 10
[parameters]
names = ["a", "b"]
count = 3
[[fields]]
name = "temperature"
size = 100
[[fields]]
name = "pressure"
size = 100
)";


}  // namespace

TEST_CASE("buffer and training defaults are the SC23 paper's setup") {
  const auto c = parse_study(base, "s.toml");
  CHECK(c.server.sink == sink_kind::train);
  CHECK(c.buffer.policy == buffer_policy::reservoir);
  CHECK(c.buffer.capacity == 6000);
  CHECK(c.buffer.threshold == 1000);
  CHECK(c.training.field == "temperature");  // the first field
  CHECK(c.training.hidden == std::vector<std::uint32_t>{256, 256});
  CHECK(c.training.activation == "relu");
  CHECK(c.training.batch_size == 10);
  CHECK(c.training.learning_rate == 1e-3);
  CHECK(c.training.lr_halving_batches == 0);
  CHECK(c.training.output == output_scaling::running);
  CHECK(c.training.validation_dir.empty());
}

TEST_CASE("buffer and training values are read as written and survive to_toml") {
  const std::string text = std::string(base) + R"(
[buffer]
policy = "firo"
capacity = 50
threshold = 10
[training]
field = "pressure"
time_steps = 40
hidden = [32, 16, 8]
activation = "tanh"
batch_size = 4
learning_rate = 0.01
lr_halving_batches = 1000
min_learning_rate = 1e-4
output = "constant"
output_mean = 300
output_std = 100.5
validation_dir = "val"
validation_every = 7
metrics_every = 5
threads = 2
)";
  const auto c = parse_study(text, "s.toml");
  CHECK(c.buffer.policy == buffer_policy::firo);
  CHECK(c.buffer.capacity == 50);
  CHECK(c.buffer.threshold == 10);
  CHECK(c.training.field == "pressure");
  CHECK(c.training.time_steps == 40);
  CHECK(c.training.hidden == std::vector<std::uint32_t>{32, 16, 8});
  CHECK(c.training.activation == "tanh");
  CHECK(c.training.batch_size == 4);
  CHECK(c.training.lr_halving_batches == 1000);
  CHECK(c.training.min_learning_rate == 1e-4);
  CHECK(c.training.output == output_scaling::constant);
  CHECK(c.training.output_mean == 300);
  CHECK(c.training.output_std == 100.5);
  CHECK(c.training.validation_dir == "val");
  CHECK(c.training.validation_every == 7);
  CHECK(c.training.metrics_every == 5);
  CHECK(c.training.threads == 2);
  CHECK(parse_study(to_toml(c), "resolved.toml") == c);
  auto changed = c;
  changed.training.hidden.back() = 9;
  CHECK(changed != c);
  changed = c;
  changed.buffer.threshold = 11;
  CHECK(changed != c);
}

TEST_CASE("bad buffer and training values name file, line and key") {
  const std::string b = base;
  CHECK(error_of(b + "[buffer]\npolicy = \"lifo\"\n") ==
        "s.toml:18:10: buffer.policy: must be one of \"fifo\", \"firo\", \"reservoir\", got \"lifo\"");
  CHECK(error_of(b + "[buffer]\ncapacity = 10\nthreshold = 10\n") ==
        "s.toml:19:13: buffer.threshold: must be < buffer.capacity = 10, got 10");
  CHECK(error_of(b + "[buffer]\ncapacity = 0\n") ==
        "s.toml:18:12: buffer.capacity: must be >= 1, got 0");
  CHECK(error_of(b + "[training]\nfield = \"velocity\"\n") ==
        "s.toml:18:9: training.field: no [[fields]] entry is named \"velocity\"");
  CHECK(error_of(b + "[training]\nhidden = [256, 0]\n") ==
        "s.toml:18:16: training.hidden[1]: must be in [1, 1048576], got 0");
  CHECK(error_of(b + "[training]\nactivation = \"sigmoid\"\n") ==
        "s.toml:18:14: training.activation: must be one of \"relu\", \"tanh\", \"gelu\", \"silu\", "
        "got \"sigmoid\"");
  CHECK(error_of(b + "[training]\nlearning_rate = -1\n") ==
        "s.toml:18:17: training.learning_rate: must be > 0, got -1.0");
  CHECK(error_of(b + "[training]\nbatch_size = 2.5\n") ==
        "s.toml:18:14: training.batch_size: expected an integer, got a float");
}

TEST_CASE("[training] model, device, weight decay and clipping") {
  const std::string b = base;
  const auto defaults = parse_study(b, "s.toml");
  CHECK(defaults.training.model.empty());
  CHECK(defaults.training.device == "auto");
  CHECK(defaults.training.weight_decay == 0);
  CHECK(defaults.training.clip_grad_norm == 0);
  const auto c = parse_study(b + "[training]\nmodel = \"nets/cnn.pt\"\ndevice = \"cuda\"\n"
                                 "weight_decay = 1e-4\nclip_grad_norm = 1.5\n",
                             "s.toml");
  CHECK(c.training.model == "nets/cnn.pt");
  CHECK(c.training.device == "cuda");
  CHECK(c.training.weight_decay == 1e-4);
  CHECK(c.training.clip_grad_norm == 1.5);
  // to_toml writes model without hidden/activation (they exclude each other).
  const std::string resolved = to_toml(c);
  CHECK(resolved.find("hidden =") == std::string::npos);
  CHECK(parse_study(resolved, "resolved.toml") == c);
  CHECK(parse_study(to_toml(defaults), "resolved.toml") == defaults);
  auto changed = c;
  changed.training.model = "other.pt";
  CHECK(changed != c);

  CHECK(error_of(b + "[training]\nhidden = [8]\nmodel = \"m.pt\"\n") ==
        "s.toml:19:9: training.model: excludes training.hidden (line 18): a TorchScript model "
        "brings its own layers");
  CHECK(error_of(b + "[training]\nmodel = \"m.pt\"\nactivation = \"tanh\"\n") ==
        "s.toml:18:9: training.model: excludes training.activation (line 19): a TorchScript "
        "model brings its own layers");
  CHECK(error_of(b + "[training]\nmodel = \"\"\n") == "s.toml:18:9: training.model: must not be empty");
  CHECK(error_of(b + "[training]\ndevice = \"gpu\"\n") ==
        "s.toml:18:10: training.device: must be one of \"auto\", \"cpu\", \"cuda\", got \"gpu\"");
  CHECK(error_of(b + "[training]\nweight_decay = -0.1\n") ==
        "s.toml:18:16: training.weight_decay: must be >= 0, got -0.1");
  CHECK(error_of(b + "[training]\nclip_grad_norm = -1\n") ==
        "s.toml:18:18: training.clip_grad_norm: must be >= 0 (0: no clipping), got -1.0");
}

TEST_CASE("[breed]: present means enabled, values as written, and validated") {
  const std::string b = base;
  CHECK_FALSE(parse_study(b, "s.toml").breed.enabled);
  const auto c = parse_study(b + "[breed]\nperiod = 50\nwindow = 20\nsigma = 0.1\nr_start = 0.3\n"
                                 "r_end = 1\nr_steps = 4\n",
                             "s.toml");
  CHECK(c.breed.enabled);
  CHECK(c.breed.period == 50);
  CHECK(c.breed.window == 20);
  CHECK(c.breed.sigma == 0.1);
  CHECK(c.breed.r_start == 0.3);
  CHECK(c.breed.r_end == 1);
  CHECK(c.breed.r_steps == 4);
  CHECK(parse_study(to_toml(c), "resolved.toml") == c);
  CHECK(parse_study(b + "[breed]\n", "s.toml").breed.period == 200);  // defaults: the paper's
  CHECK(parse_study(to_toml(parse_study(b, "s.toml")), "r.toml").breed.enabled == false);
  CHECK(error_of(b + "[breed]\nr_end = 1.5\n") == "s.toml:18:9: breed.r_end: must be in [0, 1], got 1.5");
  CHECK(error_of(b + "[breed]\nsigma = 2\n") ==
        "s.toml:18:9: breed.sigma: must be in (0, 1] (a share of each parameter's range), got 2.0");
  CHECK(error_of(b + "[breed]\nperiod = 0\n") == "s.toml:18:10: breed.period: must be >= 1, got 0");
  CHECK(error_of(b + "[breed]\nwindows = 3\n").find("breed.windows: unknown key") != std::string::npos);
  std::string counting = b;
  counting.replace(counting.find("sink = \"train\""), 14, "sink = \"count\"");
  CHECK(error_of(counting + "[breed]\nperiod = 10\n") ==
        "s.toml:18:10: breed.period: [breed] needs server.sink = \"train\", got \"count\"");
}
