"""melissa-run with server.sink = "train", end to end (real processes):
  reservoir   6 heat simulations train a small MLP through a Reservoir: every
              step reaches the buffer exactly once, every sample is drawn at
              least once, metrics (CSV + TensorBoard) and the TorchScript model
              are written, and the model runs in Python
  fifo, firo  each sample is used exactly once: batches = ceil(samples / batch)
  ranks2      two server ranks (data parallelism over c10d Gloo): each rank
              gets half the steps, and both end with bit-identical weights
  validation  a validation set written by melissa-heat --mode dataset: the
              validation loss is reported, and it decreases
  bad-validation  a validation_dir that is not a dataset: exit 2 naming it
  breed       with [breed]: the steering resamples the simulations not yet
              submitted, the launcher runs them with the new parameters, the
              provenance CSV says where each came from
  torchscript a convolutional decoder written in Python (python3-torch,
              torch.jit.script) trains online through the device-generic
              path: its validation loss falls, the summary names the model
              and the device, the exported model.pt runs in Python
  torchscript-ranks2  the same model on two ranks: bit-identical weights
  bad-model   each bad model file (missing, not TorchScript, no parameters,
              wrong output size) stops the study before any simulation
              starts, with its message naming the file

    e2e_training.py reservoir|fifo|firo|ranks2|validation|bad-validation
"""
import csv
import json
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

SIMS, STEPS, GRID, BATCH = 6, 20, 8, 4


def study_file(work, policy="reservoir", ranks=1, validation_dir="", capacity=50, threshold=10,
               sims=SIMS, breed=None, model=None):
    training = {"time_steps": STEPS, "hidden": [16], "batch_size": BATCH, "metrics_every": 5,
                "validation_every": 20, "output": "constant", "output_mean": 300, "output_std": 100,
                "validation_dir": validation_dir}
    if model:
        training.update({"hidden": None, "model": model, "device": "auto", "learning_rate": 3e-3})
    return write_study(
        work,
        study={"name": "train-e2e", "seed": 5},
        launcher={"job_limit": 2},
        server={"ranks": ranks, "sink": "train", "port": None},
        client={"command": [HEAT, "--grid", str(GRID), "--steps", str(STEPS)], "ranks": None,
                "steps": STEPS},
        parameters={"bounds": None, "count": sims},
        fields=[{"name": "temperature", "size": GRID * GRID}],
        buffer={"policy": policy, "capacity": capacity, "threshold": threshold},
        training=training,
        breed=breed)


def run_study(work, **kw):
    study = study_file(work, **kw)
    p = subprocess.run([RUN, study], capture_output=True, text=True, timeout=240)
    return p, os.path.join(work, "out")


def summaries(out, ranks=1):
    return [json.load(open(os.path.join(out, f"server-summary.rank{r}.json"))) for r in range(ranks)]


def check_success(p):
    if p.returncode != 0:
        print(p.stdout[-3000:], p.stderr[-3000:])
    check(p.returncode == 0, f"melissa-run exits 0 (got {p.returncode})")


def each_sample_once(policy):
    work = tmpdir("train-" + policy)
    p, out = run_study(work, policy=policy)
    check_success(p)
    s = summaries(out)[0]
    sink, training = s["sink"], s["training"]
    total = SIMS * STEPS
    check(sink["inserts"] == total, f"{policy}: {total} samples stored, got {sink['inserts']}")
    check(sink["samples_drawn"] == total, f"{policy}: each sample drawn once ({sink['samples_drawn']})")
    check(sink["repetitions"]["histogram"] == [0, total], f"{policy}: repetition histogram [0, {total}]")
    check(training["batches"] == math.ceil(total / BATCH),
          f"{policy}: {math.ceil(total / BATCH)} batches, got {training['batches']}")


def reservoir():
    work = tmpdir("train-reservoir")
    p, out = run_study(work)
    check_success(p)
    s = summaries(out)[0]
    sink, training = s["sink"], s["training"]
    total = SIMS * STEPS
    check(s["steps_stored"] == total and s["duplicates"] == 0, "every step stored exactly once")
    check(sink["inserts"] == total, f"all {total} steps reached the reservoir ({sink['inserts']})")
    hist = sink["repetitions"]["histogram"]
    check(sum(hist) == total and hist[0] == 0, "every sample was drawn at least once (none evicted unseen)")
    check(sink["samples_drawn"] > total, "the reservoir reuses samples (drawn with replacement)")
    check(sink["exhausted"] and sink["population"] == 0, "the buffer drained after production ended")
    check(training["batches"] * BATCH >= sink["samples_drawn"] - BATCH, "batches account for the draws")
    check(training["state"] == "done", "training ended")
    check(math.isfinite(training["train_loss"]), "a finite training loss")
    rows = list(csv.DictReader(open(os.path.join(out, "metrics", "metrics.csv"))))
    check(len(rows) >= training["batches"] // 5 - 1, f"one metrics row per 5 batches ({len(rows)} rows)")
    check(all(float(r["samples_per_s"]) > 0 for r in rows[1:]), "throughput recorded in every row")
    check(float(rows[0]["buffer_population"]) >= 10, "the first row sees the buffer past its threshold")
    events = [f for f in os.listdir(os.path.join(out, "metrics")) if f.startswith("events.out.tfevents.")]
    check(len(events) == 1 and os.path.getsize(os.path.join(out, "metrics", events[0])) > 100,
          "a TensorBoard event file with records")
    model = training["model"]["torchscript"]
    script = (
        "import sys, torch\n"
        "m = torch.jit.load(sys.argv[1])\n"
        "y = m(torch.full((3, 6), 0.5))\n"
        "assert tuple(y.shape) == (3, %d), y.shape\n"
        "assert torch.isfinite(y).all()\n"
        "assert 0 < float(y.mean()) < 1000, float(y.mean())\n"
        "print('model ok', tuple(y.shape), float(y.mean()))\n" % (GRID * GRID))
    r = subprocess.run(["/usr/bin/python3", "-c", script, model], capture_output=True, text=True)
    if r.returncode != 0 and "No module named 'torch'" in r.stderr:
        print("python3-torch missing: model not loaded in Python")
    else:
        print(r.stdout, r.stderr[-2000:])
        check(r.returncode == 0, "the TorchScript model runs in Python and predicts temperatures")


def ranks2():
    work = tmpdir("train-ranks2")
    p, out = run_study(work, ranks=2)
    check_success(p)
    s0, s1 = summaries(out, 2)
    total = SIMS * STEPS
    check(s0["sink"]["inserts"] + s1["sink"]["inserts"] == total, "the ranks share every step once")
    check(s0["sink"]["inserts"] == total // 2, "steps spread round robin over the two ranks")
    check(s0["training"]["steps"] == s1["training"]["steps"], "both ranks took the same optimizer steps")
    check(s0["training"]["weights_checksum"] == s1["training"]["weights_checksum"],
          "both ranks end with bit-identical weights")


def make_validation_set(dir):
    for sim, params in enumerate([["150", "400", "250", "300", "450"], ["450", "120", "380", "200", "300"]]):
        subprocess.run([HEAT, "--mode", "dataset", "--output", dir, "--sim-id", str(sim), "--grid", str(GRID),
                        "--steps", str(STEPS)] + params, check=True, capture_output=True)


def validation():
    work = tmpdir("train-validation")
    vdir = os.path.join(work, "validation")
    make_validation_set(vdir)
    p, out = run_study(work, validation_dir=vdir)
    check_success(p)
    training = summaries(out)[0]["training"]
    check(training["min_validation_loss"] is not None, "a validation loss is reported")
    rows = [r for r in csv.DictReader(open(os.path.join(out, "metrics", "metrics.csv")))
            if r["validation_loss"]]
    check(len(rows) >= 2, f"validation rows in metrics.csv ({len(rows)})")
    first, best = float(rows[0]["validation_loss"]), training["min_validation_loss"]
    check(best < first, f"the validation MSE decreases ({first:.1f} -> {best:.1f})")


def bad_validation():
    work = tmpdir("train-badval")
    missing = os.path.join(work, "nowhere")
    p, _ = run_study(work, validation_dir=missing)
    log = p.stderr + p.stdout
    jobs = os.path.join(work, "out", "jobs")
    for f in sorted(os.listdir(jobs)) if os.path.isdir(jobs) else []:
        log += open(os.path.join(jobs, f), errors="replace").read()
    check(p.returncode != 0, f"the study fails (exit {p.returncode})")
    check(missing in log and "no such dataset directory" in log, "the error names the validation directory")


def breed():
    work = tmpdir("train-breed")
    sims = 14
    p, out = run_study(work, sims=sims, breed={"period": 20, "window": 4, "sigma": 0.05})
    check_success(p)
    s = summaries(out)[0]
    steering = s["steering"]
    check(steering["kind"] == "breed" and steering["resamplings"] > 0, f"Breed resampled ({steering['resamplings']} times)")
    check(steering["completed"] == sims, "every completed simulation joined the population")
    design = subprocess.run([SERVER, "--config", os.path.join(work, "study.toml"), "--print-design"],
                            capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    original = {int(line.split(",", 1)[0]): line.split(",", 1)[1] for line in design}
    launched = {j["sim_id"]: j["parameters"] for j in json.load(open(os.path.join(out, "summary.json")))["jobs"]
                if j["kind"] == "client"}
    rows = list(csv.DictReader(open(os.path.join(out, "breed-provenance.csv"))))
    changed = {int(r["sim"]) for r in rows}
    check(len(changed) == steering["simulations_resampled"] and changed, f"{len(changed)} simulations in the provenance CSV")
    check(min(changed) >= 2, "the first job_limit simulations keep their design parameters")
    check(all(launched[i] == original[i] for i in range(2)), "simulations 0 and 1 ran the design")
    check(all(launched[i] != original[i] for i in changed), "every resampled simulation ran its new parameters")
    check(all(r["origin"] in ("proposal", "uniform") for r in rows), "each new point says where it came from")
    check(all(100 <= float(v) <= 500 for i in changed for v in launched[i].split(",")),
          "every new parameter lies within its bounds")


# A small convolutional decoder: (5 parameters, time) -> GRID x GRID field.
DECODER = """
import sys, torch
class Decoder(torch.nn.Module):
    def __init__(self, grid: int):
        super().__init__()
        self.grid = grid
        self.lift = torch.nn.Linear(6, 16 * (grid // 4) * (grid // 4))
        self.up1 = torch.nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1)
        self.up2 = torch.nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1)
    def forward(self, x):
        h = torch.tanh(self.lift(x)).reshape(x.size(0), 16, self.grid // 4, self.grid // 4)
        return self.up2(torch.tanh(self.up1(h))).reshape(x.size(0), self.grid * self.grid)
torch.manual_seed(1)
torch.jit.script(Decoder(int(sys.argv[2]))).save(sys.argv[1])
"""


def scripted_model(work, grid=GRID, name="decoder.pt"):
    path = os.path.join(work, name)
    script = os.path.join(work, "make_decoder.py")  # torch.jit.script reads the class's source file
    open(script, "w").write(DECODER)
    r = subprocess.run(["/usr/bin/python3", script, path, str(grid)], capture_output=True, text=True)
    if r.returncode != 0:
        fail("cannot script the decoder (python3-torch):\n" + r.stderr[-2000:])
    return path


def torchscript():
    work = tmpdir("train-torchscript")
    vdir = os.path.join(work, "validation")
    make_validation_set(vdir)
    p, out = run_study(work, validation_dir=vdir, model=scripted_model(work))
    check_success(p)
    training = summaries(out)[0]["training"]
    check(training["model_kind"] == "torchscript", f"the summary names the model kind ({training['model_kind']})")
    check(training["device"] == "cpu", f"the rank trained on the CPU ({training['device']})")
    log = open(os.path.join(out, "jobs", "1.out"), errors="replace").read()  # job 1: the server
    check("rank 0: training TorchScript " in log and
          "parameters) on cpu (device = \"auto\" and LibTorch sees no CUDA device)" in log,
          "the server logs the model, the device and why")
    top = json.load(open(os.path.join(out, "summary.json")))["training"]
    check(top["device"] == "cpu", "summary.json says where the rank trained")
    rows = [r for r in csv.DictReader(open(os.path.join(out, "metrics", "metrics.csv"))) if r["validation_loss"]]
    check(len(rows) >= 2, f"validation rows in metrics.csv ({len(rows)})")
    first, best = float(rows[0]["validation_loss"]), training["min_validation_loss"]
    check(best < first, f"the TorchScript model's validation MSE falls ({first:.1f} -> {best:.1f})")
    script = ("import sys, torch\n"
              "m = torch.jit.load(sys.argv[1])\n"
              "y = m(torch.full((3, 6), 0.5))\n"
              "assert tuple(y.shape) == (3, %d), y.shape\n"
              "assert 50 < float(y.mean()) < 600, float(y.mean())\n"
              "print('model ok', float(y.mean()))\n" % (GRID * GRID))
    r = subprocess.run(["/usr/bin/python3", "-c", script, training["model"]["torchscript"]],
                       capture_output=True, text=True)
    print(r.stdout, r.stderr[-2000:])
    check(r.returncode == 0, "the exported model (the decoder wrapped) predicts temperatures in Python")


def torchscript_ranks2():
    work = tmpdir("train-torchscript-ranks2")
    p, out = run_study(work, ranks=2, model=scripted_model(work))
    check_success(p)
    s0, s1 = summaries(out, 2)
    check(s0["training"]["steps"] == s1["training"]["steps"] > 0, "both ranks took the same optimizer steps")
    check(s0["training"]["weights_checksum"] == s1["training"]["weights_checksum"],
          "both ranks end with bit-identical weights of the TorchScript model")


def bad_model():
    work = tmpdir("train-badmodel")
    garbage = os.path.join(work, "garbage.pt")
    open(garbage, "w").write("not a zip archive\n")
    empty = os.path.join(work, "empty.pt")
    script = os.path.join(work, "make_identity.py")
    open(script, "w").write("import sys, torch\n"
                            "class Id(torch.nn.Module):\n"
                            "    def forward(self, x):\n"
                            "        return x\n"
                            "torch.jit.script(Id()).save(sys.argv[1])\n")
    r = subprocess.run(["/usr/bin/python3", script, empty], capture_output=True, text=True)
    check(r.returncode == 0, "a parameterless module scripted " + r.stderr[-500:])
    wrong = scripted_model(work, grid=4, name="grid4.pt")  # 16 values, the field has 64
    missing = os.path.join(work, "missing.pt")
    cases = [(missing, missing + ": no such file"),
             (garbage, garbage + ": not a TorchScript module torch::jit::load can read ("),
             (empty, empty + ": the module has no parameters (nothing to train)"),
             (wrong, wrong + ": forward of a batch of 2 gives [2, 16] = 16 values per sample; "
                             "the trained field has 64")]
    for i, (model, message) in enumerate(cases):
        case = os.path.join(work, str(i))
        os.makedirs(case)
        p, out = run_study(case, model=model)
        log = p.stderr + p.stdout
        jobs = os.path.join(out, "jobs")
        for f in sorted(os.listdir(jobs)) if os.path.isdir(jobs) else []:
            log += open(os.path.join(jobs, f), errors="replace").read()
        check(p.returncode != 0, f"{os.path.basename(model)}: the study fails (exit {p.returncode})")
        check("training.model: " + message in log, f"{os.path.basename(model)}: the error says '{message}'")
        launched = [j for j in json.load(open(os.path.join(out, "summary.json")))["jobs"] if j["kind"] == "client"] \
            if os.path.exists(os.path.join(out, "summary.json")) else []
        check(not launched, f"{os.path.basename(model)}: no simulation started ({len(launched)})")


mode = sys.argv[1] if len(sys.argv) > 1 else "reservoir"
{"reservoir": reservoir, "fifo": lambda: each_sample_once("fifo"), "firo": lambda: each_sample_once("firo"),
 "ranks2": ranks2, "validation": validation, "bad-validation": bad_validation, "breed": breed,
 "torchscript": torchscript, "torchscript-ranks2": torchscript_ranks2, "bad-model": bad_model}[mode]()
