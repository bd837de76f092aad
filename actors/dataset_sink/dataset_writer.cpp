#include "actors/dataset_sink/dataset_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "messages/atomic_file.hpp"
#include "messages/npy.hpp"

namespace melissa {
namespace {

// Room for the final header whatever the shape, so rows never move.
constexpr std::size_t header_bytes = 128;

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::system_error(errno, std::generic_category(), what + " " + path);
}

void pwrite_all(int fd, const void* data, std::size_t n, off_t at, const std::string& path) {
  auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const auto w = ::pwrite(fd, p, n, at);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", path);
    }
    p += w;
    n -= static_cast<std::size_t>(w);
    at += w;
  }
}

void create_directories(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::system_error(ec, "cannot create the directory " + dir);
}

}  // namespace

dataset_writer::dataset_writer(std::string dir, std::vector<std::string> field_names,
                               std::vector<std::vector<double>> parameters)
    : dir_(std::move(dir)), field_names_(std::move(field_names)), parameters_(std::move(parameters)) {
  create_directories(dir_);
}

dataset_writer::~dataset_writer() {
  try {
    close_unfinished();
  } catch (const std::exception&) {
    for (auto& [key, f] : open_) ::close(f.fd);
  }
}

std::string dataset_writer::sim_dir_name(std::uint32_t sim) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "sim_%06u", sim);
  return buf;
}

std::string dataset_writer::path_of(std::uint32_t sim, std::uint32_t field) const {
  return dir_ + "/" + sim_dir_name(sim) + "/" + field_names_.at(field) + ".npy";
}

dataset_writer::open_file& dataset_writer::file_for(std::uint32_t sim, std::uint32_t field,
                                                    std::uint64_t count) {
  auto it = open_.find({sim, field});
  if (it != open_.end()) return it->second;
  create_directories(dir_ + "/" + sim_dir_name(sim));
  // Only the .part file is ever truncated: a leftover of an earlier run that
  // never finished. The final name is only reached by rename in finish().
  const auto path = path_of(sim, field) + ".part";
  open_file f;
  f.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (f.fd < 0) fail("cannot create", path);
  f.count = count;
  return open_.emplace(std::make_pair(sim, field), f).first->second;
}

bool dataset_writer::write_step(std::uint32_t sim, std::uint32_t field, std::uint32_t step,
                                const float* values, std::uint64_t count) {
  if (finished_sims_.count(sim)) {
    ++steps_after_finish_;
    return false;
  }
  auto& f = file_for(sim, field, count);
  const auto row_bytes = f.count * sizeof(float);
  pwrite_all(f.fd, values, row_bytes, static_cast<off_t>(header_bytes + step * row_bytes),
             path_of(sim, field) + ".part");
  if (step >= f.have.size()) f.have.resize(step + 1, false);
  f.have[step] = true;
  return true;
}

void dataset_writer::seal(std::uint32_t sim, std::uint32_t field, open_file& f) {
  const auto path = path_of(sim, field) + ".part";
  // Rows past a missing step are not counted (their gap would read as zeros):
  // the header never claims a row that was not written.
  std::uint64_t rows = 0;
  while (rows < f.have.size() && f.have[rows]) ++rows;
  const auto h = npy::header("<f4", {rows, f.count}, header_bytes);
  pwrite_all(f.fd, h.data(), h.size(), 0, path);
  if (::ftruncate(f.fd, static_cast<off_t>(header_bytes + rows * f.count * sizeof(float))) != 0)
    fail("cannot truncate", path);
  if (::fsync(f.fd) != 0) fail("cannot sync", path);
  const int fd = f.fd;
  f.fd = -1;
  if (::close(fd) != 0) fail("cannot close", path);
}

void dataset_writer::finish(std::uint32_t sim) {
  if (finished_sims_.count(sim)) return;
  for (auto it = open_.begin(); it != open_.end();) {
    if (it->first.first != sim) {
      ++it;
      continue;
    }
    const auto field = it->first.second;
    seal(sim, field, it->second);
    it = open_.erase(it);
    const auto path = path_of(sim, field);
    if (::rename((path + ".part").c_str(), path.c_str()) != 0)
      fail("cannot rename " + path + ".part to", path);
  }
  const auto sim_dir = dir_ + "/" + sim_dir_name(sim);
  create_directories(sim_dir);
  if (sim < parameters_.size()) {
    const auto& p = parameters_[sim];
    const auto header = npy::header("<f8", {p.size()});
    std::string bytes = header;
    bytes.append(reinterpret_cast<const char*>(p.data()), p.size() * sizeof(double));
    write_file_atomically(sim_dir + "/parameters.npy", bytes);  // also syncs the renames above
  }
  finished_sims_.insert(sim);
}

void dataset_writer::mark_finished(const std::vector<std::uint32_t>& sims) {
  finished_sims_.insert(sims.begin(), sims.end());
}

std::vector<std::uint32_t> dataset_writer::close_unfinished() {
  std::vector<std::uint32_t> sims;
  for (auto it = open_.begin(); it != open_.end(); it = open_.erase(it)) {
    if (sims.empty() || sims.back() != it->first.first) sims.push_back(it->first.first);
    seal(it->first.first, it->first.second, it->second);
  }
  return sims;
}

namespace {

// Whether `path` is a complete npy of `descr` with this shape (and, when
// `expected` is given, exactly these float64 values).
bool npy_matches(const std::string& path, const char* descr, const std::vector<std::size_t>& shape,
                 std::size_t item, const std::vector<double>* expected) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return false;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  bool ok = false;
  try {
    const auto h = npy::read_header(f, path);
    ok = h.descr == descr && !h.fortran_order && h.shape == shape &&
         size == h.data_offset + h.count() * item;
    if (ok && expected) {
      std::vector<double> values(h.count());
      ok = std::fread(values.data(), sizeof(double), values.size(), f) == values.size() &&
           std::equal(values.begin(), values.end(), expected->begin(), expected->end(),
                      [](double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; });
    }
  } catch (const std::exception&) {
    ok = false;
  }
  std::fclose(f);
  return ok;
}

}  // namespace

std::vector<std::uint32_t> complete_simulations(const std::string& dir,
                                                const std::vector<std::string>& field_names,
                                                const std::vector<std::uint64_t>& field_sizes,
                                                std::uint32_t steps,
                                                const std::vector<std::vector<double>>& parameters) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t sim = 0; sim < parameters.size(); ++sim) {
    const auto sim_dir = dir + "/" + dataset_writer::sim_dir_name(sim);
    std::error_code ec;
    if (!std::filesystem::is_directory(sim_dir, ec)) continue;
    const auto& p = parameters[sim];
    if (!npy_matches(sim_dir + "/parameters.npy", "<f8", {p.size()}, sizeof(double), &p)) continue;
    bool complete = true;
    for (std::size_t f = 0; f < field_names.size() && complete; ++f)
      complete = npy_matches(sim_dir + "/" + field_names[f] + ".npy", "<f4",
                             {steps, static_cast<std::size_t>(field_sizes.at(f))}, sizeof(float),
                             nullptr);
    if (complete) out.push_back(sim);
  }
  return out;
}

}  // namespace melissa
