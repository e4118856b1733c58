# dispatch_lib.bash — helpers sourced by the dispatch_*.sh integration tests
# (named .bash so the *.sh glob does not register it as a test): start real
# `osprey serve` workers and an `osprey dispatch` on loopback ephemeral
# ports, wait (bounded) for readiness, read metrics, and always kill every
# process started here on exit.

: "${OSPREY:?OSPREY must point at the osprey binary}"
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
PY=/usr/bin/python3
CLIENT="$PY $SRC/tests/integration/lib/dispatch_client.py"
TMPD=$(mktemp -d /tmp/osp_dispatch.XXXXXX)
PIDS=()
W_PID=() W_PORT=()
D_PID= D_PORT= D_ADMIN=

dispatch_cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMPD"
}
trap dispatch_cleanup EXIT

# Small real model: the quantized MobileNetV1 0.25 (fast on any CPU).
dispatch_find_model() {
    local d
    for d in "${OSPREY_MODELS:-}" "$SRC/../shared/models"; do
        [ -n "$d" ] || continue
        if [ -f "$d/tflite/mobilenet_v1_0.25_128_quant.tflite" ]; then
            echo "$d/tflite/mobilenet_v1_0.25_128_quant.tflite"; return 0
        fi
    done
    return 1
}
MODEL=$(dispatch_find_model) || {
    echo "SKIP: mobilenet_v1_0.25_128_quant.tflite not found in \$OSPREY_MODELS or $SRC/../shared/models"
    exit 77
}
MODEL_NAME=mobilenet_v1_0.25_128_quant
IMG=$SRC/tests/data/images/blocks.jpg
# ASan builds are several times slower: tests scale their load down with
# this (never their assertions).
ASAN=0
if nm -an "$OSPREY" 2>/dev/null | grep -q __asan_init; then ASAN=1; fi

# wait_log FILE → the "port" of the first "listening" line (≤ 60 s).
wait_port() {
    local f=$1 key=${2:-port} i p
    for ((i = 0; i < 600; i++)); do
        p=$(sed -n "s/.*\"msg\":\"listening\".*\"$key\":\([0-9]*\).*/\1/p" "$f" | head -1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        sleep 0.1
    done
    return 1
}

wait_ready() { # URL [seconds]
    local i lim=$((${2:-120} * 10))
    for ((i = 0; i < lim; i++)); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1/v2/health/ready")" = 200 ] && return 0
        sleep 0.1
    done
    echo "not ready: $1"; return 1
}

# worker_start INDEX [PORT] [extra serve flags...] — sets W_PID/W_PORT[INDEX].
worker_start() {
    local i=$1 port=${2:-0}
    shift 2
    local log=$TMPD/w$i.log
    : >"$log"
    "$OSPREY" serve --host 127.0.0.1 --port "$port" --model "$MODEL" --threads 1 "$@" >"$log" 2>&1 &
    W_PID[$i]=$!
    PIDS+=($!)
    W_PORT[$i]=$(wait_port "$log") || { echo "worker $i did not start:"; cat "$log"; return 1; }
    wait_ready "http://127.0.0.1:${W_PORT[$i]}" || { cat "$log"; return 1; }
}

# dispatch_start [flags...] — sets D_PID, D_PORT, D_ADMIN.
dispatch_start() {
    local log=$TMPD/d.log
    : >"$log"
    "$OSPREY" dispatch --host 127.0.0.1 --port 0 --admin-port 0 "$@" >"$log" 2>&1 &
    D_PID=$!
    PIDS+=($!)
    D_PORT=$(wait_port "$log") || { echo "dispatch did not start:"; cat "$log"; return 1; }
    D_ADMIN=$(wait_port "$log" admin_port)
    D_URL=http://127.0.0.1:$D_PORT
}

# metric NAME_WITH_LABELS → value from the dispatcher's /metrics (0 if absent).
metric() {
    curl -s "$D_URL/metrics" | awk -v s="$1" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'
}

# sent ADDR → attempts the dispatcher sent to backend ADDR (admin API).
sent_to() {
    curl -s "http://127.0.0.1:$D_ADMIN/admin/backends" |
        $PY -c 'import json,sys; print(sum(b["sent"] for b in json.load(sys.stdin) if b["address"] == sys.argv[1]))' "$1"
}

state_of() {
    curl -s "http://127.0.0.1:$D_ADMIN/admin/backends" |
        $PY -c 'import json,sys; print(([b["state"] for b in json.load(sys.stdin) if b["address"] == sys.argv[1]] + ["absent"])[0])' "$1"
}

fail() { echo "FAIL: $*"; echo "--- dispatcher log:"; tail -30 "$TMPD/d.log"; exit 1; }
jq_get() { $PY -c 'import json,sys; v=json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, {"v": v}))' "$1" "$2"; }
