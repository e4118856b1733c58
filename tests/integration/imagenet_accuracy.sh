#!/usr/bin/env bash
# ImageNet accuracy of the two quantized MobileNetV2 TFLite models (uint8
# TF1 QAT and int8 TF2 PTQ) on the 100 photos of
# ../shared/images/imagenet-samples through `osprey classify`: reports
# top-1/top-5 and asserts top-1 >= 65%, top-5 >= 85% (issue 3). How the
# class index is derived from the file names: see the .py file.
set -u
. "$OSP_SOURCE_DIR/scripts/find-models.sh"
MODELS=$(osp_models_dir) || { echo "SKIP: no model directory found (set OSPREY_MODELS, run make models, or provide ../shared)"; exit 77; }
IMAGES=$(osp_images_dir "$MODELS" imagenet-samples)
[ -d "$IMAGES/imagenet-samples" ] || { echo "SKIP: no imagenet-samples folder in $IMAGES"; exit 77; }
[ -f "$MODELS/tflite/mobilenet_v2_1.0_224_quant.tflite" ] || { echo "SKIP: no TFLite MobileNetV2 in $MODELS/tflite"; exit 77; }
# Under ASan/UBSan the quantized reference kernels run ~5x slower: classify
# every 4th photo there (same thresholds); Release checks all 100.
if [ -z "${OSP_ACCURACY_STRIDE:-}" ] && grep -qs '^OSP_SANITIZE:BOOL=ON' "$OSP_BUILD_DIR/CMakeCache.txt"; then
  export OSP_ACCURACY_STRIDE=4
fi
exec /usr/bin/python3 "$OSP_SOURCE_DIR/tests/integration/imagenet_accuracy.py" "$OSPREY" "$MODELS" "$IMAGES" "${OSP_ACCURACY_CONFIG_DIR:-}"
