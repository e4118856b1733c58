#!/usr/bin/env bash
# serve_tritonclient.sh — the official tritonclient[http] against `osprey
# serve` (serve_tritonclient.py). tritonclient comes from the project venv
# (scripts/setup-venv.sh installs scripts/requirements-test.txt), or from
# $OSP_TRITON_PYTHON; skips when neither has it or no model is found.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"

TPY=
for p in "${OSP_TRITON_PYTHON:-}" "$SRC/.venv/bin/python"; do
    [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import tritonclient.http' 2>/dev/null && { TPY=$p; break; }
done
[ -n "$TPY" ] || { echo "SKIP: tritonclient[http] not installed (run scripts/setup-venv.sh, or set OSP_TRITON_PYTHON)"; exit 77; }
MODEL=$(serve_find_model) || { echo "SKIP: no ONNX model (mobilenet_v2/squeezenet1_1) in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
NAME=$(basename "$MODEL" .onnx)

serve_start --model "$MODEL" --threads 2 || exit 1
timeout 600 "$TPY" "$(dirname "$0")/serve_tritonclient.py" "$SERVE_PORT" "$NAME" "$SRC/scripts/samples/gradient.jpg" || {
    echo "--- server log"; tail -30 "$SERVE_LOG"; exit 1; }
serve_stop || { echo "serve did not exit 0 on SIGTERM"; exit 1; }
echo "serve_tritonclient: ok"
