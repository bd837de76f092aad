#include "actors/client_acceptor/client_acceptor.hpp"

#include <map>
#include <memory>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

// A connection accepted by a reader thread, handed to the acceptor (local only).
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<melissa::ingest_connection>)

namespace melissa {
namespace {

struct acceptor_state {
  explicit acceptor_state(caf::event_based_actor*) {}
  ~acceptor_state() {
    if (!io) return;
    // The fullest the budget got (tests/bench/many_clients --sink-delay-ms reads it).
    const auto& b = io->budget();
    spdlog::info("ingest: {} connections; step payloads held at most {:.1f} MiB (budget {:.0f} MiB{})", accepted,
                 b.peak() / 1048576.0, b.limit() / 1048576.0, b.limit() == 0 ? ": unlimited" : "");
    const auto buffers = io->buffers();
    spdlog::info("ingest: {} payload buffers taken, {} of them freshly allocated, {} freed (pool full)",
                 buffers.taken, buffers.fresh, buffers.freed);
    io->stop();  // no reader thread outlives the acceptor
  }
  acceptor_settings settings;
  aggregator_actor aggregator;
  std::unique_ptr<ingest_io> io;
  // Strong handles, shared with the exit hook below: the proxies end with the
  // acceptor, so that an idle client connection never keeps a server that
  // is shutting down alive (~actor_system waits for every actor).
  std::shared_ptr<std::map<caf::actor_addr, caf::actor>> proxies =
      std::make_shared<std::map<caf::actor_addr, caf::actor>>();
  std::uint64_t accepted = 0;
  static inline const char* name = "client_acceptor";
};

caf::behavior client_acceptor(caf::stateful_actor<acceptor_state>* self, acceptor_settings settings,
                              aggregator_actor aggregator) {
  auto& st = self->state;
  st.settings = std::move(settings);
  st.aggregator = std::move(aggregator);
  ingest_io::settings io;
  io.host = st.settings.host;
  io.port = st.settings.port;
  io.threads = st.settings.io_threads;
  io.budget_bytes = st.settings.budget_bytes;
  io.max_frame_bytes = st.settings.proxy.max_frame_bytes;
  io.session = st.settings.proxy.session;
  // Idle buffers kept for reuse, up to the budget: a buffer freshly allocated
  // costs an allocation and page faults (memset and malloc showed in
  // the profile with 16 senders when the pool kept one window). Buffers move between the
  // pool and the steps in flight, so together they stay near the budget.
  io.idle_pool_bytes = st.settings.budget_bytes > 0 ? st.settings.budget_bytes
                                                    : st.settings.proxy.session.window_bytes;
  try {
    // Reader threads hand each accepted connection to this actor (weakly
    // held: the acceptor owns them).
    st.io = std::make_unique<ingest_io>(
        io, [me = caf::actor_cast<caf::weak_actor_ptr>(self)](std::shared_ptr<ingest_connection> c) {
          if (auto a = caf::actor_cast<caf::actor>(me)) caf::anon_send(a, std::move(c));
        });
  } catch (const std::exception& e) {
    spdlog::error("cannot listen on {}:{}: {}", st.settings.host, st.settings.port, e.what());
    self->quit(caf::make_error(caf::sec::cannot_open_port));
    return {};
  }
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
      [self](std::shared_ptr<ingest_connection>& c) {
        auto& st = self->state;
        auto proxy = self->spawn(client_proxy, c, st.settings.proxy.handshake_timeout, st.aggregator);
        c->set_listener(make_proxy_listener(proxy, c->peer()));
        self->monitor(proxy);
        st.proxies->emplace(proxy.address(), proxy);
        ++st.accepted;
        st.io->start(c);  // read only now: the proxy is there to be told
      },
      [self](port_atom) { return self->state.io->port(); },
      [self](restarted_atom, const std::string& name, caf::actor fresh) {
        if (name != "aggregator") return;
        self->state.aggregator = caf::actor_cast<aggregator_actor>(fresh);
        // Live proxies switch too (client_proxy.cpp handles the same notice):
        // their later steps go to the new aggregator.
        for (const auto& [addr, proxy] : *self->state.proxies)
          self->send(proxy, restarted_atom::value, name, fresh);
      },
  };
}

}  // namespace

acceptor_actor spawn_client_acceptor(caf::actor_system& sys, acceptor_settings settings,
                                     aggregator_actor aggregator) {
  // An untyped actor: its typed view, cast once here.
  return caf::actor_cast<acceptor_actor>(
      sys.spawn(client_acceptor, std::move(settings), std::move(aggregator)));
}

}  // namespace melissa
