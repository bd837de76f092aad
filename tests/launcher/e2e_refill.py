"""A job slot is refilled as soon as its client ends (issue 16): the local
backend tells the launcher of each exit at once (a pidfd per job), so with
launcher.poll_interval = 60 (the largest allowed) and job_limit 1, five short
simulations run one after the other within seconds, not a minute apart.
Asserted on the job table of summary.json (its timestamps are the launcher's
own): every client's end is seen, and the next one submitted, far less than
poll_interval after the previous one ended; started_at is the submission
(before the end) and connected is true for every client.

    e2e_refill.py
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

POLL = 60
SIMS = 5
work = tmpdir("refill")
study = write_study(
    work,
    study={"name": "refill", "seed": 3},
    launcher={"job_limit": 1, "max_retries": 0, "poll_interval": POLL},
    server={"port": None},
    client={"command": [HEAT, "--grid", "16", "--steps", "5"], "ranks": 1},
    parameters={"bounds": None, "count": SIMS},
    fields=[{"name": "temperature", "size": 16 * 16}])
p = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
try:
    # Before the change: about SIMS x POLL seconds.
    out, _ = p.communicate(timeout=SIMS * POLL // 2)
except subprocess.TimeoutExpired:
    p.kill()
    fail("the study did not end within half the time polling alone would take")
print(out)
check(p.returncode == 0, f"melissa-run exits 0 (got {p.returncode})")
summary = json.load(open(os.path.join(work, "out", "summary.json")))
clients = sorted((j for j in summary["jobs"] if j["kind"] == "client"), key=lambda j: j["submitted_at"])
check(len(clients) == SIMS and all(j["state"] == "completed" for j in clients),
      f"{SIMS} clients completed: {[j['state'] for j in clients]}")
for j in clients:
    check(j["connected"] is True, f"job {j['id']} connected (it sent its steps)")
    check(j["started_at"] == j["submitted_at"], f"job {j['id']}: a local job starts when submitted")
    check(j["started_at"] < j["ended_at"], f"job {j['id']}: started_at < ended_at")
    # A heat run of 16x16, 5 steps takes well under a second; the end is seen
    # without waiting for the 60 s poll.
    check(j["ended_at"] - j["started_at"] < POLL / 4,
          f"job {j['id']}: its end seen {j['ended_at'] - j['started_at']:.2f} s after its start")
for prev, nxt in zip(clients, clients[1:]):
    gap = nxt["submitted_at"] - prev["ended_at"]
    check(0 <= gap < POLL / 4, f"job {nxt['id']} took the slot {gap:.2f} s after job {prev['id']} ended")
print("ok")
