// The checkpoint keeper's pure core: manifests that prove a checkpoint whole
// (truncated file, flipped byte, missing manifest each detected), crash-safe
// staging -> commit -> prune, and the choice of the checkpoint to restart from.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <xxhash.h>

#include "actors/checkpoint_keeper/checkpoint_directory.hpp"
#include "tests/lib/temp_dir.hpp"

using namespace melissa::checkpoint;
namespace fs = std::filesystem;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void overwrite(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

void write_part(staging& s, const std::string& relative, const std::string& content) {
  file_writer out(s.prepare(relative), 7);  // tiny buffer: exercises both write paths
  out.write(content.data(), 3);
  out.write(content.data() + 3, content.size() - 3);
  s.add(relative, out.close());
}

manifest header(std::uint64_t batch) {
  manifest m;
  m.study = "heat";
  m.batch = batch;
  m.wall_time = 1764668400.5;
  m.reason = "every_batches";
  m.ranks = 2;
  return m;
}

// A complete checkpoint with two ranks' parts; returns its path.
std::string make_checkpoint(const checkpoint_directory& d, std::uint64_t batch) {
  auto s = d.begin();
  write_part(s, "rank-0/buffer.bin", "rank zero's buffer at batch " + std::to_string(batch));
  write_part(s, "rank-1/buffer.bin", "rank one's buffer, somewhat longer, batch " + std::to_string(batch));
  write_part(s, "study/simulation_table.json", "{\"complete\": [1, 2]}");
  return d.commit(std::move(s), header(batch));
}

}  // namespace

TEST_CASE("file_writer hashes what it writes: the digest equals the file's own") {
  melissa::testing::temp_dir dir("ckpt-files");
  std::string content(10000, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7);
  file_writer out(dir / "a.bin", 64);
  out.write(content.data(), 10);     // buffered
  out.write(content.data() + 10, 5000);  // larger than the buffer: written through
  out.write(content.data() + 5010, content.size() - 5010);
  const auto digest = out.close();
  CHECK(digest.size == content.size());
  CHECK(digest.xxh3 == XXH3_64bits(content.data(), content.size()));
  const auto on_disk = digest_file(dir / "a.bin");
  CHECK(on_disk.size == digest.size);
  CHECK(on_disk.xxh3 == digest.xxh3);
  CHECK(read_all(dir / "a.bin") == content);
}

TEST_CASE("a file_writer dropped before close leaves no partial file") {
  melissa::testing::temp_dir dir("ckpt-files");
  {
    file_writer out(dir / "partial.bin");
    out.write("abc", 3);
  }
  CHECK_FALSE(fs::exists(dir / "partial.bin"));
  CHECK_THROWS_WITH(file_writer(dir / "no/such/dir/x.bin"),
                    doctest::Contains(("cannot create " + (dir / "no/such/dir/x.bin")).c_str()));
}

TEST_CASE("manifest: JSON round trip, and every malformed field named") {
  auto m = header(1200);
  m.sequence = 3;
  m.files = {{"rank-0/buffer.bin", {4096, 0x0123456789abcdefull}}};
  const auto parsed = parse_manifest(to_json(m));
  CHECK(parsed.format_version == 1);
  CHECK(parsed.study == "heat");
  CHECK(parsed.batch == 1200);
  CHECK(parsed.sequence == 3);
  CHECK(parsed.wall_time == 1764668400.5);
  CHECK(parsed.reason == "every_batches");
  CHECK(parsed.ranks == 2);
  REQUIRE(parsed.files.size() == 1);
  CHECK(parsed.files[0].path == "rank-0/buffer.bin");
  CHECK(parsed.files[0].digest.size == 4096);
  CHECK(parsed.files[0].digest.xxh3 == 0x0123456789abcdefull);
  CHECK(to_json(m).find("\"xxh3\": \"0123456789abcdef\"") != std::string::npos);

  CHECK_THROWS_WITH(parse_manifest("{"), doctest::Contains("not JSON"));
  CHECK_THROWS_WITH(parse_manifest("[]"), "not a JSON object");
  auto text = to_json(m);
  CHECK_THROWS_WITH(parse_manifest(text.replace(text.find("\"format_version\": 1"), 19, "\"format_version\": 2")),
                    "format version 2, this build reads version 1");
  CHECK_THROWS_WITH(parse_manifest(R"({"format_version": 1})"), "no \"study\"");
  CHECK_THROWS_WITH(parse_manifest(R"({"format_version": 1, "study": 5})"), "\"study\" has the wrong type");
  m.files[0].path = "../outside";
  CHECK_THROWS_WITH(parse_manifest(to_json(m)), "file path '../outside' leaves the checkpoint directory");
  m.files[0].path = "/etc/passwd";
  CHECK_THROWS_WITH(parse_manifest(to_json(m)), "file path '/etc/passwd' leaves the checkpoint directory");
}

TEST_CASE("commit: a checkpoint appears whole under its final name and verifies") {
  melissa::testing::temp_dir dir("ckpt-dir");
  checkpoint_directory d(dir / "checkpoints");
  const auto path = make_checkpoint(d, 1200);
  CHECK(path == dir / "checkpoints/ckpt-00000001-batch-1200");
  CHECK_FALSE(fs::exists(dir / "checkpoints/.staging-1"));
  const auto v = verify_checkpoint(path);
  CHECK(v.why == "");
  CHECK(v.valid);
  CHECK(v.contents.batch == 1200);
  CHECK(v.contents.sequence == 1);
  CHECK(v.contents.files.size() == 3);
  CHECK(read_all(path + "/study/simulation_table.json") == "{\"complete\": [1, 2]}");
}

TEST_CASE("verification detects a missing manifest, a truncated file, a flipped byte, a missing file") {
  melissa::testing::temp_dir dir("ckpt-verify");
  checkpoint_directory d(dir.path);

  SUBCASE("missing manifest") {
    const auto path = make_checkpoint(d, 10);
    fs::remove(path + "/manifest.json");
    const auto v = verify_checkpoint(path);
    CHECK_FALSE(v.valid);
    CHECK(v.why == "manifest.json is missing");
  }
  SUBCASE("truncated file") {
    const auto path = make_checkpoint(d, 10);
    const auto file = path + "/rank-1/buffer.bin";
    const auto content = read_all(file);
    fs::resize_file(file, content.size() - 1);
    const auto v = verify_checkpoint(path);
    CHECK_FALSE(v.valid);
    CHECK(v.why == "rank-1/buffer.bin has " + std::to_string(content.size() - 1) +
                       " bytes, the manifest says " + std::to_string(content.size()));
  }
  SUBCASE("flipped byte, same size") {
    const auto path = make_checkpoint(d, 10);
    const auto file = path + "/rank-0/buffer.bin";
    auto content = read_all(file);
    const auto expected = to_hex(XXH3_64bits(content.data(), content.size()));
    content[5] ^= 0x01;
    overwrite(file, content);
    const auto v = verify_checkpoint(path);
    CHECK_FALSE(v.valid);
    CHECK(v.why == "rank-0/buffer.bin has checksum " +
                       to_hex(XXH3_64bits(content.data(), content.size())) +
                       ", the manifest says " + expected);
  }
  SUBCASE("missing file") {
    const auto path = make_checkpoint(d, 10);
    fs::remove(path + "/study/simulation_table.json");
    const auto v = verify_checkpoint(path);
    CHECK_FALSE(v.valid);
    CHECK(v.why == "study/simulation_table.json is missing");
  }
  SUBCASE("manifest edited into nonsense") {
    const auto path = make_checkpoint(d, 10);
    overwrite(path + "/manifest.json", "{\"format_version\": 1, \"study\": ");
    const auto v = verify_checkpoint(path);
    CHECK_FALSE(v.valid);
    CHECK(v.why.rfind("manifest.json: not JSON", 0) == 0);
  }
}

TEST_CASE("newest_valid skips a corrupt newest checkpoint and says why") {
  melissa::testing::temp_dir dir("ckpt-choose");
  checkpoint_directory d(dir.path);
  CHECK_FALSE(d.newest_valid().checkpoint);
  make_checkpoint(d, 100);
  const auto second = make_checkpoint(d, 200);
  const auto third = make_checkpoint(d, 300);
  CHECK(d.newest_valid().checkpoint->batch == 300);

  fs::resize_file(third + "/rank-0/buffer.bin", 3);
  const auto chosen = d.newest_valid();
  REQUIRE(chosen.checkpoint);
  CHECK(chosen.checkpoint->path == second);
  CHECK(chosen.checkpoint->batch == 200);
  CHECK(chosen.contents.batch == 200);
  REQUIRE(chosen.skipped.size() == 1);
  CHECK(chosen.skipped[0].rfind(third + ": rank-0/buffer.bin has 3 bytes", 0) == 0);

  // Nothing valid at all: no checkpoint, every reason listed.
  fs::remove(second + "/manifest.json");
  fs::remove(dir.path + "/ckpt-00000001-batch-100/manifest.json");
  const auto none = d.newest_valid();
  CHECK_FALSE(none.checkpoint);
  CHECK(none.skipped.size() == 3);
}

TEST_CASE("a crash before commit leaves the previous checkpoint; prune keeps `keep` and clears leftovers") {
  melissa::testing::temp_dir dir("ckpt-prune");
  checkpoint_directory d(dir.path);
  make_checkpoint(d, 100);
  // A writer that died mid-way: a staging directory, no manifest.
  auto crashed = d.begin();
  write_part(crashed, "rank-0/buffer.bin", "half");
  CHECK(crashed.sequence == 2);
  CHECK(d.newest_valid().checkpoint->batch == 100);
  CHECK(d.list().size() == 1);

  // The next checkpoint numbers itself after the leftover; prune removes it.
  const auto third = make_checkpoint(d, 300);
  CHECK(third == dir / "ckpt-00000003-batch-300");
  make_checkpoint(d, 400);
  make_checkpoint(d, 500);
  CHECK(d.list().size() == 4);
  d.prune(2);
  const auto left = d.list();
  REQUIRE(left.size() == 2);
  CHECK(left[0].batch == 500);
  CHECK(left[1].batch == 400);
  CHECK_FALSE(fs::exists(crashed.path));
  CHECK(d.newest_valid().checkpoint->batch == 500);
  // Names that are not checkpoints are left alone.
  fs::create_directory(dir / "notes");
  d.prune(1);
  CHECK(fs::exists(dir / "notes"));
  CHECK(d.list().size() == 1);
}
