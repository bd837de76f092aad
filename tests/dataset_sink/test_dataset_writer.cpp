#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "actors/dataset_sink/dataset_writer.hpp"
#include "messages/npy.hpp"
#include "tests/lib/temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}


}  // namespace

TEST_CASE("npy header is what numpy writes, padded to 64 bytes") {
  const auto h = melissa::npy::header("<f4", {3, 4});
  CHECK(h.size() % 64 == 0);
  CHECK(h.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  const auto len = static_cast<unsigned char>(h[8]) | (static_cast<unsigned char>(h[9]) << 8);
  CHECK(len == h.size() - 10);
  CHECK(h.find("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }") == 10);
  CHECK(h.back() == '\n');
  CHECK(melissa::npy::header("<f8", {5}).find("'shape': (5,)") != std::string::npos);
  CHECK(melissa::npy::header("<f4", {1}, 128).size() == 128);
}

TEST_CASE("dataset writer puts rows at their time step, whatever the arrival order") {
  const melissa::testing::temp_dir tmp("melissa-test-dataset");
  const auto dir = fs::path(tmp.path) / "dataset";  // not there yet
  {
    melissa::dataset_writer w(dir.string(), {"temperature"}, {{1.0, 2.0}, {3.0, 4.0}});
    const std::vector<float> row0{0, 1, 2}, row1{10, 11, 12}, row2{20, 21, 22};
    w.write_step(1, 0, 2, row2.data(), 3);
    w.write_step(1, 0, 0, row0.data(), 3);
    w.write_step(1, 0, 1, row1.data(), 3);
    w.finish(1);
    CHECK(w.finished() == 1);
  }
  const auto sim = dir / "sim_000001";
  const auto data = slurp(sim / "temperature.npy");
  REQUIRE(data.size() == 128 + 9 * 4);
  CHECK(data.find("'shape': (3, 3)") != std::string::npos);
  std::vector<float> values(9);
  std::memcpy(values.data(), data.data() + 128, 36);
  CHECK(values == std::vector<float>{0, 1, 2, 10, 11, 12, 20, 21, 22});
  const auto params = slurp(sim / "parameters.npy");
  const std::size_t header = 10 + (static_cast<unsigned char>(params[8]) |
                                   (static_cast<unsigned char>(params[9]) << 8));
  REQUIRE(params.size() == header + 16);
  double p[2];
  std::memcpy(p, params.data() + header, 16);
  CHECK(p[0] == 3.0);
  CHECK(p[1] == 4.0);
}

TEST_CASE("simulations still open when the writer ends keep their .part files, valid headers") {
  const melissa::testing::temp_dir tmp("melissa-test-unfinished");
  const auto dir = fs::path(tmp.path) / "unfinished";  // not there yet
  {
    melissa::dataset_writer w(dir.string(), {"a", "b"}, {});
    const std::vector<float> v{1, 2};
    w.write_step(4, 1, 0, v.data(), 2);
    w.write_step(4, 1, 2, v.data(), 2);  // step 1 never came
  }
  CHECK_FALSE(fs::exists(dir / "sim_000004" / "b.npy"));
  const auto data = slurp(dir / "sim_000004" / "b.npy.part");
  // Only the rows held from step 0 on: step 2 past the gap is not claimed.
  CHECK(data.find("'shape': (1, 2)") != std::string::npos);
  CHECK(data.size() == 128 + 2 * 4);
}

TEST_CASE("a file is not visible under its final name before its simulation is finished") {
  const melissa::testing::temp_dir tmp("melissa-test-visible");
  const auto dir = fs::path(tmp.path) / "visible";  // not there yet
  melissa::dataset_writer w(dir.string(), {"temperature"}, {{1.0}});
  const std::vector<float> row{1, 2, 3};
  w.write_step(0, 0, 0, row.data(), 3);
  w.write_step(0, 0, 1, row.data(), 3);
  const auto sim = dir / "sim_000000";
  CHECK_FALSE(fs::exists(sim / "temperature.npy"));
  CHECK_FALSE(fs::exists(sim / "parameters.npy"));
  CHECK(fs::exists(sim / "temperature.npy.part"));
  w.finish(0);
  CHECK(fs::exists(sim / "temperature.npy"));
  CHECK_FALSE(fs::exists(sim / "temperature.npy.part"));
  CHECK(slurp(sim / "temperature.npy").find("'shape': (2, 3)") != std::string::npos);
}

TEST_CASE("a retried attempt after a clean finish leaves the finished files as they were") {
  const melissa::testing::temp_dir tmp("melissa-test-retry");
  const auto dir = fs::path(tmp.path) / "retry";  // not there yet
  const auto sim = dir / "sim_000003";
  std::string before;
  {
    melissa::dataset_writer w(dir.string(), {"temperature"}, {{}, {}, {}, {7.0}});
    for (std::uint32_t t = 0; t < 20; ++t) {
      const std::vector<float> row{float(t), float(t) + 0.5f};
      w.write_step(3, 0, t, row.data(), 2);
    }
    w.finish(3);
    before = slurp(sim / "temperature.npy");
    // Attempt 2 of simulation 3 resends from step 0 (here: other values, and
    // fewer steps, as a client that dies again would).
    for (std::uint32_t t = 0; t < 10; ++t) {
      const std::vector<float> zero{0, 0};
      CHECK_FALSE(w.write_step(3, 0, t, zero.data(), 2));
    }
    w.finish(3);  // its clean end: nothing to do
    CHECK(w.finished() == 1);
    CHECK(w.steps_after_finish() == 10);
  }
  const auto after = slurp(sim / "temperature.npy");
  CHECK(after == before);
  REQUIRE(after.size() == 128 + 20 * 2 * 4);
  std::vector<float> values(40);
  std::memcpy(values.data(), after.data() + 128, 160);
  for (std::uint32_t t = 0; t < 20; ++t) {
    CHECK(values[2 * t] == float(t));
    CHECK(values[2 * t + 1] == float(t) + 0.5f);
  }
  CHECK_FALSE(fs::exists(sim / "temperature.npy.part"));
}

TEST_CASE("an I/O error names the file and the system error") {
  const melissa::testing::temp_dir tmp("melissa-test-ioerror");
  const auto dir = fs::path(tmp.path) / "ioerror";  // not there yet
  melissa::dataset_writer w(dir.string(), {"temperature"}, {});
  // A directory where the .part file should be: it cannot be opened for writing.
  fs::create_directories(dir / "sim_000001" / "temperature.npy.part");
  const std::vector<float> row{1};
  try {
    w.write_step(1, 0, 0, row.data(), 1);
    FAIL("no error");
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    CHECK(what.find((dir / "sim_000001" / "temperature.npy.part").string()) != std::string::npos);
    CHECK(what.find("Is a directory") != std::string::npos);
  }
}

TEST_CASE("a restarted dataset server counts only complete files of its own parameters") {
  const melissa::testing::temp_dir tmp("melissa-test-dataset-scan");
  const auto dir = (fs::path(tmp.path) / "dataset").string();
  const std::vector<std::vector<double>> design{{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}, {7.0, 8.0},
                                                {9.0, 10.0}};
  const std::vector<float> row{1, 2, 3};
  {
    melissa::dataset_writer w(dir, {"u", "v"}, design);
    for (std::uint32_t sim = 0; sim < 5; ++sim)
      for (std::uint32_t f = 0; f < 2; ++f)
        for (std::uint32_t t = 0; t < 2; ++t) {
          if (sim == 1 && f == 1 && t == 1) continue;  // sim 1 never finishes
          w.write_step(sim, f, t, row.data(), 3);
        }
    w.finish(0);
    w.finish(2);
    w.finish(3);
    w.finish(4);
  }  // sim 1 stays in .part files
  // sim 2: another study's parameters; sim 3: a field file cut short.
  {
    melissa::dataset_writer other(dir + "-other", {"u", "v"}, {{}, {}, {5.0, 6.5}});
    for (std::uint32_t f = 0; f < 2; ++f)
      for (std::uint32_t t = 0; t < 2; ++t) other.write_step(2, f, t, row.data(), 3);
    other.finish(2);
  }
  fs::copy_file(dir + "-other/sim_000002/parameters.npy", dir + "/sim_000002/parameters.npy",
                fs::copy_options::overwrite_existing);
  fs::resize_file(dir + "/sim_000003/v.npy", fs::file_size(dir + "/sim_000003/v.npy") - 4);
  CHECK(fs::exists(dir + "/sim_000001/u.npy.part"));

  const auto complete = melissa::complete_simulations(dir, {"u", "v"}, {3, 3}, 2, design);
  CHECK(complete == std::vector<std::uint32_t>{0, 4});
  // Another number of steps or cells: nothing counts.
  CHECK(melissa::complete_simulations(dir, {"u", "v"}, {3, 3}, 3, design).empty());
  CHECK(melissa::complete_simulations(dir, {"u", "v"}, {4, 3}, 2, design).empty());
  CHECK(melissa::complete_simulations(dir + "-missing", {"u"}, {3}, 2, design).empty());

  // Restarted: the complete ones are never written again, the rest is rewritten.
  const auto before = slurp(dir + "/sim_000000/u.npy");
  melissa::dataset_writer again(dir, {"u", "v"}, design);
  again.mark_finished(complete);
  const std::vector<float> other_row{7, 7, 7};
  CHECK_FALSE(again.write_step(0, 0, 0, other_row.data(), 3));
  again.finish(0);
  CHECK(slurp(dir + "/sim_000000/u.npy") == before);
  for (std::uint32_t f = 0; f < 2; ++f)
    for (std::uint32_t t = 0; t < 2; ++t) CHECK(again.write_step(1, f, t, other_row.data(), 3));
  again.finish(1);
  CHECK_FALSE(fs::exists(dir + "/sim_000001/u.npy.part"));
  CHECK(melissa::complete_simulations(dir, {"u", "v"}, {3, 3}, 2, design) ==
        std::vector<std::uint32_t>{0, 1, 4});
}
