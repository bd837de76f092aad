// One TCP connection from the client (rank 0 of the solver) to one server
// rank: connect with retry, send frames with one scatter-gather system call,
// read frames blocking or opportunistically. Knows the framing, not the session.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "environment.hpp"
#include "messages/wire.hpp"

namespace melissa::client {

class connection {
 public:
  using clock = std::chrono::steady_clock;

  // Connects to `address`, retrying with exponential backoff (0.1 s doubling to
  // 2 s) until `deadline`; `timeout_s` is only quoted in the message. Throws
  // client_error(MELISSA_ERR_CONNECT) naming the rank, the address and the
  // last reason.
  connection(const server_address& address, int server_rank, clock::time_point deadline,
             double timeout_s);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Header and payload leave in one sendmsg (writev with MSG_NOSIGNAL, so a
  // closed peer is an error, not a SIGPIPE), straight from `payload`.
  // Throws client_error(MELISSA_ERR_IO).
  void send(const wire::frame_header& header, const void* payload);
  void send_text(wire::frame_type type, std::uint32_t sim_id, std::uint32_t attempt,
                 std::uint32_t field_id, const std::string& text);

  // Blocks until a whole frame has arrived. Throws client_error(IO) on EOF, a
  // socket error or an invalid frame.
  wire::frame_reader::frame receive();
  // Reads whatever is already there without blocking; the next frame if one
  // is complete.
  std::optional<wire::frame_reader::frame> poll();
  // Moves what the socket already holds into the frame reader without
  // blocking: one receive, more only while they fill the buffer.
  void read_available();
  // The next whole frame already read, if any (no system call). Throws
  // client_error(IO) once the stream is closed and every frame was taken.
  std::optional<wire::frame_reader::frame> buffered();

  // "server rank 1 (host:port)", for messages.
  const std::string& name() const { return name_; }
  void close();

 private:
  // Moves bytes from the socket into the frame reader; returns false if the
  // socket had nothing or is closed (then closed_reason_ says why). Without
  // `block`, reads again only while a receive fills the whole buffer.
  bool fill(bool block);
  std::optional<wire::frame_reader::frame> next_buffered();
  [[noreturn]] void fail_io(const std::string& what) const;

  int fd_ = -1;
  std::string name_;
  std::string closed_reason_;  // set once the peer closed or the socket failed
  // Server -> client frames are small control frames; a larger one is a broken stream.
  wire::frame_reader reader_{1u << 20};
};

}  // namespace melissa::client
