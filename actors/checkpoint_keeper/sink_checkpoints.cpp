#include "actors/checkpoint_keeper/sink_checkpoints.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <random>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "actors/checkpoint_keeper/checkpoint_files.hpp"
#include "actors/checkpoint_keeper/rank_commit.hpp"
#include "actors/checkpoint_keeper/server_restore.hpp"
#include "actors/checkpoint_keeper/state_files.hpp"

namespace melissa::checkpoint {

std::vector<checkpoint_part> sink_parts(sink_snapshot snapshot) {
  const std::string prefix = "rank-" + std::to_string(snapshot.rank) + "/";
  std::vector<checkpoint_part> parts;
  for (auto& [name, bytes] : snapshot.files)
    parts.push_back([path = prefix + name, bytes = bytes](staging& s) {
      file_writer out(s.prepare(path));
      out.write(bytes->data(), bytes->size());
      s.add(path, out.close());
    });
  parts.push_back([path = prefix + "received_steps.json",
                   text = step_log_to_json(snapshot.received)](staging& s) {
    file_writer out(s.prepare(path));
    out.write(text.data(), text.size());
    s.add(path, out.close());
  });
  if (snapshot.table) {
    auto table = std::move(*snapshot.table);
    const auto& sims = snapshot.received.simulations();
    for (std::size_t sim = 0; sim < table.states.size(); ++sim) {
      if (table.states[sim] != sim_state::complete) continue;
      const auto it = sims.find(static_cast<std::uint32_t>(sim));
      if (it == sims.end() || !it->second.done) table.states[sim] = sim_state::submitted;
    }
    parts.push_back([text = simulation_table_to_json(table)](staging& s) {
      file_writer out(s.prepare("study/simulation_table.json"));
      out.write(text.data(), text.size());
      s.add("study/simulation_table.json", out.close());
    });
  }
  return parts;
}

std::string read_sink_file(const std::string& dir, std::uint32_t rank, const std::string& name) {
  const auto path = dir + "/rank-" + std::to_string(rank) + "/" + name;
  try {
    return read_text(path);
  } catch (const std::exception& e) {
    const std::string why = e.what();
    throw std::runtime_error(why.find(path) != std::string::npos ? why : path + ": " + why);
  }
}

sink_checkpoints::sink_checkpoints(sink_checkpoint_settings settings, double now)
    : settings_(std::move(settings)),
      schedule_(settings_.every_units, settings_.every_seconds, settings_.start_units, now),
      last_taken_units_(settings_.start_units),
      figures_({{"dir", settings_.dir},
                {"unit", "steps folded"},
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
              [this](const write_result& r) { written(r); }) {
  if (settings_.ranks <= 1) return;
  if (leads()) {
    // Nothing of this run is in flight yet: what a stopped server left goes.
    remove_shared_leftovers(settings_.dir);
    char token[9];
    std::snprintf(token, sizeof token, "%08x", static_cast<unsigned>(std::random_device{}()));
    run_token_ = token;
  } else {
    for (const auto& r : posted_requests(settings_.dir)) answered_.insert(r.id);
  }
}

bool sink_checkpoints::at_unit(std::uint64_t units, double now,
                               const std::function<sink_snapshot()>& snapshot,
                               const std::string& asked,
                               std::function<void(const write_result&)> on_written) {
  if (!leads()) return false;  // several ranks: rank 0 decides (serve() answers it)
  if (stopped_ && asked.empty()) return false;
  const bool end = asked == "end_of_study";
  std::string reason = asked.empty() ? schedule_.due(units, now) : asked;
  if (end) {
    // Nothing new since the last one; with several ranks the others may have folded more.
    if (stopped_ || (units == last_taken_units_ && settings_.ranks <= 1)) return false;
    writer_.wait_idle();  // the last checkpoint is never refused
  }
  if (reason.empty()) return false;
  if (writer_.busy()) {
    std::lock_guard<std::mutex> lock(mutex_);
    figures_["refused_busy"] = figures_["refused_busy"].get<std::uint64_t>() + 1;
    return false;
  }
  std::string shared_id;
  if (settings_.ranks > 1) {
    shared_id = std::to_string(units) + "-" + std::to_string(++requests_posted_) + "-" + run_token_;
    try {
      post_request(settings_.dir, shared_id, reason);
    } catch (const std::exception& e) {
      spdlog::error("checkpoint after {} steps folded not taken: cannot ask the other ranks: {}",
                    units, e.what());
      std::lock_guard<std::mutex> lock(mutex_);
      figures_["failed"] = figures_["failed"].get<std::uint64_t>() + 1;
      return false;
    }
  }
  const bool taken = take(units, now, snapshot, reason, shared_id, std::move(on_written));
  if (taken && end) writer_.wait_idle();
  return taken;
}

std::string sink_checkpoints::requested() {
  if (leads() || settings_.ranks <= 1) return {};
  for (const auto& r : posted_requests(settings_.dir))
    if (!answered_.count(r.id)) return r.reason;
  return {};
}

std::string sink_checkpoints::serve(std::uint64_t units, double now,
                                    const std::function<sink_snapshot()>& snapshot,
                                    std::function<void(const write_result&)> on_written) {
  if (leads() || settings_.ranks <= 1 || writer_.busy()) return {};
  for (const auto& r : posted_requests(settings_.dir)) {
    if (answered_.count(r.id)) continue;
    answered_.insert(r.id);  // taken or failed: rank 0 hears of it either way
    if (!take(units, now, snapshot, r.reason, r.id, std::move(on_written))) return {};
    return r.reason;
  }
  return {};
}

void sink_checkpoints::ask(const std::string& reason) {
  if (leads()) return;
  try {
    post_ask(settings_.dir, settings_.rank, reason);
  } catch (const std::exception& e) {
    spdlog::error("cannot ask rank 0 for a checkpoint ({}): {}", reason, e.what());
  }
}

std::string sink_checkpoints::asked_by_others() {
  return leads() && settings_.ranks > 1 ? take_asks(settings_.dir) : std::string();
}

bool sink_checkpoints::take(std::uint64_t units, double now,
                            const std::function<sink_snapshot()>& snapshot, const std::string& reason,
                            const std::string& shared_id,
                            std::function<void(const write_result&)> on_written) {
  try {
    const auto t0 = std::chrono::steady_clock::now();
    // The table first: a simulation complete in it is done in the cut, or
    // sink_parts writes it submitted.
    std::optional<simulation_table_snapshot> table;
    if (settings_.table) table = settings_.table();
    auto snap = snapshot();
    snap.rank = settings_.rank;
    snap.table = std::move(table);
    const double pause =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    checkpoint_job job;
    job.header.study = settings_.study;
    job.header.batch = units;
    job.header.reason = reason;
    job.header.ranks = settings_.ranks;
    job.shared_id = shared_id;
    job.rank = settings_.rank;
    job.part_wait = settings_.part_wait;
    job.parts = sink_parts(std::move(snap));
    if (settings_.elapsed)
      job.parts.push_back([text = study_state_to_json(settings_.elapsed())](staging& s) {
        file_writer out(s.prepare("study/study_state.json"));
        out.write(text.data(), text.size());
        s.add("study/study_state.json", out.close());
      });
    {
      std::lock_guard<std::mutex> lock(mutex_);
      figures_["taken"] = figures_["taken"].get<std::uint64_t>() + 1;
      auto& p = figures_["pause_seconds"];
      p["total"] = p["total"].get<double>() + pause;
      p["max"] = std::max(p["max"].get<double>(), pause);
      p["last"] = pause;
      on_written_ = std::move(on_written);
    }
    schedule_.taken(units, now);
    if (reason == "sigterm" || reason == "launcher_lost") stopped_ = true;
    any_taken_ = true;
    last_taken_units_ = units;
    spdlog::info("checkpoint after {} steps folded ({}{}): the sink paused {:.3f} s", units, reason,
                 shared_id.empty() ? "" : ", with the other ranks", pause);
    writer_.submit(std::move(job));  // not busy: accepted
    return true;
  } catch (const std::exception& e) {
    spdlog::error("checkpoint after {} steps folded not taken: {}", units, e.what());
    std::lock_guard<std::mutex> lock(mutex_);
    figures_["failed"] = figures_["failed"].get<std::uint64_t>() + 1;
    return false;
  }
}

void sink_checkpoints::written(const write_result& r) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (on_written_) {
    on_written_(r);
    on_written_ = nullptr;
  }
  if (!r.ok) {
    spdlog::error("checkpoint after {} steps folded failed: {}", r.batch, r.error);
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

nlohmann::json sink_checkpoints::figures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return figures_;
}

}  // namespace melissa::checkpoint
