#!/usr/bin/env python3
"""1, 2 and 4 MPI ranks give the serial field to 1e-10 (tight CG tolerance), for
the default algorithm and the baseline, on an even and an uneven grid."""
import os
import tempfile

import numpy as np

from heat_common import PARAMS, Results, binary, mpirun, run

HEAT = binary()


def final_field(tmp, ranks, grid, algorithm):
    dump = os.path.join(tmp, "dump_%d_%d_%s.npy" % (ranks, grid, algorithm[0].strip("-") if algorithm else "default"))
    cmd = [HEAT, "--mode", "compute", "--grid", str(grid), "--steps", "10", "--cg-tol", "1e-13",
           "--dump", dump] + algorithm + PARAMS
    run(cmd if ranks == 0 else mpirun(ranks) + cmd)
    field = np.load(dump)
    assert field.shape == (grid, grid), field.shape
    return field


def ranks_agree(r, tmp, grid, algorithm):
    serial = final_field(tmp, 0, grid, algorithm)  # no mpirun: a singleton process
    for ranks in (1, 2, 4):
        diff = np.abs(final_field(tmp, ranks, grid, algorithm) - serial).max()
        r.check(diff <= 1e-10, "grid %d %s: %d ranks vs serial, max |diff| = %.2e"
                % (grid, " ".join(algorithm) or "default", ranks, diff))


def raw_dump_is_float64(r, tmp):
    raw = os.path.join(tmp, "dump.raw")
    npy = os.path.join(tmp, "dump.npy")
    base = [HEAT, "--mode", "compute", "--grid", "12", "--steps", "3"] + PARAMS
    run(base + ["--dump", raw])
    run(mpirun(2) + base + ["--dump", npy])
    a = np.fromfile(raw, dtype="<f8")
    b = np.load(npy).ravel()
    r.check(a.size == 144 and np.abs(a - b).max() < 1e-9, "raw dump: 144 float64 values, equal to the .npy dump")


if __name__ == "__main__":
    r = Results()
    with tempfile.TemporaryDirectory() as tmp:
        for grid in (30, 31):
            r.run(ranks_agree, tmp, grid, [])
        r.run(ranks_agree, tmp, 30, ["--baseline"])
        r.run(raw_dump_is_float64, tmp)
    r.finish()
