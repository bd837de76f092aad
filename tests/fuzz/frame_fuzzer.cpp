// libFuzzer target for the client <-> server frame codec (messages/wire.hpp).
//
// The server feeds bytes from untrusted sockets to frame_reader, so arbitrary
// input must never crash it, allocate more than the frame limit, or yield a
// frame that does not match the bytes it came from. Input layout:
//
//   byte 0   which frame limit the reader gets (see `limits`)
//   byte 1   seed of the piece sizes the stream is fed in
//   rest     the byte stream, as a socket would deliver it
//
// Besides crashes (ASan, UBSan), it checks these properties and aborts when
// one does not hold:
//  - feeding the stream at once or in pieces yields the same frames and the
//    same error (a connection must not behave differently with packet sizes);
//  - every frame is exactly the bytes of the stream at its position: its
//    header re-encodes to the same 40 bytes, a slice's offset to the same 8
//    extension bytes, and its payload has header.payload_bytes() bytes,
//    within the limit; a slice's last value lies below 2^64;
//  - a reader that stops without error holds less than one whole frame;
//  - a text payload that parses as key=value lines formats back to text that
//    parses to the same map.
//
// Built with clang by run-fuzzer.sh; replay_main.cpp also builds it with the
// project compiler to replay the seed corpus as an ordinary test.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "messages/wire.hpp"

namespace wire = melissa::wire;

namespace {

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "frame_fuzzer.cpp:%d: property violated: %s\n", __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

// Frame limits a reader may have: tiny ones to reach the limit checks with
// small inputs, the default, the largest that server.max_frame_mb allows, and
// "no limit" (where header + payload once wrapped around 2^64).
constexpr std::uint64_t limits[] = {
    0, 39, 40, 41, 44, 64, 100, 1024, 1 << 16, wire::default_max_frame_bytes, 4095ull << 20,
    std::numeric_limits<std::uint64_t>::max(),
};

struct outcome {
  std::vector<wire::frame_reader::frame> frames;
  std::string error;
};

// Feeds `stream` in pieces whose sizes come from a small generator seeded
// with `seed` (seed 0: all at once), popping frames after every piece.
outcome read_stream(const std::uint8_t* stream, std::size_t n, std::uint64_t limit,
                    std::uint8_t seed) {
  wire::frame_reader reader(limit);
  outcome out;
  std::uint32_t state = seed;
  std::size_t at = 0;
  while (at < n) {
    std::size_t piece = n - at;
    if (seed != 0) {
      state = state * 1664525u + 1013904223u;
      piece = std::min<std::size_t>(piece, 1 + (state >> 24) % (seed % 97 + 1));
    }
    if (!reader.feed(stream + at, piece)) {
      FUZZ_CHECK(reader.broken());
      break;
    }
    at += piece;
    while (auto f = reader.next()) out.frames.push_back(std::move(*f));
  }
  out.error = reader.error();
  return out;
}

void check_key_values(std::string_view text) {
  std::string error;
  const auto kv = wire::parse_key_values(text, &error);
  if (!kv) {
    FUZZ_CHECK(!error.empty());
    return;
  }
  const auto again = wire::parse_key_values(wire::format_key_values(*kv));
  FUZZ_CHECK(again && *again == *kv);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint64_t limit = limits[data[0] % (sizeof limits / sizeof limits[0])];
  const std::uint8_t seed = data[1];
  const std::uint8_t* stream = data + 2;
  const std::size_t n = size - 2;

  const outcome whole = read_stream(stream, n, limit, 0);
  const outcome pieces = read_stream(stream, n, limit, seed);

  FUZZ_CHECK(whole.frames.size() == pieces.frames.size());
  FUZZ_CHECK(whole.error == pieces.error);
  std::size_t at = 0;
  for (std::size_t i = 0; i < whole.frames.size(); ++i) {
    const auto& f = whole.frames[i];
    const auto& g = pieces.frames[i];
    FUZZ_CHECK(f.payload == g.payload);
    FUZZ_CHECK(f.payload.size() == f.header.payload_bytes());
    const std::size_t ext = wire::extension_size(f.header.type);
    FUZZ_CHECK(wire::header_size + ext + f.payload.size() <= limit);
    FUZZ_CHECK(at + wire::header_size + ext + f.payload.size() <= n);
    std::uint8_t header[wire::header_size];
    wire::encode_header(f.header, header);
    FUZZ_CHECK(std::memcmp(header, stream + at, wire::header_size) == 0);
    wire::encode_header(g.header, header);
    FUZZ_CHECK(std::memcmp(header, stream + at, wire::header_size) == 0);
    FUZZ_CHECK(f.header.offset == g.header.offset);
    if (ext > 0) {
      std::uint8_t extension[wire::slice_extension_size];
      wire::encode_extension(f.header, extension);
      FUZZ_CHECK(std::memcmp(extension, stream + at + wire::header_size, ext) == 0);
      FUZZ_CHECK(f.header.count == 0 || f.header.offset <= ~std::uint64_t{0} - (f.header.count - 1));
    }
    FUZZ_CHECK(f.payload.empty() ||
               std::memcmp(f.payload.data(), stream + at + wire::header_size + ext, f.payload.size()) == 0);
    at += wire::header_size + ext + f.payload.size();
    if (f.header.data_type == wire::dtype::text)
      check_key_values(std::string_view(reinterpret_cast<const char*>(f.payload.data()),
                                        f.payload.size()));
  }
  if (whole.error.empty()) {
    // Stopped for want of bytes: what is left is less than a whole frame.
    const std::size_t left = n - at;
    if (left >= wire::header_size) {
      const auto d = wire::decode_header(stream + at, limit);
      FUZZ_CHECK(d.header);
      FUZZ_CHECK(left < wire::header_size + d.header->body_bytes());
    }
  } else {
    // Stopped at an invalid header, which decode_header refuses the same way,
    // or at a whole slice whose offset decode_extension refuses.
    FUZZ_CHECK(n - at >= wire::header_size);
    auto d = wire::decode_header(stream + at, limit);
    if (d.header) {
      FUZZ_CHECK(d.header->type == wire::frame_type::slice);
      FUZZ_CHECK(n - at >= wire::header_size + d.header->body_bytes());
      FUZZ_CHECK(wire::decode_extension(stream + at + wire::header_size, *d.header) == whole.error);
    } else {
      FUZZ_CHECK(d.error == whole.error);
    }
  }

  // Any 40 bytes: a header that decodes re-encodes to the same bytes.
  for (std::size_t off = 0; off + wire::header_size <= n && off < 256; ++off) {
    const auto d = wire::decode_header(stream + off, limit);
    FUZZ_CHECK(d.header.has_value() != !d.error.empty());
    if (!d.header) continue;
    std::uint8_t header[wire::header_size];
    wire::encode_header(*d.header, header);
    FUZZ_CHECK(std::memcmp(header, stream + off, wire::header_size) == 0);
  }

  // The whole stream as control text, too.
  check_key_values(std::string_view(reinterpret_cast<const char*>(stream), n));
  return 0;
}
