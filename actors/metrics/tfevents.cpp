#include "actors/metrics/tfevents.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <type_traits>

#include "actors/metrics/crc32c.hpp"

namespace melissa::tfevents {
namespace {

// Protobuf wire types.
constexpr unsigned varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void put_key(std::string& out, unsigned field, unsigned wire_type) {
  put_varint(out, (field << 3) | wire_type);
}

template <class T>
void put_little_endian(std::string& out, T value) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8);
  using bits_t = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  bits_t bits;
  std::memcpy(&bits, &value, sizeof(T));  // floats: their IEEE-754 bits
  for (std::size_t i = 0; i < sizeof(T); ++i) out += static_cast<char>((bits >> (8 * i)) & 0xff);
}

void put_bytes(std::string& out, unsigned field, const std::string& bytes) {
  put_key(out, field, length_delimited);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_wall_time(std::string& out, double wall_time) {
  put_key(out, 1, fixed64);
  put_little_endian(out, wall_time);
}

std::string hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

std::string file_version_event(double wall_time) {
  std::string event;
  put_wall_time(event, wall_time);
  put_bytes(event, 3, "brain.Event:2");
  return event;
}

std::string scalar_event(double wall_time, std::int64_t step, const scalars& values) {
  std::string summary;
  for (const auto& [tag, value] : values) {
    std::string v;
    put_bytes(v, 1, tag);
    put_key(v, 2, fixed32);
    put_little_endian(v, value);
    put_bytes(summary, 1, v);
  }
  std::string event;
  put_wall_time(event, wall_time);
  put_key(event, 2, varint);
  put_varint(event, static_cast<std::uint64_t>(step));  // int64: negatives take 10 bytes
  put_bytes(event, 5, summary);
  return event;
}

std::string record(const std::string& data) {
  std::string out;
  const std::uint64_t length = data.size();
  put_little_endian(out, length);
  put_little_endian(out, mask_crc32c(crc32c(out.data(), 8)));
  out += data;
  put_little_endian(out, mask_crc32c(crc32c(data.data(), data.size())));
  return out;
}

std::string file_name(std::int64_t unix_time, const std::string& hostname) {
  return "events.out.tfevents." + std::to_string(unix_time) + "." + hostname;
}

writer::writer(const std::string& dir) {
  std::filesystem::create_directories(dir);
  const auto now = std::chrono::system_clock::now();
  const double wall_time = std::chrono::duration<double>(now.time_since_epoch()).count();
  const auto base = dir + "/" + file_name(static_cast<std::int64_t>(wall_time), hostname());
  // O_EXCL: never append to another writer's file.
  for (int attempt = 0; !file_; ++attempt) {
    path_ = attempt == 0 ? base : base + "." + std::to_string(attempt);
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      file_ = ::fdopen(fd, "wb");
      if (!file_) ::close(fd);
    }
    if (!file_ && (errno != EEXIST || attempt > 1000))
      throw std::runtime_error("metrics: cannot create " + path_ + ": " + std::strerror(errno));
  }
  write(file_version_event(wall_time));
}

writer::~writer() {
  if (file_) std::fclose(file_);
}

void writer::add_scalars(std::int64_t step, double wall_time, const scalars& values) {
  write(scalar_event(wall_time, step, values));
}

void writer::write(const std::string& data) {
  const auto r = record(data);
  if (std::fwrite(r.data(), 1, r.size(), file_) != r.size() || std::fflush(file_) != 0)
    throw std::runtime_error("metrics: cannot write " + path_ + ": " + std::strerror(errno));
}

}  // namespace melissa::tfevents
