// The session with one server rank, as docs/protocol.md describes it: hello /
// welcome, field declarations, step frames under byte-credit flow control, and
// the end handshake. Used by rank 0 of the solver in training mode, by every
// rank in statistics mode (each sends its own slices); no MPI in here.
#pragma once

#include <cstdint>
#include <string>

#include "connection.hpp"
#include "credit_window.hpp"
#include "error.hpp"

namespace melissa::client {

class server_link {
 public:
  // Connects (with retry until `deadline`); throws client_error(CONNECT).
  server_link(const server_address& address, int server_rank, connection::clock::time_point deadline,
              double timeout_s, std::uint32_t sim_id, std::uint32_t attempt);

  // hello -> welcome. Checks that the server is rank `server_rank` of
  // `server_ranks` (the number of addresses we were given) and runs in a mode
  // this API knows (training, statistics: see mode()). Throws
  // client_error(REFUSED) on an `error` answer or a mismatch.
  // `ticket` (MELISSA_TICKET) proves to a server under melissa-run that this
  // is the job it started; empty for a standalone server. `client_rank`: the
  // solver rank that opens this session.
  void handshake(int client_ranks, int server_ranks, const std::string& ticket,
                 int client_rank = 0);
  // The study's mode, from the welcome: "training" or "statistics".
  const std::string& mode() const { return mode_; }

  // field -> field_ok; returns the field id this rank assigned. Throws
  // client_error(REFUSED) with the server's reason.
  std::uint32_t declare_field(const std::string& name, std::uint64_t global_size);

  // One step frame of `count` float32 values, sent from `values` as they are.
  // Blocks while the credit window does not allow it.
  void send_step(std::uint32_t field_id, std::uint32_t time_step, const float* values,
                 std::uint64_t count);

  // finalize: `end` goes to every rank first, then each answer is awaited, so
  // that the ranks drain in parallel.
  // Statistics mode: values [offset, offset + count) of the field's global
  // step, as slice frames of at most max_slice_bytes each (and the window).
  void send_slice(std::uint32_t field_id, std::uint32_t time_step, std::uint64_t offset,
                  const float* values, std::uint64_t count);
  static constexpr std::uint64_t max_slice_bytes = 16ull << 20;

  void send_end();
  void wait_end();

  const std::string& name() const { return conn_.name(); }
  const credit_window& window() const { return window_; }

 private:
  // A frame that may arrive at any time: credit (added to the window) or
  // error (thrown, with `context` and the server's text). Others are
  // protocol errors unless the caller handles them first.
  void handle_unsolicited(const wire::frame_reader::frame& f, const char* context,
                          melissa_status error_status);
  wire::frame_header control_header(wire::frame_type type) const;
  // Handles every frame the server has sent so far (credit, an error), with
  // one non-blocking read.
  void read_unsolicited(const char* context);
  // After a failed send: the server's `error` frame, if it sent one before
  // closing, is thrown instead of the broken pipe.
  void throw_pending_error(const char* context);

  // Before each step the client used to read the socket (one more system
  // call per step: a quarter of a 40 KB sender's time, issue 16). It now
  // reads once the window is half spent, and at least every this many steps
  // so that a server's error is seen while credit is plentiful.
  static constexpr unsigned read_every_steps = 64;
  unsigned steps_since_read_ = 0;

  connection conn_;
  int server_rank_;
  std::uint32_t sim_id_;
  std::uint32_t attempt_;
  credit_window window_;
  std::string mode_ = "training";
};

}  // namespace melissa::client
