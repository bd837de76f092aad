// Data parallelism: trainers on ranks that are threads of this process, each
// with a Gloo group over one c10d::HashStore (and over TCP and file stores).
// torch first: Debian's c10 logs through glog, whose CHECK macros must not
// replace doctest's (undefined here, then doctest defines its own).
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "actors/trainer/gradient_group_c10d.hpp"
#undef CHECK
#undef CHECK_EQ
#undef CHECK_NE
#undef CHECK_LT
#undef CHECK_LE
#undef CHECK_GT
#undef CHECK_GE

#include <doctest/doctest.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/trainer/gradient_group.hpp"
#include "actors/trainer/trainer_core.hpp"
#include "trainer_test_data.hpp"

using melissa::gradient_group;
using melissa::gradient_group_options;
using melissa::step_result;
using melissa::trainer_core;
using melissa::training_batch;
using melissa::testing::concatenate;
using melissa::testing::make_batch;
using melissa::testing::small_settings;

namespace {

gradient_group_options loopback() {
  gradient_group_options options;
  options.hostname = "127.0.0.1";
  options.timeout = std::chrono::seconds(60);  // a broken test fails, it does not hang
  return options;
}

// Runs body(rank, group) on `size` threads, one Gloo group each over one
// HashStore; rethrows the first failure.
void run_ranks(int size, const std::function<void(int, std::shared_ptr<gradient_group>)>& body) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(size));
  for (int rank = 0; rank < size; ++rank)
    threads.emplace_back([&, rank] {
      try {
        body(rank, melissa::make_gradient_group(store, rank, size, loopback()));
      } catch (...) {
        errors[static_cast<std::size_t>(rank)] = std::current_exception();
      }
    });
  for (auto& thread : threads) thread.join();
  for (auto& error : errors)
    if (error) std::rethrow_exception(error);
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]));
  return worst;
}

struct rank_outcome {
  std::uint64_t checksum = 0;
  std::vector<step_result> results;
  std::vector<float> prediction;
  double mean = 0, std = 0;
  std::uint64_t batches = 0;
};

}  // namespace

TEST_CASE("all_reduce_sum and broadcast over a HashStore") {
  std::vector<std::vector<float>> seen(3);
  run_ranks(3, [&](int rank, std::shared_ptr<gradient_group> group) {
    CHECK(group->rank() == rank);
    CHECK(group->size() == 3);
    std::vector<float> values(1000, static_cast<float>(rank + 1));
    group->all_reduce_sum(values.data(), values.size());
    std::vector<double> doubles{1e-9 * rank, 1.0};
    group->all_reduce_sum(doubles.data(), doubles.size());
    CHECK(doubles[0] == doctest::Approx(3e-9));
    CHECK(doubles[1] == 3.0);
    std::vector<float> broadcast(10, static_cast<float>(rank));
    group->broadcast(broadcast.data(), broadcast.size(), 1);
    CHECK(broadcast[9] == 1.0f);
    group->barrier();
    seen[static_cast<std::size_t>(rank)] = values;
  });
  for (const auto& values : seen) CHECK(values == std::vector<float>(1000, 6.0f));
}

TEST_CASE("two ranks stay identical and match one rank trained on both batches") {
  // The fused CPU path and the device-generic one (what a GPU runs).
  for (int variant = 0; variant < 4; ++variant) {
    const bool running = variant % 2 == 1, generic = variant >= 2;
    CAPTURE(running);
    CAPTURE(generic);
    auto settings = small_settings();
    settings.output.running = running;
    settings.generic_path = generic;
    settings.threads = 1;  // two trainers share the test machine's cores
    const int steps = 5;
    auto batch_of = [&](int rank, int k) {
      return make_batch(6, 4, 300, static_cast<std::uint32_t>(10 * k + rank), 3.0, 2.0);
    };
    auto probe = make_batch(4, 4, 300, 555);

    std::vector<rank_outcome> outcomes(2);
    run_ranks(2, [&](int rank, std::shared_ptr<gradient_group> group) {
      auto own = settings;
      own.seed = settings.seed + static_cast<std::uint64_t>(rank);  // broadcast fixes it
      trainer_core trainer(own, group);
      auto& outcome = outcomes[static_cast<std::size_t>(rank)];
      for (int k = 0; k < steps; ++k) {
        auto batch = batch_of(rank, k);
        outcome.results.push_back(trainer.step(&batch));
      }
      outcome.checksum = trainer.weights_checksum();
      outcome.prediction = trainer.predict(probe.inputs);
      outcome.mean = trainer.output_mean();
      outcome.std = trainer.output_std();
      outcome.batches = trainer.batches();
    });
    CHECK(outcomes[0].checksum == outcomes[1].checksum);
    CHECK(outcomes[0].mean == outcomes[1].mean);
    CHECK(outcomes[0].std == outcomes[1].std);
    CHECK(outcomes[0].batches == steps);
    for (int k = 0; k < steps; ++k) {
      CHECK(outcomes[0].results[k].trained);
      CHECK(outcomes[0].results[k].loss == outcomes[1].results[k].loss);
      CHECK(outcomes[0].results[k].sample_losses.size() == 6);
    }

    // One rank on the union batch: the same mean gradient, up to rounding.
    trainer_core single(settings);
    for (int k = 0; k < steps; ++k) {
      auto both = concatenate(batch_of(0, k), batch_of(1, k));
      auto result = single.step(&both);
      CHECK(result.loss == doctest::Approx(outcomes[0].results[k].loss).epsilon(1e-4));
    }
    CHECK(max_abs_diff(single.predict(probe.inputs), outcomes[0].prediction) < 1e-4);
    CHECK(single.output_mean() == doctest::Approx(outcomes[0].mean).epsilon(1e-6));
    CHECK(single.output_std() == doctest::Approx(outcomes[0].std).epsilon(1e-5));
  }
}

TEST_CASE("a rank without a batch does not block the others") {
  for (bool generic : {false, true}) {
  CAPTURE(generic);
  auto settings = small_settings();
  settings.threads = 1;
  settings.generic_path = generic;
  auto batch_of = [](int rank, int k) {
    return make_batch(6, 4, 300, static_cast<std::uint32_t>(10 * k + rank));
  };
  auto probe = make_batch(4, 4, 300, 556);
  std::vector<rank_outcome> outcomes(2);
  run_ranks(2, [&](int rank, std::shared_ptr<gradient_group> group) {
    trainer_core trainer(settings, group);
    auto& outcome = outcomes[static_cast<std::size_t>(rank)];
    for (int k = 0; k < 4; ++k) {
      // Rank 1's buffer runs dry after two steps; rank 0 goes on.
      auto batch = batch_of(rank, k);
      bool has = rank == 0 || k < 2;
      outcome.results.push_back(trainer.step(has ? &batch : nullptr));
    }
    auto checksum = trainer.weights_checksum();
    // Neither has a batch: no step anywhere, and nobody waits forever.
    outcome.results.push_back(trainer.step(nullptr));
    CHECK(trainer.weights_checksum() == checksum);
    outcome.checksum = checksum;
    outcome.batches = trainer.batches();
    outcome.prediction = trainer.predict(probe.inputs);
  });
  CHECK(outcomes[0].checksum == outcomes[1].checksum);
  for (int k = 0; k < 4; ++k) {
    CHECK(outcomes[0].results[k].trained);
    CHECK(outcomes[1].results[k].trained);
  }
  CHECK(outcomes[1].results[2].sample_losses.empty());
  CHECK_FALSE(outcomes[0].results[4].trained);
  CHECK_FALSE(outcomes[1].results[4].trained);
  CHECK(outcomes[0].batches == 4);

  // The same as one rank given both batches, then rank 0's alone.
  trainer_core single(settings);
  for (int k = 0; k < 4; ++k) {
    auto batch = k < 2 ? concatenate(batch_of(0, k), batch_of(1, k)) : batch_of(0, k);
    single.step(&batch);
  }
  CHECK(max_abs_diff(single.predict(probe.inputs), outcomes[0].prediction) < 1e-4);
  }
}

TEST_CASE("a TorchScript model on two ranks: rank 0's weights, then bit-identical steps") {
  auto dir = std::filesystem::temp_directory_path() /
             ("melissa-gradient-group-ts-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  // Each rank's file has other initial weights: the broadcast replaces them.
  std::vector<std::string> files;
  for (int rank = 0; rank < 2; ++rank) {
    torch::manual_seed(static_cast<std::uint64_t>(rank));
    torch::jit::Module m("Net");
    m.register_parameter("w", torch::randn({32, 4}) * 0.5, false);
    m.register_parameter("v", torch::randn({300, 32}) * 0.1, false);
    m.define("def forward(self, x):\n    return torch.matmul(torch.relu(torch.matmul(x, self.w.t())), self.v.t())\n");
    files.push_back((dir / ("net" + std::to_string(rank) + ".pt")).string());
    m.save(files.back());
  }
  std::vector<rank_outcome> outcomes(2);
  std::vector<std::uint64_t> start(2);
  run_ranks(2, [&](int rank, std::shared_ptr<gradient_group> group) {
    auto settings = small_settings();
    settings.threads = 1;
    settings.model.torchscript = files[static_cast<std::size_t>(rank)];
    trainer_core trainer(settings, group);
    start[static_cast<std::size_t>(rank)] = trainer.weights_checksum();
    auto& outcome = outcomes[static_cast<std::size_t>(rank)];
    for (int k = 0; k < 6; ++k) {
      auto batch = make_batch(5, 4, 300, static_cast<std::uint32_t>(10 * k + rank));
      outcome.results.push_back(trainer.step(&batch));
    }
    outcome.checksum = trainer.weights_checksum();
  });
  CHECK(start[0] == start[1]);
  CHECK(outcomes[0].checksum == outcomes[1].checksum);
  CHECK(outcomes[0].checksum != start[0]);
  for (int k = 0; k < 6; ++k) CHECK(outcomes[0].results[k].loss == outcomes[1].results[k].loss);
  std::filesystem::remove_all(dir);
}

TEST_CASE("TCP store on port 0: rank 0 reports the bound port") {
  std::promise<std::uint16_t> published;
  auto port = published.get_future().share();
  std::vector<std::uint16_t> ports(2);
  std::vector<std::vector<float>> sums(2);
  std::vector<std::exception_ptr> errors(2);
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank)
    threads.emplace_back([&, rank] {
      try {
        auto options = loopback();
        std::shared_ptr<gradient_group> group;
        if (rank == 0) {
          options.on_listening = [&](std::uint16_t bound) { published.set_value(bound); };
          group = gradient_group::over_tcp("127.0.0.1", 0, 0, 2, options);
        } else {
          group = gradient_group::over_tcp("127.0.0.1", port.get(), 1, 2, options);
        }
        std::vector<float> values{1.0f, static_cast<float>(rank)};
        group->all_reduce_sum(values.data(), values.size());
        sums[static_cast<std::size_t>(rank)] = values;
        ports[static_cast<std::size_t>(rank)] = group->store_port();
      } catch (...) {
        errors[static_cast<std::size_t>(rank)] = std::current_exception();
      }
    });
  for (auto& thread : threads) thread.join();
  for (auto& error : errors)
    if (error) std::rethrow_exception(error);
  CHECK(port.get() != 0);
  CHECK(ports[0] == port.get());
  CHECK(ports[1] == port.get());
  const std::vector<float> expected{2.0f, 1.0f};
  CHECK(sums[0] == expected);
  CHECK(sums[1] == expected);
}

TEST_CASE("file store") {
  auto path = std::filesystem::temp_directory_path() /
              ("melissa-gloo-filestore-" + std::to_string(::getpid()));
  std::filesystem::remove(path);
  std::vector<float> sums(2);
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> errors(2);
  for (int rank = 0; rank < 2; ++rank)
    threads.emplace_back([&, rank] {
      try {
        auto group = gradient_group::over_file(path.string(), rank, 2, loopback());
        float value = static_cast<float>(rank + 1);
        group->all_reduce_sum(&value, 1);
        sums[static_cast<std::size_t>(rank)] = value;
      } catch (...) {
        errors[static_cast<std::size_t>(rank)] = std::current_exception();
      }
    });
  for (auto& thread : threads) thread.join();
  for (auto& error : errors)
    if (error) std::rethrow_exception(error);
  const std::vector<float> expected{3.0f, 3.0f};
  CHECK(sums == expected);
  std::filesystem::remove(path);
}

TEST_CASE("a rank outside the group is refused") {
  CHECK_THROWS_AS(gradient_group::over_file("/tmp/unused", 2, 2), std::invalid_argument);
}

TEST_CASE("a step's signal bits reach every rank OR-ed, and change nothing in the training") {
  // The server's checkpoints ride on this (docs/checkpoints.md, "Several ranks").
  for (bool generic : {false, true}) {
    CAPTURE(generic);
    auto settings = small_settings();
    settings.threads = 1;
    settings.generic_path = generic;
    auto batch_of = [](int rank, int k) {
      return make_batch(6, 4, 300, static_cast<std::uint32_t>(10 * k + rank));
    };
    // Per step k, the bits rank r sends.
    const std::uint32_t sent[2][4] = {{0x01, 0x00, 0x80, 0x04}, {0x00, 0x10, 0x80, 0x02}};
    std::vector<std::vector<std::uint32_t>> heard(2);
    std::vector<std::uint64_t> checksums(2), quiet(2);
    for (bool signalled : {true, false})
      run_ranks(2, [&](int rank, std::shared_ptr<gradient_group> group) {
        trainer_core trainer(settings, group);
        for (int k = 0; k < 3; ++k) {
          auto batch = batch_of(rank, k);
          const auto r = trainer.step(&batch, signalled ? sent[rank][k] : 0);
          CHECK(r.trained);
          if (signalled) heard[static_cast<std::size_t>(rank)].push_back(r.signal);
        }
        (signalled ? checksums : quiet)[static_cast<std::size_t>(rank)] = trainer.weights_checksum();
        // No rank has a batch (training is over): the bits still arrive.
        const auto last = trainer.step(nullptr, signalled ? sent[rank][3] : 0);
        CHECK_FALSE(last.trained);
        if (signalled) heard[static_cast<std::size_t>(rank)].push_back(last.signal);
      });
    const std::vector<std::uint32_t> expected{0x01, 0x10, 0x80, 0x06};
    CHECK(heard[0] == expected);
    CHECK(heard[1] == expected);
    CHECK(checksums[0] == checksums[1]);
    CHECK(checksums[0] == quiet[0]);  // the same weights as without any bits
  }
}
