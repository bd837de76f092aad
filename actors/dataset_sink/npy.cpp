#include "actors/dataset_sink/npy.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace melissa::npy {

std::string header(const std::string& descr, const std::vector<std::uint64_t>& shape,
                   std::size_t min_length) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (std::size_t i = 0; i < shape.size(); ++i) dict += std::to_string(shape[i]) + ", ";
  if (!shape.empty()) dict.pop_back();  // "(3,)" and "(3, 4,)": both valid tuples
  dict += "), }";
  // magic (6) + version (2) + header length (2) + dict + padding + '\n'
  std::size_t total = 10 + dict.size() + 1;
  std::size_t padded = (total + 63) / 64 * 64;
  while (padded < min_length) padded += 64;
  dict.append(padded - total, ' ');
  dict += '\n';
  const auto len = static_cast<std::uint16_t>(dict.size());
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>(len >> 8);
  return out + dict;
}

void write(const std::string& path, const std::string& descr,
           const std::vector<std::uint64_t>& shape, const void* data, std::size_t bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  const auto h = header(descr, shape);
  const bool ok = std::fwrite(h.data(), 1, h.size(), f) == h.size() &&
                  (bytes == 0 || std::fwrite(data, 1, bytes, f) == bytes);
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
}

}  // namespace melissa::npy
