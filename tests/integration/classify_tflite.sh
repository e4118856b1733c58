#!/usr/bin/env bash
# Real ImageNet/iNaturalist weights (the Coral TFLite models) through
# `osprey classify`: the labels a person sees in the photos must come out on
# top with a confident score. cat.bmp shows an Egyptian cat; bird.bmp a
# black-capped chickadee (black cap and bib, white cheeks, grey back);
# dragonfly.bmp a dragonfly (the insect model names a dasher).
set -u
. "$OSP_SOURCE_DIR/scripts/find-models.sh"
MODELS=$(osp_models_dir) || { echo "SKIP: no model directory found (set OSPREY_MODELS, run make models, or provide ../shared)"; exit 77; }
T="$MODELS/tflite"
IMAGES=$(osp_images_dir "$MODELS")
[ -f "$T/mobilenet_v2_1.0_224_quant.tflite" ] || { echo "SKIP: TFLite models not in $T"; exit 77; }
[ -f "$IMAGES/cat.bmp" ] || { echo "SKIP: sample photos not in $IMAGES"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

# top1 MODEL IMAGE [LABELS] -> prints "label<TAB>score" of the top prediction
top1() {
  local extra=()
  [ -n "${3:-}" ] && extra=(--labels "$3")
  "$OSPREY" classify --model "$1" "${extra[@]}" --top-k 3 --json "$2" |
    /usr/bin/python3 -c 'import json,sys; p=json.loads(sys.stdin.readline())["predictions"]; print(p[0]["label"]+"\t"+str(p[0]["score"]))'
}

check() { # name model image labels expected min_score
  local out label score
  out=$(top1 "$2" "$3" "$4") || fail "$1: classify failed"
  label=${out%%$'\t'*}; score=${out##*$'\t'}
  echo "$1: top-1 '$label' ($score)"
  [ "$label" = "$5" ] || fail "$1: expected '$5'"
  /usr/bin/python3 -c "import sys; sys.exit(0 if float('$score') >= $6 else 1)" || fail "$1: score $score < $6"
}

check "uint8 MobileNetV2 / cat" "$T/mobilenet_v2_1.0_224_quant.tflite" "$IMAGES/cat.bmp" "" "Egyptian cat" 0.5
check "int8 TF2 MobileNetV2 / cat" "$T/tf2_mobilenet_v2_1.0_224_ptq.tflite" "$IMAGES/cat.bmp" "" "Egyptian cat" 0.5
check "iNat birds / bird" "$T/mobilenet_v2_1.0_224_inat_bird_quant.tflite" "$IMAGES/bird.bmp" "$T/inat_bird_labels.txt" "Poecile atricapillus (Black-capped Chickadee)" 0.5
check "iNat insects / dragonfly" "$T/mobilenet_v2_1.0_224_inat_insect_quant.tflite" "$IMAGES/dragonfly.bmp" "$T/inat_insect_labels.txt" "Micrathyria hagenii (Thornbush Dasher)" 0.5
check "uint8 MobileNetV2 / hot dog" "$T/mobilenet_v2_1.0_224_quant.tflite" "$IMAGES/hot_dog.jpg" "" "hotdog, hot dog, red hot" 0.5
echo "classify_tflite: all checks passed"
