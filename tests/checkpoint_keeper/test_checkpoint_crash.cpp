// Crash safety with a real process: a child writes checkpoints in a loop and
// is SIGKILLed at arbitrary moments. Whatever the moment, every directory
// named as a complete checkpoint verifies, the newest valid one exists, and
// the next writer goes on (numbering after the leftovers, then clearing
// them). A SIGKILL keeps the page cache, so this checks the order of the
// steps (manifest last, rename, prune after), not the fsyncs.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "actors/checkpoint_keeper/checkpoint_writer.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::checkpoint;
namespace fs = std::filesystem;

namespace {

checkpoint_job job(std::uint64_t batch) {
  checkpoint_job j;
  j.header.study = "crash";
  j.header.batch = batch;
  j.header.reason = "test";
  for (int rank = 0; rank < 2; ++rank)
    j.parts.push_back([rank, batch](staging& s) {
      const std::string relative = "rank-" + std::to_string(rank) + "/buffer.bin";
      file_writer out(s.prepare(relative), 1 << 16);
      std::string block(1 << 16, static_cast<char>('a' + batch % 26));
      for (int k = 0; k < 16; ++k) out.write(block.data(), block.size());  // 1 MiB
      s.add(relative, out.close());
    });
  return j;
}

[[noreturn]] void write_forever(const std::string& root) {
  checkpoint_writer writer(root, 2, nullptr);
  for (std::uint64_t batch = 1;; ++batch) {
    while (!writer.submit(job(batch))) std::this_thread::sleep_for(std::chrono::microseconds(100));
    writer.wait_idle();
  }
}

bool wait_for_checkpoint(const checkpoint_directory& d, double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (!d.list().empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace

TEST_CASE("SIGKILL at any moment never leaves a complete-looking checkpoint that is not whole") {
  melissa::testing::temp_dir dir("ckpt-crash");
  checkpoint_directory d(dir.path);
  std::mt19937 random(12345);
  for (int round = 0; round < 6; ++round) {
    CAPTURE(round);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) write_forever(dir.path);
    // Generous: a loaded machine may take seconds to write the first one.
    REQUIRE(wait_for_checkpoint(d, 120));
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 200));
    ::kill(child, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));

    for (const auto& c : d.list()) {
      CAPTURE(c.path);
      const auto v = verify_checkpoint(c.path);
      CHECK(v.why == "");
      CHECK(v.valid);
    }
    const auto chosen = d.newest_valid();
    REQUIRE(chosen.checkpoint);
    CHECK(chosen.skipped.empty());
  }
  // The next writer: numbered after everything present, and it clears up.
  std::uint64_t highest = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    const auto name = entry.path().filename().string();
    const auto digits = name.substr(name.find_first_of("0123456789"));
    highest = std::max<std::uint64_t>(highest, std::stoull(digits));
  }
  {
    checkpoint_writer writer(dir.path, 2, nullptr);
    REQUIRE(writer.submit(job(1000)));
    writer.wait_idle();
  }
  const auto left = d.list();
  REQUIRE(left.size() == 2);
  CHECK(left[0].batch == 1000);
  CHECK(left[0].sequence == highest + 1);
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    CHECK(entry.path().filename().string().rfind(".staging-", 0) != 0);
    CHECK(entry.path().filename().string().rfind(".pruning-", 0) != 0);
  }
}
