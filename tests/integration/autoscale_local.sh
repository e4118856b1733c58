#!/usr/bin/env bash
# autoscale_local.sh — `osprey autoscale --local` live: a dispatcher, the
# autoscaler running real `osprey serve` workers of a TFLite model (min 1,
# max 3, windows shortened), and `osprey load` with a step profile low →
# high → low. Asserts (autoscale_local.py): at least 2 ready workers within
# 20 s of the step; 0 failed requests over the whole run, although one
# worker is killed with SIGKILL mid-run (it is replaced); back to 1 worker
# after the load falls; the dispatcher's backends equal the ready workers
# at every decision; after SIGTERM no worker process is left; and after
# kill -9 of an autoscaler its workers exit too (PR_SET_PDEATHSIG).
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

dispatch_start --health-interval-ms 200 || exit 1
# rps per worker: target 20; the step: 8 → 56 requests/s (3 workers) → 4.
SCALE=1; [ "$ASAN" = 1 ] && SCALE=2
"$OSPREY" autoscale --dispatcher "http://127.0.0.1:$D_ADMIN" --port 0 --json-log \
    --min 1 --max 3 --oversubscribe --metric rps=$((20 / SCALE)) \
    --period-s 3 --scale-down-window-s 10 --stable-window-s 10 \
    --worker-args "--model $MODEL --threads 1" >"$TMPD/a.log" 2>&1 &
A_PID=$!
PIDS+=($A_PID)
A_PORT=$(wait_port "$TMPD/a.log") || { cat "$TMPD/a.log"; fail "autoscaler did not start"; }
# The dispatcher is ready once the autoscaler's first worker is registered.
wait_ready "$D_URL" 60 || { tail -20 "$TMPD/a.log"; fail "no worker registered"; }
$PY "$SRC/tests/integration/autoscale_local.py" --osprey "$OSPREY" --dispatch "$D_URL" \
    --admin "http://127.0.0.1:$D_ADMIN" --autoscaler "http://127.0.0.1:$A_PORT" \
    --autoscaler-pid "$A_PID" --image "$IMG" --scale "$SCALE" --tmp "$TMPD" \
    || { echo "--- autoscaler log:"; grep -v '"path":"/v2/repository/index"' "$TMPD/a.log" | tail -40; fail "autoscale_local"; }

# kill -9 of the autoscaler itself: its workers must not outlive it
# (PR_SET_PDEATHSIG sends them SIGTERM; they drain and exit).
"$OSPREY" autoscale --dispatcher "http://127.0.0.1:$D_ADMIN" --port 0 --json-log \
    --min 2 --max 2 --oversubscribe --worker-args "--model $MODEL --threads 1" >"$TMPD/a2.log" 2>&1 &
A2_PID=$!
PIDS+=($A2_PID)
A2_PORT=$(wait_port "$TMPD/a2.log") || fail "second autoscaler did not start"
WPIDS=
for ((i = 0; i < 600; i++)); do
    WPIDS=$(curl -s "http://127.0.0.1:$A2_PORT/status" | $PY -c '
import json, sys
w = json.load(sys.stdin).get("workers") or []
if sum(x["state"] == "ready" for x in w) >= 2: print(" ".join(str(x["pid"]) for x in w))')
    [ -n "$WPIDS" ] && break
    sleep 0.1
done
[ -n "$WPIDS" ] || fail "the second autoscaler's 2 workers never became ready"
kill -KILL "$A2_PID"
for ((i = 0; i < 400; i++)); do
    left=
    for p in $WPIDS; do
        [ -e "/proc/$p" ] && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ] && left="$left $p"
    done
    [ -z "$left" ] && break
    sleep 0.1
done
[ -z "$left" ] || fail "workers$left outlived the autoscaler's kill -9"
echo "ok: after kill -9 of the autoscaler its workers ($WPIDS) exited"
echo "PASS: autoscale_local"
