#!/usr/bin/env bash
# dispatch_k8s.sh — EndpointSlice discovery against an in-test API server
# (k8s_api_server.py: real-API-shaped LIST, chunked WATCH stream, ERROR 410)
# with the token path and API URL overridden: the first LIST finds one
# worker; a slice whose endpoint is not ready adds nothing; it turning ready
# (a watch event) adds the second worker, which then serves requests;
# a DELETED slice removes the first; an expiry (410 Gone, with a change the
# watch never announced) makes the dispatcher relist and see the change;
# every watch resumes from a resourceVersion; the bearer token is sent.
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

worker_start 0 0 || exit 1
worker_start 1 0 || exit 1
B0=127.0.0.1:${W_PORT[0]} B1=127.0.0.1:${W_PORT[1]}
TOKEN=test-token-$RANDOM
echo "$TOKEN" >"$TMPD/token"
$PY "$SRC/tests/integration/lib/k8s_api_server.py" ns1 svc "$TOKEN" >"$TMPD/k8s.out" 2>"$TMPD/k8s.err" &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
    KP=$(sed -n 's/^PORT //p' "$TMPD/k8s.out"); [ -n "$KP" ] && break; sleep 0.1
done
[ -n "$KP" ] || { cat "$TMPD/k8s.err"; fail "k8s stand-in did not start"; }
K=http://127.0.0.1:$KP
ctl() { curl -s -X POST -d "$2" "$K/ctl/$1" >/dev/null; }

# Initial state: slice a → worker 0, ready.
ctl set "{\"name\":\"svc-a\",\"port\":${W_PORT[0]},\"endpoints\":[{\"ip\":\"127.0.0.1\",\"ready\":true}]}"

dispatch_start --k8s-service ns1/svc:http --k8s-api "$K" --k8s-token "$TMPD/token" \
    --k8s-ca "$TMPD/none.crt" --health-interval-ms 200 || exit 1
wait_until() { # DESCRIPTION COMMAND... (≤ 10 s)
    local what=$1 i; shift
    for ((i = 0; i < 100; i++)); do "$@" && return 0; sleep 0.1; done
    fail "$what"
}
is_state() { [ "$(state_of "$1")" = "$2" ]; }
wait_until "worker 0 from the LIST" is_state "$B0" ready
wait_ready "$D_URL" 10 || fail "not ready"

# A slice whose endpoint is not ready (and a "serving" one) adds nothing.
ctl set "{\"name\":\"svc-b\",\"port\":${W_PORT[1]},\"endpoints\":[{\"ip\":\"127.0.0.1\",\"ready\":false}]}"
sleep 0.5
is_state "$B1" absent || fail "not-ready endpoint was added: $(state_of "$B1")"
# It turns ready (MODIFIED on the watch): added, probed, serves requests.
# (ready absent = ready, as the API defines: null here.)
ctl set "{\"name\":\"svc-b\",\"port\":${W_PORT[1]},\"endpoints\":[{\"ip\":\"127.0.0.1\",\"ready\":null}]}"
wait_until "worker 1 from the watch" is_state "$B1" ready
r=$($CLIENT --url "$D_URL" --path "/v1/models/$MODEL_NAME/classify" --file "$IMG" --concurrency 4 --requests 24)
[ "$(jq_get "$r" 'v["errors"]')" = 0 ] || fail "client errors: $r"
[ "$(sent_to "$B1")" -gt 0 ] && [ "$(sent_to "$B0")" -gt 0 ] || fail "not spread over both: $r"

# DELETED removes worker 0.
ctl delete '{"name":"svc-a"}'
wait_until "worker 0 removed" is_state "$B0" absent
r=$($CLIENT --url "$D_URL" --path "/v1/models/$MODEL_NAME/classify" --file "$IMG" --concurrency 2 --requests 6)
[ "$(jq_get "$r" 'v["errors"]')" = 0 ] || fail "client errors after delete: $r"

# 410 Gone: the slice set changed without an event; only a relist sees it.
lists_before=$(curl -s "$K/ctl/stats" | $PY -c 'import json,sys; print(json.load(sys.stdin)["lists"])')
ctl expire "{\"name\":\"svc-a\",\"port\":${W_PORT[0]},\"endpoints\":[{\"ip\":\"127.0.0.1\",\"ready\":true}]}"
wait_until "worker 0 back after the relist" is_state "$B0" ready
stats=$(curl -s "$K/ctl/stats")
echo "api stand-in: $stats"
lists=$(jq_get "$stats" 'v["lists"]')
[ "$lists" -gt "$lists_before" ] || fail "no relist after 410"
[ "$(jq_get "$stats" 'v["unauthorized"]')" = 0 ] || fail "token not sent"
[ "$(jq_get "$stats" 'min(v["watch_rvs"]) >= 100')" = True ] || fail "a watch without resourceVersion"
grep -q '"msg":"k8s watch expired; relisting"' "$TMPD/d.log" || fail "410 not logged"

kill -TERM "$D_PID"; wait "$D_PID"; rc=$?
[ $rc = 0 ] || fail "dispatcher exit $rc after SIGTERM"
echo "PASS"
