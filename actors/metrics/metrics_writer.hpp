// Scalar series of a training run (losses, learning rate, throughput...)
// written under <output>/metrics/ in two forms:
//   metrics.csv                          step,wall_time,<column>,...  one row per record,
//                                        an empty cell where a record lacks a column
//   events.out.tfevents.<time>.<host>    the same values as TensorBoard scalars
// Both are flushed after every record, so a live TensorBoard (or melissa-shell)
// follows the run. Shared by the online trainer and melissa-train-offline.
// Plain C++ (no CAF, no torch); record() may be called from several threads.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "actors/metrics/tfevents.hpp"

namespace melissa {

using metric_values = std::vector<std::pair<std::string, double>>;  // (column, value)

struct metrics_options {
  std::string csv_name = "metrics.csv";
  // Keep an existing CSV (a run resumed from a checkpoint) and add rows to it;
  // its header must be the same columns. Otherwise the CSV is replaced.
  bool append = false;
  // With append: rows with a larger step are dropped first. A server restored
  // from a checkpoint at this batch trains those batches again; the rows the
  // lost server wrote after its checkpoint would otherwise appear twice.
  // Negative: keep every row.
  std::int64_t keep_through_step = -1;
  bool tensorboard = true;  // also write a TensorBoard event file
};

class metrics_writer {
 public:
  // Creates <output_dir>/metrics/. `columns` are the value names, in CSV order
  // (they also serve as the TensorBoard tags, e.g. "loss/train").
  metrics_writer(const std::string& output_dir, std::vector<std::string> columns,
                 metrics_options options = {});
  ~metrics_writer();
  metrics_writer(const metrics_writer&) = delete;
  metrics_writer& operator=(const metrics_writer&) = delete;

  // One row at the current wall time. Every name must be one of the columns
  // (std::invalid_argument otherwise: a typo would silently lose a series).
  void record(std::int64_t step, const metric_values& values);
  // The same with an explicit wall time (seconds since the Unix epoch).
  void record(std::int64_t step, double wall_time, const metric_values& values);

  const std::vector<std::string>& columns() const { return columns_; }
  const std::string& directory() const { return dir_; }
  const std::string& csv_path() const { return csv_path_; }
  // Empty when options.tensorboard is false.
  std::string tfevents_path() const { return events_ ? events_->path() : std::string(); }

  // The CSV line for a record, without the newline (exposed for tests).
  static std::string csv_row(std::int64_t step, double wall_time,
                             const std::vector<std::string>& columns, const metric_values& values);
  static std::string csv_header(const std::vector<std::string>& columns);

 private:
  std::vector<std::string> columns_;
  std::string dir_, csv_path_;
  std::FILE* csv_ = nullptr;
  std::unique_ptr<tfevents::writer> events_;
  std::mutex mutex_;
};

}  // namespace melissa
