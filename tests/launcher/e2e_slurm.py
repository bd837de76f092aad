"""melissa-run through a real one-node Slurm (started by tests/slurm/start-slurm.sh):
  plain    a 6-simulation heat study, server and clients as sbatch jobs
  sis      the same in schedule-in-schedule mode (clients as job steps)
  timeout  a client exceeding its 1-minute time limit is reported failed
           (TIMEOUT) and retried
  array    8 simulations, job_limit 6, slurm_array_size 4: the first 6 go
           as 2 job arrays; every simulation completes exactly once and
           sbatch (counted by a wrapper on PATH) runs fewer times than jobs
Exit 77 (skip) when Slurm cannot be started here (not root, packages missing).

    e2e_slurm.py plain|sis|timeout
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

RUN = os.path.join(BUILD, "apps", "melissa-run", "melissa-run")
start_slurm = subprocess.run(["bash", os.path.join(SOURCE, "tests", "slurm", "start-slurm.sh")],
                             capture_output=True, text=True)
if start_slurm.returncode == 77:
    print("skipped: " + start_slurm.stderr.strip())
    sys.exit(77)
if start_slurm.returncode != 0:
    fail("cannot start Slurm: " + start_slurm.stderr)

mode = sys.argv[1]
work = tmpdir("slurm-" + mode)
sims, steps = 6, 20
command = [HEAT, "--grid", "32", "--steps", str(steps)]
extra = ""
if mode == "sis":
    extra = "schedule_in_schedule = true\nallocation_time = \"00:10:00\"\n"
if mode == "timeout":
    sims = 2
    command = [os.path.join(SOURCE, "tests", "launcher", "slow_first_attempt.sh"), "--grid", "32",
               "--steps", str(steps)]
    extra = '[launcher.client_job]\ntime = "00:01:00"\n'
job_limit = 3
env = dict(os.environ)
if mode == "array":
    sims, job_limit = 8, 6
    extra = "slurm_array_size = 4\n"
    # sbatch through a wrapper that logs each call, then runs the real one.
    import shutil
    real = shutil.which("sbatch")
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    with open(os.path.join(bindir, "sbatch"), "w") as f:
        f.write(f'#!/bin/sh\necho "$*" >> {work}/sbatch.log\nexec {real} "$@"\n')
    os.chmod(os.path.join(bindir, "sbatch"), 0o755)
    env["PATH"] = bindir + ":" + env["PATH"]
study = os.path.join(work, "study.toml")
launcher_keys, client_job = (extra, "") if mode != "timeout" else ("", extra)
with open(study, "w") as f:
    f.write(f"""[study]
name = "slurm-{mode}"
output_dir = "{work}/out"

[launcher]
backend = "slurm"
job_limit = {job_limit}
max_retries = 2
poll_interval = 0.5
server_timeout = 120
{launcher_keys}
{client_job}
[client]
command = {json.dumps(command)}
ranks = 2
env = {{ MELISSA_TEST_HEAT = "{HEAT}" }}

[parameters]
names = ["T0", "T1", "T2", "T3", "T4"]
count = {sims}

[[fields]]
name = "temperature"
size = 1024
""")
p = subprocess.run([RUN, study], capture_output=True, text=True, timeout=400, env=env)
print(p.stdout, p.stderr)
check(p.returncode == 0, f"melissa-run exits 0 (got {p.returncode})")
summary = json.load(open(os.path.join(work, "out", "summary.json")))
check(summary["server"][0]["steps_stored"] == sims * steps, f"exactly {sims} x {steps} steps stored")
check(summary["simulations"]["completed"] == sims, f"{sims} simulations completed")
clients = [j for j in summary["jobs"] if j["kind"] == "client"]
check(all(j["backend_id"] for j in clients), "every client has a Slurm job id")
if mode == "timeout":
    first = [j for j in clients if j["sim_id"] == 0 and j["attempt"] == 1][0]
    check(first["state"] == "failed" and first["raw_state"] == "TIMEOUT",
          f"attempt 1 of sim 0 failed with Slurm's TIMEOUT ({first['state']}, {first['raw_state']})")
    check(any(j["sim_id"] == 0 and j["attempt"] == 2 and j["state"] == "completed" for j in clients),
          "its retry completed")
if mode == "array":
    done = sorted(j["sim_id"] for j in clients if j["state"] == "completed")
    check(done == list(range(sims)), f"every simulation completed exactly once ({done})")
    check(len(clients) == sims, f"{sims} client jobs, no retry ({len(clients)})")
    calls = open(os.path.join(work, "sbatch.log")).read().splitlines()
    arrays = [c for c in calls if "--array=" in c]
    tasks = sum(int(c.split("--array=0-")[1].split()[0]) + 1 for c in arrays)
    plain = len(calls) - len(arrays)  # the server's and single refills
    print(f"sbatch calls: {len(calls)} ({len(arrays)} arrays of {tasks} tasks, {plain} plain) for {sims} simulations")
    check(len(arrays) >= 2 and tasks >= 6, "the first 6 simulations went as job arrays")
    check(tasks + plain == sims + 1, "every client (and the server) submitted exactly once")
    check(len(calls) < sims + 1, "fewer sbatch calls than jobs")
    check(sum("_" in j["backend_id"] for j in clients) == tasks, "array tasks have ids <array>_<task>")
print("PASS")
