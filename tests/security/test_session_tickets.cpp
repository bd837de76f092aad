// Who may open a session, what a session may send before it is admitted, and
// what a simulation's parameters may be: the pure rules, without CAF.
#include <doctest/doctest.h>

#include "actors/aggregator/session_tickets.hpp"
#include "actors/aggregator/step_log.hpp"
#include "actors/client_proxy/client_session.hpp"
#include "config/design.hpp"
#include "security/study_credentials.hpp"

using namespace melissa;
using verdict = session_tickets::verdict;

TEST_CASE("a session opens only with the ticket issued to its running attempt") {
  session_tickets t;
  CHECK(t.check(3, 1, "abc").outcome == verdict::unknown);  // notice not arrived yet
  t.issue(3, 1, "abc");
  CHECK(t.check(3, 1, "abc").outcome == verdict::accepted);
  const auto wrong = t.check(3, 1, "abd");
  CHECK(wrong.outcome == verdict::refused);
  CHECK(wrong.reason == "wrong session ticket for simulation 3 attempt 1");
  CHECK(t.check(3, 1, "").outcome == verdict::refused);
  t.issue(3, 2, "def");  // attempt 2 supersedes attempt 1
  CHECK(t.check(3, 1, "abc").outcome == verdict::refused);
  CHECK(t.check(3, 1, "abc").reason == "simulation 3 attempt 1 was superseded by attempt 2");
  CHECK(t.check(3, 2, "def").outcome == verdict::accepted);
  t.revoke(3, 2);  // its job ended
  CHECK(t.check(3, 2, "def").outcome == verdict::refused);
  CHECK(t.check(3, 2, "def").reason == "the job of simulation 3 attempt 2 has ended");
  t.issue(3, 1, "late");  // a late notice of an older attempt changes nothing
  CHECK(t.check(3, 1, "late").outcome == verdict::refused);
}

TEST_CASE("a job that ended before its ticket notice arrived never opens") {
  session_tickets t;
  t.revoke(5, 1);
  t.issue(5, 1, "xyz");
  CHECK(t.check(5, 1, "xyz").outcome == verdict::accepted);  // same attempt: the issue wins
  t.revoke(5, 1);
  CHECK(t.check(5, 1, "xyz").outcome == verdict::refused);
}

TEST_CASE("secrets compare equal only when they are") {
  CHECK(security::secrets_equal("abc", "abc"));
  CHECK_FALSE(security::secrets_equal("abc", "abcd"));
  CHECK_FALSE(security::secrets_equal("abc", "ab"));
  CHECK_FALSE(security::secrets_equal("", ""));
  const auto a = security::random_hex(16), b = security::random_hex(16);
  CHECK(a.size() == 32);
  CHECK(a != b);
}

TEST_CASE("missing steps follow the client's round robin over the server ranks") {
  step_log log;
  // sim 3, 2 ranks: rank 1 gets steps t with (3 + t) % 2 == 1, i.e. t = 0, 2, 4.
  CHECK(log.missing_steps(3, 1, 6, 1, 2) == 3);
  log.insert(3, 0, 0);
  log.insert(3, 0, 2);
  CHECK(log.missing_steps(3, 1, 6, 1, 2) == 1);
  log.insert(3, 0, 4);
  CHECK(log.missing_steps(3, 1, 6, 1, 2) == 0);
  CHECK(log.missing_steps(3, 1, 6, 0, 2) == 3);   // rank 0: t = 1, 3, 5
  CHECK(log.missing_steps(3, 2, 6, 1, 2) == 3);   // a second field sent nothing
  CHECK(log.missing_steps(3, 1, 6, 0, 1) == 3);   // one rank: every step
}

TEST_CASE("before its admission a session is refused anything but a small hello") {
  session_settings settings;
  settings.fields = {{"u", 16}};
  settings.steps = 4;
  client_session s(settings);
  wire::frame_header step;
  step.type = wire::frame_type::step;
  step.data_type = wire::dtype::f32;
  step.count = 1u << 27;  // 512 MB announced
  CHECK(s.admit_header(step) == "expected hello, got step");
  wire::frame_header big_hello;
  big_hello.type = wire::frame_type::hello;
  big_hello.data_type = wire::dtype::text;
  big_hello.count = 1u << 30;
  CHECK(s.admit_header(big_hello) == "hello frame of 1073741824 bytes (control frames are at most 4096)");

  const std::string text = "version=1\nticket=abc\n";
  wire::frame_header hello = big_hello;
  hello.count = text.size();
  hello.sim_id = 2;
  hello.attempt = 1;
  CHECK(s.admit_header(hello).empty());
  auto act = s.on_frame(hello, reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
  CHECK(act.check_ticket);
  CHECK(act.reply.empty());  // no welcome before the ticket is checked
  CHECK(s.ticket() == "abc");
  CHECK(s.awaiting_admission());
  // The client may send nothing before the welcome.
  wire::frame_header field;
  field.type = wire::frame_type::field;
  field.data_type = wire::dtype::text;
  field.count = 10;
  CHECK(s.admit_header(field) == "field frame before the server's welcome");
  CHECK_FALSE(s.admit().empty());
  CHECK(s.opened());
  CHECK(s.ticket().empty());  // forgotten once used
}

TEST_CASE("a step beyond the study's steps is refused from its header") {
  session_settings settings;
  settings.fields = {{"u", 4}};
  settings.steps = 4;
  client_session s(settings);
  const std::string hello_text = "version=1\n";
  wire::frame_header hello;
  hello.type = wire::frame_type::hello;
  hello.data_type = wire::dtype::text;
  hello.count = hello_text.size();
  s.on_frame(hello, reinterpret_cast<const std::uint8_t*>(hello_text.data()), hello_text.size());
  s.admit();
  const std::string field_text = "name=u\nsize=4\n";
  wire::frame_header field = hello;
  field.type = wire::frame_type::field;
  field.count = field_text.size();
  CHECK(s.on_frame(field, reinterpret_cast<const std::uint8_t*>(field_text.data()),
                   field_text.size()).error.empty());
  wire::frame_header step;
  step.type = wire::frame_type::step;
  step.data_type = wire::dtype::f32;
  step.count = 4;
  step.time_step = 3;
  CHECK(s.admit_header(step).empty());
  step.time_step = 4;
  CHECK(s.admit_header(step) == "time step 4 is beyond the study's 4 steps (client.steps)");
  step.time_step = 0;
  step.count = 5;
  CHECK(s.admit_header(step) == "step 0 of field 'u' has 5 values, the study says 4");
}

TEST_CASE("parameters are finite numbers, nothing else") {
  std::string error;
  CHECK(config::parse_parameters("1,2.5,-3e2", &error) == std::vector<double>{1, 2.5, -300});
  CHECK_FALSE(config::parse_parameters("1,--output=/etc/passwd", &error));
  CHECK(error == "parameter 1 is not a finite number: '--output=/etc/passwd'");
  CHECK_FALSE(config::parse_parameters("1,nan", &error));
  CHECK_FALSE(config::parse_parameters("inf", &error));
  CHECK_FALSE(config::parse_parameters("1, 2", &error));
  CHECK_FALSE(config::parse_parameters("1,,2", &error));
  CHECK_FALSE(config::parse_parameters("", &error));
  CHECK_FALSE(config::parse_parameters("1 --x", &error));
  CHECK(config::format_parameters(*config::parse_parameters("0.1,3", nullptr)) == "0.10000000000000001,3");
}
