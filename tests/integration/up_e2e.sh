#!/usr/bin/env bash
# up_e2e.sh — the whole local stack end to end (issue 15): `osprey up` with
# 1…3 workers of the small quantized MobileNetV1 0.25 (oversubscribed on
# small machines: the point is the scaling, not the speed), the autoscaler
# on rps (target 20 per worker, 3-s periods, 10-s scale-down and stable
# windows), Prometheus on (1-s scrapes; the autoscaler reads its metric
# from it) and Alertmanager; every port a free one, all on loopback, the
# state directory up_e2e.state in the build tree. `osprey load` runs a step profile
# against the dispatcher: 8 → 56 → 4 requests/s. Asserts (up_e2e.py):
#   - scale-out: 2+ ready workers within 20 s of the step (3 asked for);
#   - the p99 after the scale-out (every second's p99 until the kill below)
#     is within the SLO, 0.5 s (docs/operations.md);
#   - a worker killed with kill -9 mid-run (the high phase) and the whole
#     run cost 0 failed requests (osprey load's summary: errors, unfinished);
#   - Prometheus stopped mid-run (SIGSTOP: frozen, its port unanswering;
#     SIGCONT after 23 s) when the load has fallen: the autoscaler holds —
#     no scale-down while it is stopped, decisions "held: no data" — and
#     scales in to 1 once Prometheus answers again;
#   - osprey up's file_sd made Prometheus scrape the workers (their up
#     series);
#   - `osprey report` renders the run from the load's time series and the
#     stack's Prometheus: the HTML parses, its 7 charts have data, the
#     Markdown has the profile's three levels (state dir, report/);
#   - after SIGTERM to `osprey up`: exit 0 and no process of the stack left
#     (every one carries OSPREY_STACK=<state dir> in its environment);
#   - a second stack: after kill -9 of `osprey up`, none of its processes
#     is left either (PR_SET_PDEATHSIG).
# The load's time series and the report stay in the state directory
# (printed).
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

PROMETHEUS=$(command -v prometheus) || {
    echo "SKIP: prometheus not installed (scripts/install-deps.sh installs the Debian package)"
    exit 77
}
SCALE=1; [ "$ASAN" = 1 ] && SCALE=2
# The state directory outlives the test (CTest's working directory, the
# build tree): the run's logs and load time series are its evidence.
STATE=$PWD/up_e2e.state
rm -rf "$STATE" "$STATE.kill9"
$PY "$SRC/tests/integration/up_e2e.py" --osprey "$OSPREY" --model "$MODEL" --image "$IMG" \
    --scale "$SCALE" --tmp "$TMPD" --state "$STATE" || {
    for f in "$STATE"/*.log "$TMPD"/up.out "$TMPD"/load.log; do
        [ -f "$f" ] && { echo "--- $f:"; grep -v '"path":"/v2/repository/index"' "$f" | tail -25; }
    done
    echo "FAIL: up_e2e (state: $STATE)"
    exit 1
}
echo "PASS: up_e2e"
