#!/usr/bin/env bash
# --precision fp32|bf16 on quantized TFLite models (weights dequantized at
# load, pass_dequant.c) against the int8 path: on every photo in
# ../shared/images (not imagenet-samples) the fp32 run must name the same
# top-1 class as the int8 run, for the uint8 (TF1) and the int8 (TF2)
# MobileNetV2; bf16 agreement is printed. `--verbose` must say which path
# ran. Set OSP_PRECISION_IMAGENET=1 to also include the 100 imagenet-samples
# photos; agreement is then reported, not asserted (docs/engine.md quotes
# that run).
set -u
. "$OSP_SOURCE_DIR/scripts/find-models.sh"
MODELS=$(osp_models_dir) || { echo "SKIP: no model directory found (set OSPREY_MODELS, run make models, or provide ../shared)"; exit 77; }
T="$MODELS/tflite"
IMAGES=$(osp_images_dir "$MODELS")
[ -f "$T/mobilenet_v2_1.0_224_quant.tflite" ] || { echo "SKIP: TFLite models not in $T"; exit 77; }
[ -f "$IMAGES/cat.bmp" ] || { echo "SKIP: sample photos not in $IMAGES"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

photos=()
for f in "$IMAGES"/*; do
  case "${f,,}" in *.jpg|*.jpeg|*.bmp|*.png) photos+=("$f");; esac
done
if [ "${OSP_PRECISION_IMAGENET:-0}" = 1 ]; then photos+=("$IMAGES"/imagenet-samples/*); fi

for m in mobilenet_v2_1.0_224_quant tf2_mobilenet_v2_1.0_224_ptq; do
  model="$T/$m.tflite"
  [ -f "$model" ] || fail "$model missing"
  for p in int8 fp32 bf16; do
    "$OSPREY" classify --model "$model" --precision "$p" --top-k 5 --json \
      --verbose "${photos[@]}" > "$TMP/$m.$p.json" 2> "$TMP/$m.$p.err" ||
      fail "$m --precision $p: classify failed: $(tail -3 "$TMP/$m.$p.err")"
  done
  grep -q "int8 path: oneDNN int8\|int8 path: .*exact reference" "$TMP/$m.int8.err" ||
    fail "$m int8: --verbose does not name the int8 path"
  grep -q "int8 path: none (quantized model dequantized at load, runs in fp32)" "$TMP/$m.fp32.err" ||
    fail "$m fp32: --verbose does not say the model was dequantized"
  grep -q "runs in bf16" "$TMP/$m.bf16.err" || fail "$m bf16: --verbose does not say bf16"
  OSP_REPORT_ONLY=${OSP_PRECISION_IMAGENET:-0} /usr/bin/python3 - "$m" "$TMP/$m.int8.json" "$TMP/$m.fp32.json" "$TMP/$m.bf16.json" <<'PY' || exit 1
import json, os, sys
name, files = sys.argv[1], sys.argv[2:]
runs = [[json.loads(l) for l in open(f)] for f in files]
top = [[r["predictions"][0]["index"] for r in run] for run in runs]
n = len(top[0])
fp32 = sum(a == b for a, b in zip(top[0], top[1]))
bf16 = sum(a == b for a, b in zip(top[0], top[2]))
print(f"{name}: top-1 agreement with int8: fp32 {fp32}/{n}, bf16 {bf16}/{n}")
bad = [runs[0][i]["image"] for i in range(n) if top[0][i] != top[1][i]]
if bad and os.environ.get("OSP_REPORT_ONLY") == "1":
    print(f"{name}: fp32 top-1 differs from int8 on {len(bad)} photos (report only)")
elif bad:
    print(f"FAIL: {name}: fp32 top-1 differs from int8 on {bad}")
    sys.exit(1)
PY
done
echo "tflite_precision: ok"
