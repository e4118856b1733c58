#!/usr/bin/env bash
# serve_drain.sh — the lifecycle. Start: the port opens at once (live 200)
# while the model loads and warms up (ready 503), then ready turns 200.
# SIGTERM while requests are in flight, made long on
# purpose with --debug-delay-ms: /v2/health/ready turns 503 at once (seen on
# a keep-alive connection opened before), new connections are refused, every
# in-flight request still completes 200, and the process exits 0 well
# within --drain-timeout. Then a drain that cannot finish in time exits 1.
# Skips without the ONNX model.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"

MODEL=$(serve_find_model) || { echo "SKIP: no ONNX model (mobilenet_v2/squeezenet1_1) in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
IMG="$SRC/scripts/samples/gradient.jpg"

# Start-up: warm-up of 32 batch sizes takes a while; the first answer of
# the freshly opened port is live 200 / ready 503.
: >"$SERVE_LOG"
"$OSPREY" serve --host 127.0.0.1 --port 0 --model "$MODEL" --threads 1 --max-batch 32 >"$SERVE_LOG" 2>&1 &
SERVE_PID=$!
first=
for _ in $(seq 1 3000); do
    port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9]*\).*/\1/p' "$SERVE_LOG" | head -1)
    if [ -n "$port" ]; then
        live=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/health/live")
        ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/health/ready")
        [ -z "$first" ] && [ "$live" = 200 ] && first="$live/$ready"
        [ "$ready" = 200 ] && break
    fi
    sleep 0.02
done
[ "$first" = 200/503 ] || { echo "first answer after listening: $first, expected live 200 / ready 503"; cat "$SERVE_LOG"; exit 1; }
[ "$ready" = 200 ] || { echo "never ready"; cat "$SERVE_LOG"; exit 1; }
grep -q '"msg":"model ready"' "$SERVE_LOG" || { echo "ready before 'model ready'"; exit 1; }
serve_stop || exit 1
echo "start-up: ok (live 200 + ready 503 while warming up, then ready 200)"

serve_start --model "$MODEL" --threads 1 --max-batch 4 --debug-delay-ms 1500 --drain-timeout 30 || exit 1
timeout 120 "$PY" - "$SERVE_PORT" "$SERVE_PID" "$IMG" <<'PYEOF' || { tail -20 "$SERVE_LOG"; exit 1; }
import concurrent.futures as cf, http.client, os, signal, socket, sys, time
port, pid, img = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read()
keep = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
keep.request("GET", "/v2/health/ready"); r = keep.getresponse(); r.read()
assert r.status == 200
def one(_):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/classify", body=img, headers={"Content-Type": "image/jpeg"})
    r = c.getresponse(); r.read()
    return r.status
with cf.ThreadPoolExecutor(6) as ex:
    futs = [ex.submit(one, i) for i in range(6)]
    time.sleep(0.5)                  # all six are in flight (each sleeps 1.5 s)
    t0 = time.time()
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.2)
    keep.request("GET", "/v2/health/ready"); r = keep.getresponse(); r.read()
    assert r.status == 503, r.status
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        refused = False
    except OSError:
        refused = True
    assert refused, "a new connection was accepted while draining"
    codes = [f.result() for f in futs]
assert codes == [200] * 6, codes
print(f"drain: ok (6 in flight -> 200, ready 503, new connections refused, {time.time() - t0:.1f} s)")
PYEOF
for _ in $(seq 1 300); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
wait "$SERVE_PID"; rc=$?
SERVE_PID=
[ $rc -eq 0 ] || { echo "exit $rc after drain, expected 0"; tail -20 "$SERVE_LOG"; exit 1; }
grep -q '"msg":"drained"' "$SERVE_LOG" || { echo "no drained line"; exit 1; }

# A drain that cannot finish within --drain-timeout: exit 1, promptly.
serve_start --model "$MODEL" --threads 1 --debug-delay-ms 8000 --drain-timeout 0.5 || exit 1
curl -s -o /dev/null -H 'Content-Type: image/jpeg' --data-binary @"$IMG" "http://127.0.0.1:$SERVE_PORT/classify" &
CURL=$!
sleep 1
t0=$(date +%s.%N)
kill -TERM "$SERVE_PID"
for _ in $(seq 1 100); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
wait "$SERVE_PID"; rc=$?
SERVE_PID=
t1=$(date +%s.%N)
wait $CURL 2>/dev/null
[ $rc -eq 1 ] || { echo "drain timeout: exit $rc, expected 1"; tail -5 "$SERVE_LOG"; exit 1; }
grep -q '"msg":"drain timed out"' "$SERVE_LOG" || { echo "no 'drain timed out' line"; exit 1; }
awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 5) }' || { echo "drain timeout took too long"; exit 1; }
echo "serve_drain: ok"
