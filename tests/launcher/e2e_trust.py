"""What melissa-run writes is what happened (real processes, local backend):
  normal    a clean study: summary state "done", exit_code 0, paused false, and
            the dataset files complete under their final names
  sigterm   SIGTERM in the middle: exit 143, summary state "interrupted" and
            exit_code 143, the last log line says so
  failing   one simulation always fails: exit 3, state "failed", the message
            does not say "all N simulations completed"
  diskfull  the dataset directory (a 1 MiB tmpfs) fills up: the study stops
            with the path and "No space left on device", exit 1, no simulation
            blamed or retried, summary.json valid (skipped, 77, without mount)
  lock      a second melissa-run on the same output directory is refused,
            naming the directory and the first one's pid

    e2e_trust.py normal|sigterm|failing|diskfull|lock
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403


def study_file(work, sims, steps, grid=16, command=None, server=None, max_retries=1, job_limit=2):
    server = server or {}
    return write_study(
        work,
        study={"name": "trust", "seed": 3},
        launcher={"job_limit": job_limit, "max_retries": max_retries, "poll_interval": 0.2},
        server={"port": None, **server},
        # client.steps where the sink requires it (the count studies run unchecked, as before).
        client={"command": command or [HEAT, "--grid", str(grid), "--steps", str(steps)], "ranks": None,
                "steps": steps if server.get("sink") in ("train", "dataset") else None},
        parameters={"bounds": None, "count": sims},
        fields=[{"name": "temperature", "size": grid * grid}])


def run(study, timeout=120):
    p = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("melissa-run did not finish")
    print(out)
    return p.returncode, out


def summary_of(work):
    with open(os.path.join(work, "out", "summary.json")) as f:
        return json.load(f)


def last_line(out):
    lines = [l for l in out.splitlines() if l.strip()]
    return lines[-1] if lines else ""


mode = sys.argv[1]
work = tmpdir("trust-" + mode)

if mode == "normal":
    sims, steps, grid = 3, 5, 16
    study = study_file(work, sims, steps, grid, server={"sink": "dataset"})
    rc, out = run(study)
    check(rc == 0, "exit 0")
    s = summary_of(work)
    check(s["state"] == "done", f"state done (got {s['state']!r})")
    check(s["exit_code"] == 0, "exit_code 0")
    check(s["paused"] is False, "not paused after a normal run")
    check(s["message"] == f"all {sims} simulations completed", f"message (got {s['message']!r})")
    check(f"all {sims} simulations completed" in last_line(out), "the last log line says so")
    import numpy as np
    for sim in range(sims):
        d = os.path.join(work, "out", "dataset", "sim_%06u" % sim)
        names = sorted(os.listdir(d))
        check(names == ["parameters.npy", "temperature.npy"], f"sim {sim}: final names only ({names})")
        t = np.load(os.path.join(d, "temperature.npy"))
        check(t.shape == (steps, grid * grid), f"sim {sim}: shape {t.shape}")
    check(not os.path.exists(os.path.join(work, "out", ".lock")) or
          open(os.path.join(work, "out", ".lock")).read().strip().isdigit(), "lock file holds a pid")

elif mode == "sigterm":
    study = study_file(work, sims=6, steps=100000, grid=16, job_limit=2)
    p = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = os.path.join(work, "out", "launcher.log")
    deadline = time.time() + 60
    while time.time() < deadline and not (os.path.exists(log) and "running 6 simulations" in open(log).read()):
        time.sleep(0.2)
    time.sleep(1.0)
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=60)
    print(out)
    check(p.returncode == 143, f"exit 143 = 128 + SIGTERM (got {p.returncode})")
    s = summary_of(work)
    check(s["exit_code"] == 143, f"summary exit_code 143 (got {s['exit_code']})")
    check(s["state"] == "interrupted", f"state interrupted (got {s['state']!r})")
    check(s["paused"] is False, "paused false: stopping is not a pause")
    check("interrupted by SIGTERM" in last_line(out), "the last log line says SIGTERM")
    check("all 6 simulations completed" not in out, "no claim that all completed")

elif mode == "failing":
    fail_one = ["sh", "-c", 'if [ "$MELISSA_SIM_ID" = 1 ]; then echo failing on purpose >&2; exit 5; fi; '
                f'exec {HEAT} --grid 16 --steps 5 "$@"', "sh"]
    study = study_file(work, sims=3, steps=5, command=fail_one, max_retries=1)
    rc, out = run(study)
    check(rc == 3, f"exit 3 (got {rc})")
    s = summary_of(work)
    check(s["exit_code"] == 3 and s["state"] == "failed", f"exit_code 3, state failed (got {s['exit_code']}, {s['state']!r})")
    check("all 3 simulations completed" not in s["message"], f"message does not claim all ({s['message']!r})")
    check("2 of 3 simulations completed, 1 failed" in s["message"], f"message has the counts ({s['message']!r})")
    check("2 of 3 simulations completed, 1 failed" in last_line(out), "the last log line too")
    check(s["failed_simulations"] == [1], "simulation 1 failed")

elif mode == "diskfull":
    full = os.path.join(work, "full")
    os.makedirs(full)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", full], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"SKIP: cannot mount a tmpfs on {full} ({r.stderr.strip()}); needs root and mount rights")
        sys.exit(77)
    try:
        # 4 simulations x 40 steps x 64x64 float32 = 2.5 MiB > 1 MiB.
        study = study_file(work, sims=4, steps=40, grid=64, job_limit=2, max_retries=3,
                           server={"sink": "dataset", "dataset_dir": full})
        rc, out = run(study)
        check(rc == 1, f"exit 1 (got {rc})")
        check("No space left on device" in out, "the error is named")
        check(full in out, "the path is named")
        check("restarting it as attempt" not in out, "no simulation retried for it")
        s = summary_of(work)  # valid JSON: the output directory is not the full one
        check(s["state"] == "failed" and s["exit_code"] == 1, f"state failed, exit_code 1 ({s['state']}, {s['exit_code']})")
        check("No space left on device" in s["message"] and full in s["message"], f"message ({s['message']!r})")
        check(s["simulations"]["retries"] == 0 and s["simulations"]["failed"] == 0,
              f"no simulation blamed or retried ({s['simulations']})")
        finals = [f for root, _, files in os.walk(full) for f in files if f == "temperature.npy"]
        for root, _, files in os.walk(full):
            for f in files:
                if f == "temperature.npy":
                    import numpy as np
                    t = np.load(os.path.join(root, f))
                    check(t.shape == (40, 64 * 64), f"{root}: a final file is complete")
        print(f"{len(finals)} simulation(s) complete before the disk filled")
    finally:
        subprocess.run(["umount", "-l", full])

elif mode == "lock":
    study = study_file(work, sims=4, steps=100000, grid=16, job_limit=1)
    first = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = os.path.join(work, "out", ".lock")
    shell_json = os.path.join(work, "out", "shell.json")
    deadline = time.time() + 30
    while time.time() < deadline and not (os.path.exists(lock) and open(lock).read().strip()
                                          and os.path.exists(shell_json)):
        time.sleep(0.1)
    second = subprocess.run([RUN, study], capture_output=True, text=True, timeout=30)
    print(second.stderr)
    check(second.returncode == 1, f"the second melissa-run exits 1 (got {second.returncode})")
    check(os.path.join(work, "out") in second.stderr, "names the directory")
    check(f"pid {first.pid}" in second.stderr, f"names the pid {first.pid} holding it")
    check(first.poll() is None, "the first one is still running")
    first.send_signal(signal.SIGINT)
    out, _ = first.communicate(timeout=60)
    check(first.returncode == 130, f"the first ends on SIGINT with 130 (got {first.returncode})")
    check(summary_of(work)["exit_code"] == 130, "its summary says 130")

else:
    fail("unknown mode " + mode)
print("OK")
