#!/usr/bin/env bash
# serve_tflite.sh — `osprey serve` with the quantized TFLite MobileNetV2
# (real weights and labels, uint8 input): the whole API check (serve_api.py
# api, which exercises UINT8 V2 tensors on this model) and correct labels for
# cat.bmp. Skips when the model or the photos are absent.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"

MODEL=
for d in "${OSPREY_MODELS:-}" "$SRC/../shared/models"; do
    [ -n "$d" ] && [ -f "$d/tflite/mobilenet_v2_1.0_224_quant.tflite" ] && { MODEL="$d/tflite/mobilenet_v2_1.0_224_quant.tflite"; break; }
done
[ -n "$MODEL" ] || { echo "SKIP: tflite/mobilenet_v2_1.0_224_quant.tflite not in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
PHOTOS=
for d in "${OSPREY_IMAGES:-}" "$(dirname "$(dirname "$MODEL")")/../images" "$SRC/../shared/images"; do
    [ -n "$d" ] && [ -f "$d/cat.bmp" ] && { PHOTOS="$d"; break; }
done
[ -n "$PHOTOS" ] || { echo "SKIP: cat.bmp not found (\$OSPREY_IMAGES, ../shared/images)"; exit 77; }
echo "model: $MODEL, photos: $PHOTOS"

serve_start --model "$MODEL" --threads 2 --drain-timeout 60 || exit 1
timeout 600 "$PY" "$(dirname "$0")/serve_api.py" "$SERVE_PORT" mobilenet_v2_1.0_224_quant "$SRC/scripts/samples" api || {
    echo "--- server log"; tail -30 "$SERVE_LOG"; exit 1; }
timeout 600 "$PY" "$(dirname "$0")/serve_api.py" "$SERVE_PORT" mobilenet_v2_1.0_224_quant "$PHOTOS" labels || {
    echo "--- server log"; tail -30 "$SERVE_LOG"; exit 1; }
serve_stop || { echo "serve did not exit 0 on SIGTERM"; exit 1; }
echo "serve_tflite: ok"
