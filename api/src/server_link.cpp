#include "server_link.hpp"

#include <cerrno>
#include <algorithm>
#include <cstdlib>
#include <optional>

#include "error.hpp"

namespace melissa::client {
namespace {

std::string payload_text(const wire::frame_reader::frame& f) {
  return std::string(f.payload.begin(), f.payload.end());
}

bool parse_u64(const std::string& text, std::uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  errno = 0;
  out = std::strtoull(text.c_str(), nullptr, 10);
  return errno == 0;
}

}  // namespace

server_link::server_link(const server_address& address, int server_rank,
                         connection::clock::time_point deadline, double timeout_s,
                         std::uint32_t sim_id, std::uint32_t attempt)
    : conn_(address, server_rank, deadline, timeout_s),
      server_rank_(server_rank),
      sim_id_(sim_id),
      attempt_(attempt) {}

wire::frame_header server_link::control_header(wire::frame_type type) const {
  wire::frame_header h;
  h.type = type;
  h.sim_id = sim_id_;
  h.attempt = attempt_;
  return h;
}

void server_link::handle_unsolicited(const wire::frame_reader::frame& f, const char* context,
                                     melissa_status error_status) {
  switch (f.header.type) {
    case wire::frame_type::credit:
      window_.on_credit(f.header.count);
      return;
    case wire::frame_type::error:
      conn_.close();  // the server closes after an error frame; so do we
      throw client_error(error_status, std::string(context) + ": " + name() +
                                           " reported an error: " + payload_text(f));
    default:
      conn_.close();
      throw client_error(MELISSA_ERR_IO, std::string(context) + ": " + name() +
                                             " sent an unexpected " +
                                             wire::to_string(f.header.type) + " frame");
  }
}

void server_link::handshake(int client_ranks, int server_ranks, const std::string& ticket,
                            int client_rank) {
  wire::key_values hello{{"version", std::to_string(wire::protocol_version)},
                         {"client_ranks", std::to_string(client_ranks)},
                         {"client_rank", std::to_string(client_rank)}};
  if (!ticket.empty()) hello["ticket"] = ticket;
  conn_.send_text(wire::frame_type::hello, sim_id_, attempt_, 0, wire::format_key_values(hello));
  const auto f = conn_.receive();
  if (f.header.type == wire::frame_type::error) {
    conn_.close();
    throw client_error(MELISSA_ERR_REFUSED,
                       "melissa_init: " + name() + " refused the session: " + payload_text(f));
  }
  if (f.header.type != wire::frame_type::welcome)
    handle_unsolicited(f, "melissa_init", MELISSA_ERR_REFUSED);

  auto refused = [&](const std::string& why) {
    conn_.close();
    return client_error(MELISSA_ERR_REFUSED, "melissa_init: " + name() + ": " + why);
  };
  std::string parse_error;
  const auto kv = wire::parse_key_values(payload_text(f), &parse_error);
  if (!kv) throw refused("malformed welcome (" + parse_error + ")");
  auto get = [&](const char* key) -> std::string {
    const auto it = kv->find(key);
    if (it == kv->end()) throw refused(std::string("welcome has no '") + key + "'");
    return it->second;
  };
  if (get("version") != std::to_string(wire::protocol_version))
    throw refused("server speaks protocol version " + get("version") + "; this client speaks " +
           std::to_string(wire::protocol_version));
  if (get("rank") != std::to_string(server_rank_))
    throw refused("says it is rank " + get("rank") + ", but it is entry " +
           std::to_string(server_rank_) + " of MELISSA_SERVER_ADDRESSES");
  if (get("ranks") != std::to_string(server_ranks))
    throw refused("says the server has " + get("ranks") + " ranks, but MELISSA_SERVER_ADDRESSES lists " +
           std::to_string(server_ranks));
  const std::string mode = get("mode");
  if (mode != "training" && mode != "statistics")
    throw refused("unknown mode '" + mode + "' in welcome");
  mode_ = mode;
  std::uint64_t window = 0;
  if (!parse_u64(get("window"), window))
    throw refused("welcome window='" + get("window") + "' is not a byte count");
  window_ = credit_window(window);
}

std::uint32_t server_link::declare_field(const std::string& field_name, std::uint64_t global_size) {
  conn_.send_text(wire::frame_type::field, sim_id_, attempt_, 0,
                  wire::format_key_values(
                      {{"name", field_name}, {"size", std::to_string(global_size)}}));
  while (true) {
    const auto f = conn_.receive();
    if (f.header.type == wire::frame_type::field_ok) return f.header.field_id;
    if (f.header.type == wire::frame_type::error) {
      conn_.close();
      throw client_error(MELISSA_ERR_REFUSED, "melissa_init: " + name() + " refused field '" +
                                                  field_name + "': " + payload_text(f));
    }
    handle_unsolicited(f, "melissa_init", MELISSA_ERR_REFUSED);
  }
}

void server_link::send_step(std::uint32_t field_id, std::uint32_t time_step, const float* values,
                            std::uint64_t count) {
  const std::uint64_t bytes = count * sizeof(float);
  // Credits that already arrived, and any error the server sent meanwhile.
  if (window_.available() < window_.window() / 2 || ++steps_since_read_ >= read_every_steps) {
    steps_since_read_ = 0;
    read_unsolicited("melissa_send");
  }
  // Flow control: the solver waits here while the server's sink is behind.
  while (!window_.may_send(bytes)) handle_unsolicited(conn_.receive(), "melissa_send", MELISSA_ERR_IO);

  auto h = control_header(wire::frame_type::step);
  h.data_type = wire::dtype::f32;
  h.time_step = time_step;
  h.field_id = field_id;
  h.count = count;
  try {
    conn_.send(h, values);
  } catch (const client_error&) {
    throw_pending_error("melissa_send");
    throw;
  }
  window_.on_sent(bytes);
}

void server_link::read_unsolicited(const char* context) {
  conn_.read_available();
  while (auto f = conn_.buffered()) handle_unsolicited(*f, context, MELISSA_ERR_IO);
}

void server_link::throw_pending_error(const char* context) {
  // The error frame may have arrived just before the close, behind credits.
  for (;;) {
    std::optional<wire::frame_reader::frame> pending;
    try {
      pending = conn_.poll();
    } catch (const client_error&) {
      return;  // closed, no frame left: the caller's error stands
    }
    if (!pending) return;
    handle_unsolicited(*pending, context, MELISSA_ERR_IO);  // throws on `error`
  }
}

void server_link::send_slice(std::uint32_t field_id, std::uint32_t time_step, std::uint64_t offset,
                             const float* values, std::uint64_t count) {
  // A piece never exceeds the window: the server acknowledges pieces one by
  // one, and a step may need several pieces of this rank.
  const std::uint64_t chunk =
      std::max<std::uint64_t>(1, std::min<std::uint64_t>(max_slice_bytes, static_cast<std::uint64_t>(window_.window())) / sizeof(float));
  for (std::uint64_t done = 0; done < count;) {
    const std::uint64_t n = std::min(chunk, count - done);
    const std::uint64_t bytes = n * sizeof(float);
    read_unsolicited("melissa_send");
    while (!window_.may_send(bytes)) handle_unsolicited(conn_.receive(), "melissa_send", MELISSA_ERR_IO);
    auto h = control_header(wire::frame_type::slice);
    h.data_type = wire::dtype::f32;
    h.time_step = time_step;
    h.field_id = field_id;
    h.count = n;
    h.offset = offset + done;
    conn_.send(h, values + done);
    window_.on_sent(bytes);
    done += n;
  }
}

void server_link::send_end() {
  // A server that refused a step sends an error frame and closes: its reason,
  // not the broken pipe of the next write, is what the client must report.
  read_unsolicited("melissa_finalize");
  try {
    conn_.send(control_header(wire::frame_type::end), nullptr);
  } catch (const client_error&) {
    throw_pending_error("melissa_finalize");
    throw;
  }
}

void server_link::wait_end() {
  while (true) {
    const auto f = conn_.receive();
    if (f.header.type == wire::frame_type::end) {
      conn_.close();
      return;
    }
    handle_unsolicited(f, "melissa_finalize", MELISSA_ERR_IO);
  }
}

}  // namespace melissa::client
