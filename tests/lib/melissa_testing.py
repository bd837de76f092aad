"""Helpers for integration tests that start real Melissa processes.

Binaries come from $MELISSA_BUILD_DIR (set by meson test); every process
started here is put in its own process group and killed at exit.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MELISSA_BUILD_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
SOURCE = os.environ.get("MELISSA_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
SERVER = os.path.join(BUILD, "apps", "melissa-server", "melissa-server")
HEAT = os.path.join(BUILD, "solvers", "heat", "melissa-heat")
RUN = os.path.join(BUILD, "apps", "melissa-run", "melissa-run")
SHELL = os.environ.get("MELISSA_SHELL", os.path.join(BUILD, "apps", "melissa-shell", "melissa-shell"))
API_LIB = os.environ.get("MELISSA_API_LIB", os.path.join(BUILD, "api", "libmelissa-api.so"))
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]

_children = []


def _cleanup():
    for p in _children:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


import atexit
atexit.register(_cleanup)


def fail(msg):
    print("FAIL: " + msg, flush=True)
    _cleanup()
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok: " + msg, flush=True)


def start(argv, env=None, **kw):
    """Starts a process in a new session (own process group)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.Popen(argv, env=full_env, start_new_session=True, **kw)
    _children.append(p)
    return p


# --- study files ---------------------------------------------------------
# The one writer of study files for the Python tests: sections as dicts, merged
# over a small valid study (two-rank heat clients, five parameters, one field).

SECTIONS = ("study", "launcher", "server", "client", "parameters", "fields", "buffer", "training", "breed", "checkpoint")


def toml_value(v):
    """A Python value as TOML: bool, int, float, str, list, dict (inline table)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or abs(v) == float("inf"):
            raise ValueError(f"{v} is no study-file number")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML form for {v!r}")


def study_text(sections):
    """TOML of `sections` ({"study": {...}, ..., "fields": [{...}, ...]}), in the study's order;
    keys whose value is None are left out."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise KeyError(f"unknown study sections {sorted(unknown)}")
    out = []
    for name in SECTIONS:
        body = sections.get(name)
        if body is None:
            continue
        for table in (body if name == "fields" else [body]):
            out.append(f"[[{name}]]" if name == "fields" else f"[{name}]")
            out += [f"{k} = {toml_value(v)}" for k, v in table.items() if v is not None]
            out.append("")
    return "\n".join(out)


def write_study(dir, file="study.toml", **sections):
    """Writes dir/file and returns its path. Each section given (a dict; `fields` a list of
    dicts) is merged over the defaults below, a key set to None removes it; fields replace
    the default field. `name` and `output_dir` default to "e2e" and dir/out."""
    defaults = {
        "study": {"name": "e2e", "output_dir": os.path.join(dir, "out"), "seed": 7},
        "server": {"port": 0},
        "client": {"command": [HEAT], "ranks": 2},
        "parameters": {"names": ["T0", "T1", "T2", "T3", "T4"], "bounds": [100.0, 500.0], "count": 4},
        "fields": [{"name": "temperature", "size": 32 * 32}],
    }
    for name, body in sections.items():
        if name == "fields" or name not in defaults or body is None:
            defaults[name] = body
        else:
            defaults[name] = {**defaults[name], **body}
    path = os.path.join(dir, file)
    with open(path, "w") as f:
        f.write(study_text(defaults))
    return path


class Server:
    def __init__(self, study, out, *args):
        self.addr_file = os.path.join(out, "server.addr")
        self.out = out
        self.log = open(os.path.join(out, "server.log"), "w")
        self.proc = start([SERVER, "--config", study, "--output", out, "--address-file", self.addr_file,
                           *args], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while not os.path.exists(self.addr_file):
            if self.proc.poll() is not None or time.time() > deadline:
                fail("server did not start:\n" + self.read_log())
            time.sleep(0.05)
        self.address = open(self.addr_file).read().strip()
        host, port = self.address.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def read_log(self):
        self.log.flush()
        return open(os.path.join(self.out, "server.log")).read()

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            fail(f"server did not finish within {timeout} s:\n" + self.read_log())

    def summary(self, rank=0):
        with open(os.path.join(self.out, f"server-summary.rank{rank}.json")) as f:
            return json.load(f)


def client_env(server_addresses, sim_id, attempt=1):
    return {"MELISSA_SERVER_ADDRESSES": ",".join(server_addresses), "MELISSA_SIM_ID": str(sim_id),
            "MELISSA_ATTEMPT": str(attempt), "MELISSA_CONNECT_TIMEOUT": "20"}


def heat_argv(params, grid=32, steps=20, ranks=2, checksum_file=None, extra=()):
    argv = [HEAT, "--grid", str(grid), "--steps", str(steps), *extra]
    if checksum_file:
        argv += ["--checksum-file", checksum_file]
    argv += [repr(float(p)) for p in params]
    return (MPIRUN + ["-n", str(ranks)] + argv) if ranks > 1 else argv


def read_checksum_total(path):
    for line in open(path):
        key, value = line.split()
        if key == "total":
            return value
    fail(f"no total line in {path}")


def design(study):
    """The server's design of experiments, one row of parameters per simulation."""
    out = subprocess.run([SERVER, "--config", study, "--print-design"], check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()
    return [[float(x) for x in line.split(",")[1:]] for line in out[1:]]


# --- raw wire protocol (mirror of messages/wire.hpp), for malformed-input tests ---
MAGIC = 0x41534C4D
HEADER = struct.Struct("<IIHHIIIIIQ")


def frame(ftype, dtype=0, sim=0, attempt=0, step=0, field=0, count=0, payload=b"", length=None):
    if length is None:
        length = 36 + len(payload)
    return HEADER.pack(length, MAGIC, ftype, dtype, sim, attempt, step, field, 0, count) + payload


def recv_all_until_closed(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, True
        except socket.timeout:
            return data, False
        if not chunk:
            return data, True
        data += chunk



def skip_without_torch(work, study):
    """Exit 77 (meson's skip) when melissa-server cannot train, i.e. was built
    without LibTorch: it says so at once; otherwise stop the probe server."""
    probe_out = os.path.join(work, "probe")
    os.makedirs(probe_out, exist_ok=True)
    addr = os.path.join(probe_out, "server.addr")
    probe = start([SERVER, "--config", study, "--output", probe_out, "--address-file", addr],
                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while not os.path.exists(addr) and probe.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if probe.poll() is not None and not os.path.exists(addr):
        text = probe.stdout.read()
        if "needs a server built with LibTorch" in text or "training is unavailable" in text:
            print(f"SKIP: melissa-server cannot train here: {text.strip()}", flush=True)
            sys.exit(77)
        fail(f"melissa-server --config (sink = train) exited {probe.returncode}: {text}")
    if not os.path.exists(addr):
        fail("melissa-server --config (sink = train) neither started nor refused within 30 s")
    os.killpg(probe.pid, signal.SIGKILL)
    probe.wait()

def rank_of(pid):
    """The server rank a process is (mpirun gives each its rank), None for mpirun."""
    try:
        env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    except OSError:
        return None
    for var in env:
        if var.startswith(b"OMPI_COMM_WORLD_RANK="):
            return int(var.split(b"=", 1)[1])
    return None


def tmpdir(name):
    return tempfile.mkdtemp(prefix=f"melissa-{name}-")
