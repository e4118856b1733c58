#!/usr/bin/env bash
# onednn_probe.sh — the oneDNN-only ceiling of ResNet50 on this machine, as
# in docs/adr/0048-onednn-3.md's table: the 53 convolutions alone (fused
# ReLU, format `any`, no reorders, pooling or classifier), fp32 / bf16 /
# int8, batch 8 and 1, on the oneDNN the build links, printed as img/s —
# and, side by side in the same run, the same probe under
# ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI, the stand-in for a CPU without AMX
# (the no-regression check of the oneDNN 3 move is made there).
#
#   bench/onednn_probe.sh [BUILD_DIR] [--threads N] [--iters K] [--no-cap]
#
# Runs build/bench/bench_conv_algos (bench/conv_algos.c) once per batch
# and ISA; ~1-2 min with 2 threads on a Sapphire Rapids. Prints one table;
# its last column is native ÷ capped. docs/performance.md reports osprey's
# whole-model throughput against these numbers.
set -euo pipefail

BUILD=build THREADS=2 ITERS=5 CAP=1
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS=$2; shift ;;
    --iters) ITERS=$2; shift ;;
    --no-cap) CAP=0 ;;
    -*) echo "usage: $0 [BUILD_DIR] [--threads N] [--iters K] [--no-cap]" >&2; exit 2 ;;
    *) BUILD=$1 ;;
  esac
  shift
done
PROBE="$BUILD/bench/bench_conv_algos"
[ -x "$PROBE" ] || { echo "onednn_probe: $PROBE missing (make build)" >&2; exit 1; }

# One JSON line per run: {"batch":…,"onednn":…,"img_per_s":{…}}
run() { # isa-cap batch
  env ${1:+ONEDNN_MAX_CPU_ISA=$1} OMP_NUM_THREADS="$THREADS" \
    "$PROBE" --batch "$2" --iters "$ITERS" --json 2>/dev/null
}
declare -A R
for b in 8 1; do
  R[native,$b]=$(run "" "$b")
  [ "$CAP" = 1 ] && R[vnni,$b]=$(run AVX512_CORE_VNNI "$b")
done
ver=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["onednn"])' "${R[native,8]}")
echo "oneDNN $ver, $THREADS threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
python3 - "$CAP" "${R[native,8]}" "${R[native,1]}" "${R[vnni,8]:-}" "${R[vnni,1]:-}" <<'EOF'
import json, sys
cap = sys.argv[1] == "1"
nat = [json.loads(sys.argv[2]), json.loads(sys.argv[3])]
vn = [json.loads(a) for a in sys.argv[4:6]] if cap else [None, None]
print("| precision, batch | native img/s |" + (" AVX512_CORE_VNNI cap img/s | native ÷ cap |" if cap else ""))
print("|---|---:|" + ("---:|---:|" if cap else ""))
for p in ("fp32", "bf16", "int8"):
    for i, r in enumerate(nat):
        line = f"| {p}, {r['batch']} | {r['img_per_s'][p]:.1f} |"
        if cap:
            c = vn[i]["img_per_s"][p]
            line += f" {c:.1f} | {r['img_per_s'][p] / c:.2f}× |" if c > 0 else " — | — |"
        print(line)
EOF
