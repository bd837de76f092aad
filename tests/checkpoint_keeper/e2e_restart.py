"""A study survives the loss of its server and of its launcher (issue 11),
end to end: real melissa-run, local backend, a small heat training study.

  kill-server    SIGKILL the server after its first checkpoint while the
                 clients stream: the study completes (exit 0), one server
                 restart in summary.json (reason, checkpoint, batch), every
                 step inserted into the buffer exactly once, no simulation
                 complete in that checkpoint rerun, and the final validation
                 loss within 25 % of the same study run without interruption
  kill-server-ranks2  the same with server.ranks = 2
  kill-rank1-ranks2  the same, but only server rank 1 is SIGKILLed (rank 0
             goes on until the launcher ends the job)
  corrupt        the newest checkpoint is corrupted when the server is killed:
                 the previous one is used and launcher.log says why
  ctrl-c         SIGINT mid-study: the server checkpoints, melissa-run exits
                 130; melissa-run --resume completes the study without rerunning
                 what was complete; a second --resume says it finished (exit 0)
  kill-launcher  SIGKILL of melissa-run: the server checkpoints and stops by
                 itself; --resume completes the study
  scratch        a study that does not train (count sink, no checkpoint): a
                 SIGKILLed server restarts from scratch, every simulation
                 runs again as its next attempt, the new server stores every
                 step once, exit 0

  slurm-timeout  real one-node Slurm (tests/slurm/start-slurm.sh; skipped, 77,
                 where it cannot start): the server job has a 1-minute time
                 limit, so Slurm sends it SIGTERM (--signal) mid-study; it
                 checkpoints and stops, the launcher restarts it from that
                 checkpoint and the study completes, every step inserted once

    e2e_restart.py kill-server|kill-server-ranks2|kill-rank1-ranks2|corrupt|ctrl-c|kill-launcher|scratch|slurm-timeout
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

SIMS, STEPS, GRID, BATCH, EVERY = 10, 40, 8, 4, 5


def make_validation_set(dir):
    for sim, params in enumerate([["150", "400", "250", "300", "450"], ["450", "120", "380", "200", "300"]]):
        subprocess.run([HEAT, "--mode", "dataset", "--output", dir, "--sim-id", str(sim), "--grid", str(GRID),
                        "--steps", str(STEPS)] + params, check=True, capture_output=True)


def study_file(work, vdir, ranks=1):
    return write_study(
        work,
        study={"name": "restart-e2e", "seed": 5},
        launcher={"job_limit": 2, "poll_interval": 0.2, "max_server_restarts": 2},
        server={"ranks": ranks, "sink": "train", "port": None},
        client={"command": [HEAT, "--grid", str(GRID), "--steps", str(STEPS)], "ranks": None,
                "steps": STEPS},
        parameters={"bounds": None, "count": SIMS},
        fields=[{"name": "temperature", "size": GRID * GRID}],
        # FIFO: each sample once, so that inserts and batches are exact.
        buffer={"policy": "fifo", "capacity": 50, "threshold": 10},
        training={"time_steps": STEPS, "hidden": [16], "batch_size": BATCH, "metrics_every": 5,
                  "validation_every": 10, "output": "constant", "output_mean": 300, "output_std": 100,
                  "validation_dir": vdir},
        # keep: the checkpoint a restart used is still there to be read.
        checkpoint={"every_batches": EVERY, "every_seconds": 0, "keep": 100})


def checkpoints(out):
    root = os.path.join(out, "checkpoints")
    if not os.path.isdir(root):
        return []
    return sorted(os.path.join(root, n) for n in os.listdir(root) if n.startswith("ckpt-"))


def complete_in(ckpt):
    table = json.load(open(os.path.join(ckpt, "study", "simulation_table.json")))
    return {sim for sim, state in enumerate(table["states"]) if state == "complete"}


def server_pids(out):
    text = subprocess.run(["pgrep", "-f", "melissa-server --config " + out], capture_output=True,
                          text=True).stdout
    return [int(p) for p in text.split()]


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")


def finish(p, timeout=150):
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        print(out[-4000:])
        fail("melissa-run did not end in time")
    return p.returncode, out


def run(argv):
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def inserts(out, ranks):
    return sum(json.load(open(os.path.join(out, f"server-summary.rank{r}.json")))["sink"]["inserts"]
               for r in range(ranks))


def metrics_continue(out, batch):
    """metrics.csv after a restore: the rows up to the checkpoint's batch kept,
    none twice (the lost server's rows after it are dropped), steps increasing."""
    with open(os.path.join(out, "metrics", "metrics.csv")) as f:
        steps = [int(line.split(",", 1)[0]) for line in f.read().splitlines()[1:] if line]
    print(f"metrics.csv steps around the checkpoint (batch {batch}):",
          [s for s in steps if abs(s - batch) <= 15])
    check(steps == sorted(set(steps)), f"metrics.csv steps increase, none twice ({steps})")
    if batch >= 5:  # metrics_every = 5: rows before the checkpoint exist
        check(any(s <= batch for s in steps), "metrics.csv keeps the rows before the checkpoint")


def final_validation_loss(out):
    return json.load(open(os.path.join(out, "summary.json")))["training"]["validation_loss"]


def baseline_loss(vdir, ranks):
    work = tmpdir("restart-baseline")
    study = study_file(work, vdir, ranks)
    rc, text = finish(run([RUN, study]))
    if rc != 0:
        print(text[-3000:])
    check(rc == 0, f"the uninterrupted study exits 0 (got {rc})")
    return final_validation_loss(os.path.join(work, "out"))


def no_complete_rerun(out, complete, since):
    """No client job of a simulation in `complete` was submitted after `since`."""
    summary = json.load(open(os.path.join(out, "summary.json")))
    rerun = sorted({j["sim_id"] for j in summary["jobs"]
                    if j["kind"] == "client" and j["sim_id"] in complete and j["submitted_at"] >= since})
    check(not rerun, f"no simulation complete in the checkpoint was rerun ({sorted(complete)} complete, "
                     f"rerun: {rerun})")


def kill_server(ranks=1, corrupt=False, only_rank=None):
    work = tmpdir("restart-kill")
    vdir = os.path.join(work, "validation")
    make_validation_set(vdir)
    study = study_file(work, vdir, ranks)
    skip_without_torch(work, study)
    out = os.path.join(work, "out")
    p = run([RUN, study])
    need = 2 if corrupt else 1

    def ready():
        # A checkpoint with a complete simulation (one that must not run again).
        c = checkpoints(out)
        if len(c) < need:
            return False
        try:
            return bool(complete_in(c[-2] if corrupt else c[-1]))
        except (OSError, ValueError):
            return False
    wait_for(lambda: ready() or p.poll() is not None, 90, f"{need} checkpoint(s), one with a complete simulation")
    check(p.poll() is None, "the study is still running when its checkpoints appear")
    pids = server_pids(out)
    check(len(pids) >= 1, f"the server runs ({pids})")
    # Frozen first: no checkpoint is written between choosing and killing.
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    present = checkpoints(out)
    print("checkpoints when the server is killed:", [os.path.basename(c) for c in present])
    victim = None
    if corrupt:
        victim = present[-1]
        path = os.path.join(victim, "rank-0", "trainer", "tensors.bin")
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(path, "wb").write(bytes(data))
    if only_rank is not None:
        # One rank dies; the others go on (resumed) and must be stopped by the launcher.
        victims = [pid for pid in pids if rank_of(pid) == only_rank]
        check(len(victims) == 1, f"server rank {only_rank} found ({victims})")
        os.kill(victims[0], signal.SIGKILL)
        for pid in pids:
            if pid != victims[0]:
                os.kill(pid, signal.SIGCONT)
    else:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
    rc, text = finish(p)
    if rc != 0:
        print(text[-5000:])
    check(rc == 0, f"melissa-run exits 0 after the server restart (got {rc})")
    summary = json.load(open(os.path.join(out, "summary.json")))
    print("restarts:", json.dumps(summary.get("restarts")))
    check(summary["server_restarts"] == 1, f"server_restarts = 1 ({summary.get('server_restarts')})")
    restart = summary["restarts"][0]
    # One rank killed: rank 0, resumed, may still commit a checkpoint whose
    # parts were all written before the kill (never one without rank 1's part).
    later_ok = only_rank is not None and restart["checkpoint"] > present[-1]
    check(restart["action"] == "from_checkpoint" and (restart["checkpoint"] in present or later_ok),
          f"restarted from a checkpoint present at the kill ({restart['checkpoint']})")
    check("signal 9" in restart["reason"] or "lost the connection" in restart["reason"],
          f"the reason says how the server ended ({restart['reason']})")
    check(restart["batch"] == int(restart["checkpoint"].rsplit("-", 1)[1]), "the restart names its batch")
    log = open(os.path.join(out, "launcher.log")).read()
    if corrupt:
        check(restart["checkpoint"] == present[-2], f"the previous checkpoint is used ({present[-2]})")
        check(any(s.startswith(victim) and "tensors.bin" in s for s in restart["skipped"]),
              f"the summary says why the newest was skipped ({restart['skipped']})")
        check(f"skipping checkpoint {victim}: " in log and "tensors.bin" in log,
              "launcher.log says why the newest checkpoint was skipped")
    else:
        check(restart["checkpoint"] == present[-1] or later_ok, "the newest checkpoint is used")
    total = inserts(out, ranks)
    check(total == SIMS * STEPS, f"every step inserted into the buffer exactly once ({total} of {SIMS * STEPS})")
    complete = complete_in(restart["checkpoint"])
    check(complete, f"the checkpoint used has complete simulations ({sorted(complete)})")
    no_complete_rerun(out, complete, restart["time"])
    if ranks == 1:
        metrics_continue(out, restart["batch"])
    if corrupt:
        return
    loss = final_validation_loss(out)
    base = baseline_loss(vdir, ranks)
    print(f"final validation loss: interrupted {loss:.6g}, uninterrupted {base:.6g}")
    check(abs(loss - base) <= 0.25 * base, f"within 25 % of the uninterrupted run ({loss:.6g} vs {base:.6g})")


def resume_after(how):
    work = tmpdir("restart-" + how)
    vdir = os.path.join(work, "validation")
    make_validation_set(vdir)
    study = study_file(work, vdir)
    skip_without_torch(work, study)
    out = os.path.join(work, "out")
    p = run([RUN, study])
    wait_for(lambda: len(checkpoints(out)) >= 1 or p.poll() is not None, 90, "a first checkpoint")
    check(p.poll() is None, "the study is still running")
    pids = server_pids(out)
    if how == "ctrl-c":
        p.send_signal(signal.SIGINT)
        rc, text = finish(p, timeout=90)
        print(text[-3000:])
        check(rc == 130, f"melissa-run exits 130 after Ctrl-C (got {rc})")
        check("asking the server for a checkpoint" in text, "it asks the server for a checkpoint")
        check("resume with melissa-run --resume" in text or "stopping anyway" in text,
              "it says whether the checkpoint was written")
    else:
        p.kill()
        p.wait()
        # The server notices the launcher is gone, lets its clients finish,
        # checkpoints and stops by itself.
        wait_for(lambda: not any(alive(pid) for pid in pids), 90, "the server to stop by itself")
    wait_for(lambda: not server_pids(out), 30, "no server process left")
    chosen = checkpoints(out)[-1]
    reason = json.load(open(os.path.join(chosen, "manifest.json")))["reason"]
    if how == "kill-launcher":
        check(reason == "launcher_lost", f"the server's last checkpoint says the launcher was lost ({reason})")
    if reason in ("interrupt", "launcher_lost"):
        # The study stopped on that checkpoint: rank 0 saved the model reached so far.
        check(os.path.isfile(os.path.join(out, "model", "model.pt")),
              f"the stopped study's model is saved in out/model (checkpoint reason {reason})")
    complete = complete_in(chosen)
    print("resuming from", os.path.basename(chosen), "with complete", sorted(complete))
    # Rank 0's extras: the study's elapsed time, in the manifest (verified).
    files = {f["path"] for f in json.load(open(os.path.join(chosen, "manifest.json")))["files"]}
    check("study/study_state.json" in files, "the checkpoint holds study/study_state.json")
    elapsed_before = json.load(open(os.path.join(chosen, "study", "study_state.json")))["elapsed_s"]
    check(elapsed_before > 0, f"the checkpoint's elapsed time is counted ({elapsed_before})")
    # The attempts the checkpoint saw: a resumed simulation runs as a later attempt.
    received = json.load(open(os.path.join(chosen, "rank-0", "received_steps.json")))
    seen = {s["sim"]: max(s["attempts"]) for s in received["simulations"] if s["attempts"]}
    started = time.time()
    rc, text = finish(run([RUN, "--resume", out]))
    print(text[-3000:])
    check(rc == 0, f"melissa-run --resume exits 0 (got {rc})")
    summary = json.load(open(os.path.join(out, "summary.json")))
    check(summary["resumed_from"]["checkpoint"] == chosen, f"resumed from the newest checkpoint ({chosen})")
    check(summary["state"] == "done", "the resumed study is done")
    no_complete_rerun(out, complete, 0)
    for job in summary["jobs"]:
        if job["kind"] == "client" and job["sim_id"] in seen:
            check(job["attempt"] > seen[job["sim_id"]],
                  f"simulation {job['sim_id']} resumed as attempt {job['attempt']}, after attempt "
                  f"{seen[job['sim_id']]} in the checkpoint")
    check(summary["elapsed_s"] > elapsed_before,
          f"summary.json's elapsed time counts on from the checkpoint's ({summary['elapsed_s']:.1f} s)")
    rank0 = json.load(open(os.path.join(out, "server-summary.rank0.json")))
    check(rank0["elapsed_s"] > elapsed_before,
          f"the resumed server counts its elapsed time on from the checkpoint's "
          f"({rank0['elapsed_s']:.1f} s > {elapsed_before:.1f} s)")
    metrics_continue(out, json.load(open(os.path.join(chosen, "manifest.json")))["batch"])
    check(os.path.isdir(os.path.join(out, "jobs.1")), "the first run's job logs are kept in jobs.1")
    check(inserts(out, 1) == SIMS * STEPS, f"every step inserted exactly once ({inserts(out, 1)})")
    rc, text = finish(run([RUN, "--resume", out]), timeout=30)
    check(rc == 0 and "already finished" in text, f"a finished study says so and exits 0 ({rc}: {text.strip()})")
    print(f"resume took {time.time() - started:.1f} s")


def scratch():
    work = tmpdir("restart-scratch")
    sims, steps = 6, 300
    study = write_study(
        work,
        study={"name": "restart-scratch", "seed": 5},
        launcher={"job_limit": 2, "poll_interval": 0.2},
        server={"sink": "count", "port": None},
        client={"command": [HEAT, "--grid", "32", "--steps", str(steps)], "ranks": None, "steps": steps},
        parameters={"bounds": None, "count": sims},
        fields=[{"name": "temperature", "size": 32 * 32}])
    out = os.path.join(work, "out")
    p = run([RUN, study])
    jobs = os.path.join(out, "jobs")
    # The server (job 1) and at least two clients started.
    wait_for(lambda: os.path.isdir(jobs) and len([n for n in os.listdir(jobs) if n.endswith(".out")]) >= 3
             or p.poll() is not None, 60, "clients to start")
    pids = server_pids(out)
    check(p.poll() is None and len(pids) == 1, f"the study runs with one server process ({pids})")
    os.kill(pids[0], signal.SIGKILL)
    rc, text = finish(p)
    if rc != 0:
        print(text[-4000:])
    check(rc == 0, f"melissa-run exits 0 after restarting the server (got {rc})")
    summary = json.load(open(os.path.join(out, "summary.json")))
    print("restarts:", json.dumps(summary["restarts"]))
    check(summary["server_restarts"] == 1, f"server_restarts = 1 ({summary['server_restarts']})")
    restart = summary["restarts"][0]
    check(restart["action"] == "from_scratch" and restart["checkpoint"] == "",
          "restarted from scratch (nothing trained, no checkpoint)")
    check("signal 9" in restart["reason"] or "lost the connection" in restart["reason"],
          f"the reason says how the server ended ({restart['reason']})")
    log = open(os.path.join(out, "launcher.log")).read()
    check("restart 1 of at most 3 from scratch" in log, "the log says the server restarts from scratch")
    servers = [j for j in summary["jobs"] if j["kind"] == "server"]
    check(len(servers) == 2 and servers[1]["state"] == "completed", "two server jobs, the second completed")
    clients = [j for j in summary["jobs"] if j["kind"] == "client"]
    before = {j["sim_id"] for j in clients if 0 <= j["submitted_at"] < restart["time"]}
    for sim in before:
        attempts = sorted(j["attempt"] for j in clients if j["sim_id"] == sim)
        check(attempts[-1] >= 2, f"simulation {sim}, started before the restart, ran again as attempt "
                                 f"{attempts[-1]} ({attempts})")
    check(any(j.get("reason") == "the server restarted" for j in clients),
          "the running clients were cancelled by the restart")
    check(summary["simulations"]["completed"] == sims and summary["simulations"]["failed"] == 0,
          f"all {sims} simulations completed ({summary['simulations']})")
    rank0 = json.load(open(os.path.join(out, "server-summary.rank0.json")))
    check(rank0["steps_stored"] == sims * steps, f"the new server stored every step once ({rank0['steps_stored']})")


def slurm_timeout():
    started = subprocess.run(["bash", os.path.join(SOURCE, "tests", "slurm", "start-slurm.sh")],
                             capture_output=True, text=True)
    if started.returncode == 77:
        print("SKIP: " + started.stderr.strip())
        sys.exit(77)
    check(started.returncode == 0, f"Slurm starts ({started.stderr.strip()})")
    work = tmpdir("restart-slurm")
    vdir = os.path.join(work, "validation")
    make_validation_set(vdir)
    sims, steps = 6, 4000
    study = write_study(
        work,
        study={"name": "restart-slurm", "seed": 5},
        launcher={"backend": "slurm", "job_limit": 2, "poll_interval": 0.5, "server_timeout": 120,
                  "max_server_restarts": 4, "server_job": {"time": "0:01:00"}},
        server={"sink": "train", "port": None},
        # Each client waits 12 s before it starts, so that the study outlasts
        # the server's 1-minute limit (signalled 30 s in) however fast this machine is
        # (3 waves of 2, each >= 12 s), and needs few restarts.
        client={"command": ["sh", "-c", 'sleep 12; exec "$0" "$@"', HEAT, "--grid", str(GRID),
                            "--steps", str(steps)], "ranks": None, "steps": steps},
        parameters={"bounds": None, "count": sims},
        fields=[{"name": "temperature", "size": GRID * GRID}],
        buffer={"policy": "fifo", "capacity": 200, "threshold": 10},
        training={"time_steps": steps, "hidden": [16], "batch_size": 16, "metrics_every": 50,
                  "validation_every": 200, "output": "constant", "output_mean": 300, "output_std": 100,
                  "validation_dir": vdir},
        checkpoint={"every_batches": 0, "every_seconds": 5, "keep": 100})
    out = os.path.join(work, "out")
    rc, text = finish(run([RUN, study]), timeout=400)
    print(text[-4000:])
    check(rc == 0, f"the study completes through the server's time limits (exit {rc})")
    summary = json.load(open(os.path.join(out, "summary.json")))
    print("restarts:", json.dumps(summary["restarts"]))
    check(summary["server_restarts"] >= 1, f"the server was restarted ({summary['server_restarts']})")
    first = summary["restarts"][0]
    check(first["action"] == "from_checkpoint", f"from its checkpoint ({first})")
    check(first["time"] < 75, f"before its time limit ran out: Slurm's SIGTERM ({first['time']:.0f} s)")
    print("the checkpoint restarted from was taken for:",
          json.load(open(os.path.join(first["checkpoint"], "manifest.json")))["reason"])
    check(inserts(out, 1) == sims * steps, f"every step inserted once ({inserts(out, 1)} of {sims * steps})")


mode = sys.argv[1] if len(sys.argv) > 1 else "kill-server"
if mode != "scratch":
    usage = subprocess.run([SERVER, "--help"], capture_output=True, text=True)
    if "--restore" not in usage.stdout + usage.stderr:
        print("SKIP: this melissa-server has no --restore (the server's side of issue 11)")
        sys.exit(77)
if mode == "kill-server":
    kill_server()
elif mode == "kill-server-ranks2":
    kill_server(ranks=2)
elif mode == "kill-rank1-ranks2":
    kill_server(ranks=2, only_rank=1)
elif mode == "corrupt":
    kill_server(corrupt=True)
elif mode in ("ctrl-c", "kill-launcher"):
    resume_after(mode)
elif mode == "scratch":
    scratch()
elif mode == "slurm-timeout":
    slurm_timeout()
else:
    fail("unknown mode " + mode)
print("PASS")
