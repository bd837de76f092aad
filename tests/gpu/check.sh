#!/usr/bin/env bash
# The GPU check of issue 13, prepared to run on the device machine in one
# call (its image: CUDA, PyTorch with its LibTorch, meson, ninja; no Debian
# packages, no network). Modes, in the order a run goes through them:
#
#   fetch   (here, with apt)  download the Debian packages of packages.txt
#           into tests/gpu/debs/ (git-ignored: the device call carries it)
#   unpack  dpkg -x every .deb into $PREFIX and add the links Debian's
#           alternatives would have made (libblas, cblas.h, mpirun, mpi.h)
#   build   unpack, then meson against TORCH_PREFIX (default: the LibTorch of
#           python3's torch wheel) into $BUILD, the programs the runs need
#   study   the heat training study on the GPU trainer (CPU clients), the
#           built-in MLP and the heat-cnn decoder, to completion
#   step    the SC23 full-scale trainer step (6 -> 256 -> 256 -> 1,000,000,
#           batch 10, Adam) on the GPU: melissa-caf's against PyTorch-Python
#           on the same GPU and against the HBM bound (bytes the step moves
#           over the device-to-device copy bandwidth measured in this run)
#   all     build, study, step (what the device call runs)
#
# Device call: tests/gpu/check.sh all 2>&1 | tee $OUT/gpu-check.log
# (carry: tests/gpu/debs). Figures land in $OUT (or $BUILD/out).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEBS=${MELISSA_GPU_DEBS:-$ROOT/tests/gpu/debs}
PREFIX=${MELISSA_GPU_PREFIX:-/tmp/melissa-gpu-prefix}
BUILD=${MELISSA_GPU_BUILD:-$ROOT/build-gpu}
RESULTS=${OUT:-$BUILD/out}
ARCH_LIB=usr/lib/x86_64-linux-gnu
mode=${1:-all}

say() { echo "==> $*" >&2; }

fetch() {
  mkdir -p "$DEBS"
  local packages
  packages=$(grep -v '^#' "$ROOT/tests/gpu/packages.txt" | tr '\n' ' ')
  (cd "$DEBS" && rm -f ./*.deb && apt-get download $packages)
  say "$(ls "$DEBS"/*.deb | wc -l) packages, $(du -sh "$DEBS" | cut -f1) in $DEBS"
}

unpack() {
  ls "$DEBS"/*.deb >/dev/null 2>&1 || { echo "no .deb in $DEBS: run '$0 fetch' where apt works" >&2; exit 2; }
  mkdir -p "$PREFIX"
  for deb in "$DEBS"/*.deb; do dpkg -x "$deb" "$PREFIX"; done
  local lib=$PREFIX/$ARCH_LIB
  # What update-alternatives would have linked.
  ln -sf openblas-pthread/libblas.so.3 "$lib/libblas.so.3"
  ln -sf openblas-pthread/libblas.so "$lib/libblas.so"
  # (cblas.h: its directory goes on CPATH, a link would not find openblas_config.h beside it.)
  rm -f "$PREFIX/usr/include/x86_64-linux-gnu/cblas.h"
  ln -sfn ../../lib/x86_64-linux-gnu/openmpi/include "$PREFIX/usr/include/x86_64-linux-gnu/mpi"
  ln -sf mpirun.openmpi "$PREFIX/usr/bin/mpirun"
  ln -sf mpicxx.openmpi "$PREFIX/usr/bin/mpicxx"
  ln -sf mpicc.openmpi "$PREFIX/usr/bin/mpicc"
  for pc in ompi ompi-c ompi-cxx; do
    [ -e "$lib/pkgconfig/$pc.pc" ] || ln -sf ../openmpi/lib/pkgconfig/$pc.pc "$lib/pkgconfig/$pc.pc"
  done
  [ -e "$PREFIX/usr/bin/pkg-config" ] || ln -sf pkgconf "$PREFIX/usr/bin/pkg-config"
  say "unpacked $(ls "$DEBS"/*.deb | wc -l) packages into $PREFIX"
}

# The environment that makes the private prefix look installed.
use_prefix() {
  local lib=$PREFIX/$ARCH_LIB
  export PATH=$PREFIX/usr/bin:$PATH
  export CPATH=$PREFIX/usr/include:$PREFIX/usr/include/x86_64-linux-gnu:$PREFIX/usr/include/x86_64-linux-gnu/openblas-pthread${CPATH:+:$CPATH}
  export LIBRARY_PATH=$lib:$lib/openblas-pthread${LIBRARY_PATH:+:$LIBRARY_PATH}
  export LD_LIBRARY_PATH=$lib:$lib/openblas-pthread:$lib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PKG_CONFIG_LIBDIR=$lib/pkgconfig:$PREFIX/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$PREFIX
  # Open MPI relocated (its compiled-in paths say /usr).
  export OPAL_PREFIX=$PREFIX/usr OPAL_EXEC_PREFIX=$PREFIX/usr OPAL_BINDIR=$PREFIX/usr/bin
  export OPAL_LIBDIR=$lib/openmpi/lib OPAL_DATADIR=$PREFIX/usr/share OPAL_PKGDATADIR=$PREFIX/usr/share/openmpi
  export OPAL_SYSCONFDIR=$PREFIX/etc/openmpi
  export OMPI_MCA_mca_base_component_show_load_errors=0
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
}

torch_prefix() {
  if [ -n "${TORCH_PREFIX:-}" ]; then echo "$TORCH_PREFIX"; return; fi
  env -u LD_LIBRARY_PATH python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))'
}

build() {
  unpack
  use_prefix
  local torch cpp_std=c++17
  torch=$(torch_prefix)
  # Recent LibTorch may ask for C++20 in its CMake config.
  if grep -rqs 'cxx_std_20\|CXX_STANDARD 20' "$torch/share/cmake" 2>/dev/null; then cpp_std=c++20; fi
  say "LibTorch: $torch ($cpp_std)"
  if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$ROOT" --buildtype=release -Dtorch_prefix="$torch" -Dcpp_std=$cpp_std \
      -Dfortran=disabled -Dfuzzing=disabled
  fi
  local targets=${MELISSA_GPU_TARGETS:-apps/melissa-server/melissa-server apps/melissa-run/melissa-run solvers/heat/melissa-heat apps/melissa-train-offline/melissa-train-offline apps/melissa-torch-info/melissa-torch-info tests/gpu/sc23_step}
  meson compile -C "$BUILD" $targets
  # Every library the programs need must resolve (the prefix, the wheel, the image).
  local missing
  missing=$(for t in $targets; do ldd "$BUILD/$t" | grep 'not found' || true; done | sort -u)
  if [ -n "$missing" ]; then echo "unresolved libraries:"$'\n'"$missing" >&2; exit 1; fi
  say "built: $targets"
}

study() {
  use_prefix
  mkdir -p "$RESULTS"
  export PATH=$BUILD/solvers/heat:$BUILD/apps/melissa-server:$PATH
  "$BUILD/apps/melissa-torch-info/melissa-torch-info" | tee "$RESULTS/torch-info.txt"
  local work=$BUILD/gpu-study
  rm -rf "$work" && mkdir -p "$work"
  # A validation set: two simulations written as a dataset (MPI singletons).
  for sim in 0 1; do
    melissa-heat --mode dataset --output "$work/validation" --sim-id $sim --grid 64 --steps 50 \
      $((150 + 200 * sim)) 400 250 300 $((450 - 100 * sim)) >/dev/null
  done
  env -u LD_LIBRARY_PATH python3 "$ROOT/examples/heat-cnn/make_model.py" "$work/decoder.pt"
  for model in mlp cnn; do
    local study=$work/$model.toml
    # The heat-training example, one-task jobs (no mpirun), fewer simulations, on the GPU.
    sed -e 's/^ranks = 2/ranks = 1/' -e 's/^count = 40/count = 12/' \
        -e "s|^validation_dir = .*|validation_dir = \"$work/validation\"|" \
        -e 's/^threads = 2/device = "cuda"/' "$ROOT/examples/heat-training/study.toml" > "$study"
    if [ $model = cnn ]; then sed -i "s|^hidden = .*|model = \"$work/decoder.pt\"|" "$study"; fi
    say "study: $model on the GPU"
    timeout 600 "$BUILD/apps/melissa-run/melissa-run" "$study" --output "$work/$model" \
      > "$RESULTS/study-$model.log" 2>&1 || { tail -40 "$RESULTS/study-$model.log"; exit 1; }
    python3 - "$work/$model/summary.json" "$model" <<'PY' | tee -a "$RESULTS/figures.txt"
import json, sys
t = json.load(open(sys.argv[1]))["training"]
assert t["state"] == "done" and t["device"].startswith("cuda"), t
print(f"study {sys.argv[2]}: {t['model_kind']} on {t['device']}, {t['batches']} batches, "
      f"{t['samples_seen']} samples, {t['mean_samples_per_s']:.0f} samples/s, "
      f"validation MSE {t['first_validation_loss']:.1f} -> {t['min_validation_loss']:.1f}")
PY
  done
}

step() {
  use_prefix
  mkdir -p "$RESULTS"
  say "SC23 step: melissa-caf (C++)"
  local ours ours_plain reference
  ours=$("$BUILD/tests/gpu/sc23_step" --device cuda --steps 60)
  ours_plain=$(MELISSA_FUSED_ADAM=0 "$BUILD/tests/gpu/sc23_step" --device cuda --steps 60)
  say "SC23 step: PyTorch-Python, copy bandwidth"
  reference=$(env -u LD_LIBRARY_PATH python3 "$ROOT/tests/gpu/sc23_step.py" --steps 60)
  printf '%s\n%s\n%s\n' "$ours" "$ours_plain" "$reference" > "$RESULTS/step.jsonl"
  python3 - "$RESULTS/step.jsonl" <<'PY' | tee -a "$RESULTS/figures.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ours, plain = rows[0], rows[1]
ref = {r["impl"]: r for r in rows[2:]}
base = ref["pytorch-adam"]
bound = ref["hbm-bound"]
for r in [ours, plain] + list(ref.values()):
    print(f"{r['impl']:>24}: {r['samples_per_s']:10.0f} samples/s, {r['ms_per_step']:.3f} ms/step"
          + (f"  ({r['note']})" if r.get("note") else ""))
print(f"melissa-caf / PyTorch-Python (Adam): {ours['samples_per_s'] / base['samples_per_s']:.2f} (goal >= 1.2)")
print(f"melissa-caf / HBM bound: {100 * ours['samples_per_s'] / bound['samples_per_s']:.0f} % (goal >= 70 %)")
PY
}

case $mode in
  fetch) fetch ;;
  unpack) unpack ;;
  build) build ;;
  study) study ;;
  step) step ;;
  all) nvidia-smi -L || true; build; study; step ;;
  *) echo "usage: $0 fetch|unpack|build|study|step|all" >&2; exit 2 ;;
esac
