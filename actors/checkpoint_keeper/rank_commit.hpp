// One checkpoint written by several server ranks (docs/checkpoints.md,
// "Several ranks"). The ranks agree on the checkpoint's id (its batch and
// its number in this run: they decide together, at the same step) and each
// writes its rank-R/ files into the same shared staging directory
// <root>/.parts-<id>/ (the checkpoint directory is shared by the ranks, also
// on a cluster). Then:
//   - a rank other than 0 lists its files, with sizes and checksums, in
//     rank-R/part.json (written last, renamed into place: the part is
//     complete; rank-R/part.failed with the reason when it could not write
//     it) and waits for rank 0's word;
//   - rank 0 waits (bounded) for every rank's part.json, adds their files to
//     its own, commits (manifest last, fsync, rename: checkpoint_directory)
//     and leaves <root>/.committed-<id> holding the checkpoint's path, or
//     <root>/.abandoned-<id> holding why (a part that did not come: that
//     checkpoint only is lost, the previous ones stay valid).
// Ranks that share no step (statistics mode) agree on a checkpoint through
// the same directory: rank 0 posts <root>/.request-<id> (holding the reason)
// before it writes its own part, the other ranks look for requests on a
// timer and write theirs; a rank other than 0 that must stop (SIGTERM, lost
// launcher) posts <root>/.ask-<rank>-<reason>, and rank 0 turns it into a
// request.
// Plain C++ (std::filesystem), no CAF; the writer thread calls these.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"

namespace melissa::checkpoint {

// "<root>/.parts-<id>", created when missing (any rank may come first).
staging open_shared_staging(const std::string& root, const std::string& id);

// Rank `rank` (> 0): its files, those of `s` under rank-R/, are complete.
void publish_part(const staging& s, std::uint32_t rank);
// Rank `rank` (> 0) could not write its part: rank 0 abandons the checkpoint
// at once with `why` instead of waiting for it.
void publish_part_failure(const staging& s, std::uint32_t rank, const std::string& why);

// Rank 0: waits at most `wait` for the parts of ranks 1 .. ranks-1 and adds
// their files to s.files (each file's size checked on disk). Throws
// std::runtime_error saying which rank's part did not come (or failed, and
// why), or which file does not match its part.json.
void gather_parts(staging& s, std::uint32_t ranks, std::chrono::milliseconds wait);

// Rank 0, after the commit (ok: `text` is the checkpoint's path) or when it
// abandons the checkpoint (`text` says why): the other ranks' answer. Also
// removes the requests, markers and shared staging directories of earlier checkpoints
// (no other one is in flight: the ranks take the next one only when every
// rank's writer is idle).
void announce_commit(const std::string& root, const std::string& id, bool ok, const std::string& text);

// A rank other than 0: waits at most `wait` for rank 0's word; returns the
// committed checkpoint's path, throws std::runtime_error with why not.
std::string await_commit(const std::string& root, const std::string& id, std::chrono::milliseconds wait);

// Rank 0: asks the other ranks for their part of checkpoint `id`.
void post_request(const std::string& root, const std::string& id, const std::string& reason);

struct checkpoint_request {
  std::string id;
  std::string reason;
};
// The requests posted and not yet committed or abandoned (announce_commit
// removes them), oldest first. Never throws.
std::vector<checkpoint_request> posted_requests(const std::string& root);

// A rank other than 0 asks rank 0 for a checkpoint for `reason` (sigterm,
// launcher_lost, ...). Posting the same ask again is harmless.
void post_ask(const std::string& root, std::uint32_t rank, const std::string& reason);
// Rank 0: the most urgent reason the other ranks asked for ("" none:
// sigterm, launcher_lost, interrupt, then any other); the asks are removed.
// Never throws.
std::string take_asks(const std::string& root);

// Rank 0 at start (before the ranks meet, so that nothing of this run is in
// flight): removes the shared staging directories, markers, requests and
// asks a stopped server left. Never throws.
void remove_shared_leftovers(const std::string& root);

}  // namespace melissa::checkpoint
