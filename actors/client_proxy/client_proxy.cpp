#include "actors/client_proxy/client_proxy.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace melissa {

// The steps one read turn of the connection's reader thread found, in order.
struct step_batch {
  std::vector<step_sample> steps;
};

}  // namespace melissa

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(melissa::step_batch)

namespace melissa {
namespace {

using proxy_ptr = caf::stateful_actor<client_proxy_state>*;

// Sends the credit of the steps stored since the last credit frame.
using flush_credit_atom = caf::atom_constant<caf::atom("flushcred")>;

bool opened(proxy_ptr self) {
  return self->state.conn->with_session([](client_session& s) { return s.opened(); });
}

std::string describe(proxy_ptr self) {
  return self->state.conn->with_session([](client_session& s) { return s.describe(); });
}

// Closes the connection for a reason found here (handshake timeout, refused
// admission, a failed store); other clients go on.
void reject(proxy_ptr self, const std::string& reason) {
  auto& st = self->state;
  std::uint32_t sim = 0, attempt = 0;
  bool was_open = false;
  std::vector<std::uint8_t> frame;
  std::string who;
  st.conn->with_session([&](client_session& s) {
    sim = s.sim_id();
    attempt = s.attempt();
    was_open = s.opened();
    who = s.opened() ? s.describe() : "no session";
    frame = s.error_frame(reason);
    return 0;
  });
  spdlog::warn("closing connection from {} ({}): {}", st.conn->peer(), who, reason);
  st.conn->send(frame);
  if (was_open) self->send(st.aggregator, closed_atom::value, sim, attempt, session_end::rejected);
  st.closing = true;
  st.conn->close();
  self->quit();
}

void flush_credit(proxy_ptr self) {
  auto& st = self->state;
  st.flush_scheduled = false;
  if (st.pending_credit == 0 || st.closing) return;
  const auto bytes = st.pending_credit;
  st.pending_credit = 0;
  st.conn->send(st.conn->with_session([&](client_session& s) { return s.acknowledge(bytes); }));
}

// A stored step's bytes become credit. One credit frame per step cost a
// send on the server and a read on the client for every step (a visible
// share of small-step ingest, issue 16): credit is held until the session
// says it is due (a quarter of the window, client_session::credit_due), and
// then the credit of the steps whose acknowledgements are already queued
// goes in the same frame: the flush message is queued behind them.
void add_credit(proxy_ptr self, std::uint64_t bytes) {
  auto& st = self->state;
  st.pending_credit += bytes;
  if (st.flush_scheduled) return;
  if (!st.conn->with_session([&](client_session& s) { return s.credit_due(st.pending_credit); }))
    return;
  st.flush_scheduled = true;
  self->send(self, flush_credit_atom::value);
}

// Called whenever an acknowledgement arrives: once the client has asked to
// end and nothing is in flight, the session is reported done and `end` sent.
void maybe_finish(proxy_ptr self) {
  auto& st = self->state;
  if (!st.end_requested || st.outstanding > 0 || st.closing) return;
  flush_credit(self);  // every credit before `end`, as the client expects
  st.closing = true;
  const auto [sim, attempt] = st.conn->with_session(
      [](client_session& s) { return std::make_pair(s.sim_id(), s.attempt()); });
  self->request(st.aggregator, caf::infinite, closed_atom::value, sim, attempt, session_end::clean)
      .then(
          [self](const std::string& incomplete) {
            auto& conn = *self->state.conn;
            if (incomplete.empty()) {
              conn.send(client_session::end_frame());
            } else {
              // The client ends with an error: its launcher retries it.
              spdlog::warn("{}", incomplete);
              conn.send(conn.with_session(
                  [&](client_session& s) { return s.error_frame(incomplete); }));
            }
            conn.close();
            self->quit();
          },
          [self](const caf::error& err) {
            spdlog::error("aggregator failed to close the session of {}: {}", describe(self),
                          self->system().render(err));
            self->state.conn->close();
            self->quit();
          });
}

// Hands one step to the aggregator; its credit goes back once it is stored.
void forward_step(proxy_ptr self, step_sample&& s) {
  auto& st = self->state;
  if (st.closing) return;
  const auto bytes = s.bytes();
  ++st.outstanding;
  self->request(st.aggregator, caf::infinite, std::move(s))
      .then(
          [self, bytes](step_outcome) {
            auto& st = self->state;
            --st.outstanding;
            if (st.closing) return;
            add_credit(self, bytes);
            maybe_finish(self);
          },
          [self](const caf::error& err) {
            auto& st = self->state;
            --st.outstanding;
            if (st.closing) return;
            reject(self, "server could not store a step: " + self->system().render(err));
          });
}

// After a hello: asks the aggregator whether (sim, attempt, ticket) may open.
// The launcher's ticket notice travels on another connection and may arrive
// after the client's hello: an unknown session is asked again until the
// handshake deadline.
void ask_admission(proxy_ptr self) {
  auto& st = self->state;
  std::uint32_t sim = 0, attempt = 0;
  std::string ticket;
  st.conn->with_session([&](client_session& s) {
    sim = s.sim_id();
    attempt = s.attempt();
    ticket = s.ticket();
    return 0;
  });
  self->request(st.aggregator, caf::infinite, opened_atom::value, sim, attempt, ticket)
      .then(
          [self](const session_admission& answer) {
            auto& st = self->state;
            if (st.closing) return;
            if (answer.accepted) {
              st.conn->send(st.conn->with_session([](client_session& s) { return s.admit(); }));
              spdlog::info("session opened: {} from {}", describe(self), st.conn->peer());
              return;
            }
            if (answer.retry && std::chrono::steady_clock::now() < st.admission_deadline) {
              self->delayed_send(self, std::chrono::milliseconds(100), opened_atom::value);
              return;
            }
            reject(self, "session refused: " + answer.reason);
          },
          [self](const caf::error& err) {
            reject(self, "server could not open the session: " + self->system().render(err));
          });
}

// Runs on the connection's reader thread. The steps of one read turn go to
// the proxy in one message: a message per step woke a scheduler thread per
// step (futex calls were 9 % of the server's time with 40 KB steps, issue 16).
// Anything else the reader reports first hands on the steps read before it.
class proxy_listener final : public connection_listener {
 public:
  proxy_listener(const caf::actor& proxy, std::string peer)
      : proxy_(caf::actor_cast<caf::weak_actor_ptr>(proxy)), peer_(std::move(peer)) {}

  void hello() override {
    flush();
    tell(opened_atom::value);
  }
  void step(const wire::frame_header& h, std::shared_ptr<const payload_bytes> payload) override {
    step_sample s;
    s.sim_id = h.sim_id;
    s.attempt = h.attempt;
    s.time_step = h.time_step;
    s.field_id = h.field_id;
    s.data_type = h.data_type;
    s.count = h.count;
    s.offset = h.type == wire::frame_type::slice ? h.offset : 0;
    s.payload = std::move(payload);  // the pooled buffer it was read into: shared, not copied
    batch_bytes_ += s.bytes();
    batch_.steps.push_back(std::move(s));
    // Large steps go at once: held back, they would only keep buffers out
    // of the pool longer (what a message costs is small beside them).
    if (batch_bytes_ >= max_batch_bytes) flush();
  }
  void read_paused() override { flush(); }
  void end() override {
    flush();
    tell(closed_atom::value, session_end::clean);
  }
  void rejected(const std::string& reason, const std::string& who, bool was_opened) override {
    flush();
    spdlog::warn("closing connection from {} ({}): {}", peer_, was_opened ? who : "no session",
                 reason);
    tell(closed_atom::value, session_end::rejected);
  }
  void lost() override {
    flush();
    tell(closed_atom::value, session_end::lost);
  }

 private:
  void flush() {
    if (batch_.steps.empty()) return;
    tell(std::move(batch_));
    batch_ = step_batch{};
    batch_bytes_ = 0;
  }
  static constexpr std::uint64_t max_batch_bytes = 1u << 20;
  step_batch batch_;
  std::uint64_t batch_bytes_ = 0;
  template <class... Ts>
  void tell(Ts&&... xs) {
    if (auto a = caf::actor_cast<caf::actor>(proxy_)) caf::anon_send(a, std::forward<Ts>(xs)...);
  }
  caf::weak_actor_ptr proxy_;
  std::string peer_;
};

}  // namespace

std::unique_ptr<connection_listener> make_proxy_listener(const caf::actor& proxy, std::string peer) {
  return std::make_unique<proxy_listener>(proxy, std::move(peer));
}

caf::behavior client_proxy(proxy_ptr self, std::shared_ptr<ingest_connection> conn,
                           std::chrono::milliseconds handshake_timeout, aggregator_actor aggregator) {
  auto& st = self->state;
  st.conn = std::move(conn);
  st.aggregator = std::move(aggregator);
  st.admission_deadline = std::chrono::steady_clock::now() + handshake_timeout;
  // However the proxy ends (a shutdown too), its socket closes.
  self->attach_functor([c = st.conn](const caf::error&) { c->close(); });
  self->delayed_send(self, handshake_timeout, timeout_atom::value);
  return {
      [self](timeout_atom) {
        if (self->state.closing || opened(self)) return;
        reject(self, "no session opened within the handshake timeout");
      },
      [self](flush_credit_atom) { flush_credit(self); },
      [self](opened_atom) {  // a hello was read, or asking again (see ask_admission)
        if (!self->state.closing) ask_admission(self);
      },
      [self](step_batch& b) {
        for (auto& s : b.steps) forward_step(self, std::move(s));
      },
      [self](closed_atom, session_end how) {
        auto& st = self->state;
        if (how == session_end::clean) {
          st.end_requested = true;
          return maybe_finish(self);
        }
        if (st.closing) return;
        if (how == session_end::rejected) {
          // The reader thread logged the reason, sent the error frame and closes.
          const auto [sim, attempt, was_open] = st.conn->with_session([](client_session& s) {
            return std::make_tuple(s.sim_id(), s.attempt(), s.opened());
          });
          if (was_open)
            self->send(st.aggregator, closed_atom::value, sim, attempt, session_end::rejected);
          st.closing = true;
          return self->quit();
        }
        // Lost before end.
        if (opened(self)) {
          spdlog::info("connection of {} from {} lost before end", describe(self), st.conn->peer());
          const auto [sim, attempt] = st.conn->with_session(
              [](client_session& s) { return std::make_pair(s.sim_id(), s.attempt()); });
          self->send(st.aggregator, closed_atom::value, sim, attempt, session_end::lost);
        }
        self->quit();
      },
      [self](restarted_atom, const std::string& name, caf::actor fresh) {
        if (name == "aggregator") self->state.aggregator = caf::actor_cast<aggregator_actor>(fresh);
      },
  };
}

}  // namespace melissa
