#!/usr/bin/python3
"""statistics-openturns: field_statistics against OpenTURNS on the same
pick-freeze sample (written by write-pick-freeze-sample): the moments of
every member (ot.Sample.computeVariance/Skewness/Kurtosis) and
MartinezSensitivityAlgorithm's first and total indices, equal to 1e-8; the
95 % bounds against the Fisher z-transform computed here.

usage: test_openturns.py WRITE_PICK_FREEZE_SAMPLE
"""
import math
import subprocess
import sys
import tempfile

import numpy as np
import openturns as ot

GROUPS = 1000
TOL = 1e-8


def main():
    writer = sys.argv[1]
    failures = []

    def check(what, got, want, tol=TOL):
        err = abs(got - want) / max(1.0, abs(want))
        if not err <= tol:
            failures.append(f"{what}: melissa {got!r}, reference {want!r} (error {err:.3g})")

    with tempfile.TemporaryDirectory(prefix="melissa-statistics-ot-") as d:
        subprocess.run([writer, d, str(GROUPS)], check=True)
        load = lambda name: np.load(f"{d}/{name}.npy")
        X, Y = load("X"), load("Y")
        p, cells = X.shape[1], Y.shape[1]
        assert X.shape[0] == GROUPS * (p + 2) == Y.shape[0], (X.shape, Y.shape)
        sample = ot.Sample(Y)
        mean, var = sample.computeMean(), sample.computeVariance()
        skew, kurt = sample.computeSkewness(), sample.computeKurtosis()
        for c in range(cells):
            check(f"mean[{c}]", load("mean")[c], mean[c])
            check(f"variance[{c}]", load("variance")[c], var[c])
            check(f"skewness[{c}]", load("skewness")[c], skew[c])
            # OpenTURNS' kurtosis is not the excess one.
            check(f"kurtosis[{c}]", load("kurtosis")[c], kurt[c] - 3.0)

        algo = ot.MartinezSensitivityAlgorithm(ot.Sample(X), ot.Sample(Y), GROUPS)
        half = 1.959963984540054 / math.sqrt(GROUPS - 3)
        yA, yB = Y[:GROUPS], Y[GROUPS:2 * GROUPS]
        for c in range(cells):
            first, total = algo.getFirstOrderIndices(c), algo.getTotalOrderIndices(c)
            for k in range(p):
                check(f"sobol_first[{k}][{c}]", load("sobol_first")[k, c], first[k])
                check(f"sobol_total[{k}][{c}]", load("sobol_total")[k, c], total[k])
                yC = Y[(2 + k) * GROUPS:(3 + k) * GROUPS, c]
                zs = math.atanh(np.corrcoef(yB[:, c], yC)[0, 1])
                za = math.atanh(np.corrcoef(yA[:, c], yC)[0, 1])
                check(f"sobol_first_low[{k}][{c}]", load("sobol_first_low")[k, c], math.tanh(zs - half))
                check(f"sobol_first_high[{k}][{c}]", load("sobol_first_high")[k, c], math.tanh(zs + half))
                check(f"sobol_total_low[{k}][{c}]", load("sobol_total_low")[k, c], 1 - math.tanh(za + half))
                check(f"sobol_total_high[{k}][{c}]", load("sobol_total_high")[k, c], 1 - math.tanh(za - half))
        print(f"{GROUPS} groups, p = {p}, {cells} cells; first-order indices of cell 0:",
              [round(v, 4) for v in algo.getFirstOrderIndices(0)])
    if failures:
        print("\n".join(failures))
        return 1
    print("moments and Martinez indices equal OpenTURNS to", TOL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
