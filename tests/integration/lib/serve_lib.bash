# serve_lib.bash — helpers sourced by the serve_*.sh integration tests (named
# .bash so that the tests/integration/*.sh glob does not register it as a
# test). Starts `$OSPREY serve` on an ephemeral
# loopback port, waits (bounded) for readiness, and always stops it on exit.

: "${OSPREY:?OSPREY must point at the osprey binary}"
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
PY=/usr/bin/python3
SERVE_PID=
SERVE_LOG=$(mktemp /tmp/osp_serve_log.XXXXXX)
SERVE_PORT=
# A command serve_start puts before "$OSPREY" (e.g. one that joins a cgroup
# and execs the rest; serve_cgroup.sh); it must exec, keeping the pid.
SERVE_WRAPPER=()

serve_cleanup() {
    if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
        kill -KILL "$SERVE_PID" 2>/dev/null
        wait "$SERVE_PID" 2>/dev/null
    fi
    rm -f "$SERVE_LOG"
}
trap serve_cleanup EXIT

# Finds a model for the tests: $OSPREY_MODELS, then ../shared/models.
serve_find_model() {
    local d
    for d in "${OSPREY_MODELS:-}" "$SRC/../shared/models"; do
        [ -n "$d" ] || continue
        for m in onnx/mobilenet_v2.onnx onnx/squeezenet1_1.onnx mobilenet_v2.onnx; do
            if [ -f "$d/$m" ]; then echo "$d/$m"; return 0; fi
        done
    done
    return 1
}

# serve_start ARGS... — starts the server on 127.0.0.1 with a free port and
# waits up to $SERVE_READY_S (default 180) seconds for /v2/health/ready.
serve_start() {
    # Empty the log here, not only in the child's redirection: the child
    # truncates it asynchronously, and reading a previous server's
    # "listening" line would send us to a dead port.
    : >"$SERVE_LOG"
    SERVE_PORT=
    "${SERVE_WRAPPER[@]}" "$OSPREY" serve --host 127.0.0.1 --port 0 "$@" \
        >"$SERVE_LOG" 2>&1 &
    SERVE_PID=$!
    local limit=${SERVE_READY_S:-180} i
    for ((i = 0; i < limit * 10; i++)); do
        if [ -z "$SERVE_PORT" ]; then
            SERVE_PORT=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$SERVE_LOG" | head -1)
        fi
        if [ -n "$SERVE_PORT" ] &&
           curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
                "http://127.0.0.1:$SERVE_PORT/v2/health/ready" | grep -q 200; then
            return 0
        fi
        if ! kill -0 "$SERVE_PID" 2>/dev/null; then
            echo "serve exited before becoming ready:"; cat "$SERVE_LOG"; return 1
        fi
        sleep 0.1
    done
    echo "serve not ready after ${limit}s:"; cat "$SERVE_LOG"; return 1
}

# serve_stop — SIGTERM, then waits (bounded) for exit; returns its status.
serve_stop() {
    local pid=$SERVE_PID i
    kill -TERM "$pid"
    for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "serve did not exit within 60 s of SIGTERM"; return 1
    fi
    wait "$pid"
    local rc=$?
    SERVE_PID=
    return $rc
}
