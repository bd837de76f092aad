// A training buffer's part of a checkpoint: rank-<R>/buffer.bin, written
// through a hashing file_writer, and read back. Plain C++, no CAF.
#pragma once

#include <string>

#include "actors/checkpoint_keeper/checkpoint_files.hpp"
#include "actors/reservoir/buffer_snapshot_io.hpp"

namespace melissa::checkpoint {

// Writes the snapshot to a new file `path` (fsync'ed) and returns its digest.
file_digest write_buffer_file(const buffer_snapshot& snapshot, const std::string& path);
// Throws std::runtime_error / std::system_error naming the path and what is wrong.
buffer_snapshot read_buffer_file(const std::string& path);

}  // namespace melissa::checkpoint
