#!/usr/bin/env bash
# run.sh — `make run`: the main job. Finds the default model (the first with
# real weights: ONNX-zoo ResNet50, else the Coral MobileNetV2 TFLite) and its
# labels, starts `osprey serve` with it on port 8080, waits until it is
# ready, prints how to call it (curl) with one example answer, and keeps
# serving until Ctrl-C / SIGTERM (which drain the server; exit 0).
# `--classify` runs the earlier demo instead: `osprey classify --top-k 3` on
# the sample photos.
#
#   scripts/run.sh [OSPREY_BINARY] [serve options...]
#   scripts/run.sh [OSPREY_BINARY] --classify [classify options...]
#   e.g. scripts/run.sh build/osprey --max-batch 16
#        scripts/run.sh build/osprey --classify --precision bf16 --json
#
# Environment: OSPREY_MODELS (model dir, see scripts/find-models.sh),
# OSPREY_RUN_MODEL (a model file to use instead of ResNet50),
# OSPREY_IMAGES (a directory of images: the classify demo, and the example
# request), OSPREY_PORT (default 8080), and every OSPREY_* serve setting
# (docs/serve.md).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=find-models.sh
. "$ROOT/scripts/find-models.sh"

OSPREY=$ROOT/build/osprey
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then OSPREY=$1; shift; fi
MODE=serve
if [ "${1:-}" = --classify ]; then MODE=classify; shift; fi
if [ ! -x "$OSPREY" ]; then
  echo "run: $OSPREY is not built; run 'make build' first" >&2
  exit 1
fi
if ! "$OSPREY" "$MODE" --help >/dev/null 2>&1; then
  echo "run: this osprey binary has no working '$MODE' command:" >&2
  "$OSPREY" "$MODE" --help 2>&1 | head -n 3 >&2 || true
  exit 1
fi

# Model: a model with real ImageNet weights first — the ONNX-zoo ResNet50
# when downloaded, else the Coral MobileNetV2 (uint8 TFLite) — and only then
# the development copy of ResNet50 (same graph, random weights: speed is
# representative, labels are not).
if [ -n "${OSPREY_RUN_MODEL:-}" ]; then
  MODEL=$OSPREY_RUN_MODEL
elif ! MODEL=$(osp_model_path resnet50v1/resnet50-v1-7.onnx \
                 tflite/mobilenet_v2_1.0_224_quant.tflite onnx/resnet50.onnx); then
  echo "run: no default model found (looked in $(osp_models_searched))" >&2
  echo "run: run 'make models' (downloads the official files) or set OSPREY_MODELS" >&2
  exit 1
fi
case "$MODEL" in
  */onnx/resnet50.onnx)
    echo "run: note: $MODEL has random weights (development copy); the predicted labels are not meaningful" ;;
esac

# Labels: the ONNX classifiers have 1000 classes; the Coral file has 1001
# (background first). fetch-models.sh derives the 1000-line file; derive it
# here too when the models dir is read-only.
LABELS=""
MDIR=$(osp_models_dir || true)
TMP=""
trap 'if [ -n "$TMP" ]; then rm -rf "$TMP"; fi' EXIT
if [ -n "$MDIR" ] && [ -f "$MDIR/imagenet1000_labels.txt" ]; then
  LABELS=$MDIR/imagenet1000_labels.txt
elif [ -n "$MDIR" ] && [ -f "$MDIR/tflite/imagenet_labels.txt" ]; then
  TMP=$(mktemp -d)
  if [ "$(head -n1 "$MDIR/tflite/imagenet_labels.txt")" = background ]; then
    tail -n +2 "$MDIR/tflite/imagenet_labels.txt" > "$TMP/imagenet1000_labels.txt"
  else
    cp "$MDIR/tflite/imagenet_labels.txt" "$TMP/imagenet1000_labels.txt"
  fi
  LABELS=$TMP/imagenet1000_labels.txt
fi

# Images: $OSPREY_IMAGES, then the shared sample photos, then our tiny
# bundled synthetic ones.
IMGDIR=""
main=$(osp__main_checkout)
if [ -n "${OSPREY_IMAGES:-}" ]; then
  IMGDIR=$OSPREY_IMAGES
else
  for cand in "$ROOT/../shared/images" ${main:+"$main/../shared/images"}; do
    if compgen -G "$cand/*.[jJbBpPwW]*" >/dev/null; then IMGDIR=$(cd "$cand" && pwd -P); break; fi
  done
  [ -n "$IMGDIR" ] || IMGDIR=$ROOT/scripts/samples
fi
IMAGES=()
for f in "$IMGDIR"/*; do
  case "${f,,}" in *.jpg|*.jpeg|*.png|*.bmp|*.webp) IMAGES+=("$f") ;; esac
done
if [ ${#IMAGES[@]} -eq 0 ]; then
  echo "run: no images found in $IMGDIR" >&2
  exit 1
fi

if [ "$MODE" = classify ]; then
  ARGS=(classify --model "$MODEL" --top-k 3)
  # The 1000-line file is for 1000-class ONNX models; TFLite classifiers
  # have 1001 outputs and find imagenet_labels.txt beside them.
  case "$MODEL" in *.onnx) [ -n "$LABELS" ] && ARGS+=(--labels "$LABELS") ;; esac
  echo "run: $OSPREY ${ARGS[*]} $* <${#IMAGES[@]} images from $IMGDIR>"
  "$OSPREY" "${ARGS[@]}" "$@" "${IMAGES[@]}"
  exit
fi

# Serve: start the worker, forward Ctrl-C / SIGTERM to it (it drains), and
# once it is ready show how to call it.
PORT=${OSPREY_PORT:-8080}
ARGS=(serve --model "$MODEL" --port "$PORT")
case "$MODEL" in *.onnx) [ -n "$LABELS" ] && ARGS+=(--labels "$LABELS") ;; esac
echo "run: $OSPREY ${ARGS[*]} $*"
"$OSPREY" "${ARGS[@]}" "$@" &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' INT TERM
URL=http://127.0.0.1:$PORT
ready=0
for _ in $(seq 1 600); do
  kill -0 $SERVER 2>/dev/null || break
  if curl -sf -o /dev/null --max-time 2 "$URL/v2/health/ready"; then ready=1; break; fi
  sleep 0.5
done
if [ $ready = 1 ]; then
  IMG=${IMAGES[0]}
  cat <<EOF

run: osprey serve is ready on port $PORT (model $MODEL). Try:
  curl -s -H 'Content-Type: image/jpeg' --data-binary @$IMG '$URL/classify?top_k=3'
  curl -s -F file=@$IMG '$URL/classify'          # multipart upload
  curl -s $URL/v2/models/$(basename "${MODEL%.*}")   # KServe V2 model metadata
  API: $URL/docs   metrics: $URL/metrics   Ctrl-C stops (after draining).
run: example answer:
EOF
  curl -s -H 'Content-Type: application/octet-stream' --data-binary @"$IMG" "$URL/classify?top_k=3" || true
fi
# `wait` returns early (status > 128) when a trapped signal arrives: wait
# again until the server has drained and exited, and exit with its status.
while :; do
  if wait $SERVER; then rc=0; else rc=$?; fi
  [ $rc -le 128 ] && break
  kill -0 $SERVER 2>/dev/null || break
done
exit $rc
