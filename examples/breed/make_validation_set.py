#!/usr/bin/python3
"""Writes the validation set of examples/breed/study.toml: 50 heat simulations
whose parameters are the first 50 points of the Halton sequence in the
study's bounds (a fixed, quasi-uniform set, as in the Breed paper's
experiments), in the layout of `melissa-heat --mode dataset`:
<dir>/sim_NNNNNN/temperature.npy and parameters.npy.

    /usr/bin/python3 examples/breed/make_validation_set.py [--study FILE] [--out DIR]
                                                          [--count 50] [--jobs 2]

The points come from the server itself (`melissa-server --print-design` on a
variant of the study with sampler = "halton", scramble = false and count =
50); the grid and the number of steps from the study's client command. DIR
defaults to the study's training.validation_dir. Simulations already there
with the same parameters are kept. Binaries: $MELISSA_BUILD_DIR (default
"build"), else melissa-server and melissa-heat on the PATH.
"""
import argparse
import concurrent.futures
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib


def binary(build, rel, name):
    path = os.path.join(build, rel, name)
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if not found:
        sys.exit("make_validation_set: %s not found (build it, or set MELISSA_BUILD_DIR)" % path)
    return found


def set_key(text, section, key, value):
    """Replaces `key = ...` in [section] of a resolved study (one key per line)."""
    lines = text.split("\n")
    current = None
    for i, line in enumerate(lines):
        m = re.match(r"^\s*\[([^\]]+)\]\s*$", line)
        if m:
            current = m.group(1).strip()
        elif current == section and re.match(r"^\s*" + re.escape(key) + r"\s*=", line):
            lines[i] = "%s = %s" % (key, value)
            return "\n".join(lines)
    raise KeyError("no %s.%s in the resolved study" % (section, key))


def halton_design(server, study_path, count):
    """Rows of parameter strings (full precision, as the server prints them)."""
    r = subprocess.run([server, "--config", study_path, "--print-config"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("make_validation_set: %s: %s" % (study_path, r.stderr.strip()))
    text = r.stdout
    text = set_key(text, "parameters", "sampler", '"halton"')
    text = set_key(text, "parameters", "scramble", "false")
    text = set_key(text, "parameters", "count", str(count))
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
        variant = f.name
    try:
        r = subprocess.run([server, "--config", variant, "--print-design"], capture_output=True, text=True)
    finally:
        os.unlink(variant)
    if r.returncode != 0:
        sys.exit("make_validation_set: --print-design: %s" % r.stderr.strip())
    rows = list(csv.reader(r.stdout.strip().split("\n")))
    return [row[1:] for row in rows[1:]], tomllib.loads(text)


def complete(sim_dir, values, steps, size):
    try:
        import numpy as np
        p = np.load(os.path.join(sim_dir, "parameters.npy"))
        t = np.load(os.path.join(sim_dir, "temperature.npy"), mmap_mode="r")
        return t.shape == (steps, size) and len(p) == len(values) and \
            all(abs(a - float(b)) <= 1e-9 * max(1.0, abs(a)) for a, b in zip(p, values))
    except Exception:
        return False


def generate(study_path, out_dir=None, count=50, jobs=2, build=None, log=print):
    """Writes the validation set; returns (out_dir, design rows as floats)."""
    build = os.path.abspath(build or os.environ.get("MELISSA_BUILD_DIR", "build"))
    server = binary(build, "apps/melissa-server", "melissa-server")
    heat = binary(build, "solvers/heat", "melissa-heat")
    design, study = halton_design(server, study_path, count)
    out_dir = os.path.abspath(out_dir or study["training"]["validation_dir"])
    if not out_dir:
        sys.exit("make_validation_set: no --out and no training.validation_dir in %s" % study_path)
    command = study["client"]["command"]
    if os.path.basename(command[0]) != "melissa-heat":
        sys.exit("make_validation_set: client.command must run melissa-heat, got %s" % command[0])
    args = command[1:]
    grid = int(args[args.index("--grid") + 1]) if "--grid" in args else 100
    steps = int(args[args.index("--steps") + 1]) if "--steps" in args else 100
    os.makedirs(out_dir, exist_ok=True)
    todo = [(i, v) for i, v in enumerate(design)
            if not complete(os.path.join(out_dir, "sim_%06d" % i), v, steps, grid * grid)]
    log("validation set: %d Halton simulations (%d to write) -> %s" % (len(design), len(todo), out_dir))
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_MCA_ess_singleton_isolated="1")

    def one(item):
        sim, values = item
        cmd = [heat] + args + ["--mode", "dataset", "--output", out_dir, "--sim-id", str(sim)] + values
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for f in [pool.submit(one, item) for item in todo]:
            f.result()
    return out_dir, [[float(x) for x in row] for row in design]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", default=os.path.join(here, "study.toml"))
    p.add_argument("--out", help="dataset directory (default: the study's training.validation_dir)")
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--jobs", type=int, default=2)
    a = p.parse_args()
    out, _ = generate(a.study, a.out, a.count, a.jobs)
    print(out)


if __name__ == "__main__":
    main()
