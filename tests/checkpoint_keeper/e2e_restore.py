"""melissa-server --restore, at the server level (no launcher): a standalone
training server (Reservoir, checkpoints every few batches) receives
simulation 0 whole and checkpoints; a checkpoint that holds simulation 0
done is kept aside; SIGTERM then makes the server checkpoint (reason
"sigterm", it verifies) and exit 75. Then:

  resend     the server restarts from it; simulation 0 is sent again (attempt
             2) and simulation 1 for the first time: the restored trainer goes
             on from the checkpoint's batch, every resent step of simulation 0
             is dropped as a duplicate (20), the buffer's inserts are exactly
             simulations x steps (40), and the study ends (exit 0);
  no-rerun   restarted from the same checkpoint, only simulation 1 runs:
             simulation 0 counts as done without being rerun, exit 0;
  corrupt    a copy with one flipped byte: --restore exits 2 naming the file.

    e2e_restore.py
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

STEPS, GRID, BATCH = 20, 8, 4
VERIFY = os.path.join(BUILD, "tests", "checkpoint_keeper", "checkpoint-verify")
work = tmpdir("ckpt-restore")


def study_file(name, out):
    return write_study(
        work, name,
        study={"name": "ckpt-restore", "seed": 5, "output_dir": out},
        server={"sink": "train", "port": 0},
        client={"command": [HEAT], "ranks": None, "steps": STEPS},
        parameters={"bounds": None, "count": 2},
        fields=[{"name": "temperature", "size": GRID * GRID}],
        # Reservoir: samples stay (drawn with replacement), so the trainer
        # keeps training and checkpointing after simulation 0 has ended.
        buffer={"policy": "reservoir", "capacity": 200, "threshold": 10},
        training={"time_steps": STEPS, "hidden": [16], "batch_size": BATCH, "metrics_every": 5,
                  "validation_every": 1000, "output": "constant", "output_mean": 300, "output_std": 100},
        # Breed on rank 0: its state is one of rank 0's checkpoint extras
        # (standalone: it records losses and completions, never resamples).
        breed={"period": 10},
        checkpoint={"every_batches": 25, "every_seconds": 0, "keep": 3})


def run_client(server, params, sim, attempt):
    env = dict(os.environ, **client_env([server.address], sim, attempt))
    p = subprocess.run(heat_argv(params, grid=GRID, steps=STEPS, ranks=1), env=env,
                       capture_output=True, text=True, timeout=120)
    check(p.returncode == 0, f"simulation {sim} attempt {attempt} exits 0 (got {p.returncode}: {p.stderr[-500:]})")


def received(ckpt):
    with open(os.path.join(ckpt, "rank-0", "received_steps.json")) as f:
        return {s["sim"]: s for s in json.load(f)["simulations"]}


# --- phase A: a server that checkpoints, then dies ---
out_a = os.path.join(work, "out-a")
os.makedirs(out_a)
study_a = study_file("study-a.toml", out_a)
skip_without_torch(work, study_a)
params = design(study_a)
server = Server(study_a, out_a)
run_client(server, params[0], 0, 1)
chosen = os.path.join(work, "chosen")
deadline = time.time() + 120
while not os.path.exists(chosen):
    check(time.time() < deadline and server.proc.poll() is None,
          "a checkpoint holding simulation 0 done appears within 120 s")
    for ckpt in sorted(glob.glob(os.path.join(out_a, "checkpoints", "ckpt-*"))):
        try:
            sims = received(ckpt)
            if 0 in sims and sims[0]["done"] and os.path.exists(os.path.join(ckpt, "rank-0", "buffer.bin")):
                shutil.copytree(ckpt, chosen)
                break
        except (OSError, ValueError, shutil.Error):
            shutil.rmtree(chosen, ignore_errors=True)  # pruned while read: the next one
    time.sleep(0.2)
# SIGTERM (Slurm's notice before a time limit): a checkpoint, then exit 75.
os.killpg(server.proc.pid, signal.SIGTERM)
rc = server.wait(150)
log_a = server.read_log()
if rc != 75:
    print(log_a[-3000:])
check(rc == 75, f"SIGTERM: the server checkpoints and exits 75 (got {rc})")
newest = sorted(glob.glob(os.path.join(out_a, "checkpoints", "ckpt-*")))[-1]
check(f"checkpoint {newest} (batch" in log_a, "the log names it as the one the server stopped on")
newest_manifest = json.load(open(os.path.join(newest, "manifest.json")))
check(newest_manifest["reason"] == "sigterm", f"the newest checkpoint is SIGTERM's ({newest_manifest['reason']})")
check(subprocess.run([VERIFY, newest], capture_output=True).returncode == 0, "and it verifies")
check(received(newest)[0]["done"], "it holds simulation 0 done")
manifest = json.load(open(os.path.join(chosen, "manifest.json")))
batch = manifest["batch"]
sims = received(chosen)
print(f"chosen checkpoint: batch {batch}, reason {manifest['reason']}, sims {list(sims)}")
check(sims[0]["stored"] == STEPS and sims[0]["done"], f"simulation 0: {STEPS} steps received, done")
check(batch > 0, "the checkpoint is after some training")
# Rank 0's extras, in the manifest (verified): the elapsed time and Breed's
# state at the checkpoint's batch (the steering had recorded every batch's losses).
files = {f["path"] for f in manifest["files"]}
check({"study/study_state.json", "study/breed_state.json"} <= files, f"rank 0's extras are in the manifest ({sorted(files)})")
breed_state = json.load(open(os.path.join(chosen, "study", "breed_state.json")))
check(breed_state["batches"] == batch, f"Breed's state is at the checkpoint's batch ({breed_state['batches']} vs {batch})")
check(any(row[0] == 0 for row in breed_state["completed"]), "Breed's state knows simulation 0 completed")


def restart(name, runs):
    out = os.path.join(work, name)
    os.makedirs(out)
    study = study_file(f"study-{name}.toml", out)
    srv = Server(study, out, "--restore", chosen)
    for sim, attempt in runs:
        run_client(srv, params[sim], sim, attempt)
    rc = srv.wait(180)
    log = srv.read_log()
    if rc != 0:
        print(log[-4000:])
    check(rc == 0, f"{name}: the restored server exits 0 (got {rc})")
    check(f"at batch {batch}" in log, f"{name}: the trainer says it restored batch {batch}")
    check(f"Breed restored: {batch} batches recorded" in log, f"{name}: Breed goes on from the checkpoint's state")
    return srv.summary(), log


# --- resend: simulation 0 again and simulation 1 ---
summary, log = restart("resend", [(0, 2), (1, 1)])
print("resend:", json.dumps({k: summary[k] for k in ("simulations_done", "steps_stored", "duplicates")}),
      "sink:", json.dumps({k: summary["sink"].get(k) for k in ("inserts", "population")}),
      "steps:", summary["training"]["steps"])
check(summary["duplicates"] == STEPS, f"every resent step of simulation 0 is a duplicate ({summary['duplicates']})")
check(summary["steps_stored"] == 2 * STEPS, f"2 x {STEPS} steps stored ({summary['steps_stored']})")
check(summary["sink"]["inserts"] == 2 * STEPS,
      f"the buffer's inserts are simulations x steps = {2 * STEPS} ({summary['sink']['inserts']})")
check(summary["simulations_done"] == 2, "both simulations done")
check(summary["training"]["steps"] > batch, f"training went on after batch {batch} ({summary['training']['steps']})")
check(summary["simulations"]["0"]["duplicates"] == STEPS and summary["simulations"]["1"]["duplicates"] == 0,
      "the duplicates are simulation 0's")

# --- no-rerun: simulation 0 is complete in the checkpoint ---
summary, log = restart("no-rerun", [(1, 1)])
check(summary["duplicates"] == 0 and summary["steps_stored"] == 2 * STEPS,
      f"nothing resent, {2 * STEPS} steps stored ({summary['duplicates']}, {summary['steps_stored']})")
check(summary["simulations_done"] == 2, "simulation 0 counts as done without a rerun")

# --- corrupt: a flipped byte ---
bad = os.path.join(work, "bad")
shutil.copytree(chosen, bad)
path = os.path.join(bad, "rank-0", "buffer.bin")
with open(path, "r+b") as f:
    f.seek(100)
    b = f.read(1)
    f.seek(100)
    f.write(bytes([b[0] ^ 0xFF]))
out_bad = os.path.join(work, "out-bad")
os.makedirs(out_bad)
p = subprocess.run([SERVER, "--config", study_file("study-bad.toml", out_bad), "--restore", bad],
                   capture_output=True, text=True, timeout=60)
print(p.stderr.strip())
check(p.returncode == 2, f"--restore of a corrupted checkpoint exits 2 (got {p.returncode})")
check("does not verify" in p.stderr and "rank-0/buffer.bin" in p.stderr, "and says which file")
print("OK")
