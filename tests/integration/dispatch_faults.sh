#!/usr/bin/env bash
# dispatch_faults.sh — the dispatcher under trouble, with real workers:
#  1. one worker slowed (serve --debug-delay-ms): under p2c it gets a far
#     smaller share of requests than under rr, and the client p99 is lower
#     (both printed);
#  2. kill -9 of a worker during an `osprey load` run: 0 failed requests
#     (in-flight attempts are retried elsewhere), the worker is ejected or
#     marked not ready; restarted on the same port, it is re-added and
#     serves requests again;
#  3. admission: every backend at --max-inflight → the bounded queue; full
#     or timed out → 503 + Retry-After, without waiting for the backend.
# Under ASan inference is several times slower, so the slow worker's delay
# is raised to keep it "slow" relative to the others (same assertions).
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

DELAY=1500 CONC=4
# ASan: slower inference, so a longer delay and fewer users (the fast
# workers must not queue so much that they become "slow" themselves).
[ "$ASAN" = 1 ] && DELAY=4000 CONC=2
worker_start 0 0 || exit 1
worker_start 1 0 || exit 1
worker_start 2 0 --debug-delay-ms $DELAY || exit 1
B0=127.0.0.1:${W_PORT[0]} B1=127.0.0.1:${W_PORT[1]} B2=127.0.0.1:${W_PORT[2]}
CL=(--url "" --path "/v1/models/$MODEL_NAME/classify" --file "$IMG")

# ---- 1. slow worker: rr vs p2c ---------------------------------------------
declare -A SHARE P99
for pol in rr p2c; do
    dispatch_start --policy $pol --backend "$B0" --backend "$B1" --backend "$B2" \
        --health-interval-ms 200 || exit 1
    wait_ready "$D_URL" 10 || fail "not ready"
    # Warm-up (not measured): every backend gets its first answers.
    $CLIENT --url "$D_URL" "${CL[@]:2}" --concurrency $CONC --duration 2 >/dev/null
    s0=$(sent_to "$B2"); a0=$(( $(sent_to "$B0") + $(sent_to "$B1") ))
    r=$($CLIENT --url "$D_URL" "${CL[@]:2}" --concurrency $CONC --duration 8)
    slow=$(( $(sent_to "$B2") - s0 )); fast=$(( $(sent_to "$B0") + $(sent_to "$B1") - a0 ))
    [ "$(jq_get "$r" 'v["errors"]')" = 0 ] || fail "$pol: client errors: $r"
    SHARE[$pol]=$($PY -c "print(round($slow / max(1, $slow + $fast), 4))")
    P99[$pol]=$(jq_get "$r" 'v["p99_ms"]')
    echo "policy $pol: slow worker got $slow of $((slow + fast)) (share ${SHARE[$pol]}), client $r"
    kill -TERM "$D_PID"; wait "$D_PID" || fail "$pol: dispatcher exit status"
done
echo "RESULT slow worker (delay ${DELAY} ms): share rr ${SHARE[rr]} vs p2c ${SHARE[p2c]}; client p99 rr ${P99[rr]} ms vs p2c ${P99[p2c]} ms"
$PY -c "import sys; sys.exit(0 if ${SHARE[p2c]} < ${SHARE[rr]} / 2 else 1)" || fail "p2c did not avoid the slow worker"
$PY -c "import sys; sys.exit(0 if ${P99[p2c]} < ${P99[rr]} else 1)" || fail "p2c p99 not lower than rr"

# ---- 2. kill -9 during load, ejection, re-admission --------------------------
# The slow worker comes back without its delay, on the same port.
kill -KILL "${W_PID[2]}"; wait "${W_PID[2]}" 2>/dev/null
worker_start 2 "${W_PORT[2]}" || exit 1
dispatch_start --backend "$B0" --backend "$B1" --backend "$B2" --health-interval-ms 200 \
    --eject-after 2 --eject-base-ms 500 --eject-max-ms 4000 || exit 1
wait_ready "$D_URL" 10 || fail "not ready"
# The load is `osprey load` (open loop: requests keep arriving at the
# rate while the worker dies, none may fail).
RATE=15; [ "$ASAN" = 1 ] && RATE=5
"$OSPREY" load --url "$D_URL" --rate $RATE --duration 10s --target raw --model "$MODEL_NAME" \
    --images "$IMG" --json --quiet >"$TMPD/load.json" &
LOAD=$!
sleep 3
kill -KILL "${W_PID[0]}"; wait "${W_PID[0]}" 2>/dev/null
sleep 1
st=$(state_of "$B0")
echo "killed worker: state $st, ejections $(metric osprey_dispatch_ejections_total), retries $(metric osprey_dispatch_retries_total)"
[ "$st" = ejected ] || [ "$st" = not_ready ] || fail "killed worker still $st"
wait $LOAD || fail "osprey load failed"
r=$(cat "$TMPD/load.json")
echo "osprey load across the kill: $r"
[ "$(jq_get "$r" 'v["errors"]')" = 0 ] || fail "client requests failed across kill -9: $r"
[ "$(jq_get "$r" 'v["completed"] >= 10 * '$RATE' * 0.9')" = True ] || fail "requests missing: $r"
[ "$(metric osprey_dispatch_ejections_total)" != 0 ] || fail "no ejection counted"
# Restart on the same port: re-probed after the backoff, ready again.
worker_start 0 "${W_PORT[0]}" || exit 1
for ((i = 0; i < 150; i++)); do [ "$(state_of "$B0")" = ready ] && break; sleep 0.1; done
[ "$(state_of "$B0")" = ready ] || fail "restarted worker not re-added: $(state_of "$B0")"
s0=$(sent_to "$B0")
r=$($CLIENT --url "$D_URL" "${CL[@]:2}" --concurrency 4 --requests 30)
[ "$(jq_get "$r" 'v["errors"]')" = 0 ] || fail "errors after re-add: $r"
[ $(( $(sent_to "$B0") - s0 )) -gt 0 ] || fail "re-added worker got no requests"
echo "restarted worker re-added: got $(( $(sent_to "$B0") - s0 )) of 30"
kill -TERM "$D_PID"; wait "$D_PID" || fail "dispatcher exit status"

# ---- 3. admission queue ------------------------------------------------------
worker_start 3 0 --debug-delay-ms 3000 || exit 1
dispatch_start --backend "127.0.0.1:${W_PORT[3]}" --max-inflight 1 --queue-size 2 \
    --queue-timeout-ms 300 --health-interval-ms 200 || exit 1
wait_ready "$D_URL" 10 || fail "not ready"
curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H 'Content-Type: image/jpeg' \
    --data-binary "@$IMG" "$D_URL/classify" >"$TMPD/a0" &
A0=$!
sleep 0.3
CURLS=($A0)
for i in 1 2 3 4 5; do
    curl -s -D "$TMPD/h$i" -o "$TMPD/b$i" -w '%{http_code} %{time_total}\n' -H 'Content-Type: image/jpeg' \
        --data-binary "@$IMG" "$D_URL/classify" >"$TMPD/a$i" &
    CURLS+=($!)
done
sleep 0.1
depth=$(metric 'osprey_dispatch_queue_depth{model="_default"}')
wait "${CURLS[@]}"
cat "$TMPD"/a[0-5]
[ "$(cut -d' ' -f1 "$TMPD/a0")" = 200 ] || fail "the admitted request failed"
for i in 1 2 3 4 5; do
    read -r code t <"$TMPD/a$i"
    [ "$code" = 503 ] || fail "queued request $i: $code (want 503)"
    grep -qi '^Retry-After: 1' "$TMPD/h$i" || fail "no Retry-After on 503"
    $PY -c "import sys; sys.exit(0 if $t < 1.0 else 1)" || fail "503 took $t s"
done
full=$(grep -l 'queue full' "$TMPD"/b[1-5] | wc -l); tout=$(grep -l 'queue timeout' "$TMPD"/b[1-5] | wc -l)
echo "admission: queue depth seen $depth; $full refused (queue full), $tout timed out in the queue"
[ "$full" = 3 ] && [ "$tout" = 2 ] || fail "want 3 queue-full and 2 queue-timeout answers"
[ "${depth%.*}" = 2 ] || fail "queue depth gauge $depth (want 2)"
echo "PASS"
