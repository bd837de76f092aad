#include "actors/client_proxy/client_proxy.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

namespace melissa {
namespace {

using proxy_ptr = caf::io::stateful_broker<client_proxy_state>*;

void send_bytes(proxy_ptr self, caf::io::connection_handle hdl, const std::vector<std::uint8_t>& b) {
  if (b.empty()) return;
  self->write(hdl, b.size(), b.data());
  self->flush(hdl);
}

void expect_header(proxy_ptr self, caf::io::connection_handle hdl) {
  self->state.reading_payload = false;
  self->state.reading_extension = false;
  self->configure_read(hdl, caf::io::receive_policy::exactly(wire::header_size));
}

// Closes the connection for a reason the client caused; other clients go on.
void reject(proxy_ptr self, caf::io::connection_handle hdl, const std::string& reason,
            const std::vector<std::uint8_t>& error_frame) {
  auto& st = self->state;
  spdlog::warn("closing connection from {} ({}): {}", st.peer,
               st.session ? st.session->describe() : "no session", reason);
  send_bytes(self, hdl, error_frame);
  if (st.session && st.session->opened())
    self->send(st.aggregator, closed_atom::value, st.session->sim_id(), st.session->attempt(),
               session_end::rejected);
  st.closing = true;
  self->close(hdl);
  self->quit();
}

// Called whenever an acknowledgement arrives: once the client has asked to
// end and nothing is in flight, the session is reported done and `end` sent.
void maybe_finish(proxy_ptr self, caf::io::connection_handle hdl) {
  auto& st = self->state;
  if (!st.end_requested || st.outstanding > 0 || st.closing) return;
  st.closing = true;
  self->request(st.aggregator, caf::infinite, closed_atom::value, st.session->sim_id(),
                st.session->attempt(), session_end::clean)
      .then(
          [self, hdl](const std::string& incomplete) {
            if (incomplete.empty()) {
              send_bytes(self, hdl, client_session::end_frame());
            } else {
              // The client ends with an error: its launcher retries it.
              spdlog::warn("{}", incomplete);
              send_bytes(self, hdl, self->state.session->error_frame(incomplete));
            }
            self->close(hdl);
            self->quit();
          },
          [self, hdl](const caf::error& err) {
            spdlog::error("aggregator failed to close the session of {}: {}",
                          self->state.session->describe(), self->system().render(err));
            self->close(hdl);
            self->quit();
          });
}

// After a hello: asks the aggregator whether (sim, attempt, ticket) may open.
// The launcher's ticket notice travels on another connection and may arrive
// after the client's hello: an unknown session is asked again until the
// handshake deadline.
void ask_admission(proxy_ptr self, caf::io::connection_handle hdl) {
  auto& st = self->state;
  self->request(st.aggregator, caf::infinite, opened_atom::value, st.session->sim_id(),
                st.session->attempt(), st.session->ticket())
      .then(
          [self, hdl](const session_admission& answer) {
            auto& st = self->state;
            if (st.closing) return;
            if (answer.accepted) {
              send_bytes(self, hdl, st.session->admit());
              spdlog::info("session opened: {} from {}", st.session->describe(), st.peer);
              return;
            }
            if (answer.retry && std::chrono::steady_clock::now() < st.admission_deadline) {
              self->delayed_send(self, std::chrono::milliseconds(100), opened_atom::value);
              return;
            }
            reject(self, hdl, "session refused: " + answer.reason,
                   st.session->error_frame("session refused: " + answer.reason));
          },
          [self, hdl](const caf::error& err) {
            const auto reason = "server could not open the session: " + self->system().render(err);
            reject(self, hdl, reason, self->state.session->error_frame(reason));
          });
}

void handle_frame(proxy_ptr self, caf::io::connection_handle hdl, std::vector<char>& payload) {
  auto& st = self->state;
  const auto& h = st.pending;
  auto act = st.session->on_frame(h, reinterpret_cast<const std::uint8_t*>(payload.data()),
                                  payload.size());
  if (!act.error.empty()) return reject(self, hdl, act.error, act.reply);
  send_bytes(self, hdl, act.reply);
  if (act.check_ticket) return ask_admission(self, hdl);
  if (act.end_requested) {
    st.end_requested = true;
    maybe_finish(self, hdl);
  }
  if (!act.forward_step) return;
  step_sample s;
  s.sim_id = h.sim_id;
  s.attempt = h.attempt;
  s.time_step = h.time_step;
  s.field_id = h.field_id;
  s.data_type = h.data_type;
  s.count = h.count;
  s.offset = h.type == wire::frame_type::slice ? h.offset : 0;
  // The payload was read into a pooled buffer: share it, do not copy it.
  s.payload = st.buffers->share(std::move(payload));
  const auto bytes = s.bytes();
  ++st.outstanding;
  self->request(st.aggregator, caf::infinite, std::move(s))
      .then(
          [self, hdl, bytes](step_outcome) {
            auto& st = self->state;
            --st.outstanding;
            if (st.closing) return;
            send_bytes(self, hdl, st.session->acknowledge(bytes));
            maybe_finish(self, hdl);
          },
          [self, hdl](const caf::error& err) {
            auto& st = self->state;
            --st.outstanding;
            if (st.closing) return;
            const auto reason = "server could not store a step: " + self->system().render(err);
            reject(self, hdl, reason,
                   wire::encode_text_frame(wire::frame_type::error, 0, 0, 0, reason));
          });
}

}  // namespace

caf::behavior client_proxy(proxy_ptr self, caf::io::connection_handle hdl, proxy_settings settings,
                           aggregator_actor aggregator) {
  auto& st = self->state;
  st.session = std::make_unique<client_session>(std::move(settings.session));
  st.max_frame_bytes = settings.max_frame_bytes;
  // Idle buffers kept: at most what the credit window lets be in flight.
  st.buffers = buffer_pool::make(settings.session.window_bytes);
  st.aggregator = std::move(aggregator);
  st.peer = self->remote_addr(hdl) + ":" + std::to_string(self->remote_port(hdl));
  st.admission_deadline = std::chrono::steady_clock::now() + settings.handshake_timeout;
  self->delayed_send(self, settings.handshake_timeout, timeout_atom::value);
  expect_header(self, hdl);
  return {
      [self, hdl](timeout_atom) {
        auto& st = self->state;
        if (st.closing || st.session->opened()) return;
        const auto why = "no session opened within the handshake timeout";
        reject(self, hdl, why, st.session->error_frame(why));
      },
      [self, hdl](opened_atom) {  // asking again for admission (see ask_admission)
        if (!self->state.closing) ask_admission(self, hdl);
      },
      [self](caf::io::new_data_msg& msg) {
        auto& st = self->state;
        if (st.closing) return;
        if (st.reading_extension) {
          // A slice's offset: checked against the field before its payload is read.
          st.reading_extension = false;
          auto why = wire::decode_extension(reinterpret_cast<const std::uint8_t*>(msg.buf.data()),
                                            st.pending);
          if (why.empty()) why = st.session->admit_extension(st.pending);
          if (!why.empty()) return reject(self, msg.handle, why, st.session->error_frame(why));
          const auto payload = st.pending.payload_bytes();
          st.reading_payload = true;
          auto buffer = st.buffers->take(payload);
          msg.buf.swap(buffer);
          st.header_buffer = std::move(buffer);
          self->configure_read(msg.handle, caf::io::receive_policy::exactly(payload));
          return;
        }
        if (!st.reading_payload) {
          auto decoded = wire::decode_header(reinterpret_cast<const std::uint8_t*>(msg.buf.data()),
                                             st.max_frame_bytes);
          if (!decoded.header)
            return reject(self, msg.handle, decoded.error,
                          wire::encode_text_frame(wire::frame_type::error, 0, 0, 0, decoded.error));
          // Refused from its header alone: no buffer is taken for its payload.
          if (const auto why = st.session->admit_header(*decoded.header); !why.empty())
            return reject(self, msg.handle, why, st.session->error_frame(why));
          st.pending = *decoded.header;
          if (wire::extension_size(st.pending.type) > 0) {
            st.reading_extension = true;
            self->configure_read(msg.handle, caf::io::receive_policy::exactly(
                                                 wire::extension_size(st.pending.type)));
            return;
          }
          const auto payload = st.pending.payload_bytes();
          if (payload > 0) {
            // CAF reads into whatever buffer the handler leaves in msg.buf: give
            // it a pooled one of the exact size (no allocation, no zero fill).
            st.reading_payload = true;
            auto buffer = st.buffers->take(payload);
            msg.buf.swap(buffer);
            st.header_buffer = std::move(buffer);
            self->configure_read(msg.handle, caf::io::receive_policy::exactly(payload));
            return;
          }
          std::vector<char> none;
          handle_frame(self, msg.handle, none);
        } else {
          std::vector<char> payload = std::move(msg.buf);
          msg.buf = std::move(st.header_buffer);  // read the next header into it
          handle_frame(self, msg.handle, payload);
        }
        if (!self->state.closing) expect_header(self, msg.handle);
      },
      [self](const caf::io::connection_closed_msg&) {
        auto& st = self->state;
        if (!st.closing && st.session->opened()) {
          spdlog::info("connection of {} from {} lost before end", st.session->describe(), st.peer);
          self->send(st.aggregator, closed_atom::value, st.session->sim_id(),
                     st.session->attempt(), session_end::lost);
        }
        // Keep running while acknowledgements of a clean end are pending.
        if (!st.closing) self->quit();
      },
      [self](restarted_atom, const std::string& name, caf::actor fresh) {
        if (name == "aggregator") self->state.aggregator = caf::actor_cast<aggregator_actor>(fresh);
      },
  };
}

}  // namespace melissa
