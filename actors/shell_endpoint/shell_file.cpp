#include "actors/shell_endpoint/shell_file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "security/study_credentials.hpp"

#include "messages/atomic_file.hpp"

namespace melissa::shell {
namespace {

std::runtime_error system_error(const std::string& what, const std::filesystem::path& path) {
  return std::runtime_error(what + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

// One random secret and one constant-time comparison for the whole project.
std::string random_token() { return security::random_hex(16); }

std::filesystem::path write_shell_file(const std::filesystem::path& output_dir,
                                       const std::string& host, std::uint16_t port,
                                       const std::string& token) {
  const auto target = output_dir / "shell.json";
  const auto text = nlohmann::json{{"host", host}, {"port", port}, {"token", token}}.dump(2) + "\n";
  // Created 0600 under a temporary name: the token is never readable by others.
  write_file_atomically(target.string(), text, 0600);
  return target;
}

void remove_shell_file(const std::filesystem::path& output_dir) {
  std::error_code ignored;
  std::filesystem::remove(output_dir / "shell.json", ignored);
}

shell_address read_shell_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw system_error("cannot read", path);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path.string() + " is not valid JSON: " + e.what());
  }
  const auto bad = [&](const std::string& what) {
    return std::runtime_error(path.string() + ": " + what);
  };
  if (!doc.is_object()) throw bad("expected a JSON object with host, port and token");
  shell_address address;
  if (!doc.contains("host") || !doc["host"].is_string() || doc["host"].get<std::string>().empty())
    throw bad("\"host\" must be a non-empty string");
  if (!doc.contains("port") || !doc["port"].is_number_unsigned() || doc["port"].get<std::uint64_t>() == 0 ||
      doc["port"].get<std::uint64_t>() > 65535)
    throw bad("\"port\" must be an integer in [1, 65535]");
  if (!doc.contains("token") || !doc["token"].is_string())
    throw bad("\"token\" must be a string");
  address.host = doc["host"].get<std::string>();
  address.port = static_cast<std::uint16_t>(doc["port"].get<std::uint64_t>());
  address.token = doc["token"].get<std::string>();
  return address;
}

bool tokens_equal(std::string_view expected, std::string_view given) {
  return security::secrets_equal(expected, given);
}

}  // namespace melissa::shell
