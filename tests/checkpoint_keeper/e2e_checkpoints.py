"""[checkpoint] in a running study, end to end (real melissa-run, local
backend, a small training study):
  periodic   every_batches = 5, keep = 2: checkpoints appear while the study
             trains, the ones kept verify (manifest: sizes + XXH3), exactly
             `keep` remain, the newest is at the final batch, a flipped byte
             is detected, and the server summary's "checkpoints" figures
             agree (taken = written, none failed, the newest's path and
             batch, the trainer's pause measured)
  no-buffer  buffer = false: the checkpoints verify and hold no buffer.bin
  off        every_batches = 0, every_seconds = 0: no checkpoint directory
  launcher-lost  melissa-run is SIGKILLed while clients stream: the server
             finishes the running simulations, checkpoints (launcher_lost,
             it verifies), says so in its summary and exits 75

    e2e_checkpoints.py periodic|no-buffer|off|launcher-lost
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

SIMS, STEPS, GRID, BATCH, EVERY, KEEP = 4, 20, 8, 4, 5, 2
VERIFY = os.path.join(os.environ.get("MELISSA_BUILD_DIR", "build"), "tests", "checkpoint_keeper", "checkpoint-verify")


def run_study(work, checkpoint):
    study = write_study(
        work,
        study={"name": "ckpt-e2e", "seed": 5},
        launcher={"job_limit": 2},
        server={"sink": "train", "port": None},
        client={"command": [HEAT, "--grid", str(GRID), "--steps", str(STEPS)], "ranks": None,
                "steps": STEPS},
        parameters={"bounds": None, "count": SIMS},
        fields=[{"name": "temperature", "size": GRID * GRID}],
        # FIFO: each sample once, so the number of batches is known exactly.
        buffer={"policy": "fifo", "capacity": 50, "threshold": 10},
        training={"time_steps": STEPS, "hidden": [16], "batch_size": BATCH, "metrics_every": 5,
                  "validation_every": 20, "output": "constant", "output_mean": 300, "output_std": 100},
        checkpoint=checkpoint)
    p = subprocess.run([RUN, study], capture_output=True, text=True, timeout=240)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
    check(p.returncode == 0, f"melissa-run exits 0 (got {p.returncode})")
    out = os.path.join(work, "out")
    return out, json.load(open(os.path.join(out, "server-summary.rank0.json")))


def verify(path):
    r = subprocess.run([VERIFY, path], capture_output=True, text=True)
    print(r.stdout.strip())
    return r.returncode == 0, r.stdout


def periodic():
    work = tmpdir("ckpt-periodic")
    # every_seconds = 0: only the batch trigger, so the count is exact.
    out, summary = run_study(work, {"every_batches": EVERY, "every_seconds": 0, "keep": KEEP})
    training = summary["training"]
    batches = training["batches"]
    expected_batches = -(-SIMS * STEPS // BATCH)
    check(batches == expected_batches, f"{expected_batches} batches trained (got {batches})")
    figures = training["checkpoints"]
    print("checkpoints figures:", json.dumps(figures))
    # Due every EVERY batches; one due while the previous is still being
    # written is refused and taken at a later step (a loaded machine), so
    # the count lies between these bounds, and the end adds one unless the
    # last is at the final batch.
    taken = figures["taken"]
    check(2 <= taken <= batches // EVERY + 1,
          f"between 2 and {batches // EVERY + 1} checkpoints taken ({taken}, {figures['refused_busy']} refused busy)")
    check(figures["written"] == figures["taken"] and figures["failed"] == 0,
          f"every checkpoint written, none failed ({figures['written']}, {figures['failed']})")
    check(figures["last_batch"] == batches, f"the last checkpoint is at the final batch {batches}")
    pause = figures["pause_seconds"]
    check(0 < pause["max"] <= pause["total"] and pause["last"] > 0, "the trainer's pause is measured")
    check(figures["last_bytes"] > 0 and figures["last_write_seconds"] > 0, "size and write time reported")
    study_summary = json.load(open(os.path.join(out, "summary.json")))
    check(study_summary["training"]["checkpoints"] == figures,
          "summary.json carries the same checkpoint figures (training.checkpoints)")

    # The pause as a metrics column: in the rows of the windows that took a
    # checkpoint (the end-of-training one comes after the last row), and in
    # TensorBoard under the same tag.
    with open(os.path.join(out, "metrics", "metrics.csv")) as f:
        lines = f.read().splitlines()
    header = lines[0].split(",")
    check("checkpoint_pause_s" in header, f"metrics.csv has a checkpoint_pause_s column ({header})")
    column = header.index("checkpoint_pause_s")
    pauses = [float(cells[column]) for cells in (line.split(",") for line in lines[1:] if line)
              if len(cells) > column and cells[column]]
    print("checkpoint_pause_s in metrics.csv:", pauses)
    check(pauses and all(p > 0 for p in pauses), "rows carry the trainer's pause of their checkpoints")
    check(sum(pauses) <= pause["total"] + 1e-9,
          f"the rows' pauses are the summary's, less the end one ({sum(pauses)} <= {pause['total']})")
    events = [n for n in os.listdir(os.path.join(out, "metrics")) if n.startswith("events.out.tfevents")]
    check(any(b"checkpoint_pause_s" in open(os.path.join(out, "metrics", n), "rb").read() for n in events),
          "TensorBoard gets the checkpoint_pause_s scalar")

    root = os.path.join(out, "checkpoints")
    names = sorted(os.listdir(root))
    print("checkpoints on disk:", names)
    check(not [n for n in names if n.startswith(".")], "no staging or pruning directory left")
    check(len(names) == KEEP, f"keep = {KEEP}: exactly {KEEP} checkpoints remain ({len(names)})")
    check(all(re.fullmatch(r"ckpt-\d{8}-batch-\d+", n) for n in names), "checkpoint names")
    newest = names[-1]
    check(int(newest.split("-")[1]) == figures["taken"], "the newest has the highest sequence number")
    check(os.path.join(root, newest) == figures["last_path"], "the summary names the newest checkpoint")
    for n in names:
        ok, text = verify(os.path.join(root, n))
        check(ok, f"{n} verifies against its manifest")
    m = json.load(open(os.path.join(root, newest, "manifest.json")))
    check(m["study"] == "ckpt-e2e" and m["batch"] == batches and m["ranks"] == 1,
          f"the newest manifest: study, final batch {batches}, one rank")
    check(m["reason"] == ("every_batches" if m["reason"] == "every_batches" and batches % EVERY == 0
                          else "end_of_training"),
          f"the newest was taken at the end of training or at the final periodic batch ({m['reason']})")
    older = json.load(open(os.path.join(root, names[0], "manifest.json")))
    check(older["reason"] == "every_batches" and EVERY <= older["batch"] < batches,
          f"the older one is periodic, after at least {EVERY} batches ({older['batch']})")
    paths = {f["path"] for f in m["files"]}
    check({"rank-0/trainer/tensors.bin", "rank-0/trainer/tensors.json"} <= paths,
          f"the trainer's part is in the manifest ({sorted(paths)})")
    check("study/study_state.json" in paths, "rank 0's study state (elapsed time) is in the manifest")
    older_paths = {f["path"] for f in older["files"]}
    check("rank-0/buffer.bin" in older_paths and
          os.path.getsize(os.path.join(root, names[0], "rank-0", "buffer.bin")) > 0,
          "a periodic checkpoint holds the training buffer's part (buffer = true)")
    if m["reason"] == "end_of_training":
        check("rank-0/buffer.bin" not in paths, "the end-of-training one has no buffer part (drained)")
    # A flipped byte in a kept checkpoint is detected by the same verifier.
    victim = os.path.join(root, newest, "rank-0", "trainer", "tensors.bin")
    data = bytearray(open(victim, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(victim, "wb").write(bytes(data))
    ok, text = verify(os.path.join(root, newest))
    check(not ok and "tensors.bin" in text, "a flipped byte makes the checkpoint invalid, naming the file")


def no_buffer():
    work = tmpdir("ckpt-nobuffer")
    out, summary = run_study(work, {"every_batches": EVERY, "every_seconds": 0, "keep": 5,
                                    "buffer": False})
    root = os.path.join(out, "checkpoints")
    names = sorted(n for n in os.listdir(root) if n.startswith("ckpt-"))
    check(len(names) >= 2, f"checkpoints written ({names})")
    for n in names:
        ok, _ = verify(os.path.join(root, n))
        files = {f["path"] for f in json.load(open(os.path.join(root, n, "manifest.json")))["files"]}
        check(ok and "rank-0/trainer/tensors.bin" in files and "rank-0/buffer.bin" not in files,
              f"{n} verifies and has the trainer's part but no buffer part (buffer = false)")


def launcher_lost():
    """melissa-run is killed (SIGKILL) while clients stream: the server lets
    the running simulations finish, takes a checkpoint (reason
    launcher_lost), says so in its summary and stops with exit 75."""
    work = tmpdir("ckpt-lost")
    grid, steps = 16, 300
    study = write_study(
        work,
        study={"name": "ckpt-lost", "seed": 5},
        launcher={"job_limit": 2, "client_timeout": 5},
        server={"sink": "train", "port": None},
        # Each client waits 3 s before it starts: 4 waves of 2 outlast the
        # launcher's kill 3 s after the server is up, however fast this machine is.
        client={"command": ["sh", "-c", 'sleep 3; exec "$0" "$@"', HEAT, "--grid", str(grid),
                            "--steps", str(steps)], "ranks": None, "steps": steps},
        parameters={"bounds": None, "count": 8},
        fields=[{"name": "temperature", "size": grid * grid}],
        buffer={"policy": "fifo", "capacity": 400, "threshold": 10},
        training={"time_steps": steps, "hidden": [16], "batch_size": BATCH, "metrics_every": 5,
                  "validation_every": 1000, "output": "constant", "output_mean": 300, "output_std": 100},
        # Only on-demand checkpoints: the one the lost launcher causes.
        checkpoint={"every_batches": 1000000, "every_seconds": 0})
    out = os.path.join(work, "out")
    p = start([RUN, study], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = []
    deadline = time.time() + 60
    while time.time() < deadline and not server:
        server = subprocess.run(["pgrep", "-f", "melissa-server --config " + out],
                                capture_output=True, text=True).stdout.split()
        time.sleep(0.2)
    check(len(server) == 1, "one server process")
    # Registered with the launcher (a server still starting would only find
    # its launcher gone), then the first clients run.
    log = os.path.join(out, "launcher.log")
    while time.time() < deadline + 60 and not (
            os.path.exists(log) and "server rank 0 is up" in open(log).read()):
        time.sleep(0.2)
    check("server rank 0 is up" in open(log).read(), "the server registered")
    time.sleep(3)
    p.kill()  # SIGKILL: the launcher cannot cancel anything
    p.wait()
    deadline = time.time() + 150
    while os.path.exists(f"/proc/{server[0]}") and time.time() < deadline:
        time.sleep(0.2)
    check(not os.path.exists(f"/proc/{server[0]}"), "the server stopped on its own")
    summary = json.load(open(os.path.join(out, "server-summary.rank0.json")))
    stopped = summary.get("stopped", {})
    print("stopped:", json.dumps(stopped))
    check(stopped.get("reason") == "launcher_lost", "its summary says it stopped: launcher_lost")
    path = stopped.get("checkpoint", {}).get("path", "")
    check(os.path.isdir(path), f"with the checkpoint it wrote ({path})")
    ok, _ = verify(path)
    check(ok, "which verifies")
    m = json.load(open(os.path.join(path, "manifest.json")))
    check(m["reason"] == "launcher_lost", f"reason launcher_lost ({m['reason']})")
    check(m["batch"] > 0, f"after some training (batch {m['batch']})")
    done = [s for s in json.load(open(os.path.join(path, "rank-0", "received_steps.json")))["simulations"]
            if s["done"]]
    check(len(done) >= 1 and all(s["stored"] == steps for s in done),
          f"the simulations done in it have every step ({[s['sim'] for s in done]})")
    logs = subprocess.run(["grep", "-rl", "stopping (exit 75)", out], capture_output=True, text=True).stdout
    check(logs.strip() != "", "the server's log says it exits 75")


def off():
    work = tmpdir("ckpt-off")
    out, summary = run_study(work, {"every_batches": 0, "every_seconds": 0})
    check(not os.path.exists(os.path.join(out, "checkpoints")), "no checkpoint directory")
    check("checkpoints" not in summary["training"], "no checkpoint figures in the summary")


check(os.path.exists(VERIFY), f"the verifier is built ({VERIFY})")
{"periodic": periodic, "no-buffer": no_buffer, "off": off, "launcher-lost": launcher_lost}[sys.argv[1] if len(sys.argv) > 1 else "periodic"]()
