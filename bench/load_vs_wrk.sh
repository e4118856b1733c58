#!/usr/bin/env bash
# load_vs_wrk.sh — is `osprey load` fast enough never to be the bottleneck?
# Runs it side by side with wrk (the reference HTTP load generator), both
# pinned to one client core, against trivial endpoints on another core:
#   1. bench_tiny_http (bench/tiny_http.c): an epoll server so cheap that
#      the client limits the rate — this compares the generators;
#   2. `osprey serve`'s GET /v2/health/live (when a model is found) — the
#      worker's own per-request floor.
# Closed loop, N connections, max rate; rounds alternate wrk / osprey load so
# a noisy neighbour slows both alike. Then an open-loop run at a fixed rate
# (default 5000/s) shows that the schedule is met and what a request costs
# the client in CPU. Prints a table; writes bench/results/load_vs_wrk-DATE.json.
#
#   bench/load_vs_wrk.sh [BUILD_DIR]     (default ./build; needs wrk:
#                                         apt-get install wrk)
# Environment: CLIENT_CPU (default 0), SERVER_CPU (default 1), DUR seconds
# per run (default 5), CONNS (default 64), ROUNDS (default 3), RATE (open
# loop, default 5000).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
BUILD=${1:-$ROOT/build}
OSPREY=$BUILD/osprey
TINY=$BUILD/bench/bench_tiny_http
CLIENT_CPU=${CLIENT_CPU:-0}
SERVER_CPU=${SERVER_CPU:-1}
DUR=${DUR:-5}
CONNS=${CONNS:-64}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-5000}
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=${OUT:-$ROOT/bench/results/load_vs_wrk-$STAMP.json}
command -v wrk >/dev/null || { echo "load_vs_wrk: wrk not found (apt-get install wrk, or scripts/install-bench-deps.sh)" >&2; exit 1; }
[ -x "$OSPREY" ] && [ -x "$TINY" ] || { echo "load_vs_wrk: build first (make build)" >&2; exit 1; }

PIDS=()
# (set -e: a killed child's non-zero wait status must not end the cleanup)
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
TMP=$(mktemp -d /tmp/osp_load_vs_wrk.XXXXXX)
trap cleanup EXIT

# wrk_run URL → "req/s cpu_s"
wrk_run() {
    local out; out=$( { TIMEFORMAT='%U %S'; time taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DUR}s" "$1" >"$TMP/wrk.out"; } 2>&1 )
    local rps; rps=$(awk '/^Requests\/sec:/ {print $2}' "$TMP/wrk.out")
    echo "$rps $(echo "$out" | awk '{print $1+$2}')"
}
# osp_run URL → "req/s cpu_s" (closed loop, GET)
osp_run() {
    taskset -c "$CLIENT_CPU" "$OSPREY" load --url "$1" --target get --mode closed \
        --concurrency "$CONNS" --duration "${DUR}s" --json --quiet 2>/dev/null >"$TMP/osp.json"
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["rps"], s["client_cpu_s"])' "$TMP/osp.json"
}

RESULTS="[]"
add() { # server tool round rps cpu
    RESULTS=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.append(dict(server=sys.argv[2], tool=sys.argv[3], round=int(sys.argv[4]), rps=float(sys.argv[5]), client_cpu_s=float(sys.argv[6]))); print(json.dumps(r))' "$RESULTS" "$@")
    printf '%-14s %-12s %5s %12.0f %10.2f %8.2f\n' "$@" \
        "$(python3 -c "print(1e6 * $5 / max($4 * $DUR, 1))")"
}
compare() { # server-name URL
    local r a b
    for ((r = 1; r <= ROUNDS; r++)); do
        read -r a b < <(wrk_run "$2"); add "$1" wrk "$r" "$a" "$b"
        read -r a b < <(osp_run "$2"); add "$1" "osprey-load" "$r" "$a" "$b"
    done
}

echo "client CPU $CLIENT_CPU, server CPU $SERVER_CPU, $CONNS connections, ${DUR}s per run, $ROUNDS rounds"
printf '%-14s %-12s %5s %12s %10s %8s\n' server tool round "req/s" "client CPU s" "us/req"
taskset -c "$SERVER_CPU" "$TINY" >"$TMP/tiny.port" & PIDS+=($!)
for ((i = 0; i < 50; i++)); do grep -q . "$TMP/tiny.port" 2>/dev/null && break; sleep 0.1; done
TINY_URL="http://127.0.0.1:$(head -1 "$TMP/tiny.port")/"
compare tiny_http "$TINY_URL"

MODEL=
for d in "${OSPREY_MODELS:-}" "$ROOT/../shared/models"; do
    [ -n "$d" ] && [ -f "$d/tflite/mobilenet_v1_0.25_128_quant.tflite" ] && { MODEL="$d/tflite/mobilenet_v1_0.25_128_quant.tflite"; break; }
done
if [ -n "$MODEL" ]; then
    taskset -c "$SERVER_CPU" "$OSPREY" serve --model "$MODEL" --threads 1 --host 127.0.0.1 --port 0 >"$TMP/serve.log" 2>&1 & PIDS+=($!)
    PORT=
    for ((i = 0; i < 600; i++)); do
        PORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$TMP/serve.log" | head -1)
        [ -n "$PORT" ] && curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/v2/health/ready" && break
        sleep 0.1
    done
    compare serve_live "http://127.0.0.1:$PORT/v2/health/live"
else
    echo "(no model found: skipping the osprey serve rows)"
fi

# Open loop at a fixed rate against the tiny server.
taskset -c "$CLIENT_CPU" "$OSPREY" load --url "$TINY_URL" --target get --rate "$RATE" \
    --duration "${DUR}s" --json --quiet 2>/dev/null >"$TMP/open.json"
OPEN=$(cat "$TMP/open.json")
python3 - "$TMP/open.json" "$RATE" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"open loop {sys.argv[2]}/s on one core: achieved {s['rps']:.0f} req/s, "
      f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, errors {s['errors']}, "
      f"client CPU {100 * s['client_cpu_s'] / s['duration_s']:.0f}% of a core "
      f"({1e6 * s['client_cpu_s'] / max(s['completed'], 1):.1f} us/request)")
PYEOF
python3 - "$RESULTS" "$OPEN" "$OUT" "$STAMP" "$CONNS" "$DUR" <<'PYEOF'
import json, statistics, sys
rows, open_loop = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = dict(stamp=sys.argv[4], connections=int(sys.argv[5]), seconds=int(sys.argv[6]),
           runs=rows, open_loop=open_loop, median_rps={})
for srv in sorted({r["server"] for r in rows}):
    for tool in ("wrk", "osprey-load"):
        sel = [r for r in rows if r["server"] == srv and r["tool"] == tool]
        v = statistics.median(r["rps"] for r in sel)
        us = statistics.median(1e6 * r["client_cpu_s"] / max(r["rps"] * out["seconds"], 1) for r in sel)
        out["median_rps"][f"{srv}/{tool}"] = v
        out.setdefault("median_client_us_per_req", {})[f"{srv}/{tool}"] = us
        print(f"median {srv:12s} {tool:12s} {v:10.0f} req/s {us:8.2f} client CPU us/request")
json.dump(out, open(sys.argv[3], "w"), indent=1)
print("wrote", sys.argv[3])
PYEOF
