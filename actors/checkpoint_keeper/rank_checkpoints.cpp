#include "actors/checkpoint_keeper/rank_checkpoints.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <utility>

#include <spdlog/spdlog.h>

#include "actors/checkpoint_keeper/buffer_file.hpp"

namespace melissa::checkpoint {

std::future<buffer_cut> buffer_handoff::request() {
  std::lock_guard<std::mutex> lock(mutex_);
  armed_.emplace();
  return armed_->get_future();
}

void buffer_handoff::offer(const std::function<buffer_snapshot()>& snapshot,
                           const step_log& received, bool production_over) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (production_over) final_ = received;
  if (!armed_) return;
  try {
    buffer_cut cut;
    if (with_samples_ && snapshot) cut.buffer = snapshot();
    cut.received = received;
    armed_->set_value(std::move(cut));
  } catch (...) {
    armed_->set_exception(std::current_exception());
  }
  armed_.reset();
}

std::optional<step_log> buffer_handoff::final_received() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return final_;
}

rank_checkpoints::rank_checkpoints(rank_checkpoint_settings settings, double now)
    : settings_(std::move(settings)),
      handoff_(std::make_shared<buffer_handoff>(settings_.buffer)),
      schedule_(settings_.every_batches, settings_.every_seconds, settings_.start_batch, now),
      figures_({{"dir", settings_.dir},
                {"taken", 0},
                {"written", 0},
                {"failed", 0},
                {"refused_busy", 0},
                {"last_batch", nullptr},
                {"last_path", nullptr},
                {"last_bytes", 0},
                {"last_write_seconds", 0.0},
                {"pause_seconds", {{"total", 0.0}, {"max", 0.0}, {"last", 0.0}}}}),
      writer_(settings_.dir, std::max<std::uint32_t>(settings_.keep, 1),
              [this](const write_result& r) { written(r); }) {}

bool rank_checkpoints::at_step_boundary(std::uint64_t batch, double now, bool end,
                                        const std::function<rank_snapshot()>& snapshot,
                                        const std::string& asked,
                                        std::function<void(const write_result&)> on_written) {
  // After a checkpoint the server stops on, none follows: a newer one would
  // prune the one reported (the trainer goes on until the process ends).
  if (stopped_ && asked.empty()) return false;
  std::string reason = asked.empty() ? schedule_.due(batch, now) : asked;
  if (end) {
    if (any_taken_ && last_taken_batch_ == batch) return false;  // nothing new since
    reason = "end_of_training";
    writer_.wait_idle();  // the last checkpoint is never refused
  }
  if (reason.empty()) return false;
  if (writer_.busy()) {
    // The previous one is still being written: try again at the next step.
    std::lock_guard<std::mutex> lock(mutex_);
    figures_["refused_busy"] = figures_["refused_busy"].get<std::uint64_t>() + 1;
    return false;
  }
  try {
    const auto t0 = std::chrono::steady_clock::now();
    auto snap = snapshot();
    if (settings_.table) snap.table = settings_.table();
    std::vector<checkpoint_part> extras;
    if (settings_.extras) extras = settings_.extras(batch);
    const double pause =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    checkpoint_job job;
    job.header.study = settings_.study;
    job.header.batch = batch;
    job.header.reason = reason;
    job.header.ranks = settings_.ranks;
    if (end) {
      // The buffer is drained; its final received steps (production is over).
      if (auto final = handoff_->final_received()) snap.received = std::move(*final);
      job.parts = rank_parts(std::move(snap));
    } else {
      // The received steps (and rank 0's table, checked against them) come
      // with the buffer's cut, at the trainer's next batch request.
      auto table = std::move(snap.table);
      snap.table.reset();
      snap.with_received = false;
      job.parts = rank_parts(std::move(snap));
      auto future = std::make_shared<std::future<buffer_cut>>(handoff_->request());
      job.parts.push_back([rank = settings_.rank, future, table = std::move(table)](staging& s) {
        if (future->wait_for(std::chrono::seconds(120)) != std::future_status::ready)
          throw std::runtime_error("the training buffer did not hand its snapshot over in 120 s");
        auto cut = future->get();
        rank_snapshot part;
        part.rank = rank;
        part.buffer = std::move(cut.buffer);
        part.received = std::move(cut.received);
        part.table = table;
        for (auto& write : rank_parts(std::move(part))) write(s);
      });
    }
    for (auto& part : extras) job.parts.push_back(std::move(part));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      figures_["taken"] = figures_["taken"].get<std::uint64_t>() + 1;
      auto& p = figures_["pause_seconds"];
      p["total"] = p["total"].get<double>() + pause;
      p["max"] = std::max(p["max"].get<double>(), pause);
      p["last"] = pause;
      new_pauses_ = new_pauses_.value_or(0.0) + pause;
    }
    schedule_.taken(batch, now);
    if (reason == "sigterm" || reason == "launcher_lost") stopped_ = true;
    any_taken_ = true;
    last_taken_batch_ = batch;
    spdlog::info("checkpoint at batch {} ({}): the trainer paused {:.3f} s", batch, reason, pause);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      on_written_ = std::move(on_written);
    }
    writer_.submit(std::move(job));  // not busy: accepted
    if (end) writer_.wait_idle();
    return true;
  } catch (const std::exception& e) {
    spdlog::error("checkpoint at batch {} not taken: {}", batch, e.what());
    std::lock_guard<std::mutex> lock(mutex_);
    figures_["failed"] = figures_["failed"].get<std::uint64_t>() + 1;
    return false;
  }
}

void rank_checkpoints::written(const write_result& r) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (on_written_) {
    on_written_(r);
    on_written_ = nullptr;
  }
  if (!r.ok) {
    spdlog::error("checkpoint at batch {} failed: {}", r.batch, r.error);
    figures_["failed"] = figures_["failed"].get<std::uint64_t>() + 1;
    return;
  }
  spdlog::info("checkpoint {} written: {} bytes in {:.3f} s", r.path, r.bytes, r.seconds);
  figures_["written"] = figures_["written"].get<std::uint64_t>() + 1;
  figures_["last_batch"] = r.batch;
  figures_["last_path"] = r.path;
  figures_["last_bytes"] = r.bytes;
  figures_["last_write_seconds"] = r.seconds;
}

std::optional<double> rank_checkpoints::take_pauses() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::exchange(new_pauses_, std::nullopt);
}

nlohmann::json rank_checkpoints::figures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return figures_;
}

}  // namespace melissa::checkpoint
