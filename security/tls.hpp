// Mutual TLS for the CAF ports of a study (see study_credentials.hpp for why).
//
//   caf::actor_system_config cfg;
//   melissa::security::use_study_tls(cfg, creds);  // loads io::middleman and openssl::manager
//   caf::actor_system sys{cfg};
//   caf::openssl::publish(actor, port, host, true) / caf::openssl::remote_actor<T>(sys, host, port)
//
// A peer that does not present the study's certificate and prove it holds its
// key fails the handshake; CAF then drops the connection without reading any
// of its bytes as CAF messages.
#pragma once

#include <chrono>
#include <string>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/duration.hpp>
#include <caf/function_view.hpp>
#include <caf/openssl/manager.hpp>

#include "security/study_credentials.hpp"

namespace melissa::security {

void use_study_tls(caf::actor_system_config& cfg, const credentials& creds);

// caf::openssl::remote_actor with a deadline: the TLS handshake with a peer
// that accepted the TCP connection but never answers (a stopped process)
// would otherwise wait forever.
template <class Handle>
caf::expected<Handle> remote_actor_within(caf::actor_system& sys, std::string host,
                                          std::uint16_t port, caf::timespan timeout) {
  auto connect = caf::make_function_view(
      sys.openssl_manager().actor_handle(),
      caf::duration{std::chrono::duration_cast<std::chrono::milliseconds>(timeout)});
  auto answer = connect(caf::connect_atom::value, std::move(host), port);
  if (!answer) return std::move(answer.error());
  auto& found = std::get<1>(*answer);
  if (!found) return caf::make_error(caf::sec::no_actor_published_at_port);
  caf::detail::type_list<Handle> interface;
  if (!sys.assignable(std::get<2>(*answer), sys.message_types(interface)))
    return caf::make_error(caf::sec::unexpected_actor_messaging_interface);
  return caf::actor_cast<Handle>(std::move(found));
}

}  // namespace melissa::security
