#include <doctest/doctest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "actors/dataset_sink/dataset_writer.hpp"
#include "messages/npy.hpp"

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

fs::path fresh_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("melissa-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
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
  const auto dir = fresh_dir("dataset");
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
  fs::remove_all(dir);
}

TEST_CASE("simulations still open when the writer ends get valid headers") {
  const auto dir = fresh_dir("unfinished");
  {
    melissa::dataset_writer w(dir.string(), {"a", "b"}, {});
    const std::vector<float> v{1, 2};
    w.write_step(4, 1, 0, v.data(), 2);
  }
  const auto data = slurp(dir / "sim_000004" / "b.npy");
  CHECK(data.find("'shape': (1, 2)") != std::string::npos);
  fs::remove_all(dir);
}
