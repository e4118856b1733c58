#!/usr/bin/env bash
# dispatch_cli.sh — `osprey dispatch` configuration and DNS discovery:
# --help, usage errors (exit 2), a config file with a backend list, the
# environment overriding the file and flags overriding both, and --dns
# localhost:PORT (every A/AAAA record: the IPv4 one is the worker and
# becomes ready; an IPv6 ::1 record, when the resolver returns one, finds
# nothing listening and never becomes ready).
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

"$OSPREY" dispatch --help | grep -q -- '--k8s-service' || fail "--help"
for bad in "--policy leastconn" "--port" "--backend nonsense:port" "--bogus 1" "stray" \
           "--k8s-service nons" "--dns noport"; do
    # shellcheck disable=SC2086
    timeout 10 "$OSPREY" dispatch --port 0 --admin-port -1 $bad >/dev/null 2>&1; rc=$?
    [ $rc = 2 ] || fail "'$bad' exited $rc (want 2)"
done
echo '{"policy": "nope"}' >"$TMPD/bad.json"
timeout 10 "$OSPREY" dispatch --config "$TMPD/bad.json" >/dev/null 2>&1; [ $? = 2 ] || fail "bad config value"
echo '{"unknown_key": 1}' >"$TMPD/bad2.json"
timeout 10 "$OSPREY" dispatch --config "$TMPD/bad2.json" >/dev/null 2>&1; [ $? = 2 ] || fail "unknown config key"

worker_start 0 0 || exit 1
worker_start 1 0 || exit 1
B0=127.0.0.1:${W_PORT[0]} B1=127.0.0.1:${W_PORT[1]}
# File: both backends and policy rr; environment: policy random; flag:
# policy p2c-lor wins. The file's backend list is used.
printf '{"backend": ["%s", "%s"], "policy": "rr", "health_interval_ms": 200}\n' "$B0" "$B1" >"$TMPD/d.json"
OSPREY_DISPATCH_POLICY=random dispatch_start --config "$TMPD/d.json" || exit 1
grep -q '"policy":"random"' "$TMPD/d.log" || fail "environment did not override the file"
wait_ready "$D_URL" 10 || fail "not ready"
[ "$(state_of "$B0")" = ready ] && [ "$(state_of "$B1")" = ready ] || fail "file backends"
kill -TERM "$D_PID"; wait "$D_PID" || fail "exit status"
OSPREY_DISPATCH_POLICY=random dispatch_start --config "$TMPD/d.json" --policy p2c-lor || exit 1
grep -q '"policy":"p2c-lor"' "$TMPD/d.log" || fail "flag did not override the environment"
kill -TERM "$D_PID"; wait "$D_PID" || fail "exit status"
# Environment backend list (comma-separated) replaces the file's.
OSPREY_DISPATCH_BACKEND="$B1" dispatch_start --config "$TMPD/d.json" || exit 1
for ((i = 0; i < 50; i++)); do [ "$(state_of "$B1")" = ready ] && break; sleep 0.1; done
[ "$(state_of "$B0")" = absent ] && [ "$(state_of "$B1")" = ready ] || fail "environment backends"
kill -TERM "$D_PID"; wait "$D_PID" || fail "exit status"

# DNS discovery.
dispatch_start --dns "localhost:${W_PORT[0]}" --dns-interval-ms 500 --health-interval-ms 200 || exit 1
for ((i = 0; i < 100; i++)); do [ "$(state_of "$B0")" = ready ] && break; sleep 0.1; done
[ "$(state_of "$B0")" = ready ] || fail "DNS: 127.0.0.1 backend not ready: $(state_of "$B0")"
v6=$(state_of "[::1]:${W_PORT[0]}")
echo "DNS: $B0 ready; [::1]:${W_PORT[0]} $v6"
[ "$v6" != ready ] || fail "nothing listens on ::1 but it is ready"
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: image/jpeg' --data-binary "@$IMG" "$D_URL/classify")
[ "$code" = 200 ] || fail "classify through DNS-discovered backend: $code"
kill -TERM "$D_PID"; wait "$D_PID" || fail "exit status"
echo "PASS"
