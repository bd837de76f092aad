// The client <-> server wire protocol (see docs/protocol.md).
//
// Plain C++ with no CAF dependency: the client API, the server's client proxy,
// the unit tests and the fuzzer all use this one codec.
//
// Every frame is a fixed 40-byte little-endian header followed by a payload of
// `count` elements of `dtype`. The first header field is the length of
// everything after it, so a reader can always skip to the next frame.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace melissa::wire {

inline constexpr std::uint32_t magic = 0x41534c4d;  // bytes "MLSA" on the wire
inline constexpr std::uint16_t protocol_version = 1;
inline constexpr std::size_t header_size = 40;
inline constexpr std::size_t length_prefix_size = 4;
// Default refusal limit for one frame (header + payload); configurable.
inline constexpr std::uint64_t default_max_frame_bytes = 256ull << 20;

enum class frame_type : std::uint16_t {
  hello = 1,       // client -> server: opens a session (key=value payload)
  welcome = 2,     // server -> client: accepts it, grants the first credit
  field = 3,       // client -> server: declares a field (name, global size)
  field_ok = 4,    // server -> client: the field's id for later step frames
  step = 5,        // client -> server: one time step of one field
  credit = 6,      // server -> client: `count` more payload bytes may be sent
  end = 7,         // client -> server: no more steps; server answers end when all are stored
  error = 8,       // either way: a human-readable reason; the sender then closes
  slice = 9,       // client -> server (statistics mode): part of one time step of one
                   // field, at a global offset (an 8-byte extension after the header)
};

// Bytes between the header and the payload: a slice's u64 global offset.
inline constexpr std::size_t slice_extension_size = 8;
std::size_t extension_size(frame_type t);

enum class dtype : std::uint16_t {
  none = 0,   // no payload
  f32 = 1,
  f64 = 2,
  text = 3,   // UTF-8 bytes (control frames)
};

// Size in bytes of one element, 0 for dtype::none and for unknown values.
std::size_t dtype_size(dtype t);
const char* to_string(frame_type t);
const char* to_string(dtype t);

struct frame_header {
  frame_type type = frame_type::error;
  dtype data_type = dtype::none;
  std::uint32_t sim_id = 0;
  std::uint32_t attempt = 0;
  std::uint32_t time_step = 0;
  std::uint32_t field_id = 0;
  std::uint64_t count = 0;  // elements in the payload (credit: bytes granted)
  std::uint64_t offset = 0;  // slice: global index of the payload's first value

  std::uint64_t payload_bytes() const { return count * dtype_size(data_type); }
  // What follows the 40 header bytes: the extension, then the payload.
  std::uint64_t body_bytes() const { return extension_size(type) + payload_bytes(); }
};

// The contiguous share [begin, end) of a field of `size` values that server
// rank `rank` of `ranks` owns in statistics mode: begin = floor(size * rank /
// ranks). Every value has exactly one owner; shares differ by at most one.
struct cell_range {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t size() const { return end - begin; }
};
cell_range owned_share(std::uint64_t size, std::uint32_t rank, std::uint32_t ranks);

// Writes the 40 header bytes for `h` (whose payload follows separately, e.g. with writev).
// Throws std::length_error if the payload does not fit the u32 length prefix.
void encode_header(const frame_header& h, std::uint8_t out[header_size]);

struct decode_result {
  std::optional<frame_header> header;  // set when the header is valid
  std::string error;                   // why it is not, otherwise
};

// Validates every field of a 40-byte header before anything is allocated:
// magic, known type and dtype, the dtype allowed for that type, the length
// prefix equal to header + count * dtype size, and the whole frame at most
// `max_frame_bytes`.
decode_result decode_header(const std::uint8_t* bytes, std::uint64_t max_frame_bytes);

// The extension of a slice frame (its offset), written after the header.
void encode_extension(const frame_header& h, std::uint8_t out[slice_extension_size]);
// Reads a slice's extension into h.offset. Refuses (returns why) an offset
// whose last value would lie beyond 2^64 - 1; the session checks it against
// the field's size.
std::string decode_extension(const std::uint8_t* bytes, frame_header& h);

// A complete frame, header, extension and payload, for control messages and tests.
std::vector<std::uint8_t> encode_frame(const frame_header& h, const void* payload);

// Control frame with a text payload of "key=value" lines.
std::vector<std::uint8_t> encode_text_frame(frame_type type, std::uint32_t sim_id,
                                            std::uint32_t attempt, std::uint32_t field_id,
                                            std::string_view text);

using key_values = std::map<std::string, std::string>;
// Throws std::invalid_argument for a key with '=' or a line break, or a value
// with a line break (they would not parse back as written).
std::string format_key_values(const key_values& kv);
// Parses "key=value\n" lines (a trailing '\r' is dropped); nullopt (and
// `error` set) on a malformed line or a repeated key.
std::optional<key_values> parse_key_values(std::string_view text, std::string* error = nullptr);

// Incremental reader over a byte stream: feed it bytes as they arrive and it
// yields whole frames, or stops at the first invalid header.
class frame_reader {
 public:
  explicit frame_reader(std::uint64_t max_frame_bytes = default_max_frame_bytes)
      : max_frame_bytes_(max_frame_bytes) {}

  struct frame {
    frame_header header;
    std::vector<std::uint8_t> payload;
  };

  // Appends bytes; returns false once the stream is broken (see error()).
  bool feed(const std::uint8_t* data, std::size_t n);
  // Pops the next complete frame, if any.
  std::optional<frame> next();
  const std::string& error() const { return error_; }
  bool broken() const { return !error_.empty(); }

 private:
  std::uint64_t max_frame_bytes_;
  std::vector<std::uint8_t> buffer_;
  std::size_t consumed_ = 0;
  std::string error_;
};

}  // namespace melissa::wire
