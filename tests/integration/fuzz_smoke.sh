#!/usr/bin/env bash
# fuzz_smoke.sh — builds every
# libFuzzer target (fuzz/fuzz_*.c) with clang + ASan/UBSan and runs each for a short, bounded time on its seed corpus. Not a
# fuzzing campaign (see docs/fuzzing.md): it proves the targets build, that
# the seeds load cleanly, and catches shallow crashes early. Fails on any
# crash, sanitizer report, leak, timeout or out-of-memory.
#
# The fuzz build lives in $OSP_BUILD_DIR/../build-fuzz-smoke (reused across
# runs and by the Release and ASan suites; a temp dir if that is not
# writable). Skips (77) when clang or its libFuzzer runtime is missing.
# Environment: OSP_FUZZ_SECONDS (per target, default 20), OSP_FUZZ_BUILD_DIR.
#
# Runs as a CTest script test and by hand
# (tests/integration/fuzz_smoke.sh from anywhere in the checkout).
set -euo pipefail
if [ -z "${OSP_SOURCE_DIR:-}" ]; then
  OSP_SOURCE_DIR=$(cd "$(dirname "$0")" && pwd)
  while [ ! -f "$OSP_SOURCE_DIR/fuzz/CMakeLists.txt" ] && [ "$OSP_SOURCE_DIR" != / ]; do
    OSP_SOURCE_DIR=$(dirname "$OSP_SOURCE_DIR")
  done
fi
SRC=$OSP_SOURCE_DIR
BUILD=${OSP_BUILD_DIR:-$SRC/build}
SECS=${OSP_FUZZ_SECONDS:-20}

if ! command -v clang >/dev/null; then
  echo "SKIP fuzz_smoke: clang not installed (scripts/install-deps.sh installs clang + libclang-rt-14-dev)"
  exit 77
fi
TMP=$(mktemp -d /tmp/fuzz_smoke.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}\n' > "$TMP/probe.c"
if ! clang -fsanitize=fuzzer,address,undefined "$TMP/probe.c" -o "$TMP/probe" 2>"$TMP/probe.log"; then
  echo "SKIP fuzz_smoke: clang cannot link libFuzzer programs (libclang-rt-14-dev missing?):"
  head -n 3 "$TMP/probe.log"
  exit 77
fi

TARGETS=()
for f in "$SRC"/fuzz/fuzz_*.c; do
  [ -e "$f" ] && TARGETS+=("$(basename "$f" .c)")
done
if [ ${#TARGETS[@]} -eq 0 ]; then
  echo "SKIP fuzz_smoke: no fuzz/fuzz_*.c targets"
  exit 77
fi

FB=${OSP_FUZZ_BUILD_DIR:-$(dirname "$BUILD")/build-fuzz-smoke}
if ! mkdir -p "$FB" 2>/dev/null || [ ! -w "$FB" ]; then FB=$TMP/build; fi
echo "fuzz_smoke: building ${TARGETS[*]} in $FB"
# Warnings are not errors here: this build checks memory safety, and clang's
# warning set differs from the GCC one the normal build enforces.
# Configure every time (cheap when cached): a fuzz target added since the
# last run is only known to the build after the glob is re-evaluated.
CFG=()
[ -f "$FB/CMakeCache.txt" ] || CFG=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOSP_FUZZ=ON -DOSP_WERROR=OFF)
cmake -S "$SRC" -B "$FB" "${CFG[@]}" >"$TMP/configure.log" 2>&1 ||
  { cat "$TMP/configure.log"; echo "FAIL fuzz_smoke: configure failed"; exit 1; }
if ! cmake --build "$FB" -j "$(nproc)" --target "${TARGETS[@]}" >"$TMP/build.log" 2>&1; then
  grep -E 'error|Error' "$TMP/build.log" | head -n 30
  echo "FAIL fuzz_smoke: building the fuzz targets failed"
  exit 1
fi

ART=$FB/artifacts
mkdir -p "$ART"
fail=0
for t in "${TARGETS[@]}"; do
  kind=${t#fuzz_}
  corpus=$TMP/corpus-$kind
  mkdir -p "$corpus"
  dirs=("$corpus")
  [ -d "$SRC/fuzz/seeds/$kind" ] && dirs+=("$SRC/fuzz/seeds/$kind")
  # The ONNX conformance models make good extra seeds; they are read from
  # the system package at test time, never copied into the repository.
  if [ "$kind" = onnx ] && [ -d /usr/share/libonnx-testdata/data/node ]; then
    mkdir -p "$TMP/seeds-testdata"
    i=0
    for m in /usr/share/libonnx-testdata/data/node/*/model.onnx; do
      cp "$m" "$TMP/seeds-testdata/$(basename "$(dirname "$m")").onnx"; i=$((i + 1))
    done
    dirs+=("$TMP/seeds-testdata")
  fi
  # TFLite seeds: the small real models, when present (never committed).
  if [ "$kind" = tflite ]; then
    . "$SRC/scripts/find-models.sh"
    if mdir=$(osp_models_dir) && [ -d "$mdir/tflite" ]; then
      mkdir -p "$TMP/seeds-tflite"
      for m in "$mdir"/tflite/mobilenet_v1_0.25_128_quant.tflite "$mdir"/tflite/mobilenet_v1_0.5_160_quant.tflite; do
        [ -f "$m" ] && cp "$m" "$TMP/seeds-tflite/"
      done
      dirs+=("$TMP/seeds-tflite")
    fi
  fi
  echo "fuzz_smoke: $t for ${SECS}s on ${dirs[*]:1}"
  log=$TMP/$t.log
  rc=0
  # Leaks count: a loader that leaks on bad input would exhaust a worker.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
    "$FB/fuzz/$t" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=25 \
    -print_final_stats=1 -artifact_prefix="$ART/$t-" "${dirs[@]}" >"$log" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    fail=1
    echo "FAIL fuzz_smoke: $t exited $rc; last lines of its log:"
    tail -n 60 "$log"
    echo "fuzz_smoke: reproducer(s) kept in $ART (rerun: $FB/fuzz/$t <file>)"
  else
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb|INITED|DONE' "$log" | sed "s/^/  $t: /" || true
  fi
done
[ "$fail" = 0 ] && echo "fuzz_smoke: all targets ran ${SECS}s without a crash"
exit $fail
