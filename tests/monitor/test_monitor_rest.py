"""The monitor's REST API against a live study (melissa-run, local backend):
the token (401 without it), every endpoint's JSON, a kill through POST and
its retry in /api/jobs, pause / resume / job_limit, malformed requests that
leave the server standing, the training tail, and the finished study served
again by `melissa-run --monitor-only`.

The study trains (skipped, exit 77, without LibTorch) with a FIFO buffer whose
watermark is above what the simulations produce: nothing is trained before the
last simulation ends, so the training tail (every batch) is long and certain.
"""
import json
import os
import signal
import socket
import subprocess
import time

from monitor_common import (RUN, Monitor, check, fail, skip_without_torch, slow_first_attempt_client,
                            start, tmpdir, wait_for_file, write_study)

STEPS, SIMS = 500, 6
work = tmpdir("monitor-rest")
out = os.path.join(work, "out")
client = slow_first_attempt_client(work, 32, STEPS)
study = write_study(
    work, study={"name": "monitor-rest", "output_dir": out, "seed": 3, "mode": "training"},
    launcher={"job_limit": 2, "poll_interval": 0.2, "max_retries": 2},
    server={"sink": "train", "port": None},
    client={"command": [client], "ranks": 1, "steps": STEPS},
    parameters={"count": SIMS}, fields=[{"name": "temperature", "size": 32 * 32}],
    buffer={"policy": "fifo", "capacity": 3500, "threshold": 3400},
    training={"time_steps": STEPS, "hidden": [1024, 1024], "batch_size": 1, "learning_rate": 1e-3,
              "metrics_every": 50, "threads": 1})
skip_without_torch(work, study)

log_path = os.path.join(work, "melissa-run.log")
run = start([RUN, study], stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
wait_for_file(os.path.join(out, "monitor.json"), run)
m = Monitor(out)
check(m.file_mode == 0o600, f"monitor.json is private (mode {oct(m.file_mode)})")
check(m.url.startswith("http://127.0.0.1:") and m.url.endswith("/?token=" + m.token),
      f"monitor.json: a loopback URL with the token ({m.url})")
shell = json.load(open(os.path.join(out, "shell.json")))
check(m.token == shell["token"], "the monitor's token is the study's shell token")


def wait_for(what, predicate, seconds=120):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if run.poll() is not None:
            fail(f"the study ended while waiting for {what}:\n{open(log_path).read()[-3000:]}")
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    fail(f"timed out waiting for {what}")


# --- the token ---
for token, why in ((None, "no token"), ("0" * 32, "a wrong token")):
    status, j, h = m.get("/api/status", token=token)
    check(status == 401 and j["ok"] is False and h["WWW-Authenticate"] == "Bearer", f"{why}: 401 ({j})")
status, j, _ = m.post("/api/pause", token=None)
check(status == 401, "no token: a command is refused too")
status, page, _ = m.get("/", token=None)
check(status == 401 and "?token=" in page["error"], "the page without its token: 401 says how")
status, _, h = m.get("/?token=" + m.token, token=None)
cookie = h["Set-Cookie"].split(";")[0]
port = m.base.rsplit(":", 1)[1]
check(status == 303 and h["Location"] == "/" and cookie == f"melissa_monitor_token_{port}=" + m.token,
      "the printed URL sets the cookie and drops the token from the address")
status, page, h = m.get("/", token=None, headers={"Cookie": cookie})
check(status == 200 and "<title>Melissa study monitor</title>" in page and h["Content-Type"].startswith("text/html"),
      "with the cookie: the dashboard")
status, js, h = m.get("/static/chart.min.js", token=None, headers={"Cookie": cookie})
check(status == 200 and "Chart.js v3.9.1" in js[:300], "Chart.js is served by the study itself (no CDN)")

# --- status ---
st = m.ok("/api/status")
for key in ("study", "state", "elapsed_s", "simulations", "job_limit", "paused", "steps_stored",
            "steps_per_s", "server_ranks", "output_dir", "training_tail", "live"):
    check(key in st, f"status has {key}")
check(st["study"] == "monitor-rest" and st["live"] is True and st["job_limit"] == 2 and st["output_dir"] == out,
      f"status: the study's name, live, its job limit and directory ({st})")
check(set(st["simulations"]) == {"requested", "completed", "running", "pending", "failed", "retries"},
      "status: the simulation counts")
check(set(st["jobs"]) == {"pending", "running", "completed", "failed", "cancelled"}, "status: job counts by state")

# --- the kill: simulation 0's first attempt hangs until it is killed ---
def hanging():
    jobs = m.ok("/api/jobs?state=running")["jobs"]
    return next((j for j in jobs if j["kind"] == "client" and j["sim_id"] == 0 and j["attempt"] == 1), None)


victim = wait_for("simulation 0 attempt 1 running", hanging)
check(all(j["state"] == "running" for j in m.ok("/api/jobs?state=RUNNING")["jobs"]), "jobs?state= filters (any case)")
one = m.ok(f"/api/jobs/{victim['id']}")["job"]
check(one["id"] == victim["id"] and one["sim_id"] == 0 and one["attempt"] == 1 and one["kind"] == "client"
      and "parameters" in one and "raw_state" in one, f"jobs/<id>: the job's fields ({one})")
server_job = m.ok("/api/jobs/1")["job"]
check(server_job["kind"] == "server", "jobs/1 is the server")
status, j, _ = m.post("/api/jobs/1/kill")
check(status == 409 and j["error"] == "job 1 is the server; use stop", f"killing the server is refused ({j})")
status, j, _ = m.post(f"/api/jobs/{victim['id']}/kill")
check(status == 200 and j == {"ok": True, "killed": victim["id"]}, f"POST kill: {j}")


def retried():
    jobs = m.ok("/api/jobs")["jobs"]
    old = next(j for j in jobs if j["id"] == victim["id"])
    new = [j for j in jobs if j["kind"] == "client" and j["sim_id"] == 0 and j["attempt"] == 2]
    return (old, new[0]) if old["state"] == "cancelled" and new else None


old, new = wait_for("the retry of simulation 0", retried)
check(old["reason"] == "killed from melissa-shell" and new["id"] > victim["id"],
      f"the killed attempt is cancelled, attempt 2 is a new job ({old['reason']}, job {new['id']})")
st = m.ok("/api/status")
check(st["simulations"]["retries"] >= 1 and st["jobs"]["cancelled"] == 1, "status counts the retry and the cancelled job")
status, j, _ = m.post(f"/api/jobs/{victim['id']}/kill")
check(status == 409 and j["error"] == f"job {victim['id']} already cancelled", f"a second kill: 409 ({j})")
cancelled = m.ok("/api/jobs?state=cancelled")["jobs"]
check([j["id"] for j in cancelled] == [victim["id"]], "jobs?state=cancelled: the killed job")

# --- pause, resume, job_limit: the shell's commands ---
check(m.ok("/api/pause", "POST") == {"ok": True, "paused": True}, "POST pause")
check(m.ok("/api/status")["paused"] is True, "status: paused")
# (Paused again below, while the malformed requests take their time: the
# study must not reach its end before the training tail is watched.)
check(m.ok("/api/job_limit", "POST", b'{"job_limit": 3}') == {"ok": True, "job_limit": 3}, "POST job_limit")
check(m.ok("/api/status")["job_limit"] == 3, "status: the new job limit")

# --- bad input: 400 with a message; wrong paths and methods ---
for path, body, expect in (
        ("/api/job_limit", b"three", "the body must be a JSON object {\"job_limit\": N}"),
        ("/api/job_limit", b'{"job_limit": 0}', "job_limit must be an integer >= 1, got 0"),
        ("/api/job_limit", b'{"job_limit": "4"}', 'job_limit must be an integer >= 1, got "4"'),
        ("/api/jobs/abc/kill", b"", "a job id is a number from 1 to 4294967295, got 'abc'")):
    status, j, _ = m.post(path, body)
    check(status == 400 and j == {"ok": False, "error": expect}, f"POST {path} {body!r}: 400 ({j})")
for path, expect in (("/api/jobs?state=sleeping", 400), ("/api/jobs/99999", 404), ("/api/jobs/0", 400),
                     ("/api/training?since=x", 400), ("/api/nothing", 404), ("/api/pause", 405),
                     ("/api/statistics", 404), ("/api/steering", 404)):
    status, j, _ = m.get(path)
    check(status == expect and j["ok"] is False and j["error"], f"GET {path}: {expect} ({j['error']})")
check(m.get("/api/steering")[1]["error"] == "this study does not steer (no [breed] section)",
      "steering: the rank's reason")
check(m.ok("/api/job_limit", "POST", b'{"job_limit": 2}')["job_limit"] == 2, "job_limit back to 2")


# --- malformed requests: each gets its answer (or its connection closed); the server stands ---
def raw(data, read=True):
    with socket.create_connection(("127.0.0.1", int(m.base.rsplit(":", 1)[1])), timeout=5) as s:
        s.sendall(data)
        if not read:
            return b""
        chunks = []
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
        except socket.timeout:
            pass
        return b"".join(chunks)


auth = f"Authorization: Bearer {m.token}\r\n".encode()
answers = {
    "garbage": raw(b"\x00\xff\x16\x03\x01 not http at all\r\n\r\n"),
    "no version": raw(b"GET /api/status\r\n\r\n"),
    "bad percent-encoding": raw(b"GET /api/jobs?state=%zz%e2 HTTP/1.1\r\nHost: x\r\n" + auth + b"Connection: close\r\n\r\n"),
    "huge body": raw(b"POST /api/job_limit HTTP/1.1\r\nHost: x\r\n" + auth +
                     b"Content-Length: 1000000\r\nConnection: close\r\n\r\n" + b"{" * 100000),
    "lying length": raw(b"POST /api/pause HTTP/1.1\r\nHost: x\r\n" + auth + b"Content-Length: 50\r\n\r\n{}", read=False),
    "long header": raw(b"GET /api/status HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 20000 + b"\r\nConnection: close\r\n\r\n"),
    "binary path": raw(b"GET /api/jobs/\xff\xfe HTTP/1.1\r\nHost: x\r\n" + auth + b"Connection: close\r\n\r\n"),
}
for what, reply in answers.items():
    first = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    print(f"   {what}: {first or '(connection closed)'}", flush=True)
    check(not first or first.split()[1] in ("400", "401", "404", "413", "414", "431"),
          f"malformed request ({what}): refused, not served ({first!r})")
check(m.ok("/api/status")["study"] == "monitor-rest", "the server still answers after the malformed requests")
check(m.ok("/api/resume", "POST") == {"ok": True, "paused": False}, "POST resume")
check(m.ok("/api/status")["paused"] is False, "status: resumed")

# --- the buffer, then the training tail ---
buf = m.ok("/api/buffer")
rank0 = buf["ranks"][0]
check(rank0["policy"] == "fifo" and rank0["capacity"] == 3500 and rank0["threshold"] == 3400,
      f"buffer: rank 0's FIFO ({rank0['policy']}, {rank0['capacity']})")
tail = wait_for("the training tail", lambda: (lambda s: s if s["training_tail"] else None)(m.ok("/api/status")), 240)
sims = tail["simulations"]
check(sims["completed"] == SIMS and sims["running"] == 0 and sims["pending"] == 0,
      f"the tail starts once every simulation has ended ({sims})")
tail = wait_for("rank 0's figures in the tail",
                lambda: (lambda s: s if s["training_tail"] and s["training"] else None)(m.ok("/api/status")), 60)
check(tail["training"]["batches"] >= 0 and tail["training"]["state"] in ("training", "done"),
      f"status: the training's figures in the tail ({tail['training']})")
training = wait_for("metrics rows", lambda: (lambda t: t if t["rows"] else None)(m.ok("/api/training")), 120)
check(training["columns"][:3] == ["step", "wall_time", "samples_seen"] and training["ranks"][0]["rank"] == 0,
      f"training: metrics.csv's columns and rank 0's figures ({training['columns']})")
last = training["rows"][-1]["step"]
later = m.ok(f"/api/training?since={last}")
check(all(r["step"] > last for r in later["rows"]) and later["since"] == last, "training?since= returns later rows only")

try:
    run.wait(timeout=300)
except subprocess.TimeoutExpired:
    fail("the study did not finish")
log = open(log_path).read()
check(run.returncode == 0, f"the study completes:\n{log[-2000:]}")
check(f"dashboard: {m.url}" in log, "melissa-run printed the dashboard's URL")
tail_lines = [line for line in log.splitlines() if "training tail: " in line]
check(tail_lines and f"{SIMS}/{SIMS} completed" in tail_lines[-1] and " batches, loss " in tail_lines[-1],
      f"the progress line shows the training in the tail ({tail_lines[-1:] })")
check(not any("training tail" not in line and " 0 steps/s" in line for line in log.splitlines()[-40:]
              if "completed" in line and f"{SIMS}/{SIMS}" in line),
      "no '0 steps/s' progress line once every simulation has ended")
check(not os.path.exists(os.path.join(out, "monitor.json")), "monitor.json is removed at the end")
summary = json.load(open(os.path.join(out, "summary.json")))
rows_csv = open(os.path.join(out, "metrics", "metrics.csv")).read().splitlines()

# --- the finished study: melissa-run --monitor-only ---
served = start([RUN, "--monitor-only", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
first = served.stdout.readline()
check(first.startswith("dashboard of the finished study monitor-rest: http://127.0.0.1:"),
      f"--monitor-only prints the URL ({first.strip()})")
m2 = Monitor(out)
check(m2.token != m.token and first.strip().endswith("?token=" + m2.token), "a fresh token for the finished study")
st = m2.ok("/api/status")
check(st["live"] is False and st["state"] == "done" and st["exit_code"] == 0
      and st["simulations"] == summary["simulations"], f"finished status from summary.json ({st['state']})")
check(m2.ok("/api/jobs")["jobs"] == summary["jobs"], "finished jobs: summary.json's table")
status, j, _ = m2.post("/api/pause")
check(status == 409 and j["error"].startswith("the study has ended"), f"a finished study refuses commands ({j})")
all_rows = m2.ok("/api/training")
check(len(all_rows["rows"]) == len(rows_csv) - 1, f"finished training: every metrics.csv row ({len(all_rows['rows'])})")
check(m2.ok("/api/buffer")["ranks"][0]["policy"] == "fifo", "finished buffer: the rank's final report")
served.send_signal(signal.SIGINT)
check(served.wait(timeout=30) == 0 and not os.path.exists(os.path.join(out, "monitor.json")),
      "--monitor-only ends on Ctrl-C and removes monitor.json")
print("all monitor REST checks passed", flush=True)
