// The client <-> server frame codec (messages/wire.hpp, docs/protocol.md).
#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "allocation_counter.hpp"
#include "messages/wire.hpp"

using namespace melissa::wire;
using bytes = std::vector<std::uint8_t>;

namespace {

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();

// A header written field by field, independently of the codec, so that
// invalid headers can be built too. Little-endian by construction.
struct raw_header {
  std::uint32_t length = 36;
  std::uint32_t magic_value = magic;
  std::uint16_t type = 1;
  std::uint16_t data_type = 0;
  std::uint32_t sim_id = 0;
  std::uint32_t attempt = 0;
  std::uint32_t time_step = 0;
  std::uint32_t field_id = 0;
  std::uint32_t reserved = 0;
  std::uint64_t count = 0;

  bytes encode() const {
    bytes out;
    auto put = [&out](std::uint64_t v, int n) {
      for (int i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    };
    put(length, 4);
    put(magic_value, 4);
    put(type, 2);
    put(data_type, 2);
    put(sim_id, 4);
    put(attempt, 4);
    put(time_step, 4);
    put(field_id, 4);
    put(reserved, 4);
    put(count, 8);
    return out;
  }
};

std::string decode_error(const raw_header& h, std::uint64_t limit = default_max_frame_bytes) {
  const bytes b = h.encode();
  const auto r = decode_header(b.data(), limit);
  return r.header ? "accepted" : r.error;
}

void check_same(const frame_header& a, const frame_header& b) {
  CHECK(a.type == b.type);
  CHECK(a.data_type == b.data_type);
  CHECK(a.sim_id == b.sim_id);
  CHECK(a.attempt == b.attempt);
  CHECK(a.time_step == b.time_step);
  CHECK(a.field_id == b.field_id);
  CHECK(a.count == b.count);
  CHECK(a.offset == b.offset);
}

frame_header make(frame_type t, dtype d, std::uint64_t count) {
  frame_header h;
  h.type = t;
  h.data_type = d;
  h.sim_id = 17;
  h.attempt = 2;
  h.time_step = 99;
  h.field_id = 3;
  h.count = count;
  return h;
}

// One frame of every type, with every payload kind a type allows.
std::vector<bytes> sample_frames() {
  const std::vector<float> f32 = {1.5f, -2.0f, 3.25f};
  const std::vector<double> f64 = {1e300, -0.0, 42.0, 7.0};
  std::vector<bytes> frames;
  frames.push_back(encode_text_frame(frame_type::hello, 17, 2, 0, "version=1\nclient_ranks=4\n"));
  frames.push_back(encode_text_frame(frame_type::welcome, 0, 0, 0,
                                     "mode=training\nrank=0\nranks=2\nversion=1\nwindow=67108864\n"));
  frames.push_back(encode_text_frame(frame_type::field, 17, 2, 0, "name=temperature\nsize=4096\n"));
  frames.push_back(encode_frame(make(frame_type::field_ok, dtype::none, 0), nullptr));
  frames.push_back(encode_frame(make(frame_type::step, dtype::f32, f32.size()), f32.data()));
  frames.push_back(encode_frame(make(frame_type::step, dtype::f64, f64.size()), f64.data()));
  frames.push_back(encode_frame(make(frame_type::credit, dtype::none, 64ull << 20), nullptr));
  frames.push_back(encode_frame(make(frame_type::end, dtype::none, 0), nullptr));
  frames.push_back(encode_text_frame(frame_type::error, 17, 2, 0, "unknown field 'temp'"));
  frames.push_back(encode_text_frame(frame_type::error, 17, 2, 0, ""));  // no reason: dtype none
  auto slice = make(frame_type::slice, dtype::f32, f32.size());
  slice.offset = 0x0102030405060708ull;
  frames.push_back(encode_frame(slice, f32.data()));
  return frames;
}

bytes concat(const std::vector<bytes>& frames) {
  bytes out;
  for (const auto& f : frames) out.insert(out.end(), f.begin(), f.end());
  return out;
}

// Everything a reader yields from `stream` fed in pieces of the given sizes
// (cycled), calling next() after every feed as a connection handler would.
struct read_result {
  std::vector<frame_reader::frame> frames;
  std::string error;
};
read_result read_in_pieces(const bytes& stream, const std::vector<std::size_t>& pieces,
                           std::uint64_t limit = default_max_frame_bytes) {
  frame_reader reader(limit);
  read_result r;
  std::size_t at = 0;
  for (std::size_t i = 0; at < stream.size(); ++i) {
    const std::size_t n = std::min(pieces[i % pieces.size()], stream.size() - at);
    if (!reader.feed(stream.data() + at, n)) break;
    at += n;
    while (auto f = reader.next()) r.frames.push_back(std::move(*f));
  }
  r.error = reader.error();
  return r;
}

void check_same(const read_result& a, const read_result& b) {
  REQUIRE(a.frames.size() == b.frames.size());
  for (std::size_t i = 0; i < a.frames.size(); ++i) {
    CAPTURE(i);
    check_same(a.frames[i].header, b.frames[i].header);
    CHECK(a.frames[i].payload == b.frames[i].payload);
  }
  CHECK(a.error == b.error);
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("names and element sizes") {
  CHECK(dtype_size(dtype::none) == 0);
  CHECK(dtype_size(dtype::f32) == 4);
  CHECK(dtype_size(dtype::f64) == 8);
  CHECK(dtype_size(dtype::text) == 1);
  CHECK(dtype_size(static_cast<dtype>(9)) == 0);
  CHECK(std::string(to_string(frame_type::field_ok)) == "field_ok");
  CHECK(std::string(to_string(static_cast<frame_type>(0))) == "unknown");
  CHECK(std::string(to_string(dtype::f64)) == "f64");
  CHECK(std::string(to_string(static_cast<dtype>(4))) == "unknown");
}

TEST_CASE("every frame type round-trips through encode and decode") {
  for (const bytes& frame : sample_frames()) {
    REQUIRE(frame.size() >= header_size);
    const auto r = decode_header(frame.data(), default_max_frame_bytes);
    CAPTURE(r.error);
    REQUIRE(r.header);
    CHECK(frame.size() == header_size + r.header->body_bytes());
    // Re-encoding the decoded header gives back the same 40 bytes.
    std::uint8_t again[header_size];
    encode_header(*r.header, again);
    CHECK(std::memcmp(again, frame.data(), header_size) == 0);
  }
}

TEST_CASE("decoded fields and payloads are the ones encoded") {
  const std::vector<double> values = {1e300, -0.0, 42.0};
  const frame_header h = make(frame_type::step, dtype::f64, values.size());
  const bytes frame = encode_frame(h, values.data());
  CHECK(frame.size() == header_size + 24);
  frame_reader reader;
  REQUIRE(reader.feed(frame.data(), frame.size()));
  const auto f = reader.next();
  REQUIRE(f);
  check_same(f->header, h);
  REQUIRE(f->payload.size() == 24);
  CHECK(std::memcmp(f->payload.data(), values.data(), 24) == 0);
  CHECK_FALSE(reader.next());

  const bytes text = encode_text_frame(frame_type::hello, 5, 1, 0, "version=1\n");
  const auto t = decode_header(text.data(), default_max_frame_bytes);
  REQUIRE(t.header);
  CHECK(t.header->type == frame_type::hello);
  CHECK(t.header->data_type == dtype::text);
  CHECK(t.header->sim_id == 5);
  CHECK(t.header->attempt == 1);
  CHECK(t.header->count == 10);
  CHECK(std::string(text.begin() + header_size, text.end()) == "version=1\n");

  // An empty text becomes a frame without payload.
  const bytes empty = encode_text_frame(frame_type::error, 0, 0, 0, "");
  CHECK(empty.size() == header_size);
  CHECK(decode_header(empty.data(), default_max_frame_bytes).header->data_type == dtype::none);
}

TEST_CASE("the byte layout is little-endian as documented") {
  const float payload[2] = {1.0f, -2.0f};
  frame_header h;
  h.type = frame_type::step;
  h.data_type = dtype::f32;
  h.sim_id = 0x01020304;
  h.attempt = 2;
  h.time_step = 0x0a0b0c0d;
  h.field_id = 7;
  h.count = 2;
  const bytes expected = {
      0x2c, 0x00, 0x00, 0x00,  // length: 36 + 2 * 4 = 44
      0x4d, 0x4c, 0x53, 0x41,  // magic: "MLSA"
      0x05, 0x00,              // type: step
      0x01, 0x00,              // dtype: f32
      0x04, 0x03, 0x02, 0x01,  // sim_id
      0x02, 0x00, 0x00, 0x00,  // attempt
      0x0d, 0x0c, 0x0b, 0x0a,  // time_step
      0x07, 0x00, 0x00, 0x00,  // field_id
      0x00, 0x00, 0x00, 0x00,  // reserved
      0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // count
      0x00, 0x00, 0x80, 0x3f,  // 1.0f
      0x00, 0x00, 0x00, 0xc0,  // -2.0f
  };
  CHECK(encode_frame(h, payload) == expected);
  const auto r = decode_header(expected.data(), default_max_frame_bytes);
  REQUIRE(r.header);
  check_same(*r.header, h);

  // All eight bytes of count, most significant last.
  frame_header credit;
  credit.type = frame_type::credit;
  credit.data_type = dtype::none;
  credit.count = 0x0102030405060708ull;
  std::uint8_t out[header_size];
  encode_header(credit, out);
  const std::uint8_t count_bytes[8] = {0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01};
  CHECK(std::memcmp(out + 32, count_bytes, 8) == 0);
  const std::uint8_t type_and_dtype[4] = {0x06, 0x00, 0x00, 0x00};
  CHECK(std::memcmp(out + 8, type_and_dtype, 4) == 0);
  CHECK(decode_header(out, default_max_frame_bytes).header->count == 0x0102030405060708ull);
}

TEST_CASE("validation: each header check has its own message") {
  raw_header ok;  // a valid hello without payload
  CHECK(decode_error(ok) == "accepted");

  SUBCASE("bad magic") {
    raw_header h = ok;
    h.magic_value = 0x41534c4e;
    CHECK(decode_error(h) == "bad magic (not a Melissa frame)");
    h.magic_value = 0x4d4c5341;  // "MLSA" read big-endian
    CHECK(decode_error(h) == "bad magic (not a Melissa frame)");
  }
  SUBCASE("unknown frame type") {
    raw_header h = ok;
    h.type = 0;
    CHECK(decode_error(h) == "unknown frame type 0");
    h.type = 10;
    CHECK(decode_error(h) == "unknown frame type 10");
    h.type = 0xffff;
    CHECK(decode_error(h) == "unknown frame type 65535");
  }
  SUBCASE("unknown dtype") {
    raw_header h = ok;
    h.data_type = 4;
    CHECK(decode_error(h) == "unknown dtype 4");
    h.data_type = 0x8000;
    CHECK(decode_error(h) == "unknown dtype 32768");
  }
  SUBCASE("dtype not allowed for the frame type") {
    raw_header h = ok;
    h.type = static_cast<std::uint16_t>(frame_type::step);
    h.data_type = static_cast<std::uint16_t>(dtype::text);
    CHECK(decode_error(h) == "dtype text not allowed in a step frame");
    h.data_type = static_cast<std::uint16_t>(dtype::none);
    CHECK(decode_error(h) == "dtype none not allowed in a step frame");
    h.type = static_cast<std::uint16_t>(frame_type::credit);
    h.data_type = static_cast<std::uint16_t>(dtype::f32);
    CHECK(decode_error(h) == "dtype f32 not allowed in a credit frame");
    h.type = static_cast<std::uint16_t>(frame_type::end);
    h.data_type = static_cast<std::uint16_t>(dtype::text);
    CHECK(decode_error(h) == "dtype text not allowed in a end frame");
    h.type = static_cast<std::uint16_t>(frame_type::hello);
    h.data_type = static_cast<std::uint16_t>(dtype::f64);
    CHECK(decode_error(h) == "dtype f64 not allowed in a hello frame");
  }
  SUBCASE("nonzero reserved field") {
    raw_header h = ok;
    h.reserved = 1;
    CHECK(decode_error(h) == "reserved header field is not zero");
    h.reserved = 0x80000000;
    CHECK(decode_error(h) == "reserved header field is not zero");
  }
  SUBCASE("length prefix mismatch") {
    raw_header h = ok;
    h.length = 37;
    CHECK(decode_error(h) == "length prefix 37 does not match header (expected 36)");
    h.length = 0;
    CHECK(decode_error(h) == "length prefix 0 does not match header (expected 36)");
    // A step of 10 f32 needs 36 + 40.
    h.type = static_cast<std::uint16_t>(frame_type::step);
    h.data_type = static_cast<std::uint16_t>(dtype::f32);
    h.count = 10;
    h.length = 36 + 10;  // counted elements instead of bytes
    CHECK(decode_error(h) == "length prefix 46 does not match header (expected 76)");
    h.length = 76;
    CHECK(decode_error(h) == "accepted");
  }
  SUBCASE("a count without payload type") {
    raw_header h = ok;
    h.type = static_cast<std::uint16_t>(frame_type::end);
    h.count = 5;
    CHECK(decode_error(h) == "count must be 0 without a payload");
    // A credit frame's count is a byte grant, not a payload: any value.
    h.type = static_cast<std::uint16_t>(frame_type::credit);
    h.count = u64_max;
    CHECK(decode_error(h) == "accepted");
  }
}

TEST_CASE("validation: counts over the limit are refused, also where count * size overflows") {
  const std::uint64_t limit = 1 << 20;
  raw_header h;
  h.type = static_cast<std::uint16_t>(frame_type::step);
  h.data_type = static_cast<std::uint16_t>(dtype::f32);

  // Largest accepted: header + payload == limit.
  h.count = (limit - header_size) / 4;
  h.length = static_cast<std::uint32_t>(limit - length_prefix_size);
  CHECK(decode_error(h, limit) == "accepted");
  // One element more: the payload still fits in the limit, the frame does not.
  h.count += 1;
  h.length += 4;
  CHECK(decode_error(h, limit) == "frame of 1048580 bytes exceeds the limit of 1048576 bytes");
  // The payload alone is over the limit.
  h.count = limit / 4 + 1;
  CHECK(decode_error(h, limit) ==
        "frame of 262145 f32 elements exceeds the limit of 1048576 bytes");

  // Counts whose byte size wraps around 2^64: 2^62 f32 elements are 2^64
  // bytes, i.e. 0 after a wrapping multiplication, with a length prefix that
  // would then "match". They must be refused on the element count.
  h.count = 1ull << 62;
  h.length = 36;
  CHECK(decode_error(h, limit) ==
        "frame of 4611686018427387904 f32 elements exceeds the limit of 1048576 bytes");
  h.data_type = static_cast<std::uint16_t>(dtype::f64);
  h.count = (1ull << 61) + 1;  // * 8 = 8 (mod 2^64)
  h.length = 36 + 8;
  CHECK(decode_error(h, limit) ==
        "frame of 2305843009213693953 f64 elements exceeds the limit of 1048576 bytes");
  h.count = u64_max;
  CHECK(decode_error(h, limit) ==
        "frame of 18446744073709551615 f64 elements exceeds the limit of 1048576 bytes");
  // Text payloads too.
  h.type = static_cast<std::uint16_t>(frame_type::hello);
  h.data_type = static_cast<std::uint16_t>(dtype::text);
  h.count = u64_max;
  CHECK(decode_error(h, limit) ==
        "frame of 18446744073709551615 text elements exceeds the limit of 1048576 bytes");
  // The largest limit the study file allows (server.max_frame_mb = 4095).
  h.type = static_cast<std::uint16_t>(frame_type::step);
  h.data_type = static_cast<std::uint16_t>(dtype::f32);
  h.count = 1ull << 62;
  h.length = 36;
  CHECK(decode_error(h, 4095ull << 20) != "accepted");
}

TEST_CASE("a reader refuses a hostile header without allocating its payload") {
  // A header that announces 2^62 f32 elements (wrapping to 0 bytes) and one
  // that announces just over the limit: refused after 40 bytes, and nothing
  // near the announced size is ever requested from the allocator.
  {
    // The counter itself sees big requests.
    melissa::testing::allocation_counter counter;
    bytes probe(100000);
    CHECK(counter.largest() >= 100000);
  }
  raw_header wrap;
  wrap.type = static_cast<std::uint16_t>(frame_type::step);
  wrap.data_type = static_cast<std::uint16_t>(dtype::f32);
  wrap.count = 1ull << 62;
  raw_header big = wrap;
  big.count = default_max_frame_bytes / 4 + 1;
  big.length = static_cast<std::uint32_t>(36 + big.count * 4);
  for (const raw_header& h : {wrap, big}) {
    const bytes b = h.encode();
    frame_reader reader;
    melissa::testing::allocation_counter counter;
    CHECK(reader.feed(b.data(), b.size()));
    CHECK_FALSE(reader.next());
    CHECK(reader.broken());
    CHECK(counter.largest() < 4096);
    CHECK(counter.bytes() < 16384);
  }
  // A valid header of a big frame is not refused, but its payload is only
  // copied out once it has arrived: feeding the header alone allocates little.
  raw_header ok = big;
  ok.count = 1 << 20;
  ok.length = static_cast<std::uint32_t>(36 + ok.count * 4);
  const bytes b = ok.encode();
  frame_reader reader;
  melissa::testing::allocation_counter counter;
  CHECK(reader.feed(b.data(), b.size()));
  CHECK_FALSE(reader.next());
  CHECK_FALSE(reader.broken());
  CHECK(counter.largest() < 4096);
}

TEST_CASE("frame_reader: feeding byte by byte yields the same frames") {
  const bytes stream = concat(sample_frames());
  const read_result whole = read_in_pieces(stream, {stream.size()});
  CHECK(whole.frames.size() == sample_frames().size());
  CHECK(whole.error.empty());
  check_same(read_in_pieces(stream, {1}), whole);
  check_same(read_in_pieces(stream, {3, 39, 40, 41, 7}), whole);
  std::mt19937 rng(5);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::size_t> pieces;
    for (int i = 0; i < 16; ++i) pieces.push_back(1 + rng() % 100);
    check_same(read_in_pieces(stream, pieces), whole);
  }
}

TEST_CASE("frame_reader: frames can be popped after all bytes are fed") {
  const bytes stream = concat(sample_frames());
  frame_reader reader;
  for (std::uint8_t byte : stream) REQUIRE(reader.feed(&byte, 1));
  std::size_t n = 0;
  while (reader.next()) ++n;
  CHECK(n == sample_frames().size());
  CHECK_FALSE(reader.broken());
  // Feeding nothing is harmless.
  CHECK(reader.feed(nullptr, 0));
  CHECK_FALSE(reader.next());
}

TEST_CASE("frame_reader: a partial frame waits for the rest") {
  const std::vector<float> v(100, 1.0f);
  const bytes frame = encode_frame(make(frame_type::step, dtype::f32, v.size()), v.data());
  frame_reader reader;
  reader.feed(frame.data(), header_size - 1);
  CHECK_FALSE(reader.next());
  reader.feed(frame.data() + header_size - 1, frame.size() - header_size);
  CHECK_FALSE(reader.next());  // one byte short
  CHECK_FALSE(reader.broken());
  reader.feed(frame.data() + frame.size() - 1, 1);
  const auto f = reader.next();
  REQUIRE(f);
  CHECK(f->payload.size() == 400);
}

TEST_CASE("frame_reader: frames before a bad header are delivered, then the stream is broken") {
  std::vector<bytes> frames = sample_frames();
  raw_header bad;
  bad.magic_value = 0;
  frames.insert(frames.begin() + 3, bad.encode());
  const bytes stream = concat(frames);
  for (std::size_t piece : {std::size_t{1}, std::size_t{13}, stream.size()}) {
    CAPTURE(piece);
    const read_result r = read_in_pieces(stream, {piece});
    CHECK(r.frames.size() == 3);
    CHECK(r.error == "bad magic (not a Melissa frame)");
  }
  frame_reader reader;
  reader.feed(stream.data(), stream.size());
  while (reader.next()) {
  }
  CHECK(reader.broken());
  CHECK_FALSE(reader.feed(stream.data(), 1));  // stays broken
  CHECK_FALSE(reader.next());
}

TEST_CASE("frame_reader: the limit given to the reader applies") {
  const std::vector<float> v(100, 1.0f);
  const bytes frame = encode_frame(make(frame_type::step, dtype::f32, v.size()), v.data());
  frame_reader exact(frame.size());
  exact.feed(frame.data(), frame.size());
  CHECK(exact.next());
  frame_reader small(frame.size() - 1);
  small.feed(frame.data(), frame.size());
  CHECK_FALSE(small.next());
  CHECK(small.error() == "frame of 440 bytes exceeds the limit of 439 bytes");
}

// ---------------------------------------------------------------------------

TEST_CASE("key=value: format and parse") {
  const key_values kv = {{"version", "1"}, {"mode", "training"}, {"window", "67108864"}};
  const std::string text = format_key_values(kv);
  CHECK(text == "mode=training\nversion=1\nwindow=67108864\n");  // sorted by key
  CHECK(parse_key_values(text) == kv);
  CHECK(format_key_values({}) == "");
  CHECK(parse_key_values("") == key_values{});

  // Tolerated: blank lines, a last line without newline, '=' inside values,
  // empty values.
  CHECK(parse_key_values("\n\na=1\n\nb=x=y\nc=\nd=4") ==
        key_values{{"a", "1"}, {"b", "x=y"}, {"c", ""}, {"d", "4"}});
  // A repeated key is an error, not a silent overwrite.
  std::string error;
  CHECK_FALSE(parse_key_values("a=1\na=2\n", &error));
  CHECK(error == "line 2 repeats key 'a'");
  // A carriage return inside a line is refused (it could not be written back).
  CHECK_FALSE(parse_key_values("a=x\ry\n", &error));
  CHECK(error == "line 1 contains a carriage return");
  // CRLF line ends are tolerated.
  CHECK(parse_key_values("a=1\r\nb=2\r\n") == key_values{{"a", "1"}, {"b", "2"}});
  // Values with odd bytes survive a round trip (no line break in them).
  const key_values odd = {{"name", "temp erature\t"}, {"path", "/a b/c=d"}};
  CHECK(parse_key_values(format_key_values(odd)) == odd);
  CHECK_THROWS_AS(format_key_values({{"a", "x\r"}}), std::invalid_argument);
}

TEST_CASE("key=value: malformed lines") {
  std::string error;
  CHECK_FALSE(parse_key_values("novalue", &error));
  CHECK(error == "line 1 is not key=value");
  CHECK_FALSE(parse_key_values("a=1\n=2\n", &error));
  CHECK(error == "line 2 is not key=value");
  CHECK_FALSE(parse_key_values("a=1\n\nb\n", &error));
  CHECK(error == "line 3 is not key=value");
  // Without an error pointer.
  CHECK_FALSE(parse_key_values("x"));
}

// Found by these tests and fixed in wire.cpp (f7d4213): kept as regressions.

TEST_CASE("key=value: format_key_values refuses entries that would parse back differently") {
  // A newline in a value (or '=' in a key) would silently become another entry.
  CHECK_THROWS_AS(format_key_values({{"reason", "line one\nrank=7"}}), std::invalid_argument);
  CHECK_THROWS_AS(format_key_values({{"a=b", "c"}}), std::invalid_argument);
  CHECK_THROWS_AS(format_key_values({{"a\nb", "c"}}), std::invalid_argument);
  CHECK_THROWS_AS(format_key_values({{"", "c"}}), std::invalid_argument);
  CHECK(format_key_values({{"k", "x=y"}}) == "k=x=y\n");  // "=" in a value is fine
}

TEST_CASE("validation: a limit near 2^64 cannot make header + payload wrap around") {
  // With max_frame_bytes = UINT64_MAX (a natural way to say "no limit"),
  // count = 2^64 - 36 text bytes used to pass the element check, header_size
  // + count wrapped to 4, the length prefix 0 "matched", and frame_reader
  // then built a vector from p + 40 to p + 4. The limit is now clamped to the
  // largest frame a u32 length prefix can describe.
  raw_header h;
  h.type = static_cast<std::uint16_t>(frame_type::hello);
  h.data_type = static_cast<std::uint16_t>(dtype::text);
  h.count = u64_max - 35;
  h.length = 0;
  CHECK(decode_error(h, u64_max) ==
        "frame of 18446744073709551580 text elements exceeds the protocol's largest frame of 4294967299 bytes");
  {
    const bytes b = h.encode();
    frame_reader reader(u64_max);
    reader.feed(b.data(), b.size());
    CHECK_FALSE(reader.next());
    CHECK(reader.broken());
  }
  // The largest frame the length prefix can describe is still accepted.
  h.count = 0xffffffffull - 36;
  h.length = 0xffffffffu;
  CHECK(decode_error(h, u64_max) == "accepted");
  h.count += 1;
  CHECK(decode_error(h, u64_max) ==
        "frame of 4294967300 bytes exceeds the protocol's largest frame of 4294967299 bytes");
}

TEST_CASE("slice frames: the offset follows the header, then the values") {
  const std::vector<float> values = {1.0f, 2.0f};
  auto h = make(frame_type::slice, dtype::f32, values.size());
  h.offset = 0x1122334455667788ull;
  const bytes frame = encode_frame(h, values.data());
  REQUIRE(frame.size() == header_size + slice_extension_size + 8);
  // length = 36 + 8 (offset) + 8 (values)
  CHECK(frame[0] == 52);
  CHECK(frame[8] == 9);  // type slice
  for (int i = 0; i < 8; ++i) CHECK(frame[header_size + i] == ((0x1122334455667788ull >> (8 * i)) & 0xff));
  CHECK(std::memcmp(frame.data() + header_size + slice_extension_size, values.data(), 8) == 0);
  const auto r = read_in_pieces(frame, {1});
  REQUIRE(r.frames.size() == 1);
  CHECK(r.frames[0].header.offset == 0x1122334455667788ull);
  CHECK(r.frames[0].payload == bytes(frame.end() - 8, frame.end()));
  // Only float payloads: a text slice is refused from its header.
  auto text = make(frame_type::slice, dtype::text, 0);
  std::uint8_t head[header_size];
  encode_header(text, head);
  CHECK(decode_header(head, default_max_frame_bytes).error == "dtype text not allowed in a slice frame");
}

TEST_CASE("slice frames: an offset whose last value passes 2^64 - 1 breaks the stream") {
  auto h = make(frame_type::slice, dtype::f32, 2);
  h.offset = ~std::uint64_t{0};
  const std::vector<float> values = {1.0f, 2.0f};
  const auto r = read_in_pieces(encode_frame(h, values.data()), {64});
  CHECK(r.frames.empty());
  CHECK(r.error == "slice offset 18446744073709551615 + 2 values overflows");
  h.offset = ~std::uint64_t{0} - 1;  // the last value at 2^64 - 1: representable
  CHECK(read_in_pieces(encode_frame(h, values.data()), {64}).frames.size() == 1);
}

TEST_CASE("owned shares: contiguous, disjoint, covering, sizes differ by at most one") {
  for (std::uint64_t size : std::vector<std::uint64_t>{0, 1, 7, 256, 1000003, ~std::uint64_t{0}})
    for (std::uint32_t ranks : {1u, 2u, 3u, 7u}) {
      CAPTURE(size);
      CAPTURE(ranks);
      std::uint64_t next = 0, smallest = ~std::uint64_t{0}, largest = 0;
      for (std::uint32_t r = 0; r < ranks; ++r) {
        const auto s = owned_share(size, r, ranks);
        CHECK(s.begin == next);
        next = s.end;
        smallest = std::min(smallest, s.size());
        largest = std::max(largest, s.size());
      }
      CHECK(next == size);
      CHECK(largest - smallest <= 1);
    }
  CHECK(owned_share(10, 0, 3).end == 3);
  CHECK(owned_share(10, 1, 3).end == 6);
  CHECK(owned_share(10, 3, 3).size() == 0);  // not a rank
}
