"""Checkpoints and restarts of the modes without a trainer (issue 11), end to
end: real melissa-run, local backend.

  statistics  statistics mode with Sobol (tests/statistics_sink/toy_client.py,
              pick-freeze groups of 7): the server is SIGKILLed once a
              checkpoint holds a complete simulation; the study completes
              (exit 0), server_restarts = 1 from that checkpoint, no
              simulation complete in it runs again, every simulation and
              group is folded in, and every statistic equals (1e-9 relative)
              that of the same study run without interruption
  statistics-sigterm  the same study; melissa-shell checkpoint mid-study
              answers with a checkpoint (reason shell) that verifies; then the
              server gets SIGTERM: it
              checkpoints (reason sigterm) and exits 75, the launcher restarts
              it from that checkpoint, the statistics equal the uninterrupted
              run's
  statistics-launcher-lost  melissa-run is SIGKILLed mid-study: the server
              checkpoints (reason launcher_lost) and stops by itself;
              melissa-run --resume completes the study without rerunning what
              was complete, the statistics equal the uninterrupted run's
  statistics-ranks2  the statistics study with server.ranks = 2 (each rank
              folds its share of the cells; rank 0 decides the checkpoints,
              rank 1 writes its part of each): server rank 1 alone is
              SIGKILLed once a checkpoint holds a complete simulation; the
              study completes, server_restarts = 1 from a checkpoint with both
              ranks' accumulators, nothing complete in it runs again, the
              statistics equal the uninterrupted (two-rank) run's
  statistics-ranks2-sigterm  the same two-rank study; SIGTERM to server rank 1
              only: it asks rank 0, both ranks write a checkpoint (reason
              sigterm) and exit 75, the launcher restarts them from it, the
              statistics equal the uninterrupted run's
  statistics-ranks2-launcher-lost  statistics-launcher-lost with two server
              ranks: both stop with one checkpoint holding both parts
  dataset     the dataset sink (melissa-heat), no checkpoint: the server is
              SIGKILLed once some simulations' files are complete; the study
              completes (exit 0), server_restarts = 1, no simulation whose
              files were complete runs again, and every simulation's files
              are complete once (no .part left), byte for byte those of an
              uninterrupted run

    e2e_modes.py statistics|statistics-sigterm|statistics-launcher-lost|statistics-ranks2|
                 statistics-ranks2-sigterm|statistics-ranks2-launcher-lost|dataset|dataset-resume
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import HEAT, RUN, SHELL, check, fail, rank_of, tmpdir, write_study  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def run(argv):
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(p, timeout=200):
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        print(out[-4000:])
        fail("melissa-run did not end in time")
    return p.returncode, out


def wait_for(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    fail(f"timed out waiting for {what}")


def server_pids(out):
    text = subprocess.run(["pgrep", "-f", "melissa-server --config " + out], capture_output=True,
                          text=True).stdout
    return [int(p) for p in text.split()]


def kill_server(out):
    pids = server_pids(out)
    check(len(pids) == 1, f"one server process runs ({pids})")
    os.kill(pids[0], signal.SIGKILL)


def restart_of(out):
    summary = json.load(open(os.path.join(out, "summary.json")))
    print("restarts:", json.dumps(summary.get("restarts")))
    check(summary["server_restarts"] == 1, f"server_restarts = 1 ({summary.get('server_restarts')})")
    restart = summary["restarts"][0]
    check("signal 9" in restart["reason"] or "lost the connection" in restart["reason"],
          f"the reason says how the server ended ({restart['reason']})")
    return summary, restart


def no_rerun(summary, complete, since):
    rerun = sorted({j["sim_id"] for j in summary["jobs"]
                    if j["kind"] == "client" and j["sim_id"] in complete and j["submitted_at"] >= since})
    check(not rerun, f"no simulation complete before the kill ran again ({len(complete)} complete, "
                     f"rerun: {rerun})")


# --- statistics ------------------------------------------------------------

GROUPS, STEPS, CELLS = 4, 6, 50
STATS = ("mean", "variance", "min", "max", "sobol_first", "sobol_total", "sobol_first_low",
         "sobol_total_high")


def statistics_study(work, name, delay, ranks=1):
    toy = ["sh", "-c", f'sleep {delay}; exec "$0" "$@"', sys.executable,
           os.path.join(HERE, "..", "statistics_sink", "toy_client.py"), "smooth", str(STEPS), str(CELLS)]
    path = write_study(
        work, file=name + ".toml",
        study={"name": name, "output_dir": os.path.join(work, name), "seed": 3, "mode": "statistics"},
        # client_timeout: a server whose launcher is lost stops min(it, 30) s after
        # its last session closed.
        launcher={"job_limit": 7, "poll_interval": 0.2, "max_server_restarts": 2, "client_timeout": 8},
        server={"port": None, "ranks": ranks},
        client={"command": toy, "ranks": 1, "steps": STEPS,
                "env": {"MELISSA_SOURCE_DIR": os.environ.get("MELISSA_SOURCE_DIR", "")}},
        parameters={"count": GROUPS},
        fields=[{"name": "field", "size": CELLS}],
        # every_batches counts the steps folded in (42 per group of 7).
        checkpoint={"every_batches": 20, "every_seconds": 0, "keep": 100})
    with open(path, "a") as f:
        f.write("[statistics]\nmoments = 2\nmin_max = true\nsobol = true\n")
    return path


def checkpoints(out):
    root = os.path.join(out, "checkpoints")
    if not os.path.isdir(root):
        return []
    return sorted(os.path.join(root, n) for n in os.listdir(root) if n.startswith("ckpt-"))


def complete_in(ckpt):
    table = json.load(open(os.path.join(ckpt, "study", "simulation_table.json")))
    return {sim for sim, state in enumerate(table["states"]) if state == "complete"}


def same_statistics(work):
    """Every statistic of the interrupted study ("stormy") equals the uninterrupted one's."""
    def field(name, stat):
        return np.load(os.path.join(work, name, "statistics", "field", stat + ".npy"))
    worst = 0.0
    for stat in STATS:
        a, b = field("calm", stat), field("stormy", stat)
        scale = np.maximum(np.abs(a), 1e-300)
        diff = np.where(np.isnan(a), 0, np.abs(b - a) / scale)
        worst = max(worst, float(np.nanmax(diff)))
        check(a.shape == b.shape and np.array_equal(np.isnan(a), np.isnan(b))
              and bool(np.all(np.abs(b - a) <= 1e-9 * scale + 1e-12 * np.nanmax(np.abs(a)))),
              f"{stat}: equal to the uninterrupted study's")
    print(f"largest relative difference to the uninterrupted run: {worst:.2e}")


def uninterrupted(work, ranks=1):
    rc, text = finish(run([RUN, statistics_study(work, "calm", 0, ranks)]))
    if rc != 0:
        print(text[-4000:])
    check(rc == 0, f"the uninterrupted study exits 0 (got {rc})")


def statistics():
    work = tmpdir("ckpt-modes-statistics")
    uninterrupted(work)

    study = statistics_study(work, "stormy", 1)
    out = os.path.join(work, "stormy")
    p = run([RUN, study])

    def ready():
        c = checkpoints(out)
        try:
            return bool(c) and bool(complete_in(c[-1]))
        except (OSError, ValueError):
            return False
    wait_for(lambda: ready() or p.poll() is not None, 120, "a checkpoint with a complete simulation")
    check(p.poll() is None, "the study is still running when the checkpoint appears")
    pids = server_pids(out)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)  # no checkpoint between choosing and killing
    present = checkpoints(out)
    print("checkpoints when the server is killed:", [os.path.basename(c) for c in present])
    killed_at = time.time()
    kill_server(out)
    rc, text = finish(p)
    if rc != 0:
        print(text[-5000:])
    check(rc == 0, f"melissa-run exits 0 after the server restart (got {rc})")
    summary, restart = restart_of(out)
    check(restart["action"] == "from_checkpoint" and restart["checkpoint"] == present[-1],
          f"restarted from the newest checkpoint ({restart['checkpoint']})")
    ckpt = restart["checkpoint"]
    manifest = json.load(open(os.path.join(ckpt, "manifest.json")))
    paths = {f["path"] for f in manifest["files"]}
    check({"rank-0/statistics.bin", "rank-0/received_steps.json", "study/simulation_table.json"} <= paths,
          f"the checkpoint holds the accumulators, the received steps and the table ({sorted(paths)})")
    check(restart["batch"] == manifest["batch"] > 0, f"its count of steps folded ({manifest['batch']})")
    complete = complete_in(ckpt)
    no_rerun(summary, complete, killed_at - 1)
    sink = summary["server"][0]["sink"]
    check(sink["simulations_folded"] == GROUPS * 7 and sink["groups_folded"] == GROUPS
          and sink["groups_left_out"] == [],
          f"all {GROUPS} groups ({GROUPS * 7} simulations) folded in, none left out "
          f"({sink['simulations_folded']}, {sink['groups_folded']})")
    check(summary["simulations"]["completed"] == GROUPS * 7, f"every simulation completed ({summary['simulations']})")
    figures = sink.get("checkpoints", {})
    check(figures.get("written", 0) >= 1 and figures.get("failed") == 0
          and json.load(open(os.path.join(figures["last_path"], "manifest.json")))["reason"] == "end_of_study",
          f"the restored server's figures: its last checkpoint is the end of the study ({figures})")

    same_statistics(work)


def statistics_sigterm():
    work = tmpdir("ckpt-modes-sigterm")
    uninterrupted(work)
    out = os.path.join(work, "stormy")
    p = run([RUN, statistics_study(work, "stormy", 1)])
    wait_for(lambda: len(checkpoints(out)) >= 1 or p.poll() is not None, 120, "a first checkpoint")
    check(p.poll() is None, "the study is still running")
    # On demand: rank 0's coordinator passes the request to the statistics sink.
    r = subprocess.run([SHELL, out, "-c", "checkpoint"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, HOME=work))
    print("melissa-shell checkpoint:", r.returncode, r.stdout.strip(), r.stderr.strip())
    check(r.returncode == 0 and r.stdout.startswith("checkpoint written: "),
          f"melissa-shell checkpoint answers with the checkpoint ({r.stdout.strip()} {r.stderr.strip()})")
    path = r.stdout.split("checkpoint written: ", 1)[1].split(" (batch", 1)[0]
    check(json.load(open(os.path.join(path, "manifest.json")))["reason"] == "shell",
          f"{os.path.basename(path)} has reason shell")
    pids = server_pids(out)
    check(len(pids) == 1, f"one server process runs ({pids})")
    os.kill(pids[0], signal.SIGTERM)
    rc, text = finish(p)
    if rc != 0:
        print(text[-5000:])
    check(rc == 0, f"melissa-run exits 0 after the server's restart (got {rc})")
    summary = json.load(open(os.path.join(out, "summary.json")))
    print("restarts:", json.dumps(summary.get("restarts")))
    check(summary["server_restarts"] == 1, f"server_restarts = 1 ({summary.get('server_restarts')})")
    restart = summary["restarts"][0]
    check("exit code 75" in restart["reason"], f"the server exited 75 ({restart['reason']})")
    reason = json.load(open(os.path.join(restart["checkpoint"], "manifest.json")))["reason"]
    check(restart["action"] == "from_checkpoint" and reason == "sigterm",
          f"restarted from the checkpoint SIGTERM wrote ({os.path.basename(restart['checkpoint'])}: {reason})")
    no_rerun(summary, complete_in(restart["checkpoint"]), restart["time"])
    same_statistics(work)


def statistics_launcher_lost(ranks=1):
    work = tmpdir("ckpt-modes-launcher-lost")
    uninterrupted(work, ranks)
    out = os.path.join(work, "stormy")
    p = run([RUN, statistics_study(work, "stormy", 1, ranks)])
    wait_for(lambda: len(checkpoints(out)) >= 1 or p.poll() is not None, 120, "a first checkpoint")
    check(p.poll() is None, "the study is still running")
    pids = server_pids(out)
    p.kill()
    p.wait()
    wait_for(lambda: not server_pids(out), 120, "the server to stop by itself")
    chosen = checkpoints(out)[-1]
    reason = json.load(open(os.path.join(chosen, "manifest.json")))["reason"]
    check(reason == "launcher_lost", f"the server's last checkpoint says the launcher was lost ({reason})")
    if ranks > 1:
        files = {f["path"] for f in json.load(open(os.path.join(chosen, "manifest.json")))["files"]}
        check("rank-1/statistics.bin" in files, f"it holds rank 1's part ({sorted(files)})")
    rank0 = json.load(open(os.path.join(out, "server-summary.rank0.json")))
    check(rank0.get("stopped", {}).get("checkpoint", {}).get("path") == chosen,
          f"the server's summary names that checkpoint ({rank0.get('stopped')})")
    complete = complete_in(chosen)
    elapsed_before = json.load(open(os.path.join(chosen, "study", "study_state.json")))["elapsed_s"]
    check(elapsed_before > 0, f"the checkpoint holds the study's elapsed time ({elapsed_before:.1f} s)")
    rc, text = finish(run([RUN, "--resume", out]))
    if rc != 0:
        print(text[-5000:])
    check(rc == 0, f"melissa-run --resume exits 0 (got {rc})")
    summary = json.load(open(os.path.join(out, "summary.json")))
    check(summary["resumed_from"]["checkpoint"] == chosen, f"resumed from {os.path.basename(chosen)}")
    check(summary["elapsed_s"] > elapsed_before,
          f"the resumed study's elapsed time counts on ({summary['elapsed_s']:.1f} s > {elapsed_before:.1f} s)")
    no_rerun(summary, complete, 0)
    for rank in range(ranks):
        sink = summary["server"][rank]["sink"]
        check(sink["simulations_folded"] == GROUPS * 7 and sink["groups_folded"] == GROUPS,
              f"rank {rank}: every simulation and group folded in "
              f"({sink['simulations_folded']}, {sink['groups_folded']})")
    same_statistics(work)
    del pids


def both_ranks_folded(summary):
    for rank in (0, 1):
        sink = summary["server"][rank]["sink"]
        check(sink["simulations_folded"] == GROUPS * 7 and sink["groups_folded"] == GROUPS,
              f"rank {rank}: every simulation and group folded in "
              f"({sink['simulations_folded']}, {sink['groups_folded']})")


def statistics_ranks2(signal_to_rank1):
    work = tmpdir("ckpt-modes-ranks2")
    uninterrupted(work, ranks=2)
    calm = json.load(open(os.path.join(work, "calm", "summary.json")))
    last = calm["server"][0]["sink"]["checkpoints"]["last_path"]
    files = {f["path"] for f in json.load(open(os.path.join(last, "manifest.json")))["files"]}
    check({"rank-0/statistics.bin", "rank-1/statistics.bin", "rank-1/received_steps.json"} <= files,
          f"the uninterrupted run's last checkpoint holds both ranks' parts ({sorted(files)})")
    out = os.path.join(work, "stormy")
    p = run([RUN, statistics_study(work, "stormy", 1, ranks=2)])

    def ready():
        c = checkpoints(out)
        try:
            return bool(c) and bool(complete_in(c[-1]))
        except (OSError, ValueError):
            return False
    wait_for(lambda: ready() or p.poll() is not None, 120, "a checkpoint with a complete simulation")
    check(p.poll() is None, "the study is still running when the checkpoint appears")
    pids = server_pids(out)
    rank1 = [pid for pid in pids if rank_of(pid) == 1]
    check(len(rank1) == 1, f"server rank 1 found ({pids})")
    if signal_to_rank1 == signal.SIGKILL:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)  # no checkpoint between choosing and killing
    present = checkpoints(out)
    print("checkpoints when rank 1 is signalled:", [os.path.basename(c) for c in present])
    os.kill(rank1[0], signal_to_rank1)
    if signal_to_rank1 == signal.SIGKILL:
        for pid in pids:
            if pid != rank1[0]:
                os.kill(pid, signal.SIGCONT)
    rc, text = finish(p)
    if rc != 0:
        print(text[-5000:])
    check(rc == 0, f"melissa-run exits 0 after the server restart (got {rc})")
    summary = json.load(open(os.path.join(out, "summary.json")))
    print("restarts:", json.dumps(summary.get("restarts")))
    check(summary["server_restarts"] == 1, f"server_restarts = 1 ({summary.get('server_restarts')})")
    restart = summary["restarts"][0]
    ckpt = restart["checkpoint"]
    manifest = json.load(open(os.path.join(ckpt, "manifest.json")))
    paths = {f["path"] for f in manifest["files"]}
    check(manifest["ranks"] == 2 and {"rank-0/statistics.bin", "rank-1/statistics.bin", "rank-0/received_steps.json",
                                      "rank-1/received_steps.json", "study/simulation_table.json"} <= paths,
          f"the checkpoint holds both ranks' accumulators and received steps ({sorted(paths)})")
    if signal_to_rank1 == signal.SIGKILL:
        # Rank 0, resumed, may still commit a checkpoint whose parts were all
        # written before the kill (never one without rank 1's part).
        check(restart["action"] == "from_checkpoint" and (ckpt in present or ckpt > present[-1]),
              f"restarted from a checkpoint present at the kill or committed just after ({ckpt})")
    else:
        check("exit code 75" in restart["reason"], f"the server ranks exited 75 ({restart['reason']})")
        check(restart["action"] == "from_checkpoint" and manifest["reason"] == "sigterm",
              f"restarted from the checkpoint rank 1's SIGTERM asked for ({os.path.basename(ckpt)}: "
              f"{manifest['reason']})")
    no_rerun(summary, complete_in(ckpt), restart["time"])
    both_ranks_folded(summary)
    same_statistics(work)


# --- dataset ---------------------------------------------------------------

SIMS, DSTEPS, GRID = 8, 40, 8


def dataset_study(work, name, delay):
    return write_study(
        work, file=name + ".toml",
        study={"name": name, "output_dir": os.path.join(work, name), "seed": 5},
        launcher={"job_limit": 2, "poll_interval": 0.2, "max_server_restarts": 2},
        server={"sink": "dataset", "port": None},
        client={"command": ["sh", "-c", f'sleep {delay}; exec "$0" "$@"', HEAT, "--grid", str(GRID),
                            "--steps", str(DSTEPS)], "ranks": None, "steps": DSTEPS},
        parameters={"bounds": None, "count": SIMS},
        fields=[{"name": "temperature", "size": GRID * GRID}])


def complete_on_disk(out):
    root = os.path.join(out, "dataset")
    if not os.path.isdir(root):
        return set()
    return {int(n[4:]) for n in os.listdir(root)
            if os.path.exists(os.path.join(root, n, "parameters.npy"))}


def dataset():
    work = tmpdir("ckpt-modes-dataset")
    rc, text = finish(run([RUN, dataset_study(work, "calm", 0)]))
    if rc != 0:
        print(text[-4000:])
    check(rc == 0, f"the uninterrupted study exits 0 (got {rc})")

    out = os.path.join(work, "stormy")
    p = run([RUN, dataset_study(work, "stormy", 1.5)])
    wait_for(lambda: len(complete_on_disk(out)) >= 2 or p.poll() is not None, 120,
             "two simulations complete on disk")
    check(p.poll() is None, "the study is still running")
    pids = server_pids(out)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    complete = complete_on_disk(out)
    print("complete on disk when the server is killed:", sorted(complete))
    killed_at = time.time()
    kill_server(out)
    rc, text = finish(p)
    if rc != 0:
        print(text[-5000:])
    check(rc == 0, f"melissa-run exits 0 after the server restart (got {rc})")
    summary, restart = restart_of(out)
    no_rerun(summary, complete, killed_at - 1)
    log = open(os.path.join(out, "launcher.log")).read()
    check(f"{len(complete)} simulations complete, never rerun" in log or
          f"{len(complete)} simulation complete, never rerun" in log,
          "the new server told the launcher what is complete on disk")
    check(summary["simulations"]["completed"] == SIMS, f"all {SIMS} simulations completed")
    for sim in range(SIMS):
        d = os.path.join(out, "dataset", f"sim_{sim:06d}")
        left = [n for n in os.listdir(d) if n.endswith(".part")]
        check(not left, f"simulation {sim}: no partial file left ({left})")
        for name in ("temperature.npy", "parameters.npy"):
            a = open(os.path.join(work, "calm", "dataset", f"sim_{sim:06d}", name), "rb").read()
            b = open(os.path.join(d, name), "rb").read()
            check(a == b, f"simulation {sim}: {name} equals the uninterrupted run's ({len(b)} bytes)")
        check(np.load(os.path.join(d, "temperature.npy")).shape == (DSTEPS, GRID * GRID),
              f"simulation {sim}: every step in its file")


def dataset_resume():
    """Ctrl-C of melissa-run mid-study, then melissa-run --resume: a dataset
    study has no checkpoint; the resumed run keeps the complete files."""
    work = tmpdir("ckpt-modes-dataset-resume")
    rc, text = finish(run([RUN, dataset_study(work, "calm", 0)]))
    check(rc == 0, f"the uninterrupted study exits 0 (got {rc})")
    out = os.path.join(work, "stopped")
    p = run([RUN, dataset_study(work, "stopped", 1.5)])
    wait_for(lambda: len(complete_on_disk(out)) >= 2 or p.poll() is not None, 120,
             "two simulations complete on disk")
    check(p.poll() is None, "the study is still running")
    p.send_signal(signal.SIGINT)
    rc, text = finish(p)
    check(rc == 130, f"melissa-run exits 130 after Ctrl-C (got {rc})")
    wait_for(lambda: not server_pids(out), 30, "no server process left")
    complete = complete_on_disk(out)
    check(len(complete) < SIMS, f"the study stopped before its end ({len(complete)} of {SIMS} complete)")
    first = json.load(open(os.path.join(out, "summary.json")))
    attempts = {}
    for j in first["jobs"]:
        if j["kind"] == "client":
            attempts[j["sim_id"]] = max(attempts.get(j["sim_id"], 0), j["attempt"])
    started = time.time()
    rc, text = finish(run([RUN, "--resume", out]))
    if rc != 0:
        print(text[-5000:])
    check(rc == 0, f"melissa-run --resume exits 0 (got {rc})")
    check("resuming the dataset study" in text, "it says it resumes the dataset study")
    summary = json.load(open(os.path.join(out, "summary.json")))
    no_rerun(summary, complete, started - 1)
    check(summary["simulations"]["completed"] == SIMS, f"all {SIMS} simulations completed")
    for j in summary["jobs"]:
        if j["kind"] == "client" and j["sim_id"] in attempts:
            check(j["attempt"] > attempts[j["sim_id"]],
                  f"simulation {j['sim_id']} runs again as attempt {j['attempt']} "
                  f"(after {attempts[j['sim_id']]})")
    for sim in range(SIMS):
        for name in ("temperature.npy", "parameters.npy"):
            a = open(os.path.join(work, "calm", "dataset", f"sim_{sim:06d}", name), "rb").read()
            b = open(os.path.join(out, "dataset", f"sim_{sim:06d}", name), "rb").read()
            check(a == b, f"simulation {sim}: {name} equals the uninterrupted run's ({len(b)} bytes)")
    rc, text = finish(run([RUN, "--resume", out]))
    check(rc == 0 and "already finished" in text, f"a second --resume says the study finished (exit {rc})")


mode = sys.argv[1]
{"statistics": statistics, "statistics-sigterm": statistics_sigterm,
 "statistics-launcher-lost": statistics_launcher_lost,
 "statistics-ranks2": lambda: statistics_ranks2(signal.SIGKILL),
 "statistics-ranks2-sigterm": lambda: statistics_ranks2(signal.SIGTERM),
 "statistics-ranks2-launcher-lost": lambda: statistics_launcher_lost(ranks=2),
 "dataset": dataset, "dataset-resume": dataset_resume}[mode]()
print("PASS")
