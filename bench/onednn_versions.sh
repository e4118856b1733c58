#!/usr/bin/env bash
# onednn_versions.sh — oneDNN 2.6.3 (Debian's, what osprey used before
# docs/adr/0048-onednn-3.md) against the 3.2.0 the build links, side by side
# on this machine: the two run alternately, round after round, so that a
# noisy neighbour or a change of CPU clock hits both alike, and the table
# gives each one's median and the median of the per-round ratios.
#
#   bench/onednn_versions.sh [BUILD_DIR] [--rounds R] [--osprey [--quick]] [--no-probe]
#
# 1. the convolution-only probe (bench/conv_algos.c: ResNet50's 53 convs,
#    fused ReLU, format `any`, fp32/bf16/int8, batch 8 and 1) — today's
#    bench_conv_algos against the same probe as it was for the v2 API
#    (git show $OLD:bench/conv_algos.c) built against Debian's 2.6.3;
# 2. with --osprey, whole models: osprey at $OLD (the last commit on
#    2.6.3) built against Debian's 2.6.3 against this build, `osprey bench`
#    batch 8, 2 threads: ResNet50 int8 (osprey PTQ) and fp32 natively, and
#    under --max-isa avx512_vnni (the stand-in for a CPU without AMX: the
#    no-regression check) ResNet50, MobileNetV2 and SqueezeNet fp32 and
#    int8 and the TFLite MobileNetV2 int8; both binaries measure their
#    engine choices afresh (a new cache directory per run), so neither
#    reuses a choice measured at another time. --quick: the ResNet50 rows.
#
# Debian's 2.6.3 packages are downloaded with `apt-get download` (no
# install: the system is left as it was), checked against the sha256 below
# and extracted into ~/.cache/osprey/onednn-2.6.3. Needs the build's
# dependencies (make deps) and git history back to $OLD.
# Environment: MODELS (a directory with onnx/ and tflite/, default
# ../shared/models), CALIB (calibration images, default ../shared/images/imagenet-samples),
# SECONDS_PER_RUN (osprey bench, default 6), THREADS (2), OLD (commit).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
BUILD=$ROOT/build ROUNDS=5 OSPREY_CMP=0 PROBE=1 QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift ;;
    --osprey) OSPREY_CMP=1 ;;
    --no-probe) PROBE=0 ;;
    --quick) QUICK=1 ;;
    -*) echo "usage: $0 [BUILD_DIR] [--rounds R] [--osprey [--quick]] [--no-probe]" >&2; exit 2 ;;
    *) BUILD=$(cd "$1" && pwd -P) ;;
  esac
  shift
done
OLD=${OLD:-6ff2adc3534c07b5f6b6235249f0d89ad54c8c4b}
THREADS=${THREADS:-2}
SECS=${SECONDS_PER_RUN:-6}
MODELS=${MODELS:-$ROOT/../shared/models}
CALIB=${CALIB:-$ROOT/../shared/images/imagenet-samples}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/osprey/onednn-2.6.3
NEW_PROBE=$BUILD/bench/bench_conv_algos
[ -x "$NEW_PROBE" ] || { echo "onednn_versions: $NEW_PROBE missing (make build)" >&2; exit 1; }
git -C "$ROOT" cat-file -e "$OLD^{commit}" 2>/dev/null ||
  { echo "onednn_versions: commit $OLD not in this clone's history (a shallow clone?)" >&2; exit 1; }

# Debian bookworm's onednn 2.6.3-1, as `apt-get download --print-uris` names them.
declare -A SHA=(
  [libdnnl2_2.6.3-1_amd64.deb]=9a8c4d2a880ac44175e531f55b9618b6539584c9fc5fd9eaf2070b6099a819bd
  [libdnnl-dev_2.6.3-1_amd64.deb]=1ac357ed0464a1c559dd66600ee3e713a2eb3531e743ccebb9f4e9193497bef3)
X=$CACHE/root
LIBDIR=$X/usr/lib/x86_64-linux-gnu
if [ ! -e "$LIBDIR/libdnnl.so.2" ] || [ ! -e "$X/usr/include/oneapi/dnnl/dnnl.h" ]; then
  mkdir -p "$CACHE/debs"
  (cd "$CACHE/debs" && apt-get download libdnnl2=2.6.3-1 libdnnl-dev=2.6.3-1 >"$CACHE/download.log" 2>&1) ||
    { cat "$CACHE/download.log" >&2; echo "onednn_versions: apt-get download of Debian's libdnnl 2.6.3 failed" >&2; exit 1; }
  for f in "${!SHA[@]}"; do
    echo "${SHA[$f]}  $CACHE/debs/$f" | sha256sum -c --quiet - ||
      { echo "onednn_versions: $f: sha256 mismatch" >&2; exit 1; }
    dpkg-deb -x "$CACHE/debs/$f" "$X"
  done
fi
# The -dev package's libdnnl.so is an absolute symlink; link by the file.
OLD_PROBE=$CACHE/bench_conv_algos_v2
if [ ! -x "$OLD_PROBE" ]; then
  git -C "$ROOT" show "$OLD:bench/conv_algos.c" >"$CACHE/conv_algos_v2.c"
  cc -O2 -std=c17 -D_POSIX_C_SOURCE=200809L -I"$X/usr/include" "$CACHE/conv_algos_v2.c" -o "$OLD_PROBE" \
    "$LIBDIR/libdnnl.so.2" -Wl,-rpath,"$LIBDIR"
fi

CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ') model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')$(grep -qw amx_tile /proc/cpuinfo && echo ', AMX' || echo ', no AMX'), $(nproc) CPUs"
echo "CPU: $CPU; $THREADS threads; $ROUNDS alternated rounds; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

if [ "$PROBE" = 1 ]; then
  for r in $(seq "$ROUNDS"); do
    for b in 8 1; do
      OMP_NUM_THREADS=$THREADS "$OLD_PROBE" --batch "$b" --iters 3 --json 2>/dev/null | tail -1 >>"$OUT/probe-old-$b"
      OMP_NUM_THREADS=$THREADS "$NEW_PROBE" --batch "$b" --iters 3 --json 2>/dev/null | tail -1 >>"$OUT/probe-new-$b"
    done
  done
  echo
  echo "Convolutions only (bench/conv_algos.c), img/s, median of $ROUNDS:"
  python3 - "$OUT" <<'EOF'
import json, statistics as st, sys
d = sys.argv[1]
print("| precision, batch | oneDNN 2.6.3 | oneDNN 3.2.0 | ratio (median of rounds) |")
print("|---|---:|---:|---:|")
for p in ("fp32", "bf16", "int8"):
    for b in (8, 1):
        old = [json.loads(l)["img_per_s"][p] for l in open(f"{d}/probe-old-{b}")]
        new = [json.loads(l)["img_per_s"][p] for l in open(f"{d}/probe-new-{b}")]
        ratio = st.median(n / o for o, n in zip(old, new) if o > 0)
        print(f"| {p}, {b} | {st.median(old):.1f} | {st.median(new):.1f} | {ratio:.2f}× |")
EOF
fi

if [ "$OSPREY_CMP" = 1 ]; then
  SRC=$CACHE/osprey-src BLD=$CACHE/osprey-build
  if [ ! -x "$BLD/osprey" ] || [ "$(cat "$CACHE/osprey-commit" 2>/dev/null)" != "$OLD" ]; then
    rm -rf "$SRC" "$BLD"
    mkdir -p "$SRC"
    git -C "$ROOT" archive "$OLD" | tar -x -C "$SRC"
    echo "building osprey at ${OLD:0:12} against Debian's oneDNN 2.6.3 (once; $BLD)" >&2
    cmake -S "$SRC" -B "$BLD" -DCMAKE_BUILD_TYPE=Release -DOSP_WERROR=OFF \
      -Ddnnl_DIR="$LIBDIR/cmake/dnnl" -DCMAKE_BUILD_RPATH="$LIBDIR" >"$CACHE/configure.log" 2>&1 ||
      { tail -20 "$CACHE/configure.log" >&2; exit 1; }
    nice cmake --build "$BLD" -j "$(nproc)" --target osprey >"$CACHE/build.log" 2>&1 ||
      { tail -20 "$CACHE/build.log" >&2; exit 1; }
    echo "$OLD" >"$CACHE/osprey-commit"
  fi
  ldd "$BLD/osprey" | grep -q "$LIBDIR/libdnnl.so.2" ||
    { echo "onednn_versions: the old osprey does not load $LIBDIR/libdnnl.so.2" >&2; exit 1; }
  O=$MODELS/onnx T=$MODELS/tflite
  [ -f "$O/resnet50.onnx" ] || { echo "onednn_versions: no $O/resnet50.onnx (set MODELS)" >&2; exit 1; }
  PTQ="--precision int8 --calibration $CALIB --calibration-count 16"
  CAP="--max-isa avx512_vnni"
  # case name | osprey bench arguments
  CASES=("ResNet50 int8, native|--model $O/resnet50.onnx $PTQ"
         "ResNet50 fp32, native|--model $O/resnet50.onnx --precision fp32"
         "ResNet50 fp32, avx512_vnni cap|--model $O/resnet50.onnx --precision fp32 $CAP")
  [ "$QUICK" = 1 ] || CASES+=(
         "ResNet50 int8, avx512_vnni cap|--model $O/resnet50.onnx $PTQ $CAP"
         "MobileNetV2 fp32, avx512_vnni cap|--model $O/mobilenet_v2.onnx --precision fp32 $CAP"
         "MobileNetV2 int8, avx512_vnni cap|--model $O/mobilenet_v2.onnx $PTQ $CAP"
         "SqueezeNet fp32, avx512_vnni cap|--model $O/squeezenet1_1.onnx --precision fp32 $CAP"
         "SqueezeNet int8, avx512_vnni cap|--model $O/squeezenet1_1.onnx $PTQ $CAP"
         "TFLite MobileNetV2 int8, avx512_vnni cap|--model $T/mobilenet_v2_1.0_224_quant.tflite $CAP")
  for r in $(seq "$ROUNDS"); do
    for i in "${!CASES[@]}"; do
      args=${CASES[$i]#*|}
      for v in old new; do
        bin=$BUILD/osprey; [ $v = old ] && bin=$BLD/osprey
        # shellcheck disable=SC2086  # the case's arguments are words
        OSPREY_CACHE_DIR=$OUT/cache-$v-$r "$bin" bench $args \
          --batch 8 --threads "$THREADS" --seconds "$SECS" --json 2>/dev/null >>"$OUT/osprey-$v-$i"
      done
    done
  done
  echo
  echo "osprey bench, batch 8, $THREADS threads, ${SECS} s per run, img/s, median of $ROUNDS:"
  python3 - "$OUT" "${CASES[@]}" <<'EOF'
import json, statistics as st, sys
d, cases = sys.argv[1], [c.split("|")[0] for c in sys.argv[2:]]
print("| model, precision, ISA | osprey on 2.6.3 | osprey on 3.2.0 | ratio (median of rounds) |")
print("|---|---:|---:|---:|")
for i, c in enumerate(cases):
    old = [json.loads(l)["img_per_s"] for l in open(f"{d}/osprey-old-{i}")]
    new = [json.loads(l)["img_per_s"] for l in open(f"{d}/osprey-new-{i}")]
    ratio = st.median(n / o for o, n in zip(old, new))
    print(f"| {c} | {st.median(old):.1f} | {st.median(new):.1f} | {ratio:.2f}× |")
EOF
fi
