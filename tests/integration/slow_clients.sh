#!/usr/bin/env bash
# slow_clients.sh — issue 17 §1 "slow clients take the dispatcher down": a
# worker behind a dispatcher, each attacked at once with 2,000 slow-header
# connections (Slowloris: a request line, then one header line every 3 s,
# never the blank line; slow_clients.py), and the worker also by 50
# slow-body uploads (slowhttptest -B, R-U-Dead-Yet: a few bytes every 2 s of
# a 100 KB body). While the slow connections are open, normal /classify
# requests (osprey load, open loop, a new connection per request: what a
# new client sees) through the dispatcher and to the worker directly must
# keep p99 <= 50 ms with 0 failures; then the header timeout must close
# every slow-header connection, without an answer, not before the timeout
# and within 3 s after it (osprey_http_slow_client_closes_total
# {reason="header"} counts them on both), and the minimum body rate must
# cut the slow uploads ({reason="body"} on the worker).
#
# Bounds and why: 50 ms p99 is the issue's goal; a classify of this model
# takes ~3 ms here, so it leaves a wide margin for a busy 2-core machine,
# while the failure it guards against is not a few ms: before the fix,
# normal requests through the dispatcher timed out (every one of them with
# 600 slow connections, bench/slow_clients.sh). The slow-header attacker is
# a small Python driver rather than slowhttptest, which spends about a core
# of system time in its polling loop for 2,000 connections: on 2 cores that
# measured the attacker's CPU, not the servers (measured on the shared
# 2-core machine: p99 ~50 ms with slowhttptest for both attacks; with the
# driver ~30 ms when all 4,000 connections send their header line at the
# same instant every 3 s, ~10 ms with the sends spread over the interval,
# as slowhttptest's ramp spreads them; ~9 ms without any attack). The header
# timeout is 15 s so that the probe (8 s, started once the connections are
# open) runs while all of them are still open; a close is due 15 s after
# its accept, checked every 0.25 s, so 14..18 s after the driver's connect
# (3 s of slack for a slow machine). Needs 2 x 2,000 + 50 descriptors for
# the attackers: the test raises its soft limit and fails if it cannot.
# Under ASan (a Debug build) a classify alone takes ~10-20 ms and p99
# without any attack was 25-27 ms, with single outliers to ~120 ms on the
# shared machine (80 samples: p99 is the worst one): that run checks
# memory safety on the same paths, not latency, so the probe rate is
# halved and the bound is 250 ms — still 20x below the 5 s timeouts the
# failure shows; 0 failures are required all the same.
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

N=2000 NB=50 HT=15
command -v slowhttptest >/dev/null || fail "slowhttptest not installed (Debian package slowhttptest; scripts/install-deps.sh)"
NEED=$((2 * N + NB + 256))
# The soft limit only (a plain `ulimit -n` would lower the hard limit too,
# and the servers size their connection limits from the hard one).
[ "$(ulimit -Sn)" = unlimited ] || [ "$(ulimit -Sn)" -ge "$NEED" ] || ulimit -Sn "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -Sn)" = unlimited ] || [ "$(ulimit -Sn)" -ge "$NEED" ] ||
    fail "need $NEED file descriptors for the slow connections; ulimit -Sn is $(ulimit -Sn) (hard $(ulimit -Hn))"

worker_start 0 0 --header-timeout-s $HT --min-body-rate 1024 || exit 1
W_URL=http://127.0.0.1:${W_PORT[0]}
dispatch_start --backend "127.0.0.1:${W_PORT[0]}" --header-timeout-s $HT || exit 1
wait_ready "$D_URL" 10 || fail "dispatcher not ready"
for u in "$D_URL" "$W_URL"; do # warm-up (not measured)
    curl -sf -o /dev/null --data-binary @"$IMG" -H 'Content-Type: image/jpeg' "$u/classify" || fail "warm-up $u"
done

RATE=20 BOUND=50
probe() { # URL OUT
    "$OSPREY" load --url "$1" --mode open --rate $RATE --duration 8s --target raw \
        --model "$MODEL_NAME" --images "$IMG" --header 'Connection: close' \
        --timeout-ms 5000 --json --quiet >"$2"
}
[ "$ASAN" = 1 ] && RATE=10 BOUND=250

# wmetric NAME{labels} → value from the worker's /metrics (0 if absent).
wmetric() {
    curl -s "$W_URL/metrics" | awk -v s="$1" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'
}
# open PORT → established TCP connections to the local PORT.
open_conns() { ss -Htn state established "( sport = :$1 )" | wc -l; }

T0=$(date +%s)
timeout 60 "$PY" "$SRC/tests/integration/slow_clients.py" --connections $N --interval 3 \
    --duration $((HT + 10)) "127.0.0.1:$D_PORT" "127.0.0.1:${W_PORT[0]}" >"$TMPD/slow.json" 2>&1 &
SLOW=$!
PIDS+=($SLOW)
slowhttptest -B -c $NB -r 100 -i 2 -s 100000 -x 4 -t POST -f image/jpeg -l 60 \
    -u "$W_URL/classify" >"$TMPD/sh_b.log" 2>&1 &
PIDS+=($!)

# Wait (at most 15 s) until the driver has its connections open.
for ((i = 0; i < 150; i++)); do
    grep -q '"open"' "$TMPD/slow.json" && break
    kill -0 $SLOW 2>/dev/null || break
    sleep 0.1
done
grep -q '"open"' "$TMPD/slow.json" || fail "the slow clients could not connect: $(cat "$TMPD/slow.json")"
od=$(open_conns "$D_PORT") ow=$(open_conns "${W_PORT[0]}")
echo "open slow connections after $(($(date +%s) - T0)) s: dispatcher $od, worker $ow ($(head -1 "$TMPD/slow.json"))"
[ "$od" -ge $((N * 95 / 100)) ] || fail "dispatcher holds only $od of $N slow connections"
[ "$ow" -ge $((N * 95 / 100)) ] || fail "worker holds only $ow of $N slow connections"

# Normal clients meanwhile: $RATE req/s (20; ASan 10) for 8 s to each, a new connection per
# request (Connection: close), a 5 s timeout counts as a failure.
probe "$D_URL" "$TMPD/p_d.json" &
PD=$!
probe "$W_URL" "$TMPD/p_w.json" &
PW=$!
wait $PD; wait $PW
od2=$(open_conns "$D_PORT") ow2=$(open_conns "${W_PORT[0]}")
echo "still open after the probe ($(($(date +%s) - T0)) s): dispatcher $od2, worker $ow2"
rc=0
for t in d:dispatcher w:worker; do
    f=$TMPD/p_${t%%:*}.json
    r=$(head -1 "$f")
    errs=$(jq_get "$r" 'v["errors"]') ok=$(jq_get "$r" 'v["ok"]') p50=$(jq_get "$r" 'v["p50_ms"]') p99=$(jq_get "$r" 'v["p99_ms"]')
    echo "RESULT ${t#*:} with $N slow-header connections open: $ok ok, $errs failed, p50 $p50 ms, p99 $p99 ms (bound $BOUND)"
    [ "$errs" = 0 ] && [ "$ok" -ge $((RATE * 8 * 9 / 10)) ] || { echo "FAIL: ${t#*:}: failed requests: $r"; rc=1; }
    $PY -c "import sys; sys.exit(0 if $p99 <= $BOUND else 1)" || { echo "FAIL: ${t#*:}: p99 $p99 ms > $BOUND ms"; rc=1; }
done
[ $rc = 0 ] || fail "normal requests suffered from the slow clients"

# The header timeout closes the slow-header connections (the driver ends
# when all are closed, or after HT + 10 s); the body rate cuts the slow
# uploads.
wait $SLOW
st=$(tail -1 "$TMPD/slow.json")
echo "slow-header clients saw: $st"
for srv in "127.0.0.1:$D_PORT" "127.0.0.1:${W_PORT[0]}"; do
    $PY - "$st" "$srv" $N $HT <<'PYEOF' || fail "slow-header connections of $srv not closed as they should be"
import json, sys
st, srv, n, ht = json.loads(sys.argv[1])[sys.argv[2]], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ok = (st["closed_by_server"] == n and st["answered"] == 0
      and st["first_close_s"] >= ht - 1 and st["last_close_s"] <= ht + 3)
print(f"{srv}: {st['closed_by_server']} of {n} closed by the server, {st['answered']} answered, "
      f"after {st['first_close_s']}..{st['last_close_s']} s (header timeout {ht} s)")
sys.exit(0 if ok else 1)
PYEOF
done
for ((i = 0; i < 20; i++)); do
    bw=$(wmetric 'osprey_http_slow_client_closes_total{reason="body"}')
    [ "${bw%.*}" -ge $((NB * 9 / 10)) ] && break
    sleep 0.5
done
hd=$(metric 'osprey_http_slow_client_closes_total{reason="header"}')
hw=$(wmetric 'osprey_http_slow_client_closes_total{reason="header"}')
echo "RESULT closed by the deadlines after $(($(date +%s) - T0)) s: dispatcher header $hd, worker header $hw, worker body $bw; open now: dispatcher $(open_conns "$D_PORT"), worker $(open_conns "${W_PORT[0]}")"
[ "${hd%.*}" -ge "$N" ] || fail "dispatcher counted $hd slow-header closes, want >= $N"
[ "${hw%.*}" -ge "$N" ] || fail "worker counted $hw slow-header closes, want >= $N"
[ "${bw%.*}" -ge $((NB * 9 / 10)) ] || fail "worker cut only $bw of $NB slow uploads"
# Nothing crashed, and both still answer.
curl -sf -o /dev/null --data-binary @"$IMG" -H 'Content-Type: image/jpeg' "$D_URL/classify" || fail "dispatcher does not answer afterwards"
echo PASS
