#!/usr/bin/env python3
"""Runs a study on this machine: the server, then the clients, job_limit at a time.

    run-study-local.py STUDY.toml [--output DIR] [--build BUILD_DIR]

A stand-in for melissa-run (next milestone), local backend only: it starts
melissa-server, takes the resolved study and the design of experiments from
it, runs each simulation as `mpirun -n <client.ranks> <client.command>
<parameters...>` with the MELISSA_* environment (docs/api.md), shows progress,
and waits for the server to confirm that every simulation's steps were stored.
Job logs go to <output>/jobs/<sim>.out|.err. Exit status 0 only if every
simulation and the server succeeded.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study")
    ap.add_argument("--output", help="output directory (default: study.output_dir)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"), help="meson build directory")
    args = ap.parse_args()

    server_bin = os.path.join(args.build, "apps", "melissa-server", "melissa-server")
    # Programs named without a path in client.command are looked up in the build tree first.
    env_path = os.pathsep.join([os.path.join(args.build, "solvers", "heat"), os.environ.get("PATH", "")])

    resolved = subprocess.run([server_bin, "--config", args.study, "--print-config"], capture_output=True, text=True)
    if resolved.returncode != 0:
        sys.exit(resolved.stderr.strip() or "cannot read the study")
    study = tomllib.loads(resolved.stdout)
    output = os.path.abspath(args.output or study["study"]["output_dir"])
    os.makedirs(os.path.join(output, "jobs"), exist_ok=True)
    with open(os.path.join(output, "study.resolved.toml"), "w") as f:
        f.write(resolved.stdout)

    design_out = subprocess.run([server_bin, "--config", args.study, "--print-design"], check=True,
                                capture_output=True, text=True).stdout.strip().splitlines()
    design = [line.split(",")[1:] for line in design_out[1:]]

    addr_file = os.path.join(output, "server.addr")
    if os.path.exists(addr_file):
        os.remove(addr_file)
    server_log = open(os.path.join(output, "jobs", "server.out"), "w")
    server = subprocess.Popen([server_bin, "--config", args.study, "--output", output, "--address-file", addr_file],
                              stdout=server_log, stderr=subprocess.STDOUT, start_new_session=True)
    jobs = {}

    def stop(signum, _frame):
        print(f"\ninterrupted: cancelling {len(jobs)} running simulations and the server", flush=True)
        for p in list(jobs.values()) + [server]:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    deadline = time.time() + study["launcher"]["server_timeout"]
    while not os.path.exists(addr_file):
        if server.poll() is not None or time.time() > deadline:
            server_log.flush()
            sys.exit("the server did not start:\n" + open(server_log.name).read())
        time.sleep(0.05)
    address = open(addr_file).read().strip()
    print(f"server listening on {address}; {len(design)} simulations, {study['launcher']['job_limit']} at a time",
          flush=True)

    client = study["client"]
    ranks = client["ranks"]
    base_env = dict(os.environ, PATH=env_path, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    base_env.update(client.get("env", {}))
    pending = list(range(len(design)))
    failed, done = [], []
    started = time.time()
    while pending or jobs:
        while pending and len(jobs) < study["launcher"]["job_limit"]:
            sim = pending.pop(0)
            argv = list(client["command"]) + design[sim]
            if ranks > 1:
                argv = ["mpirun", "--oversubscribe", "-n", str(ranks)] + argv
            env = dict(base_env, MELISSA_SERVER_ADDRESSES=address, MELISSA_SIM_ID=str(sim), MELISSA_ATTEMPT="1")
            jobs[sim] = subprocess.Popen(argv, env=env, start_new_session=True,
                                         stdout=open(os.path.join(output, "jobs", f"{sim}.out"), "w"),
                                         stderr=open(os.path.join(output, "jobs", f"{sim}.err"), "w"))
        for sim, p in list(jobs.items()):
            rc = p.poll()
            if rc is None:
                continue
            del jobs[sim]
            (done if rc == 0 else failed).append(sim)
            state = "completed" if rc == 0 else f"FAILED (exit {rc}, see jobs/{sim}.err)"
            print(f"[{time.time() - started:6.1f} s] simulation {sim:3d} {state}; "
                  f"{len(done)} completed, {len(jobs)} running, {len(pending)} pending, {len(failed)} failed",
                  flush=True)
        if server.poll() is not None and (pending or jobs):
            print("the server stopped before the study ended; see jobs/server.out", flush=True)
            for p in jobs.values():
                os.killpg(p.pid, signal.SIGTERM)
            sys.exit(1)
        time.sleep(0.1)

    if failed:
        # The server waits for every simulation: stop it and keep its partial summary.
        os.killpg(server.pid, signal.SIGTERM)
    rc = server.wait()
    summary_path = os.path.join(output, "server-summary.rank0.json")
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else {}
    print(f"server: {summary.get('steps_stored', '?')} steps stored from {summary.get('simulations_done', '?')} "
          f"simulations, {summary.get('duplicates', '?')} duplicates; summary in {summary_path}", flush=True)
    if failed or rc != 0:
        print(f"study failed: simulations {failed} failed; server exit {rc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
