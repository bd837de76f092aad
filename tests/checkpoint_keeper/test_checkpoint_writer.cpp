// The writer thread (commit + prune off the caller's thread, one job at a
// time, failures reported), the schedule (every_batches / every_seconds,
// whichever first) and the training buffer's file part.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "actors/checkpoint_keeper/buffer_file.hpp"
#include "actors/checkpoint_keeper/checkpoint_schedule.hpp"
#include "actors/checkpoint_keeper/checkpoint_writer.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::checkpoint;
namespace fs = std::filesystem;

namespace {

checkpoint_part text_part(std::string relative, std::string text) {
  return [relative, text](staging& s) {
    file_writer out(s.prepare(relative));
    out.write(text.data(), text.size());
    s.add(relative, out.close());
  };
}

checkpoint_job job(std::uint64_t batch, std::vector<checkpoint_part> parts) {
  checkpoint_job j;
  j.header.study = "heat";
  j.header.batch = batch;
  j.header.reason = "test";
  j.parts = std::move(parts);
  return j;
}

melissa::training_sample sample(std::uint32_t sim, std::uint32_t step) {
  melissa::training_sample s;
  s.sim_id = sim;
  s.time_step = step;
  s.input = {0.5f, static_cast<float>(step)};
  s.target = std::make_shared<const std::vector<float>>(std::vector<float>(100, sim + 0.5f * step));
  return s;
}

}  // namespace

TEST_CASE("schedule: every_batches or every_seconds, whichever comes first; 0 switches one off") {
  checkpoint_schedule s(100, 60, 0, 1000.0);
  CHECK(s.due(0, 5000.0) == "");  // nothing trained since: nothing to save
  CHECK(s.due(99, 1059.0) == "");
  CHECK(s.due(100, 1001.0) == "every_batches");
  CHECK(s.due(5, 1060.0) == "every_seconds");
  s.taken(5, 1060.0);
  CHECK(s.due(104, 1119.0) == "");
  CHECK(s.due(105, 1100.0) == "every_batches");
  CHECK(s.due(6, 1120.0) == "every_seconds");

  checkpoint_schedule batches_only(10, 0, 0, 0.0);
  CHECK(batches_only.due(9, 1e9) == "");
  CHECK(batches_only.due(10, 0.0) == "every_batches");
  checkpoint_schedule seconds_only(0, 30, 0, 0.0);
  CHECK(seconds_only.due(1000000, 29.0) == "");
  CHECK(seconds_only.due(1, 30.0) == "every_seconds");
}

TEST_CASE("writer: commits on its own thread, prunes beyond keep, reports each result") {
  melissa::testing::temp_dir dir("ckpt-writer");
  std::mutex m;
  std::vector<write_result> results;
  std::promise<void> release;
  auto released = release.get_future().share();
  {
    checkpoint_writer writer(dir / "ck", 2, [&](const write_result& r) {
      std::lock_guard<std::mutex> lock(m);
      results.push_back(r);
    });
    // A part that blocks until the test lets it go: the writer is busy and
    // refuses a second job meanwhile (no snapshots pile up).
    CHECK(writer.submit(job(10, {text_part("rank-0/a.txt", "first"), [released](staging&) {
                                    released.wait();
                                  }})));
    CHECK(writer.busy());
    CHECK_FALSE(writer.submit(job(11, {text_part("rank-0/a.txt", "refused")})));
    release.set_value();
    writer.wait_idle();
    CHECK_FALSE(writer.busy());
    for (std::uint64_t batch : {20, 30, 40}) {
      REQUIRE(writer.submit(job(batch, {text_part("rank-0/a.txt", "batch " + std::to_string(batch)),
                                        text_part("rank-1/a.txt", "other rank")})));
      writer.wait_idle();
    }
  }
  REQUIRE(results.size() == 4);
  CHECK(results[0].ok);
  CHECK(results[0].batch == 10);
  CHECK(results[0].bytes == 5);
  CHECK(results[3].ok);
  CHECK(results[3].path == dir / "ck/ckpt-00000004-batch-40");
  CHECK(results[3].bytes == 8 + 10);
  checkpoint_directory d(dir / "ck");
  const auto left = d.list();
  REQUIRE(left.size() == 2);
  CHECK(left[0].batch == 40);
  CHECK(left[1].batch == 30);
  const auto chosen = d.newest_valid();
  REQUIRE(chosen.checkpoint);
  CHECK(chosen.contents.study == "heat");
  CHECK(chosen.contents.reason == "test");
  CHECK(chosen.contents.wall_time > 1.7e9);
}

TEST_CASE("writer: a failing part abandons that checkpoint; the previous ones stay") {
  melissa::testing::temp_dir dir("ckpt-writer-fail");
  std::vector<write_result> results;
  {
    checkpoint_writer writer(dir.path, 1, [&](const write_result& r) { results.push_back(r); });
    REQUIRE(writer.submit(job(1, {text_part("a.txt", "good")})));
    writer.wait_idle();
    REQUIRE(writer.submit(job(2, {text_part("a.txt", "x"), [](staging&) {
                                    throw std::runtime_error("the disk is full");
                                  }})));
    writer.wait_idle();
  }
  REQUIRE(results.size() == 2);
  CHECK(results[0].ok);
  CHECK_FALSE(results[1].ok);
  CHECK(results[1].error == "the disk is full");
  const auto chosen = checkpoint_directory(dir.path).newest_valid();
  REQUIRE(chosen.checkpoint);
  CHECK(chosen.checkpoint->batch == 1);
}

TEST_CASE("buffer part: written with its digest, read back equal, damage named with the path") {
  melissa::testing::temp_dir dir("ckpt-buffer");
  auto buffer = melissa::make_training_buffer({melissa::buffer_policy::reservoir, 8, 2, 5});
  for (std::uint32_t i = 0; i < 8; ++i) buffer->put(sample(i, i));
  buffer->draw(3);
  const auto digest = write_buffer_file(buffer->snapshot(), dir / "buffer.bin");
  const auto on_disk = digest_file(dir / "buffer.bin");
  CHECK(digest.size == on_disk.size);
  CHECK(digest.xxh3 == on_disk.xxh3);
  CHECK(digest.size == melissa::buffer_snapshot_bytes(buffer->snapshot()));
  auto restored = melissa::restore_training_buffer(read_buffer_file(dir / "buffer.bin"));
  CHECK(restored->population() == 8);
  CHECK(restored->unseen() == buffer->unseen());
  CHECK(restored->repetition_histogram() == buffer->repetition_histogram());
  auto a = buffer->draw(4), b = restored->draw(4);
  CHECK(a.sim_ids == b.sim_ids);
  CHECK(a.targets == b.targets);

  fs::resize_file(dir / "buffer.bin", digest.size / 2);
  CHECK_THROWS_WITH(read_buffer_file(dir / "buffer.bin"),
                    ((dir / "buffer.bin") + ": training buffer checkpoint: the file ends early").c_str());
  CHECK_THROWS_WITH(read_buffer_file(dir / "none.bin"),
                    doctest::Contains(("cannot open " + (dir / "none.bin")).c_str()));
}
