#!/usr/bin/env bash
# slow_clients.sh — the slow-client benchmark of issue 17 §1, side by side:
# the same `osprey serve` worker reached through `osprey dispatch`, through
# HAProxy (the issue's setup: maxconn 4096, timeout client 30 s, no
# `timeout http-request`), and directly; optionally through another osprey
# binary's dispatcher (OSPREY_BEFORE=path, e.g. a build of the commit before
# the slow-client deadlines, to show the issue's finding), and through the
# dispatcher with a header timeout longer than the run (dispatch-hold: the
# cost of holding the connections alone). For each front in
# turn, slowhttptest opens C slow-header connections (Slowloris: one header
# line every 10 s, never the end of the head; all settings at their
# defaults), and once they are open `osprey load` sends normal /classify
# requests (open loop, a new connection per request, 5 s timeout) for D
# seconds. Prints per front: slow connections open before and after the
# probe, normal-request p50/p99 and failures, slowhttptest's verdict, and
# the p99 ratio to HAProxy's, as a Markdown table.
#
#   bench/slow_clients.sh [-c CONNECTIONS] [-d PROBE_SECONDS] [-r RATE]
# Defaults: -c 2000 -d 10 -r 20. Needs build/osprey (make build),
# slowhttptest and haproxy (scripts/install-deps.sh), the shared models.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
OSPREY=${OSPREY:-$ROOT/build/osprey}
BEFORE=${OSPREY_BEFORE:-}
C=2000 D=10 R=20
while getopts c:d:r: o; do
    case $o in c) C=$OPTARG ;; d) D=$OPTARG ;; r) R=$OPTARG ;; *) exit 2 ;; esac
done
[ -x "$OSPREY" ] || { echo "slow_clients.sh: build first (make build)" >&2; exit 1; }
for t in slowhttptest haproxy ss; do
    command -v $t >/dev/null || { echo "slow_clients.sh: $t not found (scripts/install-deps.sh)" >&2; exit 1; }
done
MODEL=
for d in "${OSPREY_MODELS:-}" "$ROOT/../shared/models" "$(git -C "$ROOT" worktree list 2>/dev/null | head -1 | cut -d' ' -f1)/../shared/models"; do
    [ -f "$d/tflite/mobilenet_v1_0.25_128_quant.tflite" ] && { MODEL=$d/tflite/mobilenet_v1_0.25_128_quant.tflite; break; }
done
[ -n "$MODEL" ] || { echo "slow_clients.sh: models not found (../shared/models)" >&2; exit 1; }
NAME=mobilenet_v1_0.25_128_quant
IMG=$ROOT/tests/data/images/blocks.jpg
# The attacker's descriptors (the servers raise their own limits).
[ "$(ulimit -Sn)" = unlimited ] || [ "$(ulimit -Sn)" -ge $((C + 256)) ] || ulimit -Sn "$(ulimit -Hn)"
[ "$(ulimit -Sn)" = unlimited ] || [ "$(ulimit -Sn)" -ge $((C + 256)) ] ||
    { echo "slow_clients.sh: need $((C + 256)) descriptors, ulimit -Sn is $(ulimit -Sn)" >&2; exit 1; }

TMP=$(mktemp -d /tmp/osp_slowbench.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

port_of() { # LOG [KEY] → the port of its "listening" line (<= 60 s)
    local i p
    for ((i = 0; i < 600; i++)); do
        p=$(sed -n "s/.*\"msg\":\"listening\".*\"${2:-port}\":\([0-9]*\).*/\1/p" "$1" | head -1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.1
    done
    echo "no listening line in $1" >&2; return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
held() { ss -Htn state established "( sport = :$1 )" | wc -l; }

"$OSPREY" serve --host 127.0.0.1 --port 0 --model "$MODEL" >"$TMP/w.log" 2>&1 &
PIDS+=($!)
WP=$(port_of "$TMP/w.log")
declare -A URL PORT
start_dispatch() { # NAME BINARY [FLAGS...]
    local n=$1 b=$2
    shift 2
    "$b" dispatch --host 127.0.0.1 --port 0 --admin-port -1 --backend "127.0.0.1:$WP" "$@" >"$TMP/$n.log" 2>&1 &
    PIDS+=($!)
    PORT[$n]=$(port_of "$TMP/$n.log")
}
# dispatch-hold: the header timeout beyond the run, so that the slow
# connections stay open throughout: what holding them costs, apart from
# closing them.
FRONTS=(dispatch dispatch-hold)
start_dispatch dispatch "$OSPREY"
start_dispatch dispatch-hold "$OSPREY" --header-timeout-s 600
if [ -n "$BEFORE" ]; then FRONTS+=(dispatch-before); start_dispatch dispatch-before "$BEFORE"; fi
HP=$(free_port)
cat >"$TMP/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$HP
  default_backend be
backend be
  server w0 127.0.0.1:$WP
EOF
haproxy -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 &
PIDS+=($!)
PORT[haproxy]=$HP
PORT[serve]=$WP
FRONTS+=(haproxy serve)
for f in "${FRONTS[@]}"; do
    for ((i = 0; i < 100; i++)); do
        curl -sf -o /dev/null --data-binary @"$IMG" "http://127.0.0.1:${PORT[$f]}/classify" && break
        sleep 0.1
    done
done

declare -A P50 P99 ERR OK H0 H1 AVAIL
for f in "${FRONTS[@]}"; do
    u=http://127.0.0.1:${PORT[$f]}
    echo "== $f: $C slow-header connections" >&2
    slowhttptest -H -c "$C" -r 1000 -i 10 -l $((D + 15)) -u "$u/v2/health/live" >"$TMP/sh_$f.log" 2>&1 &
    SH=$!
    PIDS+=($SH)
    sleep $((C / 1000 + 3)) # the ramp, at 1000 connections/s
    H0[$f]=$(held "${PORT[$f]}")
    "$OSPREY" load --url "$u" --mode open --rate "$R" --duration "${D}s" --target raw --model "$NAME" \
        --images "$IMG" --header 'Connection: close' --timeout-ms 5000 --json --quiet >"$TMP/p_$f.json" 2>/dev/null || true
    H1[$f]=$(held "${PORT[$f]}")
    read -r P50[$f] P99[$f] ERR[$f] OK[$f] < <(python3 -c 'import json,sys; v=json.loads(open(sys.argv[1]).readline()); print(v["p50_ms"], v["p99_ms"], v["errors"], v["ok"])' "$TMP/p_$f.json")
    kill "$SH" 2>/dev/null || true
    wait "$SH" 2>/dev/null || true
    AVAIL[$f]=$(sed 's/\x1b\[[0-9;]*m//g' "$TMP/sh_$f.log" | sed -n 's/.*service available: *\([A-Z]*\).*/\1/p' | sort | uniq -c | tr '\n' ' ' | sed 's/ *$//')
    sleep 1
done

echo
echo "Slow clients: $C slowhttptest -H connections (one header line every 10 s), normal /classify at $R req/s for $D s (new connection each, 5 s timeout), $(date -u +%FT%TZ)"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) CPUs)"
echo
echo "| front | slow conns open (probe start/end) | ok | failed | p50 ms | p99 ms | p99 / HAProxy | slowhttptest probe: service available |"
echo "|---|---|---|---|---|---|---|---|"
for f in "${FRONTS[@]}"; do
    ratio=$(python3 -c 'import sys; a,b,ok=float(sys.argv[1]),float(sys.argv[2]),int(sys.argv[3]); print("none answered" if not ok else f"{a/b:.2f}x" if b > 0 else "-")' "${P99[$f]}" "${P99[haproxy]}" "${OK[$f]}")
    echo "| $f | ${H0[$f]} / ${H1[$f]} | ${OK[$f]} | ${ERR[$f]} | ${P50[$f]} | ${P99[$f]} | $ratio | ${AVAIL[$f]} |"
done
