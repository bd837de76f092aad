#include "actors/checkpoint_keeper/checkpoint_directory.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace melissa::checkpoint {
namespace fs = std::filesystem;
namespace {

constexpr const char* staging_prefix = ".staging-";
constexpr const char* pruning_prefix = ".pruning-";

// Parses "ckpt-<sequence>-batch-<batch>"; false for anything else.
bool parse_checkpoint_name(const std::string& name, std::uint64_t& sequence, std::uint64_t& batch) {
  unsigned long long s = 0, b = 0;
  int consumed = 0;
  if (std::sscanf(name.c_str(), "ckpt-%llu-batch-%llu%n", &s, &b, &consumed) != 2) return false;
  if (static_cast<std::size_t>(consumed) != name.size()) return false;
  sequence = s;
  batch = b;
  return true;
}

bool parse_staging_name(const std::string& name, std::uint64_t& sequence) {
  if (name.rfind(staging_prefix, 0) != 0) return false;
  const auto digits = name.substr(std::char_traits<char>::length(staging_prefix));
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return false;
  sequence = std::stoull(digits);
  return true;
}

// fsync every directory under `dir` (deepest first) and `dir` itself: the
// entries of the files written there must be durable before the rename.
void sync_directories(const fs::path& dir) {
  std::vector<fs::path> directories;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_directory()) directories.push_back(entry.path());
  std::sort(directories.begin(), directories.end(),
            [](const fs::path& a, const fs::path& b) { return a.string() > b.string(); });
  for (const auto& d : directories) sync_path(d.string());
  sync_path(dir.string());
}

}  // namespace

std::string checkpoint_name(std::uint64_t sequence, std::uint64_t batch) {
  char name[64];
  std::snprintf(name, sizeof name, "ckpt-%08llu-batch-%llu", static_cast<unsigned long long>(sequence),
                static_cast<unsigned long long>(batch));
  return name;
}

std::string staging::prepare(const std::string& relative) const {
  const fs::path full = fs::path(path) / relative;
  fs::create_directories(full.parent_path());
  return full.string();
}

void staging::add(const std::string& relative, const file_digest& digest) {
  files.push_back({relative, digest});
}

void staging::add_written(const std::string& relative) {
  const std::string full = path + "/" + relative;
  sync_path(full);  // torch's writer does not fsync
  files.push_back({relative, digest_file(full)});
}

checkpoint_directory::checkpoint_directory(std::string root) : root_(std::move(root)) {
  fs::create_directories(root_);
}

std::uint64_t checkpoint_directory::next_sequence() const {
  std::uint64_t highest = 0;
  for (const auto& entry : fs::directory_iterator(root_)) {
    const auto name = entry.path().filename().string();
    std::uint64_t sequence = 0, batch = 0;
    if (parse_checkpoint_name(name, sequence, batch) || parse_staging_name(name, sequence))
      highest = std::max(highest, sequence);
  }
  return highest + 1;
}

staging checkpoint_directory::begin() const {
  staging s;
  s.sequence = next_sequence();
  s.path = root_ + "/" + staging_prefix + std::to_string(s.sequence);
  fs::create_directory(s.path);
  return s;
}

std::string checkpoint_directory::commit(staging&& s, manifest header) const {
  header.sequence = s.sequence;
  header.files = std::move(s.files);
  const std::string text = to_json(header);
  {
    file_writer out(s.path + "/" + manifest_name);
    out.write(text.data(), text.size());
    out.close();
  }
  sync_directories(s.path);
  const std::string final_path = root_ + "/" + checkpoint_name(header.sequence, header.batch);
  fs::rename(s.path, final_path);
  sync_path(root_);
  return final_path;
}

void checkpoint_directory::prune(std::size_t keep) const {
  if (keep == 0) keep = 1;
  const auto complete = list();
  // Renamed out of the ckpt-* names first (atomic), then deleted: a crash
  // in the middle of a deletion never leaves a half-deleted directory that
  // still looks like a checkpoint.
  for (std::size_t i = keep; i < complete.size(); ++i) {
    const auto doomed = root_ + "/" + pruning_prefix + std::to_string(complete[i].sequence);
    fs::rename(complete[i].path, doomed);
  }
  if (complete.size() > keep) sync_path(root_);
  const std::uint64_t newest = complete.empty() ? 0 : complete.front().sequence;
  for (const auto& entry : fs::directory_iterator(root_)) {
    const auto name = entry.path().filename().string();
    std::uint64_t sequence = 0;
    if ((parse_staging_name(name, sequence) && sequence < newest) || name.rfind(pruning_prefix, 0) == 0)
      fs::remove_all(entry.path());
  }
}

std::vector<listed_checkpoint> checkpoint_directory::list() const {
  std::vector<listed_checkpoint> found;
  for (const auto& entry : fs::directory_iterator(root_)) {
    listed_checkpoint c;
    if (entry.is_directory() &&
        parse_checkpoint_name(entry.path().filename().string(), c.sequence, c.batch)) {
      c.path = entry.path().string();
      found.push_back(c);
    }
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.sequence > b.sequence; });
  return found;
}

chosen_checkpoint checkpoint_directory::newest_valid() const {
  chosen_checkpoint chosen;
  for (const auto& c : list()) {
    auto v = verify_checkpoint(c.path);
    if (v.valid) {
      chosen.checkpoint = c;
      chosen.contents = std::move(v.contents);
      return chosen;
    }
    chosen.skipped.push_back(c.path + ": " + v.why);
  }
  return chosen;
}

}  // namespace melissa::checkpoint
