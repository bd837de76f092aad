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

#include <caf/actor_system_config.hpp>

#include "security/study_credentials.hpp"

namespace melissa::security {

void use_study_tls(caf::actor_system_config& cfg, const credentials& creds);

}  // namespace melissa::security
