// Shared by the backend tests: temporary directories, files, and a fake
// command_runner that records every command and answers from a script.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/scheduler/backend.hpp"
#include "tests/lib/temp_dir.hpp"

namespace melissa::scheduler::testing {

// A fresh directory under $TMPDIR (else /tmp), removed at the end of the test.
struct temp_dir : ::melissa::testing::temp_dir {
  temp_dir() : ::melissa::testing::temp_dir("melissa-backends") {}
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A file of this source tree (recorded scheduler outputs).
inline std::string source_file(const std::string& relative) {
  const char* dir = std::getenv("MELISSA_SOURCE_DIR");
  return read_file(std::string(dir ? dir : MELISSA_SOURCE_DIR) + "/" + relative);
}

// Records the commands; `answer` decides each result (default: exit 0, no output).
struct fake_runner {
  std::vector<std::vector<std::string>> calls;
  std::function<command_result(const std::vector<std::string>&)> answer =
      [](const std::vector<std::string>&) { return command_result{}; };

  command_runner runner() {
    return [this](const std::vector<std::string>& argv, const std::string&) {
      calls.push_back(argv);
      return answer(argv);
    };
  }
  // Calls whose program is `program`.
  std::size_t count(const std::string& program) const {
    std::size_t n = 0;
    for (const auto& c : calls) n += !c.empty() && c[0] == program;
    return n;
  }
};

// Polls until `id` reaches a final state or `timeout` passes.
inline job_status wait_final(backend& b, const std::string& id,
                             std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const job_status s = b.poll({id}).at(0);
    if (is_final(s.state) || std::chrono::steady_clock::now() > end) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// A fake srun first on PATH while it lives (the schedule-in-schedule mode
// runs srun here): logs its arguments to $FAKE_SRUN_LOG, drops its options
// and runs the step's command here.
struct fake_srun {
  temp_dir dir;
  std::string old_path = std::getenv("PATH");
  fake_srun() {
    write_file(dir / "srun",
               "#!/bin/sh\n"
               "[ -n \"$FAKE_SRUN_LOG\" ] && printf '%s\\n' \"$*\" >> \"$FAKE_SRUN_LOG\"\n"
               "while [ $# -gt 0 ]; do case \"$1\" in --*) shift ;; *) break ;; esac; done\n"
               "exec \"$@\"\n");
    std::filesystem::permissions(dir / "srun", std::filesystem::perms::owner_all);
    ::setenv("PATH", (dir.path + ":" + old_path).c_str(), 1);
  }
  ~fake_srun() { ::setenv("PATH", old_path.c_str(), 1); }
  fake_srun(const fake_srun&) = delete;
  fake_srun& operator=(const fake_srun&) = delete;
};

}  // namespace melissa::scheduler::testing
