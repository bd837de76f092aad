#!/usr/bin/python3
"""Maps of a heat-sa study: mean, standard deviation and each parameter's
first-order Sobol index at a few time steps.

    /usr/bin/python3 examples/heat-sa/plot.py STUDY_OUTPUT_DIR [--steps 0,9,49] [--out FILE.png]

Reads STUDY_OUTPUT_DIR/statistics/temperature/{mean,variance,sobol_first}.npy
and writes STUDY_OUTPUT_DIR/heat-sa.png (one row per time step: mean, std,
S(T0) .. S(T4)). Also prints, per wall, the parameter with the largest index
next to it at the last step (near each wall its own temperature dominates)."""
import argparse
import os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

NAMES = ["T0", "T1", "T2", "T3", "T4"]
# melissa-heat: row i is y, column j is x; T1 left (x = 0), T2 right, T3 bottom (y = 0), T4 top.
WALLS = {"left (T1)": (slice(None), 0), "right (T2)": (slice(None), -1),
         "bottom (T3)": (0, slice(None)), "top (T4)": (-1, slice(None))}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("study")
    ap.add_argument("--steps", default=None, help="time steps to draw, e.g. 0,9,49 (default: 3 spread)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    d = os.path.join(a.study, "statistics", "temperature")
    mean, var = np.load(os.path.join(d, "mean.npy")), np.load(os.path.join(d, "variance.npy"))
    first = np.load(os.path.join(d, "sobol_first.npy"))  # [steps, parameters, cells]
    steps, cells = mean.shape
    grid = int(round(np.sqrt(cells)))
    shown = [int(s) for s in a.steps.split(",")] if a.steps else sorted({1, steps // 2, steps - 1})
    fig, axes = plt.subplots(len(shown), 2 + len(NAMES), figsize=(2.4 * (2 + len(NAMES)), 2.4 * len(shown)),
                             squeeze=False)
    for row, t in enumerate(shown):
        maps = [("mean", mean[t], "inferno", None), ("std", np.sqrt(var[t]), "viridis", None)]
        maps += [(f"S({n})", first[t, k], "RdBu_r", (-1, 1)) for k, n in enumerate(NAMES)]
        for col, (title, m, cmap, lim) in enumerate(maps):
            ax = axes[row][col]
            im = ax.imshow(m.reshape(grid, grid), origin="lower", cmap=cmap,
                           vmin=lim[0] if lim else None, vmax=lim[1] if lim else None)
            ax.set_title(f"{title}, step {t}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    fig.tight_layout()
    out = a.out or os.path.join(a.study, "heat-sa.png")
    fig.savefig(out, dpi=90)
    print("wrote", out)
    last = first[-1].reshape(len(NAMES), grid, grid)
    for wall, where in WALLS.items():
        means = [float(np.nanmean(last[k][where])) for k in range(len(NAMES))]
        print(f"{wall:12s}: largest first-order index {NAMES[int(np.argmax(means))]} "
              f"({', '.join(f'{n} {m:.2f}' for n, m in zip(NAMES, means))})")


if __name__ == "__main__":
    main()
