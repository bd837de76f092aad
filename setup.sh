#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (as root, or a user with sudo):
#
#   ./setup.sh example   install packages, build, run the heat dataset study, then online training
#   ./setup.sh test      install packages, build, run the whole test suite
#   ./setup.sh build     install packages and build only
#
# Idempotent: packages already installed are not installed again, and the
# build directory (./build, or $MELISSA_BUILD_DIR) is reused.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
BUILD=${MELISSA_BUILD_DIR:-$ROOT/build}

PACKAGES=(
  g++ gfortran clang libclang-rt-14-dev meson ninja-build pkg-config
  libcaf-dev libtorch-dev libopenblas0-pthread libtomlplusplus-dev doctest-dev
  libopenmpi-dev openmpi-bin libspdlog-dev libfmt-dev libzmq3-dev libxxhash-dev nlohmann-json3-dev
  libreadline-dev libgsl-dev libgloo-dev libssl-dev libcpp-httplib-dev libjs-chart.js
  python3 python3-numpy python3-matplotlib python3-mpi4py python3-torch
)
# Only for the test suite: the real one-node Slurm and OAR that the backend
# and launcher tests start themselves (tests/slurm, tests/backends/oar).
TEST_PACKAGES=(
  slurm-wlm munge
  linux-perf  # tests/bench: --perf profiles of the hot paths (issue 16)
  python3-openturns  # tests/statistics: the OpenTURNS reference
  oar-server oar-server-pgsql oar-node oar-user oar-user-pgsql postgresql openssh-server
  # the monitor's tests (tests/monitor): a real browser, TensorBoard's schema through protoc
  chromium chromium-driver python3-selenium protobuf-compiler python3-protobuf python3-crcmod
)

install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "==> installing ${missing[*]}"
  $sudo apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

build() {
  if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" --buildtype=release
  fi
  echo "==> building in $BUILD"
  meson compile -C "$BUILD"
}

# mpirun refuses to run as root unless told; tests and examples run oversubscribed.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

case "${1:-}" in
  example)
    install_packages "${PACKAGES[@]}"
    build
    # melissa-heat, named without a path in the studies, is found in the build tree.
    run_study() {  # STUDY OUTPUT_DIR
      rm -rf "$2"
      echo "==> running $1 (progress below; logs in $2/jobs/)"
      PATH="$BUILD/solvers/heat:$BUILD/apps/melissa-shell:$PATH" \
        "$BUILD/apps/melissa-run/melissa-run" "$1" --output "$2"
    }
    if [[ -n "${2:-}" ]]; then
      run_study "$2" "$ROOT/studies/$(basename "$(dirname "$2")")"
      exit 0
    fi
    # 1. 20 simulations written to disk: the validation set of step 2.
    run_study examples/heat/study.toml "$ROOT/studies/heat"
    /usr/bin/python3 scripts/plot-heat-dataset.py "$ROOT/studies/heat/dataset" "$ROOT/studies/heat/heat-fields.png"
    # 2. 40 other simulations train a surrogate online, validated on step 1's dataset.
    run_study examples/heat-training/study.toml "$ROOT/studies/heat-training"
    /usr/bin/python3 scripts/plot-training.py "$ROOT/studies/heat-training" "$ROOT/studies/heat/dataset" \
      "$ROOT/studies/heat-training/training.png"
    echo "==> done: look at studies/heat/heat-fields.png, studies/heat-training/training.png"
    echo "    and the summaries (studies/*/summary.json, studies/heat-training/server-summary.rank0.json)"
    ;;
  test)
    install_packages "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    build
    echo "==> running the test suite"
    meson test -C "$BUILD" --print-errorlogs --num-processes 2
    ;;
  build)
    install_packages "${PACKAGES[@]}"
    build
    ;;
  *)
    sed -n '2,9p' "$0"
    exit 2
    ;;
esac
