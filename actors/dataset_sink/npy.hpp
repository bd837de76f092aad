// Minimal writer for NumPy .npy files (format 1.0): the header and whole-file
// helpers used by the dataset sink and the heat solver's dataset mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace melissa::npy {

// Header bytes for a C-order array; `descr` is "<f4", "<f8", "<i4", ...
// The result is padded so that its length is a multiple of 64 and at least
// `min_length` (so that a header can be rewritten in place with a larger shape).
std::string header(const std::string& descr, const std::vector<std::uint64_t>& shape,
                   std::size_t min_length = 0);

// Writes a whole array; throws std::runtime_error naming the file on failure.
void write(const std::string& path, const std::string& descr,
           const std::vector<std::uint64_t>& shape, const void* data, std::size_t bytes);

}  // namespace melissa::npy
