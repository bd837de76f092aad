#include "actors/checkpoint_keeper/checkpoint_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <xxhash.h>

namespace melissa::checkpoint {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err) {
  throw std::system_error(err, std::generic_category(), what + " " + path);
}

}  // namespace

struct file_writer::hash_state {
  XXH3_state_t* state = XXH3_createState();
  ~hash_state() { XXH3_freeState(state); }
};

file_writer::file_writer(std::string path, std::size_t buffer_bytes)
    : path_(std::move(path)),
      hash_(std::make_unique<hash_state>()),
      buffer_(new char[buffer_bytes]),
      capacity_(buffer_bytes) {
  if (!hash_->state) throw std::bad_alloc();
  XXH3_64bits_reset(hash_->state);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create", path_, errno);
}

file_writer::~file_writer() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

void file_writer::write(const void* data, std::size_t bytes) {
  if (fd_ < 0) throw std::logic_error("checkpoint file " + path_ + " written after close");
  XXH3_64bits_update(hash_->state, data, bytes);
  written_ += bytes;
  const char* p = static_cast<const char*>(data);
  // Large pieces skip the buffer: one copy less for a buffer's samples.
  if (bytes >= capacity_) {
    flush();
    while (bytes > 0) {
      const auto n = ::write(fd_, p, bytes);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("cannot write", path_, n < 0 ? errno : EIO);
      p += n;
      bytes -= static_cast<std::size_t>(n);
      in_file_ += static_cast<std::uint64_t>(n);
    }
    start_writeback();
    return;
  }
  if (used_ + bytes > capacity_) flush();
  std::memcpy(buffer_.get() + used_, p, bytes);
  used_ += bytes;
}

void file_writer::flush() {
  std::size_t done = 0;
  while (done < used_) {
    const auto n = ::write(fd_, buffer_.get() + done, used_ - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write", path_, n < 0 ? errno : EIO);
    done += static_cast<std::size_t>(n);
    in_file_ += static_cast<std::uint64_t>(n);
  }
  used_ = 0;
  start_writeback();
}

void file_writer::start_writeback() {
#ifdef __linux__
  constexpr std::uint64_t step = std::uint64_t{8} << 20;
  if (in_file_ - writeback_from_ < step) return;
  // Asynchronous (no wait): a failure here shows at close()'s fsync anyway.
  ::sync_file_range(fd_, static_cast<off64_t>(writeback_from_),
                    static_cast<off64_t>(in_file_ - writeback_from_), SYNC_FILE_RANGE_WRITE);
  writeback_from_ = in_file_;
#endif
}

file_digest file_writer::close() {
  flush();
  // Delayed allocation: a full disk may only show at fsync or close.
  if (::fsync(fd_) != 0) fail("cannot sync", path_, errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(path_.c_str());
    fail("cannot close", path_, err);
  }
  return {written_, XXH3_64bits_digest(hash_->state)};
}

file_digest digest_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", path, errno);
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  constexpr std::size_t chunk = std::size_t{4} << 20;
  std::unique_ptr<char[]> buffer(new char[chunk]);
  file_digest digest;
  for (;;) {
    const auto n = ::read(fd, buffer.get(), chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      XXH3_freeState(state);
      ::close(fd);
      fail("cannot read", path, err);
    }
    if (n == 0) break;
    XXH3_64bits_update(state, buffer.get(), static_cast<std::size_t>(n));
    digest.size += static_cast<std::uint64_t>(n);
  }
  digest.xxh3 = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  ::close(fd);
  return digest;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + " cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open", path, errno);
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail("cannot sync", path, err);
  }
  ::close(fd);
}

std::string to_hex(std::uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::uint64_t from_hex(const std::string& text) {
  if (text.size() != 16 || text.find_first_not_of("0123456789abcdef") != std::string::npos)
    throw std::invalid_argument("'" + text + "' is not 16 lowercase hexadecimal digits");
  return std::stoull(text, nullptr, 16);
}

}  // namespace melissa::checkpoint
