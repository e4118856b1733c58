#!/usr/bin/env bash
# dispatch_basic.sh — `osprey dispatch` in front of three real workers:
# health endpoints, proxying of /classify, /v1/models/{m}/classify and /v2
# (query string, X-Request-Id propagated to the worker and back, V2
# metadata, V2 infer in JSON and with binary output), 404 for a model no backend serves, 413 over the body limit,
# load spread over all three, the metric names of issue 6, the admin API
# (add, list, remove), and with every backend killed: 503 in < 100 ms.
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

for i in 0 1 2; do worker_start $i 0 || exit 1; done
B0=127.0.0.1:${W_PORT[0]} B1=127.0.0.1:${W_PORT[1]} B2=127.0.0.1:${W_PORT[2]}
dispatch_start --backend "$B0" --backend "$B1" --backend "$B2" \
    --health-interval-ms 200 --max-body-bytes 2000000 || exit 1
wait_ready "$D_URL" 30 || fail "dispatcher not ready"

[ "$(curl -s "$D_URL/v2/health/live")" = '{"live":true}' ] || fail "live"
curl -s "$D_URL/v2/repository/index" | grep -q "\"name\":\"$MODEL_NAME\"" || fail "index"

# /classify with a query string and a request id.
out=$(curl -s -D "$TMPD/h" -H 'X-Request-Id: dispatch-test-42' -F "file=@$IMG" "$D_URL/classify?top_k=2")
n=$(jq_get "$out" 'len(v["results"][0]["predictions"])') || fail "classify: $out"
[ "$n" = 2 ] || fail "top_k not forwarded: $out"
grep -qi '^X-Request-Id: dispatch-test-42' "$TMPD/h" || fail "request id not echoed"
grep -q 'dispatch-test-42' "$TMPD"/w*.log || fail "request id not propagated to the worker"
# A generated id also reaches the worker.
curl -s -D "$TMPD/h2" -o /dev/null -H 'Content-Type: image/jpeg' --data-binary "@$IMG" \
    "$D_URL/v1/models/$MODEL_NAME/classify"
gid=$(sed -n 's/^[Xx]-[Rr]equest-[Ii]d: *\([^\r]*\).*/\1/p' "$TMPD/h2")
[ -n "$gid" ] && grep -q "$gid" "$TMPD"/w*.log || fail "generated request id '$gid' not at the worker"
code=$(curl -s -o "$TMPD/o" -w '%{http_code}' "$D_URL/v2/models/$MODEL_NAME")
[ "$code" = 200 ] && grep -q "\"name\":\"$MODEL_NAME\"" "$TMPD/o" || fail "v2 metadata $code"
# KServe V2 infer through the proxy: JSON with a base64 image, and the
# binary output extension (the worker's Inference-Header-Content-Length
# must come back with the body unchanged).
B64=$(base64 -w0 "$IMG")
printf '{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["%s"]}]}' "$B64" >"$TMPD/v2.json"
out=$(curl -s -H 'Content-Type: application/json' --data-binary "@$TMPD/v2.json" "$D_URL/v2/models/$MODEL_NAME/infer")
[ "$(jq_get "$out" 'v["outputs"][0]["shape"]')" = "[1, 1001]" ] || fail "v2 infer: ${out:0:200}"
printf '{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["%s"]}],"parameters":{"binary_data_output":true}}' "$B64" >"$TMPD/v2b.json"
curl -s -D "$TMPD/hb" -o "$TMPD/ob" -H 'Content-Type: application/json' --data-binary "@$TMPD/v2b.json" \
    "$D_URL/v2/models/$MODEL_NAME/infer"
ihcl=$(sed -n 's/^[Ii]nference-[Hh]eader-[Cc]ontent-[Ll]ength: *\([0-9]*\).*/\1/p' "$TMPD/hb")
size=$(stat -c %s "$TMPD/ob")
[ -n "$ihcl" ] && [ "$size" = $((ihcl + 1001 * 4)) ] || fail "v2 binary output: header '$ihcl', body $size bytes"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: image/jpeg' --data-binary "@$IMG" \
    "$D_URL/v1/models/no_such_model/classify")
[ "$code" = 404 ] || fail "unknown model: $code (want 404)"
head -c 3000000 /dev/zero >"$TMPD/big"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: image/jpeg' --data-binary "@$TMPD/big" \
    "$D_URL/classify")
[ "$code" = 413 ] || fail "body limit: $code (want 413)"
# A worker's 4xx comes back unchanged (not retried).
code=$(curl -s -o "$TMPD/o" -w '%{http_code}' -H 'Content-Type: image/jpeg' --data-binary "not an image" \
    "$D_URL/classify")
[ "$code" = 415 ] || [ "$code" = 400 ] || fail "worker 4xx not forwarded: $code"

# Load spreads over the three workers.
N=150; [ "$ASAN" = 1 ] && N=45
r=$($CLIENT --url "$D_URL" --path "/v1/models/$MODEL_NAME/classify" --file "$IMG" --concurrency 6 --requests $N)
echo "load: $r"
[ "$(jq_get "$r" 'v["errors"]')" = 0 ] || fail "client errors: $r"
for b in "$B0" "$B1" "$B2"; do
    s=$(sent_to "$b")
    echo "sent to $b: $s"
    [ "$s" -ge $((N / 7)) ] || fail "backend $b got only $s of $N"
done

# Metric names (issue 6 contract).
m=$(curl -s "$D_URL/metrics")
for name in "osprey_dispatch_requests_total{model=\"$MODEL_NAME\",code=\"200\"}" \
            "osprey_dispatch_request_duration_seconds_count" \
            "osprey_dispatch_queue_depth{model=\"$MODEL_NAME\"}" \
            "osprey_dispatch_inflight{backend=\"$B0\"}" \
            "osprey_dispatch_backends{model=\"$MODEL_NAME\",state=\"ready\"}" \
            "osprey_dispatch_retries_total" "osprey_dispatch_ejections_total" \
            "process_cpu_seconds_total"; do
    grep -qF "$name " <<<"$m" || fail "metric $name missing"
done
[ "$(metric "osprey_dispatch_backends{model=\"$MODEL_NAME\",state=\"ready\"}")" = 3 ] || fail "backends gauge"
ok=$(metric "osprey_dispatch_requests_total{model=\"$MODEL_NAME\",code=\"200\"}")
[ "${ok%.*}" -ge "$N" ] || fail "requests_total $ok < $N"

# Admin API: add a fourth (same worker under another name is not possible,
# so add a dead address), list, remove; bad input → 400; static → 404.
A=http://127.0.0.1:$D_ADMIN/admin/backends
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"address":"127.0.0.1:1"}' "$A")
[ "$code" = 200 ] || fail "admin add $code"
[ "$(state_of 127.0.0.1:1)" != absent ] || fail "admin add not listed"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{"address":"nonsense"}' "$A")
[ "$code" = 400 ] || fail "admin bad address $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$A/$B0")
[ "$code" = 404 ] || fail "admin removed a static backend: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$A/127.0.0.1:1")
[ "$code" = 200 ] && [ "$(state_of 127.0.0.1:1)" = absent ] || fail "admin delete $code"
# The admin API is not on the public port.
code=$(curl -s -o /dev/null -w '%{http_code}' "$D_URL/admin/backends")
[ "$code" = 404 ] || fail "admin reachable on the public port: $code"

# Every backend down: 503 at once, before and after the health checks
# notice.
for i in 0 1 2; do kill -KILL "${W_PID[$i]}"; wait "${W_PID[$i]}" 2>/dev/null; done
for when in now later; do
    [ $when = later ] && sleep 1
    t=$(curl -s -o "$TMPD/o" -w '%{http_code} %{time_total}' -H 'Content-Type: image/jpeg' \
        --data-binary "@$IMG" "$D_URL/classify")
    echo "all down ($when): $t $(cat "$TMPD/o")"
    [ "${t%% *}" = 503 ] || fail "all down: ${t%% *} (want 503)"
    $PY -c "import sys; sys.exit(0 if float('${t##* }') < 0.1 else 1)" || fail "503 took ${t##* } s"
done
code=$(curl -s -o /dev/null -w '%{http_code}' "$D_URL/v2/health/ready")
[ "$code" = 503 ] || fail "ready with no backend: $code"

kill -TERM "$D_PID"; wait "$D_PID"; rc=$?
[ $rc = 0 ] || fail "dispatcher exit $rc after SIGTERM"
echo "PASS"
