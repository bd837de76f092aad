#!/usr/bin/env python3
"""Reads what metrics_writer wrote with a decoder of its own (TensorBoard and
TensorFlow are not Debian 12 packages): record framing with both masked
CRC-32C, the Event / Summary / Value protobuf fields, and the CSV beside it.

usage: test_tfevents.py WRITE_SAMPLE_METRICS
"""
import csv
import glob
import os
import socket
import struct
import subprocess
import sys
import tempfile


def crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


TABLE = crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(blob):
    at = 0
    while at < len(blob):
        header = blob[at:at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", blob[at + 8:at + 12])
        assert length_crc == masked(crc32c(header)), "length CRC"
        data = blob[at + 12:at + 12 + length]
        assert len(data) == length, "truncated record"
        (data_crc,) = struct.unpack("<I", blob[at + 12 + length:at + 16 + length])
        assert data_crc == masked(crc32c(data)), "data CRC"
        yield data
        at += 16 + length


def varint(buf, at):
    value, shift = 0, 0
    while True:
        b = buf[at]
        at += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, at


def fields(buf):
    """(field number, value) pairs of one protobuf message."""
    at = 0
    while at < len(buf):
        key, at = varint(buf, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = varint(buf, at)
        elif wire == 1:
            value, at = buf[at:at + 8], at + 8
        elif wire == 2:
            n, at = varint(buf, at)
            value, at = buf[at:at + n], at + n
        elif wire == 5:
            value, at = buf[at:at + 4], at + 4
        else:
            raise AssertionError(f"wire type {wire}")
        yield number, value


def event(data):
    e = {"values": []}
    for number, value in fields(data):
        if number == 1:
            e["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2:
            e["step"] = value
        elif number == 3:
            e["file_version"] = value.decode()
        elif number == 5:
            for n, v in fields(value):
                assert n == 1
                tag, simple = None, None
                for vn, vv in fields(v):
                    if vn == 1:
                        tag = vv.decode()
                    elif vn == 2:
                        simple = struct.unpack("<f", vv)[0]
                e["values"].append((tag, simple))
    return e


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    writer = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([writer, tmp], check=True)
        files = glob.glob(os.path.join(tmp, "metrics", "events.out.tfevents.*"))
        assert len(files) == 1, files
        name = os.path.basename(files[0])
        _, _, _, stamp, host = name.split(".", 4)
        assert stamp.isdigit() and host == socket.gethostname(), name
        with open(files[0], "rb") as f:
            events = [event(r) for r in records(f.read())]
        assert events[0]["file_version"] == "brain.Event:2", events[0]
        assert len(events) == 6, len(events)
        for i, e in enumerate(events[1:]):
            assert e["step"] == 100 * i and e["wall_time"] == 1700000000.0 + i, e
            expected = [("loss/train", f32(1.0 / (i + 1)))]
            if i % 2 == 0:
                expected.append(("samples_per_second", f32(250.0 + 100.0 * i)))
            else:
                expected.append(("loss/validation", f32(2.0 / (i + 1))))
            assert e["values"] == expected, (e["values"], expected)

        with open(os.path.join(tmp, "metrics", "metrics.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 5
        for i, row in enumerate(rows):
            assert int(row["step"]) == 100 * i
            assert float(row["wall_time"]) == 1700000000.0 + i
            assert float(row["loss/train"]) == 1.0 / (i + 1)  # the CSV keeps doubles exactly
            if i % 2 == 0:
                assert row["loss/validation"] == "" and float(row["samples_per_second"]) == 250.0 + 100 * i
            else:
                assert row["samples_per_second"] == "" and float(row["loss/validation"]) == 2.0 / (i + 1)
    print("tfevents and CSV read back: 6 events, 5 rows")


if __name__ == "__main__":
    main()
