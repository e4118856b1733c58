#!/usr/bin/env bash
# upload_attack.sh — the memory attack of issue 17 §2, side by side: C
# clients each declare a B-byte body, send S bytes of it at once and hold
# the connection (tests/integration/lib/upload_attack.py), against
# `osprey serve` (the worker) and `osprey dispatch` (in front of a worker),
# with this build's memory budget (--max-inflight-bytes BUDGET) and,
# optionally, another osprey binary without it (OSPREY_BEFORE=path, e.g. a
# build of the commit before the budget: the issue's finding). Per front and
# binary: RSS before, peak RSS (VmHWM), the peak's ratio to the bound
# (RSS before + budget), how the attackers were answered, and 10 normal
# classify requests sent during the attack (failures, slowest), as a
# Markdown table.
#
#   bench/upload_attack.sh [-c CLIENTS] [-b DECLARED] [-s SENT] [-m BUDGET]
# Defaults: -c 60 -b 30000000 -s 20000000 -m 268435456 (the issue's
# numbers; 256 MiB). Before the budget this needs C × S bytes of free RAM
# (1.2 GB by default). Needs build/osprey (make build) and the shared
# models.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
OSPREY=${OSPREY:-$ROOT/build/osprey}
BEFORE=${OSPREY_BEFORE:-}
C=60 B=30000000 S=20000000 M=$((256 << 20)) HOLD=12
while getopts c:b:s:m: o; do
    case $o in c) C=$OPTARG ;; b) B=$OPTARG ;; s) S=$OPTARG ;; m) M=$OPTARG ;; *) exit 2 ;; esac
done
[ -x "$OSPREY" ] || { echo "upload_attack.sh: build first (make build)" >&2; exit 1; }
MODEL=
for d in "${OSPREY_MODELS:-}" "$ROOT/../shared/models" "$(git -C "$ROOT" worktree list 2>/dev/null | head -1 | cut -d' ' -f1)/../shared/models"; do
    [ -f "$d/tflite/mobilenet_v1_0.25_128_quant.tflite" ] && { MODEL=$d/tflite/mobilenet_v1_0.25_128_quant.tflite; break; }
done
[ -n "$MODEL" ] || { echo "upload_attack.sh: models not found (../shared/models)" >&2; exit 1; }
IMG=$ROOT/tests/data/images/blocks.jpg
ATTACK="python3 $ROOT/tests/integration/lib/upload_attack.py"
TMP=$(mktemp -d /tmp/osp_upload_attack.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$TMP"' EXIT

start() { # LOG BIN ARGS... → PID, PORT
    local log=$1; shift
    "$@" >"$log" 2>&1 &
    PID=$!
    PIDS+=($!)
    for _ in $(seq 600); do
        PORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$log" | head -1)
        [ -n "$PORT" ] && curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/v2/health/ready" && return 0
        sleep 0.1
    done
    echo "did not start:"; cat "$log"; exit 1
}
kib() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"; }

run() { # LABEL BUDGET_FLAGS FRONT BIN
    local label=$1 flags=$2 front=$3 bin=$4 wport
    # shellcheck disable=SC2086
    start "$TMP/w.log" "$bin" serve --host 127.0.0.1 --port 0 --model "$MODEL" --threads 1 $flags
    local wpid=$PID
    if [ "$front" = dispatch ]; then
        wport=$PORT
        # shellcheck disable=SC2086
        start "$TMP/d.log" "$bin" dispatch --host 127.0.0.1 --port 0 --admin-port 0 --backend "127.0.0.1:$wport" $flags
    fi
    local base; base=$(kib "$PID" VmRSS)
    $ATTACK 127.0.0.1 "$PORT" /classify "$C" "$B" "$S" "$HOLD" >"$TMP/a.json" &
    local apid=$! fails=0 worst=0 t
    sleep 3
    for _ in $(seq 10); do
        t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 10 -H 'Content-Type: image/jpeg' \
            --data-binary @"$IMG" "http://127.0.0.1:$PORT/classify") || true
        [ "${t%% *}" = 200 ] || fails=$((fails + 1))
        worst=$(awk -v a="$worst" -v b="${t##* }" 'BEGIN { print (b > a ? b : a) }')
        sleep 0.5
    done
    wait "$apid"
    local peak; peak=$(kib "$PID" VmHWM)
    local alive=yes; kill -0 "$PID" 2>/dev/null || alive=no
    local bound=$((base + M / 1024))
    printf '| %s | %s | %d | %d | %.2f | %s | %d/10 | %.0f | %s |\n' "$front" "$label" $((base / 1024)) \
        $((peak / 1024)) "$(awk -v p="$peak" -v b="$bound" 'BEGIN { print p / b }')" \
        "$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print("held %d, 503 %d, reset %d" % (v["held"], v["answered"].get("503", 0), v["closed_unanswered"]))' "$TMP/a.json")" \
        "$fails" "$(awk -v w="$worst" 'BEGIN { print w * 1000 }')" "$alive"
    kill "$PID" "$wpid" 2>/dev/null; wait "$PID" "$wpid" 2>/dev/null || true
}

echo "upload attack: $C clients × $B bytes declared, $S sent; budget $M bytes; $(lscpu | sed -n 's/^Model name: *//p')"
echo
echo "| front | build | RSS before MiB | peak MiB | peak / (before + budget) | attackers | normal failed | normal slowest ms | alive |"
echo "|---|---|---|---|---|---|---|---|---|"
for front in serve dispatch; do
    [ -n "$BEFORE" ] && run before "" "$front" "$BEFORE"
    run "budget" "--max-inflight-bytes $M" "$front" "$OSPREY"
done
