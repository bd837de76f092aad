// A checkpoint's manifest (manifest.json): what it is (format version, study,
// batch, when, why) and every file it holds with its size and XXH3 checksum.
// A checkpoint counts only if its manifest verifies: the manifest is written
// last, and verify_checkpoint() re-reads every file it lists. Plain C++
// (nlohmann-json, xxHash), no CAF.
//
//   {"format_version": 1, "study": "heat", "batch": 1200, "sequence": 3,
//    "wall_time": 1764668400.25, "reason": "every_batches", "ranks": 2,
//    "files": [{"path": "rank-0/buffer.bin", "size": 4096,
//               "xxh3": "0123456789abcdef"}, ...]}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/checkpoint_keeper/checkpoint_files.hpp"

namespace melissa::checkpoint {

// The format this code writes and the only one it reads.
constexpr int manifest_format_version = 1;
constexpr const char* manifest_name = "manifest.json";

struct manifest_entry {
  std::string path;  // relative to the checkpoint directory, '/'-separated, no ".."
  file_digest digest;
};

struct manifest {
  int format_version = manifest_format_version;
  std::string study;
  std::uint64_t batch = 0;     // trainer batches done at the cut (all ranks)
  std::uint64_t sequence = 0;  // 1, 2, ...: order of the checkpoints in one directory
  double wall_time = 0;        // seconds since the epoch when it was completed
  std::string reason;          // what asked for it (every_batches, shell, sigterm, ...)
  std::uint32_t ranks = 1;     // server ranks whose parts it holds (rank-R/)
  std::vector<manifest_entry> files;
};

std::string to_json(const manifest& m);
// Throws std::runtime_error saying what is wrong (not JSON, a missing or
// mistyped key, another format version, an unsafe path).
manifest parse_manifest(const std::string& text);

struct verdict {
  bool valid = false;
  std::string why;  // when not valid: "manifest.json is missing", "rank-0/buffer.bin: ..."
  manifest contents;
};

// Reads dir/manifest.json and checks every listed file's size, then its
// checksum. Never throws for a bad checkpoint: the verdict says why.
verdict verify_checkpoint(const std::string& dir);

}  // namespace melissa::checkpoint
