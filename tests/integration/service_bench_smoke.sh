#!/usr/bin/env bash
# service_bench_smoke.sh — a few seconds of bench/service.sh (--quick
# --osprey-only, MobileNetV2 fp32, one search step) against the built
# `osprey serve`, driven by `osprey load`: checks that the harness starts the
# server, drives it, accounts CPU and writes a well-formed result JSON. The
# real benchmark (with the PyTorch baseline, ~15 min) is not a test; this
# only keeps the harness from rotting. No torch needed.
# Skips (77) when `osprey load` is not built in, or models/images are absent.
# Under ASan the same short run applies; only the timings are slower, and no
# timing is asserted.
set -euo pipefail
: "${OSPREY:?OSPREY must point at the osprey binary}"
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}

# The load generator is part of the binary: a broken `osprey load` fails
# this test, it is not a reason to skip it.
if ! "$OSPREY" load --help >/dev/null 2>&1; then
  echo "FAIL: '$OSPREY load --help' exited non-zero"
  exit 1
fi
MODELS_DIR=
for d in "${OSPREY_MODELS:-}" "$SRC/../shared/models"; do
  if [ -n "$d" ] && [ -f "$d/onnx/mobilenet_v2.onnx" ]; then MODELS_DIR=$d; break; fi
done
if [ -z "$MODELS_DIR" ]; then
  echo "SKIP: no onnx/mobilenet_v2.onnx in \$OSPREY_MODELS or $SRC/../shared/models"
  exit 77
fi
IMAGES=${OSPREY_IMAGES:-$SRC/../shared/images/imagenet-samples}
if [ ! -d "$IMAGES" ]; then
  echo "SKIP: no image corpus (\$OSPREY_IMAGES or $IMAGES)"
  exit 77
fi

TMP=$(mktemp -d /tmp/osp_svcbench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
OSPREY_MODELS=$MODELS_DIR OSPREY_IMAGES=$IMAGES \
  "$SRC/bench/service.sh" --quick --osprey-only --models mobilenet_v2 \
  --precisions fp32 --steps 1 --step-s 2 --fixed-s 2 --probe-s 1 --warmup-s 1 \
  --port-base 0 --cpus "$(taskset -pc $$ | sed 's/.*: //')" \
  --out "$TMP/result.json" --log-dir "$TMP/logs" >"$TMP/stdout" 2>"$TMP/stderr" || {
    echo "FAIL: bench/service.sh exited non-zero"; cat "$TMP/stderr" "$TMP/stdout"
    cat "$TMP"/logs/* 2>/dev/null | tail -20; exit 1; }
cat "$TMP/stdout"

/usr/bin/python3 - "$TMP/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def check(cond, what):
    if not cond:
        print("FAIL:", what); sys.exit(1)
check(r["kind"] == "service" and "osprey" in r["driver"], "driver is osprey load")
check(len(r["loadavg_before"]) == 3 and len(r["loadavg_after"]) == 3, "load averages")
m = r["models"]["mobilenet_v2"]
check(len(m["systems"]) == 1, "one system (osprey fp32)")
s = m["systems"][0]
check("error" not in s, f"no error: {s.get('error')}")
check(s["system"] == "osprey" and s["precision"] == "fp32", "osprey fp32 row")
check(s["ready_s"] is not None and s["peak_rss_mb"] > 0, "ready time and RSS")
check(s["probe"]["completed"] > 0, "closed-loop probe completed requests")
check(len(s["steps"]) == 1 and s["steps"][0]["completed"] > 0, "one search step ran")
for row in [s["probe"]] + s["steps"] + s["fixed"]:
    check(row["cpu_s"] > 0 and row["cpu_s_per_req"] > 0, f"CPU accounted: {row}")
    check(row["p50_ms"] is not None and row["p99_ms"] >= row["p50_ms"], f"percentiles: {row}")
check(len(s["fixed"]) == 1 and s["fixed"][0]["completed"] > 0, "fixed-rate run")
check(s["fixed"][0]["errors"] == 0, f"no errors at the fixed (low) rate: {s['fixed'][0]}")
check(s["exit_code"] == 0, f"osprey serve exited {s['exit_code']} after SIGTERM (drain, sanitizers)")
print("OK: service bench smoke,", s["fixed"][0]["rps"], "req/s at",
      s["fixed"][0]["rate"], "req/s offered")
PY
