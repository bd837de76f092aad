// Load generator for the many-connections benchmark (tests/bench/many_clients):
// one process opens CONNECTIONS client sessions to one server rank and speaks
// the wire protocol on each, as libmelissa-api does (hello, field, steps within
// the credit window, end, wait for the server's end), all from one epoll loop:
// a thousand solver processes would not fit on a small test machine, while a
// thousand connections do.
//   many_senders HOST:PORT CONNECTIONS VALUES STEPS [FIRST_SIM]
// VALUES float32 per step, STEPS steps per connection. Raises its own
// file-descriptor limit. Every session is opened (welcome, field_ok) before
// any step is sent, so that the transfer runs with all connections live.
// Prints two numbers: the seconds from the first step sent to the last `end`
// received, and the seconds the handshakes took; exits 1 if any session
// failed (the reason on stderr).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "messages/wire.hpp"

namespace {

using namespace melissa;
using clock_type = std::chrono::steady_clock;

struct session {
  int fd = -1;
  enum { welcome, field_ok, streaming, ending, done } state = welcome;
  std::uint32_t sim = 0;
  std::uint64_t window = 0;
  std::uint64_t in_flight = 0;  // payload bytes sent, not credited
  std::uint32_t next_step = 0;
  std::vector<std::uint8_t> out;  // a control frame or the current step's header
  std::size_t out_sent = 0;
  std::size_t payload_sent = 0;  // of the current step (0 when none is being written)
  bool step_open = false;
  wire::frame_reader reader;
};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "many_senders: %s\n", what.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: many_senders HOST:PORT CONNECTIONS VALUES STEPS [FIRST_SIM]\n");
    return 2;
  }
  const std::string address = argv[1];
  const int connections = std::atoi(argv[2]);
  const std::uint64_t values = std::strtoull(argv[3], nullptr, 10);
  const std::uint32_t steps = static_cast<std::uint32_t>(std::atol(argv[4]));
  const std::uint32_t first_sim = argc > 5 ? static_cast<std::uint32_t>(std::atol(argv[5])) : 0;
  const auto colon = address.rfind(':');
  const std::string host = address.substr(0, colon);
  const auto port = static_cast<std::uint16_t>(std::atoi(address.c_str() + colon + 1));

  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < static_cast<rlim_t>(connections) + 16)
    die("the file-descriptor limit (" + std::to_string(lim.rlim_cur) + ") is below " +
        std::to_string(connections) + " connections");

  std::vector<float> data(values);
  for (std::uint64_t i = 0; i < values; ++i) data[i] = static_cast<float>(i);
  const std::uint64_t step_bytes = values * 4;

  const auto opened_at = clock_type::now();  // connect, hello, welcome, field, field_ok
  const int ep = ::epoll_create1(0);
  std::vector<session> sessions(static_cast<std::size_t>(connections));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) die("not an IPv4 address: " + host);
  for (int i = 0; i < connections; ++i) {
    auto& s = sessions[static_cast<std::size_t>(i)];
    s.sim = first_sim + static_cast<std::uint32_t>(i);
    s.fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (::connect(s.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      die(std::string("connect: ") + std::strerror(errno));
    const int one = 1;
    ::setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto hello = wire::encode_text_frame(wire::frame_type::hello, s.sim, 1, 0,
                                         "version=1\nclient_ranks=1\nclient_rank=0\n");
    if (::send(s.fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size()))
      die("hello");
    ::fcntl(s.fd, F_SETFL, ::fcntl(s.fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;  // edge: no spinning while a session waits for credit
    ev.data.u32 = static_cast<std::uint32_t>(i);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
  }

  auto start = clock_type::now();
  bool started = false;  // every session is streaming
  int streaming = 0;
  int finished = 0;
  std::vector<epoll_event> events(1024);
  std::vector<std::uint8_t> buf(1 << 16);

  // Writes what it can of the session's pending output; false on a fatal error.
  auto pump = [&](session& s) {
    for (;;) {
      if (s.state == session::streaming && !started) return;
      if (s.state == session::streaming && !s.step_open) {
        if (s.next_step >= steps) {
          wire::frame_header h;
          h.type = wire::frame_type::end;
          h.data_type = wire::dtype::none;
          h.sim_id = s.sim;
          h.attempt = 1;
          s.out = wire::encode_frame(h, nullptr);
          s.out_sent = 0;
          s.state = session::ending;
        } else if (s.in_flight == 0 || s.in_flight + step_bytes <= s.window) {
          wire::frame_header h;
          h.type = wire::frame_type::step;
          h.data_type = wire::dtype::f32;
          h.sim_id = s.sim;
          h.attempt = 1;
          h.time_step = s.next_step++;
          h.count = values;
          s.out.resize(wire::header_size);
          wire::encode_header(h, s.out.data());
          s.out_sent = 0;
          s.payload_sent = 0;
          s.step_open = true;
          s.in_flight += step_bytes;
        } else {
          return;  // no credit: wait for it
        }
      }
      const bool with_payload = s.step_open;
      const std::size_t head_left = s.out.size() - s.out_sent;
      const std::size_t body_left = with_payload ? step_bytes - s.payload_sent : 0;
      if (head_left + body_left == 0) return;
      iovec iov[2];
      int n_iov = 0;
      if (head_left) iov[n_iov++] = {s.out.data() + s.out_sent, head_left};
      if (body_left)
        iov[n_iov++] = {reinterpret_cast<char*>(data.data()) + s.payload_sent, body_left};
      const auto n = ::writev(s.fd, iov, n_iov);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        die(std::string("write: ") + std::strerror(errno));
      }
      auto w = static_cast<std::size_t>(n);
      const auto h = std::min(w, head_left);
      s.out_sent += h;
      w -= h;
      s.payload_sent += w;
      if (s.out_sent == s.out.size() && (!with_payload || s.payload_sent == step_bytes)) {
        s.out.clear();
        s.out_sent = 0;
        if (with_payload) s.step_open = false;
        if (s.state != session::streaming) return;  // a control frame is out: wait for the answer
      } else {
        return;  // the socket is full
      }
    }
  };

  auto on_frame = [&](session& s, const wire::frame_reader::frame& f) {
    using t = wire::frame_type;
    if (f.header.type == t::error)
      die("sim " + std::to_string(s.sim) + ": " + std::string(f.payload.begin(), f.payload.end()));
    if (s.state == session::welcome && f.header.type == t::welcome) {
      const std::string text(f.payload.begin(), f.payload.end());
      auto kv = wire::parse_key_values(text);
      s.window = std::strtoull(kv->at("window").c_str(), nullptr, 10);
      s.out = wire::encode_text_frame(t::field, s.sim, 1, 0,
                                      "name=data\nsize=" + std::to_string(values) + "\n");
      s.out_sent = 0;
      s.state = session::field_ok;
    } else if (s.state == session::field_ok && f.header.type == t::field_ok) {
      s.state = session::streaming;
      if (++streaming == connections) {
        started = true;
        start = clock_type::now();
        for (auto& other : sessions)
          if (&other != &s) pump(other);
      }
    } else if (f.header.type == t::credit) {
      s.in_flight -= std::min<std::uint64_t>(f.header.count, s.in_flight);
    } else if (s.state == session::ending && f.header.type == t::end) {
      s.state = session::done;
      ++finished;
      ::epoll_ctl(ep, EPOLL_CTL_DEL, s.fd, nullptr);
      ::close(s.fd);
    }
  };

  while (finished < connections) {
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 60000);
    if (n == 0) die("no progress for 60 s");
    for (int i = 0; i < n; ++i) {
      auto& s = sessions[events[i].data.u32];
      if (s.state == session::done) continue;
      if (events[i].events & EPOLLIN) {
        for (;;) {
          const auto r = ::recv(s.fd, buf.data(), buf.size(), 0);
          if (r == 0) die("sim " + std::to_string(s.sim) + ": the server closed the connection");
          if (r < 0) break;
          s.reader.feed(buf.data(), static_cast<std::size_t>(r));
          while (auto f = s.reader.next()) on_frame(s, *f);
          if (s.state == session::done) break;
        }
        if (s.reader.broken()) die("bad frame from the server: " + s.reader.error());
      }
      if (s.state != session::done) pump(s);
    }
  }
  std::printf("%.6f %.6f\n", std::chrono::duration<double>(clock_type::now() - start).count(),
              std::chrono::duration<double>(start - opened_at).count());
  return 0;
}
