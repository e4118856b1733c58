#!/usr/bin/env bash
# overload.sh — queue-delay load shedding against today's behaviour (no
# shedding), side by side in one run (docs/serve.md "Overload and load
# shedding"; issue goal: ResNet50 at ~3× capacity, 64 closed-loop clients:
# p99 of admitted requests ≤ 250 ms, refusals answered within 5 ms,
# goodput ≥ 95 % of capacity).
#
#   1. capacity: one worker (shedding off), CAP_CLIENTS closed-loop clients
#      without think time for DUR s: admitted requests/s = capacity C;
#   2. 64 clients, each thinking 64 / (3 C) s between answers, so that
#      they offer ~3 C when answered at once: first with
#      --queue-delay-target-ms 0 (today), then with the default target —
#      each on a fresh worker, for DUR s after a WARMUP s onset;
#   3. a table with both and their ratios; bench/results/overload-DATE.json.
#
# The clients are tests/integration/lib/overload_client.py (it keeps the
# latency of 200s and 503s apart, which `osprey load` does not).
#
#   bench/overload.sh [BUILD_DIR]      (default ./build)
# Environment: MODEL (default ../shared/models/onnx/resnet50.onnx), IMAGE
# (one JPEG of ../shared/images/imagenet-samples), PRECISION (default: the
# model config's, i.e. auto), DUR (default 20), WARMUP (default 3),
# CLIENTS (64), OVERLOAD (3), CAP_CLIENTS (16), TARGET_MS (the default
# target, 100), SERVE_ARGS (more `osprey serve` flags).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
BUILD=${1:-$ROOT/build}
OSPREY=$BUILD/osprey
PY=${PY:-python3}
MODEL=${MODEL:-$ROOT/../shared/models/onnx/resnet50.onnx}
if [ -z "${IMAGE:-}" ]; then
    for IMAGE in "$ROOT"/../shared/images/imagenet-samples/*.JPEG; do break; done
fi
DUR=${DUR:-20}
WARMUP=${WARMUP:-3}
CLIENTS=${CLIENTS:-64}
OVERLOAD=${OVERLOAD:-3}
CAP_CLIENTS=${CAP_CLIENTS:-16}
TARGET_MS=${TARGET_MS:-100}
PRECISION=${PRECISION:-}
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=${OUT:-$ROOT/bench/results/overload-$STAMP.json}
CLIENT=$ROOT/tests/integration/lib/overload_client.py
[ -x "$OSPREY" ] || { echo "overload: build first (make build)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "overload: no model at $MODEL (scripts/find-models.sh; MODEL=...)" >&2; exit 1; }
[ -n "$IMAGE" ] && [ -f "$IMAGE" ] || { echo "overload: no image (IMAGE=...)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/osp_overload.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }; rm -rf "$TMP"; }
trap cleanup EXIT

# start TARGET_MS — a fresh worker on a free loopback port; sets PORT.
start() {
    local log=$TMP/serve.log i
    : >"$log"
    "$OSPREY" serve --model "$MODEL" --host 127.0.0.1 --port 0 \
        ${PRECISION:+--precision "$PRECISION"} --queue-delay-target-ms "$1" \
        ${SERVE_ARGS:-} >"$log" 2>&1 &
    PID=$!
    PORT=
    for ((i = 0; i < 1800; i++)); do
        [ -z "$PORT" ] && PORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$log" | head -1)
        if [ -n "$PORT" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2/health/ready")" = 200 ]; then
            return 0
        fi
        kill -0 "$PID" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.1
    done
    echo "overload: worker not ready" >&2; exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=; }
shed_total() {
    curl -s "http://127.0.0.1:$PORT/metrics" |
        awk '$1 ~ /^osprey_requests_shed_total/ { v += $2 } END { print v + 0 }'
}
run() { # run NAME CLIENTS THINK_MS — one closed-loop run → $TMP/NAME.json
    "$PY" "$CLIENT" "http://127.0.0.1:$PORT" /classify "$IMAGE" --clients "$2" \
        --think-ms "$3" --duration-s "$((DUR + WARMUP))" --warmup-s "$WARMUP" >"$TMP/$1.json"
}

echo "overload: $(basename "$MODEL"), image $(basename "$IMAGE"), ${DUR}s per run after ${WARMUP}s"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs"
start 0
run capacity "$CAP_CLIENTS" 0
stop
CAP=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ok_rps"])' "$TMP/capacity.json")
THINK=$("$PY" -c 'import sys; c,n,x=map(float,sys.argv[1:]); print(round(1000*n/(x*c), 1))' "$CAP" "$CLIENTS" "$OVERLOAD")
echo "capacity: $CAP images/s with $CAP_CLIENTS clients; $CLIENTS clients think ${THINK} ms (~${OVERLOAD}x)"
start 0
run today "$CLIENTS" "$THINK"
stop
start "$TARGET_MS"
run shed "$CLIENTS" "$THINK"
SHED_COUNT=$(shed_total)
stop

"$PY" - "$TMP" "$CAP" "$THINK" "$SHED_COUNT" "$OUT" "$TARGET_MS" <<'EOF'
import json, os, platform, subprocess, sys
tmp, cap, think, shed_count, out, target = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(float(sys.argv[4])), sys.argv[5], sys.argv[6]
r = {k: json.load(open(os.path.join(tmp, k + ".json"))) for k in ("capacity", "today", "shed")}
def f(v, d=1):
    return "-" if v is None else f"{v:.{d}f}"
rows = [("admitted req/s (goodput)", "ok_rps", 1), ("admitted p50 ms", "ok_p50_ms", 1),
        ("admitted p99 ms", "ok_p99_ms", 1), ("admitted max ms", "ok_max_ms", 1),
        ("503s", "n_503", 0), ("503 p50 ms", "shed_p50_ms", 2), ("503 p99 ms", "shed_p99_ms", 2)]
print(f"\n{'':28} {'today (no shedding)':>20} {'shedding (' + target + ' ms)':>20} {'shed / today':>13}")
for name, key, d in rows:
    a, b = r["today"].get(key), r["shed"].get(key)
    ratio = f"{b / a:.3f}" if a and b is not None else "-"
    print(f"{name:28} {f(a, d):>20} {f(b, d):>20} {ratio:>13}")
g = {m: r[m]["ok_rps"] / cap for m in ("today", "shed")}
print(f"{'goodput / capacity':28} {g['today']:>20.3f} {g['shed']:>20.3f}")
p99, rej = r["shed"]["ok_p99_ms"], r["shed"]["shed_p99_ms"]
goals = {"admitted p99 <= 250 ms": p99 is not None and p99 <= 250,
         "refusals p99 <= 5 ms": rej is not None and rej <= 5,
         "goodput >= 0.95 capacity": g["shed"] >= 0.95,
         "shed counter == 503s seen": shed_count == r["shed"]["codes"].get("503", 0)}
print(f"capacity {cap:.1f} images/s; think {think} ms; osprey_requests_shed_total {shed_count}")
for k, v in goals.items():
    print(f"goal {k}: {'met' if v else 'NOT met'}")
cpu = subprocess.run(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p' | head -1"], capture_output=True, text=True).stdout.strip()
json.dump({"cpu": cpu, "nproc": os.cpu_count(), "capacity_rps": cap, "think_ms": think,
           "target_ms": int(target), "runs": r, "goodput_ratio": g,
           "shed_counter": shed_count, "goals": goals}, open(out, "w"), indent=1)
print(f"wrote {out}")
EOF
