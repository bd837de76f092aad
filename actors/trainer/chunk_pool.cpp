#include "actors/trainer/chunk_pool.hpp"

#include <algorithm>

namespace melissa {

chunk_pool::chunk_pool(int threads) {
  for (int i = 1; i < threads; ++i) helpers_.emplace_back([this] { helper_loop(); });
}

chunk_pool::~chunk_pool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& helper : helpers_) helper.join();
}

void chunk_pool::work_on_current_job() {
  for (;;) {
    std::int64_t index;
    const body_type* body;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (next_chunk_ >= chunks_) return;
      index = next_chunk_++;
      body = body_;
    }
    std::int64_t begin = index * chunk_;
    std::int64_t end = std::min(count_, begin + chunk_);
    (*body)(index, begin, end);
  }
}

void chunk_pool::helper_loop() {
  std::uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    // Counted before any chunk is claimed: run() waits for every helper that
    // may still be inside the body. A helper that wakes after run() returned
    // finds no chunk left (or joins the next run, which then waits for it).
    ++working_helpers_;
    lock.unlock();
    work_on_current_job();
    lock.lock();
    if (--working_helpers_ == 0) done_.notify_all();
  }
}

void chunk_pool::run(std::int64_t count, std::int64_t chunk, const body_type& body) {
  if (count <= 0) return;
  if (chunk < 1) chunk = 1;
  std::int64_t chunks = (count + chunk - 1) / chunk;
  if (helpers_.empty() || chunks == 1) {
    for (std::int64_t index = 0; index < chunks; ++index)
      body(index, index * chunk, std::min(count, (index + 1) * chunk));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    body_ = &body;
    count_ = count;
    chunk_ = chunk;
    chunks_ = chunks;
    next_chunk_ = 0;
    ++generation_;
  }
  wake_.notify_all();
  work_on_current_job();
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return working_helpers_ == 0; });
}

}  // namespace melissa
