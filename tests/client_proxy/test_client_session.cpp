#include <doctest/doctest.h>

#include <string>

#include "actors/client_proxy/client_session.hpp"

using namespace melissa;
using wire::frame_type;

namespace {

session_settings two_fields() {
  session_settings s;
  s.fields = {{"temperature", 16}, {"pressure", 4}};
  s.rank = 1;
  s.ranks = 2;
  s.window_bytes = 1024;
  return s;
}

struct frame_in {
  wire::frame_header h;
  std::string text;
};

frame_in text_frame(frame_type t, std::uint32_t sim, std::uint32_t attempt, std::string text) {
  frame_in f;
  f.h.type = t;
  f.h.data_type = text.empty() ? wire::dtype::none : wire::dtype::text;
  f.h.sim_id = sim;
  f.h.attempt = attempt;
  f.h.count = text.size();
  f.text = std::move(text);
  return f;
}

client_session::action feed(client_session& s, const frame_in& f) {
  return s.on_frame(f.h, reinterpret_cast<const std::uint8_t*>(f.text.data()), f.text.size());
}

wire::frame_header step(std::uint32_t sim, std::uint32_t attempt, std::uint32_t field,
                        std::uint32_t t, std::uint64_t count) {
  wire::frame_header h;
  h.type = frame_type::step;
  h.data_type = wire::dtype::f32;
  h.sim_id = sim;
  h.attempt = attempt;
  h.field_id = field;
  h.time_step = t;
  h.count = count;
  return h;
}

// Decodes a reply frame produced by the session.
wire::frame_reader::frame decode(const std::vector<std::uint8_t>& bytes) {
  wire::frame_reader r;
  r.feed(bytes.data(), bytes.size());
  auto f = r.next();
  REQUIRE(f.has_value());
  return *f;
}

std::string text_of(const wire::frame_reader::frame& f) {
  return std::string(f.payload.begin(), f.payload.end());
}

client_session opened(std::uint32_t sim = 7, std::uint32_t attempt = 2) {
  client_session s(two_fields());
  auto a = feed(s, text_frame(frame_type::hello, sim, attempt, "version=1\nclient_ranks=1\n"));
  REQUIRE(a.error.empty());
  s.admit();  // the aggregator accepted the session
  return s;
}

}  // namespace

TEST_CASE("an admitted hello is answered with welcome carrying rank, ranks, mode and window") {
  client_session s(two_fields());
  auto a = feed(s, text_frame(frame_type::hello, 7, 2, "version=1\n"));
  CHECK(a.error.empty());
  CHECK(a.check_ticket);
  CHECK(a.reply.empty());  // nothing before the aggregator admits the session
  auto f = decode(s.admit());
  CHECK(f.header.type == frame_type::welcome);
  auto kv = wire::parse_key_values(text_of(f));
  REQUIRE(kv);
  CHECK(kv->at("rank") == "1");
  CHECK(kv->at("ranks") == "2");
  CHECK(kv->at("mode") == "training");
  CHECK(kv->at("window") == "1024");
  CHECK(s.describe() == "sim 7 attempt 2");
}

TEST_CASE("a wrong protocol version is refused with a readable error") {
  client_session s(two_fields());
  auto a = feed(s, text_frame(frame_type::hello, 1, 1, "version=2\n"));
  CHECK(a.error == "unsupported protocol version 2; this server speaks 1");
  auto f = decode(a.reply);
  CHECK(f.header.type == frame_type::error);
  CHECK(text_of(f) == a.error);
}

TEST_CASE("frames before hello are refused") {
  client_session s(two_fields());
  auto a = s.on_frame(step(0, 1, 0, 0, 16), nullptr, 0);
  CHECK(a.error == "expected hello, got step");
}

TEST_CASE("field declarations are checked by name and size") {
  auto s = opened();
  auto ok = feed(s, text_frame(frame_type::field, 7, 2, "name=pressure\nsize=4\n"));
  CHECK(ok.error.empty());
  auto f = decode(ok.reply);
  CHECK(f.header.type == frame_type::field_ok);
  CHECK(f.header.field_id == 1);

  auto unknown = feed(s, text_frame(frame_type::field, 7, 2, "name=temp\nsize=16\n"));
  CHECK(unknown.error == "unknown field 'temp' (study fields: temperature, pressure)");

  auto s2 = opened();
  auto size = feed(s2, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=15\n"));
  CHECK(size.error == "field 'temperature' has 15 values, the study says 16");
}

TEST_CASE("steps are validated against the declared fields") {
  auto s = opened();
  feed(s, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=16\n"));
  CHECK(s.on_frame(step(7, 2, 0, 0, 16), nullptr, 0).forward_step);
  CHECK(s.on_frame(step(7, 2, 0, 5, 16), nullptr, 0).forward_step);

  SUBCASE("undeclared field") {
    CHECK(s.on_frame(step(7, 2, 1, 0, 4), nullptr, 0).error == "step for undeclared field id 1");
  }
  SUBCASE("wrong size") {
    CHECK(s.on_frame(step(7, 2, 0, 1, 12), nullptr, 0).error ==
          "step 1 of field 'temperature' has 12 values, the study says 16");
  }
  SUBCASE("another simulation on this connection") {
    CHECK(s.on_frame(step(8, 2, 0, 1, 16), nullptr, 0).error ==
          "frame for sim 8 attempt 2 on the session of sim 7 attempt 2");
  }
  SUBCASE("float64 in training mode") {
    auto h = step(7, 2, 0, 1, 16);
    h.data_type = wire::dtype::f64;
    CHECK(s.on_frame(h, nullptr, 0).error == "training mode expects float32 steps, got f64");
  }
  SUBCASE("time step beyond the bitset limit") {
    auto a = s.on_frame(step(7, 2, 0, 1u << 24, 16), nullptr, 0);
    CHECK(a.error == "time step 16777216 is beyond the limit of 16777216");
  }
}

TEST_CASE("end is accepted once, and nothing after it") {
  auto s = opened();
  auto e = feed(s, text_frame(frame_type::end, 7, 2, ""));
  CHECK(e.end_requested);
  CHECK(e.error.empty());
  CHECK(s.ended());
  CHECK(s.on_frame(step(7, 2, 0, 0, 16), nullptr, 0).error == "step frame after end");
}

TEST_CASE("credit and end frames the proxy sends") {
  auto c = decode(client_session::credit_frame(4096));
  CHECK(c.header.type == frame_type::credit);
  CHECK(c.header.count == 4096);
  CHECK(c.payload.empty());
  CHECK(decode(client_session::end_frame()).header.type == frame_type::end);
}

TEST_CASE("a client may not send beyond its credit window") {
  auto s = opened();  // window 1024 bytes; a temperature step is 16 floats = 64 bytes
  feed(s, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=16\n"));
  for (std::uint32_t t = 0; t < 16; ++t) REQUIRE(s.on_frame(step(7, 2, 0, t, 16), nullptr, 0).forward_step);
  CHECK(s.in_flight_bytes() == 1024);
  CHECK(s.on_frame(step(7, 2, 0, 16, 16), nullptr, 0).error ==
        "step 16 exceeds the credit: 1088 bytes in flight, window 1024");
}

TEST_CASE("acknowledged steps give their credit back") {
  auto s = opened();
  feed(s, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=16\n"));
  for (std::uint32_t t = 0; t < 16; ++t) REQUIRE(s.on_frame(step(7, 2, 0, t, 16), nullptr, 0).forward_step);
  auto credit = decode(s.acknowledge(64));
  CHECK(credit.header.type == frame_type::credit);
  CHECK(credit.header.count == 64);
  CHECK(s.in_flight_bytes() == 960);
  CHECK(s.on_frame(step(7, 2, 0, 16, 16), nullptr, 0).forward_step);
}

TEST_CASE("credit is due in quarters of the window, every step when steps are large") {
  auto s = opened();  // window 1024 bytes
  CHECK_FALSE(s.credit_due(0));
  feed(s, text_frame(frame_type::field, 7, 2, "name=pressure\nsize=4\n"));
  CHECK(s.largest_step_bytes() == 32);  // 4 values, at 8 bytes for the widest type
  CHECK_FALSE(s.credit_due(255));
  CHECK(s.credit_due(256));
  // A larger field declared later lowers the threshold: window - its step.
  feed(s, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=16\n"));
  CHECK(s.largest_step_bytes() == 128);
  CHECK(s.credit_due(256));

  session_settings narrow = two_fields();
  narrow.window_bytes = 160;  // a 128-byte step leaves 32 bytes: due from 32 on, not 40
  client_session n(narrow);
  feed(n, text_frame(frame_type::hello, 7, 2, "version=1\n"));
  n.admit();
  feed(n, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=16\n"));
  CHECK_FALSE(n.credit_due(31));
  CHECK(n.credit_due(32));

  session_settings stats = two_fields();
  stats.mode = "statistics";
  client_session st(stats);
  feed(st, text_frame(frame_type::hello, 7, 2, "version=1\n"));
  st.admit();
  feed(st, text_frame(frame_type::field, 7, 2, "name=pressure\nsize=4\n"));
  CHECK(st.credit_due(1));  // statistics mode: every acknowledgement
}

TEST_CASE("credit held back until due never leaves a client blocked") {
  // A client with steps of every size up to the field's, against a server
  // that stores each step at once and grants only when credit_due says so:
  // whenever the client cannot send, the credit owed to it is due.
  for (std::uint64_t window : {64u, 100u, 160u, 1024u, 4096u}) {
    session_settings settings = two_fields();
    settings.window_bytes = window;
    client_session s(settings);
    feed(s, text_frame(frame_type::hello, 7, 2, "version=1\n"));
    s.admit();
    feed(s, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=16\n"));
    std::int64_t available = static_cast<std::int64_t>(window);
    std::uint64_t owed = 0;
    for (std::uint32_t t = 0; t < 200; ++t) {
      const std::uint64_t bytes = 4 * (1 + t % 16);  // 4 to 64 bytes
      const bool may_send = static_cast<std::int64_t>(bytes) <= available ||
                            available >= static_cast<std::int64_t>(window);
      if (!may_send) {
        REQUIRE_MESSAGE(s.credit_due(owed), "window " << window << ", step " << t
                                                      << ": blocked with " << owed << " owed");
        available += static_cast<std::int64_t>(owed);
        owed = 0;
      }
      available -= static_cast<std::int64_t>(bytes);
      owed += bytes;  // stored at once
      if (s.credit_due(owed)) {
        available += static_cast<std::int64_t>(owed);
        owed = 0;
      }
    }
  }
}

TEST_CASE("one frame larger than the window passes when nothing is in flight") {
  session_settings settings = two_fields();
  settings.window_bytes = 32;  // smaller than one 64-byte step
  client_session s(settings);
  feed(s, text_frame(frame_type::hello, 7, 2, "version=1\n"));
  s.admit();
  feed(s, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=16\n"));
  CHECK(s.on_frame(step(7, 2, 0, 0, 16), nullptr, 0).forward_step);
  CHECK_FALSE(s.on_frame(step(7, 2, 0, 1, 16), nullptr, 0).error.empty());
  s.acknowledge(64);
  CHECK(s.on_frame(step(7, 2, 0, 1, 16), nullptr, 0).forward_step);
}

namespace {

session_settings statistics_fields() {
  session_settings s = two_fields();
  s.mode = "statistics";  // rank 1 of 2: owns [8, 16) of temperature, [2, 4) of pressure
  return s;
}

client_session opened_statistics() {
  client_session s(statistics_fields());
  auto a = feed(s, text_frame(frame_type::hello, 7, 2, "version=1\nclient_ranks=3\nclient_rank=1\n"));
  REQUIRE(a.error.empty());
  s.admit();
  REQUIRE(feed(s, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=16\n")).error.empty());
  return s;
}

wire::frame_header slice(std::uint64_t offset, std::uint64_t count, std::uint32_t t = 0) {
  auto h = step(7, 2, 0, t, count);
  h.type = frame_type::slice;
  h.offset = offset;
  return h;
}

}  // namespace

TEST_CASE("statistics mode: slices are checked against the field and this rank's share") {
  auto s = opened_statistics();
  CHECK(s.admit_header(slice(8, 8)).empty());
  CHECK(s.admit_extension(slice(8, 8)).empty());
  CHECK(s.admit_extension(slice(11, 2)).empty());
  CHECK(s.admit_extension(slice(4, 4)) ==
        "slice [4, 8) of field 'temperature' is not within server rank 1's share [8, 16)");
  CHECK(s.admit_extension(slice(15, 2)) == "slice [15, +2) of field 'temperature' lies beyond its 16 values");
  CHECK(s.admit_extension(slice(~std::uint64_t{0} - 1, 2)) ==
        "slice [18446744073709551614, +2) of field 'temperature' lies beyond its 16 values");
  CHECK(s.admit_header(slice(0, 17)) ==
        "slice of step 0 of field 'temperature' has 17 values, the field has 16");
  CHECK(s.admit_header(slice(0, 0)) == "slice of step 0 of field 'temperature' has 0 values, the field has 16");
  auto f64 = slice(8, 2);
  f64.data_type = wire::dtype::f64;
  CHECK(s.admit_header(f64) == "statistics mode expects float32 slices, got f64");
  CHECK(s.admit_header(step(7, 2, 0, 0, 16)) == "statistics mode expects slice frames, got a step frame");
  // A valid slice is forwarded and counted in flight; on_frame checks the offset too.
  auto a = s.on_frame(slice(8, 4), nullptr, 0);
  CHECK(a.forward_step);
  CHECK(s.in_flight_bytes() == 16);
  const auto bad = s.on_frame(slice(0, 4), nullptr, 0);
  CHECK(bad.error == "slice [0, 4) of field 'temperature' is not within server rank 1's share [8, 16)");
}

TEST_CASE("training mode refuses slice frames") {
  auto s = opened();
  REQUIRE(feed(s, text_frame(frame_type::field, 7, 2, "name=temperature\nsize=16\n")).error.empty());
  CHECK(s.admit_header(slice(0, 16)) ==
        "slice frames are for statistics mode; this study runs in training mode");
}
