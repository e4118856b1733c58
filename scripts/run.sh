#!/usr/bin/env bash
# run.sh — `make run`: the main job. Finds the default model (the first with
# real weights: ONNX-zoo ResNet50, else the Coral MobileNetV2 TFLite) and its
# labels, and runs `osprey up` with it: the dispatcher on :8000 (UI, API,
# /metrics), the autoscaler with 1…CPUs workers of the model, Prometheus and
# Alertmanager when installed. `osprey up` prints the URLs and a curl
# example, and Ctrl-C / SIGTERM drain and stop everything (exit 0).
# `--classify` runs the one-shot demo instead: `osprey classify --top-k 3`
# on the sample photos.
#
#   scripts/run.sh [OSPREY_BINARY] [osprey up options...]
#   scripts/run.sh [OSPREY_BINARY] --classify [classify options...]
#   e.g. scripts/run.sh build/osprey --workers 1:2 --no-prometheus
#        scripts/run.sh build/osprey --classify --precision bf16 --json
#
# Environment: OSPREY_MODELS (model dir, see scripts/find-models.sh),
# OSPREY_RUN_MODEL (a model file to use instead of ResNet50),
# OSPREY_IMAGES (a directory of images: the classify demo, and the example
# request), OSPREY_PORT (the dispatcher's port, default 8000), every
# OSPREY_UP_* setting (`osprey up --help`), and every OSPREY_* serve setting
# (docs/serve.md: the workers inherit the environment).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=find-models.sh
. "$ROOT/scripts/find-models.sh"

OSPREY=$ROOT/build/osprey
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then OSPREY=$1; shift; fi
MODE=up
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
# here too when the models dir is read-only — into the user's cache, since
# the servers read it after this script has handed over to them.
LABELS=""
MDIR=$(osp_models_dir || true)
if [ -n "$MDIR" ] && [ -f "$MDIR/imagenet1000_labels.txt" ]; then
  LABELS=$MDIR/imagenet1000_labels.txt
elif [ -n "$MDIR" ] && [ -f "$MDIR/tflite/imagenet_labels.txt" ]; then
  CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/osprey
  mkdir -p "$CACHE"
  LABELS=$CACHE/imagenet1000_labels.txt
  if [ "$(head -n1 "$MDIR/tflite/imagenet_labels.txt")" = background ]; then
    tail -n +2 "$MDIR/tflite/imagenet_labels.txt" > "$LABELS"
  else
    cp "$MDIR/tflite/imagenet_labels.txt" "$LABELS"
  fi
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

# The stack: `osprey up` takes over this process (exec), so Ctrl-C and
# SIGTERM reach it directly and it stops everything it started, in order.
ARGS=(up --model "$MODEL" --example-image "${IMAGES[0]}")
[ -z "${OSPREY_PORT:-}" ] || ARGS+=(--port "$OSPREY_PORT")
# Debian's prometheus and prometheus-alertmanager packages (install-deps.sh)
# start system services on :9090 and :9093 where systemd runs: the stack's
# own then take any free port (osprey up prints it) rather than fail.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${OSPREY_UP_PROMETHEUS_PORT:-}" ] && port_busy 9090; then
  echo "run: 127.0.0.1:9090 is taken (a system Prometheus?): the stack's Prometheus takes a free port"
  ARGS+=(--prometheus-port 0)
fi
if [ -z "${OSPREY_UP_ALERTMANAGER_PORT:-}" ] && port_busy 9093; then
  echo "run: 127.0.0.1:9093 is taken (a system Alertmanager?): the stack's takes a free port"
  ARGS+=(--alertmanager-port 0)
fi
case "$MODEL" in *.onnx) [ -n "$LABELS" ] && ARGS+=(--worker-args "--labels '$LABELS'") ;; esac
echo "run: $OSPREY ${ARGS[*]} $*"
exec "$OSPREY" "${ARGS[@]}" "$@"
