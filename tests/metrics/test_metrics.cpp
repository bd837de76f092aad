// metrics_writer: CRC-32C, TensorBoard records read back by an independent
// reader written here, and the exact CSV text.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "actors/metrics/crc32c.hpp"
#include "actors/metrics/metrics_writer.hpp"
#include "actors/metrics/tfevents.hpp"
#include "tests/lib/temp_dir.hpp"

using melissa::testing::temp_dir;

namespace fs = std::filesystem;
using melissa::crc32c;
using melissa::mask_crc32c;

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// --- a minimal reader of records and of the Event fields this project writes ---

struct value {
  std::string tag;
  float simple_value = 0;
};
struct event {
  double wall_time = 0;
  std::int64_t step = 0;
  std::string file_version;
  std::vector<value> values;
};

struct cursor {
  const std::string& bytes;
  std::size_t at = 0;
  bool done() const { return at >= bytes.size(); }
  std::uint8_t byte() {
    if (at >= bytes.size()) throw std::runtime_error("protobuf: truncated");
    return static_cast<std::uint8_t>(bytes[at++]);
  }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      const auto b = byte();
      v |= std::uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("protobuf: varint too long");
  }
  std::uint64_t fixed(int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t(byte()) << (8 * i);
    return v;
  }
  std::string bytes_field() {
    const auto n = varint();
    if (at + n > bytes.size()) throw std::runtime_error("protobuf: truncated bytes");
    std::string s = bytes.substr(at, n);
    at += n;
    return s;
  }
};

value parse_value(const std::string& data) {
  value v;
  cursor c{data};
  while (!c.done()) {
    const auto key = c.varint();
    if (key == ((1 << 3) | 2)) v.tag = c.bytes_field();
    else if (key == ((2 << 3) | 5)) {
      const auto bits = static_cast<std::uint32_t>(c.fixed(4));
      std::memcpy(&v.simple_value, &bits, 4);
    } else throw std::runtime_error("Value: unexpected key " + std::to_string(key));
  }
  return v;
}

event parse_event(const std::string& data) {
  event e;
  cursor c{data};
  while (!c.done()) {
    const auto key = c.varint();
    if (key == ((1 << 3) | 1)) {
      const auto bits = c.fixed(8);
      std::memcpy(&e.wall_time, &bits, 8);
    } else if (key == ((2 << 3) | 0)) {
      e.step = static_cast<std::int64_t>(c.varint());
    } else if (key == ((3 << 3) | 2)) {
      e.file_version = c.bytes_field();
    } else if (key == ((5 << 3) | 2)) {
      const auto summary = c.bytes_field();
      cursor s{summary};
      while (!s.done()) {
        if (s.varint() != ((1 << 3) | 2)) throw std::runtime_error("Summary: unexpected key");
        e.values.push_back(parse_value(s.bytes_field()));
      }
    } else {
      throw std::runtime_error("Event: unexpected key " + std::to_string(key));
    }
  }
  return e;
}

// Splits a tfevents file into records, checking both CRCs of each.
std::vector<std::string> read_records(const std::string& file) {
  std::vector<std::string> records;
  cursor c{file};
  while (!c.done()) {
    const std::size_t length_at = c.at;
    const auto length = c.fixed(8);
    const auto length_crc = static_cast<std::uint32_t>(c.fixed(4));
    REQUIRE(length_crc == mask_crc32c(crc32c(file.data() + length_at, 8)));
    REQUIRE(c.at + length + 4 <= file.size());
    std::string data = file.substr(c.at, length);
    c.at += length;
    const auto data_crc = static_cast<std::uint32_t>(c.fixed(4));
    REQUIRE(data_crc == mask_crc32c(crc32c(data.data(), data.size())));
    records.push_back(std::move(data));
  }
  return records;
}

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) files.push_back(e.path());
  return files;
}

}  // namespace

TEST_CASE("crc32c of the standard check vectors") {
  CHECK(crc32c("123456789", 9) == 0xE3069283u);
  CHECK(crc32c("", 0) == 0u);
  // RFC 3720 (iSCSI) B.4 vectors.
  std::vector<unsigned char> zeros(32, 0), ones(32, 0xff), ascending(32), descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<unsigned char>(i);
    descending[i] = static_cast<unsigned char>(31 - i);
  }
  CHECK(crc32c(zeros.data(), 32) == 0x8A9136AAu);
  CHECK(crc32c(ones.data(), 32) == 0x62A8AB43u);
  CHECK(crc32c(ascending.data(), 32) == 0x46DD794Eu);
  CHECK(crc32c(descending.data(), 32) == 0x113FDB5Cu);
  // Continuing a CRC over a second piece equals the CRC of the whole.
  CHECK(crc32c("6789", 4, crc32c("12345", 5)) == 0xE3069283u);
}

TEST_CASE("masked crc") {
  CHECK(mask_crc32c(0) == 0xa282ead8u);
  const std::uint32_t crc = 0xE3069283u;
  CHECK(mask_crc32c(crc) == static_cast<std::uint32_t>(((crc >> 15) | (crc << 17)) + 0xa282ead8u));
}

TEST_CASE("an event file reads back: file version first, then the scalars with their steps") {
  temp_dir tmp;
  {
    melissa::metrics_writer w(tmp.path, {"loss/train", "loss/validation", "lr"});
    w.record(0, 1700000000.25, {{"loss/train", 0.5}, {"lr", 0.001}});
    w.record(300, 1700000001.5, {{"loss/validation", 1.25}});
    // Flushed per record: readable while the writer is open.
    const auto records = read_records(read_all(w.tfevents_path()));
    CHECK(records.size() == 3);
  }
  const auto files = event_files(tmp.path + "/metrics");
  REQUIRE(files.size() == 1);
  const auto name = fs::path(files[0]).filename().string();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  CHECK(name.size() > std::string(host).size());
  CHECK(name.compare(name.size() - std::string(host).size(), std::string::npos, host) == 0);

  const auto records = read_records(read_all(files[0]));
  REQUIRE(records.size() == 3);
  const auto first = parse_event(records[0]);
  CHECK(first.file_version == "brain.Event:2");
  CHECK(first.wall_time > 1.6e9);
  CHECK(first.values.empty());

  const auto a = parse_event(records[1]);
  CHECK(a.step == 0);
  CHECK(a.wall_time == 1700000000.25);
  REQUIRE(a.values.size() == 2);
  CHECK(a.values[0].tag == "loss/train");
  CHECK(a.values[0].simple_value == 0.5f);
  CHECK(a.values[1].tag == "lr");
  CHECK(a.values[1].simple_value == 0.001f);

  const auto b = parse_event(records[2]);
  CHECK(b.step == 300);
  CHECK(b.wall_time == 1700000001.5);
  REQUIRE(b.values.size() == 1);
  CHECK(b.values[0].tag == "loss/validation");
  CHECK(b.values[0].simple_value == 1.25f);
}

TEST_CASE("scalar event encoding: large and negative steps are int64 varints") {
  for (std::int64_t step : {std::int64_t(0), std::int64_t(127), std::int64_t(128),
                            std::int64_t(1) << 40, std::int64_t(-1)}) {
    const auto e = parse_event(melissa::tfevents::scalar_event(2.0, step, {{"x", -3.5f}}));
    CHECK(e.step == step);
    CHECK(e.values.at(0).simple_value == -3.5f);
  }
  // The exact bytes of a tiny event, as protobuf would write them.
  const auto bytes = melissa::tfevents::scalar_event(0.0, 1, {{"a", 1.0f}});
  const std::string expected("\x09\0\0\0\0\0\0\0\0"  // wall_time 0.0
                             "\x10\x01"              // step 1
                             "\x2a\x0a"              // summary, 10 bytes
                             "\x0a\x08"              // value, 8 bytes
                             "\x0a\x01" "a"          // tag "a"
                             "\x15\x00\x00\x80\x3f",  // simple_value 1.0f
                             9 + 2 + 2 + 2 + 3 + 5);
  CHECK(bytes == expected);
}

TEST_CASE("record framing") {
  const auto r = melissa::tfevents::record("abc");
  REQUIRE(r.size() == 8 + 4 + 3 + 4);
  CHECK(r.substr(0, 8) == std::string("\x03\0\0\0\0\0\0\0", 8));
  CHECK(r.substr(12, 3) == "abc");
  CHECK(read_records(r) == std::vector<std::string>{"abc"});
}

TEST_CASE("the CSV text of a small series, empty cells for missing values") {
  temp_dir tmp;
  {
    melissa::metrics_writer w(tmp.path, {"loss/train", "loss/validation", "lr"});
    w.record(0, 1700000000.25, {{"loss/train", 0.5}, {"lr", 0.001}});
    w.record(10, 1700000001.5, {{"lr", 0.0005}, {"loss/train", 0.1}});
    w.record(20, 1700000002.0, {{"loss/validation", 1e-7}});
    w.record(30, 1700000003.0, {});
    CHECK(w.csv_path() == tmp.path + "/metrics/metrics.csv");
  }
  CHECK(read_all(tmp.path + "/metrics/metrics.csv") ==
        "step,wall_time,loss/train,loss/validation,lr\n"
        "0,1700000000.250,0.5,,0.001\n"
        "10,1700000001.500,0.1,,0.0005\n"
        "20,1700000002.000,,1e-07,\n"
        "30,1700000003.000,,,\n");
}

TEST_CASE("column names that need quoting") {
  CHECK(melissa::metrics_writer::csv_header({"a,b", "say \"hi\""}) ==
        "step,wall_time,\"a,b\",\"say \"\"hi\"\"\"");
}

TEST_CASE("a value for no column, a repeated name or a reserved name is an error") {
  temp_dir tmp;
  melissa::metrics_options no_tensorboard;
  no_tensorboard.tensorboard = false;
  melissa::metrics_writer w(tmp.path, {"loss"}, no_tensorboard);
  CHECK(w.tfevents_path().empty());
  CHECK_THROWS_WITH_AS(w.record(1, {{"los", 1.0}}), "metrics: 'los' is not a column",
                       std::invalid_argument);
  CHECK_THROWS_AS(w.record(1, {{"loss", 1.0}, {"loss", 2.0}}), std::invalid_argument);
  CHECK_THROWS_AS(melissa::metrics_writer(tmp.path, {"step"}), std::invalid_argument);
  CHECK_THROWS_AS(melissa::metrics_writer(tmp.path, {"a", "a"}), std::invalid_argument);
  CHECK(event_files(tmp.path + "/metrics").empty());
}

TEST_CASE("append keeps the rows of a resumed run; a different header is refused") {
  temp_dir tmp;
  melissa::metrics_options append;
  append.append = true;
  {
    melissa::metrics_writer w(tmp.path, {"loss"}, append);  // no file yet: header written
    w.record(1, 10.0, {{"loss", 2.0}});
  }
  {
    melissa::metrics_writer w(tmp.path, {"loss"}, append);
    w.record(2, 11.0, {{"loss", 1.0}});
  }
  CHECK(read_all(tmp.path + "/metrics/metrics.csv") ==
        "step,wall_time,loss\n1,10.000,2\n2,11.000,1\n");
  CHECK_THROWS_WITH_AS(melissa::metrics_writer(tmp.path, {"loss", "lr"}, append),
                       doctest::Contains("metrics.csv has columns 'step,wall_time,loss'"),
                       std::runtime_error);
  // Two writers (two processes, one second): two event files, none shared.
  CHECK(event_files(tmp.path + "/metrics").size() == 2);
  // Without append the CSV starts over.
  { melissa::metrics_writer w(tmp.path, {"lr"}); }
  CHECK(read_all(tmp.path + "/metrics/metrics.csv") == "step,wall_time,lr\n");
}

TEST_CASE("a run restored at a checkpoint drops the rows written after it, then appends") {
  temp_dir tmp;
  {
    melissa::metrics_writer w(tmp.path, {"loss"});
    for (int step = 10; step <= 40; step += 10) w.record(step, 1.0 * step, {{"loss", 1.0}});
  }
  melissa::metrics_options restored;
  restored.append = true;
  restored.keep_through_step = 20;  // the checkpoint's batch: 30 and 40 are trained again
  {
    melissa::metrics_writer w(tmp.path, {"loss"}, restored);
    w.record(30, 99.0, {{"loss", 0.5}});
  }
  CHECK(read_all(tmp.path + "/metrics/metrics.csv") ==
        "step,wall_time,loss\n10,10.000,1\n20,20.000,1\n30,99.000,0.5\n");
}

TEST_CASE("records from several threads stay whole lines") {
  temp_dir tmp;
  {
    melissa::metrics_writer w(tmp.path, {"x"});
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&w, t] {
        for (int i = 0; i < 200; ++i) w.record(t * 1000 + i, 1.0, {{"x", 0.125}});
      });
    for (auto& th : threads) th.join();
  }
  std::istringstream csv(read_all(tmp.path + "/metrics/metrics.csv"));
  std::string line;
  std::getline(csv, line);
  int rows = 0;
  while (std::getline(csv, line)) {
    CHECK(line.substr(line.find(',')) == ",1.000,0.125");
    ++rows;
  }
  CHECK(rows == 800);
  const auto files = event_files(tmp.path + "/metrics");
  REQUIRE(files.size() == 1);
  CHECK(read_records(read_all(files[0])).size() == 801);
}

TEST_CASE("CSV numbers: shortest text that reads back exactly") {
  auto cell = [](double v) {
    const auto row = melissa::metrics_writer::csv_row(0, 0.0, {"v"}, {{"v", v}});
    return row.substr(row.rfind(',') + 1);
  };
  CHECK(cell(2.0) == "2");
  CHECK(cell(-0.5) == "-0.5");
  CHECK(cell(1.0 / 3) == "0.3333333333333333");
  CHECK(cell(0.0005) == "0.0005");
  CHECK(cell(0.00012345) == "0.00012345");
  CHECK(cell(0.00001) == "1e-05");
  CHECK(cell(1234567.0) == "1234567");
  CHECK(cell(1e16) == "1e+16");
  CHECK(cell(123.456) == "123.456");
  CHECK(cell(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(cell(std::nan("")) == "nan");
  std::mt19937_64 random(3);
  for (int i = 0; i < 2000; ++i) {
    const double v = std::ldexp(std::uniform_real_distribution<double>(-1, 1)(random),
                                std::uniform_int_distribution<int>(-40, 60)(random));
    REQUIRE(std::strtod(cell(v).c_str(), nullptr) == v);
  }
}
