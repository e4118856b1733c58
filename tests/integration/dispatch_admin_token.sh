#!/usr/bin/env bash
# dispatch_admin_token.sh — the dispatcher's admin API behind a bearer token
# (--admin-token-file; docs/adr/0047-admin-token.md):
#  1. refused starts, each one line on stderr and a non-zero exit, nothing
#     bound: the admin API on 0.0.0.0 or :: without a token; a token file
#     others may read; an empty one. Accepted: 127.0.0.2 without a token
#     (loopback is 127/8), and 0.0.0.0 with a token — inside a network
#     namespace of its own (unshare -rn), so that nothing outside this test
#     ever sees the port;
#  2. with a token (its file's first line, trimmed; group bits allowed):
#     no token → 401 (GET and POST, nothing added), a wrong
#     one → 401 with error="invalid_token", both with WWW-Authenticate:
#     Bearer and a JSON body; the right one (any case of "Bearer") adds,
#     lists and removes; /metrics on the admin port stays open;
#  3. the JSON log names the caller of every change and every refusal
#     (peer address, authenticated or not), also on an open loopback API;
#  4. `osprey autoscale` (local) without the token is refused and
#     registers nothing; with --dispatcher-token-file its worker is
#     registered, serves /classify through the dispatcher, and is removed
#     again on SIGTERM; `osprey report record --discover` finds it only
#     with --discover-token-file.
# No assertion depends on speed: every wait is bounded (≤ 30 s) and only
# fails when the thing waited for never happens.
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

TOK=$TMPD/admin-token
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOK"
echo >>"$TOK"
chmod 600 "$TOK"
TOKEN=$(head -1 "$TOK")

# ---- 1. refused and accepted starts ------------------------------------------
# refused CASE WANT_TEXT FLAGS... : exits non-zero within 10 s, one stderr line.
refused() {
    local name=$1 want=$2 rc
    shift 2
    timeout 10 "$OSPREY" dispatch --host 127.0.0.1 --port 0 --admin-port 0 "$@" \
        >"$TMPD/r.out" 2>"$TMPD/r.err"
    rc=$?
    [ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "$name: exit $rc, want a refused start"
    [ "$(wc -l <"$TMPD/r.err")" = 1 ] || fail "$name: stderr is not one line: $(cat "$TMPD/r.err")"
    grep -q -- "$want" "$TMPD/r.err" || fail "$name: stderr lacks '$want': $(cat "$TMPD/r.err")"
    ! grep -q '"listening"' "$TMPD/r.out" || fail "$name: it listened before refusing"
    echo "ok: $name refused (exit $rc): $(cat "$TMPD/r.err")"
}
refused "0.0.0.0 without a token" "refusing to bind the admin API to 0.0.0.0 (not loopback) without a token" \
    --admin-host 0.0.0.0
refused ":: without a token" "refusing to bind the admin API to :: (not loopback)" --admin-host ::
cp "$TOK" "$TMPD/open-token" && chmod 644 "$TMPD/open-token"
refused "a world-readable token file" "mode 0644 lets others access it" \
    --admin-token-file "$TMPD/open-token"
: >"$TMPD/empty-token" && chmod 600 "$TMPD/empty-token"
refused "an empty token file" "has 0 characters" --admin-token-file "$TMPD/empty-token"
refused "a missing token file" "No such file" --admin-token-file "$TMPD/nope"

# started FLAGS... (with a command prefix in PREFIX): logs "listening", then
# is stopped at once.
started() {
    local name=$1 log=$TMPD/s.log pid
    shift
    : >"$log"
    ${PREFIX:-} "$OSPREY" dispatch --host 127.0.0.1 --port 0 --admin-port 0 "$@" >"$log" 2>&1 &
    pid=$!
    PIDS+=($pid)
    wait_port "$log" admin_port >/dev/null || { cat "$log"; fail "$name: did not start"; }
    grep '"listening"' "$log" | head -1 >"$TMPD/s.line"
    kill -TERM $pid; wait $pid 2>/dev/null
    echo "ok: $name started: $(cut -c1-200 "$TMPD/s.line")"
}
started "127.0.0.2 without a token" --admin-host 127.0.0.2
grep -q '"admin_auth":"none (loopback)"' "$TMPD/s.line" || fail "127.0.0.2: $(cat "$TMPD/s.line")"
if unshare -rn true 2>/dev/null; then
    PREFIX="unshare -rn" started "0.0.0.0 with a token (own network namespace)" \
        --admin-host 0.0.0.0 --admin-token-file "$TOK"
    grep -q '"admin_host":"0.0.0.0".*"admin_auth":"token"' "$TMPD/s.line" ||
        fail "0.0.0.0 with a token: $(cat "$TMPD/s.line")"
else
    # The refusal above is the rule under test; a bind beyond loopback is
    # never made outside a namespace of our own.
    echo "note: unshare -rn is not allowed here: the accepted 0.0.0.0 start is not run"
fi

# ---- 2. the token on every admin route ---------------------------------------
worker_start 0 0 || exit 1
B0=127.0.0.1:${W_PORT[0]}
# Its token file: the token as the first line, padded, CRLF, more lines,
# group-readable — the token is the trimmed first line (the clients below
# send $TOKEN, and the autoscaler reads the plain file).
printf ' \t%s\r\nsecond line\n' "$TOKEN" >"$TMPD/crlf-token" && chmod 640 "$TMPD/crlf-token"
dispatch_start --admin-token-file "$TMPD/crlf-token" --health-interval-ms 200 || exit 1
ADMIN=http://127.0.0.1:$D_ADMIN
AUTH=(-H "Authorization: Bearer $TOKEN")
# call NAME WANT_STATUS curl-args... → the body in $TMPD/body, headers in $TMPD/hdr
call() {
    local name=$1 want=$2 got
    shift 2
    got=$(curl -s --max-time 5 -D "$TMPD/hdr" -o "$TMPD/body" -w '%{http_code}' "$@")
    [ "$got" = "$want" ] || fail "$name: HTTP $got, want $want: $(cat "$TMPD/body")"
}
unauthorized() { # NAME [invalid]: the 401's header and body
    grep -qi '^WWW-Authenticate: Bearer realm="osprey-admin"' "$TMPD/hdr" || fail "$1: no WWW-Authenticate: $(cat "$TMPD/hdr")"
    [ "${2:-}" != invalid ] || grep -qi 'error="invalid_token"' "$TMPD/hdr" || fail "$1: no error=invalid_token"
    $PY -c 'import json,sys; assert json.load(open(sys.argv[1]))["error"]' "$TMPD/body" ||
        fail "$1: the 401 body is not {\"error\": ...}: $(cat "$TMPD/body")"
}
call "GET without a token" 401 "$ADMIN/admin/backends"; unauthorized "GET without a token"
call "POST without a token" 401 -d "{\"address\": \"$B0\"}" "$ADMIN/admin/backends"
unauthorized "POST without a token"
call "POST with a wrong token" 401 -H "Authorization: Bearer x$TOKEN" -d "{\"address\": \"$B0\"}" "$ADMIN/admin/backends"
unauthorized "POST with a wrong token" invalid
call "DELETE with a wrong token" 401 -X DELETE -H "Authorization: Bearer ${TOKEN:0:20}" "$ADMIN/admin/backends/$B0"
call "Basic instead of Bearer" 401 -H "Authorization: Basic $TOKEN" "$ADMIN/admin/backends"
call "GET with the token" 200 "${AUTH[@]}" "$ADMIN/admin/backends"
[ "$(cat "$TMPD/body")" = "[]" ] || fail "the refused POSTs added something: $(cat "$TMPD/body")"
echo "ok: no token, a wrong token, another scheme → 401 + WWW-Authenticate: Bearer; nothing added"

call "POST with the token" 200 "${AUTH[@]}" -d "{\"address\": \"$B0\"}" "$ADMIN/admin/backends"
wait_ready "$D_URL" 30 || fail "the added backend never became ready"
call "classify through the added backend" 200 -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMG" "$D_URL/classify"
call "DELETE (lower-case scheme)" 200 -X DELETE -H "authorization: bearer $TOKEN" "$ADMIN/admin/backends/$B0"
call "GET after the DELETE" 200 "${AUTH[@]}" "$ADMIN/admin/backends"
[ "$(cat "$TMPD/body")" = "[]" ] || fail "the DELETE left: $(cat "$TMPD/body")"
call "/metrics on the admin port, no token" 200 "$ADMIN/metrics"
grep -q '^osprey_dispatch_requests_total' "$TMPD/body" || fail "admin /metrics is not the metrics page"
echo "ok: the right token adds (and /classify goes there), lists and removes; admin /metrics stays open"

# ---- 3. the log names the caller ---------------------------------------------
# check_log LOG WANT_AUTH MIN_CHANGES MIN_REFUSED: every admin change and
# refusal line names a loopback peer and says whether it authenticated.
check_log() {
    $PY - "$@" <<'EOF' || fail "the admin log lines: see above"
import json, re, sys
log, want_auth, min_changes, min_refused = sys.argv[1], sys.argv[2] == "true", int(sys.argv[3]), int(sys.argv[4])
lines = [json.loads(l) for l in open(log) if l.startswith("{")]
changes = [l for l in lines if l.get("msg") == "admin change"]
refused = [l for l in lines if l.get("msg") == "admin refused"]
peer = re.compile(r"^127\.0\.0\.1:[0-9]+$")
for l in changes + refused:
    assert peer.match(l.get("peer", "")), f"no caller address: {l}"
for l in changes:
    assert l["authenticated"] is want_auth and l["action"] in ("add", "remove") and l["address"], l
for l in refused:
    assert l["authenticated"] is False and l["status"] == 401 and l["credentials"] in ("missing", "wrong"), l
assert len(changes) >= min_changes, f"{len(changes)} change lines, want >= {min_changes}"
assert len(refused) >= min_refused, f"{len(refused)} refusal lines, want >= {min_refused}"
print(f"ok: {len(changes)} change and {len(refused)} refusal log lines, each naming its caller, e.g.")
for l in (changes[:1] + refused[:1]):
    print("   ", json.dumps(l))
EOF
}
check_log "$TMPD/d.log" true 2 5
grep '"admin refused"' "$TMPD/d.log" | grep -q '"credentials":"wrong"' || fail "no refusal logged as a wrong token"

# An open (loopback, no token) admin API: changes still logged, unauthenticated.
D1_LOG=$TMPD/d1.log
"$OSPREY" dispatch --host 127.0.0.1 --port 0 --admin-port 0 >"$D1_LOG" 2>&1 &
PIDS+=($!)
D1_ADMIN=$(wait_port "$D1_LOG" admin_port) || fail "the open dispatcher did not start"
call "POST on an open API" 200 -d "{\"address\": \"$B0\"}" "http://127.0.0.1:$D1_ADMIN/admin/backends"
call "DELETE on an open API" 200 -X DELETE "http://127.0.0.1:$D1_ADMIN/admin/backends/$B0"
check_log "$D1_LOG" false 2 0

# ---- 4. the autoscaler (local) and the recorder -------------------------------
AS=("$OSPREY" autoscale --dispatcher "$ADMIN" --port 0 --json-log --min 1 --max 1
    --oversubscribe --worker-args "--model $MODEL --threads 1")
"${AS[@]}" >"$TMPD/a0.log" 2>&1 &
A0=$!
PIDS+=($A0)
# Its worker starts, then its POST is refused: bounded wait for the refusal.
for ((i = 0; i < 300; i++)); do
    grep '"admin refused"' "$TMPD/d.log" | grep -q '"method":"POST"' && break
    sleep 0.1
done
grep '"admin refused"' "$TMPD/d.log" | grep -q '"method":"POST"' ||
    { tail -5 "$TMPD/a0.log"; fail "the autoscaler without a token was not refused within 30 s"; }
call "GET after the tokenless autoscaler" 200 "${AUTH[@]}" "$ADMIN/admin/backends"
[ "$(cat "$TMPD/body")" = "[]" ] || fail "the autoscaler without a token registered: $(cat "$TMPD/body")"
kill -TERM $A0; wait $A0 2>/dev/null
echo "ok: the autoscaler without the token is refused (401) and registers nothing"

"${AS[@]}" --dispatcher-token-file "$TOK" >"$TMPD/a1.log" 2>&1 &
A1=$!
PIDS+=($A1)
wait_ready "$D_URL" 30 || { tail -10 "$TMPD/a1.log"; fail "the autoscaler with the token registered no worker in 30 s"; }
call "classify through the autoscaler's worker" 200 -H 'Content-Type: application/octet-stream' \
    --data-binary "@$IMG" "$D_URL/classify"
A_ADDR=$(grep '"admin change"' "$TMPD/d.log" | grep '"action":"add"' | tail -1 |
         sed -n 's/.*"address":"\([^"]*\)".*/\1/p')
[ -n "$A_ADDR" ] && [ "$A_ADDR" != "$B0" ] || fail "no authenticated add by the autoscaler in the log"
echo "ok: the autoscaler with --dispatcher-token-file registered $A_ADDR; /classify answers through it"

# The recorder: --discover lists the worker only with the token.
"$OSPREY" report record --discover "$ADMIN" --out "$TMPD/rec0.jsonl" --duration 0.1 --interval 0.1 \
    >/dev/null 2>"$TMPD/rec0.err" || fail "report record without a token: $(cat "$TMPD/rec0.err")"
grep -q "HTTP 401" "$TMPD/rec0.err" || fail "report record without a token: no 401 reported: $(cat "$TMPD/rec0.err")"
"$OSPREY" report record --discover "$ADMIN" --discover-token-file "$TOK" --out "$TMPD/rec1.jsonl" \
    --duration 0.1 --interval 0.1 2>"$TMPD/rec1.err" || fail "report record: $(cat "$TMPD/rec1.err")"
grep -q "\"target\":\"http://$A_ADDR/metrics\"" "$TMPD/rec1.jsonl" ||
    fail "report record --discover-token-file did not find $A_ADDR: $(head -c 300 "$TMPD/rec1.jsonl")"
echo "ok: report record --discover finds $A_ADDR with --discover-token-file (401 without)"

kill -TERM $A1
for ((i = 0; i < 300; i++)); do
    grep '"admin change"' "$TMPD/d.log" | grep '"action":"remove"' | grep -q "\"$A_ADDR\"" && break
    sleep 0.1
done
grep '"admin change"' "$TMPD/d.log" | grep '"action":"remove"' | grep "\"$A_ADDR\"" |
    grep -q '"authenticated":true' || fail "the autoscaler's deregistration of $A_ADDR is not logged"
wait $A1 2>/dev/null
echo "ok: on SIGTERM the autoscaler deregistered $A_ADDR with the token"
echo "PASS: dispatch_admin_token"
