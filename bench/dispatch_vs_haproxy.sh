#!/usr/bin/env bash
# dispatch_vs_haproxy.sh — the dispatcher benchmark of issue 6: osprey
# dispatch vs HAProxy 2.6 (`balance leastconn`) in front of the same
# `osprey serve` worker(s), same load from `osprey load`: added p50/p99
# latency and max req/s for small and ~100 KB requests through the event
# path (default), the blocking path (--io blocking) and HAProxy, CPU µs and
# context switches per request (perf stat), and client p99 with one slow
# worker (p2c vs rr vs leastconn). Writes
# bench/results/<UTC>-dispatch.json and prints Markdown tables for
# docs/performance.md ("Dispatcher"). The logic is in
# bench/dispatch_vs_haproxy.py (stdlib Python).
#
#   bench/dispatch_vs_haproxy.sh [--quick] [options of the .py]
#   OSPREY_BEFORE=/path/to/old/osprey bench/dispatch_vs_haproxy.sh ...
#     also measures that binary's dispatcher, side by side (before/after).
# Needs: build/osprey (make build), haproxy (scripts/install-bench-deps.sh),
# the shared models and images (as the tests find them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
OSPREY=${OSPREY:-$ROOT/build/osprey}
[ -x "$OSPREY" ] || { echo "dispatch_vs_haproxy.sh: build first (make build)" >&2; exit 1; }
command -v haproxy >/dev/null || {
    echo "dispatch_vs_haproxy.sh: haproxy not found: run scripts/install-bench-deps.sh" >&2; exit 1; }
SHARED=
for d in "${OSPREY_MODELS:-}/.." "$ROOT/../shared" "$(git -C "$ROOT" worktree list 2>/dev/null | head -1 | cut -d' ' -f1)/../shared"; do
    if [ -f "$d/models/tflite/mobilenet_v1_0.25_128_quant.tflite" ]; then SHARED=$(cd "$d" && pwd -P); break; fi
done
[ -n "$SHARED" ] || { echo "dispatch_vs_haproxy.sh: models not found (../shared/models)" >&2; exit 1; }
BIG=${OSPREY_BIG_IMAGE:-$SHARED/images/cat_720p.jpg}
BEFORE=()
[ -z "${OSPREY_BEFORE:-}" ] || BEFORE=(--osprey-before "$OSPREY_BEFORE")
exec /usr/bin/python3 "$ROOT/bench/dispatch_vs_haproxy.py" --osprey "$OSPREY" "${BEFORE[@]}" \
    --model "$SHARED/models/tflite/mobilenet_v1_0.25_128_quant.tflite" \
    --small-image "$ROOT/tests/data/images/blocks.jpg" --big-image "$BIG" "$@"
