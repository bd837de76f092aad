// The thread that writes checkpoints, so that the trainer only pauses for an
// in-memory snapshot (trainer_core::snapshot, training_buffer::snapshot):
// submit() hands over a job whose parts write their files into a staging
// directory; the thread commits it (manifest last, fsync, rename), prunes
// the checkpoints beyond `keep`, and calls `done` with the result, from the
// writer's thread. One job at a time: a job submitted while another is being
// written is refused (the caller takes the next one), so a slow disk never
// piles snapshots up in memory. Plain C++ (std::thread), no CAF.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"

namespace melissa::checkpoint {

// One part of a checkpoint (a rank's trainer, its buffer, the simulation
// table, ...): writes its files into the staging directory and records them
// with staging::add / add_written. May throw; the checkpoint is then abandoned.
using checkpoint_part = std::function<void(staging&)>;

struct checkpoint_job {
  manifest header;  // study, batch, reason, ranks, wall_time (set at commit when 0)
  std::vector<checkpoint_part> parts;
  // Several ranks (rank_commit.hpp): the id the ranks agreed on for this
  // checkpoint; its parts go into the shared staging directory, rank 0
  // gathers the other ranks' parts (waiting at most part_wait) and commits,
  // the others publish theirs and wait for rank 0's word (at most twice
  // part_wait plus a minute). Empty: this rank alone.
  std::string shared_id;
  std::uint32_t rank = 0;
  std::chrono::milliseconds part_wait{std::chrono::seconds(180)};
};

struct write_result {
  bool ok = false;
  std::string path;   // the committed checkpoint (several ranks: rank 0's commit)
  std::string error;  // when !ok: what failed
  std::uint64_t batch = 0;
  std::uint64_t bytes = 0;  // sum of the files' sizes
  double seconds = 0;       // staging to the end of prune
};

class checkpoint_writer {
 public:
  using done_fn = std::function<void(const write_result&)>;

  checkpoint_writer(std::string root, std::size_t keep, done_fn done);
  // Finishes the job being written, then stops the thread.
  ~checkpoint_writer();
  checkpoint_writer(const checkpoint_writer&) = delete;
  checkpoint_writer& operator=(const checkpoint_writer&) = delete;

  // false when a job is still being written (nothing queued).
  bool submit(checkpoint_job job);
  bool busy() const;
  // Blocks until no job is being written (end of study, tests).
  void wait_idle() const;

  const std::string& root() const { return directory_.root(); }

 private:
  void run();
  write_result write(checkpoint_job& job);
  void write_shared(checkpoint_job& job, write_result& result);

  checkpoint_directory directory_;
  std::size_t keep_;
  done_fn done_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::optional<checkpoint_job> job_;
  bool writing_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace melissa::checkpoint
