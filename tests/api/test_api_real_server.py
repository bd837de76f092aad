"""The example solvers stream to a real melissa-server (2 ranks).

    /usr/bin/python3 test_api_real_server.py c|fortran|python|slow|refused

Writes a study file, starts `melissa-server --rank r --ranks 2` twice on
loopback ports (address files), runs the example for two simulations (one
under mpirun -n 2, one more with another rank count), waits for both server
ranks to exit 0 after `--expect-sims 2`, and checks their summaries: for each
simulation, the steps stored over the ranks and the wrapping sum of their
checksums equal what this test computes from the example's formula (the same
pulse as toy_solver.c, via melissa::step_checksum = XXH3-64 seeded with the
step). `slow`: the C example against server ranks with a 4 KiB credit window
and a sink that takes 20 ms per step, so the client blocks on credit at every
step and must still deliver everything. `refused`: a field size the study does
not declare; the server's reason must reach the solver's stderr. Paths: MELISSA_SERVER, TOY_SOLVER_C, TOY_SOLVER_F, TOY_SOLVER_PY (and
MELISSA_API_LIB, PYTHONPATH for Python), from tests/api/meson.build.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_api_client import (MPIRUN, Failure, check, client_env,  # noqa: E402
                             expected_checksum, run)

SIZE = 1000
STEPS = 6
SERVER_RANKS = 2

STUDY = f"""[study]
name = "api-example"

[client]
command = ["true"]

[parameters]
names = ["a"]
bounds = [0, 1]
count = 2

[[fields]]
name = "temperature"
size = {SIZE}
"""


def example_command(language):
    if language == "c":
        return [os.environ["TOY_SOLVER_C"], "--steps", str(STEPS), "--size", str(SIZE)]
    if language == "fortran":
        return [os.environ["TOY_SOLVER_F"], str(STEPS), str(SIZE)]
    return ["/usr/bin/python3", os.environ["TOY_SOLVER_PY"], "--steps", str(STEPS),
            "--size", str(SIZE)]


def start_servers(tmp, sims, extra_args=()):
    study = os.path.join(tmp, "study.toml")
    with open(study, "w") as f:
        f.write(STUDY)
    servers, address_files = [], []
    for rank in range(SERVER_RANKS):
        address_file = os.path.join(tmp, f"address.rank{rank}")
        log = open(os.path.join(tmp, f"server.rank{rank}.log"), "w")
        cmd = [os.environ["MELISSA_SERVER"], "--config", study, "--output", os.path.join(tmp, "out"),
               "--rank", str(rank), "--ranks", str(SERVER_RANKS), "--host", "127.0.0.1",
               "--port", "0", "--address-file", address_file, "--sink", "count",
               "--expect-sims", str(sims)] + list(extra_args)
        print("  server:", " ".join(cmd))
        servers.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
        address_files.append(address_file)
    deadline = time.monotonic() + 30
    while not all(os.path.exists(a) for a in address_files):
        if time.monotonic() > deadline or any(s.poll() is not None for s in servers):
            raise Failure("the server ranks did not publish their addresses")
        time.sleep(0.05)
    addresses = ",".join(open(a).read().strip() for a in address_files)
    return servers, addresses


def server_logs(tmp):
    for rank in range(SERVER_RANKS):
        path = os.path.join(tmp, f"server.rank{rank}.log")
        if os.path.exists(path):
            for line in open(path).read().splitlines()[-10:]:
                print(f"  | server {rank}: {line}")


def refused():
    with tempfile.TemporaryDirectory(prefix="melissa-api-real-") as tmp:
        servers = []
        try:
            servers, addresses = start_servers(tmp, 1)
            cmd = [os.environ["TOY_SOLVER_C"], "--steps", "2", "--size", str(SIZE - 1)]
            p = run(cmd, client_env(addresses), mpi_ranks=1)
            check(p.returncode != 0, "the solver ends with a non-zero status")
            check("refused field 'temperature'" in p.stderr and str(SIZE - 1) in p.stderr
                  and str(SIZE) in p.stderr, "the server's reason (the two sizes) is on stderr")
        except (Failure, subprocess.TimeoutExpired, OSError) as e:
            server_logs(tmp)
            print(f"FAIL: {e!r}")
            return 1
        finally:
            for s in servers:
                s.kill()
                s.wait()
    print("PASS")
    return 0


def main():
    modes = ("c", "fortran", "python", "slow", "refused")
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        print("usage: test_api_real_server.py " + "|".join(modes))
        return 2
    if sys.argv[1] == "refused":
        return refused()
    language = "c" if sys.argv[1] == "slow" else sys.argv[1]
    server_args = ["--window-kb", "4", "--sink-delay-ms", "20"] if sys.argv[1] == "slow" else []
    print(f"real server, {sys.argv[1]}: {language} example")
    # (sim id, solver ranks): the layout must not change what is stored.
    runs = [(0, 2), (1, 1)]
    with tempfile.TemporaryDirectory(prefix="melissa-api-real-") as tmp:
        servers = []
        try:
            servers, addresses = start_servers(tmp, len(runs), server_args)
            for sim_id, ranks in runs:
                env = client_env(addresses, sim_id=sim_id)
                p = run(example_command(language), env, mpi_ranks=ranks, timeout=120)
                check(p.returncode == 0, f"simulation {sim_id} ({ranks} solver ranks) exits 0")
            for rank, s in enumerate(servers):
                s.wait(timeout=60)
                check(s.returncode == 0, f"server rank {rank} exits 0 after both simulations ended")
            stored = {}
            for rank in range(SERVER_RANKS):
                with open(os.path.join(tmp, "out", f"server-summary.rank{rank}.json")) as f:
                    summary = json.load(f)
                check(summary.get("duplicates", 0) == 0, f"server rank {rank}: no duplicate")
                for sim, entry in summary["simulations"].items():
                    steps, total = stored.get(int(sim), (0, 0))
                    stored[int(sim)] = (steps + entry["steps"],
                                        (total + int(entry["checksum"], 16)) % (1 << 64))
            for sim_id, _ in runs:
                steps, total = stored.get(sim_id, (0, 0))
                check(steps == STEPS, f"simulation {sim_id}: {STEPS} steps stored over the ranks")
                check(f"{total:016x}" == expected_checksum(SIZE, STEPS, sim_id),
                      f"simulation {sim_id}: the summed checksum equals the one computed here")
        except (Failure, subprocess.TimeoutExpired, OSError, KeyError, ValueError) as e:
            server_logs(tmp)
            print(f"FAIL: {e!r}")
            return 1
        finally:
            for s in servers:
                if s.poll() is None:
                    s.kill()
                    s.wait()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
