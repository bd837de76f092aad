// Baselines for the ingest benchmark, moving the same bytes as the Melissa
// clients: `senders` processes each send `steps` messages of `bytes` bytes to
// one receiver process over loopback.
//   raw_baselines tcp|zmq SENDERS BYTES STEPS
// tcp: plain sockets, the receiver reads every connection from one thread
// (poll), like the server's single I/O thread. zmq: PUSH sockets into one PULL.
// Prints the seconds from the first byte sent to the last byte received.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

double run_tcp(int senders, std::size_t bytes, long steps) {
  int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  socklen_t len = sizeof addr;
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  ::listen(listener, 128);
  for (int s = 0; s < senders; ++s) {
    if (::fork() == 0) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("connect");
      std::vector<char> msg(bytes, 1);
      for (long t = 0; t < steps; ++t) {
        std::size_t off = 0;
        while (off < bytes) {
          auto w = ::write(fd, msg.data() + off, bytes - off);
          if (w <= 0) die("write");
          off += static_cast<std::size_t>(w);
        }
      }
      ::close(fd);
      std::_Exit(0);
    }
  }
  std::vector<pollfd> fds;
  for (int s = 0; s < senders; ++s) fds.push_back({::accept(listener, nullptr, nullptr), POLLIN, 0});
  const auto start = clock_type::now();
  std::vector<char> buf(std::max<std::size_t>(bytes, 1 << 16));
  int open = senders;
  while (open > 0) {
    ::poll(fds.data(), fds.size(), -1);
    for (auto& p : fds) {
      if (p.fd < 0 || !(p.revents & (POLLIN | POLLHUP))) continue;
      auto r = ::read(p.fd, buf.data(), buf.size());
      if (r <= 0) {
        ::close(p.fd);
        p.fd = -1;
        --open;
      }
    }
  }
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  while (::wait(nullptr) > 0) {
  }
  return secs;
}

double run_zmq(int senders, std::size_t bytes, long steps) {
  void* ctx = zmq_ctx_new();
  void* pull = zmq_socket(ctx, ZMQ_PULL);
  int hwm = 16;
  zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
  // A port the system picks (a port derived from the pid collided now and then).
  if (zmq_bind(pull, "tcp://127.0.0.1:*") != 0) die("zmq_bind");
  char bound[256];
  std::size_t bound_len = sizeof bound;
  if (zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, bound, &bound_len) != 0) die("zmq_getsockopt");
  const std::string endpoint = bound;
  for (int s = 0; s < senders; ++s) {
    if (::fork() == 0) {
      void* c = zmq_ctx_new();
      void* push = zmq_socket(c, ZMQ_PUSH);
      zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
      zmq_connect(push, endpoint.c_str());
      std::vector<char> msg(bytes, 1);
      for (long t = 0; t < steps; ++t)
        if (zmq_send(push, msg.data(), bytes, 0) < 0) die("zmq_send");
      int linger = -1;
      zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
      zmq_close(push);
      zmq_ctx_term(c);
      std::_Exit(0);
    }
  }
  zmq_msg_t m;
  zmq_msg_init(&m);
  // The clock starts at the first message, as for TCP after accept.
  if (zmq_msg_recv(&m, pull, 0) < 0) die("zmq_recv");
  const auto start = clock_type::now();
  for (long i = 1; i < senders * steps; ++i)
    if (zmq_msg_recv(&m, pull, 0) < 0) die("zmq_recv");
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  zmq_msg_close(&m);
  while (::wait(nullptr) > 0) {
  }
  zmq_close(pull);
  zmq_ctx_term(ctx);
  return secs;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: raw_baselines tcp|zmq SENDERS BYTES STEPS\n");
    return 2;
  }
  const std::string kind = argv[1];
  const int senders = std::atoi(argv[2]);
  const std::size_t bytes = std::strtoull(argv[3], nullptr, 10);
  const long steps = std::atol(argv[4]);
  const double secs = kind == "tcp" ? run_tcp(senders, bytes, steps) : run_zmq(senders, bytes, steps);
  std::printf("%.6f\n", secs);
  return 0;
}
