// The file-level pieces of a crash-safe checkpoint: a writer that streams
// bytes to a file while hashing them (so that the manifest's checksum costs
// no second read of a file that may be gigabytes), fsync of files and
// directories, and the checksum of a file already on disk. Plain C++ (POSIX,
// xxHash), no CAF, no torch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace melissa::checkpoint {

// What the manifest records of one file.
struct file_digest {
  std::uint64_t size = 0;
  std::uint64_t xxh3 = 0;  // XXH3_64bits of the whole content (seed 0)
};

// Writes one new file (created exclusively, mode 0644) through a large
// buffer; every byte is hashed as it goes. close() flushes, fsyncs and closes,
// and returns the digest. Errors throw std::system_error naming the path
// ("cannot write /ck/.tmp/rank-0/buffer.bin: No space left on device"). A
// writer destroyed without close() removes its partial file.
class file_writer {
 public:
  explicit file_writer(std::string path, std::size_t buffer_bytes = std::size_t{4} << 20);
  ~file_writer();
  file_writer(const file_writer&) = delete;
  file_writer& operator=(const file_writer&) = delete;

  void write(const void* data, std::size_t bytes);
  file_digest close();
  const std::string& path() const { return path_; }
  std::uint64_t written() const { return written_; }

 private:
  void flush();
  // Starts the disk writes of what reached the file so far (Linux
  // sync_file_range), every few MiB, so that they overlap the hashing and
  // copying of the next bytes instead of all waiting for close()'s fsync.
  void start_writeback();

  struct hash_state;
  std::string path_;
  int fd_ = -1;
  std::unique_ptr<hash_state> hash_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t used_ = 0;
  std::uint64_t written_ = 0;
  std::uint64_t in_file_ = 0;         // bytes write(2) took so far
  std::uint64_t writeback_from_ = 0;  // bytes whose writeback was not started yet begin here
};

// Size and XXH3 of a file on disk (read in 4 MiB chunks). Throws
// std::system_error naming the path when it cannot be read.
file_digest digest_file(const std::string& path);

// The whole content of a small file (a checkpoint's JSON parts); throws
// std::runtime_error "<path> cannot be read".
std::string read_text(const std::string& path);

// fsync of an existing file or directory; throws std::system_error naming it.
void sync_path(const std::string& path);

// "%016x" of a checksum, and back (throws std::invalid_argument).
std::string to_hex(std::uint64_t value);
std::uint64_t from_hex(const std::string& text);

}  // namespace melissa::checkpoint
