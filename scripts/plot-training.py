#!/usr/bin/env python3
"""Draws what a training study learnt: training and validation loss against
samples seen, throughput, and for one validation simulation the true final
temperature field next to the surrogate's prediction (the TorchScript model
that the server saved).

    plot-training.py STUDY_OUTPUT_DIR VALIDATION_DATASET_DIR OUTPUT.png
"""
import csv
import glob
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main(out_dir, dataset, png):
    rows = list(csv.DictReader(open(os.path.join(out_dir, "metrics", "metrics.csv"))))
    if not rows:
        sys.exit(f"no metrics in {out_dir}/metrics/metrics.csv")
    seen = np.array([float(r["samples_seen"]) for r in rows])
    train = np.array([float(r["train_loss"]) for r in rows])
    val = [(float(r["samples_seen"]), float(r["validation_loss"])) for r in rows if r["validation_loss"]]
    rate = np.array([float(r["samples_per_s"]) for r in rows])
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.5))
    axes[0].semilogy(seen, train, lw=0.8, label="training (normalized units)")
    axes[0].set_xlabel("samples seen")
    axes[0].set_title("training loss (MSE)")
    if val:
        axes[1].semilogy([v[0] for v in val], [v[1] for v in val], "o-", ms=3)
    axes[1].set_xlabel("samples seen")
    axes[1].set_title("validation MSE (K²)")
    axes[2].plot(seen, rate, lw=0.8)
    axes[2].set_xlabel("samples seen")
    axes[2].set_title("throughput (samples/s)")
    sims = sorted(glob.glob(os.path.join(dataset, "sim_*")))
    try:
        import torch
        model = torch.jit.load(os.path.join(out_dir, "model", "model.pt"))
        field = np.load(os.path.join(sims[0], "temperature.npy"), mmap_mode="r")
        params = np.load(os.path.join(sims[0], "parameters.npy"))
        steps, size = field.shape
        m = int(round(np.sqrt(size)))
        x = np.concatenate([(params - 100) / 400, [(steps - 1) / steps]]).astype(np.float32)
        pred = model(torch.from_numpy(x).reshape(1, -1)).detach().numpy().reshape(m, m)
        both = np.concatenate([np.asarray(field[-1]).reshape(m, m), pred], axis=1)
        im = axes[3].imshow(both, origin="lower", cmap="inferno", vmin=100, vmax=500)
        axes[3].set_title(f"{os.path.basename(sims[0])}, last step: truth | surrogate")
        fig.colorbar(im, ax=axes[3], label="K")
    except (ImportError, IndexError, OSError) as e:
        axes[3].set_title(f"no prediction: {e}")
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    print(f"wrote {png}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
