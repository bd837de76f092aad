"""Integration tests of the client API against the fake server (fake_server.py).

    /usr/bin/python3 test_api_client.py SCENARIO

Each scenario starts a FakeServer in this process, runs a client (the C test
client, an example solver, under mpirun where it says so) with the MELISSA_*
environment pointing at it, and checks what the server received and what the
client printed. Paths come from the environment that tests/api/meson.build sets:
API_TEST_CLIENT, TOY_SOLVER_C, TOY_SOLVER_F, TOY_SOLVER_PY, MELISSA_API_LIB and
PYTHONPATH (api/python).
"""

import ctypes
import os
import struct
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_server import parse_kv, FakeServer  # noqa: E402

MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe"]


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)
    print(f"  ok: {what}")


def client_env(server, sim_id=0, attempt=None, **extra):
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("MELISSA_") and k not in ("MELISSA_API_LIB",
                                                                       "MELISSA_BUILD_DIR",
                                                                       "MELISSA_SOURCE_DIR")]:
        del env[key]
    if server is not None:
        env["MELISSA_SERVER_ADDRESSES"] = server if isinstance(server, str) else server.addresses
    env["MELISSA_SIM_ID"] = str(sim_id)
    if attempt is not None:
        env["MELISSA_ATTEMPT"] = str(attempt)
    env["MELISSA_CONNECT_TIMEOUT"] = "10"
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run(cmd, env, timeout=60, mpi_ranks=None):
    if mpi_ranks is not None:
        cmd = MPIRUN + ["-n", str(mpi_ranks)] + cmd
    print("  run:", " ".join(cmd))
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    print("  exit", p.returncode)
    for line in (p.stdout + p.stderr).splitlines()[-15:]:
        print("  |", line)
    return p


def test_client():
    return [os.environ["API_TEST_CLIENT"]]


def values_of(frame):
    return np.frombuffer(frame["payload"], dtype="<f4")


def expected_stream(global_size, t, sign=1.0):
    g = np.arange(global_size, dtype=np.float64)
    return (sign * (t * 100000.0 + g + 0.5)).astype(np.float32)


def check_stream(server, steps, global_size, sim_id=0, attempt=1, field_id_of=None, ranks=1):
    received = sorted(server.steps(), key=lambda f: f["time_step"])
    check([f["time_step"] for f in received] == list(range(steps)),
          f"the server received steps 0..{steps - 1} exactly once")
    for f in received:
        if f["sim_id"] != sim_id or f["attempt"] != attempt or f["dtype"] != 1 \
                or f["count"] != global_size:
            raise Failure(f"bad step header {f}")
        if not np.array_equal(values_of(f), expected_stream(global_size, f["time_step"])):
            raise Failure(f"step {f['time_step']}: payload {values_of(f)[:8]}... differs")
    check(True, "every step has sim_id, attempt, f32, count and the expected values")
    check(server.violations == [], f"no protocol or credit violation ({server.violations})")
    check(server.ends == [1] * ranks, "every server rank got end")


# --- scenarios ---

def scenario_happy():
    server = FakeServer(fields={"temperature": 6})
    p = run(test_client() + ["stream", "--local-size", "6", "--steps", "4", "--no-mpi"],
            client_env(server, sim_id=7, attempt=2))
    check(p.returncode == 0, "the client exits 0")
    check("done sim 7 attempt 2" in p.stdout, "melissa_get_sim_id/attempt report the environment")
    hello = server.frames_of(0, "hello")
    check(len(hello) == 1 and b"version=1" in hello[0]["payload"]
          and b"client_ranks=1" in hello[0]["payload"], "hello says version=1, client_ranks=1")
    field = server.frames_of(0, "field")
    check(len(field) == 1 and field[0]["payload"] == b"name=temperature\nsize=6\n",
          "field says name and global size")
    check(all(f["field_id"] == 1 for f in server.steps()), "steps carry the id from field_ok")
    check_stream(server, 4, 6, sim_id=7, attempt=2)


def scenario_float_input():
    server = FakeServer()
    p = run(test_client() + ["stream", "--local-size", "5", "--steps", "3", "--float",
                             "--no-mpi"], client_env(server))
    check(p.returncode == 0, "the client exits 0")
    check_stream(server, 3, 5)


def scenario_two_fields():
    server = FakeServer(fields={"temperature": None, "pressure": None})
    p = run(test_client() + ["stream", "--local-size", "3", "--steps", "3", "--no-mpi",
                             "--second-field", "pressure"], client_env(server))
    check(p.returncode == 0, "the client exits 0")
    steps = server.steps()
    ids = {f["field_id"] for f in steps}
    check(ids == {1, 2}, "both fields stream with their own ids")
    for fid, sign in ((1, 1.0), (2, -1.0)):
        mine = [f for f in steps if f["field_id"] == fid]
        check([f["time_step"] for f in mine] == [0, 1, 2], f"field {fid} counts its steps from 0")
        for f in mine:
            if not np.array_equal(values_of(f), expected_stream(3, f["time_step"], sign)):
                raise Failure(f"field {fid} step {f['time_step']}: wrong values")
    check(server.violations == [], "no violation")


def scenario_refused_field():
    server = FakeServer(fields={"temperature": 10000})
    p = run(test_client() + ["stream", "--local-size", "1024", "--no-mpi"], client_env(server))
    check(p.returncode != 0, "exit mode: the client ends with a non-zero status")
    check("field 'temperature' has 1024 values, the study says 10000" in p.stderr,
          "the server's reason is printed on stderr")
    server2 = FakeServer(fields={"temperature": None})
    p = run(test_client() + ["stream", "--field", "temp", "--no-mpi"],
            client_env(server2, MELISSA_ON_ERROR="return"))
    check(p.returncode == 3, "return mode: the call returns an error to the solver")
    check("status -3 melissa_init" in p.stdout and
          "unknown field 'temp' (study fields: temperature)" in p.stdout,
          "melissa_last_error holds the server's text, status MELISSA_ERR_REFUSED")


def scenario_unreachable():
    # A bound socket that does not listen: connections are refused, and no
    # other process can take the port meanwhile.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    start = time.monotonic()
    p = run(test_client() + ["stream", "--no-mpi"],
            client_env(f"127.0.0.1:{port}", MELISSA_CONNECT_TIMEOUT="1"))
    elapsed = time.monotonic() - start
    check(p.returncode != 0, "the client exits non-zero")
    check(f"melissa: cannot reach server rank 0 at 127.0.0.1:{port} after 1 s: Connection refused"
          in p.stderr, "the message names the rank, the address, the timeout and the reason")
    check(0.9 <= elapsed < 8, f"it gave up after the timeout ({elapsed:.2f} s)")
    p = run(test_client() + ["stream", "--no-mpi"],
            client_env(f"127.0.0.1:{port}", MELISSA_CONNECT_TIMEOUT="0.5", MELISSA_ON_ERROR="return"))
    check(p.returncode == 3 and "status -2 melissa_init" in p.stdout,
          "return mode: MELISSA_ERR_CONNECT is returned")
    s.close()


def scenario_late_server():
    # The server comes up while the client is retrying: backoff, then success.
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    proc = subprocess.Popen(test_client() + ["stream", "--no-mpi", "--steps", "2"],
                            env=client_env(f"127.0.0.1:{port}"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    s.close()
    server = FakeServer(ports=[port])
    out, err = proc.communicate(timeout=30)
    print("  |", out.strip().replace("\n", "\n  | "), err.strip())
    check(proc.returncode == 0, "the client connected once the server was up and finished")
    check(len(server.steps()) == 2, "both steps arrived")


def scenario_env_errors():
    p = run(test_client() + ["stream", "--no-mpi"], client_env(None, MELISSA_ON_ERROR="return"))
    check(p.returncode == 3 and "status -1" in p.stdout and "MELISSA_SERVER_ADDRESSES is not set"
          in p.stdout, "missing MELISSA_SERVER_ADDRESSES: MELISSA_ERR_ENV with a clear message")
    p = run(test_client() + ["stream", "--no-mpi"], client_env("localhost", MELISSA_ON_ERROR="return"))
    check(p.returncode == 3 and "'localhost' is not host:port" in p.stdout,
          "malformed address: clear message")
    p = run(test_client() + ["stream", "--no-mpi"], client_env(None))
    check(p.returncode != 0 and "MELISSA_SERVER_ADDRESSES is not set" in p.stderr,
          "exit mode: missing environment ends the process with the message")


def scenario_order():
    server = FakeServer(fields={"temperature": 4})
    p = run(test_client() + ["order"], client_env(server))
    check(p.returncode == 0, "every misuse gets its MELISSA_ERR_* and message, no crash")
    check(len(server.steps()) == 1 and server.ends == [1], "the one valid step and end arrived")


def scenario_credit_blocks():
    # Field of 250 floats = 1000 bytes; window of 2000 bytes: two steps fit.
    server = FakeServer(window=2000, hold_credit=True)
    proc = subprocess.Popen(test_client() + ["stream", "--local-size", "250", "--steps", "6",
                                             "--no-mpi"],
                            env=client_env(server), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    check(server.wait_for(lambda: len([f for f in server.frames[0] if f["type"] == 5]) >= 2),
          "the first two steps (the window) arrive without credit")
    time.sleep(1.0)
    check(len(server.steps()) == 2 and proc.poll() is None,
          "without credit the third melissa_send blocks (nothing more arrives, client still running)")
    server.release_credit()
    out, err = proc.communicate(timeout=30)
    print("  |", out.strip().replace("\n", "\n  | "), err.strip())
    check(proc.returncode == 0, "after the credit the client finishes")
    check_stream(server, 6, 250)


def scenario_oversized_frame():
    # Each step (400 bytes) exceeds the whole window (100 bytes): allowed, one
    # at a time, when nothing is outstanding.
    server = FakeServer(window=100, hold_credit=True)
    proc = subprocess.Popen(test_client() + ["stream", "--local-size", "100", "--steps", "3",
                                             "--no-mpi"],
                            env=client_env(server), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    check(server.wait_for(lambda: len([f for f in server.frames[0] if f["type"] == 5]) >= 1),
          "a frame larger than the window goes out when nothing is outstanding")
    time.sleep(0.7)
    check(len(server.steps()) == 1, "the next one waits for its credit")
    server.release_credit()
    out, err = proc.communicate(timeout=30)
    check(proc.returncode == 0, "the client finishes once credit flows")
    check_stream(server, 3, 100)


def scenario_round_robin():
    server = FakeServer(ranks=2)
    p = run(test_client() + ["stream", "--local-size", "4", "--steps", "6", "--no-mpi"],
            client_env(server, sim_id=3))
    check(p.returncode == 0, "the client exits 0")
    for rank in (0, 1):
        got = sorted(f["time_step"] for f in server.steps(rank))
        want = [t for t in range(6) if (3 + t) % 2 == rank]
        check(got == want, f"server rank {rank} got steps {want} ((sim + t) mod 2)")
        check(all(f["field_id"] == 100 * rank + 1 for f in server.steps(rank)),
              f"steps to rank {rank} carry the id rank {rank} assigned")
        check(len(server.frames_of(rank, "hello")) == 1 and len(server.frames_of(rank, "field")) == 1,
              f"rank {rank} got hello and field")
    check_stream(server, 6, 4, sim_id=3, ranks=2)


def scenario_statistics_mode():
    # Statistics mode (from the welcome): no gather; rank 0 owns 3 values, rank 1
    # owns 5, and each sends its own slice at its global offset to the server
    # ranks owning it: server rank 0 owns [0, 4), rank 1 [4, 8).
    server = FakeServer(ranks=2, fields={"temperature": 8}, mode="statistics")
    p = run(test_client() + ["stream", "--local-size", "3", "--rank-extra", "2", "--steps", "3"],
            client_env(server, sim_id=4), mpi_ranks=2)
    check(p.returncode == 0, f"statistics mode: both ranks exit 0 ({p.stdout} {p.stderr})")
    for rank, (lo, hi) in enumerate([(0, 4), (4, 8)]):
        hellos = sorted(parse_kv(f["payload"])["client_rank"] for f in server.frames_of(rank, "hello"))
        check(hellos == ["0", "1"], f"server rank {rank}: a session from each client rank ({hellos})")
        slices = server.frames_of(rank, "slice")
        check(server.frames_of(rank, "step") == [], f"server rank {rank}: no whole steps")
        for t in range(3):
            got = np.full(8, np.nan, dtype=np.float32)
            for f in slices:
                if f["time_step"] == t:
                    got[f["offset"]:f["offset"] + f["count"]] = values_of(f)
            check(np.array_equal(got[lo:hi], expected_stream(8, t)[lo:hi]) and
                  bool(np.all(np.isnan(np.delete(got, range(lo, hi))))),
                  f"server rank {rank} step {t}: slices cover exactly its share [{lo}, {hi}) with "
                  f"the values at their global offsets")
    rank0 = sorted((f["offset"], f["count"]) for f in server.frames_of(0, "slice") if f["time_step"] == 0)
    check(rank0 == [(0, 3), (3, 1)], f"the slice of client rank 1 that spans two owners is split ({rank0})")
    check(server.violations == [], f"no protocol or credit violation ({server.violations})")
    check(server.ends == [2, 2], "every client rank ended its session with every server rank")


def scenario_connection_lost():
    server = FakeServer(close_after_steps=2)
    p = run(test_client() + ["stream", "--steps", "50", "--no-mpi"], client_env(server))
    check(p.returncode != 0, "a dropped connection is fatal (exit mode)")
    check("server rank 0 (127.0.0.1:" in p.stderr and
          ("closed the connection" in p.stderr or "connection lost" in p.stderr),
          "the message names the server rank and the cause")
    server = FakeServer(close_after_steps=2)
    p = run(test_client() + ["stream", "--steps", "50", "--no-mpi"],
            client_env(server, MELISSA_ON_ERROR="return"))
    check(p.returncode == 3 and "status -6" in p.stdout, "return mode: MELISSA_ERR_IO")


def scenario_server_error():
    # An `error` frame mid-stream (then the server closes): its text, not just
    # "connection closed", must reach the solver.
    server = FakeServer(error_after_steps=(2, "step 1 of field 7: disk full"))
    p = run(test_client() + ["stream", "--steps", "20", "--no-mpi"],
            client_env(server, MELISSA_ON_ERROR="return"))
    # The client may have sent every step before the error arrives: then
    # melissa_finalize, waiting for `end`, is the call that reports it.
    check(p.returncode == 3 and ("status -6 melissa_send" in p.stdout
                                 or "status -6 melissa_finalize" in p.stdout),
          "MELISSA_ERR_IO is returned (by melissa_send or melissa_finalize)")
    check("reported an error: step 1 of field 7: disk full" in p.stdout,
          "the server's text reaches melissa_last_error")
    p = run(test_client() + ["stream", "--steps", "20", "--no-mpi"],
            client_env(FakeServer(error_after_steps=(1, "disk full"))))
    check(p.returncode != 0 and "disk full" in p.stderr, "exit mode: printed, non-zero exit")


def scenario_mpi_gather():
    # Rank 0 owns 3 values, rank 1 owns 5: the server must see 8 in rank order.
    server = FakeServer(fields={"temperature": 8})
    p = run(test_client() + ["stream", "--local-size", "3", "--rank-extra", "2", "--steps", "3"],
            client_env(server, sim_id=1), mpi_ranks=2)
    check(p.returncode == 0, "both ranks exit 0")
    hello = server.frames_of(0, "hello")
    check(len(hello) == 1 and b"client_ranks=2" in hello[0]["payload"],
          "rank 0 alone connects, hello says client_ranks=2")
    check_stream(server, 3, 8, sim_id=1)
    server = FakeServer(fields={"temperature": 8})
    p = run(test_client() + ["stream", "--local-size", "3", "--rank-extra", "2", "--steps", "2",
                             "--float"], client_env(server), mpi_ranks=2)
    check(p.returncode == 0, "float input under MPI exits 0")
    check_stream(server, 2, 8)


def scenario_mpi_null_values():
    # NULL values on rank 1 only: every rank returns MELISSA_ERR_ARG instead of
    # rank 0 waiting in the gather, and nothing is sent.
    server = FakeServer()
    p = run(test_client() + ["stream", "--local-size", "3", "--null-on-rank", "1"],
            client_env(server), mpi_ranks=2)
    check(p.stdout.count("status -7 melissa_send") == 2, "both ranks get MELISSA_ERR_ARG")
    check("values is NULL for field 'temperature' (local size 3)" in p.stdout
          and "values is NULL on another rank" in p.stdout, "each says whose buffer it was")
    check(server.steps() == [], "nothing was sent")


def scenario_mpi_refused():
    server = FakeServer(fields={"temperature": 1})
    p = run(test_client() + ["stream", "--local-size", "3"], client_env(server), mpi_ranks=2)
    check(p.returncode != 0, "exit mode under MPI: the whole job ends non-zero (MPI_Abort)")
    check("field 'temperature' has 6 values, the study says 1" in p.stderr, "the reason is printed")
    # Rank 1 runs without any MELISSA_* variable (MPMD launch): only rank 0
    # reads the environment, and its MELISSA_ON_ERROR=return holds for all.
    server = FakeServer(fields={"temperature": 1})
    args = ["stream", "--local-size", "3"]
    unset = ["env", "-u", "MELISSA_ON_ERROR", "-u", "MELISSA_SERVER_ADDRESSES", "-u", "MELISSA_SIM_ID"]
    p = run(MPIRUN + ["-n", "1"] + test_client() + args + [":", "-n", "1"] + unset + test_client()
            + args, client_env(server, MELISSA_ON_ERROR="return"))
    check(p.returncode == 3 and p.stdout.count("status -3 melissa_init") == 2,
          "return mode: every rank gets MELISSA_ERR_REFUSED (none waits forever)")
    check(p.stderr.count("the study says 1") == 1, "the message is printed once, by rank 0")


# --- the examples, against the fake server ---

def pulse(size, t, steps, sim_id):
    """toy_solver.{c,f90,py}'s field, recomputed the same way, as float32."""
    i = np.arange(size, dtype=np.float64)
    x = i / float(size - 1)
    center = float(t) / float(steps)
    d = (x - center) * 10.0
    return ((1.0 + 0.5 * float(sim_id)) / (1.0 + d * d)).astype(np.float32)


_xxhash = None


def step_checksum(t, values32):
    """melissa::step_checksum (messages/checksum.hpp): XXH3-64 seeded with the step."""
    global _xxhash
    if _xxhash is None:
        _xxhash = ctypes.CDLL("libxxhash.so.0")
        _xxhash.XXH3_64bits_withSeed.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                                 ctypes.c_uint64]
        _xxhash.XXH3_64bits_withSeed.restype = ctypes.c_uint64
    data = np.ascontiguousarray(values32, dtype="<f4").tobytes()
    return _xxhash.XXH3_64bits_withSeed(data, len(data), t)


def expected_checksum(size, steps, sim_id):
    total = 0
    for t in range(steps):
        total = (total + step_checksum(t, pulse(size, t, steps, sim_id))) % (1 << 64)
    return f"{total:016x}"


def check_example(cmd, mpi_ranks, size=1000, steps=5, sim_id=2, extra_env=None):
    server = FakeServer(fields={"temperature": size})
    env = client_env(server, sim_id=sim_id, **(extra_env or {}))
    p = run(cmd, env, mpi_ranks=mpi_ranks)
    check(p.returncode == 0, "the example exits 0")
    received = sorted(server.steps(), key=lambda f: f["time_step"])
    check([f["time_step"] for f in received] == list(range(steps)), f"{steps} steps arrived")
    for f in received:
        if not np.array_equal(values_of(f), pulse(size, f["time_step"], steps, sim_id)):
            raise Failure(f"step {f['time_step']} differs from the recomputed pulse")
    check(True, "every step equals the pulse recomputed here, bit for bit")
    got = 0
    for f in received:
        got = (got + step_checksum(f["time_step"], values_of(f))) % (1 << 64)
    check(f"{got:016x}" == expected_checksum(size, steps, sim_id),
          "checksum of what arrived = checksum computed here (as the real server's summary)")
    check(server.ends == [1], "end reached the server")


def scenario_example_c():
    check_example([os.environ["TOY_SOLVER_C"], "--steps", "5", "--size", "1000"], mpi_ranks=2)


def scenario_example_fortran():
    check_example([os.environ["TOY_SOLVER_F"], "5", "1000"], mpi_ranks=2)


def scenario_example_python():
    py = ["/usr/bin/python3", os.environ["TOY_SOLVER_PY"], "--steps", "5", "--size", "1000"]
    check_example(py, mpi_ranks=2)
    # Without MPI at all: the no-MPI path must work in a process that never
    # initialized MPI (mpi4py not even imported).
    check_example(py + ["--no-mpi"], mpi_ranks=None, sim_id=4)


def scenario_python_errors():
    code = ("import melissa_api\n"
            "try:\n    melissa_api.send('temperature', [1.0])\n"
            "except melissa_api.Error as e:\n    print('status', e.status, e)\n"
            "melissa_api.init('temperature', 3)\n"
            "try:\n    melissa_api.send('temperature', [1.0, 2.0])\n"
            "except melissa_api.Error as e:\n    print('status', e.status, e)\n"
            "melissa_api.send('temperature', [1.0, 2.0, 3.0])\n"
            "melissa_api.finalize()\n")
    server = FakeServer(fields={"temperature": 3})
    p = run(["/usr/bin/python3", "-c", code], client_env(server))
    check(p.returncode == 0, "the Python client exits 0")
    check("status -5" in p.stdout and "called before melissa_init" in p.stdout,
          "send before init raises melissa_api.Error with the library's message")
    check("has local size 3, got 2 values" in p.stdout, "a wrong array size raises before sending")
    check(len(server.steps()) == 1, "the valid step arrived")


def scenario_python_finds_library():
    # The configured module in the build folder sits next to libmelissa-api.so:
    # without MELISSA_API_LIB it must find the library there.
    build_api = os.path.dirname(os.environ["MELISSA_API_LIB"])
    server = FakeServer(fields={"temperature": 2})
    env = client_env(server)
    env.pop("MELISSA_API_LIB", None)
    env["PYTHONPATH"] = build_api
    code = ("import melissa_api, os\n"
            "print('loaded', melissa_api._lib._name)\n"
            "melissa_api.init('temperature', 2)\n"
            "melissa_api.send('temperature', [0.5, 1.5])\n"
            "melissa_api.finalize()\n")
    p = run(["/usr/bin/python3", "-c", code], env)
    check(p.returncode == 0 and f"loaded {build_api}/libmelissa-api.so" in p.stdout,
          "melissa_api finds libmelissa-api.so next to itself")
    check_stream(server, 1, 2)
    env["MELISSA_API_LIB"] = "/nonexistent/libmelissa-api.so"
    p = run(["/usr/bin/python3", "-c", "import melissa_api"], env)
    check(p.returncode != 0 and "Set MELISSA_API_LIB" in p.stderr
          and "/nonexistent/libmelissa-api.so (missing)" in p.stderr,
          "a wrong MELISSA_API_LIB is an ImportError naming what was tried")


def scenario_cpp_wrapper():
    server = FakeServer(fields={"temperature": 3})
    p = run([os.environ["API_TEST_CPP"]], client_env(server, sim_id=5))
    check(p.returncode == 0, "every check of the C++ wrapper passed")
    check_stream(server, 2, 3, sim_id=5)


SCENARIOS = {name[len("scenario_"):]: fn for name, fn in globals().items()
             if name.startswith("scenario_")}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print("usage: test_api_client.py " + "|".join(SCENARIOS))
        return 2
    name = sys.argv[1]
    print(f"scenario {name}")
    try:
        SCENARIOS[name]()
    except (Failure, subprocess.TimeoutExpired) as e:
        print(f"FAIL: {e}")
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
