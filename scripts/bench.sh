#!/usr/bin/env bash
# bench.sh — `make bench`: the standard benchmark matrix, osprey against ONNX
# Runtime in the same run (`osprey bench --compare-ort`, which interleaves the
# two engines), written to bench/results/<date>.json and summarised as a
# Markdown table for docs/performance.md.
#
#   scripts/bench.sh [OSPREY_BINARY]
# Environment: BENCH_SECONDS (timed seconds per engine and config, default 10),
# BENCH_THREADS (default: CPUs available), BENCH_ROUNDS (interleaved rounds,
# default 10), BENCH_OUT (output file), BENCH_NO_ORT=1 (osprey only),
# OSPREY_MODELS (see scripts/find-models.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=find-models.sh
. "$ROOT/scripts/find-models.sh"

OSPREY=${1:-$ROOT/build/osprey}
SECONDS_PER=${BENCH_SECONDS:-10}
THREADS=${BENCH_THREADS:-$(nproc)}
ROUNDS=${BENCH_ROUNDS:-10}
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=${BENCH_OUT:-$ROOT/bench/results/$STAMP.json}

if [ ! -x "$OSPREY" ]; then
  echo "bench: $OSPREY is not built; run 'make build' first" >&2; exit 1
fi
if ! MDIR=$(osp_models_dir); then
  echo "bench: no models found (looked in $(osp_models_searched)); run 'make models'" >&2; exit 1
fi

# name | candidate model files (first found wins) | batch | precision
MATRIX=(
  "resnet50|onnx/resnet50.onnx resnet50v1/resnet50-v1-7.onnx|1|fp32"
  "resnet50|onnx/resnet50.onnx resnet50v1/resnet50-v1-7.onnx|8|fp32"
  "resnet50|onnx/resnet50.onnx resnet50v1/resnet50-v1-7.onnx|8|bf16"
  "mobilenet_v2|onnx/mobilenet_v2.onnx */mobilenetv2*.onnx|8|fp32"
  "squeezenet1_1|onnx/squeezenet1_1.onnx|8|fp32"
)

json_str() { printf '"%s"' "$(printf '%s' "$1" | tr '\n\t' '  ' | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

mkdir -p "$(dirname "$OUT")"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|avx512_vnni|amx_tile|amx_bf16)$' | paste -sd' ' || true)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

results=()
failed=0
for entry in "${MATRIX[@]}"; do
  IFS='|' read -r name cands batch prec <<<"$entry"
  model=""
  for rel in $cands; do
    # Globs cover archives whose top directory name we do not control.
    for f in "$MDIR"/$rel; do [ -e "$f" ] && { model=$f; break 2; }; done
  done
  if [ -z "$model" ]; then
    echo "bench: skipping $name (none of: $cands in $MDIR)" >&2
    results+=("{\"name\":$(json_str "$name"),\"batch\":$batch,\"requested_precision\":\"$prec\",\"skipped\":$(json_str "model not found")}")
    continue
  fi
  args=(bench --model "$model" --batch "$batch" --threads "$THREADS" --precision "$prec"
        --seconds "$SECONDS_PER" --json)
  [ "${BENCH_NO_ORT:-0}" = 1 ] || args+=(--compare-ort --rounds "$ROUNDS")
  echo "bench: $name batch=$batch precision=$prec threads=$THREADS ..." >&2
  err=$(mktemp)
  if line=$("$OSPREY" "${args[@]}" 2>"$err"); then
    # Tag the engine's JSON object with the matrix name.
    results+=("{\"name\":$(json_str "$name"),${line#\{}")
    printf '%s\n' "$line" >&2
  else
    failed=1
    msg=$(tail -n 5 "$err")
    echo "bench: $name batch=$batch precision=$prec FAILED: $msg" >&2
    results+=("{\"name\":$(json_str "$name"),\"model\":$(json_str "$model"),\"batch\":$batch,\"requested_precision\":\"$prec\",\"error\":$(json_str "$msg")}")
  fi
  rm -f "$err"
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

{
  printf '{"date":"%s","commit":"%s","host":{"cpu":%s,"cpu_flags":"%s","cpus_online":%s,"threads":%s,' \
    "$STAMP" "$COMMIT" "$(json_str "$CPU")" "$FLAGS" "$(nproc --all)" "$THREADS"
  printf '"loadavg_before":"%s","loadavg_after":"%s"},"seconds_per_engine":%s,"rounds":%s,"results":[\n' \
    "$LOAD0" "$LOAD1" "$SECONDS_PER" "$ROUNDS"
  for i in "${!results[@]}"; do
    [ "$i" -gt 0 ] && printf ',\n'
    printf '  %s' "${results[$i]}"
  done
  printf '\n]}\n'
} > "$OUT"
echo "bench: wrote $OUT (load average before: $LOAD0, after: $LOAD1)" >&2

# Markdown summary for docs/performance.md (python3 is only for formatting).
if command -v python3 >/dev/null; then
  python3 - "$OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("| model | precision | batch | threads | osprey img/s | p50 ms | p99 ms | ORT img/s | ORT p50 ms | ratio vs ORT | load ms (osprey/ORT) | peak RSS MB (osprey/ORT) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
f = lambda v, p=1: "–" if v is None else f"{v:.{p}f}"
for r in d["results"]:
    if "img_per_s" not in r:
        why = r.get("error") or r.get("skipped")
        print(f"| {r['name']} | {r.get('requested_precision')} | {r.get('batch')} | | {why} | | | | | | | |")
        continue
    print(f"| {r['name']} | {r['precision']} | {r['batch']} | {r['threads']} | {f(r['img_per_s'])} | "
          f"{f(r['p50_ms'])} | {f(r['p99_ms'])} | {f(r.get('ort_img_per_s'))} | {f(r.get('ort_p50_ms'))} | "
          f"{f(r.get('ratio_vs_ort'), 2)} | {f(r['load_ms'], 0)} / {f(r.get('ort_load_ms'), 0)} | "
          f"{f(r['rss_mb'], 0)} / {f(r.get('ort_rss_mb'), 0)} |")
PY
fi
exit $failed
