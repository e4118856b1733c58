#!/usr/bin/env bash
# load_serve.sh — `osprey load` against a real `osprey serve` (the small
# quantized MobileNet v1 0.25/128): short open-loop runs on every target
# whose --json summary must agree with the server's own /metrics
# (osprey_requests_total grows by exactly `completed`, per status code), the
# --out files, 4xx accounting with --max-error-rate (exit 3), and the
# command line (usage errors exit 2). Then misbehaving servers (refused
# connections, a server that never answers, one that closes at once, one
# that sends garbage): every request ends in the right error class and the
# run ends on time. Skips the serve part when the model is absent.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"
TMP=$(mktemp -d /tmp/osp_load_test.XXXXXX)
HELPER_PID=
cleanup_all() {
    [ -n "$HELPER_PID" ] && kill "$HELPER_PID" 2>/dev/null && wait "$HELPER_PID" 2>/dev/null
    rm -rf "$TMP"
    serve_cleanup
}
trap cleanup_all EXIT
fail() { echo "FAIL: $*"; exit 1; }
SAMPLES="$SRC/scripts/samples"

# ---- command line ---------------------------------------------------------
"$OSPREY" load --help >"$TMP/help" || fail "--help"
for f in --url --mode --rate --duration --arrival --profile --ramp --trace \
         --concurrency --think-ms --target --model --images --order \
         --connections --timeout-ms --out --json --max-error-rate --header \
         --warmup; do
    grep -q -- "$f " "$TMP/help" || fail "--help lacks $f"
done
expect_rc() { # expected exit code, then args
    local want=$1; shift
    timeout 30 "$OSPREY" load "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
    [ $rc -eq "$want" ] || { cat "$TMP/err"; fail "expected exit $want, got $rc: $*"; }
}
U=http://127.0.0.1:9
expect_rc 2 --no-such-flag
expect_rc 2 --rate 10                                   # no --url
expect_rc 2 --url $U --images "$SAMPLES"                # no rate
expect_rc 2 --url $U --rate abc --images "$SAMPLES"
expect_rc 2 --url $U --rate 10 --profile 10:1s --images "$SAMPLES"
expect_rc 2 --url $U --profile 10:1s,x --images "$SAMPLES"
grep -q "step 2" "$TMP/err" || fail "profile error does not name the step"
expect_rc 2 --url $U --ramp 1:2 --images "$SAMPLES"
expect_rc 2 --url $U --trace /nonexistent/trace --images "$SAMPLES"
printf '5\n\n3\n' >"$TMP/trace"
expect_rc 2 --url $U --trace "$TMP/trace" --images "$SAMPLES"
grep -q "trace:2: empty line" "$TMP/err" || fail "trace error lacks the line"
expect_rc 2 --url $U --mode closed --rate 5 --images "$SAMPLES"
expect_rc 2 --url $U --mode sideways --rate 5 --images "$SAMPLES"
expect_rc 2 --url $U --rate 5 --target v2-json --images "$SAMPLES"   # no model
expect_rc 2 --url ftp://x --rate 5 --images "$SAMPLES"
expect_rc 2 --url http://127.0.0.1:99999 --rate 5 --images "$SAMPLES"
expect_rc 2 --url https://127.0.0.1 --rate 5 --images "$SAMPLES"
expect_rc 2 --url $U --rate 5 --max-error-rate 2 --images "$SAMPLES"
expect_rc 1 --url $U --rate 5 --images /nonexistent/images
expect_rc 2 --url $U --rate 5                           # images needed

# ---- misbehaving servers (loopback only) ----------------------------------
# Refused: port 9 on loopback has no listener here (checked first).
if ! (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; then
    expect_rc 0 --url $U --rate 50 --duration 1 --images "$SAMPLES" --json
    "$PY" - "$TMP/out" <<'PYEOF' || fail "refused: wrong accounting"
import json, sys
s = json.loads(open(sys.argv[1]).readline())
assert s["sent"] == 50 and s["completed"] == 0, s
assert s["errors_by_class"]["connect"] == 50 and s["errors"] == 50, s
PYEOF
    expect_rc 3 --url $U --rate 20 --duration 1 --images "$SAMPLES" --max-error-rate 0.5
fi
# A misbehaving server; its mode applies to every connection: silent,
# close (at once), garbage, oneshot (one answer then close), partial (body
# cut short), needheader (200 only with the --header under test, else 400),
# chunked (well-formed chunked keep-alive answers).
cat >"$TMP/bad.py" <<'PYEOF'
import socket, sys, threading, time
mode = sys.argv[1]
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(512)
print(ls.getsockname()[1], flush=True)
def serve(c):
    try:
        if mode == "close":
            c.recv(65536); c.close(); return
        if mode == "garbage":
            c.recv(65536); c.sendall(b"HTCPCP/1.0 418 teapot\r\n\r\n"); time.sleep(1); c.close(); return
        if mode == "oneshot":  # keep-alive by HTTP/1.1 default, then closes
            c.recv(65536); c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); c.close(); return
        if mode == "partial":  # promises 100 bytes, sends 10, closes
            c.recv(65536); c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789"); c.close(); return
        if mode == "needheader":  # 200 only with the --header under test
            while True:
                req = c.recv(65536)
                if not req: break
                ok = b"\r\nX-Osprey-Test: yes\r\n" in req
                c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n" % (200 if ok else 400))
            return
        if mode == "chunked":
            while True:
                if not c.recv(65536): break
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n")
            return
        time.sleep(30)  # silent
    except OSError:
        pass
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PYEOF
bad_server() {
    [ -n "$HELPER_PID" ] && { kill "$HELPER_PID" 2>/dev/null; wait "$HELPER_PID" 2>/dev/null; }
    rm -f "$TMP/port"
    "$PY" "$TMP/bad.py" "$1" >"$TMP/port" & HELPER_PID=$!
    local i; for ((i = 0; i < 50; i++)); do grep -q . "$TMP/port" 2>/dev/null && break; sleep 0.1; done
    BAD_PORT=$(head -1 "$TMP/port")
    [ -n "$BAD_PORT" ] || fail "helper server did not start"
}
check_class() { # class, expected count
    "$PY" - "$TMP/out" "$1" "$2" <<'PYEOF' || { cat "$TMP/out" "$TMP/err"; fail "class $1"; }
import json, sys
s = json.loads(open(sys.argv[1]).readline())
cls, want = sys.argv[2], int(sys.argv[3])
got = s["errors_by_class"][cls] if cls != "ok" else s["ok"]
assert got == want, (cls, got, want, s)
PYEOF
}
bad_server silent
start=$(date +%s)
expect_rc 0 --url http://127.0.0.1:$BAD_PORT --rate 20 --duration 1 --timeout-ms 500 --images "$SAMPLES" --json
[ $(( $(date +%s) - start )) -le 5 ] || fail "timeouts did not end the run promptly"
check_class timeout 20
bad_server close
expect_rc 0 --url http://127.0.0.1:$BAD_PORT --rate 20 --duration 1 --images "$SAMPLES" --json
check_class read 20
bad_server garbage
expect_rc 0 --url http://127.0.0.1:$BAD_PORT --rate 20 --duration 1 --images "$SAMPLES" --json
check_class parse 20
bad_server chunked
expect_rc 0 --url http://127.0.0.1:$BAD_PORT --mode closed --concurrency 4 --duration 1 --target get --json
"$PY" - "$TMP/out" <<'PYEOF' || fail "chunked keep-alive run"
import json, sys
s = json.loads(open(sys.argv[1]).readline())
assert s["completed"] > 20 and s["errors"] == 0 and s["ok"] == s["completed"], s
PYEOF
# Closing after every answer although keep-alive was implied: reused
# connections fail before any byte and are retried on fresh ones.
bad_server oneshot
expect_rc 0 --url http://127.0.0.1:$BAD_PORT --mode closed --concurrency 4 --duration 1 --target get --json
"$PY" - "$TMP/out" <<'PYEOF' || fail "oneshot run"
import json, sys
s = json.loads(open(sys.argv[1]).readline())
assert s["completed"] > 10 and s["errors"] == 0 and s["ok"] == s["completed"], s
PYEOF
bad_server needheader
expect_rc 0 --url http://127.0.0.1:$BAD_PORT --rate 20 --duration 1 --target get --header 'X-Osprey-Test: yes' --json
check_class ok 20
expect_rc 2 --url http://127.0.0.1:$BAD_PORT --rate 20 --duration 1 --target get --header $'X-Bad: a\r\nInjected: 1'
bad_server partial
expect_rc 0 --url http://127.0.0.1:$BAD_PORT --rate 20 --duration 1 --images "$SAMPLES" --json
check_class read 20
kill "$HELPER_PID" 2>/dev/null; wait "$HELPER_PID" 2>/dev/null; HELPER_PID=

# ---- against osprey serve -------------------------------------------------
MODEL=
for d in "${OSPREY_MODELS:-}" "$SRC/../shared/models"; do
    [ -n "$d" ] && [ -f "$d/tflite/mobilenet_v1_0.25_128_quant.tflite" ] && {
        MODEL="$d/tflite/mobilenet_v1_0.25_128_quant.tflite"; break; }
done
[ -n "$MODEL" ] || { echo "SKIP (after the CLI and error-class checks passed): tflite/mobilenet_v1_0.25_128_quant.tflite not in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
NAME=mobilenet_v1_0.25_128_quant
serve_start --model "$MODEL" --threads 2 || exit 1
URL=http://127.0.0.1:$SERVE_PORT
# Sums osprey_requests_total by code into a JSON object.
scrape() {
    curl -s --max-time 10 "$URL/metrics" | "$PY" -c '
import json, re, sys
c = {}
for line in sys.stdin:
    m = re.match(r"osprey_requests_total\{.*code=\"(\d+)\".*\} (\S+)", line)
    if m: c[m.group(1)] = c.get(m.group(1), 0) + int(float(m.group(2)))
print(json.dumps(c))'
}
# run_and_check EXPECTED_RC ARGS... — runs, then compares with /metrics.
run_and_check() {
    local want=$1; shift
    local before; before=$(scrape)
    timeout 120 "$OSPREY" load --url "$URL" --json "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    [ $rc -eq "$want" ] || { cat "$TMP/err"; fail "exit $rc (want $want): $*"; }
    local after; after=$(scrape)
    "$PY" - "$TMP/out" "$before" "$after" <<'PYEOF' || { cat "$TMP/err"; fail "summary vs /metrics: $*"; }
import json, sys
s = json.loads(open(sys.argv[1]).readline())
b, a = json.loads(sys.argv[2]), json.loads(sys.argv[3])
delta = {k: a[k] - b.get(k, 0) for k in a if a[k] - b.get(k, 0)}
for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms",
          "errors", "sent", "completed", "duration_s", "errors_by_class"):
    assert k in s, ("missing", k)
assert s["sent"] == s["scheduled"], s
assert s["completed"] == sum(delta.values()), (s, delta)
assert s["status_codes"] == delta, (s["status_codes"], delta)
c4 = sum(v for k, v in delta.items() if k.startswith("4"))
c5 = sum(v for k, v in delta.items() if k.startswith("5"))
assert s["errors_by_class"]["4xx"] == c4 and s["errors_by_class"]["5xx"] == c5, s
assert s["p50_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["p999_ms"] <= s["max_ms"], s
print("ok:", " ".join(f"{k}={s[k]}" for k in ("sent", "completed", "errors", "rps", "p50_ms", "p99_ms")), delta)
PYEOF
}
# Warm-up request, then the targets. Rates stay far below what the model
# sustains on 2 CPUs, also under ASan.
curl -s -o /dev/null --max-time 60 -F "file=@$SAMPLES/gradient.jpg" "$URL/classify"
run_and_check 0 --rate 20 --duration 3s --images "$SAMPLES" --out "$TMP/run1"
run_and_check 0 --rate 10 --duration 2s --images "$SAMPLES" --target raw --model "$NAME" --arrival poisson --order random
run_and_check 0 --rate 10 --duration 2s --images "$SAMPLES" --target v2-json --model "$NAME"
run_and_check 0 --profile 5:1s,15:1s --images "$SAMPLES" --target v2-binary --model "$NAME"
run_and_check 0 --mode closed --concurrency 2 --think-ms 50 --duration 2s --images "$SAMPLES/gradient.jpg"
# 4xx: a text file is not an image (415); an unknown model is 404.
echo "not an image" >"$TMP/notimage.txt"
run_and_check 3 --rate 10 --duration 1s --images "$TMP/notimage.txt" --target raw --max-error-rate 0.5
"$PY" -c 'import json,sys; s=json.loads(open(sys.argv[1]).readline()); assert s["errors_by_class"]["415"]==s["completed"]==10, s' "$TMP/out" || fail "415 class"
run_and_check 0 --rate 10 --duration 1s --images "$SAMPLES" --model no_such_model
"$PY" -c 'import json,sys; s=json.loads(open(sys.argv[1]).readline()); assert s["errors_by_class"]["404"]==10, s' "$TMP/out" || fail "404 class"

# Admitted and refused apart, and the warm-up left out: a corpus of an
# image and a truncated JPEG (a 4xx) at 20/s for 3 s, the first second a
# warm-up. The server answers all 60; the summary counts the 40 due after
# the warm-up, the series all 60, and keeps < 400 and >= 400 apart.
mkdir -p "$TMP/mixed"
cp "$SAMPLES/gradient.jpg" "$TMP/mixed/a.jpg"
head -c 300 "$SAMPLES/gradient.jpg" >"$TMP/mixed/b.jpg"
before=$(scrape)
timeout 120 "$OSPREY" load --url "$URL" --json --rate 20 --duration 3s \
    --warmup 1s --images "$TMP/mixed" --target raw --out "$TMP/mixed_out" \
    >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err"; fail "mixed run"; }
after=$(scrape)
"$PY" - "$TMP/out" "$before" "$after" "$TMP/mixed_out" <<'PYEOF' || { cat "$TMP/err"; fail "warm-up / ok-error split"; }
import json, sys
s = json.loads(open(sys.argv[1]).readline())
b, a = json.loads(sys.argv[2]), json.loads(sys.argv[3])
served = sum(a[k] - b.get(k, 0) for k in a)
rows = json.load(open(sys.argv[4] + "/timeseries.json"))
assert served == 60 and sum(r["completed"] for r in rows) == 60, (served, rows)
assert s["warmup_s"] == 1 and s["sent"] == 40 == s["completed"], s
assert 0 < s["errors"] < s["completed"] and s["ok"] + s["errors"] == 40, s
assert s["errors_by_class"]["4xx"] == s["errors"], s
for k in ("ok", "error"):
    v = [s[f"{k}_p50_ms"], s[f"{k}_p90_ms"], s[f"{k}_p99_ms"], s[f"{k}_max_ms"]]
    assert 0 < v[0] <= v[1] <= v[2] <= v[3] <= s["max_ms"], (k, v, s)
assert s["min_ms"] <= min(s["ok_p50_ms"], s["error_p50_ms"]), s
assert max(s["ok_max_ms"], s["error_max_ms"]) == s["max_ms"], s
print("ok: warm-up and split", {k: s[k] for k in ("sent", "ok", "errors", "ok_p99_ms", "error_p99_ms")})
PYEOF
expect_rc 2 --url "$URL" --rate 10 --duration 2s --warmup 2s --images "$SAMPLES"
expect_rc 2 --url "$URL" --mode closed --duration 2s --warmup 3s --images "$SAMPLES"
expect_rc 2 --url "$URL" --rate 10 --duration 2s --warmup abc --images "$SAMPLES"

# The --out files of the first run.
for f in timeseries.csv timeseries.json summary.json latency.csv; do
    [ -s "$TMP/run1/$f" ] || fail "--out lacks $f"
done
"$PY" - "$TMP/run1" <<'PYEOF' || fail "--out contents"
import csv, json, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/timeseries.csv")))
assert rows[0].keys() >= {"second", "target", "sent", "completed", "errors",
                          "p50_ms", "p99_ms", "inflight"}, rows[0].keys()
s = json.load(open(d + "/summary.json"))
assert sum(int(r["sent"]) for r in rows) == s["sent"] == 60, (rows, s)
assert sum(int(r["completed"]) for r in rows) == s["completed"], rows
assert abs(sum(float(r["target"]) for r in rows) - 60) < 1e-6, rows
assert len(json.load(open(d + "/timeseries.json"))) == len(rows)
PYEOF
serve_stop || fail "serve did not exit 0"
echo "load_serve: ok"
