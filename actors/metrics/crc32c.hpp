// CRC-32C (Castagnoli, the iSCSI polynomial), as TensorFlow's record format
// uses it. Debian 12 has no C library for it (only python3-crc32c), and the
// metrics write a few hundred bytes per record, so a byte-wise table is enough.
// Plain C++.
#pragma once

#include <cstddef>
#include <cstdint>

namespace melissa {

// CRC-32C of `n` bytes; pass a previous result as `crc` to continue it.
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0);

// TensorFlow's masked CRC: a CRC stored next to the data it covers would make a
// CRC of that data-plus-CRC degenerate, so records store this rotation instead.
constexpr std::uint32_t mask_crc32c(std::uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace melissa
