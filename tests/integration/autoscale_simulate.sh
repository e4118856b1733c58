#!/usr/bin/env bash
# autoscale_simulate.sh — the autoscaler's simulation benchmark as a test
# (issue 13, "Proof 1"): bench/autoscale_sim.py runs `osprey autoscale
# simulate --json` over every trace in bench/traces/ with the benchmark's
# parameters and --check fails when a goal is missed (step and spike: fewer
# SLO-violating requests than the stock HPA policy at <= 1.1x its
# replica-seconds; sine: no more direction changes than the HPA). The
# simulation is deterministic (simulated time, seeded arrivals), so
# asserting the goals cannot flake; a second run must give byte-identical
# output. The driver also checks simulate's JSON fields and types (policy,
# requests, slo_violations, replica_seconds, scale_events,
# direction_changes, time_to_capacity_s, ...) and that every policy saw the
# same arrivals; this script checks that the step and spike traces each
# report one step's time to capacity.
set -euo pipefail
: "${OSPREY:?OSPREY must point at the osprey binary}"
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/osp_assim.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

run() { # N: one whole run, its table and raw output kept
  "$PY" "$SRC/bench/autoscale_sim.py" --osprey "$OSPREY" --no-write --check \
    --raw "$TMP/raw$1" >"$TMP/table$1" 2>"$TMP/err$1" || {
    cat "$TMP/table$1" "$TMP/err$1"; echo "FAIL: autoscale_sim.py --check (run $1)"; exit 1; }
}
run 1
run 2
cat "$TMP/table1"
cmp -s "$TMP/raw1" "$TMP/raw2" || {
  diff "$TMP/raw1" "$TMP/raw2" | head; echo "FAIL: a rerun gave different output"; exit 1; }

for t in step spike; do
  n=$("$OSPREY" autoscale simulate --trace "$SRC/bench/traces/$t.csv" --capacity 10 \
        --startup-s 5 --slo-ms 500 --policy osprey --json |
      "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)["time_to_capacity_s"]))')
  [ "$n" = 1 ] || { echo "FAIL: $t: $n steps in time_to_capacity_s, expected 1"; exit 1; }
done
echo "PASS: autoscale_simulate"
