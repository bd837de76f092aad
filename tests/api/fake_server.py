"""A scriptable stand-in for melissa-server, to test the client API alone.

It speaks the wire protocol of docs/protocol.md (its own codec, written from
the document, so that it also cross-checks messages/wire.hpp), listens on one
loopback port per fake server rank, records every frame it receives, and can
be told to misbehave: refuse fields, answer in statistics mode, withhold
credit, or drop the connection.

Used in-process by test_api_client.py (one thread per connection).
"""

import socket
import struct
import threading
import time

MAGIC = 0x41534C4D
HEADER = struct.Struct("<IIHHIIIIIQ")  # length, magic, type, dtype, sim, attempt, step, field, reserved, count
assert HEADER.size == 40

HELLO, WELCOME, FIELD, FIELD_OK, STEP, CREDIT, END, ERROR, SLICE = range(1, 10)
TYPE_NAMES = {1: "hello", 2: "welcome", 3: "field", 4: "field_ok", 5: "step", 6: "credit",
              7: "end", 8: "error", 9: "slice"}
NONE, F32, F64, TEXT = 0, 1, 2, 3
DTYPE_SIZE = {NONE: 0, F32: 4, F64: 8, TEXT: 1}


class ProtocolViolation(Exception):
    pass


def encode(ftype, dtype=NONE, sim=0, attempt=0, step=0, field=0, count=0, payload=b""):
    length = 36 + len(payload)
    return HEADER.pack(length, MAGIC, ftype, dtype, sim, attempt, step, field, 0, count) + payload


def text_frame(ftype, text):
    data = text.encode()
    return encode(ftype, TEXT if data else NONE, count=len(data), payload=data)


def recv_exactly(sock, n):
    chunks = []
    while n > 0:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(sock):
    """One frame as a dict, or None at EOF. Checks the header like a real server."""
    raw = recv_exactly(sock, HEADER.size)
    if raw is None:
        return None
    length, magic, ftype, dtype, sim, attempt, step, field, reserved, count = HEADER.unpack(raw)
    if magic != MAGIC:
        raise ProtocolViolation(f"bad magic {magic:#x}")
    if ftype not in TYPE_NAMES or dtype not in DTYPE_SIZE:
        raise ProtocolViolation(f"unknown type {ftype} or dtype {dtype}")
    if reserved != 0:
        raise ProtocolViolation("reserved field not zero")
    nbytes = count * DTYPE_SIZE[dtype]
    extension = 8 if ftype == SLICE else 0  # a slice's u64 global offset
    if length != 36 + extension + nbytes:
        raise ProtocolViolation(f"length {length} does not match count {count} of dtype {dtype}")
    if ftype in (STEP, SLICE) and dtype not in (F32, F64):
        raise ProtocolViolation("step frame without f32/f64 payload")
    offset = None
    if extension:
        raw_offset = recv_exactly(sock, extension)
        if raw_offset is None:
            return None
        offset = struct.unpack("<Q", raw_offset)[0]
    if ftype in (END, CREDIT) and dtype != NONE:
        raise ProtocolViolation(f"{TYPE_NAMES[ftype]} frame with a payload")
    payload = recv_exactly(sock, nbytes) if nbytes else b""
    if payload is None:
        return None
    return {"type": ftype, "name": TYPE_NAMES[ftype], "dtype": dtype, "sim_id": sim,
            "attempt": attempt, "time_step": step, "field_id": field, "count": count,
            "offset": offset, "payload": payload, "time": time.monotonic()}


def parse_kv(payload):
    out = {}
    for line in payload.decode().splitlines():
        if line:
            key, _, value = line.partition("=")
            out[key] = value
    return out


class FakeServer:
    """`ranks` fake server ranks on 127.0.0.1.

    fields: {name: global size or None (any size)}; a field not listed is
    refused with the real server's wording. window: the credit window in bytes.
    ports: fixed ports, one per rank (default: any free port).
    hold_credit: credits are kept back until release_credit(). close_after_steps:
    drop each connection after that many steps. error_after_steps: (n, text):
    answer the n-th step with an `error` frame, then close. mode: what welcome says.
    """

    def __init__(self, ranks=1, fields=None, window=1 << 20, mode="training",
                 hold_credit=False, close_after_steps=None, ports=None, error_after_steps=None):
        self.ranks = ranks
        self.fields = {"temperature": None} if fields is None else fields
        self.window = window
        self.mode = mode
        self.close_after_steps = close_after_steps
        self.error_after_steps = error_after_steps
        self.lock = threading.Condition()
        self.credit_open = not hold_credit
        self.frames = [[] for _ in range(ranks)]       # every frame received, per rank
        self.violations = []                            # protocol or flow-control breaches
        self.ends = [0] * ranks                         # sessions ended cleanly, per rank
        self.pending_credit = {}                        # connection -> bytes held back
        self.listeners = []
        self.threads = []
        self.running = True
        for rank in range(ranks):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", ports[rank] if ports else 0))
            s.listen(16)
            self.listeners.append(s)
        for rank, s in enumerate(self.listeners):
            t = threading.Thread(target=self._accept_loop, args=(rank, s), daemon=True)
            t.start()
            self.threads.append(t)

    # --- test-side API ---
    @property
    def addresses(self):
        return ",".join(f"127.0.0.1:{s.getsockname()[1]}" for s in self.listeners)

    def steps(self, rank=None):
        ranks = range(self.ranks) if rank is None else [rank]
        with self.lock:
            return [f for r in ranks for f in self.frames[r] if f["type"] == STEP]

    def frames_of(self, rank, name):
        with self.lock:
            return [f for f in self.frames[rank] if f["name"] == name]

    def wait_for(self, predicate, timeout=20.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
            return True

    def release_credit(self):
        with self.lock:
            self.credit_open = True
            for conn, nbytes in list(self.pending_credit.items()):
                if nbytes:
                    self._send(conn, encode(CREDIT, count=nbytes))
                self.pending_credit[conn] = 0
            self.lock.notify_all()

    def close(self):
        self.running = False
        for s in self.listeners:
            try:
                s.close()
            except OSError:
                pass

    # --- server side ---
    def _send(self, conn, data):
        try:
            conn.sendall(data)
        except OSError:
            pass

    def _accept_loop(self, rank, listener):
        while self.running:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(rank, conn), daemon=True).start()

    def _violation(self, text):
        with self.lock:
            self.violations.append(text)
            self.lock.notify_all()

    def _serve(self, rank, conn):
        field_ids = {}
        steps_here = 0
        identity = None
        try:
            while True:
                f = read_frame(conn)
                if f is None:
                    return
                with self.lock:
                    self.frames[rank].append(f)
                    self.lock.notify_all()
                if identity is None:
                    identity = (f["sim_id"], f["attempt"])
                elif identity != (f["sim_id"], f["attempt"]):
                    self._violation(f"sim_id/attempt changed within a connection: {identity} -> "
                                    f"{(f['sim_id'], f['attempt'])}")
                if f["type"] == HELLO:
                    kv = parse_kv(f["payload"])
                    if kv.get("version") != "1":
                        self._send(conn, text_frame(ERROR, f"unsupported protocol version "
                                                           f"{kv.get('version')}; this server speaks 1"))
                        return
                    self._send(conn, text_frame(WELCOME,
                                                f"version=1\nrank={rank}\nranks={self.ranks}\n"
                                                f"mode={self.mode}\nwindow={self.window}\n"))
                elif f["type"] == FIELD:
                    kv = parse_kv(f["payload"])
                    name, size = kv.get("name"), int(kv.get("size", "-1"))
                    if name not in self.fields:
                        known = ", ".join(self.fields)
                        self._send(conn, text_frame(ERROR, f"unknown field '{name}' (study fields: {known})"))
                        return
                    expected = self.fields[name]
                    if expected is not None and expected != size:
                        self._send(conn, text_frame(ERROR, f"field '{name}' has {size} values, "
                                                           f"the study says {expected}"))
                        return
                    # Ids differ per rank on purpose: the client must use each rank's own.
                    field_ids[name] = 100 * rank + len(field_ids) + 1
                    self._send(conn, encode(FIELD_OK, field=field_ids[name]))
                elif f["type"] in (STEP, SLICE):
                    nbytes = len(f["payload"])
                    steps_here += 1
                    if f["field_id"] not in field_ids.values():
                        self._violation(f"rank {rank}: step with unknown field id {f['field_id']}")
                    with self.lock:
                        # Bytes received and not yet credited back. Credit already
                        # sent counts as returned, so the client's own count is never
                        # lower: a breach seen here is a breach by the client.
                        held = self.pending_credit.get(conn, 0)
                        if held > 0 and held + nbytes > self.window:
                            self.violations.append(
                                f"rank {rank}: step {f['time_step']} of {nbytes} bytes sent with "
                                f"{held} bytes outstanding of a {self.window}-byte window")
                        if self.credit_open:
                            self._send(conn, encode(CREDIT, count=nbytes))
                        else:
                            self.pending_credit[conn] = held + nbytes
                    if self.error_after_steps and steps_here >= self.error_after_steps[0]:
                        self._send(conn, text_frame(ERROR, self.error_after_steps[1]))
                        return
                    if self.close_after_steps is not None and steps_here >= self.close_after_steps:
                        conn.shutdown(socket.SHUT_RDWR)
                        return
                elif f["type"] == END:
                    with self.lock:
                        self.ends[rank] += 1
                        self.lock.notify_all()
                    self._send(conn, encode(END))
                    return
                else:
                    self._violation(f"rank {rank}: unexpected {f['name']} frame from a client")
                    return
        except ProtocolViolation as e:
            self._violation(f"rank {rank}: {e}")
        except OSError:
            pass
        finally:
            conn.close()
