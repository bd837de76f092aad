// Runs a loop over [0, count) in chunks on the calling thread and a few
// helper threads. Chunks are claimed one at a time from a shared counter, so
// a helper that the OS has descheduled (a busy node: CAF threads, clients,
// other ranks) delays nothing: the others take its share. Helpers sleep
// between calls instead of spinning; an OpenMP team (torch's intra-op pool)
// spins at its barriers and, on an oversubscribed node, measured 3-10x
// slower steps here.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace melissa {

class chunk_pool {
 public:
  // `threads` in all, the caller included (1 or less: no helpers).
  explicit chunk_pool(int threads);
  ~chunk_pool();
  chunk_pool(const chunk_pool&) = delete;
  chunk_pool& operator=(const chunk_pool&) = delete;

  int threads() const { return static_cast<int>(helpers_.size()) + 1; }

  // body(chunk_index, begin, end) for every chunk [begin, end) of `chunk`
  // items (the last may be shorter); chunk_index = begin / chunk. Returns when
  // all chunks are done. Not reentrant; one caller at a time. The body must
  // not throw (it may run on a helper thread).
  using body_type = std::function<void(std::int64_t, std::int64_t, std::int64_t)>;
  void run(std::int64_t count, std::int64_t chunk, const body_type& body);

 private:
  void helper_loop();
  void work_on_current_job();

  std::vector<std::thread> helpers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  bool stopping_ = false;
  std::uint64_t generation_ = 0;  // one per run(): wakes the helpers
  int working_helpers_ = 0;
  // The current job; read under mutex_ by a helper before it starts.
  const body_type* body_ = nullptr;
  std::int64_t count_ = 0, chunk_ = 1, chunks_ = 0;
  std::int64_t next_chunk_ = 0;  // guarded by mutex_ too: a chunk is long
};

}  // namespace melissa
