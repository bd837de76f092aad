#!/usr/bin/env python3
"""A small client of the project's Python API for the statistics tests.

    toy_client.py FUNCTION STEPS CELLS x1 x2 ...

sends STEPS time steps of a field of CELLS values:
  ishigami  every cell of step t: (1 + t / 10) * ishigami(x1, x2, x3), a = 7, b = 0.1
            (the inputs are mapped from the study's bounds to [-pi, pi])
  smooth    cell c of step t: x1 + x2 sin(c) + x3 x4 (t + 1) / 500 + x5 cos(c) (5 parameters)
With STATS_KILL_SIM = the simulation id, its first attempt SIGKILLs itself
after half of its steps (a member that dies mid-run)."""
import math
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.environ.get("MELISSA_SOURCE_DIR", ""), "api", "python"))
import melissa_api  # noqa: E402

function, steps, cells = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = [float(v) for v in sys.argv[4:]]
lo, hi = float(os.environ.get("STATS_LO", "100")), float(os.environ.get("STATS_HI", "500"))


def values(t):
    c = np.arange(cells, dtype=np.float64)
    if function == "ishigami":
        u = [-math.pi + 2 * math.pi * (v - lo) / (hi - lo) for v in x[:3]]
        y = math.sin(u[0]) + 7 * math.sin(u[1]) ** 2 + 0.1 * u[2] ** 4 * math.sin(u[0])
        return np.full(cells, (1 + t / 10) * y)
    return x[0] + x[1] * np.sin(c) + x[2] * x[3] * (t + 1) / 500 + x[4] * np.cos(c)


melissa_api.init("field", cells, None)
kill = os.environ.get("STATS_KILL_SIM") == os.environ.get("MELISSA_SIM_ID") and \
    os.environ.get("MELISSA_ATTEMPT") == "1"
for t in range(steps):
    if kill and t == steps // 2:
        os.kill(os.getpid(), signal.SIGKILL)
    melissa_api.send("field", values(t))
melissa_api.finalize()
