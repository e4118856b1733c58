#!/usr/bin/env bash
# serve_run.sh — `make run` (scripts/run.sh): finds the default model, starts
# the stack with `osprey up` (dispatcher on OSPREY_PORT, here one worker and
# no Prometheus: tests/integration/up_e2e.sh runs the whole of it), prints
# the URLs and the curl example once ready, serves requests through the
# dispatcher, and on SIGTERM drains and exits 0. `--classify` still runs
# the old demo. Skips when no default model is found.
set -uo pipefail
: "${OSPREY:?OSPREY must point at the osprey binary}"
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/scripts/find-models.sh"
osp_model_path resnet50v1/resnet50-v1-7.onnx tflite/mobilenet_v2_1.0_224_quant.tflite \
    onnx/resnet50.onnx >/dev/null || { echo "SKIP: no default model (looked in $(osp_models_searched))"; exit 77; }
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OUT=$(mktemp /tmp/osp_run.XXXXXX)
STATE=$(mktemp -d /tmp/osp_run_state.XXXXXX)
trap 'kill -KILL $PID 2>/dev/null; rm -rf "$OUT" "$STATE"' EXIT
# One worker, batch 1 and one thread: a quick warm-up also under ASan.
OSPREY_PORT=$PORT OSPREY_IMAGES=$SRC/scripts/samples "$SRC/scripts/run.sh" "$OSPREY" \
    --host 127.0.0.1 --admin-port 0 --autoscaler-port 0 --no-prometheus --workers 1:1 \
    --state-dir "$STATE" --worker-args "--max-batch 1 --threads 1" >"$OUT" 2>&1 &
PID=$!
for _ in $(seq 1 1200); do
    grep -q 'osprey up: ready' "$OUT" && break
    kill -0 $PID 2>/dev/null || { echo "run.sh exited early:"; cat "$OUT"; exit 1; }
    sleep 0.1
done
grep -q "curl -s -H 'Content-Type: application/octet-stream' --data-binary @$SRC/scripts/samples/" "$OUT" ||
    { echo "no curl example:"; cat "$OUT"; exit 1; }
grep -q "UI *http://127.0.0.1:$PORT/" "$OUT" || { echo "no UI URL:"; cat "$OUT"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' -F "file=@$SRC/scripts/samples/gradient.jpg" "http://127.0.0.1:$PORT/classify")
[ "$code" = 200 ] || { echo "classify via run.sh's stack: $code"; cat "$OUT" "$STATE"/*.log; exit 1; }
kill -TERM $PID
for _ in $(seq 1 600); do kill -0 $PID 2>/dev/null || break; sleep 0.1; done
wait $PID; rc=$?
grep -q '"msg":"drained"' "$STATE/dispatcher.log" || { echo "dispatcher did not drain:"; cat "$OUT" "$STATE/dispatcher.log"; exit 1; }
grep -q 'osprey up: stopped$' "$OUT" || { echo "stack did not stop cleanly:"; cat "$OUT"; exit 1; }
[ $rc -eq 0 ] || { echo "run.sh exit $rc after SIGTERM"; cat "$OUT"; exit 1; }
# The old demo is still there.
OSPREY_IMAGES=$SRC/scripts/samples timeout 300 "$SRC/scripts/run.sh" "$OSPREY" --classify >"$OUT" 2>&1 ||
    { echo "run.sh --classify failed:"; cat "$OUT"; exit 1; }
grep -q "gradient.jpg" "$OUT" || { echo "classify demo output:"; cat "$OUT"; exit 1; }
echo "serve_run: ok"
