"""examples/embed built against an installed Melissa, as a user would:
installs the build tree into a temporary root, compiles examples/embed/main.cpp
with `pkg-config --cflags --libs melissa-actors` (nothing from the source
tree), runs it, and checks its training summary and files."""
import glob
import json
import os
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from melissa_testing import *  # noqa: E402,F403

work = tmpdir("embed")
root = os.path.join(work, "root")
subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", root],
               check=True, capture_output=True)
pcs = glob.glob(os.path.join(root, "**", "pkgconfig", "melissa-actors.pc"), recursive=True)
check(len(pcs) == 1, "melissa-actors.pc is installed")
env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]), PKG_CONFIG_SYSROOT_DIR=root)
flags = subprocess.run(["pkg-config", "--cflags", "--libs", "melissa-actors"], env=env,
                       capture_output=True, text=True, check=True).stdout
check("-lmelissa-actors" in flags and root in flags, "pkg-config gives the installed library and headers")

exe = os.path.join(work, "embed")
source = os.path.join(SOURCE, "examples", "embed", "main.cpp")
cxx = os.environ.get("CXX", "c++")
p = subprocess.run([cxx, "-std=c++17", "-O1", source, "-o", exe] + shlex.split(flags),
                   capture_output=True, text=True, cwd=work)
if p.returncode != 0:
    print(p.stderr[-5000:])
check(p.returncode == 0, "examples/embed compiles against the installed headers only")

libdir = [f[2:] for f in shlex.split(flags) if f.startswith("-L")][0]
out = os.path.join(work, "out")
p = subprocess.run([exe, out], capture_output=True, text=True, timeout=300,
                   env=dict(os.environ, LD_LIBRARY_PATH=libdir))
print(p.stderr[-3000:])
check(p.returncode == 0, "the embedded study runs to the end")
summary = json.loads(p.stdout.strip().splitlines()[-1])
check(summary["state"] == "done" and summary["batches"] > 0, f"the trainer trained ({summary['batches']} batches)")
check(summary["min_validation_loss"] is not None and summary["min_validation_loss"] < 0.05,
      f"it learnt the wave (validation MSE {summary['min_validation_loss']})")
check(os.path.exists(os.path.join(out, "model", "model.pt")), "the model is saved")
check(os.path.exists(os.path.join(out, "metrics", "metrics.csv")), "metrics are written")
