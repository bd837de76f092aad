#include "actors/trainer/dataset/shuffling_loader.hpp"

#include <algorithm>
#include <random>
#include <stdexcept>

namespace melissa {

std::vector<std::size_t> epoch_order(std::size_t count, std::uint64_t seed, std::uint64_t epoch) {
  std::seed_seq seq{std::uint32_t(seed), std::uint32_t(seed >> 32), std::uint32_t(epoch),
                    std::uint32_t(epoch >> 32)};
  std::mt19937_64 random(seq);
  std::vector<std::size_t> order(count);
  for (std::size_t i = 0; i < count; ++i) order[i] = i;
  // uniform_int_distribution differs between standard libraries; a 64x64->128
  // multiply maps a draw to [0, i] the same way everywhere (bias < 2^-40).
  for (std::size_t i = count; i > 1; --i) {
    const auto j = static_cast<std::size_t>((static_cast<unsigned __int128>(random()) * i) >> 64);
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

shuffling_loader::shuffling_loader(std::shared_ptr<const dataset_reader> reader,
                                   shuffling_options options)
    : reader_(std::move(reader)), options_(options), epoch_(options.first_epoch) {
  if (!reader_) throw std::invalid_argument("shuffling_loader: no dataset");
  if (options_.batch_size == 0) throw std::invalid_argument("shuffling_loader: batch size 0");
  if (options_.prefetch == 0) options_.prefetch = 1;
  const std::size_t n = reader_->size();
  batches_per_epoch_ = options_.drop_last ? n / options_.batch_size
                                          : (n + options_.batch_size - 1) / options_.batch_size;
  if (batches_per_epoch_ == 0)
    throw std::invalid_argument("shuffling_loader: " + std::to_string(n) +
                                " samples make no whole batch of " +
                                std::to_string(options_.batch_size));
  for (unsigned i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { work(); });
}

shuffling_loader::~shuffling_loader() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  space_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

std::shared_ptr<const std::vector<std::size_t>> shuffling_loader::order_of(std::uint64_t epoch) {
  std::lock_guard<std::mutex> lock(order_mutex_);
  auto it = orders_.find(epoch);
  if (it != orders_.end()) return it->second;
  // Epochs before the consumer's are done with (a worker still building one
  // holds its own reference).
  const std::uint64_t oldest_needed = options_.first_epoch + consumed_epoch_.load();
  for (auto old = orders_.begin(); old != orders_.end() && old->first < oldest_needed;)
    old = orders_.erase(old);
  auto order = std::make_shared<const std::vector<std::size_t>>(
      epoch_order(reader_->size(), options_.seed, epoch));
  orders_.emplace(epoch, order);
  return order;
}

training_batch_ptr shuffling_loader::build(std::uint64_t task) {
  const std::uint64_t epoch = options_.first_epoch + task / batches_per_epoch_;
  const std::size_t k = static_cast<std::size_t>(task % batches_per_epoch_);
  const auto order = order_of(epoch);
  const std::size_t begin = k * options_.batch_size;
  const std::size_t end = std::min(begin + options_.batch_size, order->size());
  auto batch = std::make_shared<training_batch>();
  reader_->fill(order->data() + begin, end - begin, *batch);
  return batch;
}

void shuffling_loader::work() {
  for (;;) {
    std::uint64_t task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      space_cv_.wait(lock, [&] { return stopping_ || next_task_ < consumed_ + options_.prefetch; });
      if (stopping_) return;
      task = next_task_++;
    }
    built b;
    try {
      b.batch = build(task);
    } catch (...) {
      b.error = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.emplace(task, std::move(b));
    }
    ready_cv_.notify_all();
  }
}

training_batch_ptr shuffling_loader::next() {
  if (batch_in_epoch_ == batches_per_epoch_) {
    ++epoch_;
    batch_in_epoch_ = 0;
    return nullptr;
  }
  built b;
  if (workers_.empty()) {
    b.batch = build(consumed_);
    ++consumed_;
  } else {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      const std::uint64_t task = consumed_;
      ready_cv_.wait(lock, [&] { return ready_.count(task) > 0; });
      auto node = ready_.extract(task);
      b = std::move(node.mapped());
      ++consumed_;
    }
    space_cv_.notify_all();
  }
  ++batch_in_epoch_;
  consumed_epoch_.store(consumed_ / batches_per_epoch_);
  if (b.error) std::rethrow_exception(b.error);
  return b.batch;
}

}  // namespace melissa
