#!/usr/bin/python3
"""Integration test of melissa-train-offline.

Writes a tiny dataset with `melissa-heat --mode dataset` (8x8 grid, 5 steps),
trains a small model for 2 epochs, and checks: the metrics CSV (columns, one
row per metrics window, samples_seen), that the validation loss went down,
summary.json's "training" keys, that model.pt loads in Python
(torch.jit.load) and predicts what the summary's probe says, that the run is
reproducible (same seed: same weights checksum), and the errors for bad input
(exit status 2, the path and the reason in the message).

usage: test_train_offline.py MELISSA_TRAIN_OFFLINE MELISSA_HEAT
"""
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

TRAIN, HEAT = sys.argv[1], sys.argv[2]
PYTHON = "/usr/bin/python3"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)


def write_dataset(out_dir, sims, seed):
    rng = random.Random(seed)
    for sim in range(sims):
        params = ["%.6f" % rng.uniform(100, 500) for _ in range(5)]
        r = run([HEAT, "--mode", "dataset", "--output", out_dir, "--sim-id", str(sim),
                 "--grid", "8", "--steps", "5"] + params)
        if r.returncode != 0:
            sys.exit("melissa-heat failed: " + r.stderr)


STUDY = """
[study]
name = "tiny-offline"
output_dir = "{out}/study"
seed = 7
[server]
sink = "train"
[client]
command = ["melissa-heat", "--grid", "8", "--steps", "5"]
steps = 5
[parameters]
names = ["T0", "T1", "T2", "T3", "T4"]
bounds = [100, 500]
count = 16
[[fields]]
name = "temperature"
size = {size}
[buffer]
capacity = 100
threshold = 10
[training]
time_steps = 5
hidden = [64, 64]
batch_size = 4
learning_rate = 3e-3
validation_dir = "{out}/validation"
validation_every = 5
metrics_every = 4
threads = 1
"""

tmp = tempfile.mkdtemp(prefix="melissa-offline-test-")
try:
    write_dataset(os.path.join(tmp, "train"), 16, seed=1)
    write_dataset(os.path.join(tmp, "validation"), 4, seed=2)
    study = os.path.join(tmp, "study.toml")
    with open(study, "w") as f:
        f.write(STUDY.format(out=tmp, size=64))

    out = os.path.join(tmp, "offline")
    args = [TRAIN, "--config", study, "--dataset", os.path.join(tmp, "train"), "--epochs", "2",
            "--output", out, "--workers", "2", "--progress-every", "0.000001"]
    r = run(args)
    print(r.stderr[-3000:])
    check(r.returncode == 0, "training exits 0 (got %d)" % r.returncode)

    # 16 sims x 5 steps = 80 samples, batch 4: 20 batches per epoch, 40 in all.
    with open(os.path.join(out, "metrics", "metrics.csv")) as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0].keys()) if rows else []
    check(header == ["step", "wall_time", "samples_seen", "train_loss", "validation_loss",
                     "samples_per_s", "batch_wait_s", "busy_fraction", "learning_rate"],
          "metrics.csv columns (no buffer_* columns): %s" % header)
    check([int(r["step"]) for r in rows] == list(range(4, 41, 4)),
          "one row per 4 batches: %s" % [r["step"] for r in rows])
    check(all(int(float(r["samples_seen"])) == 4 * int(r["step"]) for r in rows),
          "samples_seen = 4 x batches")
    check(all(float(r["samples_per_s"]) > 0 for r in rows), "positive throughput")
    check(all(0 <= float(r["busy_fraction"]) <= 1 for r in rows), "busy_fraction in [0, 1]")
    check(rows[0]["validation_loss"] == "" and rows[1]["validation_loss"] != "",
          "validation_loss appears after the first validation (batch 5)")
    # docs/training.md: a row carries a validation loss only when one was
    # computed in its window (validations at batches 5, 10, ...: the rows of
    # steps 8, 12, 16, 20, 28, ... have one, those of 4 and 24 do not).
    validated_rows = [int(r["step"]) for r in rows if r["validation_loss"] != ""]
    expected = [s for s in range(4, 41, 4) if any(b % 5 == 0 for b in range(s - 3, s + 1))]
    check(validated_rows == expected,
          "validation_loss only in rows whose window validated: %s, expected %s"
          % (validated_rows, expected))
    check(any(os.path.basename(p).startswith("events.out.tfevents")
              for p in os.listdir(os.path.join(out, "metrics"))), "TensorBoard event file")

    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    t = summary["training"]
    for key in ["batches", "samples_seen", "train_loss", "validation_loss", "min_validation_loss",
                "mean_samples_per_s", "batch_wait_s", "busy_fraction", "total_time_s",
                "validation_time_s", "weights_checksum", "model", "epochs"]:
        check(key in t, "summary.json training.%s" % key)
    check(t["epochs"] == 2 and t["batches"] == 40 and t["samples_seen"] == 160,
          "2 epochs, 40 batches, 160 samples (%s, %s, %s)" % (t["epochs"], t["batches"], t["samples_seen"]))
    check(t["validations"] == 8,
          "validated every 5 batches, none more at the end (40 is a multiple): %s" % t["validations"])
    check(t["validation_loss"] < t["first_validation_loss"],
          "validation loss decreased: %.1f -> %.1f (min %.1f)"
          % (t["first_validation_loss"], t["validation_loss"], t["min_validation_loss"]))
    check(0 < t["busy_fraction"] <= 1, "busy fraction %.3f" % t["busy_fraction"])

    # The model, from Python.
    probe = summary["probe"]
    script = """
import json, sys, torch
m = torch.jit.load(sys.argv[1])
x = torch.tensor([json.loads(sys.argv[2])], dtype=torch.float32)
y = m(x)
print(json.dumps({"shape": list(y.shape), "head": y[0, :8].tolist(), "mean": y.mean().item()}))
"""
    r = run([PYTHON, "-c", script, os.path.join(out, "model", "model.pt"), json.dumps(probe["input"])])
    check(r.returncode == 0, "torch.jit.load(model.pt) in Python: " + r.stderr[-500:])
    if r.returncode == 0:
        got = json.loads(r.stdout)
        check(got["shape"] == [1, 64], "prediction shape %s" % got["shape"])
        check(all(abs(a - b) <= 1e-3 * max(1, abs(b)) for a, b in zip(got["head"], probe["output_head"])),
              "Python's prediction matches the summary's probe: %s vs %s" % (got["head"][:3], probe["output_head"][:3]))
        check(abs(got["mean"] - probe["output_mean"]) <= 1e-3 * max(1, abs(probe["output_mean"])),
              "prediction mean %.4f vs %.4f" % (got["mean"], probe["output_mean"]))

    # Same seed, same everything (the batches do not depend on the workers).
    r2 = run(args[:-6] + ["--output", out + "2", "--workers", "0"])
    check(r2.returncode == 0, "second run exits 0")
    if r2.returncode == 0:
        with open(os.path.join(out + "2", "summary.json")) as f:
            t2 = json.load(f)["training"]
        check(t2["weights_checksum"] == t["weights_checksum"],
              "same seed, other worker count: same weights (%s vs %s)" % (t2["weights_checksum"], t["weights_checksum"]))

    # Errors.
    missing = os.path.join(tmp, "no-such-dir")
    r = run([TRAIN, "--config", study, "--dataset", missing, "--output", os.path.join(tmp, "e1")])
    check(r.returncode == 2, "missing dataset: exit 2 (got %d)" % r.returncode)
    check(missing in r.stderr and "no such dataset directory" in r.stderr,
          "missing dataset: message names the path and the reason: " + r.stderr.strip())

    r = run([TRAIN, "--config", os.path.join(tmp, "nope.toml"), "--dataset", missing])
    check(r.returncode == 2 and "nope.toml" in r.stderr, "missing study file: exit 2, named: " + r.stderr.strip())

    r = run([TRAIN, "--dataset", missing])
    check(r.returncode == 2 and "--config" in r.stderr, "no --config: exit 2: " + r.stderr.strip())

    r = run([TRAIN, "--config", study, "--dataset", os.path.join(tmp, "train"), "--epochs", "zero"])
    check(r.returncode == 2 and "--epochs" in r.stderr, "bad --epochs: exit 2: " + r.stderr.strip())

    wrong = os.path.join(tmp, "wrong-size.toml")
    with open(wrong, "w") as f:
        f.write(STUDY.format(out=tmp, size=100))
    r = run([TRAIN, "--config", wrong, "--dataset", os.path.join(tmp, "train"), "--output", os.path.join(tmp, "e2")])
    check(r.returncode == 2 and "64" in r.stderr and "100" in r.stderr,
          "field size differs from the study: exit 2: " + r.stderr.strip())

    r = run([TRAIN, "--config", study, "--dataset", os.path.join(tmp, "train"),
             "--validation", missing, "--output", os.path.join(tmp, "e3")])
    check(r.returncode == 2 and missing in r.stderr and "validation" in r.stderr,
          "missing validation set: exit 2: " + r.stderr.strip())

    # A truncated field file.
    broken = os.path.join(tmp, "broken")
    shutil.copytree(os.path.join(tmp, "train"), broken)
    victim = os.path.join(broken, "sim_000003", "temperature.npy")
    with open(victim, "r+b") as f:
        f.truncate(os.path.getsize(victim) - 40)
    r = run([TRAIN, "--config", study, "--dataset", broken, "--output", os.path.join(tmp, "e4")])
    check(r.returncode == 2 and victim in r.stderr and "truncated" in r.stderr,
          "truncated file: exit 2, named: " + r.stderr.strip())
finally:
    shutil.rmtree(tmp, ignore_errors=True)

if failures:
    print("%d check(s) failed" % len(failures))
    sys.exit(1)
print("all checks passed")
