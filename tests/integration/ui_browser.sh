#!/usr/bin/env bash
# ui_browser.sh — the web UI (docs/ui.md) in a real headless Chromium: two
# workers of the quantized MobileNetV2 and a dispatcher on loopback, a
# stand-in autoscaler /status; first the HTTP side with curl (Content-Type,
# ETag and 304, the Content-Security-Policy, X-Osprey-Backend,
# /ui/status.json after traffic), then ui_browser.py drives Chromium over
# the DevTools protocol through the pages (try-it upload, status with a
# worker killed, both API references with their try-it form). Screenshots:
# $BUILD/ui_browser/*.png.
set -uo pipefail
source "$(dirname "$0")/lib/dispatch_lib.bash"
. "$SRC/scripts/find-models.sh"

command -v chromium >/dev/null || { echo "SKIP: chromium not installed (Debian package chromium)"; exit 77; }
$PY -c 'import websockets' 2>/dev/null || { echo "SKIP: python3-websockets not installed"; exit 77; }
MODEL=$(osp_model_path tflite/mobilenet_v2_1.0_224_quant.tflite) || {
    echo "SKIP: tflite/mobilenet_v2_1.0_224_quant.tflite not found (scripts/find-models.sh)"; exit 77; }
PHOTOS=$(osp_images_dir "$(osp_models_dir)" cat.bmp) || { echo "SKIP: cat.bmp not found"; exit 77; }
PHOTO=$PHOTOS/cat.bmp
OUT=${OSPREY_BUILD_DIR:-$(dirname "$OSPREY")}/ui_browser
mkdir -p "$OUT"

# A stand-in autoscaler: its GET /status answer (docs/autoscale.md).
cat >"$TMPD/as.py" <<'PY'
import http.server, sys
BODY = (b'{"current":2,"desired":2,"panic":false,"actuator":"local","last_decision":{"current":2,'
        b'"ready":2,"desired":2,"panic":false,"held":false,"rule":"rps 2 for target 10 \\u00d7 2 ready \\u2192 2"},'
        b'"workers":[]}')
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if self.path == "/status" else 404
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY))); self.end_headers(); self.wfile.write(BODY)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_port, flush=True)
s.serve_forever()
PY
$PY "$TMPD/as.py" >"$TMPD/as.port" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 50; i++)); do [ -s "$TMPD/as.port" ] && break; sleep 0.1; done
AS_PORT=$(head -1 "$TMPD/as.port")
[ -n "$AS_PORT" ] || fail "stand-in autoscaler did not start"

for i in 0 1; do worker_start $i 0 || exit 1; done
dispatch_start --backend "127.0.0.1:${W_PORT[0]}" --backend "127.0.0.1:${W_PORT[1]}" \
    --health-interval-ms 200 --eject-base-ms 500 --autoscaler-url "http://127.0.0.1:$AS_PORT" || exit 1
wait_ready "$D_URL" 30 || fail "dispatcher not ready"
W_URL=http://127.0.0.1:${W_PORT[0]}

# --- HTTP side ---------------------------------------------------------------
curl -s -D "$TMPD/h" -o /dev/null "$D_URL/"
grep -qi '^Content-Type: text/html; charset=utf-8' "$TMPD/h" || fail "/ content type: $(cat "$TMPD/h")"
grep -qi "^Content-Security-Policy: default-src 'none'; script-src 'self'" "$TMPD/h" || fail "/ CSP"
etag=$(sed -n 's/^[Ee][Tt]ag: *\("[0-9a-f]*"\).*/\1/p' "$TMPD/h")
[ -n "$etag" ] || fail "/ has no ETag"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$D_URL/")
[ "$code" = 304 ] || fail "If-None-Match: $code (want 304)"
for a in app.css try.js status.js docs.js; do
    ct=$(curl -s -o /dev/null -w '%{content_type}' "$D_URL/ui/$a")
    case $a in *.css) want=text/css ;; *) want=text/javascript ;; esac
    [[ $ct == "$want"* ]] || fail "/ui/$a content type '$ct'"
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$D_URL/ui/nope.js")" = 404 ] || fail "unknown asset not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$W_URL/docs")" = 200 ] || fail "worker /docs"
curl -s -D "$TMPD/hc" -o "$TMPD/c" -F "file=@$PHOTO" "$D_URL/classify"
grep -Eqi "^X-Osprey-Backend: 127\.0\.0\.1:(${W_PORT[0]}|${W_PORT[1]})" "$TMPD/hc" || fail "no X-Osprey-Backend: $(cat "$TMPD/hc")"
for ((i = 0; i < 20; i++)); do curl -s -o /dev/null -F "file=@$PHOTO" "$D_URL/classify"; done
sleep 1.1 # the requests' second must be complete to count
j=$(curl -s "$D_URL/ui/status.json")
jq_get "$j" 'v["totals"]["requests_1m"] >= 21 and v["totals"]["p99_ms"] >= v["totals"]["p50_ms"] > 0 and len(v["totals"]["series"]) == 60 and len(v["backends"]) == 2 and v["autoscaler"]["status"]["desired"] == 2' |
    grep -qx True || fail "status.json: ${j:0:400}"
curl -s "$D_URL/openapi.json" | $PY -c '
import json, sys
d = json.load(sys.stdin)
assert d["info"]["title"] == "osprey dispatcher", d["info"]
for p in ("/classify", "/ui/status.json", "/v2/models/{model}/infer", "/"):
    assert p in d["paths"], p
assert "/v2/repository/models/{model}/load" not in d["paths"]
assert "X-Osprey-Backend" in d["paths"]["/classify"]["post"]["responses"]["200"]["headers"]
' || fail "dispatcher openapi.json"

# --- the browser ---------------------------------------------------------------
timeout 150 $PY "$(dirname "$0")/ui_browser.py" "$D_URL" "$W_URL" "$PHOTO" "Egyptian cat" "${W_PID[1]}" "$OUT" ||
    fail "browser checks"
echo "screenshots: $OUT"
echo "ui_browser: ok"
