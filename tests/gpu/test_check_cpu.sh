#!/usr/bin/env bash
# The CPU-side parts of check.sh, tested here (no GPU): the fetched .deb
# files unpacked into a private prefix, and meson building against a
# pip-wheel-shaped LibTorch (site-packages/torch/{include,lib}) made of links
# to Debian's libtorch, with the Debian headers and libraries taken from the
# prefix (the system's CAF, spdlog, MPI, ... headers hidden in a private
# mount namespace when unshare is allowed). Then the built programs must
# resolve their libraries from the prefix, and sc23_step runs on the CPU.
#
#   tests/gpu/check.sh fetch && tests/gpu/test_check_cpu.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-/tmp/melissa-gpu-check-test}
rm -rf "$WORK" && mkdir -p "$WORK/site-packages/torch/include" "$WORK/site-packages/torch/lib"
for d in ATen c10 caffe2 torch; do ln -s /usr/include/$d "$WORK/site-packages/torch/include/$d"; done
for l in libtorch.so libtorch_cpu.so libc10.so; do
  ln -s "$(readlink -f /usr/lib/x86_64-linux-gnu/$l)" "$WORK/site-packages/torch/lib/$l"
done
export TORCH_PREFIX=$WORK/site-packages/torch MELISSA_GPU_PREFIX=$WORK/prefix MELISSA_GPU_BUILD=$WORK/build
export MELISSA_GPU_TARGETS=${MELISSA_GPU_TARGETS:-solvers/heat/melissa-heat tests/gpu/sc23_step}
hide=""
for d in /usr/include/caf /usr/include/spdlog /usr/include/fmt /usr/include/toml++ /usr/include/gsl \
         /usr/include/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/openmpi/include /usr/include/nlohmann; do
  [ -d "$d" ] && hide+="mount -t tmpfs none $d; "
done
cmd="$hide $ROOT/tests/gpu/check.sh build"
if unshare -m true 2>/dev/null; then
  unshare -m bash -c "$cmd"
else
  echo "(unshare not allowed: the system headers stay visible)" >&2
  "$ROOT/tests/gpu/check.sh" build
fi
for t in $MELISSA_GPU_TARGETS; do
  (source /dev/null; LD_LIBRARY_PATH=$WORK/prefix/usr/lib/x86_64-linux-gnu:$WORK/prefix/usr/lib/x86_64-linux-gnu/openblas-pthread ldd "$WORK/build/$t") \
    | grep -E "caf|mpi|openblas|torch" || true
done
grep -q "MELISSA_HAVE_GLOO" "$WORK/build/build.ninja" && { echo "FAIL: Gloo enabled without gloo headers in the wheel"; exit 1; }
if [ -x "$WORK/build/tests/gpu/sc23_step" ]; then
  "$WORK/build/tests/gpu/sc23_step" --device cpu --outputs 2000 --steps 3 --warmup 1
fi
echo "OK: built against $TORCH_PREFIX with the prefix $WORK/prefix"
