// TensorBoard event files ("tfevents"), written by hand: a few protobuf fields
// and TensorFlow's record framing, so the project needs neither protobuf nor
// TensorFlow. Plain C++.
//
// Record framing:  uint64 length (LE) | uint32 masked CRC-32C of those 8 bytes
//                  | data | uint32 masked CRC-32C of the data.
// Data: a serialized tensorflow.Event. Fields used here:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }
//   Value   { string tag = 1; float simple_value = 2; }
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace melissa::tfevents {

using scalars = std::vector<std::pair<std::string, float>>;  // (tag, value)

// The Event every event file starts with: wall time and "brain.Event:2".
std::string file_version_event(double wall_time);
// An Event holding one scalar summary value per (tag, value).
std::string scalar_event(double wall_time, std::int64_t step, const scalars& values);
// `data` framed as one record (length, CRCs).
std::string record(const std::string& data);

// "events.out.tfevents.<unix time>.<hostname>", the name TensorBoard looks for.
std::string file_name(std::int64_t unix_time, const std::string& hostname);

// One event file in `dir` (created if missing). The file is new: if the name
// is taken (two writers in the same second), ".1", ".2", ... is appended,
// which TensorBoard still reads. Every record is flushed as it is written so a
// live TensorBoard sees it. Not thread-safe.
class writer {
 public:
  explicit writer(const std::string& dir);
  ~writer();
  writer(const writer&) = delete;
  writer& operator=(const writer&) = delete;

  void add_scalars(std::int64_t step, double wall_time, const scalars& values);
  const std::string& path() const { return path_; }

 private:
  void write(const std::string& data);
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace melissa::tfevents
