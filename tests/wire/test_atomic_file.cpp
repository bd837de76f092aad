#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>

#include "messages/atomic_file.hpp"
#include "tests/lib/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

struct temp_dir : melissa::testing::temp_dir {
  temp_dir() : melissa::testing::temp_dir("melissa-atomic") {}
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

std::size_t entries(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.exists() ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("write_file_atomically writes, replaces and leaves no temporary file") {
  temp_dir d;
  const auto p = d / "summary.json";
  melissa::write_file_atomically(p, "first\n");
  CHECK(slurp(p) == "first\n");
  melissa::write_file_atomically(p, "second, longer\n");
  CHECK(slurp(p) == "second, longer\n");
  melissa::write_file_atomically(p, "");
  CHECK(slurp(p).empty());
  CHECK(entries(d.path) == 1);
}

TEST_CASE("write_file_atomically gives the file the mode asked for, whatever the umask") {
  temp_dir d;
  const auto p = d / "shell.json";
  const auto old = ::umask(0);
  melissa::write_file_atomically(p, "secret", 0600);
  ::umask(old);
  struct stat s {};
  REQUIRE(::stat(p.c_str(), &s) == 0);
  CHECK((s.st_mode & 0777) == 0600);
  melissa::write_file_atomically(p + ".pub", "x");
  REQUIRE(::stat((p + ".pub").c_str(), &s) == 0);
  CHECK((s.st_mode & 0777) == (0644 & ~old));
}

TEST_CASE("write_file_atomically names the path and the system error, and keeps the old file") {
  temp_dir d;
  SUBCASE("missing directory") {
    const auto p = d / "no-such-dir/summary.json";
    try {
      melissa::write_file_atomically(p, "x");
      FAIL("no error");
    } catch (const std::system_error& e) {
      const std::string what = e.what();
      CHECK(what.find(d / "no-such-dir/.summary.json.tmp.") != std::string::npos);
      CHECK(what.find("No such file or directory") != std::string::npos);
      CHECK(e.code().value() == ENOENT);
    }
  }
  SUBCASE("target is a directory: the rename fails, the temporary file goes") {
    const fs::path p = d / "taken";
    fs::create_directory(p);
    fs::create_directory(p / "inside");  // a non-empty directory cannot be replaced
    try {
      melissa::write_file_atomically(p.string(), "x");
      FAIL("no error");
    } catch (const std::system_error& e) {
      const std::string what = e.what();
      CHECK(what.find("cannot rename") != std::string::npos);
      CHECK(what.find(p.string()) != std::string::npos);
    }
    CHECK(entries(d.path) == 1);
    CHECK(fs::is_directory(p / "inside"));
  }
}
