#!/usr/bin/env bash
# onnx_vs_ort.sh — equivalence test: osprey's outputs against ONNX Runtime's on
# the development ONNX models (ResNet50, MobileNetV2, SqueezeNet 1.1), batch 1,
# 2 and 3 (batch 2 on 2 threads runs as two one-image lanes, engine/lanes.c), fp32 (tight tolerance) and bf16 (same top-1, cosine >= 0.999). The
# comparison itself is onnx_vs_ort.py; this wrapper finds the models, the
# Python with onnxruntime and the runner, and skips (77) saying why when one
# is missing.
#
# Arguments: --max-isa ISA runs osprey under that ISA ceiling (CTest's
# onnx_vs_ort_avx2); below avx512_bf16 the precisions are fp32 and auto,
# which must then resolve to fp32 (oneDNN has no bf16 kernels there but
# reference ones). --winograd (CTest's onnx_vs_ort_winograd) forces the
# fp32 3x3 stride-1 convs onto osprey's Winograd convolution
# (--engine-winograd on; fp32 only, ResNet50 and SqueezeNet, the models
# that have such convs) and, on a CPU with AVX-512, checks that every plan
# ran it; without AVX-512 the engine has none and the check says so.
#
# Environment: OSP_SOURCE_DIR, OSP_BUILD_DIR (set by CTest), OSPREY_MODELS,
# OSP_EQUIV_MODELS (space-separated subset, e.g. "resnet50"),
# OSP_EQUIV_PRECISIONS (default "fp32 bf16"). Under ASan (OSP_SANITIZE=ON in
# the build's CMakeCache) only ResNet50 is checked, to keep CI time modest.
set -euo pipefail
ISA_ARGS=()
ENGINE_ARGS=()
PRECISIONS=${OSP_EQUIV_PRECISIONS:-fp32 bf16}
WINOGRAD=0
while [ $# -gt 0 ]; do
  case $1 in
    --winograd) WINOGRAD=1; shift ;;
    --max-isa)
      ISA_ARGS=(--max-isa "$2")
      case $2 in
        sse41|avx2|avx512|avx512_vnni)
          PRECISIONS=${OSP_EQUIV_PRECISIONS:-fp32 auto}; ISA_ARGS+=(--auto-expect fp32) ;;
      esac
      shift 2 ;;
    *) echo "usage: onnx_vs_ort.sh [--max-isa ISA] [--winograd]"; exit 2 ;;
  esac
done
if [ "$WINOGRAD" = 1 ]; then
  PRECISIONS=${OSP_EQUIV_PRECISIONS:-fp32}
  ENGINE_ARGS=(--engine-arg=--engine-winograd --engine-arg=on)
  if [ ${#ISA_ARGS[@]} -eq 0 ] && grep -qw avx512f /proc/cpuinfo; then
    ENGINE_ARGS+=(--expect-plan "osprey:wino_4x3")
  else
    echo "onnx_vs_ort: no AVX-512 here (or a ceiling below it): osprey has no Winograd convolution; checking that --engine-winograd on still runs (direct)"
  fi
fi
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${OSP_BUILD_DIR:-$SRC/build}
# shellcheck source=../../scripts/find-models.sh
. "$SRC/scripts/find-models.sh"

PY=""
for cand in "$SRC/.venv/bin/python"; do
  if [ -x "$cand" ] && "$cand" -c 'import onnxruntime, numpy' 2>/dev/null; then PY=$cand; break; fi
done
if [ -z "$PY" ]; then
  echo "SKIP onnx_vs_ort: no Python with onnxruntime+numpy ($SRC/.venv missing; run scripts/setup-venv.sh)"
  exit 77
fi

RUNNER=$BUILD/tests/osp_run_model
if [ ! -x "$RUNNER" ]; then
  echo "FAIL onnx_vs_ort: $RUNNER not built"
  exit 1
fi

WANT=${OSP_EQUIV_MODELS:-resnet50 mobilenet_v2 squeezenet1_1}
[ "$WINOGRAD" = 1 ] && WANT=${OSP_EQUIV_MODELS:-resnet50 squeezenet1_1}
if [ -z "${OSP_EQUIV_MODELS:-}" ] && grep -qs '^OSP_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
  WANT=resnet50
  echo "onnx_vs_ort: sanitizer build: checking ResNet50 only (set OSP_EQUIV_MODELS to override)"
fi
# The development copies (onnx/) first; on a machine that ran
# `make models --download` the ONNX-zoo files stand in for them.
candidates() {
  case $1 in
    resnet50) echo "onnx/resnet50.onnx resnet50v1/resnet50-v1-7.onnx" ;;
    mobilenet_v2)
      echo "onnx/mobilenet_v2.onnx"
      local d; d=$(osp_models_dir 2>/dev/null) || return 0
      compgen -G "$d/*/mobilenetv2*.onnx" | sed "s|^$d/||" || true ;;
    *) echo "onnx/$1.onnx" ;;
  esac
}
MODELS=()
MISSING=()
for m in $WANT; do
  # shellcheck disable=SC2046
  if p=$(osp_model_path $(candidates "$m")); then MODELS+=("$p"); else MISSING+=("$m"); fi
done
if [ ${#MISSING[@]} -gt 0 ]; then
  echo "onnx_vs_ort: not found (skipped): ${MISSING[*]} — looked for onnx/<name>.onnx (and ONNX-zoo equivalents) in $(osp_models_searched)"
fi
if [ ${#MODELS[@]} -eq 0 ]; then
  echo "SKIP onnx_vs_ort: none of the development ONNX models ($WANT) found in $(osp_models_searched)"
  exit 77
fi

THREADS=$(nproc); [ "$THREADS" -gt 2 ] && THREADS=2
# shellcheck disable=SC2086
exec "$PY" "$SRC/tests/integration/onnx_vs_ort.py" --runner "$RUNNER" \
  --models "${MODELS[@]}" --batches 1 2 3 --precisions $PRECISIONS \
  --threads "$THREADS" "${ISA_ARGS[@]}" "${ENGINE_ARGS[@]}"
