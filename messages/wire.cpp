#include "messages/wire.hpp"

#include <cstring>
#include <stdexcept>

namespace melissa::wire {
namespace {

// The wire is little-endian; these helpers make that explicit and portable.
void put_u16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
void put_u32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(std::uint8_t* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint16_t get_u16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

bool known_type(std::uint16_t t) { return t >= 1 && t <= 9; }
bool known_dtype(std::uint16_t t) { return t <= 3; }

// Which payload types each frame type may carry.
bool dtype_allowed(frame_type type, dtype d) {
  switch (type) {
    case frame_type::step:
    case frame_type::slice:
      return d == dtype::f32 || d == dtype::f64;
    case frame_type::credit:
    case frame_type::end:
      return d == dtype::none;
    default:  // control frames carry text
      return d == dtype::text || d == dtype::none;
  }
}

}  // namespace

std::size_t dtype_size(dtype t) {
  switch (t) {
    case dtype::f32: return 4;
    case dtype::f64: return 8;
    case dtype::text: return 1;
    default: return 0;
  }
}

const char* to_string(frame_type t) {
  switch (t) {
    case frame_type::hello: return "hello";
    case frame_type::welcome: return "welcome";
    case frame_type::field: return "field";
    case frame_type::field_ok: return "field_ok";
    case frame_type::step: return "step";
    case frame_type::credit: return "credit";
    case frame_type::end: return "end";
    case frame_type::error: return "error";
    case frame_type::slice: return "slice";
  }
  return "unknown";
}

std::size_t extension_size(frame_type t) {
  return t == frame_type::slice ? slice_extension_size : 0;
}

cell_range owned_share(std::uint64_t size, std::uint32_t rank, std::uint32_t ranks) {
  if (ranks == 0 || rank >= ranks) return {size, size};
  // 128 bits: size * rank overflows 64 bits for the largest fields.
  const auto at = [&](std::uint32_t r) {
    return static_cast<std::uint64_t>(static_cast<unsigned __int128>(size) * r / ranks);
  };
  return {at(rank), at(rank + 1)};
}

const char* to_string(dtype t) {
  switch (t) {
    case dtype::none: return "none";
    case dtype::f32: return "f32";
    case dtype::f64: return "f64";
    case dtype::text: return "text";
  }
  return "unknown";
}

// Layout (offsets in bytes):
//  0 u32 length (bytes after this field)   4 u32 magic   8 u16 type   10 u16 dtype
// 12 u32 sim_id  16 u32 attempt  20 u32 time_step  24 u32 field_id  28 u32 reserved (0)
// 32 u64 count
void encode_header(const frame_header& h, std::uint8_t out[header_size]) {
  if (h.body_bytes() > 0xffffffffull - (header_size - length_prefix_size))
    throw std::length_error("a frame payload of " + std::to_string(h.payload_bytes()) +
                            " bytes does not fit the u32 length prefix");
  put_u32(out + 0, static_cast<std::uint32_t>(header_size - length_prefix_size + h.body_bytes()));
  put_u32(out + 4, magic);
  put_u16(out + 8, static_cast<std::uint16_t>(h.type));
  put_u16(out + 10, static_cast<std::uint16_t>(h.data_type));
  put_u32(out + 12, h.sim_id);
  put_u32(out + 16, h.attempt);
  put_u32(out + 20, h.time_step);
  put_u32(out + 24, h.field_id);
  put_u32(out + 28, 0);
  put_u64(out + 32, h.count);
}

decode_result decode_header(const std::uint8_t* b, std::uint64_t max_frame_bytes) {
  decode_result r;
  // The length prefix is a u32, so no frame is larger than this whatever the
  // configured limit; clamping also keeps header + payload from wrapping.
  constexpr std::uint64_t largest_frame = length_prefix_size + 0xffffffffull;
  std::string limit_text = "the limit of " + std::to_string(max_frame_bytes) + " bytes";
  if (max_frame_bytes > largest_frame) {
    max_frame_bytes = largest_frame;
    limit_text = "the protocol's largest frame of " + std::to_string(largest_frame) + " bytes";
  }
  if (get_u32(b + 4) != magic) {
    r.error = "bad magic (not a Melissa frame)";
    return r;
  }
  const auto type = get_u16(b + 8);
  if (!known_type(type)) {
    r.error = "unknown frame type " + std::to_string(type);
    return r;
  }
  const auto dt = get_u16(b + 10);
  if (!known_dtype(dt)) {
    r.error = "unknown dtype " + std::to_string(dt);
    return r;
  }
  frame_header h;
  h.type = static_cast<frame_type>(type);
  h.data_type = static_cast<dtype>(dt);
  if (!dtype_allowed(h.type, h.data_type)) {
    r.error = std::string("dtype ") + to_string(h.data_type) + " not allowed in a " +
              to_string(h.type) + " frame";
    return r;
  }
  if (get_u32(b + 28) != 0) {
    r.error = "reserved header field is not zero";
    return r;
  }
  h.sim_id = get_u32(b + 12);
  h.attempt = get_u32(b + 16);
  h.time_step = get_u32(b + 20);
  h.field_id = get_u32(b + 24);
  h.count = get_u64(b + 32);
  // A credit frame's count is a byte grant, not a payload.
  const std::uint64_t elem = dtype_size(h.data_type);
  if (elem != 0 && h.count > (max_frame_bytes / elem)) {
    r.error = "frame of " + std::to_string(h.count) + " " + to_string(h.data_type) +
              " elements exceeds " + limit_text;
    return r;
  }
  if (h.data_type == dtype::none && h.type != frame_type::credit && h.count != 0) {
    r.error = "count must be 0 without a payload";
    return r;
  }
  const std::uint64_t total = header_size + h.body_bytes();
  if (total > max_frame_bytes) {
    r.error = "frame of " + std::to_string(total) + " bytes exceeds " + limit_text;
    return r;
  }
  const std::uint64_t length = get_u32(b + 0);
  if (length != total - length_prefix_size) {
    r.error = "length prefix " + std::to_string(length) + " does not match header (expected " +
              std::to_string(total - length_prefix_size) + ")";
    return r;
  }
  r.header = h;
  return r;
}

void encode_extension(const frame_header& h, std::uint8_t out[slice_extension_size]) {
  put_u64(out, h.offset);
}

std::string decode_extension(const std::uint8_t* bytes, frame_header& h) {
  h.offset = get_u64(bytes);
  if (h.count > 0 && h.offset > ~std::uint64_t{0} - (h.count - 1))
    return "slice offset " + std::to_string(h.offset) + " + " + std::to_string(h.count) +
           " values overflows";
  return {};
}

std::vector<std::uint8_t> encode_frame(const frame_header& h, const void* payload) {
  std::vector<std::uint8_t> out(header_size + h.body_bytes());
  encode_header(h, out.data());
  const std::size_t ext = extension_size(h.type);
  if (ext > 0) encode_extension(h, out.data() + header_size);
  if (h.payload_bytes() > 0) std::memcpy(out.data() + header_size + ext, payload, h.payload_bytes());
  return out;
}

std::vector<std::uint8_t> encode_text_frame(frame_type type, std::uint32_t sim_id,
                                            std::uint32_t attempt, std::uint32_t field_id,
                                            std::string_view text) {
  frame_header h;
  h.type = type;
  h.data_type = text.empty() ? dtype::none : dtype::text;
  h.sim_id = sim_id;
  h.attempt = attempt;
  h.field_id = field_id;
  h.count = text.size();
  return encode_frame(h, text.data());
}

std::string format_key_values(const key_values& kv) {
  std::string out;
  for (const auto& [k, v] : kv) {
    // Such entries would parse back as other entries: refuse them.
    if (k.empty() || k.find_first_of("=\r\n") != std::string::npos ||
        v.find_first_of("\r\n") != std::string::npos)
      throw std::invalid_argument("key=value entry '" + k + "' contains '=' or a line break");
    out += k + "=" + v + "\n";
  }
  return out;
}

std::optional<key_values> parse_key_values(std::string_view text, std::string* error) {
  key_values kv;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (line.empty()) continue;
    if (line.back() == '\r') line.remove_suffix(1);  // tolerate CRLF
    if (line.empty()) continue;
    if (line.find('\r') != std::string_view::npos) {
      if (error) *error = "line " + std::to_string(line_no) + " contains a carriage return";
      return std::nullopt;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      if (error) *error = "line " + std::to_string(line_no) + " is not key=value";
      return std::nullopt;
    }
    const auto [it, fresh] =
        kv.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
    if (!fresh) {
      if (error) *error = "line " + std::to_string(line_no) + " repeats key '" + it->first + "'";
      return std::nullopt;
    }
  }
  return kv;
}

bool frame_reader::feed(const std::uint8_t* data, std::size_t n) {
  if (broken()) return false;
  // Drop what was already handed out before growing the buffer.
  if (consumed_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(consumed_));
    consumed_ = 0;
  }
  buffer_.insert(buffer_.end(), data, data + n);
  return true;
}

std::optional<frame_reader::frame> frame_reader::next() {
  if (broken() || buffer_.size() - consumed_ < header_size) return std::nullopt;
  const std::uint8_t* p = buffer_.data() + consumed_;
  auto decoded = decode_header(p, max_frame_bytes_);
  if (!decoded.header) {
    error_ = decoded.error;
    return std::nullopt;
  }
  const auto body = decoded.header->body_bytes();
  if (buffer_.size() - consumed_ < header_size + body) return std::nullopt;
  const std::size_t ext = extension_size(decoded.header->type);
  if (ext > 0) {
    if (auto why = decode_extension(p + header_size, *decoded.header); !why.empty()) {
      error_ = why;
      return std::nullopt;
    }
  }
  frame f{*decoded.header, std::vector<std::uint8_t>(p + header_size + ext, p + header_size + body)};
  consumed_ += header_size + body;
  return f;
}

}  // namespace melissa::wire
