// The checkpoints of one study in one directory (the study's [checkpoint]
// dir), written crash-safe:
//
//   1. begin() makes a staging directory  <root>/.staging-<sequence>/
//   2. every part is written into it (file_writer: fsync'ed files), each
//      rank under rank-<R>/, and recorded with its digest (add())
//   3. commit() writes manifest.json last, fsyncs every directory inside,
//      renames the staging directory to <root>/ckpt-<sequence>-batch-<batch>
//      and fsyncs <root>
//   4. prune(keep) then deletes the oldest checkpoints beyond `keep` (each
//      first renamed to .pruning-<sequence>, so that a half-deleted one never
//      looks like a checkpoint) and any staging directory left by a crash:
//      never before the new one is complete, so a crash at any point leaves
//      at least the previous one.
//
// newest_valid() picks the checkpoint to restart from: the highest sequence
// whose manifest verifies; each newer one that does not is skipped with the
// reason. Plain C++ (std::filesystem), no CAF. One writer per root.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "actors/checkpoint_keeper/checkpoint_manifest.hpp"

namespace melissa::checkpoint {

struct staging {
  std::string path;  // <root>/.staging-<sequence>
  std::uint64_t sequence = 0;
  std::vector<manifest_entry> files;

  // "<path>/<relative>", creating the parent directories of `relative`.
  std::string prepare(const std::string& relative) const;
  void add(const std::string& relative, const file_digest& digest);
  // A file written by someone else (torch's serializer): digest read back.
  void add_written(const std::string& relative);
};

struct listed_checkpoint {
  std::string path;
  std::uint64_t sequence = 0;
  std::uint64_t batch = 0;
};

struct chosen_checkpoint {
  std::optional<listed_checkpoint> checkpoint;  // none: no valid checkpoint
  manifest contents;                             // of the chosen one
  std::vector<std::string> skipped;              // "<dir>: <why>" per newer invalid one
};

class checkpoint_directory {
 public:
  // Creates `root` (and its parents) when missing.
  explicit checkpoint_directory(std::string root);

  const std::string& root() const { return root_; }

  // A new, empty staging directory numbered after every checkpoint (and
  // staging directory) present.
  staging begin() const;
  // The sequence begin() would give now (a shared staging directory of
  // several ranks, rank_commit.hpp, gets its number when rank 0 commits it).
  std::uint64_t next_sequence() const;
  // Completes `s` as described above; `header` gives everything but the
  // files and the sequence. Returns the final path. Throws std::system_error
  // / std::runtime_error naming the path on failure (the staging directory
  // is then left for prune() to remove).
  std::string commit(staging&& s, manifest header) const;
  // Keeps the `keep` newest checkpoints (by sequence; keep >= 1), removes the
  // rest and leftover staging directories older than the newest checkpoint.
  void prune(std::size_t keep) const;

  // Complete checkpoints (ckpt-*), newest first. Verifies nothing.
  std::vector<listed_checkpoint> list() const;
  chosen_checkpoint newest_valid() const;

 private:
  std::string root_;
};

// "ckpt-00000003-batch-1200": the name of a complete checkpoint.
std::string checkpoint_name(std::uint64_t sequence, std::uint64_t batch);

}  // namespace melissa::checkpoint
