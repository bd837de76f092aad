#include "actors/checkpoint_keeper/checkpoint_writer.hpp"

#include <chrono>
#include <exception>
#include <filesystem>

#include "actors/checkpoint_keeper/rank_commit.hpp"

namespace melissa::checkpoint {

checkpoint_writer::checkpoint_writer(std::string root, std::size_t keep, done_fn done)
    : directory_(std::move(root)), keep_(keep), done_(std::move(done)) {
  thread_ = std::thread([this] { run(); });
}

checkpoint_writer::~checkpoint_writer() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

bool checkpoint_writer::submit(checkpoint_job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (writing_ || job_ || stopping_) return false;
    job_ = std::move(job);
  }
  changed_.notify_all();
  return true;
}

bool checkpoint_writer::busy() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return writing_ || job_.has_value();
}

void checkpoint_writer::wait_idle() const {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [this] { return !writing_ && !job_; });
}

void checkpoint_writer::run() {
  for (;;) {
    checkpoint_job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait(lock, [this] { return stopping_ || job_.has_value(); });
      if (!job_) return;  // stopping with nothing to write
      job = std::move(*job_);
      job_.reset();
      writing_ = true;
    }
    const write_result result = write(job);
    if (done_) done_(result);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      writing_ = false;
    }
    changed_.notify_all();
  }
}

write_result checkpoint_writer::write(checkpoint_job& job) {
  const auto start = std::chrono::steady_clock::now();
  write_result result;
  result.batch = job.header.batch;
  try {
    if (!job.shared_id.empty()) {
      write_shared(job, result);
      result.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      return result;
    }
    staging s = directory_.begin();
    for (auto& part : job.parts) part(s);
    for (const auto& f : s.files) result.bytes += f.digest.size;
    if (job.header.wall_time == 0)
      job.header.wall_time =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    result.path = directory_.commit(std::move(s), job.header);
    directory_.prune(keep_);
    result.ok = true;
  } catch (const std::exception& e) {
    result.error = e.what();
  }
  result.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

void checkpoint_writer::write_shared(checkpoint_job& job, write_result& result) {
  const auto& root = directory_.root();
  staging s = open_shared_staging(root, job.shared_id);
  if (job.rank != 0) {
    try {
      for (auto& part : job.parts) part(s);
    } catch (const std::exception& e) {
      publish_part_failure(s, job.rank, e.what());  // rank 0 abandons it at once
      throw;
    }
    for (const auto& f : s.files) result.bytes += f.digest.size;
    publish_part(s, job.rank);
    result.path = await_commit(root, job.shared_id, 2 * job.part_wait + std::chrono::minutes(1));
    result.ok = true;
    return;
  }
  try {
    for (auto& part : job.parts) part(s);
    gather_parts(s, job.header.ranks, job.part_wait);
    for (const auto& f : s.files) result.bytes += f.digest.size;
    if (job.header.wall_time == 0)
      job.header.wall_time =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    s.sequence = directory_.next_sequence();
    result.path = directory_.commit(std::move(s), job.header);
  } catch (const std::exception& e) {
    announce_commit(root, job.shared_id, false, e.what());
    throw;
  }
  announce_commit(root, job.shared_id, true, result.path);
  directory_.prune(keep_);
  result.ok = true;
}

}  // namespace melissa::checkpoint
