#!/usr/bin/env bash
# Per-op TFLite tests: single-operator models written by our own FlatBuffer
# writer (tests/integration/tflite_ops.py), LiteRT's builtin kernels as the
# oracle, osprey's exact and default int8 paths within ±1 step. Needs a
# Python with ai-edge-litert (the project venv, scripts/setup-venv.sh); no model
# files or photos. Arguments (e.g. --max-isa avx2) go to osp_run_model.
set -u
PY=""
for p in "$OSP_SOURCE_DIR/.venv/bin/python"; do
  if [ -x "$p" ] && "$p" -c 'import ai_edge_litert, numpy' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "SKIP: no Python with ai-edge-litert (run scripts/setup-venv.sh)"; exit 77; }
exec "$PY" "$OSP_SOURCE_DIR/tests/integration/tflite_ops.py" "$OSP_BUILD_DIR" "$@"
