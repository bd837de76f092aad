// Listens for clients on one TCP port: it owns the reader threads
// (ingest_io) that accept and read the client sockets, and spawns one
// client_proxy actor per accepted connection. It monitors the proxies: a
// proxy that crashes is logged and forgotten, it never takes the server down.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "actors/client_proxy/client_proxy.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

struct acceptor_settings {
  std::string host = "127.0.0.1";  // bind address
  std::uint16_t port = 0;          // 0: any free port
  unsigned io_threads = 2;         // reader threads (server.io_threads)
  std::uint64_t budget_bytes = 1ull << 30;  // step payloads held, all connections (server.budget_mb); 0: no limit
  proxy_settings proxy;
};

// Spawns the acceptor; it binds at start and fails (exits with an error) if it
// cannot. Ask it (port_atom) for the bound port. It handles
// (restarted_atom, "aggregator", handle): new proxies get the new aggregator,
// and it forwards the notice to every live proxy.
acceptor_actor spawn_client_acceptor(caf::actor_system& sys, acceptor_settings settings,
                                 aggregator_actor aggregator);

}  // namespace melissa
