// The shell's rendezvous file and its token. Plain C++ (no CAF).
//
// The CAF wire protocol has no authentication: whoever reaches the published
// port can talk to the endpoint. The endpoint therefore checks a random token
// on every command, and the token reaches the user through
// <output>/shell.json, readable by its owner only (mode 0600).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace melissa::shell {

// Where melissa-shell finds a running study.
struct shell_address {
  std::string host;
  std::uint16_t port = 0;
  std::string token;
  // The study's output directory (its .melissa/ holds the TLS credentials);
  // set from where shell.json was found, empty for a host:port target.
  std::string study_dir;
};

// 32 hex characters (128 bits) from /dev/urandom. Throws std::runtime_error
// when /dev/urandom cannot be read.
std::string random_token();

// Writes <output_dir>/shell.json = {"host", "port", "token"} with mode 0600:
// the file is created 0600 under a temporary name and renamed into place, so
// the token is never readable by others, not even for an instant, and a
// reader never sees a half-written file. Returns the path written. Throws
// std::runtime_error naming the path and the system error.
std::filesystem::path write_shell_file(const std::filesystem::path& output_dir,
                                       const std::string& host, std::uint16_t port,
                                       const std::string& token);

// Removes <output_dir>/shell.json if it is there (the study has ended: a stale
// file would send melissa-shell to a port that nobody listens on).
void remove_shell_file(const std::filesystem::path& output_dir);

// Reads a shell.json written by write_shell_file. Throws std::runtime_error
// naming the file and what is wrong with it.
shell_address read_shell_file(const std::filesystem::path& path);

// Compares a given token with the expected one in time independent of where
// they differ, so that timing the endpoint's answers does not reveal the
// token byte by byte. An empty expected token matches nothing.
bool tokens_equal(std::string_view expected, std::string_view given);

}  // namespace melissa::shell
