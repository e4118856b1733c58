#!/usr/bin/env bash
# dispatch_shed.sh — the dispatcher in front of workers that shed load
# (docs/serve.md "Overload and load shedding", docs/dispatch.md retries):
#   1. worker 0 is overloaded directly (not through the dispatcher) and
#      sheds; requests through the dispatcher that land on it get its 503,
#      which the dispatcher retries on worker 1: the client sees only 200s,
#      the retries counter moves, and worker 0 is not ejected (a 503 is
#      overload, not failure). After a 503 the dispatcher picks worker 0
#      last for 100 ms, so its refusals do not drain the retry budget
#      (0.2 per request): without that, ~1 in 5 requests here got the 503.
#   2. both workers are overloaded through the dispatcher: when every
#      worker sheds, the client gets the worker's 503 with Retry-After and
#      its JSON body, quickly (p99 ≤ 100 ms: a worker refusal is ~1 ms, one
#      retry doubles it, and a busy 2-core machine gets a wide margin), and
#      neither worker is ejected.
# Workers are slow on purpose and predictably (--debug-batch-delay-ms 20,
# batch 1: ~45 images/s each); see serve_shed.sh.
set -uo pipefail
. "$(dirname "$0")/lib/dispatch_lib.bash"

LOAD="$SRC/tests/integration/lib/overload_client.py"
IMGP="$SRC/scripts/samples/checker.png"
SLOW=(--instances 1 --max-batch 1 --debug-batch-delay-ms 20
      --queue-delay-target-ms 60 --queue-delay-interval-ms 100)
jget() { $PY -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("null" if v is None else v)' "$1" "$2"; }
wmetric() { # wmetric INDEX NAME — a worker's series value (summed)
    curl -s --max-time 5 "http://127.0.0.1:${W_PORT[$1]}/metrics" |
        awk -v n="$2" '$1 ~ "^"n"({|$)" { v += $2 } END { print v + 0 }'
}

worker_start 0 0 "${SLOW[@]}" || exit 1
worker_start 1 0 "${SLOW[@]}" || exit 1
B0=127.0.0.1:${W_PORT[0]} B1=127.0.0.1:${W_PORT[1]}
# Round robin: worker 0 keeps getting its turn (the latency-weighted default
# would learn to avoid it, and the retry path would go untested).
dispatch_start --policy rr --backend "$B0" --backend "$B1" --health-interval-ms 200 || exit 1
wait_ready "$D_URL" 60 || fail "dispatcher not ready"

# ---- 1. one worker sheds: retried on the other ----
OUTF=$TMPD/direct.json
timeout 60 $PY "$LOAD" "http://$B0" /classify "$IMGP" --clients 32 \
    --think-ms 40 --duration-s 5 >"$OUTF" 2>&1 &
CPID=$!
sleep 1.5   # worker 0 is shedding by now (onset ≈ the queue's 0.7 s + an interval)
R0=$(metric osprey_dispatch_retries_total)
OUT=$(timeout 60 $PY "$LOAD" "$D_URL" /classify "$IMGP" --clients 2 \
      --think-ms 50 --duration-s 2) || fail "client: $OUT"
R1=$(metric osprey_dispatch_retries_total)
wait "$CPID"
echo "worker 0 overloaded directly: $(cat "$OUTF")"
echo "through the dispatcher meanwhile: $OUT (retries ${R0%.*} → ${R1%.*})"
[ "$(jget "$(cat "$OUTF")" n_503)" -gt 0 ] || fail "worker 0 did not shed"
[ "$(jget "$OUT" n_503)" = 0 ] || fail "a shed 503 reached the client while worker 1 was idle"
[ "$(jget "$OUT" failures)" = 0 ] || fail "requests through the dispatcher failed"
$PY -c 'import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)' "$R0" "$R1" ||
    fail "no retry: no request through the dispatcher met worker 0's shedding"
[ "$(state_of "$B0")" = ready ] || fail "shedding worker 0 is $(state_of "$B0"), not ready"

# ---- 2. every worker sheds: 503 + Retry-After, quickly ----
sleep 0.3
# ~1,000 refusals/s is more than an ASan dispatcher answers promptly on 2
# cores: fewer, slower clients there (still ~3× the two workers' ~90/s).
CL=48 TH=40
[ "$ASAN" = 1 ] && CL=24 TH=100
OUT=$(timeout 60 $PY "$LOAD" "$D_URL" /classify "$IMGP" --clients $CL \
      --think-ms $TH --duration-s 5 --warmup-s 2) || fail "client: $OUT"
echo "both overloaded through the dispatcher: $OUT"
N503=$(jget "$OUT" n_503)
[ "$N503" -gt 0 ] || fail "no 503 although both workers were overloaded"
[ "$(jget "$OUT" n_503_retry_after)" = "$N503" ] || fail "a 503 lacked Retry-After"
[ "$(jget "$OUT" n_503_json)" = "$N503" ] || fail "a 503 lacked its JSON body"
[ "$(jget "$OUT" failures)" = 0 ] || fail "requests failed without an answer"
$PY -c 'import sys; sys.exit(0 if sys.argv[1] != "null" and float(sys.argv[1]) <= 100 else 1)' "$(jget "$OUT" shed_p99_ms)" ||
    fail "503s through the dispatcher: p99 $(jget "$OUT" shed_p99_ms) ms > 100 ms"
S0=$(wmetric 0 osprey_requests_shed_total) S1=$(wmetric 1 osprey_requests_shed_total)
echo "shed: worker 0 ${S0%.*}, worker 1 ${S1%.*}"
[ "${S1%.*}" -gt 0 ] || fail "worker 1 never shed"
for b in "$B0" "$B1"; do
    [ "$(state_of "$b")" = ready ] || fail "shedding worker $b is $(state_of "$b"), not ready"
done
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --data-binary @"$IMGP" \
       -H 'Content-Type: image/png' "$D_URL/classify")
[ "$code" = 200 ] || fail "after the overload: $code"
echo "dispatch_shed: ok"
