// A training buffer's snapshot as bytes (the checkpoint's rank-R/buffer.bin),
// and back. Binary, host byte order and float layout (a checkpoint is read
// back on the same kind of machine), versioned:
//
//   "MELISSA-BUFFER\0\0"  u32 version (2)
//   u8 policy  u64 capacity threshold seed  u8 production_over
//   u32 input_dim output_dim  u64 inserts evictions batches samples_drawn unseen
//   u64 n + n x u64 retired histogram     u64 n + n bytes of random state
//   u64 samples, then per sample: u32 sim time_step times_drawn,
//                                 input_dim f32, output_dim f32
//   u64 pending, then per pending store: u32 sim time_step, input_dim f32, output_dim f32
//   "END!" u64 samples
//
// Plain C++, no CAF; the bytes go through callables so that the same code
// writes a file (the keeper's file_writer, hashing as it goes) or a string.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "actors/reservoir/training_buffer.hpp"

namespace melissa {

// Receives the next `bytes` bytes.
using byte_sink = std::function<void(const void* data, std::size_t bytes)>;
// Fills `data` with exactly the next `bytes` bytes, or throws (end of input).
using byte_source = std::function<void(void* data, std::size_t bytes)>;

void write_buffer_snapshot(const buffer_snapshot& snapshot, const byte_sink& sink);

// Throws std::runtime_error naming what is wrong (another magic or version,
// a count beyond the capacity, a row length other than the header's, a
// missing end marker). Sizes are checked before anything is allocated.
buffer_snapshot read_buffer_snapshot(const byte_source& source);

// The bytes write_buffer_snapshot() would produce (tests, small buffers).
std::uint64_t buffer_snapshot_bytes(const buffer_snapshot& snapshot);

}  // namespace melissa
