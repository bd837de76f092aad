"""End to end: one melissa-server, four heat clients under mpirun (2 ranks
each, 32x32 grid, 20 steps). Every step arrives exactly once with the
checksum the solver computed; a client killed midway and restarted with
attempt + 1 still gives exactly 20 steps; garbage bytes and an oversized frame
close only their own connections."""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

STEPS = 20
SIMS = 4
work = tmpdir("e2e")
study = write_study(work, parameters={"count": SIMS})
params = design(study)
check(len(params) == SIMS and all(len(p) == 5 for p in params), "the server's design has 4 rows of 5 parameters")

# --sink train or dataset over a study without client.steps: refused like the study file would be.
for sink in ("train", "dataset"):
    r = subprocess.run([SERVER, "--config", study, "--output", os.path.join(work, "refused"), "--sink", sink],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 2 and f"--sink {sink} needs client.steps" in r.stderr,
          f"--sink {sink} without client.steps: exit 2, said why (got {r.returncode})")

# A slow sink (100 ms per step) and a 8 KiB credit window (two 4 KiB steps):
# clients block in melissa_send, so a client can be killed in the middle.
server = Server(study, work, "--sink-delay-ms", "100", "--window-kb", "8")

# Malformed input first, while the study runs: each connection is closed with a reason.
garbage = socket.create_connection((server.host, server.port))
garbage.sendall(b"GET / HTTP/1.1\r\nHost: melissa\r\n\r\n" + b"x" * 64)
reply, closed = recv_all_until_closed(garbage)
check(closed, "garbage bytes: the server closed the connection")
check(b"bad magic" in reply, "garbage bytes: the error frame says why (bad magic)")

huge = socket.create_connection((server.host, server.port))
huge.sendall(frame(1, dtype=3, count=10, payload=b"version=1\n"))
huge.sendall(frame(5, dtype=1, sim=0, attempt=1, count=1 << 40, length=0xFFFFFFFF))
reply, closed = recv_all_until_closed(huge)
check(closed, "oversized frame: the server closed the connection")
check(b"exceeds the limit" in reply, "oversized frame: refused before allocation, reason sent")

clients = {}
sums = {}
for sim in range(SIMS):
    sums[sim] = os.path.join(work, f"checksum.{sim}.txt")
    clients[sim] = start(heat_argv(params[sim], steps=STEPS, checksum_file=sums[sim]),
                         env=client_env([server.address], sim, attempt=1),
                         stdout=open(os.path.join(work, f"client.{sim}.out"), "w"), stderr=subprocess.STDOUT)

# Kill simulation 2 (its whole mpirun process group) once it is part-way through.
victim = 2
deadline = time.time() + 60
while f"session opened: sim {victim} attempt 1" not in server.read_log():
    if time.time() > deadline:
        fail("simulation 2 never connected:\n" + server.read_log())
    time.sleep(0.05)
time.sleep(0.6)  # the slow sink stores <= 10 steps/s: sim 2 is part-way through
os.killpg(clients[victim].pid, signal.SIGKILL)
clients[victim].wait()
sums[victim] = os.path.join(work, f"checksum.{victim}.attempt2.txt")
clients[victim] = start(heat_argv(params[victim], steps=STEPS, checksum_file=sums[victim]),
                        env=client_env([server.address], victim, attempt=2),
                        stdout=open(os.path.join(work, f"client.{victim}.attempt2.out"), "w"),
                        stderr=subprocess.STDOUT)

for sim, p in clients.items():
    rc = p.wait(120)
    if rc != 0:
        fail(f"client {sim} exited with {rc}:\n" + open(os.path.join(work, f"client.{sim}.out")).read())
check(server.wait(60) == 0, "the server ended on its own once all simulations ended")

s = server.summary()
check(s["steps_stored"] == SIMS * STEPS, f"exactly {SIMS} x {STEPS} steps stored (got {s['steps_stored']})")
check(s["simulations_done"] == SIMS, "all simulations done")
for sim in range(SIMS):
    rec = s["simulations"][str(sim)]
    check(rec["steps"] == STEPS, f"sim {sim}: exactly {STEPS} steps stored")
    check(rec["checksum"] == read_checksum_total(sums[sim]), f"sim {sim}: checksum equals the solver's")
killed = s["simulations"][str(victim)]
check(killed["attempts"] == [1, 2], "the killed simulation shows attempts 1 and 2")
check(killed["duplicates"] > 0,
      f"the restarted attempt resent steps that were dropped as duplicates ({killed['duplicates']})")
check(killed["duplicates"] < STEPS, "the killed attempt had not delivered everything (killed midway)")
check(s["duplicates"] == killed["duplicates"], "no duplicates for the other simulations")
log = server.read_log()
check("bad magic" in log and "exceeds the limit" in log, "the server log names both rejected connections")
print("PASS")
