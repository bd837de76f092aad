#!/usr/bin/python3
"""Writes the seed corpus of frame_fuzzer (tests/fuzz/corpus/).

Frames are packed here from docs/protocol.md, independently of the codec.
Each file is: limit selector byte, piece-size seed byte, then the stream (see
frame_fuzzer.cpp). Run it again after a protocol change:
    tests/fuzz/make-corpus.py tests/fuzz/corpus
"""
import os
import struct
import sys

MAGIC = 0x41534C4D
HELLO, WELCOME, FIELD, FIELD_OK, STEP, CREDIT, END, ERROR, SLICE = range(1, 10)
NONE, F32, F64, TEXT = range(4)
SIZE = {NONE: 0, F32: 4, F64: 8, TEXT: 1}
# Indices into `limits` in frame_fuzzer.cpp.
LIMIT_64, LIMIT_1K, LIMIT_DEFAULT, LIMIT_NONE = 5, 7, 9, 11


def frame(ftype, dtype, payload=b"", count=None, sim=7, attempt=1, step=0, field=0, reserved=0,
          length=None):
    if count is None:
        count = len(payload) // SIZE[dtype] if SIZE[dtype] else 0
    if length is None:
        length = 36 + count * SIZE[dtype]
    header = struct.pack("<IIHHIIIIIQ", length & 0xFFFFFFFF, MAGIC, ftype, dtype, sim, attempt,
                         step, field, reserved, count)
    return header + payload


def slice_frame(offset, values, length=None, **kw):
    """A slice: the header, its u64 global offset, then float32 values."""
    payload = f32(values)
    if length is None:
        length = 36 + 8 + len(payload)
    head = frame(SLICE, F32, count=len(values), length=length, **kw)
    return head + struct.pack("<Q", offset) + payload


def text(ftype, s, **kw):
    data = s.encode()
    return frame(ftype, TEXT if data else NONE, data, **kw)


def f32(values):
    return struct.pack("<%df" % len(values), *values)


def f64(values):
    return struct.pack("<%dd" % len(values), *values)


hello = text(HELLO, "version=1\nclient_ranks=2\n")
welcome = text(WELCOME, "mode=training\nrank=0\nranks=1\nversion=1\nwindow=67108864\n", sim=0,
               attempt=0)
field = text(FIELD, "name=temperature\nsize=4\n")
field_ok = frame(FIELD_OK, NONE, field=1)
steps = [frame(STEP, F32, f32([t, t + 0.5, -t, 1e30]), step=t, field=1) for t in range(3)]
step64 = frame(STEP, F64, f64([1.0, -0.0, 2.5e-300]), step=3, field=1)
credit = frame(CREDIT, NONE, count=64 << 20)
end = frame(END, NONE)
error = text(ERROR, "unknown field 'temp' (study fields: temperature)")
error_empty = text(ERROR, "")

corpus = {
    "hello": hello,
    "welcome": welcome,
    "field": field,
    "field_ok": field_ok,
    "step_f32": steps[0],
    "step_f64": step64,
    "credit": credit,
    "end": end,
    "error": error,
    "error_empty": error_empty,
    "session": hello + field + b"".join(steps) + end,
    "server_replies": welcome + field_ok + credit + credit + end,
    "partial_frame": hello + steps[1][:57],
    "bad_magic_after_frames": hello + field + b"\0" * 40 + end,
    "bad_reserved": frame(END, NONE, reserved=1),
    "bad_length": frame(STEP, F32, f32([1.0]), length=40),
    "malformed_key_values": text(HELLO, "version=1\n=oops\nnovalue\n"),
    "slice": slice_frame(1000, [1.0, 2.0, 3.0], field=1),
    "statistics_session": hello + field + slice_frame(0, [1.0, 2.0], field=1)
    + slice_frame(2, [3.0, 4.0], field=1) + end,
    "slice_offset_overflow": slice_frame(2**64 - 1, [1.0, 2.0], field=1),
    "slice_bad_length": slice_frame(0, [1.0], length=40, field=1),
}
# The frames at the edge of a 64-byte limit: 40 + 6 * 4 fits, 40 + 7 * 4 does not.
limit_edge = (LIMIT_64, frame(STEP, F32, f32([1.0] * 6)) + frame(STEP, F32, f32([1.0] * 7)))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    for i, (name, stream) in enumerate(sorted(corpus.items())):
        with open(os.path.join(out, name), "wb") as f:
            # Alternate between feeding at once (seed 0) and in small pieces.
            f.write(bytes([LIMIT_DEFAULT if i % 3 else LIMIT_1K, 0 if i % 2 else 13]) + stream)
    with open(os.path.join(out, "limit_edge"), "wb") as f:
        f.write(bytes([limit_edge[0], 5]) + limit_edge[1])
    # Regression: with no limit (UINT64_MAX), 40 + (2^64 - 36) wrapped to 4
    # and the length prefix 0 "matched" (fixed in wire.cpp, f7d4213).
    with open(os.path.join(out, "no_limit_wraparound"), "wb") as f:
        f.write(bytes([LIMIT_NONE, 0]) + frame(HELLO, TEXT, count=2**64 - 36, length=0, sim=0,
                                               attempt=0))


if __name__ == "__main__":
    main()
