#include "actors/checkpoint_keeper/buffer_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace melissa::checkpoint {

file_digest write_buffer_file(const buffer_snapshot& snapshot, const std::string& path) {
  file_writer out(path);
  write_buffer_snapshot(snapshot, [&](const void* data, std::size_t bytes) { out.write(data, bytes); });
  return out.close();
}

buffer_snapshot read_buffer_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!in) throw std::system_error(errno, std::generic_category(), "cannot open " + path);
  std::setvbuf(in.get(), nullptr, _IOFBF, std::size_t{4} << 20);
  try {
    return read_buffer_snapshot([&](void* data, std::size_t bytes) {
      if (bytes && std::fread(data, 1, bytes, in.get()) != bytes)
        throw std::runtime_error("training buffer checkpoint: the file ends early");
    });
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace melissa::checkpoint
