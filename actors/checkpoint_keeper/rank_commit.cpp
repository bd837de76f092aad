#include "actors/checkpoint_keeper/rank_commit.hpp"

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <nlohmann/json.hpp>

#include "actors/checkpoint_keeper/checkpoint_files.hpp"

namespace melissa::checkpoint {
namespace fs = std::filesystem;
namespace {

constexpr const char* parts_prefix = ".parts-";
constexpr const char* committed_prefix = ".committed-";
constexpr const char* abandoned_prefix = ".abandoned-";
constexpr const char* request_prefix = ".request-";
constexpr const char* ask_prefix = ".ask-";

std::string rank_dir(std::uint32_t rank) { return "rank-" + std::to_string(rank); }

// Written under a temporary name, fsync'ed, then renamed: whoever sees the
// final name sees the whole file.
void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::error_code ignored;
  fs::remove(tmp, ignored);
  {
    file_writer out(tmp);
    out.write(text.data(), text.size());
    out.close();
  }
  fs::rename(tmp, path);
  sync_path(fs::path(path).parent_path().string());
}

// write_atomically's temporary name.
bool being_written(const std::string& name) {
  return name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0;
}

std::string seconds_text(std::chrono::milliseconds wait) {
  return std::to_string(wait.count() / 1000) + (wait.count() % 1000 ? "." + std::to_string(wait.count() % 1000 / 100) : "") + " s";
}

}  // namespace

staging open_shared_staging(const std::string& root, const std::string& id) {
  staging s;
  s.path = root + "/" + parts_prefix + id;
  fs::create_directories(s.path);
  return s;
}

void publish_part(const staging& s, std::uint32_t rank) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : s.files)
    files.push_back({{"path", f.path}, {"size", f.digest.size}, {"xxh3", to_hex(f.digest.xxh3)}});
  const nlohmann::json part = {{"rank", rank}, {"files", files}};
  fs::create_directories(s.path + "/" + rank_dir(rank));
  write_atomically(s.path + "/" + rank_dir(rank) + "/part.json", part.dump());
}

void publish_part_failure(const staging& s, std::uint32_t rank, const std::string& why) {
  fs::create_directories(s.path + "/" + rank_dir(rank));
  write_atomically(s.path + "/" + rank_dir(rank) + "/part.failed", why);
}

void gather_parts(staging& s, std::uint32_t ranks, std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (std::uint32_t r = 1; r < ranks; ++r) {
    const std::string prefix = rank_dir(r) + "/";
    const std::string part_path = s.path + "/" + prefix + "part.json";
    const std::string failed_path = s.path + "/" + prefix + "part.failed";
    for (;;) {
      if (fs::exists(part_path)) break;
      if (fs::exists(failed_path))
        throw std::runtime_error("rank " + std::to_string(r) + " could not write its part: " +
                                 read_text(failed_path));
      if (std::chrono::steady_clock::now() >= deadline)
        throw std::runtime_error("rank " + std::to_string(r) + "'s part did not come within " +
                                 seconds_text(wait) + " (no " + part_path + ")");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const auto part = nlohmann::json::parse(read_text(part_path), nullptr, false);
    if (!part.is_object() || !part.contains("files") || !part["files"].is_array())
      throw std::runtime_error(part_path + " does not parse");
    for (const auto& f : part["files"]) {
      manifest_entry e;
      e.path = f.at("path").get<std::string>();
      if (e.path.rfind(prefix, 0) != 0 || e.path.find("..") != std::string::npos)
        throw std::runtime_error(part_path + " lists " + e.path + ", outside " + prefix);
      e.digest.size = f.at("size").get<std::uint64_t>();
      e.digest.xxh3 = from_hex(f.at("xxh3").get<std::string>());
      std::error_code ec;
      const auto size = fs::file_size(s.path + "/" + e.path, ec);
      if (ec || size != e.digest.size)
        throw std::runtime_error(s.path + "/" + e.path + (ec ? " is missing" : " has " + std::to_string(size) + " bytes") +
                                 ", rank " + std::to_string(r) + "'s part.json says " +
                                 std::to_string(e.digest.size));
      s.files.push_back(std::move(e));
    }
  }
}

void announce_commit(const std::string& root, const std::string& id, bool ok, const std::string& text) {
  const std::string keep_committed = std::string(committed_prefix) + id;
  const std::string keep_abandoned = std::string(abandoned_prefix) + id;
  const std::string keep_parts = std::string(parts_prefix) + id;
  write_atomically(root + "/" + (ok ? keep_committed : keep_abandoned), text);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const auto name = entry.path().filename().string();
    const bool marker = name.rfind(committed_prefix, 0) == 0 || name.rfind(abandoned_prefix, 0) == 0;
    const bool parts = name.rfind(parts_prefix, 0) == 0;
    const bool request = name.rfind(request_prefix, 0) == 0;  // this one's too: answered
    if ((marker && name != keep_committed && name != keep_abandoned) || (parts && name != keep_parts) ||
        request) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);
    }
  }
}

std::string await_commit(const std::string& root, const std::string& id, std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  const std::string committed = root + "/" + committed_prefix + id;
  const std::string abandoned = root + "/" + abandoned_prefix + id;
  for (;;) {
    if (fs::exists(committed)) return read_text(committed);
    if (fs::exists(abandoned)) throw std::runtime_error("rank 0 abandoned the checkpoint: " + read_text(abandoned));
    if (std::chrono::steady_clock::now() >= deadline)
      throw std::runtime_error("rank 0 did not commit the checkpoint within " + seconds_text(wait) +
                               " (no " + committed + ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void post_request(const std::string& root, const std::string& id, const std::string& reason) {
  write_atomically(root + "/" + request_prefix + id, reason);
}

std::vector<checkpoint_request> posted_requests(const std::string& root) {
  std::vector<std::pair<fs::file_time_type, checkpoint_request>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(request_prefix, 0) != 0 || being_written(name)) continue;
    try {
      std::error_code time_ec;
      const auto written = fs::last_write_time(entry.path(), time_ec);
      found.push_back({written, {name.substr(std::string(request_prefix).size()), read_text(entry.path().string())}});
    } catch (const std::exception&) {
      // Removed since it was listed: answered already.
    }
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<checkpoint_request> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

void post_ask(const std::string& root, std::uint32_t rank, const std::string& reason) {
  write_atomically(root + "/" + ask_prefix + std::to_string(rank) + "-" + reason, reason);
}

std::string take_asks(const std::string& root) {
  static const std::vector<std::string> urgency = {"sigterm", "launcher_lost", "interrupt"};
  std::string most;
  auto rank_of = [&](const std::string& r) {
    const auto it = std::find(urgency.begin(), urgency.end(), r);
    return static_cast<std::size_t>(it - urgency.begin());
  };
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(ask_prefix, 0) != 0 || being_written(name)) continue;
    const auto dash = name.find('-', std::string(ask_prefix).size());
    if (dash == std::string::npos) continue;
    const std::string reason = name.substr(dash + 1);
    std::error_code ignored;
    fs::remove(entry.path(), ignored);
    if (most.empty() || rank_of(reason) < rank_of(most)) most = reason;
  }
  return most;
}

void remove_shared_leftovers(const std::string& root) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const auto name = entry.path().filename().string();
    if (name.rfind(parts_prefix, 0) == 0 || name.rfind(committed_prefix, 0) == 0 ||
        name.rfind(abandoned_prefix, 0) == 0 || name.rfind(request_prefix, 0) == 0 ||
        name.rfind(ask_prefix, 0) == 0) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);
    }
  }
}

}  // namespace melissa::checkpoint
