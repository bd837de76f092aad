#include "actors/metrics/metrics_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace melissa {
namespace {

// RFC 4180: a name with a comma, quote or newline is quoted, quotes doubled.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// Shortest text that reads back as the same double ("0.1", not
// "0.100000001"), positional unless the exponent is < -4 or >= 16, as
// Python's repr ("0.0005", "1e-07").
std::string shortest(double v) {
  char buf[64];
  const auto sci = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string s(buf, sci.ptr);
  const auto e_at = s.find('e');
  if (e_at == std::string::npos) return s;  // inf, nan
  const int exponent = std::stoi(s.substr(e_at + 1));
  if (exponent < -4 || exponent >= 16) return s;
  int digits = 0;  // significant digits of the shortest form
  for (std::size_t i = 0; i < e_at; ++i) digits += s[i] >= '0' && s[i] <= '9';
  const auto fixed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed,
                                   std::max(0, digits - 1 - exponent));
  return std::string(buf, fixed.ptr);
}

std::string fixed_milliseconds(double seconds) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, seconds, std::chars_format::fixed, 3);
  return std::string(buf, r.ptr);
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The cell index of each value; throws on a name that is not a column.
std::vector<std::size_t> column_indices(const std::vector<std::string>& columns,
                                        const metric_values& values) {
  std::vector<std::size_t> at;
  std::vector<bool> used(columns.size(), false);
  for (const auto& [name, value] : values) {
    std::size_t i = 0;
    while (i < columns.size() && columns[i] != name) ++i;
    if (i == columns.size()) throw std::invalid_argument("metrics: '" + name + "' is not a column");
    if (used[i]) throw std::invalid_argument("metrics: '" + name + "' given twice in one record");
    used[i] = true;
    at.push_back(i);
  }
  return at;
}

}  // namespace

std::string metrics_writer::csv_header(const std::vector<std::string>& columns) {
  std::string line = "step,wall_time";
  for (const auto& c : columns) line += "," + csv_field(c);
  return line;
}

std::string metrics_writer::csv_row(std::int64_t step, double wall_time,
                                    const std::vector<std::string>& columns,
                                    const metric_values& values) {
  const auto at = column_indices(columns, values);
  std::vector<std::string> cells(columns.size());
  for (std::size_t k = 0; k < values.size(); ++k) cells[at[k]] = shortest(values[k].second);
  std::string line = std::to_string(step) + "," + fixed_milliseconds(wall_time);
  for (const auto& c : cells) line += "," + c;
  return line;
}

metrics_writer::metrics_writer(const std::string& output_dir, std::vector<std::string> columns,
                               metrics_options options)
    : columns_(std::move(columns)), dir_(output_dir + "/metrics") {
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i] == "step" || columns_[i] == "wall_time")
      throw std::invalid_argument("metrics: '" + columns_[i] + "' is a reserved column name");
    for (std::size_t j = 0; j < i; ++j)
      if (columns_[i] == columns_[j])
        throw std::invalid_argument("metrics: column '" + columns_[i] + "' given twice");
  }
  std::filesystem::create_directories(dir_);
  csv_path_ = dir_ + "/" + options.csv_name;
  const auto header = csv_header(columns_);

  bool write_header = true;
  if (options.append && std::filesystem::exists(csv_path_) &&
      std::filesystem::file_size(csv_path_) > 0) {
    std::ifstream in(csv_path_);
    std::string existing;
    std::getline(in, existing);
    if (existing != header)
      throw std::runtime_error("metrics: " + csv_path_ + " has columns '" + existing +
                               "', this run writes '" + header + "'");
    write_header = false;
    if (options.keep_through_step >= 0) {
      // Rewritten through a temporary file and a rename: a crash here leaves
      // the old rows or the kept ones, never a half-written file.
      std::string kept = existing + "\n", line;
      while (std::getline(in, line)) {
        std::int64_t step = 0;
        const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), step);
        if (ec == std::errc() && step > options.keep_through_step) continue;
        if (!line.empty()) kept += line + "\n";
      }
      in.close();
      const auto tmp = csv_path_ + ".tmp";
      {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << kept;
        if (!out.flush())
          throw std::runtime_error("metrics: cannot write " + tmp + ": " + std::strerror(errno));
      }
      std::filesystem::rename(tmp, csv_path_);
    }
  }
  csv_ = std::fopen(csv_path_.c_str(), options.append ? "ab" : "wb");
  if (!csv_) throw std::runtime_error("metrics: cannot create " + csv_path_ + ": " + std::strerror(errno));
  if (write_header) {
    const auto line = header + "\n";
    if (std::fwrite(line.data(), 1, line.size(), csv_) != line.size() || std::fflush(csv_) != 0) {
      std::fclose(csv_);
      throw std::runtime_error("metrics: cannot write " + csv_path_);
    }
  }
  if (options.tensorboard) {
    try {
      events_ = std::make_unique<tfevents::writer>(dir_);
    } catch (...) {
      std::fclose(csv_);
      throw;
    }
  }
}

metrics_writer::~metrics_writer() {
  if (csv_) std::fclose(csv_);
}

void metrics_writer::record(std::int64_t step, const metric_values& values) {
  record(step, now_seconds(), values);
}

void metrics_writer::record(std::int64_t step, double wall_time, const metric_values& values) {
  const auto line = csv_row(step, wall_time, columns_, values) + "\n";  // validates the names
  tfevents::scalars scalars;
  scalars.reserve(values.size());
  for (const auto& [name, value] : values) scalars.emplace_back(name, static_cast<float>(value));

  std::lock_guard<std::mutex> lock(mutex_);
  if (std::fwrite(line.data(), 1, line.size(), csv_) != line.size() || std::fflush(csv_) != 0)
    throw std::runtime_error("metrics: cannot write " + csv_path_ + ": " + std::strerror(errno));
  if (events_) events_->add_scalars(step, wall_time, scalars);
}

}  // namespace melissa
