// One client connection on the server: a CAF broker that reads frames (header,
// then payload, each with an exact receive policy), lets client_session check
// them, hands steps to the aggregator and returns credit as they are stored.
// A protocol violation closes this connection only, with a logged reason.
#pragma once

#include <chrono>
#include <cstdint>

#include <caf/io/broker.hpp>
#include <caf/io/connection_handle.hpp>

#include "actors/client_proxy/buffer_pool.hpp"
#include "actors/client_proxy/client_session.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

struct proxy_settings {
  session_settings session;
  std::uint64_t max_frame_bytes = wire::default_max_frame_bytes;
  // A connection that has not been admitted (hello, ticket checked) this
  // long after it was accepted is closed: idle or half-open connections hold
  // no memory and no file descriptor for long.
  std::chrono::milliseconds handshake_timeout{10000};
};

struct client_proxy_state;

// Spawned by the client acceptor with `fork` for each accepted connection.
caf::behavior client_proxy(caf::io::stateful_broker<client_proxy_state>* self,
                           caf::io::connection_handle hdl, proxy_settings settings,
                           aggregator_actor aggregator);

struct client_proxy_state {
  explicit client_proxy_state(caf::io::stateful_broker<client_proxy_state>*) {}
  std::unique_ptr<client_session> session;
  std::string peer;                 // "address:port" for logs
  wire::frame_header pending;       // header whose payload is being read
  bool reading_payload = false;
  bool reading_extension = false;   // a slice's 8-byte offset, between header and payload
  std::uint64_t outstanding = 0;    // steps handed to the aggregator, not yet acknowledged
  bool end_requested = false;
  std::chrono::steady_clock::time_point admission_deadline;  // accepted + handshake_timeout
  bool closing = false;
  std::uint64_t max_frame_bytes = 0;
  std::shared_ptr<buffer_pool> buffers;  // payload buffers, recycled
  std::vector<char> header_buffer;       // parked while a payload is read
  aggregator_actor aggregator;
  static inline const char* name = "client_proxy";
};

}  // namespace melissa
