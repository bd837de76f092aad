// The client acceptor with a real TCP client: a restarted aggregator reaches
// the live proxies too (the acceptor forwards the supervisor's notice), so a
// session opened before the restart sends its next steps to the new one.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actors/client_acceptor/client_acceptor.hpp"

using namespace melissa;
using wire::frame_type;

namespace {

static_assert(converts_to_v<acceptor_actor, restart_listener_actor>);
static_assert(converts_to_v<aggregator_actor, restart_listener_actor>);

struct fake_state {
  int opened = 0;
  int steps = 0;
};

// An aggregator that admits every session and stores every step; its report
// is "opened steps".
aggregator_actor::behavior_type fake_aggregator(
    aggregator_actor::stateful_pointer<fake_state> self) {
  return {
      [self](step_sample&) {
        ++self->state.steps;
        return step_outcome::stored;
      },
      [self](opened_atom, std::uint32_t, std::uint32_t, const std::string&) {
        ++self->state.opened;
        return session_admission{true, false, ""};
      },
      [](closed_atom, std::uint32_t, std::uint32_t, session_end) { return std::string(); },
      [](ticket_atom, std::uint32_t, std::uint32_t, const std::string&) {},
      [](revoke_atom, std::uint32_t, std::uint32_t) {},
      [](stats_atom) { return ingest_stats{}; },
      [](activity_atom) { return std::vector<sim_activity>{}; },
      [self](report_atom) {
        return std::to_string(self->state.opened) + " " + std::to_string(self->state.steps);
      },
      [](restarted_atom, const std::string&, caf::actor) {},
  };
}

std::string report(caf::scoped_actor& self, const aggregator_actor& a) {
  std::string r;
  self->request(a, std::chrono::seconds(10), report_atom::value)
      .receive([&](const std::string& s) { r = s; }, [](const caf::error&) { FAIL("report"); });
  return r;
}

struct client {
  int fd = -1;
  wire::frame_reader reader;

  explicit client(std::uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~client() {
    if (fd >= 0) ::close(fd);
  }

  void send(const std::vector<std::uint8_t>& bytes) {
    REQUIRE(::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  }

  wire::frame_reader::frame receive() {
    for (;;) {
      if (auto f = reader.next()) return *f;
      std::uint8_t buf[4096];
      const auto n = ::read(fd, buf, sizeof buf);
      REQUIRE(n > 0);
      REQUIRE(reader.feed(buf, static_cast<std::size_t>(n)));
    }
  }

  void step(std::uint32_t field, std::uint32_t t) {
    wire::frame_header h;
    h.type = frame_type::step;
    h.data_type = wire::dtype::f32;
    h.sim_id = 0;
    h.attempt = 1;
    h.field_id = field;
    h.time_step = t;
    h.count = 4;
    const float values[4] = {1, 2, 3, static_cast<float>(t)};
    send(wire::encode_frame(h, values));
    CHECK(receive().header.type == frame_type::credit);
  }
};

}  // namespace

TEST_CASE("a restarted aggregator reaches the acceptor's live proxies") {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  const aggregator_actor first = sys.spawn(fake_aggregator);
  const aggregator_actor second = sys.spawn(fake_aggregator);

  acceptor_settings settings;
  settings.host = "127.0.0.1";
  settings.port = 0;
  settings.proxy.session.fields = {{"f", 4}};
  // A window of two steps: credit is due after each (client_session::credit_due).
  settings.proxy.session.window_bytes = 64;
  const acceptor_actor acceptor = spawn_client_acceptor(sys, settings, first);
  std::uint16_t port = 0;
  self->request(acceptor, std::chrono::seconds(10), port_atom::value)
      .receive([&](std::uint16_t p) { port = p; }, [](const caf::error&) { FAIL("no port"); });
  REQUIRE(port != 0);

  {
    client c(port);
    c.send(wire::encode_text_frame(frame_type::hello, 0, 1, 0, "version=1\nclient_ranks=1\n"));
    REQUIRE(c.receive().header.type == frame_type::welcome);
    c.send(wire::encode_text_frame(frame_type::field, 0, 1, 0, "name=f\nsize=4\n"));
    const auto ok = c.receive();
    REQUIRE(ok.header.type == frame_type::field_ok);
    const auto field = ok.header.field_id;
    c.step(field, 0);
    CHECK(report(self, first) == "1 1");

    // The supervisor's notice to the acceptor; the port query after it makes
    // sure the acceptor has handled it (and forwarded it) before the next step.
    caf::anon_send(acceptor, restarted_atom::value, std::string("aggregator"),
                   caf::actor_cast<caf::actor>(second));
    self->request(acceptor, std::chrono::seconds(10), port_atom::value)
        .receive([](std::uint16_t) {}, [](const caf::error&) { FAIL("no port"); });
    c.step(field, 1);
    CHECK(report(self, first) == "1 1");
    CHECK(report(self, second) == "0 1");
  }

  caf::anon_send_exit(acceptor, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(first, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(second, caf::exit_reason::user_shutdown);
}
