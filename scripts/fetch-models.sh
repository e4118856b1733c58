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

# The catalogue (name, URL, sha256, size, destination, extract) lives in
# scripts/models.tsv, which the binary's `osprey models` compiles in too.
MANIFEST_TSV="$ROOT/scripts/models.tsv"

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
while IFS=$'\t' read -r name url sha _bytes rel extract; do
  case "$name" in ''|'#'*) continue ;; esac
  [ "$extract" = - ] && extract=
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
  curl -fL --retry 3 --connect-timeout 20 -sS -o "$out.part" "$url" </dev/null || rc=$?
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
done <"$MANIFEST_TSV"
derive_labels "$DEST"
if [ "$fail" != 0 ]; then
  echo "fetch-models: some models are missing; see messages above" >&2
  exit 1
fi
echo "downloaded $(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$DEST/.source"
echo "fetch-models: all models present in $DEST"
