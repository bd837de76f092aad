// Tries to reach a study's CAF port (the launcher or the shell endpoint) the
// way another user of the machine could, and says whether anything answered.
//
//   caf_probe HOST PORT plain             no TLS at all
//   caf_probe HOST PORT other-key DIR     TLS with a key of another study (made in DIR)
//   caf_probe HOST PORT study-key DIR     TLS with the study's own key (DIR = its output dir)
//   caf_probe HOST PORT study-key DIR submit SIM TEXT
//                                         as a server rank would: ask the launcher to run
//                                         simulation SIM with parameters TEXT
//
// Sends `status` to a launcher_query_actor (launcher port) or a `status`
// shell line (shell port, second form: add "shell TOKEN"). Prints "ANSWER
// <json>" and exits 0 when an answer came, prints "REFUSED <why>" and exits 3
// when the connection was refused.
#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <caf/openssl/all.hpp>

#include "messages/actor_types.hpp"
#include "security/tls.hpp"

int main(int argc, char** argv) {
  using namespace melissa;
  if (argc < 4) {
    std::cerr << "usage: caf_probe HOST PORT plain|other-key DIR|study-key DIR [shell TOKEN]\n";
    return 2;
  }
  const std::string host = argv[1];
  const auto port = static_cast<std::uint16_t>(std::stoi(argv[2]));
  const std::string mode = argv[3];
  int next = 4;
  caf::actor_system_config cfg;
  add_remote_message_types(cfg);
  if (mode == "plain") {
    cfg.load<caf::io::middleman>();
  } else {
    if (argc < 5) return 2;
    const std::string dir = argv[next++];
    security::use_study_tls(cfg, mode == "other-key" ? security::create_study_credentials(dir)
                                                     : security::find_study_credentials(dir));
  }
  if (argc > next + 2 && std::string(argv[next]) == "submit") {
    caf::actor_system sys{cfg};
    auto launcher = caf::openssl::remote_actor<launcher_server_actor>(sys, host, port);
    if (!launcher) {
      std::cout << "REFUSED " << sys.render(launcher.error()) << std::endl;
      return 3;
    }
    caf::anon_send(*launcher, run_sim_atom::value,
                   static_cast<std::uint32_t>(std::stoul(argv[next + 1])), std::string(argv[next + 2]));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let it leave
    std::cout << "SENT" << std::endl;
    return 0;
  }
  const bool shell = argc > next + 1 && std::string(argv[next]) == "shell";
  const std::string token = shell ? argv[next + 1] : "";
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  auto answer = [&](auto handle, auto... xs) {
    int status = 3;
    self->request(handle, std::chrono::seconds(10), xs...)
        .receive(
            [&](const std::string& text) {
              std::cout << "ANSWER " << text << std::endl;
              status = 0;
            },
            [&](const caf::error& err) { std::cout << "REFUSED " << sys.render(err) << std::endl; });
    return status;
  };
  if (shell) {
    auto ep = mode == "plain" ? caf::io::remote_actor<shell_endpoint_actor>(sys, host, port)
                              : caf::openssl::remote_actor<shell_endpoint_actor>(sys, host, port);
    if (!ep) {
      std::cout << "REFUSED " << sys.render(ep.error()) << std::endl;
      return 3;
    }
    return answer(*ep, shell_atom::value, token, std::string("status"));
  }
  auto launcher = mode == "plain" ? caf::io::remote_actor<launcher_query_actor>(sys, host, port)
                                  : caf::openssl::remote_actor<launcher_query_actor>(sys, host, port);
  if (!launcher) {
    std::cout << "REFUSED " << sys.render(launcher.error()) << std::endl;
    return 3;
  }
  return answer(*launcher, status_atom::value);
}
