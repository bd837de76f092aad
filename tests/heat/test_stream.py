#!/usr/bin/env python3
"""Stream mode end to end against the API tests' fake server
(tests/api/fake_server.py): every time step arrives once, in order, with the
global row-major field as float32, whatever the number of solver ranks, and
the round-robin destination of the protocol. Skipped if the fake server is
not there."""
import os
import sys
import tempfile

import numpy as np

from heat_common import PARAMS, Results, binary, mpirun, run

HEAT = binary()
GRID, STEPS, SERVER_RANKS, SIM_ID = 21, 6, 2, 5
COMMON = ["--grid", str(GRID), "--steps", str(STEPS), "--cg-tol", "1e-13"]


def stream_equals_dataset(r, tmp, FakeServer, solver_ranks):
    out = os.path.join(tmp, "ds")
    if not os.path.exists(out):
        run([HEAT, "--mode", "dataset", "--output", out, "--sim-id", str(SIM_ID)] + COMMON + PARAMS)
    expected = np.load(os.path.join(out, "sim_%06d" % SIM_ID, "temperature.npy"))
    server = FakeServer(ranks=SERVER_RANKS, fields={"temperature": GRID * GRID})
    try:
        env = {"MELISSA_SERVER_ADDRESSES": server.addresses, "MELISSA_SIM_ID": str(SIM_ID),
               "MELISSA_ATTEMPT": "1", "MELISSA_CONNECT_TIMEOUT": "20"}
        cmd = [HEAT, "--mode", "stream"] + COMMON + PARAMS
        run(mpirun(solver_ranks) + cmd if solver_ranks > 1 else cmd, extra_env=env)
        steps = {}
        misrouted = 0
        for rank in range(SERVER_RANKS):
            for f in server.steps(rank):
                steps.setdefault(f["time_step"], []).append(f)
                misrouted += (SIM_ID + f["time_step"]) % SERVER_RANKS != rank
        what = "%d solver rank(s)" % solver_ranks
        r.check(sorted(steps) == list(range(STEPS)) and all(len(v) == 1 for v in steps.values()),
                "%s: steps 0..%d arrive exactly once" % (what, STEPS - 1))
        r.check(misrouted == 0, "%s: step t of sim s on server rank (s + t) mod R" % what)
        same = all(np.array_equal(np.frombuffer(steps[t][0]["payload"], dtype="<f4"), expected[t])
                   for t in range(STEPS) if t in steps)
        r.check(same, "%s: payloads are the global row-major float32 field (= dataset rows)" % what)
        r.check(not server.violations, "%s: no protocol violation %s" % (what, server.violations))
    finally:
        server.close()


if __name__ == "__main__":
    r = Results()
    sys.path.insert(0, os.path.join(os.environ.get("MELISSA_SOURCE_DIR",
                                                   os.path.join(os.path.dirname(__file__), "..", "..")),
                                    "tests", "api"))
    try:
        from fake_server import FakeServer
    except ImportError as e:
        print("skipped: no fake server (%s)" % e)
        print("0 passed, 0 failed, 1 skipped")
        sys.exit(77)  # meson's "skipped" exit status
    with tempfile.TemporaryDirectory() as tmp:
        for ranks in (1, 2, 4):
            r.run(stream_equals_dataset, tmp, FakeServer, ranks)
    r.finish()
