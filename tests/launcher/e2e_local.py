"""melissa-run end to end on the local backend (real processes):
  study   a 10-simulation heat study (32x32, job_limit 3) runs to completion;
          the summary reports 10 completed and exactly 10 x steps samples
  kill    SIGKILL 3 running clients at random times: the study completes,
          every step arrives exactly once, the summary shows the extra attempts
  stop    SIGSTOP one client: detected within client_timeout, killed, restarted
  missing a client executable that does not exist: a clear error, exit 1
  ctrl-c  SIGINT in the middle: exit 130, no process of the study left
  server  the server is killed with max_server_restarts = 0: the study fails
          (exit 1) with a clear message and no client is left (restarts:
          tests/checkpoint_keeper/e2e_restart.py)
  orphan  the launcher is killed: the server lets the running clients
          finish, writes its summary and stops on its own

    e2e_local.py study|kill|stop|missing|ctrl-c|server|orphan
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

RUN = os.path.join(BUILD, "apps", "melissa-run", "melissa-run")


def study_file(work, sims, steps, grid=32, job_limit=3, client_timeout=300, command=None, marker="",
               server_restarts=3):
    command = command or [HEAT, "--grid", str(grid), "--steps", str(steps)]
    path = os.path.join(work, "study.toml")
    with open(path, "w") as f:
        f.write(f"""[study]
name = "e2e"
output_dir = "{work}/out"
seed = 3

[launcher]
job_limit = {job_limit}
max_retries = 3
max_server_restarts = {server_restarts}
client_timeout = {client_timeout}
poll_interval = 0.2

[client]
command = {json.dumps(command)}
ranks = 2
env = {{ MELISSA_TEST_MARKER = "{marker}" }}

[parameters]
names = ["T0", "T1", "T2", "T3", "T4"]
count = {sims}

[[fields]]
name = "temperature"
size = {grid * grid}
""")
    return path


def marked_pids(marker):
    """Processes whose environment carries the study's marker (its clients)."""
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


def heat_pids(marker):
    return list(heat_jobs(marker).keys())


def heat_jobs(marker):
    """melissa-heat processes of the study: pid -> (sim id, attempt)."""
    out = {}
    for pid in marked_pids(marker):
        try:
            if open(f"/proc/{pid}/comm").read().strip() != "melissa-heat":
                continue
            env = dict(kv.split(b"=", 1) for kv in open(f"/proc/{pid}/environ", "rb").read().split(b"\0") if b"=" in kv)
            out[pid] = (int(env[b"MELISSA_SIM_ID"]), int(env[b"MELISSA_ATTEMPT"]))
        except (OSError, KeyError, ValueError):
            pass
    return out


def run_study(study, timeout=240):
    p = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p


def finish(p, timeout=240):
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        fail("melissa-run did not finish")
    return p.returncode, out


def check_exactly_once(work, sims, steps):
    summary = json.load(open(os.path.join(work, "out", "summary.json")))
    server = summary["server"][0]
    check(server["steps_stored"] == sims * steps,
          f"exactly {sims} x {steps} steps stored (got {server['steps_stored']})")
    for sim in range(sims):
        check(server["simulations"][str(sim)]["steps"] == steps, f"sim {sim}: {steps} steps, once")
    return summary


mode = sys.argv[1]
work = tmpdir("launcher-" + mode)
marker = uuid.uuid4().hex

if mode == "study":
    study = study_file(work, sims=10, steps=20, marker=marker)
    rc, out = finish(run_study(study))
    print(out)
    check(rc == 0, "melissa-run exits 0")
    summary = check_exactly_once(work, 10, 20)
    check(summary["simulations"]["completed"] == 10, "the summary reports 10 completed")
    check(summary["simulations"]["failed"] == 0 and summary["simulations"]["retries"] == 0, "no failure")
    clients = [j for j in summary["jobs"] if j["kind"] == "client"]
    check(len(clients) == 10 and all(j["state"] == "completed" for j in clients), "10 client jobs completed")
    check(os.path.exists(os.path.join(work, "out", "jobs", "1.out")), "job logs in jobs/<id>.out")
    check(os.path.exists(os.path.join(work, "out", "study.resolved.toml")), "resolved study written")
    check(os.path.exists(os.path.join(work, "out", "launcher.log")), "launcher log written")

elif mode == "kill":
    # Long enough runs that three kills land before the study ends, however
    # fast the machine starts and runs the clients.
    sims, steps = 8, 400
    study = study_file(work, sims=sims, steps=steps, grid=100, marker=marker)
    p = run_study(study)
    rng = random.Random(7)
    killed = set()  # (sim, attempt): one rank of each victim job, never the same job twice
    deadline = time.time() + 120
    while len(killed) < 3 and time.time() < deadline:
        time.sleep(rng.uniform(0.3, 1.2))
        victims = [(pid, job) for pid, job in heat_jobs(marker).items() if job not in killed]
        if victims:
            pid, job = rng.choice(victims)
            os.kill(pid, signal.SIGKILL)
            killed.add(job)
    check(len(killed) == 3, f"3 running clients were killed: {sorted(killed)}")
    rc, out = finish(p)
    print(out)
    check(rc == 0, "the study still completes (exit 0)")
    summary = check_exactly_once(work, sims, steps)
    # A kill that lands after the server already holds every step of its
    # simulation (the client was finishing) costs no retry: the simulation is
    # complete. Every other kill is retried with attempt + 1.
    retried = []
    for sim, attempt in sorted(killed):
        rows = [j for j in summary["jobs"] if j["kind"] == "client" and j["sim_id"] == sim]
        last = max(rows, key=lambda j: j["attempt"])
        if last["attempt"] > attempt:
            retried.append((sim, attempt))
            check(any(j["attempt"] == attempt and j["state"] == "failed" for j in rows) and
                  last["state"] == "completed",
                  f"sim {sim}: attempt {attempt} failed, attempt {last['attempt']} completed")
        else:
            print(f"note: sim {sim} was complete on the server when attempt {attempt} was killed")
    check(retried and summary["simulations"]["retries"] == len(retried),
          f"the summary shows one extra attempt per retried kill ({summary['simulations']['retries']} "
          f"retries, {len(retried)} retried kills)")
    attempts = [j["attempt"] for j in summary["jobs"] if j["kind"] == "client"]
    check(max(attempts) >= 2, "restarted simulations ran again with attempt + 1")

elif mode == "stop":
    sims, steps = 3, 400
    study = study_file(work, sims=sims, steps=steps, grid=100, job_limit=3, client_timeout=3, marker=marker)
    p = run_study(study)
    server_log = os.path.join(work, "out", "jobs", "1.out")
    deadline = time.time() + 60
    victim = None
    while victim is None and time.time() < deadline:
        time.sleep(0.1)
        log = open(server_log).read() if os.path.exists(server_log) else ""
        for pid, (sim, attempt) in heat_jobs(marker).items():
            if f"session opened: sim {sim} attempt {attempt}" in log:
                victim = pid
                break
    check(victim is not None, "a client is streaming")
    # The whole job hangs (mpirun and its ranks, as on a stuck node): it stops
    # sending while its session stays open. mpirun puts each rank in a process
    # group of its own, so stop every process of the job's session.
    sid = os.getsid(victim)
    for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
        try:
            if os.getsid(pid) == sid:
                os.kill(pid, signal.SIGSTOP)
        except OSError:
            pass
    rc, out = finish(p)
    print(out)
    check(rc == 0, "the study completes")
    check("sent nothing for" in out, "the server detected the silent client and the launcher killed it")
    summary = check_exactly_once(work, sims, steps)
    check(summary["simulations"]["retries"] >= 1, "the stopped client was restarted")
    reasons = [j.get("reason", "") for j in summary["jobs"]]
    check(any("client_timeout" in r for r in reasons), "the job table says why it was ended")

elif mode == "missing":
    study = study_file(work, sims=2, steps=5, command=["/nonexistent/solver"], marker=marker)
    rc, out = finish(run_study(study), timeout=60)
    print(out)
    check(rc == 1, f"melissa-run exits 1 (got {rc})")
    check("/nonexistent/solver" in out and "not found" in out, "the error names the missing executable")

elif mode == "ctrl-c":
    study = study_file(work, sims=20, steps=100, grid=100, marker=marker)
    p = run_study(study)
    deadline = time.time() + 60
    while not heat_pids(marker) and time.time() < deadline:
        time.sleep(0.2)
    check(bool(heat_pids(marker)), "clients are running")
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    rc, out = finish(p, timeout=60)
    print(out)
    check(rc == 130, f"melissa-run exits 130 after SIGINT (got {rc})")
    time.sleep(0.5)
    left = marked_pids(marker)
    check(not left, f"no client process left ({left})")
    server_left = subprocess.run(["pgrep", "-f", os.path.join(work, "out")], capture_output=True, text=True).stdout
    check(not server_left.strip(), "no server process left")
    summary = json.load(open(os.path.join(work, "out", "summary.json")))
    check(summary["exit_code"] == 130 and "interrupted" in summary["message"], "the summary says interrupted")
elif mode in ("server", "orphan"):
    study = study_file(work, sims=20, steps=600, grid=100, job_limit=2, marker=marker,
                       server_restarts=0 if mode == "server" else 3)
    p = run_study(study)
    deadline = time.time() + 60
    while not heat_pids(marker) and time.time() < deadline:
        time.sleep(0.2)
    check(bool(heat_pids(marker)), "clients are running")
    server = subprocess.run(["pgrep", "-f", "melissa-server --config " + os.path.join(work, "out")],
                            capture_output=True, text=True).stdout.split()
    check(len(server) == 1, "one server process")
    if mode == "server":
        os.kill(int(server[0]), signal.SIGKILL)
        rc, out = finish(p, timeout=60)
        print(out)
        check(rc == 1, f"melissa-run exits 1 (got {rc})")
        check("the server ended (" in out and "max_server_restarts = 0" in out,
              "the message says the server is gone and is not restarted")
        time.sleep(0.5)
        check(not marked_pids(marker), "no client left")
    else:
        running = {job for job in heat_jobs(marker).values()}
        p.kill()  # SIGKILL: no chance to cancel anything
        p.wait()
        try:
            os.waitpid(int(server[0]), 0)
        except ChildProcessError:
            pass
        deadline = time.time() + 90
        while os.path.exists(f"/proc/{server[0]}") and time.time() < deadline:
            time.sleep(0.2)
        check(not os.path.exists(f"/proc/{server[0]}"), "the server stopped on its own")
        summary = json.load(open(os.path.join(work, "out", "server-summary.rank0.json")))
        for sim, attempt in running:
            check(summary["simulations"][str(sim)]["done"] and summary["simulations"][str(sim)]["steps"] == 600,
                  f"sim {sim}, running when the launcher died, finished with every step")
        check(not heat_pids(marker), "no client left")
else:
    fail("unknown mode " + mode)
print("PASS")
