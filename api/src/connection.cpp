#include "connection.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "error.hpp"

namespace melissa::client {
namespace {

using namespace std::chrono;

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

int remaining_ms(connection::clock::time_point deadline) {
  const auto left = duration_cast<milliseconds>(deadline - connection::clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
}

// One connection attempt to every address `host` resolves to. Returns the
// connected socket, or -1 with `reason` set.
int try_connect(const server_address& address, connection::clock::time_point deadline,
                std::string& reason) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(address.host.c_str(), address.port.c_str(), &hints, &found);
      rc != 0) {
    reason = gai_strerror(rc);  // DNS may come up later: retried like a refusal
    return -1;
  }
  int connected = -1;
  for (addrinfo* ai = found; ai != nullptr && connected < 0; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                            ai->ai_protocol);
    if (fd < 0) {
      reason = std::strerror(errno);
      continue;
    }
    // Non-blocking connect so that an unroutable host cannot hold us past the
    // deadline (a blocking connect waits for the kernel's SYN timeout).
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      do {
        rc = ::poll(&p, 1, std::max(remaining_ms(deadline), 100));
      } while (rc < 0 && errno == EINTR);
      if (rc == 0) {
        reason = "Connection timed out";
        rc = -1;
      } else {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        if (err != 0) reason = std::strerror(err);
      }
    } else if (rc < 0) {
      reason = std::strerror(errno);
    }
    if (rc == 0) {
      connected = fd;
    } else {
      ::close(fd);
    }
  }
  freeaddrinfo(found);
  if (connected >= 0) {
    const int flags = ::fcntl(connected, F_GETFL);
    ::fcntl(connected, F_SETFL, flags & ~O_NONBLOCK);
    // Steps are large single frames and control frames are latency-bound:
    // Nagle's algorithm would only delay the small ones.
    int one = 1;
    ::setsockopt(connected, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return connected;
}

}  // namespace

connection::connection(const server_address& address, int server_rank,
                       clock::time_point deadline, double timeout_s)
    : name_("server rank " + std::to_string(server_rank) + " (" + address.text() + ")") {
  auto delay = duration<double>(0.1);
  std::string reason = "not tried";
  while (true) {
    fd_ = try_connect(address, deadline, reason);
    if (fd_ >= 0) return;
    const auto now = clock::now();
    if (now >= deadline) break;
    // The server may still be starting: back off, but never sleep past the
    // deadline, and try once more right at it.
    std::this_thread::sleep_for(std::min<clock::duration>(
        duration_cast<clock::duration>(delay), deadline - now));
    delay = std::min(delay * 2, duration<double>(2.0));
  }
  throw client_error(MELISSA_ERR_CONNECT, "melissa: cannot reach server rank " +
                                              std::to_string(server_rank) + " at " +
                                              address.text() + " after " +
                                              seconds_text(timeout_s) + " s: " + reason);
}

connection::~connection() { close(); }

void connection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void connection::fail_io(const std::string& what) const {
  throw client_error(MELISSA_ERR_IO, "melissa: " + name_ + ": " + what);
}

void connection::send(const wire::frame_header& header, const void* payload) {
  if (fd_ < 0) fail_io("connection already closed");
  // The header and a slice's offset extension go out as one piece.
  std::uint8_t head[wire::header_size + wire::slice_extension_size];
  wire::encode_header(header, head);
  const std::size_t ext = wire::extension_size(header.type);
  if (ext > 0) wire::encode_extension(header, head + wire::header_size);
  iovec iov[2];
  iov[0].iov_base = head;
  iov[0].iov_len = wire::header_size + ext;
  iov[1].iov_base = const_cast<void*>(payload);
  iov[1].iov_len = static_cast<std::size_t>(header.payload_bytes());
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = iov[1].iov_len > 0 ? 2 : 1;
  while (msg.msg_iovlen > 0) {
    const ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_io(std::string("connection lost while sending a ") + wire::to_string(header.type) +
              " frame: " + std::strerror(errno));
    }
    // A partial write: skip what went out and send the rest.
    auto left = static_cast<std::size_t>(n);
    while (msg.msg_iovlen > 0 && left >= msg.msg_iov[0].iov_len) {
      left -= msg.msg_iov[0].iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + left;
      msg.msg_iov[0].iov_len -= left;
    }
  }
}

void connection::send_text(wire::frame_type type, std::uint32_t sim_id, std::uint32_t attempt,
                           std::uint32_t field_id, const std::string& text) {
  wire::frame_header h;
  h.type = type;
  h.data_type = text.empty() ? wire::dtype::none : wire::dtype::text;
  h.sim_id = sim_id;
  h.attempt = attempt;
  h.field_id = field_id;
  h.count = text.size();
  send(h, text.data());
}

bool connection::fill(bool block) {
  if (fd_ < 0) fail_io("connection already closed");
  if (!closed_reason_.empty()) return false;
  std::uint8_t buf[64 * 1024];
  while (true) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, block ? 0 : MSG_DONTWAIT);
    if (n > 0) {
      reader_.feed(buf, static_cast<std::size_t>(n));
      if (!block && static_cast<std::size_t>(n) == sizeof buf) continue;  // maybe more behind
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && !block && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    // Remembered rather than thrown: frames already buffered (typically the
    // server's `error` frame, sent just before it closed) are read first.
    closed_reason_ = n == 0 ? std::string("the server closed the connection")
                            : std::string("connection lost: ") + std::strerror(errno);
    return false;
  }
}

std::optional<wire::frame_reader::frame> connection::next_buffered() {
  if (auto f = reader_.next()) return f;
  if (reader_.broken()) fail_io("invalid frame from the server: " + reader_.error());
  return std::nullopt;
}

wire::frame_reader::frame connection::receive() {
  while (true) {
    if (auto f = next_buffered()) return std::move(*f);
    if (!closed_reason_.empty()) fail_io(closed_reason_);
    fill(true);
  }
}

void connection::read_available() { fill(false); }

std::optional<wire::frame_reader::frame> connection::buffered() {
  if (auto f = next_buffered()) return f;
  if (!closed_reason_.empty()) fail_io(closed_reason_);
  return std::nullopt;
}

std::optional<wire::frame_reader::frame> connection::poll() {
  if (auto f = next_buffered()) return f;
  read_available();
  return buffered();
}

}  // namespace melissa::client
