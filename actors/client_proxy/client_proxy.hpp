// One client connection on the server: an actor that carries out what the
// connection's reader thread (ingest_io) found in its frames. It asks the
// aggregator to admit the session (ticket), hands each step to it, sends
// credit back as steps are stored, and reports how the session ended. The
// frames themselves are read and checked (client_session) on the reader
// thread, off the actor scheduler; a protocol violation closes this
// connection only, with a logged reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>

#include <caf/actor.hpp>
#include <caf/stateful_actor.hpp>

#include "actors/client_proxy/buffer_pool.hpp"
#include "actors/client_proxy/client_session.hpp"
#include "actors/client_proxy/ingest_io.hpp"
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

struct client_proxy_state {
  explicit client_proxy_state(caf::event_based_actor*) {}
  std::shared_ptr<ingest_connection> conn;
  std::uint64_t outstanding = 0;    // steps handed to the aggregator, not yet acknowledged
  std::uint64_t pending_credit = 0;  // bytes stored, not yet granted back (see add_credit)
  bool flush_scheduled = false;      // a flush_credit message is queued
  bool end_requested = false;
  std::chrono::steady_clock::time_point admission_deadline;  // accepted + handshake_timeout
  bool closing = false;
  aggregator_actor aggregator;
  static inline const char* name = "client_proxy";
};

// Spawned by the client acceptor for each accepted connection, before the
// connection is read.
caf::behavior client_proxy(caf::stateful_actor<client_proxy_state>* self,
                           std::shared_ptr<ingest_connection> conn,
                           std::chrono::milliseconds handshake_timeout, aggregator_actor aggregator);

// What the connection's reader thread tells the proxy (as messages).
std::unique_ptr<connection_listener> make_proxy_listener(const caf::actor& proxy, std::string peer);

}  // namespace melissa
