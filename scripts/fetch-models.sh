#!/usr/bin/env bash
# fetch-models.sh — `make models`: makes model weights available to osprey.
#
# Model files are data, never committed. On a machine that already has them
# (a development box with ../shared/models, or $OSPREY_MODELS pointing at a
# copy) we only record/link that location and exit. Otherwise we download the
# publishers' official files into ./models, verify each sha256 (a mismatch is
# deleted and fails the run: a truncated or substituted model must never be
# loaded silently), and extract archives. Safe to re-run: verified files are
# skipped.
#
#   scripts/fetch-models.sh            link local copies if present, else download
#   scripts/fetch-models.sh --download always download/verify into ./models
#
# Resolution order used by every script and test: scripts/find-models.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=find-models.sh
. "$ROOT/scripts/find-models.sh"
DEST="$ROOT/models"
FORCE_DOWNLOAD=0
case "${1:-}" in
  --download) FORCE_DOWNLOAD=1 ;;
  ""|--local) ;;
  -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
  *) echo "fetch-models: unknown option '$1' (try --help)" >&2; exit 2 ;;
esac

ZOO=https://github.com/onnx/models/raw/main/validated/vision/classification
CORAL=https://github.com/google-coral/test_data/raw/master
# name | URL | sha256 | destination (relative to ./models) | extract?
# sha256 of the ONNX-zoo files: the publishers' Git LFS records. Coral models:
# the checksums in ../shared/models/README.md; label files: computed from the
# verified copies of the same Coral revision.
MANIFEST=(
  "resnet50-v1-7.tar.gz|$ZOO/resnet/model/resnet50-v1-7.tar.gz|898a9183256e884ae06fb1c11869386eccd38393ab41d9339909e974519a9feb|resnet50-v1-7.tar.gz|tar"
  "resnet18-v2-7.onnx|$ZOO/resnet/model/resnet18-v2-7.onnx|3b4d048057854022232aa20bf68262e31718ab7119a17f920b8a2dc1433f824b|resnet18-v2-7.onnx|"
  "resnet50-v1-12-qdq.onnx|$ZOO/resnet/model/resnet50-v1-12-qdq.onnx|e6429d274805654c79ba68dc886c1efd4eff95393e747c35d3fdab579febd8a0|resnet50-v1-12-qdq.onnx|"
  "mobilenetv2-12.tar.gz|$ZOO/mobilenet/model/mobilenetv2-12.tar.gz|5f83b422708a708b592a5fd56d84710038511789df3ae510b84123930c37762d|mobilenetv2-12.tar.gz|tar"
  "mobilenet_v2_1.0_224_quant.tflite|$CORAL/mobilenet_v2_1.0_224_quant.tflite|7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776|tflite/mobilenet_v2_1.0_224_quant.tflite|"
  "tf2_mobilenet_v2_1.0_224_ptq.tflite|$CORAL/tf2_mobilenet_v2_1.0_224_ptq.tflite|5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c|tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite|"
  "mobilenet_v1_0.25_128_quant.tflite|$CORAL/mobilenet_v1_0.25_128_quant.tflite|cb273c23ee76374b05b9583177e28aa19744858a7679c56a250e83d0333da785|tflite/mobilenet_v1_0.25_128_quant.tflite|"
  "mobilenet_v1_0.5_160_quant.tflite|$CORAL/mobilenet_v1_0.5_160_quant.tflite|3cc6d2ca460abd2e0f699a6d0d2550c6b61c6e3b0e27a3616e384ea74cb86f43|tflite/mobilenet_v1_0.5_160_quant.tflite|"
  "mobilenet_v2_1.0_224_inat_bird_quant.tflite|$CORAL/mobilenet_v2_1.0_224_inat_bird_quant.tflite|350fcd8cf1df1560060d464595dfed8b174b05792788052896004848d9ad04f9|tflite/mobilenet_v2_1.0_224_inat_bird_quant.tflite|"
  "mobilenet_v2_1.0_224_inat_insect_quant.tflite|$CORAL/mobilenet_v2_1.0_224_inat_insect_quant.tflite|0ebaeb474dccf56b8b818b014f0d6a8e22b35a45b491a659f0b5405c9c838282|tflite/mobilenet_v2_1.0_224_inat_insect_quant.tflite|"
  "imagenet_labels.txt|$CORAL/imagenet_labels.txt|b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1|tflite/imagenet_labels.txt|"
  "inat_bird_labels.txt|$CORAL/inat_bird_labels.txt|a16108dfe3f8daff015b87a97ab6a17e717b9b1bccd719f6d8f747746d7b9277|tflite/inat_bird_labels.txt|"
  "inat_insect_labels.txt|$CORAL/inat_insect_labels.txt|e5e03664a8a70eafc3308268eb8cd6aa28652912735bfdd45e436ae9617155bc|tflite/inat_insect_labels.txt|"
)

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# The ONNX-zoo classifiers have 1000 classes; the Coral label file has 1001
# (index 0 = background). Derive the 1000-line file once so `--labels` lines
# up with ONNX outputs.
derive_labels() {
  local dir=$1 src out
  src="$dir/tflite/imagenet_labels.txt"
  out="$dir/imagenet1000_labels.txt"
  [ -f "$src" ] || return 0
  [ -w "$dir" ] || return 0
  if [ ! -s "$out" ] || [ "$src" -nt "$out" ]; then
    if [ "$(head -n1 "$src")" = "background" ]; then
      tail -n +2 "$src" > "$out.tmp" && mv "$out.tmp" "$out"
    else
      cp "$src" "$out"
    fi
  fi
}

# 1. Local copies: record where they are and stop (no network needed).
if [ "$FORCE_DOWNLOAD" = 0 ]; then
  if [ -n "${OSPREY_MODELS:-}" ] && osp__models_dir_ok "$OSPREY_MODELS"; then
    echo "fetch-models: using \$OSPREY_MODELS=$OSPREY_MODELS (nothing downloaded)"
    exit 0
  fi
  if [ -f "$DEST/.source" ] && osp__models_dir_ok "$DEST" && grep -q '^linked ' "$DEST/.source"; then
    echo "fetch-models: models already linked in $DEST ($(cat "$DEST/.source"))"
    exit 0
  fi
  SHARED="$ROOT/../shared/models"
  main=$(osp__main_checkout)
  if ! osp__models_dir_ok "$SHARED" && [ -n "$main" ]; then SHARED="$main/../shared/models"; fi
  if osp__models_dir_ok "$SHARED" && ! grep -qs '^downloaded' "$DEST/.source"; then
    SHARED=$(cd "$SHARED" && pwd -P)
    mkdir -p "$DEST"
    for sub in onnx tflite; do
      if [ -d "$SHARED/$sub" ] && [ ! -e "$DEST/$sub" ]; then
        ln -s "$SHARED/$sub" "$DEST/$sub"
      fi
    done
    derive_labels "$DEST"
    echo "linked $SHARED" > "$DEST/.source"
    echo "fetch-models: found local models in $SHARED; linked them into $DEST (nothing downloaded)"
    echo "fetch-models: run 'scripts/fetch-models.sh --download' to fetch the official copies instead"
    exit 0
  fi
fi

# 2. Download, verify, extract.
command -v curl >/dev/null || { echo "fetch-models: curl is required to download models (or set OSPREY_MODELS)" >&2; exit 1; }
mkdir -p "$DEST/tflite" "$DEST/.stamps"
fail=0
for entry in "${MANIFEST[@]}"; do
  IFS='|' read -r name url sha rel extract <<<"$entry"
  out="$DEST/$rel"
  stamp="$DEST/.stamps/$name.sha256"
  # Archives are deleted after extraction; the stamp records that this exact
  # archive (by sha256) was verified and unpacked.
  if [ -n "$extract" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha" ]; then
    echo "fetch-models: $name already extracted (verified $sha)"
    continue
  fi
  if [ -z "$extract" ] && [ -f "$out" ]; then
    if [ "$(sha256_of "$out")" = "$sha" ]; then
      echo "fetch-models: $rel ok"
      continue
    fi
    echo "fetch-models: $rel has the wrong sha256; downloading again" >&2
    rm -f "$out"
  fi
  echo "fetch-models: downloading $url"
  rc=0
  curl -fL --retry 3 --connect-timeout 20 -sS -o "$out.part" "$url" || rc=$?
  if [ "$rc" != 0 ]; then
    rm -f "$out.part"; fail=1
    # 6/7: cannot resolve or connect — the rest would fail the same way.
    if [ "$rc" = 6 ] || [ "$rc" = 7 ]; then
      echo "fetch-models: cannot reach the download host (curl exit $rc); no internet?" >&2
      echo "fetch-models: put the models somewhere and set OSPREY_MODELS=<dir> (layout: see scripts/find-models.sh)" >&2
      rmdir "$DEST/tflite" "$DEST/.stamps" "$DEST" 2>/dev/null || true
      exit 1
    fi
    echo "fetch-models: download of $name failed (curl exit $rc)" >&2
    continue
  fi
  got=$(sha256_of "$out.part")
  if [ "$got" != "$sha" ]; then
    echo "fetch-models: REFUSING $name: sha256 $got, expected $sha; deleted" >&2
    rm -f "$out.part"; fail=1; continue
  fi
  mv "$out.part" "$out"
  if [ "$extract" = tar ]; then
    tar -xzf "$out" -C "$DEST"
    rm -f "$out"
    echo "$sha" > "$stamp"
    echo "fetch-models: extracted $name"
  else
    echo "fetch-models: $rel verified"
  fi
done
derive_labels "$DEST"
if [ "$fail" != 0 ]; then
  echo "fetch-models: some models are missing; see messages above" >&2
  exit 1
fi
echo "downloaded $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$DEST/.source"
echo "fetch-models: all models present in $DEST"
