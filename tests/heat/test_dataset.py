#!/usr/bin/env python3
"""melissa-heat as a program: dataset files (.npy read back with numpy),
checksum file, rank independence of the written data, argument errors, and a
stream run without a server failing cleanly."""
import os
import re
import tempfile

import numpy as np

from heat_common import PARAMS, Results, binary, mpirun, run

HEAT = binary()
GRID, STEPS = 20, 5


def dataset(r, tmp):
    out = os.path.join(tmp, "ds")
    dump = os.path.join(tmp, "final.npy")
    run([HEAT, "--mode", "dataset", "--output", out, "--sim-id", "7", "--grid", str(GRID), "--steps", str(STEPS),
         "--dump", dump] + PARAMS)
    sim = os.path.join(out, "sim_000007")
    t = np.load(os.path.join(sim, "temperature.npy"))
    p = np.load(os.path.join(sim, "parameters.npy"))
    r.check(t.dtype == np.float32 and t.shape == (STEPS, GRID * GRID) and t.flags.c_contiguous,
            "temperature.npy: float32, shape (steps, M*M), got %s %s" % (t.dtype, t.shape))
    r.check(p.dtype == np.float64 and p.shape == (5,) and list(p) == [float(x) for x in PARAMS],
            "parameters.npy: float64 (5,) = T0..T4, got %s %s %s" % (p.dtype, p.shape, p))
    final = np.load(dump)
    r.check(np.array_equal(t[-1], final.ravel().astype(np.float32)),
            "last dataset row is the float32 cast of the final field (row-major)")
    # Physics sanity: the field stays between the extreme boundary/initial values.
    lo, hi = min(map(float, PARAMS)), max(map(float, PARAMS))
    r.check(t.min() >= lo - 1e-3 and t.max() <= hi + 1e-3, "values within [%g, %g] (maximum principle)" % (lo, hi))
    # Orientation: row i is y, column j is x. Near x = 0 (T1 = 104.2) colder than
    # near x = 1 (T2 = 220); near y = 0 (T3 = 400) hotter than near y = 1 (T4 = 150).
    f = final
    r.check(f[GRID // 2, 0] < f[GRID // 2, -1] and f[0, GRID // 2] > f[-1, GRID // 2],
            "sides: T1 left x=0, T2 right x=1, T3 bottom y=0 (row 0), T4 top y=1")


def constant(r, tmp):
    out = os.path.join(tmp, "const")
    run([HEAT, "--mode", "dataset", "--output", out, "--grid", str(GRID), "--steps", str(STEPS)] + ["250.75"] * 5)
    t = np.load(os.path.join(out, "sim_000000", "temperature.npy"))
    r.check(t.shape == (STEPS, GRID * GRID) and bool(np.all(t == np.float32(250.75))),
            "equal temperatures: every value of every step is exactly T (default sim id 0)")


def parse_checksums(path):
    lines = open(path).read().splitlines()
    steps = []
    for k, line in enumerate(lines[:-1]):
        m = re.fullmatch(r"(\d+) ([0-9a-f]{16})", line)
        assert m and int(m.group(1)) == k, "bad line %r" % line
        steps.append(int(m.group(2), 16))
    m = re.fullmatch(r"total ([0-9a-f]{16})", lines[-1])
    assert m, "bad last line %r" % lines[-1]
    return steps, int(m.group(1), 16)


def ranks_write_the_same(r, tmp):
    """2 and 4 ranks write the same dataset and checksums as 1 (tight CG
    tolerance, so that float32 rounding cannot differ)."""
    common = ["--grid", str(GRID + 1), "--steps", str(STEPS), "--cg-tol", "1e-13"]
    results = {}
    for n in (1, 2, 4):
        out = os.path.join(tmp, "ranks%d" % n)
        sums = os.path.join(tmp, "sums%d.txt" % n)
        run(mpirun(n) + [HEAT, "--mode", "dataset", "--output", out, "--checksum-file", sums] + common + PARAMS,
            extra_env={"MELISSA_SIM_ID": "3"})
        results[n] = (np.load(os.path.join(out, "sim_000003", "temperature.npy")), parse_checksums(sums))
    (t1, (s1, total1)) = results[1]
    r.check(len(s1) == STEPS and total1 == sum(s1) % 2**64,
            "checksum file: one line per step, 'total' = wrapping sum of the steps")
    for n in (2, 4):
        t, (s, total) = results[n]
        r.check(np.array_equal(t, t1), "%d ranks: dataset (MELISSA_SIM_ID=3) equal to 1 rank's" % n)
        r.check(s == s1 and total == total1, "%d ranks: checksums equal to 1 rank's" % n)


def argument_errors(r, tmp):
    for args, what in ((PARAMS[:4], "4 temperatures"), (["--grid", "0"] + PARAMS, "--grid 0"),
                       (["--frobnicate"] + PARAMS, "unknown option"),
                       (["--mode", "dataset"] + PARAMS, "dataset without --output"),
                       (["--mode", "compute", "1", "2", "three", "4", "5"], "non-numeric temperature")):
        p = run([HEAT] + args, expect_rc=None)
        r.check(p.returncode == 2 and "usage: melissa-heat" in p.stderr,
                "%s: exit 2 with usage (got %d)" % (what, p.returncode))
    p = run(mpirun(2) + [HEAT, "--mode", "compute", "--grid", "1"] + PARAMS, expect_rc=None)
    r.check(p.returncode != 0 and "grid smaller than the process grid" in p.stderr,
            "grid 1 on 2 ranks: clear error, non-zero exit (got %d)" % p.returncode)
    p = run([HEAT, "--help"])
    r.check("--mode" in p.stdout, "--help prints the usage, exit 0")


def stream_without_server(r, tmp):
    p = run([HEAT, "--grid", "10", "--steps", "2"] + PARAMS, expect_rc=None, cwd=tmp,
            extra_env={"MELISSA_ON_ERROR": "return", "MELISSA_CONNECT_TIMEOUT": "1"})
    r.check(p.returncode != 0 and "melissa_" in p.stderr,
            "stream mode without a server: non-zero exit (%d) and the API's error on stderr" % p.returncode)


if __name__ == "__main__":
    r = Results()
    with tempfile.TemporaryDirectory() as tmp:
        for case in (dataset, constant, ranks_write_the_same, argument_errors, stream_without_server):
            r.run(case, tmp)
    r.finish()
