#!/usr/bin/env bash
# autoscale_sources.sh — the autoscaler's two metric sources give the same
# decisions on the same data (issue 13), and both hold on no data.
#
# A real `osprey dispatch` in front of a real `osprey serve` worker, a real
# Prometheus (scraping the dispatcher's admin port, where /metrics is
# served too, every 1 s; bound to 127.0.0.1, a generated config, a temp
# data dir) and `osprey load` with a step profile (6 → 30 → 14 requests/s).
# Two autoscalers run side by side with --dry-run (decide, never act: both
# observe the same dispatcher with one worker, so both see the same replica
# count) and --json-log: one with the embedded source, one with
# --prometheus (rate window 3 s; period 5 s for both). The driver
# (autoscale_sources.py) pairs their decisions by time and asserts: each
# decision of one has one of the other within one tick; outside the
# settling time after each step (period + rate window + 2 s) the desired
# counts and the held flags are equal, rps within 6% (or 0.5/s), the p95s
# within a factor of 4 each and their median ratio within 1.5; 8+ decisions
# compared.
#
# Why not exact equality: the embedded source averages its per-tick counter
# deltas over the period at its own read times; Prometheus scrapes at other
# times (up to 1 s older), and rate() divides by the sampled interval and
# extrapolates to the window's edges — the same rate within the jitter of
# one request, not the same bits. The p95s interpolate in the same buckets,
# but over 1 s of requests (the embedded source's tick) vs 3 s (the rate
# window): a quantile of fewer requests, which one slow request on a busy
# machine moves alone. Right after a step the two windows
# cover different mixes of old and new load, so those decisions may differ
# by a period: they are excluded, not compared.
#
# Faults (same run): a third autoscaler with a bad --query (a PromQL parse
# error) counts each failure in osprey_autoscaler_errors_total
# {source="prometheus"}, logs Prometheus's error and holds. Then a real local
# autoscaler (not a dry run) runs 2 workers under load; Prometheus is
# stopped → the Prometheus source's /status last_decision says "held: no
# data for rps", its errors grow, and it decides from data again once
# Prometheus is back; the dispatcher is killed → the local autoscaler holds
# its 2 workers (never scales down on no data), says "held: no data for
# rps", counts dispatcher errors, and when a dispatcher starts again on the
# same ports it registers its workers again and decides from data.
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

PROMETHEUS=$(command -v prometheus) || {
    echo "SKIP: prometheus not installed (scripts/install-deps.sh installs the Debian package)"
    exit 77
}
SCALE=1; [ "$ASAN" = 1 ] && SCALE=2
worker_start 0 0 || fail "worker did not start"
dispatch_start --health-interval-ms 200 || fail "dispatcher did not start"
$PY "$SRC/tests/integration/autoscale_sources.py" --osprey "$OSPREY" --prometheus "$PROMETHEUS" \
    --dispatch "$D_URL" --admin "http://127.0.0.1:$D_ADMIN" --dispatch-pid "$D_PID" \
    --worker "127.0.0.1:${W_PORT[0]}" --model "$MODEL" --image "$IMG" --scale "$SCALE" --tmp "$TMPD" || {
    for f in "$TMPD"/embedded.log "$TMPD"/prom.log "$TMPD"/local.log "$TMPD"/prometheus.log; do
        [ -f "$f" ] && { echo "--- $(basename "$f"):"; grep -v '"path":"/v2/repository/index"' "$f" | tail -15; }
    done
    fail "autoscale_sources"
}
echo "PASS: autoscale_sources"
