#!/usr/bin/env bash
# service.sh — `make bench-service`: the service benchmark of issue 5.
# osprey serve (fp32, bf16) against the FastAPI + PyTorch baseline
# (bench/baselines/fastapi-torch), same model, same CPUs, same load from
# `osprey load`, in one run; writes bench/results/<UTC>-service.json and
# prints a Markdown table. The logic lives in bench/service.py (stdlib
# Python); this wrapper finds the binary, the models and the image corpus
# the same way the tests do, so every checkout runs it the same way.
#
#   bench/service.sh [--quick] [--osprey-only] [service.py options...]
# Environment: OSPREY (binary, default build/osprey), OSPREY_MODELS,
# OSPREY_IMAGES (corpus directory, default ../shared/images/imagenet-samples).
# The baseline needs scripts/install-bench-deps.sh (Debian python3-torch etc.).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=../scripts/find-models.sh
. "$ROOT/scripts/find-models.sh"

OSPREY=${OSPREY:-$ROOT/build/osprey}
if [ ! -x "$OSPREY" ]; then
  echo "service.sh: $OSPREY is not built; run 'make build' first" >&2; exit 1
fi
OSPREY=$(cd "$(dirname "$OSPREY")" && pwd -P)/$(basename "$OSPREY")
if ! MDIR=$(osp_models_dir); then
  echo "service.sh: no models found (looked in $(osp_models_searched)); run 'make models'" >&2
  exit 1
fi

# Image corpus: $OSPREY_IMAGES, else imagenet-samples beside the shared models.
IMAGES=${OSPREY_IMAGES:-}
if [ -z "$IMAGES" ]; then
  for d in "$ROOT/../shared/images/imagenet-samples" "$MDIR/../images/imagenet-samples"; do
    if [ -d "$d" ]; then IMAGES=$(cd "$d" && pwd -P); break; fi
  done
fi
if [ -z "$IMAGES" ] || [ ! -e "$IMAGES" ]; then
  echo "service.sh: no image corpus (set OSPREY_IMAGES or provide ../shared/images/imagenet-samples)" >&2
  exit 1
fi

for a in "$@"; do
  if [ "$a" = --osprey-only ]; then BASELINE=0; fi
done
if [ "${BASELINE:-1}" = 1 ] &&
   ! /usr/bin/python3 -c 'import torch, torchvision, fastapi, uvicorn, multipart' 2>/dev/null; then
  echo "service.sh: the baseline needs Debian's python3-torch, python3-torchvision," \
       "python3-fastapi, python3-uvicorn, python3-multipart: run scripts/install-bench-deps.sh" \
       "(or pass --osprey-only)" >&2
  exit 1
fi

exec /usr/bin/python3 "$ROOT/bench/service.py" --osprey "$OSPREY" \
  --models-dir "$MDIR" --images "$IMAGES" "$@"
