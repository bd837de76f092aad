"""Validation loss of two training runs at equal samples seen.

    /usr/bin/python3 examples/heat-cnn/compare.py studies/heat-training studies/heat-cnn/run

Reads each run's metrics/metrics.csv (the rows with a validation_loss) and
summary.json, and prints, for every validation of the first run, the second
run's validation loss at the same number of samples seen (its nearest
validation at or below it), plus each run's parameters, time and throughput.
"""
import csv
import json
import os
import sys


def validations(run):
    rows = csv.DictReader(open(os.path.join(run, "metrics", "metrics.csv")))
    return [(int(r["samples_seen"]), float(r["validation_loss"])) for r in rows if r["validation_loss"]]


def at_or_below(series, samples):
    best = None
    for seen, loss in series:
        if seen <= samples:
            best = (seen, loss)
    return best


def main():
    a, b = sys.argv[1], sys.argv[2]
    va, vb = validations(a), validations(b)
    print(f"{'samples':>8} {os.path.basename(a.rstrip('/')):>16} {os.path.basename(b.rstrip('/')):>16}")
    for seen, loss in va:
        other = at_or_below(vb, seen)
        print(f"{seen:>8} {loss:>16.2f} {(f'{other[1]:.2f} @{other[0]}' if other else '-'):>16}")
    for run in (a, b):
        t = json.load(open(os.path.join(run, "summary.json")))["training"]
        print(f"{run}: {t.get('model_kind', 'mlp')} on {t.get('device', 'cpu')}, "
              f"{t.get('parameter_count', '?')} parameters, {t['samples_seen']} samples, "
              f"min validation MSE {t['min_validation_loss']:.2f}, "
              f"{t['mean_samples_per_s']:.0f} samples/s, {t['total_time_s']:.0f} s training")


if __name__ == "__main__":
    main()
