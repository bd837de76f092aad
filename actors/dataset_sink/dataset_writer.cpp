#include "actors/dataset_sink/dataset_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "messages/npy.hpp"

namespace melissa {
namespace {

// Room for the final header whatever the shape, so rows never move.
constexpr std::size_t header_bytes = 128;

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
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

}  // namespace

dataset_writer::dataset_writer(std::string dir, std::vector<std::string> field_names,
                               std::vector<std::vector<double>> parameters)
    : dir_(std::move(dir)), field_names_(std::move(field_names)), parameters_(std::move(parameters)) {
  std::filesystem::create_directories(dir_);
}

dataset_writer::~dataset_writer() {
  // Files of simulations that never ended cleanly still get valid headers.
  try {
    finish_all();
  } catch (const std::exception&) {
    for (auto& [key, f] : open_) ::close(f.fd);
  }
}

std::string dataset_writer::sim_dir_name(std::uint32_t sim) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "sim_%06u", sim);
  return buf;
}

dataset_writer::open_file& dataset_writer::file_for(std::uint32_t sim, std::uint32_t field,
                                                    std::uint64_t count) {
  auto it = open_.find({sim, field});
  if (it != open_.end()) return it->second;
  const auto sim_dir = dir_ + "/" + sim_dir_name(sim);
  std::filesystem::create_directories(sim_dir);
  const auto path = sim_dir + "/" + field_names_.at(field) + ".npy";
  open_file f;
  f.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (f.fd < 0) fail("cannot create", path);
  f.count = count;
  return open_.emplace(std::make_pair(sim, field), f).first->second;
}

void dataset_writer::write_step(std::uint32_t sim, std::uint32_t field, std::uint32_t step,
                                const float* values, std::uint64_t count) {
  auto& f = file_for(sim, field, count);
  const auto row_bytes = f.count * sizeof(float);
  pwrite_all(f.fd, values, row_bytes, static_cast<off_t>(header_bytes + step * row_bytes),
             field_names_.at(field));
  if (step + 1 > f.rows) f.rows = step + 1;
}

void dataset_writer::finish(std::uint32_t sim) {
  for (auto it = open_.begin(); it != open_.end();) {
    if (it->first.first != sim) {
      ++it;
      continue;
    }
    auto& f = it->second;
    const auto h = npy::header("<f4", {f.rows, f.count}, header_bytes);
    pwrite_all(f.fd, h.data(), h.size(), 0, field_names_.at(it->first.second));
    ::close(f.fd);
    it = open_.erase(it);
  }
  const auto sim_dir = dir_ + "/" + sim_dir_name(sim);
  std::filesystem::create_directories(sim_dir);
  if (sim < parameters_.size()) {
    const auto& p = parameters_[sim];
    npy::save(sim_dir + "/parameters.npy", p.data(), {p.size()});
  }
  ++finished_;
}

std::vector<std::uint32_t> dataset_writer::finish_all() {
  std::vector<std::uint32_t> sims;
  for (const auto& [key, f] : open_)
    if (sims.empty() || sims.back() != key.first) sims.push_back(key.first);
  for (auto sim : sims) finish(sim);
  return sims;
}

}  // namespace melissa
