"""Checkpoints of a two-rank training server (docs/checkpoints.md, "Several
ranks"), at the server level (no launcher): two standalone ranks train
together (Reservoir, every_batches = 10) while simulation 0 streams, and
checkpoint together: every checkpoint holds both ranks' parts in one manifest
that verifies. SIGTERM to rank 1 only: the ranks take a checkpoint with
reason "sigterm" at the same batch (the flag travels in the gradient
all-reduce), rank 0 commits it, and both ranks exit 75. Both ranks then
restart from it with --restore: each restores its own part (the trainer at
the checkpoint's batch, its buffer, its received steps), simulation 0 sent
again is dropped entirely as duplicates, simulation 1 runs, and the study
ends (both exit 0) with the buffers' inserts = simulations x steps.

    e2e_ranks.py
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

STEPS, GRID, BATCH, RANKS = 20, 8, 4, 2
VERIFY = os.path.join(BUILD, "tests", "checkpoint_keeper", "checkpoint-verify")
work = tmpdir("ckpt-ranks")


def study_file(name, out, buffer=None):
    return write_study(
        work, name,
        study={"name": "ckpt-ranks", "seed": 5, "output_dir": out},
        server={"sink": "train", "port": 0, "ranks": RANKS},
        client={"command": [HEAT], "ranks": None, "steps": STEPS},
        parameters={"bounds": None, "count": 2},
        fields=[{"name": "temperature", "size": GRID * GRID}],
        # Reservoir: samples stay (drawn with replacement), so both trainers
        # keep stepping (and checkpointing) after simulation 0 has ended.
        buffer=buffer or {"policy": "reservoir", "capacity": 200, "threshold": 5},
        training={"time_steps": STEPS, "hidden": [16], "batch_size": BATCH, "metrics_every": 5,
                  "validation_every": 1000, "output": "constant", "output_mean": 300, "output_std": 100},
        checkpoint={"every_batches": 10, "every_seconds": 0, "keep": 1000})  # none pruned while read


class Ranks:
    """Both ranks of one server, each with its own log and address file."""

    def __init__(self, study, out, *args):
        self.out = out
        self.procs, self.logs, self.addresses = [], [], []
        for r in range(RANKS):
            addr = os.path.join(out, f"server.{r}.addr")
            log = open(os.path.join(out, f"server.{r}.log"), "w")
            self.logs.append(log)
            self.procs.append(start([SERVER, "--config", study, "--output", out, "--rank", str(r),
                                     "--ranks", str(RANKS), "--address-file", addr, *args],
                                    stdout=log, stderr=subprocess.STDOUT))
        for r in range(RANKS):
            addr = os.path.join(out, f"server.{r}.addr")
            deadline = time.time() + 30
            while not os.path.exists(addr):
                if self.procs[r].poll() is not None or time.time() > deadline:
                    fail(f"rank {r} did not start:\n" + self.log(r))
                time.sleep(0.05)
            self.addresses.append(open(addr).read().strip())

    def log(self, r):
        self.logs[r].flush()
        return open(os.path.join(self.out, f"server.{r}.log")).read()

    def wait(self, timeout):
        deadline = time.time() + timeout
        codes = []
        for r, p in enumerate(self.procs):
            try:
                codes.append(p.wait(max(1, deadline - time.time())))
            except subprocess.TimeoutExpired:
                print(self.log(0)[-3000:])
                print(self.log(1)[-3000:])
                fail(f"rank {r} did not end within {timeout} s")
        return codes

    def summary(self, r):
        with open(os.path.join(self.out, f"server-summary.rank{r}.json")) as f:
            return json.load(f)


def run_client(ranks, params, sim, attempt):
    env = dict(os.environ, **client_env(ranks.addresses, sim, attempt))
    p = subprocess.run(heat_argv(params, grid=GRID, steps=STEPS, ranks=1), env=env,
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"simulation {sim} attempt {attempt} exits 0 (got {p.returncode}: {p.stderr[-500:]})")


def manifest(ckpt):
    with open(os.path.join(ckpt, "manifest.json")) as f:
        return json.load(f)


def files(ckpt):
    return {f["path"] for f in manifest(ckpt)["files"]}


# --- a two-rank server checkpoints together, then gets SIGTERM on rank 1 ---
out_a = os.path.join(work, "out-a")
os.makedirs(out_a)
study_a = study_file("study-a.toml", out_a)
skip_without_torch(work, study_a)
params = design(study_a)
server = Ranks(study_a, out_a)
run_client(server, params[0], 0, 1)
deadline = time.time() + 120
periodic = []
while len(periodic) < 2:
    check(time.time() < deadline and all(p.poll() is None for p in server.procs),
          "two checkpoints appear within 120 s while both ranks run")
    periodic = sorted(glob.glob(os.path.join(out_a, "checkpoints", "ckpt-*")))
    time.sleep(0.2)
first = periodic[0]
m = manifest(first)
print("first checkpoint:", os.path.basename(first), "reason", m["reason"], "ranks", m["ranks"])
check(m["ranks"] == RANKS and m["reason"] == "every_batches" and m["batch"] % 10 == 0,
      f"a periodic checkpoint of both ranks at a multiple of every_batches ({m['ranks']}, {m['reason']}, {m['batch']})")
for r in range(RANKS):
    check({f"rank-{r}/received_steps.json", f"rank-{r}/buffer.bin"} <= files(first) and
          any(p.startswith(f"rank-{r}/trainer/") for p in files(first)),
          f"it lists rank {r}'s trainer, buffer and received steps")
check(subprocess.run([VERIFY, first], capture_output=True).returncode == 0, "it verifies")

os.kill(server.procs[1].pid, signal.SIGTERM)  # rank 1 only: any rank may get it
codes = server.wait(150)
logs = [server.log(r) for r in range(RANKS)]
if codes != [75, 75]:
    print(logs[0][-3000:])
    print(logs[1][-3000:])
check(codes == [75, 75], f"SIGTERM to rank 1: both ranks checkpoint and exit 75 (got {codes})")
newest = sorted(glob.glob(os.path.join(out_a, "checkpoints", "ckpt-*")))[-1]
m = manifest(newest)
print("stop checkpoint:", os.path.basename(newest), "reason", m["reason"], "batch", m["batch"])
check(m["reason"] == "sigterm" and m["ranks"] == RANKS, f"the newest checkpoint is SIGTERM's, of {RANKS} ranks")
v = subprocess.run([VERIFY, newest], capture_output=True, text=True)
check(v.returncode == 0, f"it verifies ({v.stdout.strip()} {v.stderr.strip()})")
for r in range(RANKS):
    check(f"checkpoint {newest} (batch {m['batch']})" in logs[r], f"rank {r}'s log names it as the one it stopped on")
    check(f"rank-{r}/buffer.bin" in files(newest), f"it holds rank {r}'s buffer")
leftovers = [n for n in os.listdir(os.path.join(out_a, "checkpoints")) if n.startswith(".parts-")]
check(not leftovers, f"no shared staging directory is left ({leftovers})")
batch = m["batch"]
received = 0
for r in range(RANKS):
    with open(os.path.join(newest, f"rank-{r}", "received_steps.json")) as f:
        sims = {s["sim"]: s for s in json.load(f)["simulations"]}
    check(0 in sims and sims[0]["done"], f"rank {r}'s received steps have simulation 0 done")
    received += sims[0]["stored"]
check(received == STEPS, f"the ranks' received steps of simulation 0 add up to {STEPS} ({received})")

# --- both ranks restart from it ---
out_b = os.path.join(work, "out-b")
os.makedirs(out_b)
restarted = Ranks(study_file("study-b.toml", out_b), out_b, "--restore", newest)
run_client(restarted, params[0], 0, 2)  # every step already in the checkpoint
run_client(restarted, params[1], 1, 1)
codes = restarted.wait(180)
logs = [restarted.log(r) for r in range(RANKS)]
if codes != [0, 0]:
    print(logs[0][-3000:])
    print(logs[1][-3000:])
check(codes == [0, 0], f"the restored ranks end the study (exit 0: {codes})")
for r in range(RANKS):
    check(f"rank-{r}/trainer at batch {batch}" in logs[r], f"rank {r} restored its own trainer part at batch {batch}")
summaries = [restarted.summary(r) for r in range(RANKS)]
inserts = sum(s["sink"]["inserts"] for s in summaries)
duplicates = sum(s["duplicates"] for s in summaries)
print("restored:", json.dumps([{k: s[k] for k in ("steps_stored", "duplicates")} for s in summaries]),
      "inserts:", inserts, "steps:", summaries[0]["training"]["steps"])
check(duplicates == STEPS, f"every resent step of simulation 0 is a duplicate ({duplicates})")
check(inserts == 2 * STEPS, f"the buffers' inserts are simulations x steps = {2 * STEPS} ({inserts})")
check(summaries[0]["training"]["steps"] > batch, f"training went on past batch {batch}")
check(summaries[0]["training"]["steps"] == summaries[1]["training"]["steps"], "both ranks took the same steps")

# --- SIGTERM to both ranks while they wait for data (no step would come) ---
# The threshold is above what one simulation brings: neither trainer ever gets
# a batch (past the first ones, if any). Each rank, asked to stop, takes a
# step without a batch (an idle step) that carries the flag; they meet there
# and checkpoint.
out_c = os.path.join(work, "out-c")
os.makedirs(out_c)
waiting = Ranks(study_file("study-c.toml", out_c, {"policy": "fifo", "capacity": 200, "threshold": 100}), out_c)
run_client(waiting, params[0], 0, 1)
time.sleep(1)
for p in waiting.procs:
    os.kill(p.pid, signal.SIGTERM)
codes = waiting.wait(150)
if codes != [75, 75]:
    print(waiting.log(0)[-3000:])
    print(waiting.log(1)[-3000:])
check(codes == [75, 75], f"SIGTERM to both waiting ranks: both checkpoint and exit 75 (got {codes})")
newest = sorted(glob.glob(os.path.join(out_c, "checkpoints", "ckpt-*")))[-1]
m = manifest(newest)
check(m["reason"] == "sigterm" and m["ranks"] == RANKS,
      f"a sigterm checkpoint of both ranks ({m['reason']}, {m['ranks']}, batch {m['batch']})")
for r in range(RANKS):
    check(f"trainer: waiting for data at batch {m['batch']}; a step without a batch" in waiting.log(r),
          f"rank {r} carried the flag in a step without a batch")
check(subprocess.run([VERIFY, newest], capture_output=True).returncode == 0, "it verifies")
stored = 0
for r in range(RANKS):
    with open(os.path.join(newest, f"rank-{r}", "received_steps.json")) as f:
        stored += sum(s["stored"] for s in json.load(f)["simulations"])
check(stored == STEPS, f"its received steps hold simulation 0's {STEPS} steps ({stored})")
print("PASS")
