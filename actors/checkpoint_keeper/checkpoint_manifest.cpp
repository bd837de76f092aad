#include "actors/checkpoint_keeper/checkpoint_manifest.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>

namespace melissa::checkpoint {
namespace {

// A manifest names files inside its own directory only.
bool safe_relative_path(const std::string& path) {
  if (path.empty() || path.front() == '/') return false;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

template <class T>
T required(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) throw std::runtime_error(std::string("no \"") + key + "\"");
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error(std::string("\"") + key + "\" has the wrong type");
  }
}

}  // namespace

std::string to_json(const manifest& m) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& f : m.files)
    files.push_back({{"path", f.path}, {"size", f.digest.size}, {"xxh3", to_hex(f.digest.xxh3)}});
  nlohmann::json j = {{"format_version", m.format_version},
                      {"study", m.study},
                      {"batch", m.batch},
                      {"sequence", m.sequence},
                      {"wall_time", m.wall_time},
                      {"reason", m.reason},
                      {"ranks", m.ranks},
                      {"files", files}};
  return j.dump(1) + "\n";
}

manifest parse_manifest(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("not JSON (") + e.what() + ")");
  }
  if (!j.is_object()) throw std::runtime_error("not a JSON object");
  manifest m;
  m.format_version = required<int>(j, "format_version");
  if (m.format_version != manifest_format_version)
    throw std::runtime_error("format version " + std::to_string(m.format_version) +
                             ", this build reads version " +
                             std::to_string(manifest_format_version));
  m.study = required<std::string>(j, "study");
  m.batch = required<std::uint64_t>(j, "batch");
  m.sequence = required<std::uint64_t>(j, "sequence");
  m.wall_time = required<double>(j, "wall_time");
  m.reason = required<std::string>(j, "reason");
  m.ranks = required<std::uint32_t>(j, "ranks");
  const auto files = j.find("files");
  if (files == j.end() || !files->is_array()) throw std::runtime_error("no \"files\" array");
  for (const auto& f : *files) {
    if (!f.is_object()) throw std::runtime_error("a \"files\" entry is not an object");
    manifest_entry e;
    e.path = required<std::string>(f, "path");
    if (!safe_relative_path(e.path))
      throw std::runtime_error("file path '" + e.path + "' leaves the checkpoint directory");
    e.digest.size = required<std::uint64_t>(f, "size");
    try {
      e.digest.xxh3 = from_hex(required<std::string>(f, "xxh3"));
    } catch (const std::invalid_argument& bad) {
      throw std::runtime_error(e.path + ": checksum " + bad.what());
    }
    m.files.push_back(std::move(e));
  }
  return m;
}

verdict verify_checkpoint(const std::string& dir) {
  verdict v;
  const std::string manifest_path = dir + "/" + manifest_name;
  std::ifstream in(manifest_path, std::ios::binary);
  if (!in) {
    v.why = std::string(manifest_name) + " is missing";
    return v;
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    v.contents = parse_manifest(text.str());
  } catch (const std::exception& e) {
    v.why = std::string(manifest_name) + ": " + e.what();
    return v;
  }
  // Sizes first: a truncated file is found without reading gigabytes.
  for (const auto& f : v.contents.files) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(dir + "/" + f.path, ec);
    if (ec) {
      v.why = f.path + " is missing";
      return v;
    }
    if (size != f.digest.size) {
      v.why = f.path + " has " + std::to_string(size) + " bytes, the manifest says " +
              std::to_string(f.digest.size);
      return v;
    }
  }
  for (const auto& f : v.contents.files) {
    try {
      const auto digest = digest_file(dir + "/" + f.path);
      if (digest.xxh3 != f.digest.xxh3) {
        v.why = f.path + " has checksum " + to_hex(digest.xxh3) + ", the manifest says " +
                to_hex(f.digest.xxh3);
        return v;
      }
    } catch (const std::system_error& e) {
      v.why = e.what();
      return v;
    }
  }
  v.valid = true;
  return v;
}

}  // namespace melissa::checkpoint
