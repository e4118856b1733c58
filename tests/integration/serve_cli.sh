#!/usr/bin/env bash
# serve_cli.sh — `osprey serve` command line: --help, errors for unknown
# options / bad values / unknown config keys (exit 2, no server), and the
# precedence flags > OSPREY_* environment > --config file > defaults, seen in
# the "model ready" log line (max_batch) and the bound port. Skips when no
# ONNX model is found.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"

# (captured first: grep -q leaving early would break the pipe under pipefail)
help=$("$OSPREY" serve --help) || { echo "--help failed"; exit 1; }
for f in --model --labels --model-repository --port --host --threads --max-body-bytes \
         --max-pixels --max-batch --max-queue-delay-us --max-queue-size --drain-timeout --config --debug-delay-ms; do
    grep -q -- "$f " <<<"$help" || { echo "--help lacks $f"; exit 1; }
done
expect_fail() { # expected exit code, then args
    local want=$1; shift
    timeout 30 "$@" >/dev/null 2>&1; local rc=$?
    [ $rc -eq "$want" ] || { echo "expected exit $want, got $rc: $*"; exit 1; }
}
expect_fail 2 "$OSPREY" serve --no-such-flag
expect_fail 2 "$OSPREY" serve --port
expect_fail 2 "$OSPREY" serve --model x.onnx --port abc
expect_fail 2 "$OSPREY" serve                       # no model
expect_fail 2 env OSPREY_MAX_BATCH=-3 "$OSPREY" serve --model x.onnx
CFG=$(mktemp /tmp/osp_serve_cfg.XXXXXX)
echo '{"max_batch": 4, "no_such_key": 1}' >"$CFG"
expect_fail 2 "$OSPREY" serve --config "$CFG" --model x.onnx
echo '{"max_batch": ' >"$CFG"
expect_fail 2 "$OSPREY" serve --config "$CFG" --model x.onnx
expect_fail 2 "$OSPREY" serve --config /nonexistent.json --model x.onnx
expect_fail 1 "$OSPREY" serve --model /nonexistent/model.onnx --port 0 --host 127.0.0.1

MODEL=$(serve_find_model) || { rm -f "$CFG"; echo "SKIP (after the argument checks passed): no ONNX model in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
max_batch_logged() { sed -n 's/.*"msg":"model ready".*"max_batch":\([0-9]*\).*/\1/p' "$SERVE_LOG" | head -1; }
check() { # expected max_batch, then env assignments / args
    local want=$1; shift
    SERVE_PORT=
    serve_start "$@" || exit 1
    local got; got=$(max_batch_logged)
    serve_stop || { echo "serve did not exit 0"; exit 1; }
    [ "$got" = "$want" ] || { echo "max_batch $got, expected $want for: $*"; exit 1; }
}
printf '{"max_batch": 4, "model": "%s", "threads": 1}\n' "$MODEL" >"$CFG"
check 4 --config "$CFG"                                  # file
export OSPREY_MAX_BATCH=2
check 2 --config "$CFG"                                  # env beats file
check 3 --config "$CFG" --max-batch 3                    # flag beats env
check 5 --config "$CFG" --max-batch=5                    # --flag=value form
unset OSPREY_MAX_BATCH
OSPREY_CONFIG="$CFG" check 4                             # file named by env
rm -f "$CFG"

# Preferred batch sizes: with 4 preferred (max 8) and 16 clients, no batch
# is larger than 4; a malformed list fails the load (exit 1).
expect_fail 1 "$OSPREY" serve --model "$MODEL" --host 127.0.0.1 --port 0 --preferred-batch-sizes 4,x
serve_start --model "$MODEL" --threads 2 --max-batch 8 --preferred-batch-sizes 4 \
            --max-queue-delay-us 20000 || exit 1
timeout 300 "$PY" - "$SERVE_PORT" "$SRC/scripts/samples/gradient.jpg" <<'PYEOF' || exit 1
import concurrent.futures as cf, sys, urllib.request
port, img = sys.argv[1], open(sys.argv[2], "rb").read()
def one(_):
    r = urllib.request.Request(f"http://127.0.0.1:{port}/classify", data=img,
                               headers={"Content-Type": "image/jpeg"})
    return urllib.request.urlopen(r, timeout=120).status
with cf.ThreadPoolExecutor(16) as ex:
    assert set(ex.map(one, range(48))) == {200}
m = {}
for line in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode().splitlines():
    if line.startswith("osprey_batch_size"):
        k, v = line.rsplit(" ", 1)
        m[k] = float(v)
name = [k for k in m if k.startswith("osprey_batch_size_count")][0]
model = name[name.index("{"):]
le4 = m["osprey_batch_size_bucket" + model[:-1] + ',le="4"}']
assert le4 == m[name] and m["osprey_batch_size_sum" + model] == 48, m
print(f"preferred sizes: ok ({int(m[name])} batches, none above 4)")
PYEOF
serve_stop || exit 1

# --debug-delay-ms (from the environment here): inference answers take at
# least the delay, health checks do not.
OSPREY_DEBUG_DELAY_MS=400 serve_start --model "$MODEL" --threads 1 || exit 1
grep -q '"debug_delay_ms":400' "$SERVE_LOG" || { echo "debug delay not logged"; exit 1; }
t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H 'Content-Type: image/jpeg' \
      --data-binary @"$SRC/scripts/samples/gradient.jpg" "http://127.0.0.1:$SERVE_PORT/classify")
h=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$SERVE_PORT/v2/health/ready")
serve_stop || exit 1
awk -v t="$t" -v h="$h" 'BEGIN { split(t, a, " "); exit !(a[1] == 200 && a[2] >= 0.4 && h < 0.4) }' ||
    { echo "debug delay: classify '$t', health $h"; exit 1; }
echo "debug delay: ok (classify $t s, health $h s)"
echo "serve_cli: ok"
