// Several ranks, one checkpoint (rank_commit.hpp, checkpoint_writer's shared
// jobs): two writers on one directory stand for two ranks. All parts there:
// rank 0 commits one manifest listing both ranks' files, which verifies, and
// rank 1 hears its path; a part that never comes, or fails, abandons that
// checkpoint with the reason and the previous one stays the newest valid.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"
#include "actors/checkpoint_keeper/checkpoint_manifest.hpp"
#include "actors/checkpoint_keeper/checkpoint_writer.hpp"
#include "actors/checkpoint_keeper/rank_commit.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::checkpoint;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

checkpoint_part text_part(std::string relative, std::string text) {
  return [relative, text](staging& s) {
    file_writer out(s.prepare(relative));
    out.write(text.data(), text.size());
    s.add(relative, out.close());
  };
}

checkpoint_job shared_job(std::uint64_t batch, const std::string& id, std::uint32_t rank,
                          std::vector<checkpoint_part> parts, std::chrono::milliseconds wait = 20s) {
  checkpoint_job j;
  j.header.study = "unit";
  j.header.batch = batch;
  j.header.reason = "every_batches";
  j.header.ranks = 2;
  j.parts = std::move(parts);
  j.shared_id = id;
  j.rank = rank;
  j.part_wait = wait;
  return j;
}

// One "rank": a writer whose results arrive in a future per job.
struct rank_writer {
  std::promise<write_result> result;
  checkpoint_writer writer;
  rank_writer(const std::string& root)
      : writer(root, 5, [this](const write_result& r) { result.set_value(r); }) {}
  std::future<write_result> submit(checkpoint_job job) {
    result = std::promise<write_result>();
    auto f = result.get_future();
    REQUIRE(writer.submit(std::move(job)));
    return f;
  }
};

write_result get(std::future<write_result>& f) {
  REQUIRE(f.wait_for(60s) == std::future_status::ready);
  return f.get();
}

bool lists(const manifest& m, const std::string& path) {
  for (const auto& f : m.files)
    if (f.path == path) return true;
  return false;
}

}  // namespace

TEST_CASE("two ranks' parts in one staging directory: rank 0 commits one manifest that verifies") {
  melissa::testing::temp_dir dir("melissa-rank-commit");
  const std::string root = dir / "ckpt";
  rank_writer rank0(root), rank1(root);
  // Rank 1 comes first here: rank 0 must wait for it, not commit without it.
  auto r1 = rank1.submit(shared_job(10, "10-1", 1, {text_part("rank-1/received_steps.json", "{\"r\": 1}"),
                                                   text_part("rank-1/buffer.bin", std::string(4096, 'b'))}));
  auto r0 = rank0.submit(shared_job(10, "10-1", 0, {text_part("rank-0/received_steps.json", "{\"r\": 0}"),
                                                   text_part("study/simulation_table.json", "{}")}));
  const auto w0 = get(r0);
  const auto w1 = get(r1);
  REQUIRE_MESSAGE(w0.ok, w0.error);
  REQUIRE_MESSAGE(w1.ok, w1.error);
  CHECK(w1.path == w0.path);  // rank 1 hears where rank 0 committed
  CHECK(fs::path(w0.path).filename() == "ckpt-00000001-batch-10");
  const auto v = verify_checkpoint(w0.path);
  REQUIRE_MESSAGE(v.valid, v.why);
  CHECK(v.contents.ranks == 2);
  CHECK(v.contents.batch == 10);
  CHECK(lists(v.contents, "rank-0/received_steps.json"));
  CHECK(lists(v.contents, "rank-1/received_steps.json"));
  CHECK(lists(v.contents, "rank-1/buffer.bin"));
  CHECK(lists(v.contents, "study/simulation_table.json"));
  CHECK(v.contents.files.size() == 4);
  CHECK(w0.bytes == 4096 + 8 + 8 + 2);  // every rank's files
  // Rank 1's checksums, from its part.json, are what verification checks.
  {
    std::fstream f(w0.path + "/rank-1/buffer.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('x');
  }
  const auto flipped = verify_checkpoint(w0.path);
  CHECK_FALSE(flipped.valid);
  CHECK(flipped.why.find("rank-1/buffer.bin") != std::string::npos);
  // No staging directory is left; the next checkpoint is numbered after it.
  for (const auto& e : fs::directory_iterator(root))
    CHECK(e.path().filename().string().rfind(".parts-", 0) != 0);
}

TEST_CASE("a rank's part that never comes: the checkpoint is abandoned with the reason, the previous stays") {
  melissa::testing::temp_dir dir("melissa-rank-commit");
  const std::string root = dir / "ckpt";
  rank_writer rank0(root), rank1(root);
  auto a1 = rank1.submit(shared_job(5, "5-1", 1, {text_part("rank-1/received_steps.json", "{}")}));
  auto a0 = rank0.submit(shared_job(5, "5-1", 0, {text_part("rank-0/received_steps.json", "{}")}));
  const auto first = get(a0);
  REQUIRE_MESSAGE(first.ok, first.error);
  REQUIRE(get(a1).ok);
  // The next one: rank 1 never writes its part (it died). Rank 0 waits 300 ms.
  const auto t0 = std::chrono::steady_clock::now();
  auto b0 = rank0.submit(shared_job(10, "10-2", 0, {text_part("rank-0/received_steps.json", "{}")}, 300ms));
  const auto second = get(b0);
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
  CHECK_FALSE(second.ok);
  CHECK_MESSAGE(second.error.find("rank 1's part did not come within 0.3 s") != std::string::npos,
                second.error);
  checkpoint_directory d(root);
  const auto chosen = d.newest_valid();
  REQUIRE(chosen.checkpoint);
  CHECK(chosen.checkpoint->path == first.path);
  CHECK(chosen.skipped.empty());
  CHECK(d.list().size() == 1);  // nothing with a checkpoint's name was made
  // A rank 1 that comes late hears that the checkpoint was abandoned, and why.
  try {
    await_commit(root, "10-2", 1s);
    FAIL("await_commit should throw");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("abandoned") != std::string::npos);
    CHECK(std::string(e.what()).find("rank 1's part did not come") != std::string::npos);
  }
}

TEST_CASE("a rank whose part fails: rank 0 abandons at once with that rank's reason") {
  melissa::testing::temp_dir dir("melissa-rank-commit");
  const std::string root = dir / "ckpt";
  rank_writer rank0(root), rank1(root);
  auto f1 = rank1.submit(shared_job(
      7, "7-1", 1, {[](staging&) { throw std::runtime_error("rank-1/buffer.bin: No space left on device"); }}));
  const auto t0 = std::chrono::steady_clock::now();
  auto f0 = rank0.submit(shared_job(7, "7-1", 0, {text_part("rank-0/received_steps.json", "{}")}, 60s));
  const auto w0 = get(f0);
  const auto w1 = get(f1);
  CHECK(std::chrono::steady_clock::now() - t0 < 30s);  // not the whole wait
  CHECK_FALSE(w0.ok);
  CHECK_MESSAGE(w0.error.find("rank 1 could not write its part: rank-1/buffer.bin: No space left") !=
                    std::string::npos,
                w0.error);
  CHECK_FALSE(w1.ok);
  CHECK(checkpoint_directory(root).list().empty());
}

TEST_CASE("a rank's part.json that does not match its files is refused") {
  melissa::testing::temp_dir dir("melissa-rank-commit");
  const std::string root = dir / "ckpt";
  fs::create_directories(root);
  auto s1 = open_shared_staging(root, "3-1");
  text_part("rank-1/buffer.bin", "12345678")(s1);
  publish_part(s1, 1);
  fs::resize_file(s1.path + "/rank-1/buffer.bin", 4);  // truncated after it said done
  auto s0 = open_shared_staging(root, "3-1");
  CHECK(s0.path == s1.path);
  try {
    gather_parts(s0, 2, 1s);
    FAIL("gather_parts should throw");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find("rank-1/buffer.bin has 4 bytes, rank 1's part.json says 8") !=
          std::string::npos);
  }
  // A stopped server's leftovers go at the next start.
  remove_shared_leftovers(root);
  CHECK_FALSE(fs::exists(s0.path));
}
