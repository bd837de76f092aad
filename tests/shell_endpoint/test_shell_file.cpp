// shell.json (mode 0600, atomic), the token and its comparison.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <sys/stat.h>
#include <unistd.h>

#include "actors/shell_endpoint/shell_file.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::shell;
namespace fs = std::filesystem;

namespace {

struct temp_dir : melissa::testing::temp_dir {
  temp_dir() : melissa::testing::temp_dir("melissa-shell-test") {}
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("random tokens: 32 hex characters, never the same twice") {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const auto t = random_token();
    CHECK(t.size() == 32);
    CHECK(t.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(t);
  }
  CHECK(seen.size() == 100);
}

TEST_CASE("tokens compare equal only when identical") {
  CHECK(tokens_equal("abc123", "abc123"));
  CHECK(!tokens_equal("abc123", "abc124"));
  CHECK(!tokens_equal("abc123", "abc12"));
  CHECK(!tokens_equal("abc123", "abc1234"));
  CHECK(!tokens_equal("abc123", ""));
  // An endpoint spawned without a token must refuse everyone, not accept "".
  CHECK(!tokens_equal("", ""));
  CHECK(!tokens_equal("", "x"));
}

TEST_CASE("shell.json: written 0600 even under a permissive umask, read back") {
  temp_dir dir;
  const auto old_umask = ::umask(0);
  const auto path = write_shell_file(dir.path, "127.0.0.1", 40123, "0123456789abcdef0123456789abcdef");
  ::umask(old_umask);
  CHECK(path == dir / "shell.json");
  CHECK(mode_of(path) == 0600);
  const auto address = read_shell_file(path);
  CHECK(address.host == "127.0.0.1");
  CHECK(address.port == 40123);
  CHECK(address.token == "0123456789abcdef0123456789abcdef");
  // No temporary file is left beside it.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    (void)entry;
    ++files;
  }
  CHECK(files == 1);
}

TEST_CASE("shell.json: rewriting replaces the file (a study restarted in the same directory)") {
  temp_dir dir;
  write_shell_file(dir.path, "127.0.0.1", 1000, "aaaa");
  write_shell_file(dir.path, "::1", 2000, "bbbb");
  const auto address = read_shell_file(dir / "shell.json");
  CHECK(address.host == "::1");
  CHECK(address.port == 2000);
  CHECK(address.token == "bbbb");
  CHECK(mode_of(dir / "shell.json") == 0600);
  remove_shell_file(dir.path);
  CHECK(!fs::exists(dir / "shell.json"));
  remove_shell_file(dir.path);  // twice is fine
}

TEST_CASE("shell.json: a directory that does not exist is an error naming the path") {
  try {
    write_shell_file("/nonexistent-melissa-dir", "127.0.0.1", 1, "t");
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("/nonexistent-melissa-dir/.shell.json.tmp.") !=
          std::string::npos);
  }
}

TEST_CASE("shell.json: malformed files are errors naming the file and the key") {
  temp_dir dir;
  const fs::path path = dir / "shell.json";
  const auto error_for = [&](const std::string& text) {
    std::ofstream(path) << text;
    try {
      read_shell_file(path);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(error_for("{").find("is not valid JSON") != std::string::npos);
  CHECK(error_for("[]") == path.string() + ": expected a JSON object with host, port and token");
  CHECK(error_for(R"({"port": 1, "token": "t"})") ==
        path.string() + ": \"host\" must be a non-empty string");
  CHECK(error_for(R"({"host": "h", "port": 0, "token": "t"})") ==
        path.string() + ": \"port\" must be an integer in [1, 65535]");
  CHECK(error_for(R"({"host": "h", "port": 70000, "token": "t"})") ==
        path.string() + ": \"port\" must be an integer in [1, 65535]");
  CHECK(error_for(R"({"host": "h", "port": 1})") == path.string() + ": \"token\" must be a string");
  fs::remove(path);
  try {
    read_shell_file(path);
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "cannot read " + path.string() + ": No such file or directory");
  }
}
