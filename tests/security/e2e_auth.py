"""The trust promises of a study, tried as an adversarial local user would
(real melissa-run, melissa-server and clients on the local backend):

  ports   only holders of the study's key reach its CAF ports (launcher,
          shell endpoint): plain CAF, TLS with another study's key and another
          Unix user are refused, the study's own key is answered (the control);
          a CAF header announcing 1 GiB does not grow melissa-run; on the
          client port a step header before hello is refused from its header
          (the server does not grow), forged sessions (a simulation outside
          the design, a real simulation with a wrong ticket) are refused, an
          idle connection is closed and does not delay the end; the study then
          completes with every simulation
  exit0   a client that exits 0 without melissa_finalize is a failed attempt,
          retried; the study completes
  short   a client that ends after 2 of its 6 steps is told so and retried
  long    a client that sends a 7th step of 6 is refused and retried
  inject  a peer holding the study's key (a buggy or compromised server) asks
          for a simulation whose "parameters" carry a command-line option:
          the launcher refuses it and stops the study; no option reaches a job
  dataset a client that crashes after melissa_finalize: its dataset file
          holds exactly what it sent (a retry, if its exit overtook the
          server's confirmation, only sends duplicates); a retry after a finalize (standalone server) leaves the file as
          it was, its steps counted as duplicates

    e2e_auth.py ports|exit0|short|long
"""
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

RUN = os.path.join(BUILD, "apps", "melissa-run", "melissa-run")
SHELL = os.path.join(BUILD, "apps", "melissa-shell", "melissa-shell")
PROBE = os.path.join(BUILD, "tests", "security", "caf_probe")
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "misbehaving_client.py")
API_LIB = os.environ.get("MELISSA_API_LIB", os.path.join(BUILD, "api", "libmelissa-api.so"))
API_PY = os.path.join(SOURCE, "api", "python")
CLIENT_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def write_study(work, sims, behaviour, steps=6, job_limit=2, sleep=0.0, sink="count"):
    path = os.path.join(work, "study.toml")
    with open(path, "w") as f:
        f.write(f"""[study]
name = "trust"
output_dir = "{work}/out"
seed = 5
[launcher]
job_limit = {job_limit}
max_retries = 2
poll_interval = 0.2
[server]
sink = "{sink}"
[client]
command = ["{CLIENT_PYTHON}", "{CLIENT}"]
steps = {steps}
env = {{ MELISSA_API_LIB = "{os.path.abspath(API_LIB)}", PYTHONPATH = "{os.path.abspath(API_PY)}", MELISSA_TEST_BEHAVIOUR = "{behaviour}", MELISSA_TEST_STEPS = "{steps}", MELISSA_TEST_SLEEP = "{sleep}" }}
[parameters]
names = ["a", "b"]
bounds = [0, 1]
count = {sims}
[[fields]]
name = "u"
size = 16
""")
    return path


def run_study(work, sims, behaviour, timeout=120, **kw):
    study = write_study(work, sims, behaviour, **kw)
    p = subprocess.run([RUN, study], capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    summary = json.load(open(os.path.join(work, "out", "summary.json")))
    return p.returncode, out, summary


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def server_process(out):
    for pid in os.listdir("/proc"):
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"melissa-server") and out.encode() in argv:
            return int(pid)
    print(subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout[-3000:])
    fail("no melissa-server process for " + out)


def wait_for(pattern, path, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            m = re.search(pattern, open(path).read())
            if m:
                return m
        time.sleep(0.1)
    fail(f"'{pattern}' never appeared in {path}")


def probe(*args, user=None):
    argv = [PROBE, *map(str, args)]
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip()


def read_frame(sock, timeout=15):
    """One frame of the client protocol: (type, payload text); None when closed."""
    sock.settimeout(timeout)
    header = b""
    while len(header) < 40:
        chunk = sock.recv(40 - len(header))
        if not chunk:
            return None
        header += chunk
    length, magic, ftype, dtype = struct.unpack_from("<IIHH", header)
    payload = b""
    want = length + 4 - 40
    while len(payload) < want:
        chunk = sock.recv(want - len(payload))
        if not chunk:
            break
        payload += chunk
    return ftype, payload.decode(errors="replace")


def frame(ftype, dtype, sim, attempt, count, payload=b"", step=0, field=0, payload_bytes=None):
    """A frame of docs/protocol.md: u32 length of what follows, magic, type,
    dtype, sim, attempt, step, field, reserved, u64 count; then the payload."""
    body = struct.pack("<IHHIIIIIQ", 0x41534C4D, ftype, dtype, sim, attempt, step, field, 0, count)
    size = len(payload) if payload_bytes is None else payload_bytes
    return struct.pack("<I", len(body) + size) + body + payload


def hello(sim, attempt, ticket):
    text = f"version=1\nclient_ranks=1\nticket={ticket}\n".encode()
    return frame(1, 3, sim, attempt, len(text), text)


def test_ports():
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "out")
        os.chmod(work, 0o755)  # another user may walk in, as on a shared file system
        study = write_study(work, 4, "slow", steps=10, sleep=1.0)
        run = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log = os.path.join(out, "launcher.log")
        launcher_port = int(wait_for(r"launcher port (\d+)", log).group(1))
        server_host, server_port = wait_for(r"server rank 0 is up at ([^:\s]+):(\d+)", log).groups()
        wait_for(r"running 4 simulations", log)
        shell_json = json.load(open(os.path.join(out, "shell.json")))
        shell_port, token = shell_json["port"], shell_json["token"]
        check(oct(os.stat(os.path.join(out, ".melissa", "study.key")).st_mode & 0o777) == "0o600",
              "the study's key is readable by its owner only")

        # --- the launcher's port ---
        rc, text = probe("127.0.0.1", launcher_port, "plain")
        check(rc == 3 and "REFUSED" in text, f"launcher port, plain CAF: refused ({text})")
        rc, text = probe("127.0.0.1", launcher_port, "other-key", os.path.join(work, "other"))
        check(rc == 3 and "REFUSED" in text, f"launcher port, another study's key: refused ({text})")
        rc, text = probe("127.0.0.1", launcher_port, "study-key", out)
        check(rc == 0 and '"ok":true' in text.replace(" ", ""),
              "launcher port, the study's key: answered (the control)")
        rc, text = probe("127.0.0.1", launcher_port, "plain", user="65534")
        check(rc == 3, f"launcher port, another Unix user: refused ({text})")

        # --- the shell endpoint ---
        rc, text = probe("127.0.0.1", shell_port, "plain", "shell", token)
        check(rc == 3 and "REFUSED" in text, f"shell port with the right token but no key: refused ({text})")
        rc, text = probe("127.0.0.1", shell_port, "other-key", os.path.join(work, "other2"), "shell", token)
        check(rc == 3, f"shell port, another study's key: refused ({text})")
        rc, text = probe("127.0.0.1", shell_port, "study-key", out, "shell", token)
        check(rc == 0 and "running" in text, "shell port, the study's key and token: answered")
        p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", SHELL, out,
                            "-c", "status"], capture_output=True, text=True, timeout=60)
        check(p.returncode != 0 and "ermission denied" in p.stderr,
              f"melissa-shell as another user cannot attach ({p.stderr.strip()[:120]})")

        # --- memory before authentication: a CAF header announcing 1 GiB ---
        before = rss_kb(run.pid)
        s = socket.create_connection(("127.0.0.1", launcher_port))
        s.sendall(bytes([0, 0, 0, 0, 0x40, 0, 0, 0x40]) + bytes(24))
        time.sleep(1.5)
        grown = rss_kb(run.pid) - before
        check(grown < 64 * 1024, f"a 1 GiB CAF header grows melissa-run by {grown} KB only")
        s.close()

        # --- the client port: a big step header before hello ---
        server_pid = server_process(out)
        before = rss_kb(server_pid)
        s = socket.create_connection((server_host, int(server_port)))
        # Header only: 64 MB of float32 announced (within server.max_frame_mb).
        s.sendall(frame(5, 1, 0, 1, 1 << 24, payload_bytes=4 << 24))
        f = read_frame(s)
        check(f is not None and f[0] == 8 and "expected hello" in f[1],
              f"a step header before hello is refused ({f})")
        time.sleep(0.5)
        grown = rss_kb(server_pid) - before
        check(grown < 16 * 1024, f"and the server grew by {grown} KB only")
        s.close()

        # --- forged sessions ---
        s = socket.create_connection((server_host, int(server_port)))
        s.sendall(hello(9999, 1, "00" * 16))
        f = read_frame(s)
        check(f is not None and f[0] == 8 and "not in the study" in f[1],
              f"a session for simulation 9999 is refused ({f and f[1]})")
        s.close()
        s = socket.create_connection((server_host, int(server_port)))
        s.sendall(hello(0, 1, "00" * 16))
        f = read_frame(s)
        check(f is not None and f[0] == 8 and "refused" in f[1],
              f"a session for simulation 0 with a forged ticket is refused ({f and f[1]})")
        s.close()

        # --- idle connections: closed after the handshake timeout (10 s), and
        # one opened later, still idle at the end, does not delay it ---
        idle = socket.create_connection((server_host, int(server_port)))
        t_idle = time.time()
        f = read_frame(idle, timeout=30)
        waited = time.time() - t_idle
        check(f is not None and f[0] == 8 and "handshake timeout" in f[1] and 8 < waited < 14,
              f"an idle connection is closed after the handshake timeout ({waited:.1f} s, {f})")
        idle2 = socket.create_connection((server_host, int(server_port)))
        t_end = time.time()
        try:
            rc = run.wait(timeout=120)
        except subprocess.TimeoutExpired:
            fail("the study did not end within 120 s")
        output = run.stdout.read()
        summary = json.load(open(os.path.join(out, "summary.json")))
        sims = summary["simulations"]
        check(rc == 0, f"the study succeeded (exit {rc})")
        check(time.time() - t_end < 30, f"it ended {time.time() - t_end:.1f} s after the idle connection")
        check(sims["completed"] == 4 and sims["failed"] == 0,
              f"every simulation completed ({sims})")
        # The one place the token may appear: the dashboard's URL on the
        # user's terminal (the monitor's cookie link); never in launcher.log.
        terminal = "\n".join(line for line in output.splitlines() if "dashboard: http" not in line)
        launcher_log = open(os.path.join(out, "launcher.log")).read()
        check("ticket" not in json.dumps(summary) and token not in terminal and token not in launcher_log,
              "no ticket or token in the summary, launcher.log or the output (but the dashboard URL)")
        check("dashboard: http" in launcher_log and "monitor.json" in launcher_log,
              "launcher.log names the dashboard's address and where its token is")
        idle2.close()


def test_retried(behaviour, expect_in_output):
    with tempfile.TemporaryDirectory() as work:
        rc, out, summary = run_study(work, 2, behaviour)
        sims = summary["simulations"]
        check(rc == 0, f"{behaviour}: the study succeeded (exit {rc})")
        check(sims["completed"] == 2 and sims["retries"] == 2,
              f"{behaviour}: both simulations completed after one retry each ({sims})")
        job_errors = ""
        for name in sorted(os.listdir(os.path.join(work, "out", "jobs"))):
            if name.endswith(".err"):
                job_errors += open(os.path.join(work, "out", "jobs", name)).read()
        check(expect_in_output in out + job_errors,
              f"{behaviour}: the client was told '{expect_in_output}'"
              + ("" if expect_in_output in out + job_errors else f"\n--- output:\n{out[-1500:]}\n--- jobs' stderr:\n{job_errors[-1500:]}"))
        attempts = sorted((j["sim_id"], j["attempt"], j["state"]) for j in summary["jobs"] if j["kind"] == "client")
        check([a for a in attempts if a[1] == 2 and a[2] == "completed"] and len(attempts) == 4,
              f"{behaviour}: two attempts per simulation, the second completed ({attempts})")
        server = summary["server"][0]
        check(server["steps_stored"] == 2 * 6, f"{behaviour}: exactly 12 steps stored ({server['steps_stored']})")


def test_inject():
    with tempfile.TemporaryDirectory() as work:
        out = os.path.join(work, "out")
        target = os.path.join(work, "injected")
        study = write_study(work, 2, "slow", steps=10, sleep=0.5)
        run = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log = os.path.join(out, "launcher.log")
        port = int(wait_for(r"launcher port (\d+)", log).group(1))
        wait_for(r"running 2 simulations", log)
        rc, text = probe("127.0.0.1", port, "study-key", out, "submit", 1, f"1,--output={target}")
        check(rc == 0, f"the forged request was sent ({text})")
        rc = run.wait(timeout=60)
        output = run.stdout.read()
        check(rc == 1, f"melissa-run stops the study (exit {rc})")
        check("bad parameters: parameter 1 is not a finite number: '--output=" in output,
              "and says why: the parameters are not numbers")
        jobs = open(log).read()
        check(not os.path.exists(target) and "--output=" + target not in json.dumps(
            json.load(open(os.path.join(out, "summary.json")))["jobs"]),
              "no job got the option")


def dataset_rows(out, sim):
    import numpy as np
    return np.load(os.path.join(out, "dataset", f"sim_{sim:06d}", "u.npy"))


def expected_rows(a, b, steps=6):
    import numpy as np
    return np.array([[np.float32(a + b * t)] * 16 for t in range(steps)], dtype=np.float32)


def test_dataset_retry():
    import numpy as np
    with tempfile.TemporaryDirectory() as work:
        # Under melissa-run: a crash after melissa_finalize. The simulation is
        # complete when the server's confirmation reaches the launcher before
        # the job's exit (no retry), else the retry only resends duplicates:
        # either way the files hold exactly what attempt 1 sent.
        rc, out, summary = run_study(work, 2, "crash-after-finalize-first", sink="dataset")
        sims = summary["simulations"]
        check(rc == 0 and sims["completed"] == 2 and sims["failed"] == 0,
              f"a crash after finalize: both simulations complete (exit {rc}, {sims})")
        # (A retry, if any, may also find the server already gone: nothing to redo.)
        server = summary["server"][0]
        check(server["steps_stored"] == 12,
              f"exactly 12 steps stored ({server['steps_stored']} stored, "
              f"{server['duplicates']} duplicates, {sims['retries']} retries)")
        design = subprocess.run([SERVER, "--config", os.path.join(work, "out", "study.resolved.toml"),
                                 "--print-design"], capture_output=True, text=True, check=True).stdout
        for line in design.strip().splitlines()[1:]:
            sim, a, b = line.split(",")
            data = dataset_rows(os.path.join(work, "out"), int(sim))
            check(np.array_equal(data, expected_rows(float(a), float(b))),
                  f"simulation {sim}: the dataset holds exactly the 6 steps the solver sent")

    with tempfile.TemporaryDirectory() as work:
        # A retry after a finalize (attempt 2 resends every step, other values):
        # the finished file is never reopened; the resent steps are duplicates.
        study = write_study(work, 2, "normal", sink="dataset")
        out = os.path.join(work, "out")
        address_file = os.path.join(work, "address")
        server = start([SERVER, "--config", study, "--output", out, "--address-file", address_file],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while not os.path.exists(address_file) and time.time() < deadline:
            time.sleep(0.05)
        address = open(address_file).read().strip()
        env = dict(os.environ, MELISSA_SERVER_ADDRESSES=address, MELISSA_SIM_ID="0",
                   MELISSA_API_LIB=os.path.abspath(API_LIB), PYTHONPATH=os.path.abspath(API_PY))
        for attempt, (a, b) in ((1, (1.0, 2.0)), (2, (0.0, 0.0))):
            p = subprocess.run([CLIENT_PYTHON, CLIENT, str(a), str(b)], env=dict(env, MELISSA_ATTEMPT=str(attempt)),
                               capture_output=True, text=True, timeout=60)
            check(p.returncode == 0, f"attempt {attempt} ran to its end ({p.stderr.strip()[-200:]})")
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        summary = json.load(open(os.path.join(out, "server-summary.rank0.json")))
        check(np.array_equal(dataset_rows(out, 0), expected_rows(1.0, 2.0)),
              "after the retry the file still holds attempt 1's 6 steps")
        check(summary["duplicates"] == 6 and summary["steps_stored"] == 6,
              f"the 6 resent steps were dropped as duplicates ({summary['steps_stored']} stored, "
              f"{summary['duplicates']} duplicates)")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "ports":
        test_ports()
    elif mode == "exit0":
        test_retried("exit0-first", "exited 0 but the server does not hold all its time steps")
    elif mode == "short":
        test_retried("short-first", "time steps missing")
    elif mode == "long":
        test_retried("long-first", "is beyond the study's 6 steps")
    elif mode == "inject":
        test_inject()
    elif mode == "dataset":
        test_dataset_retry()
    else:
        fail("unknown mode " + mode)
