#!/usr/bin/env bash
# overload.sh — queue-delay load shedding against today's behaviour (no
# shedding), side by side in one run (docs/serve.md "Overload and load
# shedding"; issue goal: ResNet50 at ~3× capacity, 64 closed-loop clients:
# p99 of admitted requests ≤ 250 ms, refusals answered within 5 ms,
# goodput ≥ 95 % of capacity).
#
#   1. capacity: one worker (shedding off), CAP_CLIENTS closed-loop clients
#      without think time: admitted requests/s = capacity C;
#   2. 64 clients, each thinking 64 / (3 C) s between answers, so that
#      they offer ~3 C when answered at once: first with
#      --queue-delay-target-ms 0 (today), then with the default target —
#      each on a fresh worker;
#   3. capacity again, on a fresh worker: the machine's speed drifts (a
#      shared CPU, a noisy neighbour); C is the mean of the two, and both
#      are in the result with their spread;
#   4. a table with both and their ratios; bench/results/overload-DATE.json.
#
# Every run is `osprey load` (C, one thread, ~1 % of a CPU; it keeps the
# latency of admitted and refused answers apart), DUR s after a WARMUP s
# onset that is left out. Why not the Python clients of the shedding test:
# 64 threads of them took 3-6 % of the two CPUs the worker needs — more in
# the overload runs, which send twice the requests, than in the capacity
# run — and their own scheduling (GIL, a thread per client) added
# milliseconds to every measured refusal (docs/adr/0052-decode-off-the-
# event-loop.md). Goodput, for capacity and overload alike, is the
# admitted answers completed within the window [WARMUP, WARMUP + DUR) per
# second (from the per-second series): counting the requests started in
# it instead undercounts a run whose answers take longer — today's — by
# its in-flight requests at the window's edges (~4 %).
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
# CPU seconds (user + system) of the whole machine, and of process $1.
busy_s() { awk -v t="$(getconf CLK_TCK)" 'NR == 1 { print ($2 + $3 + $4 + $7 + $8) / t }' /proc/stat; }
proc_s() { awk -v t="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / t }' "/proc/$1/stat"; }
# run NAME CLIENTS THINK_MS — one closed-loop run → $TMP/NAME.json (the
# summary) and $TMP/NAME/ (the series); the load average before it, and
# the CPUs that other processes used during it (NAME.others: a shared
# machine's noise, next to every number).
run() {
    cut -d' ' -f1-3 /proc/loadavg >"$TMP/$1.load"
    local b0 w0 t0 b1 w1 t1
    b0=$(busy_s); w0=$(proc_s "$PID"); t0=$(date +%s.%N)
    "$OSPREY" load --url "http://127.0.0.1:$PORT" --mode closed \
        --concurrency "$2" --think-ms "$3" --target raw --images "$IMAGE" \
        --duration "$((DUR + WARMUP))s" --warmup "${WARMUP}s" \
        --out "$TMP/$1" --json --quiet >"$TMP/$1.json" 2>"$TMP/$1.err"
    b1=$(busy_s); w1=$(proc_s "$PID"); t1=$(date +%s.%N)
    "$PY" -c 'import json,sys; b0,b1,w0,w1,t0,t1=map(float,sys.argv[2:8]); c=json.load(open(sys.argv[1]))["client_cpu_s"]; print(round(max(0,(b1-b0)-(w1-w0)-c)/(t1-t0),3))' \
        "$TMP/$1.json" "$b0" "$b1" "$w0" "$w1" "$t0" "$t1" >"$TMP/$1.others"
}
# capacity NAME — a fresh worker without shedding, CAP_CLIENTS, no think.
capacity() { start 0; run "$1" "$CAP_CLIENTS" 0; stop; }
# goodput NAME — admitted answers/s completed in [WARMUP, WARMUP + DUR).
goodput() {
    "$PY" - "$TMP/$1/timeseries.json" "$WARMUP" "$DUR" <<'EOF'
import json, sys
rows, w, d = json.load(open(sys.argv[1])), int(sys.argv[2]), int(sys.argv[3])
win = rows[w:w + d]
print(round(sum(r["completed"] - r["errors"] for r in win) / d, 2))
EOF
}
# errors_all NAME — answers >= 400 and failures over the whole run, onset
# included (what the worker's counters count).
errors_all() {
    "$PY" -c 'import json,sys; print(sum(r["errors"] for r in json.load(open(sys.argv[1]))))' \
        "$TMP/$1/timeseries.json"
}

cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
cpu_fm="family $(sed -n 's/^cpu family[^0-9]*//p' /proc/cpuinfo | head -1) model $(sed -n 's/^model[^a-z]*: //p' /proc/cpuinfo | head -1)"
amx=$(grep -q -m1 amx_tile /proc/cpuinfo && echo AMX || echo "no AMX")
echo "overload: $(basename "$MODEL"), image $(basename "$IMAGE"), ${DUR}s per run after ${WARMUP}s"
echo "CPU: $cpu_model ($cpu_fm, $amx), $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
capacity cap1
CAP1=$(goodput cap1)
THINK=$("$PY" -c 'import sys; c,n,x=map(float,sys.argv[1:]); print(round(1000*n/(x*c)))' "$CAP1" "$CLIENTS" "$OVERLOAD")
echo "capacity: $CAP1 images/s with $CAP_CLIENTS clients; $CLIENTS clients think ${THINK} ms (~${OVERLOAD}x)"
start 0
run today "$CLIENTS" "$THINK"
stop
start "$TARGET_MS"
run shed "$CLIENTS" "$THINK"
SHED_COUNT=$(shed_total)
stop
SHED_SEEN=$(errors_all shed)
capacity cap2
for n in today shed; do goodput "$n" >"$TMP/$n.goodput"; done
CAP2=$(goodput cap2)

"$PY" - "$TMP" "$CAP1" "$CAP2" "$THINK" "$SHED_COUNT" "$OUT" "$TARGET_MS" \
    "$cpu_model" "$cpu_fm" "$amx" "$DUR" "$WARMUP" "$SHED_SEEN" <<'EOF'
import json, os, sys
(tmp, cap1, cap2, think, shed_count, out, target, cpu, cpu_fm, amx, dur,
 warm, shed_seen) = sys.argv[1:]
cap1, cap2, shed_count = float(cap1), float(cap2), int(float(shed_count))
shed_seen = int(shed_seen)
cap = (cap1 + cap2) / 2
names = ("cap1", "today", "shed", "cap2")
r = {k: json.load(open(os.path.join(tmp, k + ".json"))) for k in names}
# Per second: answers (admitted = completed - errors) and their p99, to
# show dips (a noisy neighbour, a controller that starved the engine).
series = {k: [{f: row[f] for f in ("completed", "errors", "p99_ms")}
              for row in json.load(open(os.path.join(tmp, k, "timeseries.json")))]
          for k in names}
load = {k: open(os.path.join(tmp, k + ".load")).read().split() for k in names}
others = {k: float(open(os.path.join(tmp, k + ".others")).read()) for k in names}
gp = {k: float(open(os.path.join(tmp, k + ".goodput")).read())
      for k in ("today", "shed")}
def f(v, d=1):
    return "-" if v is None else f"{v:.{d}f}"
rows = [("admitted req/s (goodput)", None, 1), ("admitted p50 ms", "ok_p50_ms", 1),
        ("admitted p99 ms", "ok_p99_ms", 1), ("admitted max ms", "ok_max_ms", 1),
        ("503s", None, 0), ("503 p50 ms", "error_p50_ms", 2),
        ("503 p99 ms", "error_p99_ms", 2), ("503 max ms", "error_max_ms", 2)]
def val(m, key, name):
    if name.startswith("admitted req/s"):
        return gp[m]
    if name == "503s":
        return r[m]["status_codes"].get("503", 0)
    if key.startswith("error") and not r[m]["errors"]:
        return None
    return r[m].get(key)
print(f"\n{'':28} {'today (no shedding)':>20} {'shedding (' + target + ' ms)':>20} {'shed / today':>13}")
for name, key, d in rows:
    a, b = val("today", key, name), val("shed", key, name)
    ratio = f"{b / a:.3f}" if a and b is not None else "-"
    print(f"{name:28} {f(a, d):>20} {f(b, d):>20} {ratio:>13}")
g = {m: gp[m] / cap for m in ("today", "shed")}
print(f"{'goodput / capacity':28} {g['today']:>20.3f} {g['shed']:>20.3f}")
print(f"capacity {cap1:.1f} before, {cap2:.1f} after (mean {cap:.1f} images/s, "
      f"spread {abs(cap1 - cap2) / cap * 100:.1f} %); think {think} ms; "
      f"osprey_requests_shed_total {shed_count}")
print("load average before each run (1/5/15 min): " +
      "; ".join(f"{m} {' '.join(load[m])}" for m in names))
print("CPUs used by other processes during each run: " +
      ", ".join(f"{m} {others[m]:.2f}" for m in names) +
      ("" if max(others.values()) < 0.1 else "  (a shared CPU: repeat on a quiet machine)"))
p99, rej = r["shed"]["ok_p99_ms"], r["shed"]["error_p99_ms"]
failures = {m: sum(r[m]["errors_by_class"][k] for k in
                   ("connect", "timeout", "read", "parse", "dropped"))
            for m in names}
goals = {"admitted p99 <= 250 ms": p99 <= 250,
         "refusals p99 <= 5 ms": bool(r["shed"]["errors"]) and rej <= 5,
         "goodput >= 0.95 capacity": g["shed"] >= 0.95,
         "shed counter == 503s seen (whole run)": shed_count == shed_seen,
         "no failures without an answer": not any(failures.values())}
for k, v in goals.items():
    print(f"goal {k}: {'met' if v else 'NOT met'}")
json.dump({"cpu": cpu, "cpu_family_model": cpu_fm, "amx": amx,
           "nproc": os.cpu_count(), "client": "osprey load (closed loop)",
           "duration_s": int(dur), "warmup_s": int(warm),
           "capacity_rps": cap, "capacity_before_rps": cap1,
           "capacity_after_rps": cap2, "think_ms": int(think),
           "target_ms": int(target), "goodput_rps": gp, "runs": r,
           "series": series,
           "load_average_before": load, "others_cpus": others,
           "goodput_ratio": g,
           "shed_counter": shed_count, "goals": goals},
          open(out, "w"), indent=1)
print(f"wrote {out}")
EOF
