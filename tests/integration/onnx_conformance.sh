#!/usr/bin/env bash
# ONNX backend node tests (Debian libonnx-testdata) through osprey's engine.
# Every test of a supported op/attribute must pass; unsupported ones are
# listed as skips with their reason. MIN_PASS guards against a regression
# that would make supported tests "unsupported".
set -u
DATA=/usr/share/libonnx-testdata/data/node
TOOL="$OSP_BUILD_DIR/tests/onnx_conformance"
if [ ! -d "$DATA" ]; then
  echo "SKIP: $DATA not found (install Debian package libonnx-testdata)"
  exit 77
fi
exec "$TOOL" --data "$DATA" --min-pass "${OSP_CONFORMANCE_MIN_PASS:-170}"
