#!/usr/bin/env python3
"""Draws what a heat study's dataset holds: the final temperature field of a
few simulations, with their parameters, and the mean temperature over time.

    plot-heat-dataset.py DATASET_DIR OUTPUT.png
"""
import glob
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(dataset, out):
    sims = sorted(glob.glob(os.path.join(dataset, "sim_*")))
    if not sims:
        sys.exit(f"no simulations in {dataset}")
    shown = sims[:6]
    fig = plt.figure(figsize=(16, 7.5))
    grid = fig.add_gridspec(2, 4, width_ratios=[1, 1, 1, 1.6])
    field_axes = [fig.add_subplot(grid[r, c]) for r in range(2) for c in range(3)]
    for ax, sim in zip(field_axes, shown):
        field = np.load(os.path.join(sim, "temperature.npy"), mmap_mode="r")
        params = np.load(os.path.join(sim, "parameters.npy"))
        m = int(round(np.sqrt(field.shape[1])))
        im = ax.imshow(field[-1].reshape(m, m), origin="lower", cmap="inferno", vmin=100, vmax=500)
        ax.set_title(f"{os.path.basename(sim)}, step {field.shape[0] - 1}\n"
                     "T0..T4 = " + " ".join(f"{p:.0f}" for p in params), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in field_axes[len(shown):]:
        ax.axis("off")
    fig.colorbar(im, ax=field_axes, label="temperature (K)", shrink=0.8)
    ax = fig.add_subplot(grid[:, 3])
    for sim in sims:
        field = np.load(os.path.join(sim, "temperature.npy"), mmap_mode="r")
        ax.plot(field.mean(axis=1), lw=0.8)
    ax.set_xlabel("time step")
    ax.set_ylabel("mean temperature (K)")
    ax.set_title(f"mean temperature of all {len(sims)} simulations", fontsize=10)
    fig.suptitle(f"Heat study: {len(sims)} simulations streamed to the server and written to {dataset}")
    fig.savefig(out, dpi=80)
    print(f"figure written to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
