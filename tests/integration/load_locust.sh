#!/usr/bin/env bash
# load_locust.sh — the Locust file (load-testing/locust/locustfile.py) runs
# headless for ~5 s against `osprey serve` under its step load shape, for
# the multipart and V2 binary targets: no failures, some requests, and the
# server's osprey_requests_total grew by at least Locust's count (users
# stopped mid-request at the end may still be answered, so not "equal").
# Locust comes from $OSP_LOCUST_PYTHON, the project venv
# (scripts/setup-venv.sh) or Debian's python3-locust; skips without it or
# without the small TFLite model.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"
LPY=
for p in "${OSP_LOCUST_PYTHON:-}" "$SRC/.venv/bin/python" /usr/bin/python3; do
    [ -n "$p" ] && [ -x "$p" ] && "$p" -c 'import locust' 2>/dev/null && { LPY=$p; break; }
done
[ -n "$LPY" ] || { echo "SKIP: locust not installed (scripts/setup-venv.sh, apt-get install python3-locust, or set OSP_LOCUST_PYTHON)"; exit 77; }
MODEL=
for d in "${OSPREY_MODELS:-}" "$SRC/../shared/models"; do
    [ -n "$d" ] && [ -f "$d/tflite/mobilenet_v1_0.25_128_quant.tflite" ] && {
        MODEL="$d/tflite/mobilenet_v1_0.25_128_quant.tflite"; break; }
done
[ -n "$MODEL" ] || { echo "SKIP: tflite/mobilenet_v1_0.25_128_quant.tflite not in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
TMP=$(mktemp -d /tmp/osp_locust_test.XXXXXX)
trap 'rm -rf "$TMP"; serve_cleanup' EXIT
serve_start --model "$MODEL" --threads 2 || exit 1
URL=http://127.0.0.1:$SERVE_PORT
total() {
    curl -s --max-time 10 "$URL/metrics" |
        awk '/^osprey_requests_total\{/ { s += $NF } END { printf "%d\n", s }'
}
for target in multipart v2-binary; do
    before=$(total)
    (cd "$TMP" && OSPREY_IMAGES="$SRC/scripts/samples" OSPREY_TARGET=$target \
        OSPREY_MODEL=mobilenet_v1_0.25_128_quant OSPREY_STEPS=1:2s,3:3s \
        timeout 120 "$LPY" -m locust -f "$SRC/load-testing/locust/locustfile.py" \
        --headless --host "$URL" --csv "$TMP/$target" --only-summary \
        >"$TMP/$target.log" 2>&1)
    rc=$?
    after=$(total)
    [ $rc -eq 0 ] || { tail -30 "$TMP/$target.log"; echo "FAIL: locust exit $rc ($target)"; exit 1; }
    "$PY" - "$TMP/${target}_stats.csv" "$((after - before))" "$target" <<'PYEOF' || { tail -30 "$TMP/$target.log"; exit 1; }
import csv, sys
rows = {r["Name"]: r for r in csv.DictReader(open(sys.argv[1]))}
agg = rows["Aggregated"]
n, fails, server = int(agg["Request Count"]), int(agg["Failure Count"]), int(sys.argv[2])
assert n > 5 and fails == 0, (n, fails)
assert server >= n, ("server counted fewer requests than locust", server, n)
print(f"locust {sys.argv[3]}: {n} requests, 0 failures, server counted {server}, "
      f"p50 {agg['50%']} ms, p99 {agg['99%']} ms")
PYEOF
done
serve_stop || { echo "FAIL: serve did not exit 0"; exit 1; }
echo "load_locust: ok"
