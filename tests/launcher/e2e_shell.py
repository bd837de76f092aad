"""melissa-shell against a live melissa-run study (local backend):
status, set job_limit, kill <id> (the retry shows up), pause/resume, a wrong
token refused, an unknown command answered with help."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

RUN = os.path.join(BUILD, "apps", "melissa-run", "melissa-run")
SHELL = os.path.join(BUILD, "apps", "melissa-shell", "melissa-shell")

work = tmpdir("launcher-shell")
out_dir = os.path.join(work, "out")
study = os.path.join(work, "study.toml")
with open(study, "w") as f:
    f.write(f"""[study]
name = "shell"
output_dir = "{out_dir}"
[launcher]
job_limit = 1
max_retries = 2
poll_interval = 0.2
[client]
command = ["{HEAT}", "--grid", "100", "--steps", "1500"]
ranks = 2
[parameters]
names = ["T0", "T1", "T2", "T3", "T4"]
count = 6
[[fields]]
name = "temperature"
size = 10000
""")
run = start([RUN, study], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def shell(*args, token=None):
    argv = [SHELL, out_dir] + (["--token", token] if token else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def shell_json(command):
    r = shell("--json", "-c", command)
    if r.returncode != 0:
        fail(f"melissa-shell -c '{command}' exited {r.returncode}: {r.stdout} {r.stderr}")
    return json.loads(r.stdout)


deadline = time.time() + 30
while not os.path.exists(os.path.join(out_dir, "shell.json")):
    if time.time() > deadline or run.poll() is not None:
        fail("no shell.json")
    time.sleep(0.1)
check(oct(os.stat(os.path.join(out_dir, "shell.json")).st_mode & 0o777) == "0o600", "shell.json is 0600")

status = shell_json("status")
check(status["study"] == "shell" and status["job_limit"] == 1, "status: study name and job_limit 1")
r = shell("-c", "status")
check(r.returncode == 0 and "shell" in r.stdout, "status as text")

# Wait for the first client to run, then kill it: it must come back as attempt 2.
deadline = time.time() + 60
running = []
while not running and time.time() < deadline:
    running = [j for j in shell_json("jobs running")["jobs"] if j["kind"] == "client"]
    time.sleep(0.2)
check(bool(running), "a client job is running")
victim = running[0]
killed = shell_json(f"kill {victim['id']}")
check(killed["ok"], f"kill {victim['id']} accepted")

check(shell_json("set job_limit 2")["job_limit"] == 2, "set job_limit 2")
check(shell_json("status")["job_limit"] == 2, "status shows job_limit 2")
check(shell_json("pause")["paused"] is True and shell_json("status")["paused"] is True, "pause")
check(shell_json("resume")["paused"] is False, "resume")

r = shell("-c", "status", token="0" * 32)
check(r.returncode != 0 and "wrong token" in (r.stdout + r.stderr), "a wrong token is refused")
r = shell("-c", "frobnicate")
check(r.returncode != 0 and "help" in (r.stdout + r.stderr).lower(), "an unknown command gets help")
bad_kill = shell("--json", "-c", "kill 9999")
check(bad_kill.returncode != 0 and "no job 9999" in bad_kill.stdout, "killing an unknown job is an error")

try:
    output, _ = run.communicate(timeout=240)
except subprocess.TimeoutExpired:
    fail("the study did not finish")
print(output)
check(run.returncode == 0, "the study completes")
summary = json.load(open(os.path.join(out_dir, "summary.json")))
rows = [j for j in summary["jobs"] if j["kind"] == "client" and j["sim_id"] == victim["sim_id"]]
first = [j for j in rows if j["attempt"] == victim["attempt"]][0]
check(first["reason"] == "killed from melissa-shell" and first["state"] in ("failed", "cancelled"),
      f"the killed job is recorded with its reason ({first})")
check(any(j["attempt"] == victim["attempt"] + 1 and j["state"] == "completed" for j in rows),
      "its retry (attempt + 1) completed")
check(summary["server"][0]["steps_stored"] == 6 * 1500, "every step stored exactly once")
check(not os.path.exists(os.path.join(out_dir, "shell.json")), "shell.json removed at the end")
print("PASS")
