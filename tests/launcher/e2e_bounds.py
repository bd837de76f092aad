"""Values that are valid on paper but used to break a study, end to end on the
local backend (real processes), and failures the first attempt makes certain:
  slow-poll  launcher.poll_interval = 60 (the largest allowed): simulations are
             still submitted at once, and SIGTERM ends the study within seconds
             (exit 143, no client left)
  count      parameters.count = 10^9: melissa-run and melissa-server refuse it
             naming file, line and key (exit 2), neither aborts
  ranks      client.ranks beyond what the local backend can start: refused
             before anything runs, naming client.ranks
  refused    the clients send another field size than the study's: the study
             fails at once (no retry) with the server's reason in melissa-run's
             own output
  tail       a failed attempt's stderr reaches the launcher's log; a server
             that cannot start (missing validation set) has its reason in the
             study's message

    e2e_bounds.py slow-poll|count|ranks|refused|tail
"""
import json
import os
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403


def study_file(work, sims=4, grid=32, steps=20, field_size=None, server=None, command=None, marker="",
               count=None, poll_interval=0.2, **sections):
    server = server or {}
    return write_study(
        work,
        study={"name": "bounds", "seed": 3},
        launcher={"job_limit": 2, "max_retries": 3, "poll_interval": poll_interval},
        server={"port": None, **server},
        # client.steps where the sink requires it (the count studies run unchecked, as before).
        client={"command": command or [HEAT, "--grid", str(grid), "--steps", str(steps)], "ranks": 2,
                "env": {"MELISSA_TEST_MARKER": marker},
                "steps": steps if server.get("sink") in ("train", "dataset") else None},
        parameters={"bounds": None, "count": count if count is not None else sims},
        fields=[{"name": "temperature", "size": field_size if field_size is not None else grid * grid}],
        **sections)


def marked_pids(marker):
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"MELISSA_TEST_MARKER={marker}".encode() in f.read():
                    pids.append(int(pid))
        except OSError:
            pass
    return pids


def heat_running(marker):
    out = []
    for pid in marked_pids(marker):
        try:
            if open(f"/proc/{pid}/comm").read().strip() == "melissa-heat":
                out.append(pid)
        except OSError:
            pass
    return out


def run(argv, timeout):
    """Runs to the end: (exit status, output, seconds)."""
    t0 = time.time()
    p = start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        print(out)
        fail(f"{os.path.basename(argv[0])} did not end within {timeout} s")
    print(out)
    return p.returncode, out, time.time() - t0


mode = sys.argv[1]
work = tmpdir("bounds-" + mode)
marker = uuid.uuid4().hex

if mode == "slow-poll":
    study = study_file(work, sims=20, grid=100, steps=400, poll_interval=60, marker=marker)
    p = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while not heat_running(marker) and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    if p.poll() is not None:
        fail("melissa-run ended early: " + p.communicate()[0])
    # Before the fix nothing was submitted until the second poll, 60 s later.
    check(bool(heat_running(marker)), "simulations are submitted without waiting for poll_interval")
    time.sleep(0.5)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        fail("SIGTERM was not served within 10 s with poll_interval = 60")
    print(out)
    check(p.returncode == 143, f"melissa-run exits 143 after SIGTERM (got {p.returncode})")
    check(time.time() - t0 < 8, f"stopped within seconds ({time.time() - t0:.1f} s)")
    time.sleep(0.5)
    check(not marked_pids(marker), "no client process left")

elif mode == "count":
    study = study_file(work, count=1000000000)
    rc, out, _ = run([RUN, study], 60)
    check(rc == 2, f"melissa-run exits 2 (got {rc})")
    check(f"{study}:20:9: parameters.count: at most 1000000 simulations per study" in out,
          "melissa-run names file, line, column and key")
    check("would need about" in out, "and says how much memory the count would need")
    os.makedirs(os.path.join(work, "srv"), exist_ok=True)
    rc, out, _ = run([SERVER, "--config", study, "--output", os.path.join(work, "srv")], 60)
    check(rc == 2, f"melissa-server exits 2, it does not abort (got {rc})")
    check("parameters.count: at most 1000000" in out, "melissa-server says why")

elif mode == "ranks":
    study = study_file(work, marker=marker)
    text = open(study).read().replace("ranks = 2\n", "ranks = 100000\n")
    open(study, "w").write(text)
    rc, out, took = run([RUN, study], 60)
    check(rc == 1, f"melissa-run exits 1 (got {rc})")
    check("client.ranks = 100000 is more than the local backend runs on this machine" in out,
          "the message names client.ranks and the local limit")
    check(took < 10, f"refused at once ({took:.1f} s)")
    check(not os.path.exists(os.path.join(work, "out", "jobs", "1.out")), "nothing was started")

elif mode == "refused":
    # The study says 32x32 + 1 values; melissa-heat sends 32x32.
    study = study_file(work, sims=6, field_size=32 * 32 + 1, marker=marker)
    rc, out, took = run([RUN, study], 120)
    check(rc == 1, f"melissa-run exits 1 (got {rc})")
    check("was refused by the server" in out and "1024 values" in out,
          "melissa-run's own output has the server's reason")
    summary = json.load(open(os.path.join(work, "out", "summary.json")))
    attempts = [j["attempt"] for j in summary["jobs"] if j["kind"] == "client"]
    check(attempts and max(attempts) == 1, f"no simulation was restarted (attempts {attempts})")
    check("refused by the server" in summary["message"], "the summary's message says so")
    check(took < 60, f"failed at once ({took:.1f} s)")

elif mode == "tail":
    # A client that fails with its reason on stderr: the launcher's log quotes it.
    script = os.path.join(work, "fails.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\necho \"fails.sh: cannot read mesh.dat (the reason)\" >&2\nexit 3\n")
    os.chmod(script, 0o755)
    study = study_file(work, sims=1, command=[script], marker=marker)
    text = open(study).read().replace("ranks = 2\n", "ranks = 1\n").replace("max_retries = 3", "max_retries = 1")
    open(study, "w").write(text)
    rc, out, _ = run([RUN, study], 120)
    check(rc == 3, f"melissa-run exits 3, the simulation failed for good (got {rc})")
    check(out.count("cannot read mesh.dat (the reason)") >= 2,
          "each failed attempt's stderr is in melissa-run's output")
    log = open(os.path.join(work, "out", "launcher.log")).read()
    check("cannot read mesh.dat (the reason)" in log, "and in launcher.log")
    # A server that cannot start (its validation set is missing): its own
    # reason in the study's message, not only in jobs/1.err.
    work2 = tmpdir("bounds-tail-server")
    study = study_file(work2, sims=1, server={"sink": "train"}, marker=marker,
                       training={"validation_dir": f"{work2}/no-such-dataset"})
    rc, out, _ = run([RUN, study], 120)
    check(rc == 1, f"melissa-run exits 1 when the server cannot start (got {rc})")
    summary = json.load(open(os.path.join(work2, "out", "summary.json")))
    print("message:", summary["message"])
    check("no-such-dataset" in summary["message"], "the study's message quotes the server's own reason")

else:
    fail("unknown mode " + mode)
print("PASS")
