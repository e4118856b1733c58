#!/usr/bin/env bash
# setup-venv.sh — the project-local Python venv (.venv) with the test oracles
# (onnxruntime for reference outputs) and onnxruntime-node under bench/ort for
# `osprey bench --compare-ort`. Idempotent; quick when already set up.
# These are oracles and peers for tests and benchmarks, never part of osprey.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=/usr/bin/python3   # Debian's Python, so python3-numpy/pil are visible
STAMP=.venv/.osprey-stamp
REQ=scripts/requirements-test.txt
if [ ! -f "$STAMP" ] || [ "$REQ" -nt "$STAMP" ]; then
  echo "setup-venv: creating .venv"
  $PY -m venv --system-site-packages .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$REQ"
  touch "$STAMP"
fi

if command -v npm >/dev/null && [ ! -d bench/ort/node_modules/onnxruntime-node ]; then
  echo "setup-venv: installing onnxruntime-node under bench/ort"
  (cd bench/ort && npm install --ignore-scripts --no-audit --no-fund --silent) || \
    echo "setup-venv: onnxruntime-node not installed; --compare-ort will be unavailable" >&2
fi
