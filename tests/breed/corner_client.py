#!/usr/bin/python3
"""A synthetic simulation for the Breed integration test: 2 parameters
(x, y) in [0, 1], a field `u` of 64 values over 10 time steps, streamed with
the project's Python client API (api/python/melissa_api.py).

The field is smooth in the parameters and in time everywhere, easy for a
small MLP, except near the corner (1, 1): within distance 0.7 of it (hardest at the corner) a
noise of amplitude up to 1.5 (growing toward the corner) is added, seeded by
the parameters, so it is deterministic per simulation but cannot be learned
from them. Losses stay high there.

    corner_client.py X Y          (the launcher appends the parameters;
                                   MELISSA_* variables come from the launcher)
"""
import sys

import numpy as np

import melissa_api

SIZE, STEPS, RADIUS = 64, 10, 0.7


def field(x, y, t):
    k = np.arange(SIZE) / SIZE
    smooth = (0.5 + 0.5 * y) * np.sin(2 * np.pi * (k + 0.3 * x)) * (1.0 - 0.5 * t / STEPS) + 0.3 * x
    d = np.hypot(1.0 - x, 1.0 - y)
    amplitude = 1.5 * max(0.0, 1.0 - d / RADIUS)
    if amplitude > 0:
        rng = np.random.default_rng([int(x * 2**32), int(y * 2**32), t])
        smooth = smooth + amplitude * rng.standard_normal(SIZE)
    return smooth


def main():
    x, y = float(sys.argv[1]), float(sys.argv[2])
    melissa_api.init("u", SIZE)
    for t in range(STEPS):
        melissa_api.send("u", field(x, y, t))
    melissa_api.finalize()


if __name__ == "__main__":
    main()
