// The shell endpoint: the actor that melissa-run publishes so that
// melissa-shell can attach to a live study.
//
// (shell_atom, token, command line) -> JSON text. The endpoint checks the
// token (the CAF wire protocol authenticates nobody), parses the line with
// shell::parse_command, forwards the command to the launcher and returns the
// launcher's JSON answer unchanged. `help` and lines that do not parse are
// answered by the endpoint itself:
//   {"ok": true, "help": "..."}
//   {"ok": false, "error": "unknown command 'stats'; try: help"}
//   {"ok": false, "error": "wrong token"}
//
// Use from the launcher:
//   caf::actor_system_config cfg;
//   security::use_study_tls(cfg, security::create_study_credentials(output_dir));
//   enable_middleman_heartbeats(cfg);          // before the actor system exists
//   ...
//   auto endpoint = spawn_shell_endpoint(sys, launcher, token);
//   auto port = publish_shell_endpoint(endpoint, 0, "127.0.0.1");
//   if (!port) -> error: sys.render(port.error())
//   write_shell_file(output_dir, "127.0.0.1", *port, token);
//   ... at the end: remove_shell_file(output_dir); the endpoint quits when the
//   launcher actor terminates (it monitors it), or on send_exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>

#include "actors/shell_endpoint/shell_command.hpp"
#include "actors/shell_endpoint/shell_file.hpp"
#include "messages/actor_types.hpp"

namespace melissa {

// How long the endpoint waits for the launcher before answering
// {"ok": false, "error": "the launcher did not answer ..."}. Longer than the
// launcher's wait for a server rank (15 s), which is longer than the
// coordinator's wait for its children: the chain is in
// actors/launcher/launcher_queries.hpp (rank_query_timeout).
inline constexpr std::chrono::milliseconds default_launcher_timeout{20000};

// The endpoint monitors `launcher` and quits with it. Commands that change the
// study (kill, pause, resume, set, stop) and refused tokens are logged
// (spdlog); the token itself never is.
shell_endpoint_actor spawn_shell_endpoint(
    caf::actor_system& sys, launcher_query_actor launcher, std::string token,
    std::chrono::milliseconds launcher_timeout = default_launcher_timeout);

// Publishes the endpoint on host:port (port 0: the system picks one) with
// SO_REUSEADDR over mutual TLS, and returns the bound port. The actor system
// must be configured with security::use_study_tls: a peer without the study's
// key fails the TLS handshake before the endpoint hears anything; the token
// is a second check on top. Bind to loopback unless the user asked for
// another address (launcher.shell_host).
caf::expected<std::uint16_t> publish_shell_endpoint(const shell_endpoint_actor& endpoint,
                                                    std::uint16_t port = 0,
                                                    const std::string& host = "127.0.0.1");

// Makes the middleman send a heartbeat to every connected node each
// `interval`. melissa-shell drops a study that stays silent for its
// connection timeout (10 s by default), so the process that publishes the
// endpoint must send heartbeats more often than that, or an idle shell
// session would be cut. `connection_timeout` (0: never) drops peers that stay
// silent that long; leave it 0 unless every peer of this process sends
// heartbeats too. Call before constructing the actor system.
void enable_middleman_heartbeats(caf::actor_system_config& cfg,
                                 caf::timespan interval = std::chrono::seconds(1),
                                 caf::timespan connection_timeout = caf::timespan{0});

}  // namespace melissa
