#!/usr/bin/env bash
# serve_limits.sh — `osprey serve` under limits, on an ephemeral loopback
# port: overload (queue of 2, batch 1) answers 503 + Retry-After quickly
# instead of timing out; a 1 ms X-Request-Timeout-Ms deadline gives 504;
# an image above --max-pixels gives 413; a client stalling mid-body is
# dropped after --conn-timeout-s. Skips when no ONNX model is found.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"

MODEL=$(serve_find_model) || { echo "SKIP: no ONNX model (mobilenet_v2/squeezenet1_1) in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
"$PY" -c 'import PIL' 2>/dev/null || { echo "SKIP: python3-pil not installed (needed to make test images)"; exit 77; }
NAME=$(basename "$MODEL" .onnx)
IMAGES="$SRC/scripts/samples"

serve_start --model "$MODEL" --threads 1 --max-batch 1 --max-queue-size 2 \
            --max-queue-delay-us 0 --queue-delay-target-ms 0 \
            --max-pixels 1000000 --drain-timeout 60 \
            --conn-timeout-s 2 || exit 1
echo "serving on port $SERVE_PORT"
timeout 600 "$PY" "$(dirname "$0")/serve_api.py" "$SERVE_PORT" "$NAME" "$IMAGES" overload deadline pixels slow || {
    echo "--- server log"; tail -30 "$SERVE_LOG"; exit 1; }
serve_stop || { echo "serve did not exit 0 on SIGTERM"; tail -20 "$SERVE_LOG"; exit 1; }
echo "serve_limits: ok"
