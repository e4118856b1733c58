#!/usr/bin/env bash
# osprey's quantized path vs the LiteRT interpreter (PyPI ai-edge-litert in
# the project venv): same preprocessed bytes in, outputs within ±1
# quantization step and identical top-5, every TFLite model × every photo.
# Arguments (e.g. --max-isa avx2) go to every osp_run_model run.
set -u
. "$OSP_SOURCE_DIR/scripts/find-models.sh"
MODELS=$(osp_models_dir) || { echo "SKIP: no model directory found (set OSPREY_MODELS, run make models, or provide ../shared)"; exit 77; }
IMAGES=$(osp_images_dir "$MODELS")
[ -d "$MODELS/tflite" ] || { echo "SKIP: no TFLite models in $MODELS/tflite"; exit 77; }
[ -d "$IMAGES" ] || { echo "SKIP: no sample photos in $IMAGES"; exit 77; }
PY=""
for p in "$OSP_SOURCE_DIR/.venv/bin/python"; do
  if [ -x "$p" ] && "$p" -c 'import ai_edge_litert, numpy' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no Python with ai-edge-litert (run scripts/setup-venv.sh)"; exit 77; }
# Under ASan/UBSan: every model, but 3 photos each (the integer kernels run
# ~5x slower there); Release compares all 13.
if [ -z "${OSP_LITERT_PHOTOS:-}" ] && grep -qs '^OSP_SANITIZE:BOOL=ON' "$OSP_BUILD_DIR/CMakeCache.txt"; then
  export OSP_LITERT_PHOTOS=3
fi
exec "$PY" "$OSP_SOURCE_DIR/tests/integration/tflite_vs_litert.py" "$OSP_BUILD_DIR" "$MODELS" "$IMAGES" "$@"
