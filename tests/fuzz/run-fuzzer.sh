#!/bin/sh
# Builds tests/fuzz/frame_fuzzer.cpp with clang (libFuzzer + ASan + UBSan) and
# fuzzes the frame codec for a bounded time, starting from the seed corpus.
#
#   run-fuzzer.sh CLANGXX SOURCE_ROOT OUT_DIR [SECONDS]
#
# CLANGXX may be empty (no clang found). Exit codes: 0 no crash found,
# 1 crash / property violation / build error, 77 skipped (no clang++ or no
# libFuzzer runtime), which meson reports as SKIP.
# MELISSA_FUZZ_SECONDS overrides SECONDS (default 20) for longer runs; the
# inputs found are kept in OUT_DIR/corpus and reused by the next run.
# MELISSA_FUZZ_CXXFLAGS adds compiler flags (and forces a rebuild).
set -u

CXX=${1:-}
SRC=$2
OUT=$3
SECONDS_TO_RUN=${MELISSA_FUZZ_SECONDS:-${4:-20}}

if [ -z "$CXX" ] || ! command -v "$CXX" >/dev/null 2>&1; then
  echo "SKIP: clang++ not found (the fuzzer needs clang and libclang-rt-14-dev)"
  exit 77
fi

FLAGS="-std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
mkdir -p "$OUT/corpus" "$OUT/artifacts" || exit 1

# A missing fuzzer runtime (libclang-rt-*-dev) is a skip, not a failure: probe
# with an empty target before building the real one.
probe="$OUT/probe.cpp"
printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
  'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' >"$probe"
if ! "$CXX" $FLAGS "$probe" -o "$OUT/probe" >"$OUT/probe.log" 2>&1; then
  echo "SKIP: $CXX cannot link a libFuzzer target (is libclang-rt-14-dev installed?)"
  cat "$OUT/probe.log"
  exit 77
fi

BIN="$OUT/frame-fuzzer"
SOURCES="$SRC/tests/fuzz/frame_fuzzer.cpp $SRC/messages/wire.cpp"
stale=0
[ -x "$BIN" ] || stale=1
[ -n "${MELISSA_FUZZ_CXXFLAGS:-}" ] && stale=1
for f in $SOURCES "$SRC/messages/wire.hpp" "$0"; do
  [ "$f" -nt "$BIN" ] && stale=1
done
if [ "$stale" = 1 ]; then
  echo "building $BIN"
  "$CXX" $FLAGS ${MELISSA_FUZZ_CXXFLAGS:-} -I"$SRC" $SOURCES -o "$BIN" || exit 1
fi

# libFuzzer exits 77 on a crash by default, which meson would read as SKIP:
# make every finding exit 1. Findings are written to OUT/artifacts/.
echo "fuzzing for ${SECONDS_TO_RUN}s"
log="$OUT/fuzz.log"
ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
"$BIN" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
  -artifact_prefix="$OUT/artifacts/" \
  "$OUT/corpus" "$SRC/tests/fuzz/corpus" >"$log" 2>&1
rc=$?
# The whole log is long (one line per new input): show its end.
tail -n 60 "$log"
if [ "$rc" -ne 0 ]; then
  echo "FAIL: the fuzzer exited with $rc; full log: $log"
  echo "reproduce with: $BIN <artifact>   (or the gcc build: frame-fuzzer-replay <artifact>)"
  ls -l "$OUT/artifacts/"
  exit 1
fi
exit 0
