// A fresh directory for one test, removed with its contents when the test
// ends: tests/lib's one temporary directory helper for the C++ tests
// (header-only; include it as "tests/lib/temp_dir.hpp").
//
//   melissa::testing::temp_dir dir("melissa-backends");  // $TMPDIR/melissa-backends-XXXXXX
//   write_file(dir / "job.out", "...");                   // dir.path + "/job.out"
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace melissa::testing {

class temp_dir {
 public:
  // Under `parent`, else under $TMPDIR when set, else /tmp; `prefix` names the
  // test that made it.
  explicit temp_dir(std::string_view prefix = "melissa-test", std::string_view parent = {}) {
    const char* tmpdir = std::getenv("TMPDIR");
    const std::string base =
        !parent.empty() ? std::string(parent) : tmpdir && *tmpdir ? tmpdir : "/tmp";
    std::string pattern = base + "/" + std::string(prefix) + "-XXXXXX";
    if (!::mkdtemp(pattern.data()))
      throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
    path = pattern;
  }
  ~temp_dir() {
    if (kept_) return;
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  // "<path>/<name>"; `name` may hold further slashes ("jobs/3.out").
  std::string operator/(std::string_view name) const { return path + "/" + std::string(name); }

  // Leaves the directory in place (the logs of a failed test).
  void keep() { kept_ = true; }

  std::string path;  // absolute when $TMPDIR is

 private:
  bool kept_ = false;
};

}  // namespace melissa::testing
