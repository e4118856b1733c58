#!/usr/bin/env bash
# run.sh — `make run`: the main job for now. Finds the default model (the
# first with real weights: ONNX-zoo ResNet50, else the Coral MobileNetV2
# TFLite), a label file and the sample photos, then classifies them
# with `osprey classify --top-k 3`. Later this becomes `osprey serve`.
#
#   scripts/run.sh [OSPREY_BINARY] [extra classify options...]
#   e.g. scripts/run.sh build/osprey --precision bf16 --json
#
# Environment: OSPREY_MODELS (model dir, see scripts/find-models.sh),
# OSPREY_RUN_MODEL (a model file to use instead of ResNet50),
# OSPREY_IMAGES (a directory of images to classify).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=find-models.sh
. "$ROOT/scripts/find-models.sh"

OSPREY=${1:-$ROOT/build/osprey}
[ $# -gt 0 ] && shift
if [ ! -x "$OSPREY" ]; then
  echo "run: $OSPREY is not built; run 'make build' first" >&2
  exit 1
fi
if ! "$OSPREY" classify --help >/dev/null 2>&1; then
  echo "run: this osprey binary has no working 'classify' command yet:" >&2
  "$OSPREY" classify --help 2>&1 | head -n 3 >&2 || true
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

ARGS=(classify --model "$MODEL" --top-k 3)
# The 1000-line file is for 1000-class ONNX models; TFLite classifiers have
# 1001 outputs and find imagenet_labels.txt beside them.
case "$MODEL" in *.onnx) [ -n "$LABELS" ] && ARGS+=(--labels "$LABELS") ;; esac
echo "run: $OSPREY ${ARGS[*]} $* <${#IMAGES[@]} images from $IMGDIR>"
"$OSPREY" "${ARGS[@]}" "$@" "${IMAGES[@]}"
