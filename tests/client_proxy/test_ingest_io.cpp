// ingest_io over real loopback sockets, without CAF: a test listener plays
// the proxy (admits every hello, keeps or releases step payloads).
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <string>
#include <thread>

#include "actors/client_proxy/ingest_io.hpp"

using namespace melissa;
using wire::frame_type;
using namespace std::chrono_literals;

namespace {

struct event {
  std::string kind;  // hello, step, end, rejected, lost
  wire::frame_header h;
  std::shared_ptr<const payload_bytes> payload;
  std::string reason;
};

// Collects what every connection reports; admits every hello at once.
struct recorder {
  std::mutex m;
  std::condition_variable cv;
  std::deque<event> events;

  void push(event e) {
    std::lock_guard<std::mutex> lock(m);
    events.push_back(std::move(e));
    cv.notify_all();
  }
  // Waits up to 5 s for `n` events of `kind`; returns how many there are.
  std::size_t wait_for(const std::string& kind, std::size_t n, std::chrono::milliseconds max = 5000ms) {
    std::unique_lock<std::mutex> lock(m);
    auto count = [&] {
      std::size_t c = 0;
      for (auto& e : events) c += e.kind == kind;
      return c;
    };
    cv.wait_for(lock, max, [&] { return count() >= n; });
    return count();
  }
  std::vector<event> take(const std::string& kind) {
    std::lock_guard<std::mutex> lock(m);
    std::vector<event> out;
    for (auto it = events.begin(); it != events.end();) {
      if (it->kind == kind) {
        out.push_back(std::move(*it));
        it = events.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }
};

struct test_listener final : connection_listener {
  test_listener(recorder& r, std::weak_ptr<ingest_connection> c) : rec(r), conn(std::move(c)) {}
  void hello() override {
    if (auto c = conn.lock()) c->send(c->with_session([](client_session& s) { return s.admit(); }));
    rec.push({"hello", {}, {}, {}});
  }
  void step(const wire::frame_header& h, std::shared_ptr<const payload_bytes> p) override {
    rec.push({"step", h, std::move(p), {}});
  }
  void end() override { rec.push({"end", {}, {}, {}}); }
  void rejected(const std::string& reason, const std::string&, bool) override {
    rec.push({"rejected", {}, {}, reason});
  }
  void lost() override { rec.push({"lost", {}, {}, {}}); }
  recorder& rec;
  std::weak_ptr<ingest_connection> conn;
};

struct server {
  recorder rec;
  std::unique_ptr<ingest_io> io;
  explicit server(std::uint64_t budget, std::uint64_t values = 1000, unsigned threads = 2) {
    ingest_io::settings s;
    s.threads = threads;
    s.budget_bytes = budget;
    s.session.fields = {{"data", values}};
    s.session.window_bytes = 1 << 20;
    io = std::make_unique<ingest_io>(s, [this](std::shared_ptr<ingest_connection> c) {
      c->set_listener(std::make_unique<test_listener>(rec, c));
      io_ptr()->start(c);
    });
  }
  ingest_io* io_ptr() {
    while (!io) std::this_thread::yield();  // the first accept can race the constructor's return
    return io.get();
  }
};

int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

void send_all(int fd, const std::vector<std::uint8_t>& b, std::size_t chunk = 1 << 30) {
  for (std::size_t off = 0; off < b.size();) {
    const auto n = ::send(fd, b.data() + off, std::min(chunk, b.size() - off), MSG_NOSIGNAL);
    REQUIRE(n > 0);
    off += static_cast<std::size_t>(n);
  }
}

// Reads frames until one of `type` (or an error frame, or EOF: nullopt).
std::optional<wire::frame_reader::frame> read_until(int fd, frame_type type) {
  wire::frame_reader r;
  std::uint8_t buf[4096];
  for (;;) {
    while (auto f = r.next())
      if (f->header.type == type || f->header.type == frame_type::error) return f;
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    r.feed(buf, static_cast<std::size_t>(n));
  }
}

std::vector<std::uint8_t> hello(std::uint32_t sim) {
  return wire::encode_text_frame(frame_type::hello, sim, 1, 0, "version=1\nclient_ranks=1\nclient_rank=0\n");
}

std::vector<std::uint8_t> step_frame(std::uint32_t sim, std::uint32_t t, std::uint64_t values) {
  std::vector<float> v(values);
  for (std::size_t i = 0; i < values; ++i) v[i] = static_cast<float>(t * 10000 + i);
  wire::frame_header h;
  h.type = frame_type::step;
  h.data_type = wire::dtype::f32;
  h.sim_id = sim;
  h.attempt = 1;
  h.time_step = t;
  h.count = values;
  return wire::encode_frame(h, v.data());
}

// hello, welcome, field, field_ok.
int open_session(server& s, std::uint32_t sim, std::uint64_t values = 1000) {
  const int fd = connect_to(s.io->port());
  send_all(fd, hello(sim));
  REQUIRE(read_until(fd, frame_type::welcome)->header.type == frame_type::welcome);
  send_all(fd, wire::encode_text_frame(frame_type::field, sim, 1, 0,
                                       "name=data\nsize=" + std::to_string(values) + "\n"));
  REQUIRE(read_until(fd, frame_type::field_ok)->header.type == frame_type::field_ok);
  return fd;
}

}  // namespace

TEST_CASE("ingest_io: steps arrive whole and in order, however the bytes are cut") {
  server s(0);
  const int fd = open_session(s, 7);
  std::vector<std::uint8_t> stream;
  for (std::uint32_t t = 0; t < 20; ++t) {
    auto f = step_frame(7, t, 1000);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  send_all(fd, stream, 777);  // pieces that cut headers and payloads anywhere
  REQUIRE(s.rec.wait_for("step", 20) == 20);
  auto steps = s.rec.take("step");
  for (std::uint32_t t = 0; t < 20; ++t) {
    CHECK(steps[t].h.time_step == t);
    CHECK(steps[t].h.sim_id == 7);
    REQUIRE(steps[t].payload->size() == 4000);
    const auto* v = reinterpret_cast<const float*>(steps[t].payload->data());
    CHECK(v[0] == static_cast<float>(t * 10000));
    CHECK(v[999] == static_cast<float>(t * 10000 + 999));
  }
  wire::frame_header end;
  end.type = frame_type::end;
  end.data_type = wire::dtype::none;
  end.sim_id = 7;
  end.attempt = 1;
  send_all(fd, wire::encode_frame(end, nullptr));
  CHECK(s.rec.wait_for("end", 1) == 1);
  CHECK(s.rec.wait_for("rejected", 1, 100ms) == 0);
  ::close(fd);
  CHECK(s.rec.wait_for("lost", 1) == 1);
}

TEST_CASE("ingest_io: an end that arrives with the last payload is not left unread") {
  // The reader reads a bounded number of times per socket event; a header
  // read with the last payload must still be handled, whatever the count.
  server s(0, 10);
  wire::frame_header end;
  end.type = frame_type::end;
  end.data_type = wire::dtype::none;
  end.attempt = 1;
  for (std::uint32_t steps = 28; steps <= 36; ++steps) {
    const int fd = open_session(s, steps, 10);
    std::vector<std::uint8_t> stream;
    for (std::uint32_t t = 0; t < steps; ++t) {
      auto f = step_frame(steps, t, 10);
      stream.insert(stream.end(), f.begin(), f.end());
    }
    end.sim_id = steps;
    auto e = wire::encode_frame(end, nullptr);
    stream.insert(stream.end(), e.begin(), e.end());
    send_all(fd, stream);
    CHECK_MESSAGE(s.rec.wait_for("end", 1) == 1, steps, " steps then end");
    CHECK(s.rec.take("step").size() == steps);
    s.rec.take("end");
    ::close(fd);
  }
}

TEST_CASE("ingest_io: a malformed header closes only its connection, with the reason") {
  server s(0);
  const int good = open_session(s, 1);
  const int bad = open_session(s, 2);
  auto f = step_frame(2, 0, 1000);
  f[4] ^= 0xff;  // the magic
  send_all(bad, f);
  auto err = read_until(bad, frame_type::end);
  REQUIRE(err.has_value());
  CHECK(err->header.type == frame_type::error);
  const std::string why(err->payload.begin(), err->payload.end());
  CHECK(why.find("magic") != std::string::npos);
  REQUIRE(s.rec.wait_for("rejected", 1) == 1);
  CHECK(s.rec.take("rejected")[0].reason == why);
  // The other connection goes on.
  send_all(good, step_frame(1, 0, 1000));
  REQUIRE(s.rec.wait_for("step", 1) == 1);
  CHECK(s.rec.take("step")[0].h.sim_id == 1);
  ::close(good);
  ::close(bad);
}

TEST_CASE("ingest_io: a step refused by its header is refused before its payload is sent") {
  server s(0);
  const int fd = open_session(s, 3);
  auto f = step_frame(3, 0, 1000);
  f.resize(wire::header_size);  // the header alone: the server must answer without the payload
  f[24] = 5;                    // field id 5: not declared
  send_all(fd, f);
  auto err = read_until(fd, frame_type::end);
  REQUIRE(err.has_value());
  CHECK(std::string(err->payload.begin(), err->payload.end()) == "step for undeclared field id 5");
  ::close(fd);
}

TEST_CASE("ingest_io: the server-wide budget stops reading until payloads are released") {
  const std::uint64_t values = 100000;  // 400 kB a step
  server s(2 * values * 4, values);
  std::vector<int> fds;
  for (std::uint32_t sim = 0; sim < 4; ++sim) fds.push_back(open_session(s, sim, values));
  for (std::uint32_t sim = 0; sim < 4; ++sim) send_all(fds[sim], step_frame(sim, 0, values));
  // Two fit; the others wait, held back by TCP, while the test keeps the payloads.
  CHECK(s.rec.wait_for("step", 2) == 2);
  CHECK(s.rec.wait_for("step", 3, 300ms) == 2);
  CHECK(s.io->budget().used() == 2 * values * 4);
  auto first = s.rec.take("step");
  first.clear();  // released: the budget comes back and the waiting two are read
  CHECK(s.rec.wait_for("step", 2) == 2);
  CHECK(s.io->budget().peak() == 2 * values * 4);
  s.rec.take("step");
  CHECK(s.io->budget().used() == 0);
  for (int fd : fds) ::close(fd);
}

TEST_CASE("ingest_io: stop() closes every connection") {
  server s(0);
  const int fd = open_session(s, 4);
  s.io->stop();
  char c;
  CHECK(::recv(fd, &c, 1, 0) <= 0);
  ::close(fd);
}

TEST_CASE("ingest_io: out of descriptors, a connection is closed at once and later ones get in") {
  server s(0);
  // Client sockets made while descriptors remain; then the limit is lowered
  // to what is open, so the server's accept fails with EMFILE.
  std::vector<int> socks;
  for (int i = 0; i < 3; ++i) socks.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int lowest_free = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(lowest_free >= 0);
  ::close(lowest_free);
  rlimit old{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &old) == 0);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(lowest_free);  // no new descriptor from here
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(s.io->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(socks[0], reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  timeval tv{5, 0};
  ::setsockopt(socks[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char c;
  // Without the spare descriptor the connection would wait in the backlog
  // (and the reader thread spin): the read would time out (-1) instead of 0.
  CHECK(::recv(socks[0], &c, 1, 0) == 0);
  CHECK(s.io->refused_for_descriptors() >= 1);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &old) == 0);
  for (int fd : socks) ::close(fd);
  // Descriptors back: a session opens as usual.
  const int fd = open_session(s, 9);
  CHECK(s.rec.wait_for("hello", 1) >= 1);
  ::close(fd);
}
