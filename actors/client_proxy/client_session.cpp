#include "actors/client_proxy/client_session.hpp"

#include <algorithm>

namespace melissa {

using wire::frame_type;

std::string client_session::describe() const {
  if (!opened_) return "no session yet";
  return "sim " + std::to_string(sim_id_) + " attempt " + std::to_string(attempt_);
}

client_session::action client_session::fail(std::string reason) const {
  action a;
  a.reply = wire::encode_text_frame(frame_type::error, sim_id_, attempt_, 0, reason);
  a.error = std::move(reason);
  return a;
}

std::vector<std::uint8_t> client_session::credit_frame(std::uint64_t bytes) {
  wire::frame_header h;
  h.type = frame_type::credit;
  h.data_type = wire::dtype::none;
  h.count = bytes;
  return wire::encode_frame(h, nullptr);
}

std::uint64_t client_session::largest_step_bytes() const {
  std::uint64_t largest = 0;
  for (const auto& [id, declared] : declared_)
    if (declared && id < settings_.fields.size())
      largest = std::max(largest, settings_.fields[id].size * 8);
  return largest;
}

bool client_session::credit_due(std::uint64_t owed) const {
  if (owed == 0) return false;
  const auto window = settings_.window_bytes;
  const auto step = largest_step_bytes();
  if (settings_.mode != "training" || step >= window) return true;
  return owed >= std::min(window / 4, window - step);
}

std::vector<std::uint8_t> client_session::acknowledge(std::uint64_t bytes) {
  in_flight_bytes_ -= std::min(bytes, in_flight_bytes_);
  return credit_frame(bytes);
}

std::vector<std::uint8_t> client_session::end_frame() {
  wire::frame_header h;
  h.type = frame_type::end;
  h.data_type = wire::dtype::none;
  return wire::encode_frame(h, nullptr);
}

std::vector<std::uint8_t> client_session::error_frame(const std::string& reason) const {
  return wire::encode_text_frame(frame_type::error, sim_id_, attempt_, 0, reason);
}

std::string client_session::admit_header(const wire::frame_header& h) const {
  const auto type = std::string(wire::to_string(h.type));
  if (ended_) return type + " frame after end";
  if (!opened_) {
    if (hello_seen_) return type + " frame before the server's welcome";
    if (h.type != frame_type::hello) return "expected hello, got " + type;
  }
  if (opened_ && (h.sim_id != sim_id_ || h.attempt != attempt_))
    return "frame for sim " + std::to_string(h.sim_id) + " attempt " + std::to_string(h.attempt) +
           " on the session of " + describe();
  const bool statistics = settings_.mode == "statistics";
  if (h.type == frame_type::step && statistics)
    return "statistics mode expects slice frames, got a step frame";
  if (h.type == frame_type::slice && !statistics)
    return "slice frames are for statistics mode; this study runs in " + settings_.mode + " mode";
  if (h.type != frame_type::step && h.type != frame_type::slice) {
    if (h.payload_bytes() > max_control_payload)
      return type + " frame of " + std::to_string(h.payload_bytes()) +
             " bytes (control frames are at most " + std::to_string(max_control_payload) + ")";
    return {};
  }
  if (!declared_.count(h.field_id))
    return "step for undeclared field id " + std::to_string(h.field_id);
  const auto& f = settings_.fields[h.field_id];
  if (statistics) {
    // Where the slice lies is checked once its offset is read (admit_extension).
    if (h.count == 0 || h.count > f.size)
      return "slice of step " + std::to_string(h.time_step) + " of field '" + f.name + "' has " +
             std::to_string(h.count) + " values, the field has " + std::to_string(f.size);
    if (h.data_type != wire::dtype::f32)
      return std::string("statistics mode expects float32 slices, got ") +
             wire::to_string(h.data_type);
  } else if (h.count != f.size)
    return "step " + std::to_string(h.time_step) + " of field '" + f.name + "' has " +
           std::to_string(h.count) + " values, the study says " + std::to_string(f.size);
  if (settings_.mode == "training" && h.data_type != wire::dtype::f32)
    return std::string("training mode expects float32 steps, got ") + wire::to_string(h.data_type);
  if (settings_.steps > 0 && h.time_step >= settings_.steps)
    return "time step " + std::to_string(h.time_step) + " is beyond the study's " +
           std::to_string(settings_.steps) + " steps (client.steps)";
  if (h.time_step >= settings_.max_time_steps)
    return "time step " + std::to_string(h.time_step) + " is beyond the limit of " +
           std::to_string(settings_.max_time_steps);
  // The credit is what bounds the server's memory: a client that sends more
  // than it was granted is broken or hostile. One frame larger than the whole
  // window is allowed when nothing is in flight.
  const auto bytes = h.payload_bytes();
  if (in_flight_bytes_ > 0 && in_flight_bytes_ + bytes > settings_.window_bytes)
    return "step " + std::to_string(h.time_step) + " exceeds the credit: " +
           std::to_string(in_flight_bytes_ + bytes) + " bytes in flight, window " +
           std::to_string(settings_.window_bytes);
  return {};
}

std::string client_session::admit_extension(const wire::frame_header& h) const {
  if (h.type != frame_type::slice) return {};
  const auto& f = settings_.fields[h.field_id];
  // count <= size was checked with the header: no overflow here.
  if (h.offset > f.size - h.count)
    return "slice [" + std::to_string(h.offset) + ", +" + std::to_string(h.count) +
           ") of field '" + f.name + "' lies beyond its " + std::to_string(f.size) + " values";
  const auto share = wire::owned_share(f.size, settings_.rank, settings_.ranks);
  if (h.offset < share.begin || h.offset + h.count > share.end)
    return "slice [" + std::to_string(h.offset) + ", " + std::to_string(h.offset + h.count) +
           ") of field '" + f.name + "' is not within server rank " +
           std::to_string(settings_.rank) + "'s share [" + std::to_string(share.begin) + ", " +
           std::to_string(share.end) + ")";
  return {};
}

client_session::action client_session::on_frame(const wire::frame_header& h,
                                                 const std::uint8_t* payload, std::size_t n) {
  const std::string_view text(reinterpret_cast<const char*>(payload), n);
  if (const auto why = admit_header(h); !why.empty()) return fail(why);
  if (const auto why = admit_extension(h); !why.empty()) return fail(why);
  if (h.type == frame_type::hello) return on_hello(h, text);
  switch (h.type) {
    case frame_type::field: return on_field(h, text);
    case frame_type::step:
    case frame_type::slice: return on_step(h);
    case frame_type::end: {
      ended_ = true;
      action a;
      a.end_requested = true;
      return a;
    }
    case frame_type::error:
      return fail("client reported an error: " + std::string(text));
    default:
      return fail(std::string("a client may not send ") + wire::to_string(h.type) + " frames");
  }
}

client_session::action client_session::on_hello(const wire::frame_header& h,
                                                std::string_view text) {
  if (opened_ || hello_seen_) return fail("second hello on one connection");
  std::string parse_error;
  auto kv = wire::parse_key_values(text, &parse_error);
  if (!kv) return fail("malformed hello: " + parse_error);
  const auto version = kv->count("version") ? kv->at("version") : std::string();
  if (version != std::to_string(wire::protocol_version))
    return fail("unsupported protocol version " + (version.empty() ? "(none)" : version) +
                "; this server speaks " + std::to_string(wire::protocol_version));
  hello_seen_ = true;
  sim_id_ = h.sim_id;
  attempt_ = h.attempt;
  ticket_ = kv->count("ticket") ? kv->at("ticket") : std::string();
  action a;
  a.check_ticket = true;
  return a;
}

std::vector<std::uint8_t> client_session::admit() {
  opened_ = true;
  ticket_.clear();  // not needed any more: keep secrets short-lived
  return wire::encode_text_frame(
      frame_type::welcome, sim_id_, attempt_, 0,
      wire::format_key_values({{"version", std::to_string(wire::protocol_version)},
                               {"rank", std::to_string(settings_.rank)},
                               {"ranks", std::to_string(settings_.ranks)},
                               {"mode", settings_.mode},
                               {"window", std::to_string(settings_.window_bytes)}}));
}

client_session::action client_session::on_field(const wire::frame_header&, std::string_view text) {
  std::string parse_error;
  auto kv = wire::parse_key_values(text, &parse_error);
  if (!kv) return fail("malformed field declaration: " + parse_error);
  const auto name = kv->count("name") ? kv->at("name") : std::string();
  const auto size_text = kv->count("size") ? kv->at("size") : std::string();
  std::string known;
  for (std::size_t i = 0; i < settings_.fields.size(); ++i) {
    const auto& f = settings_.fields[i];
    known += (i ? ", " : "") + f.name;
    if (f.name != name) continue;
    if (size_text != std::to_string(f.size))
      return fail("field '" + name + "' has " + (size_text.empty() ? "no" : size_text) +
                  " values, the study says " + std::to_string(f.size));
    declared_[static_cast<std::uint32_t>(i)] = true;
    wire::frame_header ok;
    ok.type = frame_type::field_ok;
    ok.data_type = wire::dtype::none;
    ok.sim_id = sim_id_;
    ok.attempt = attempt_;
    ok.field_id = static_cast<std::uint32_t>(i);
    action a;
    a.reply = wire::encode_frame(ok, nullptr);
    return a;
  }
  return fail("unknown field '" + name + "' (study fields: " + known + ")");
}

// Every rule on a step is in admit_header, checked before its payload was read.
client_session::action client_session::on_step(const wire::frame_header& h) {
  in_flight_bytes_ += h.payload_bytes();
  action a;
  a.forward_step = true;
  return a;
}

}  // namespace melissa
