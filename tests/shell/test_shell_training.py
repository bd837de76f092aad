"""melissa-shell train / buffer / steering against a real training study:
melissa-run (local backend), one server rank with server.sink = "train" on a
tiny MLP, melissa-heat clients on an 8 x 8 grid.

The study is paused from the shell so that the figures can be read at known
moments: before any simulation (no batch yet), then with one simulation's
steps in the Reservoir (the trainer keeps drawing from it while production is
paused). Skipped (exit 77) when melissa-server is built without LibTorch.
"""
import json
import math
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import HEAT, RUN, SHELL, check, fail, skip_without_torch, start, tmpdir, write_study  # noqa: E402

STEPS = 200
# Each client waits 0.5 s before it runs (its parameters follow as "$@"): a
# bare 8 x 8 heat client takes a quarter of a second, and between the shell
# seeing the first simulation completed and its pause the launcher refilled
# the slot at once, so all 3 simulations could end before the pause and the
# study with them (it did, under load). Now the pause must come more than
# 3.75 s late for the 6 simulations to end.
CLIENT = ["sh", "-c", 'sleep 0.5; exec "$0" "$@"', HEAT, "--grid", "8", "--steps", str(STEPS)]

work = tmpdir("shell-training")
out = os.path.join(work, "out")


def shell_study(file, output_dir, sink, **training):
    return write_study(
        work, file, study={"name": "shell-train", "output_dir": output_dir, "seed": 3, "mode": "training"},
        launcher={"job_limit": 1, "poll_interval": 0.2}, server={"sink": sink, "port": None},
        client={"command": CLIENT, "ranks": 1, "steps": STEPS},
        parameters={"count": 6}, fields=[{"name": "temperature", "size": 64}], **training)


study = shell_study("study.toml", out, "train",
                    buffer={"policy": "reservoir", "capacity": 400, "threshold": 20},
                    training={"time_steps": STEPS, "hidden": [16], "batch_size": 4, "learning_rate": 3e-3,
                              "metrics_every": 5, "threads": 1})


def shell_in(directory, *args, timeout=30):
    r = subprocess.run([SHELL, directory, *args], capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, HOME=work))
    return r.returncode, r.stdout, r.stderr


# --- a study that does not train: the ranks say so, the shell says it once ---
plain_out = os.path.join(work, "plain-out")
plain = shell_study("plain.toml", plain_out, "count")  # the same study, without training
t0 = time.time()
plain_run = start([RUN, plain], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
deadline = time.time() + 30
while not os.path.exists(os.path.join(plain_out, "shell.json")):
    if time.time() > deadline or plain_run.poll() is not None:
        fail("the study without training published no shell.json")
    time.sleep(0.1)
shell_in(plain_out, "-c", "pause")
deadline = time.time() + 60
while True:
    rc, so, se = shell_in(plain_out, "-c", "train")
    if "no server rank is up yet" not in se or time.time() > deadline:
        break
    time.sleep(0.2)
check(rc == 1 and se == 'error: this study does not train (server.sink is not "train")\n',
      f"train without training: the rank's reason, exit 1 ({se!r})")
rc, so, se = shell_in(plain_out, "-c", "buffer")
check(rc == 1 and se == "error: this study has no training buffer\n", f"buffer without training ({se!r})")
rc, so, se = shell_in(plain_out, "-c", "train --watch 0.5")
check(rc == 1 and "does not train" in se and so == "", "train --watch without training ends at once, exit 1")
plain_run.send_signal(signal.SIGTERM)  # quicker than stop, which waits for late clients
try:
    plain_run.communicate(timeout=60)
except subprocess.TimeoutExpired:
    fail("the study without training did not end on SIGTERM")

# --- is training built in? melissa-server says so at once when it is not ---
skip_without_torch(work, study)


def shell(*args, timeout=30):
    return shell_in(out, *args, timeout=timeout)


def shell_json(command, expect_ok=True):
    rc, so, se = shell("--json", "-c", command)
    if rc not in (0, 1) or not so.strip():
        fail(f"melissa-shell -c '{command}' exited {rc}: {so!r} {se!r}")
    answer = json.loads(so)
    if expect_ok and not answer["ok"]:
        fail(f"'{command}' answered {answer}")
    return answer


def wait_for(what, predicate, seconds=90):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if run.poll() is not None:
            fail(f"the study ended while waiting for {what}:\n{run.stdout.read()}")
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    fail(f"timed out waiting for {what}")


run = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
wait_for("shell.json", lambda: os.path.exists(os.path.join(out, "shell.json")), 30)
# Paused before the server asks for its first simulation: nothing is submitted.
check(shell_json("pause")["paused"] is True, "pause at once")

# --- the rank is up, no simulation ran: the trainer waits for the watermark ---
first = wait_for("the server rank", lambda: (lambda a: a if a["ok"] else None)(
    shell_json("train", expect_ok=False)))
check(first["state"] in ("starting", "running") and len(first["ranks"]) == 1,
      f"train: one rank ({first})")
rank = first["ranks"][0]
for key in ("rank", "state", "batches", "samples_seen", "train_loss", "validation_loss",
            "min_validation_loss", "samples_per_s", "mean_samples_per_s", "batch_wait_s",
            "busy_fraction", "buffer_population", "buffer_unseen", "learning_rate", "elapsed_s"):
    check(key in rank, f"train: rank 0 reports {key}")
check(rank["rank"] == 0 and rank["batches"] == 0 and rank["state"] in ("starting", "training"),
      f"train: no batch before any simulation ({rank})")
buf = shell_json("buffer")["ranks"][0]
check(buf["policy"] == "reservoir" and buf["capacity"] == 400 and buf["threshold"] == 20
      and buf["population"] == 0 and buf["inserts"] == 0, f"buffer: empty reservoir of 400 ({buf})")
rc, so, se = shell("-c", "steering")
check(rc == 1 and "error: this study does not steer (no [breed] section)" in se,
      f"steering: this study does not steer (rc={rc}, {se!r})")

# --- one simulation, then paused again: the trainer draws from its steps ---
check(shell_json("resume")["paused"] is False, "resume")
wait_for("a first simulation", lambda: [j for j in shell_json("jobs completed")["jobs"]
                                        if j["kind"] == "client"])
shell_json("pause")
trained = wait_for("batches", lambda: (lambda r: r if r.get("batches", 0) >= 5 else None)(
    shell_json("train")["ranks"][0]))
check(trained["state"] == "training", f"train: the rank is training ({trained['state']})")
check(math.isfinite(trained["train_loss"]) and trained["train_loss"] > 0,
      f"train: a positive training loss ({trained['train_loss']})")
check(trained["validation_loss"] is None, "train: no validation set, no validation loss")
check(abs(trained["learning_rate"] - 3e-3) < 1e-9, "train: the study's learning rate")
check(trained["samples_seen"] >= 4 * 5 and 0 <= trained["busy_fraction"] <= 1,
      f"train: samples seen, busy fraction ({trained['samples_seen']}, {trained['busy_fraction']})")
buf = shell_json("buffer")["ranks"][0]
check(buf["inserts"] >= STEPS and buf["population"] >= STEPS and buf["batches"] >= 5
      and buf["samples_drawn"] >= 20, f"buffer: one simulation in, batches drawn ({buf})")
hist = buf["repetitions"]["histogram"]
check(sum(hist) == buf["inserts"] and buf["repetitions"]["max"] == len(hist) - 1,
      f"buffer: the histogram covers every sample inserted ({hist})")

rc, so, se = shell("-c", "train")
lines = so.splitlines()
check(rc == 0 and lines[0].split()[:3] == ["rank", "state", "batches"]
      and lines[1].split()[:2] == ["0", "training"] and lines[2].startswith("samples seen "),
      f"train as text: the table and the totals ({so!r})")
rc, so, se = shell("-c", "buffer")
check(rc == 0 and "  policy:        reservoir\n" in so and "  (times sampled:samples)\n" in so,
      f"buffer as text ({so!r})")

p = subprocess.Popen([SHELL, out, "-c", "train --watch 0.5"], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True, env=dict(os.environ, HOME=work))
blocks = 0
deadline = time.time() + 20
while blocks < 2 and time.time() < deadline:
    if p.stdout.readline().startswith("train, every 0.5s (Ctrl-C to stop), "):
        blocks += 1
p.send_signal(signal.SIGINT)
so, se = p.communicate(timeout=10)


def study_state():
    # Paused with a simulation to go, the study must still run; if it ended,
    # its output says why (the shell then lost it for that reason).
    if run.poll() is None:
        return "still running"
    return f"ended ({run.returncode}):\n{run.stdout.read()[-3000:]}"


check(blocks == 2 and p.returncode == 0,
      f"train --watch refreshes, Ctrl-C ends it (rc={p.returncode}, {blocks} blocks, {se!r}; the study: {study_state()})")

# --- the rest of the study: training ends, the study succeeds ---
shell_json("resume")
try:
    log, _ = run.communicate(timeout=240)
except subprocess.TimeoutExpired:
    fail("the study did not finish")
check(run.returncode == 0, f"the study completes:\n{log[-2000:]}")
summary = json.load(open(os.path.join(out, "summary.json")))
training = summary["server"][0]["training"]
check(training["state"] == "done" and training["batches"] >= trained["batches"],
      "the summary's training figures follow those the shell saw")
print(f"all shell training checks passed in {time.time() - t0:.1f} s", flush=True)
