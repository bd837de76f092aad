// Epochs of shuffled batches from a dataset_reader, assembled ahead of the
// trainer by worker threads, for melissa-train-offline.
//
// Epoch e visits every sample exactly once in an order drawn from (seed, e);
// batch k of epoch e holds samples order[k*B, (k+1)*B) (the last one may be
// smaller), so a batch's contents depend only on the seed, never on the
// number of workers or on timing. Workers build at most `prefetch` batches
// beyond the one the consumer waits for, crossing epoch boundaries so the
// trainer never waits at the start of an epoch. Plain C++ (no CAF, no torch).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/trainer/dataset/dataset_reader.hpp"
#include "messages/training_batch.hpp"

namespace melissa {

struct shuffling_options {
  std::uint32_t batch_size = 10;   // > 0
  unsigned workers = 1;            // 0: next() builds each batch itself
  std::size_t prefetch = 4;        // batches built ahead of the consumer (>= 1)
  std::uint64_t seed = 0;
  std::uint64_t first_epoch = 0;   // a run resumed from a checkpoint continues its epochs
  bool drop_last = false;          // skip the last, smaller batch of an epoch
};

// The order in which epoch `epoch` visits samples 0..count-1: a Fisher-Yates
// shuffle driven by mt19937_64 (whose output the standard fixes), so the same
// seed gives the same order with any compiler.
std::vector<std::size_t> epoch_order(std::size_t count, std::uint64_t seed, std::uint64_t epoch);

class shuffling_loader {
 public:
  shuffling_loader(std::shared_ptr<const dataset_reader> reader, shuffling_options options = {});
  ~shuffling_loader();  // stops and joins the workers
  shuffling_loader(const shuffling_loader&) = delete;
  shuffling_loader& operator=(const shuffling_loader&) = delete;

  // The next batch of the current epoch, or nullptr once the epoch is over;
  // the call after a nullptr starts the next epoch. Rethrows a worker's error.
  // One consumer thread.
  training_batch_ptr next();

  std::uint64_t epoch() const { return epoch_; }  // the epoch next() is in
  std::size_t batches_per_epoch() const { return batches_per_epoch_; }
  const dataset_reader& reader() const { return *reader_; }

 private:
  struct built {
    training_batch_ptr batch;
    std::exception_ptr error;
  };
  training_batch_ptr build(std::uint64_t task);
  void work();
  std::shared_ptr<const std::vector<std::size_t>> order_of(std::uint64_t epoch);

  std::shared_ptr<const dataset_reader> reader_;
  shuffling_options options_;
  std::size_t batches_per_epoch_ = 0;
  std::uint64_t epoch_ = 0;
  std::size_t batch_in_epoch_ = 0;

  // Tasks are numbered across epochs: task t = batch t % batches_per_epoch_
  // of epoch first_epoch + t / batches_per_epoch_.
  std::mutex mutex_;
  std::condition_variable ready_cv_, space_cv_;
  std::uint64_t next_task_ = 0;    // the next task a worker claims
  std::uint64_t consumed_ = 0;     // the task next() returns next
  std::map<std::uint64_t, built> ready_;
  bool stopping_ = false;

  // Shuffled orders of the epochs being built, computed once per epoch.
  std::mutex order_mutex_;
  std::map<std::uint64_t, std::shared_ptr<const std::vector<std::size_t>>> orders_;
  std::atomic<std::uint64_t> consumed_epoch_{0};  // epoch of task consumed_, counted from first_epoch
  std::vector<std::thread> workers_;
};

}  // namespace melissa
