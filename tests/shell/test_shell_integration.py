"""melissa-shell against a fake study (tests/shell/fake_study.cpp: a stub
launcher behind the real shell endpoint, published on loopback).

Runs the commands a user types, a wrong token, an unknown command, an idle
interactive session longer than the connection timeout (heartbeats keep it),
a study that freezes (SIGSTOP: the connection timeout notices) or is killed
(kill -9), and `stop`. Checks shell.json's mode 0600.
"""
import json
import atexit
import os
import pty
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import check, fail, start  # noqa: E402

SHELL = os.environ["MELISSA_SHELL"]
FAKE = os.environ["FAKE_STUDY"]
TOKEN = "0123456789abcdef0123456789abcdef"

work = tempfile.mkdtemp(prefix="melissa-shell-it-")
atexit.register(shutil.rmtree, work, True)
# History and anything else the shell might write under $HOME stays in the test directory.
ENV = dict(os.environ, HOME=work)


def start_study(name):
    """Starts a fake study in work/name; returns (process, dir, port, output lines)."""
    d = os.path.join(work, name)
    os.makedirs(d)
    p = start([FAKE, d, TOKEN], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = p.stdout.readline()
    if not line.startswith("ready "):
        fail(f"fake study {name} did not start: {line!r}")
    return p, d, int(line.split()[1])


def shell(*args, stdin=None, timeout=20):
    r = subprocess.run([SHELL, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                       env=ENV)
    return r.returncode, r.stdout, r.stderr


def next_event(p, expected):
    """Reads the fake study's output until the line 'event: <expected>'."""
    deadline = time.time() + 5
    while time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        if line.startswith("event: "):
            return line.strip() == "event: " + expected
    return False


t0 = time.time()
study, out, port = start_study("study")

# --- shell.json ---
path = os.path.join(out, "shell.json")
mode = stat.S_IMODE(os.stat(path).st_mode)
check(mode == 0o600, f"shell.json has mode 0600 (got {oct(mode)})")
with open(path) as f:
    info = json.load(f)
check(info == {"host": "127.0.0.1", "port": port, "token": TOKEN}, "shell.json holds host, port, token")

# --- status ---
rc, so, se = shell(out, "-c", "status")
check(rc == 0, f"status exits 0 (rc={rc}, stderr={se!r})")
lines = so.splitlines()
check(lines[0].split() == ["study:", "fake"] and lines[1].split() == ["state:", "running"],
      "status starts with the study and its state")
check(["job_limit:", "2"] in [l.split() for l in lines], "status shows job_limit 2")
check(["simulations.completed:", "1"] in [l.split() for l in lines], "status shows nested counts")

# --- jobs ---
rc, so, se = shell(out, "-c", "jobs running")
check(rc == 0, "jobs running exits 0")
rows = [l.split() for l in so.splitlines()]
check(rows[0][:5] == ["id", "kind", "sim", "attempt", "state"], "jobs prints a table header")
check([r[0] for r in rows[1:-1]] == ["0", "3", "4"] and all(r[4] == "running" for r in rows[1:-1]),
      "jobs running lists the running jobs only")
check(so.splitlines()[-1] == "3 jobs", "the table ends with the count")
rc, so, _ = shell(out, "-c", "job 2")
check(rc == 0 and "exit_code:    3" in so and "raw_state:    exited 3" in so, "job 2 shows its fields")
rc, so, se = shell(out, "-c", "job 99")
check(rc == 1 and "error: no job 99" in se, "job 99: the launcher's error, exit 1")

# --- set job_limit, as JSON ---
rc, so, se = shell(out, "--json", "-c", "set job_limit 7")
check(rc == 0 and json.loads(so) == {"ok": True, "job_limit": 7}, f"--json set job_limit 7: {so!r}")
check(next_event(study, "set job_limit 7"), "the launcher got set job_limit 7")
rc, so, _ = shell(out, "-c", "status")
check(["job_limit:", "7"] in [l.split() for l in so.splitlines()], "status now shows job_limit 7")
rc, so, se = shell(out, "--json", "-c", "status")
check(rc == 0 and json.loads(so)["job_limit"] == 7, "--json status is the launcher's JSON")
rc, so, se = shell(out, "-c", "set job_limit 0")
check(rc == 1 and "set job_limit expects an integer >= 1, got '0'" in se, "set job_limit 0 is refused")
rc, so, se = shell(out, "-c", "set seed 3")
check(rc == 1 and "cannot set 'seed'; settable keys: job_limit" in se, "set seed is refused, keys named")

# --- kill ---
rc, so, se = shell(out, "-c", "kill 3")
check(rc == 0 and so.strip() == "killed: 3", f"kill 3 answers (rc={rc}, {so!r}, {se!r})")
check(next_event(study, "kill 3"), "the launcher got kill 3")
rc, so, _ = shell(out, "-c", "jobs cancelled")
check(rc == 0 and [l.split()[0] for l in so.splitlines()[1:-1]] == ["3"], "job 3 is now cancelled")
rc, so, se = shell(out, "-c", "kill 9")
check(rc == 1 and "error: no running job 9" in se, "kill 9: the launcher's error, exit 1")
rc, so, se = shell(out, "-c", "kill x")
check(rc == 1 and "kill expects a job id, got 'x'" in se, "kill x: a clear parse error")

# --- pause / resume ---
rc, so, _ = shell(out, "-c", "pause")
check(rc == 0 and next_event(study, "pause"), "pause reaches the launcher")
rc, so, _ = shell(out, "-c", "status")
check(["paused:", "yes"] in [l.split() for l in so.splitlines()], "status shows paused: yes")
rc, so, _ = shell(out, "-c", "resume")
check(rc == 0 and next_event(study, "resume"), "resume reaches the launcher")
rc, so, _ = shell(out, "-c", "status")
check(["paused:", "no"] in [l.split() for l in so.splitlines()], "status shows paused: no")

# --- wrong token ---
rc, so, se = shell(out, "--token", "bad", "-c", "pause")
check(rc == 1 and "error: wrong token" in se and so == "", f"a wrong token is refused (rc={rc}, {se!r})")
rc, so, _ = shell(out, "-c", "status")
check(["paused:", "no"] in [l.split() for l in so.splitlines()], "the refused pause did nothing")
line = study.stdout.readline()
check("refused a command with a wrong token" in line, f"the study logs the refusal: {line.strip()!r}")

# --- unknown command ---
rc, so, se = shell(out, "-c", "frobnicate")
check(rc == 1 and "unknown command 'frobnicate'; try: help" in se and "set job_limit N" in so,
      "an unknown command: error and help, exit 1")
rc, so, se = shell(out, "-c", "help")
check(rc == 0 and "jobs [STATE]" in so, "help prints the commands")

# --- train, buffer, steering (the fake's canned figures) ---
rc, so, se = shell(out, "-c", "train")
rows = [l.split() for l in so.splitlines()]
check(rc == 0 and rows[0][:4] == ["rank", "state", "batches", "train"], f"train prints a table ({so!r}, {se!r})")
check(rows[1] == ["0", "training", "100", "0.0123", "0.0456", "285.2", "93%", "5234/120", "0.0005"],
      f"train: rank 0's line ({rows[1]})")
check(rows[2][:2] == ["1", "training"] and so.splitlines()[3].startswith("samples seen 2000,"),
      "train: rank 1's line, then the totals")
rc, so, se = shell(out, "-c", "buffer")
check(rc == 0 and "  policy:        reservoir\n" in so and "  histogram:     0:1234 1:3456" in so,
      f"buffer prints the policy and the histogram ({so!r})")
rc, so, se = shell(out, "-c", "steering")
check(rc == 0 and "σ per member:          0.1, 0.25, 0.125\n" in so and "resampled simulations: 12" in so,
      f"steering prints r, sigma, resampled ({so!r})")
rc, so, se = shell(out, "-c", "train --watch x")
check(rc == 1 and "train --watch expects seconds between 0.2 and 3600, got 'x'" in se,
      "train --watch x is refused")

# Ctrl-C ends a watch with status 0 (-c), and only the watch inside a session.
p = subprocess.Popen([SHELL, out, "-c", "train --watch 5"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, env=ENV)
check(p.stdout.readline().startswith("train, every 5s (Ctrl-C to stop), "), "a watch starts")
t = time.time()
p.send_signal(signal.SIGINT)
so, se = p.communicate(timeout=10)
check(p.returncode == 0 and time.time() - t < 3, f"Ctrl-C ends the watch, exit 0 (rc={p.returncode}, {se!r})")
p = subprocess.Popen([SHELL, out], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, env=ENV)
p.stdin.write("train --watch 5\n")
p.stdin.flush()
p.stdout.readline()  # greeting
check(p.stdout.readline().startswith("train, every 5s"), "a watch inside a session")
p.send_signal(signal.SIGINT)
p.stdin.write("jobs failed\nquit\n")
p.stdin.flush()
so, se = p.communicate(timeout=10)
check(p.returncode == 0 and "\n2   client  1    1        failed" in so,
      f"after Ctrl-C the session goes on (rc={p.returncode}, {se!r})")

# A watch through a pipe: one block per refresh until every rank is done.
rc, so, se = shell(out, "-c", "train --watch 0.2", timeout=30)
blocks = so.split("train, every 0.2s (Ctrl-C to stop), ")
check(rc == 0 and len(blocks) >= 3 and so.endswith("\ntraining is over\n"),
      f"train --watch refreshes until training is over (rc={rc}, {len(blocks) - 1} blocks, {se!r})")
check(" done " in blocks[-1] and " training " in blocks[1], "the last block shows the ranks done")
rc, so, se = shell(out, "--json", "-c", "train --watch 0.2")
answers = [json.loads(l) for l in so.splitlines()]
check(rc == 0 and answers and all(a["ok"] for a in answers) and answers[-1]["ranks"][0]["state"] == "done",
      "--json train --watch: one answer per line, the last one done")

# --- host:port ---
rc, so, se = shell(f"127.0.0.1:{port}", "-c", "status")
check(rc == 2 and "--token is required with host:port" in se, "host:port without --token: usage error")
rc, so, se = shell(f"127.0.0.1:{port}", "--token", TOKEN, "-c", "status")
check(rc == 2 and "--study-dir is required with host:port" in se,
      "host:port without --study-dir: usage error (the TLS key is in the study's directory)")
rc, so, se = shell(f"127.0.0.1:{port}", "--token", TOKEN, "--study-dir", out, "-c", "status")
check(rc == 0 and "fake" in so, "host:port with --token and --study-dir works")

# --- interactive, idle longer than the connection timeout ---
p = subprocess.Popen([SHELL, out, "--timeout", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, env=ENV)
p.stdin.write("status\n")
p.stdin.flush()
time.sleep(4)  # two connection timeouts: only heartbeats keep the session
p.stdin.write("jobs failed\n\nfoo\nquit\n")
p.stdin.flush()
so, se = p.communicate(timeout=10)
check(p.returncode == 0, f"interactive session ends with quit, exit 0 (rc={p.returncode}, {se!r})")
check(so.startswith("connected to study 'fake' at 127.0.0.1:"), "interactive session greets")
check("\n2   client  1    1        failed" in so, "jobs failed inside the session, after the idle time")
check("unknown command 'foo'" in se and so.count("set job_limit N") == 1,
      "an unknown command in a session prints help and goes on")
check(not os.path.exists(os.path.join(work, ".melissa_shell_history")),
      "no history file from a pipe")

# --- a frozen study: the connection timeout notices ---
p = subprocess.Popen([SHELL, out, "--timeout", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, env=ENV)
greeting = p.stdout.readline()
check(greeting.startswith("connected to"), "a second session connects")
os.kill(study.pid, signal.SIGSTOP)
time.sleep(4.5)
p.stdin.write("status\n")
p.stdin.flush()
so, se = p.communicate(timeout=15)
check(p.returncode == 3 and "lost the connection to the study at 127.0.0.1:" in se,
      f"a frozen study: lost connection, exit 3 (rc={p.returncode}, {se!r})")
t = time.time()
rc, so, se = shell(out, "--timeout", "2", "-c", "status")
took = time.time() - t
os.kill(study.pid, signal.SIGCONT)
check(rc == 3 and "cannot reach the study" in se and 1.5 < took < 8,
      f"connecting to a frozen study gives up after --timeout (rc={rc}, {took:.1f} s, {se!r})")

# --- stop ---
rc, so, se = shell(out, "-c", "stop")
check(rc == 0 and "stopping: yes" in so, f"stop answers (rc={rc}, {so!r}, {se!r})")
try:
    study.wait(timeout=10)
except subprocess.TimeoutExpired:
    fail("the fake study did not exit after stop")
check(study.returncode == 0, "the study exits after stop")
check(not os.path.exists(path), "shell.json is removed when the study ends")
rc, so, se = shell(out, "-c", "status")
check(rc == 3 and "no shell.json in" in se, "after the end: no shell.json, exit 3")
rc, so, se = shell(f"127.0.0.1:{port}", "--token", TOKEN, "--study-dir", out, "-c", "status")
check(rc == 3 and f"cannot reach the study at 127.0.0.1:{port}:" in se,
      f"after the end: cannot reach host:port, exit 3 ({se!r})")

# --- a killed study (kill -9) during a session ---
study2, out2, _ = start_study("study2")
p = subprocess.Popen([SHELL, out2], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, env=ENV)
check(p.stdout.readline().startswith("connected to"), "a session with a second study")
os.killpg(study2.pid, signal.SIGKILL)
study2.wait()
time.sleep(0.5)
p.stdin.write("status\n")
p.stdin.flush()
so, se = p.communicate(timeout=15)
check(p.returncode == 3 and "lost the connection" in se,
      f"a killed study: lost connection, exit 3 (rc={p.returncode}, {se!r})")

# --- on a terminal: readline, history 0600, a study that dies while the prompt waits ---
study3, out3, _ = start_study("study3")
pid, fd = pty.fork()
if pid == 0:
    os.execve(SHELL, [SHELL, out3], dict(ENV, TERM="dumb"))


def read_pty(seconds, until=None):
    text, end = b"", time.time() + seconds
    while time.time() < end and not (until and until in text):
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                text += os.read(fd, 4096)
            except OSError:  # the shell has exited
                break
    return text.decode(errors="replace")


check("melissa> " in read_pty(5, b"melissa> "), "a terminal gets the melissa> prompt")
os.write(fd, b"jobs failed\r")
check("exited 3" in read_pty(5, b"1 job"), "a command typed at the prompt is answered")
os.killpg(study3.pid, signal.SIGKILL)
study3.wait()
text = read_pty(5, b"it has ended")
_, status = os.waitpid(pid, 0)
check(os.waitstatus_to_exitcode(status) == 3 and "lost the connection" in text,
      "a study killed while the prompt waits: the shell says so by itself, exit 3")
history = os.path.join(work, ".melissa_shell_history")
check(stat.S_IMODE(os.stat(history).st_mode) == 0o600 and "jobs failed" in open(history).read(),
      "history saved in ~/.melissa_shell_history, mode 0600")

print(f"all shell integration checks passed in {time.time() - t0:.1f} s", flush=True)
