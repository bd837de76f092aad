// Checksums that the server and the clients compute independently, to prove
// that every time step arrived intact and exactly once (tests, summaries).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include <xxhash.h>

namespace melissa {

// Checksum of one time step of one field as sent on the wire (float32 bytes,
// global index order). The step is the seed, so that a step stored under the
// wrong index changes the result.
inline std::uint64_t step_checksum(std::uint32_t time_step, const void* data, std::size_t bytes) {
  return XXH3_64bits_withSeed(data, bytes, time_step);
}

// A simulation's checksum is the wrapping sum (mod 2^64) of the checksums of
// all its steps of all its fields: it does
// not depend on arrival order, and a missing or duplicated step changes it.
inline std::string checksum_hex(std::uint64_t sum) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(sum));
  return buf;
}

}  // namespace melissa
