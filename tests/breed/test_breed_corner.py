"""Breed concentrates where the surrogate learns worst (melissa-run end to end).

100 simulations of a synthetic client (corner_client.py, Python client API):
2 parameters in [0, 1], a 64-value field that is smooth and easy everywhere
except within 0.7 of the corner (1, 1), where an unlearnable noise (seeded by
the parameters, growing toward the corner) keeps the losses high. Two at a
time, so that almost every simulation is still pending when the steering
resamples (every 500 batches; population: the last 20 completed simulations;
sigma 0.15 of the range; proposal share 0.5 -> 0.7 over 2 resamplings: 0.6
at the first, 0.7 from the second on).

Checked: the study succeeds and resampled; summary.json's "steering" has one
row per resampling (s = 1, 2, ..., the r schedule, the population within the
window) whose shrinks and fallbacks add up to the totals; from
breed-provenance.csv and the
parameters each simulation ran with (summary.json "jobs"), the proposal
points' mean distance to (1, 1) is clearly below that of the uniform points
Breed mixed in (margin 0.15) and of the study's original design (margin 0.2;
uniform points in the unit square lie 0.77 from a corner on average). The
distances are printed. About 30 s; the study's seeds are fixed, the timing of
the resamplings is not, hence the margins (measured: proposal 0.28-0.36,
uniform 0.66-0.78, design 0.81, over five runs).

    test_breed_corner.py       (MELISSA_BUILD_DIR, MELISSA_SOURCE_DIR, MELISSA_API_LIB)
"""
import csv
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corner_client.py")
API_PY = os.path.join(SOURCE, "api", "python")
# The client's interpreter needs numpy: Debian's python3, which meson runs the tests with.
CLIENT_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
SIMS, JOBS = 100, 2


def corner_study(work):
    return write_study(
        work,
        study={"name": "breed-corner", "seed": 3},
        launcher={"job_limit": JOBS, "poll_interval": 0.5},
        server={"sink": "train", "port": None},
        client={"command": [CLIENT_PYTHON, CLIENT], "ranks": None, "steps": 10,
                "env": {"MELISSA_API_LIB": os.path.abspath(API_LIB), "PYTHONPATH": os.path.abspath(API_PY),
                        "OMP_NUM_THREADS": "1"}},
        parameters={"names": ["x", "y"], "bounds": [0, 1], "sampler": "uniform", "count": SIMS},
        fields=[{"name": "u", "size": 64}],
        buffer={"policy": "reservoir", "capacity": 200, "threshold": 40},
        training={"time_steps": 10, "hidden": [32, 32], "batch_size": 16, "metrics_every": 50,
                  "output": "constant", "output_mean": 0, "output_std": 1, "threads": 1},
        breed={"period": 500, "window": 20, "sigma": 0.15, "r_start": 0.5, "r_end": 0.7, "r_steps": 2})


def distance(p):
    return math.hypot(1.0 - p[0], 1.0 - p[1])


def mean(xs):
    return sum(xs) / len(xs)


def main():
    work = tmpdir("breed-corner")
    study = corner_study(work)
    p = subprocess.run([RUN, study], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
    check(p.returncode == 0, f"melissa-run exits 0 (got {p.returncode})")
    out = os.path.join(work, "out")
    steering = json.load(open(os.path.join(out, "server-summary.rank0.json")))["steering"]
    print("steering:", json.dumps({k: v for k, v in steering.items()
                                   if k not in ("provenance", "resampling_history")}))
    check(steering["resamplings"] >= 3, f"Breed resampled ({steering['resamplings']} times)")
    # The out-of-bounds counts, per resampling and in total, reach the study summary.
    summary_steering = json.load(open(os.path.join(out, "summary.json")))["steering"]
    history = summary_steering["resampling_history"]
    check([h["s"] for h in history] == list(range(1, steering["resamplings"] + 1)),
          f"one history row per resampling, s = 1, 2, ... ({[h['s'] for h in history]})")
    check(sum(h["shrinks"] for h in history) == summary_steering["shrinks"]
          and sum(h["fallbacks"] for h in history) == summary_steering["fallbacks"],
          f"total shrinks / fallbacks ({summary_steering['shrinks']} / {summary_steering['fallbacks']}) "
          "are the sums over the resamplings")
    check(all(abs(h["r"] - (0.6 if h["s"] == 1 else 0.7)) < 1e-9 for h in history),
          f"r: 0.6 at s = 1, then 0.7 ({[h['r'] for h in history][:4]})")
    check(all(1 <= h["population"] <= 20 for h in history) and
          all(h["proposal"] <= h["points"] for h in history), "population within the window")

    original = design(study)  # noqa: F405 (melissa_testing)
    jobs = json.load(open(os.path.join(out, "summary.json")))["jobs"]
    ran = {j["sim_id"]: [float(v) for v in j["parameters"].split(",")]
           for j in jobs if j["kind"] == "client" and j["state"] == "completed"}
    check(len(ran) == SIMS, f"all {SIMS} simulations completed ({len(ran)})")
    rows = {int(r["sim"]): r for r in csv.DictReader(open(os.path.join(out, "breed-provenance.csv")))}
    proposal = [ran[s] for s, r in rows.items() if r["origin"] == "proposal"]
    uniform = [ran[s] for s, r in rows.items() if r["origin"] == "uniform"]
    kept = [ran[s] for s in ran if s not in rows]
    d_prop = mean([distance(x) for x in proposal]) if proposal else float("nan")
    d_unif = mean([distance(x) for x in uniform]) if uniform else float("nan")
    d_design = mean([distance(x) for x in original])
    d_kept = mean([distance(x) for x in kept]) if kept else float("nan")
    print(f"mean distance to (1, 1): proposal {d_prop:.3f} (n={len(proposal)}), "
          f"resampled uniform {d_unif:.3f} (n={len(uniform)}), design {d_design:.3f} (n={len(original)}), "
          f"never resampled {d_kept:.3f} (n={len(kept)})")
    near = sum(1 for x in proposal if distance(x) < 0.4)
    print(f"proposal points within 0.4 of the corner: {near} of {len(proposal)} "
          f"(uniform: {sum(1 for x in uniform if distance(x) < 0.4)} of {len(uniform)}, "
          f"design: {sum(1 for x in original if distance(x) < 0.4)} of {len(original)})")
    check(len(proposal) >= 10 and len(uniform) >= 3,
          f"enough points of each origin ran ({len(proposal)} proposal, {len(uniform)} uniform)")
    check(all(0 <= v <= 1 for x in proposal + uniform for v in x), "every resampled point lies within the bounds")
    check(d_prop < d_unif - 0.15,
          f"proposal points lie closer to the hard corner than uniform points ({d_prop:.3f} < {d_unif:.3f} - 0.15)")
    check(d_prop < d_design - 0.2,
          f"proposal points lie closer to the hard corner than the design ({d_prop:.3f} < {d_design:.3f} - 0.2)")


main()
