// Checkpoint benchmark (issue 11): for a Reservoir of 1,000 and 10,000
// samples of 40 KB (a 10,000-value float32 field) and the default MLP
// (3 inputs, 256 x 256 hidden, 10,000 outputs):
//   - size of the checkpoint and time to write it (the keeper's thread:
//     staging, the rank's parts as a running server writes them (rank_parts:
//     the trainer's raw arrays, buffer.bin, received_steps.json), hashing,
//     fsync, rename), against a raw sequential write +
//     fsync of the same number of bytes to the same directory, measured in
//     the same run (best of `rounds` each, interleaved);
//   - the trainer's pause: the in-memory snapshots (trainer_core::snapshot +
//     training_buffer::snapshot), against the checkpoint interval
//     (every_batches = 1000 batches of the measured step, or every_seconds =
//     600 s, whichever is shorter).
// Goals: pause <= 5 % of the interval; write >= 0.7 x raw.
// Usage: checkpoint [DIR] [rounds]  (DIR: where to write, default $TMPDIR or /tmp)
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "actors/checkpoint_keeper/buffer_file.hpp"
#include "actors/checkpoint_keeper/checkpoint_writer.hpp"
#include "actors/checkpoint_keeper/rank_parts.hpp"
#include "actors/reservoir/training_buffer.hpp"
#include "actors/trainer/trainer_core.hpp"

using namespace melissa;
namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t output_dim = 10000;  // 40 KB of float32 per sample
constexpr std::uint32_t input_dim = 3;
constexpr std::uint32_t batch_size = 10;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <class F>
double best_of(int n, F&& f) {
  double best = 1e300;
  for (int i = 0; i < n; ++i) {
    auto start = std::chrono::steady_clock::now();
    f();
    best = std::min(best, seconds_since(start));
  }
  return best;
}

// write(2) in 4 MiB pieces + fsync: the disk's sequential speed for `bytes`.
double raw_write_seconds(const std::string& path, std::uint64_t bytes) {
  std::vector<char> chunk(std::size_t{4} << 20, 'x');
  auto start = std::chrono::steady_clock::now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) std::perror("open"), std::exit(1);
  for (std::uint64_t done = 0; done < bytes;) {
    auto n = ::write(fd, chunk.data(), std::min<std::uint64_t>(chunk.size(), bytes - done));
    if (n <= 0) std::perror("write"), std::exit(1);
    done += static_cast<std::uint64_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  double seconds = seconds_since(start);
  fs::remove(path);
  return seconds;
}

std::unique_ptr<training_buffer> full_buffer(std::size_t capacity) {
  auto buffer = make_training_buffer({buffer_policy::reservoir, capacity, capacity / 2, 1});
  for (std::uint32_t i = 0; i < capacity; ++i) {
    training_sample s;
    s.sim_id = i / 100;
    s.time_step = i % 100;
    s.input = {0.25f, 0.75f, static_cast<float>(i % 100) / 100};
    std::vector<float> target(output_dim);
    for (std::uint32_t j = 0; j < output_dim; ++j) target[j] = static_cast<float>((i * 31 + j) % 977);
    s.target = std::make_shared<const std::vector<float>>(std::move(target));
    buffer->put(std::move(s));
  }
  for (int b = 0; b < 50; ++b) buffer->draw(batch_size);  // some seen samples
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string base = argc > 1 ? argv[1] : (tmp && *tmp ? tmp : "/tmp");
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 2;
  const std::string root = base + "/melissa-bench-checkpoint-" + std::to_string(::getpid());
  fs::create_directories(root);

  trainer_settings settings;
  settings.model = {input_dim, {256, 256}, "relu", output_dim};
  settings.threads = 2;
  trainer_core trainer(settings);
  {
    auto warm = full_buffer(64);
    for (int i = 0; i < 3; ++i) {
      auto batch = warm->draw(batch_size);
      trainer.step(&batch);
    }
  }

  std::printf("# checkpoint benchmark: Reservoir of 40 KB samples, MLP %u-256-256-%u (%zu parameters)\n",
              input_dim, output_dim, trainer.parameter_count());
  std::printf("%9s %10s %9s %9s %9s %8s %10s %10s %9s %8s\n", "capacity", "size_MB", "write_s",
              "write_MBs", "raw_MBs", "ratio", "pause_ms", "step_ms", "interval_s", "pause_%");
  bool goals = true;
  for (std::size_t capacity : {std::size_t{1000}, std::size_t{10000}}) {
    auto buffer = full_buffer(capacity);
    auto batch = buffer->draw(batch_size);
    const double step = best_of(5, [&] { trainer.step(&batch); });

    trainer_snapshot trainer_copy;
    buffer_snapshot buffer_copy;
    const double pause = best_of(5, [&] {
      trainer_copy = trainer.snapshot();
      buffer_copy = buffer->snapshot();
    });

    double best_write = 1e300, best_raw = 1e300, trainer_part = 0, buffer_part = 0;
    std::uint64_t bytes = 0;
    {
      checkpoint::write_result last;
      checkpoint::checkpoint_writer writer(root + "/ck", 1,
                                           [&](const checkpoint::write_result& r) { last = r; });
      for (int r = 0; r < rounds; ++r) {
        checkpoint::checkpoint_job job;
        job.header.study = "bench";
        job.header.batch = trainer.batches();
        job.header.reason = "bench";
        // The parts a running rank writes (rank_parts: the trainer's raw
        // arrays, buffer.bin, received_steps.json), each one timed.
        checkpoint::rank_snapshot snap;
        snap.trainer = trainer_copy;
        snap.buffer = buffer_copy;
        auto parts = checkpoint::rank_parts(std::move(snap));
        for (std::size_t i = 0; i < parts.size(); ++i)
          job.parts.push_back([&, i, part = std::move(parts[i])](checkpoint::staging& s) {
            auto start = std::chrono::steady_clock::now();
            part(s);
            if (i == 0) trainer_part = seconds_since(start);
            if (i == 1) buffer_part = seconds_since(start);
          });
        if (!writer.submit(std::move(job))) return 1;
        writer.wait_idle();
        if (!last.ok) {
          std::fprintf(stderr, "checkpoint failed: %s\n", last.error.c_str());
          return 1;
        }
        bytes = last.bytes;
        best_write = std::min(best_write, last.seconds);
        best_raw = std::min(best_raw, raw_write_seconds(root + "/raw.bin", bytes));
      }
    }
    const double mb = static_cast<double>(bytes) / 1e6;
    const double interval = std::min(1000 * step, 600.0);
    const double ratio = best_raw / best_write;
    const double pause_share = pause / interval;
    std::printf("%9zu %10.1f %9.3f %9.1f %9.1f %8.2f %10.2f %10.2f %9.1f %8.3f\n", capacity, mb,
                best_write, mb / best_write, mb / best_raw, ratio, pause * 1e3, step * 1e3,
                interval, 100 * pause_share);
    std::printf("  last round: trainer part %.3f s, buffer part %.3f s\n", trainer_part, buffer_part);
    std::printf("  goal pause <= 5%% of the interval: %s; goal write >= 0.7 x raw: %s\n",
                pause_share <= 0.05 ? "met" : "NOT MET", ratio >= 0.7 ? "met" : "NOT MET");
    goals = goals && pause_share <= 0.05 && ratio >= 0.7;
  }
  fs::remove_all(root);
  std::printf("# goals %s\n", goals ? "met" : "not all met");
  return 0;
}
