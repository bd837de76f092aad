#include "actors/client_acceptor/client_acceptor.hpp"

#include <map>
#include <memory>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

namespace melissa {
namespace {

struct acceptor_state {
  explicit acceptor_state(caf::io::stateful_broker<acceptor_state>*) {}
  acceptor_settings settings;
  aggregator_actor aggregator;
  std::uint16_t port = 0;
  // Strong handles, shared with the exit hook below: the proxies end with the
  // acceptor, so that an idle client connection never keeps a server that
  // is shutting down alive (~actor_system waits for every actor).
  std::shared_ptr<std::map<caf::actor_addr, caf::actor>> proxies =
      std::make_shared<std::map<caf::actor_addr, caf::actor>>();
  std::uint64_t accepted = 0;
  static inline const char* name = "client_acceptor";
};

caf::behavior client_acceptor(caf::io::stateful_broker<acceptor_state>* self,
                              acceptor_settings settings, aggregator_actor aggregator) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.aggregator = std::move(aggregator);
  auto bound = self->add_tcp_doorman(st.settings.port, st.settings.host.c_str(), true);
  if (!bound) {
    spdlog::error("cannot listen on {}:{}: {}", st.settings.host, st.settings.port,
                  self->system().render(bound.error()));
    self->quit(bound.error());
    return {};
  }
  st.port = bound->second;
  self->attach_functor([proxies = st.proxies](const caf::error&) {
    for (const auto& [addr, proxy] : *proxies)
      caf::anon_send_exit(proxy, caf::exit_reason::user_shutdown);
    proxies->clear();
  });
  self->set_down_handler([self](const caf::down_msg& msg) {
    self->state.proxies->erase(msg.source);
    if (msg.reason && msg.reason != caf::exit_reason::normal &&
        msg.reason != caf::exit_reason::user_shutdown)
      spdlog::error("a client proxy crashed ({}); its connection is lost, the server goes on",
                    self->system().render(msg.reason));
  });
  return {
      [self](const caf::io::new_connection_msg& msg) {
        auto& st = self->state;
        auto proxy = self->fork(client_proxy, msg.handle, st.settings.proxy, st.aggregator);
        self->monitor(proxy);
        st.proxies->emplace(proxy.address(), proxy);
        ++st.accepted;
      },
      [self](port_atom) { return self->state.port; },
      [self](restarted_atom, const std::string& name, caf::actor fresh) {
        if (name != "aggregator") return;
        self->state.aggregator = caf::actor_cast<aggregator_actor>(fresh);
        // Live proxies switch too (client_proxy.cpp handles the same notice):
        // their later steps go to the new aggregator.
        for (const auto& [addr, proxy] : *self->state.proxies)
          self->send(proxy, restarted_atom::value, name, fresh);
      },
      [self](const caf::io::acceptor_closed_msg&) {
        spdlog::error("the listening socket on port {} closed", self->state.port);
        self->quit(caf::exit_reason::unhandled_exception);
      },
  };
}

}  // namespace

acceptor_actor spawn_client_acceptor(caf::actor_system& sys, acceptor_settings settings,
                                     aggregator_actor aggregator) {
  // An untyped broker: its typed view, cast once here.
  return caf::actor_cast<acceptor_actor>(
      sys.middleman().spawn_broker(client_acceptor, std::move(settings), std::move(aggregator)));
}

}  // namespace melissa
