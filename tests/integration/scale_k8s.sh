#!/usr/bin/env bash
# scale_k8s.sh — the scaling scenario's Kubernetes path end to end
# (scripts/kube-local-stack.sh, which `make scale-demo-k8s` runs): the
# autoscaler scales the shipped worker Deployment through a real API server,
# the controllers make Pods, scripts/kube-local-node.py runs each as an
# `osprey serve` process on its own address, the EndpointSlice controller
# publishes the ready ones and the dispatcher follows them. A short step
# (osprey load, open loop: 4 → 30 → 4 req/s for 8, 25, 20 s; rps target 10 per replica,
# 1…2 replicas, scale-down window 6 s). Asserted:
#   - the stack comes up with 1 pod, 1 worker process, 1 dispatcher backend;
#   - under the step the Deployment's spec.replicas becomes 2, a second
#     worker process runs (in the stack's network namespace) and the
#     dispatcher gains its backend from the EndpointSlice;
#   - after the load falls: spec.replicas 1, one process, one backend; the
#     removed pod went away through the kubelet path (preStop, SIGTERM,
#     exit 0);
#   - 0 failed requests over the whole run (scale-out and scale-in);
#   - SIGTERM to the stack: no process of it left, the namespace removed.
# Needs root (ip netns) and Go/etcd/openssl (the control plane, built once
# and cached; Prometheus too); skips (77) without them, saying why.
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"
source "$SRC/tests/integration/lib/netns.bash"
netns_check
command -v jq >/dev/null || { echo "SKIP: jq not installed"; exit 77; }
STATE=$TMPD/stack
STACK_PID=
stop_stack() {
    [ -n "$STACK_PID" ] || return 0
    kill -TERM "$STACK_PID" 2>/dev/null
    for _ in $(seq 240); do kill -0 "$STACK_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$STACK_PID" 2>/dev/null
    STACK_PID=
}
trap 'stop_stack; dispatch_cleanup' EXIT
show_logs() {
    local f
    for f in "$STATE"/node.log "$STATE"/autoscaler.log "$STATE"/dispatcher.log "$TMPD"/stack.out; do
        [ -f "$f" ] && { echo "--- $(basename "$f"):"; tail -n 15 "$f"; }
    done
}
die() { echo "FAIL: $*"; show_logs; exit 1; }

# The control plane and Prometheus are built once (minutes) and cached: a
# missing Go is a skip, as for the other Kubernetes tests.
"$SRC/scripts/kube-test-cluster.sh" build >"$TMPD/build.log" 2>&1; rc=$?
[ $rc = 77 ] && { echo "SKIP: the test cluster cannot be built here: $(tail -n1 "$TMPD/build.log")"; exit 77; }
[ $rc = 0 ] || { tail -n 20 "$TMPD/build.log"; die "scripts/kube-test-cluster.sh build"; }
"$SRC/scripts/prometheus-upstream.sh" prometheus >"$TMPD/build.log" 2>&1; rc=$?
[ $rc = 77 ] && { echo "SKIP: upstream Prometheus cannot be built here: $(tail -n1 "$TMPD/build.log")"; exit 77; }
[ $rc = 0 ] || { tail -n 20 "$TMPD/build.log"; die "scripts/prometheus-upstream.sh"; }

# An ASan worker is several times slower: half the rates and the target
# (as the other autoscaling tests), so one worker is not overloaded before
# the second is ready — it would shed the excess (503), by design.
SCALE=1; [ "$ASAN" = 1 ] && SCALE=2
OSPREY=$OSPREY "$SRC/scripts/kube-local-stack.sh" --state-dir "$STATE" --model "$MODEL" --workers 1:2 \
    --worker-args "--threads 1" \
    --autoscale-args "--json-log --metric rps=$((10 / SCALE)) --period-s 2 --rate-window-s 4 --scale-down-window-s 6 --stable-window-s 6" \
    >"$TMPD/stack.out" 2>&1 &
STACK_PID=$!
for _ in $(seq 240); do
    [ -f "$STATE/stack.json" ] && break
    kill -0 "$STACK_PID" 2>/dev/null || die "the stack exited"
    sleep 0.5
done
[ -f "$STATE/stack.json" ] || die "the stack was not up within 120 s"
port() { jq -r ".ports.$1" "$STATE/stack.json"; }
DISP=http://127.0.0.1:$(port dispatcher) ADMIN=http://127.0.0.1:$(port admin)
. "$STATE/cluster/env"
K() { "$KUBECTL" --kubeconfig "$STATE/cluster/admin.kubeconfig" -n osprey "$@"; }
NS=$(jq -r .namespace "$STATE/stack.json")
replicas() { K get deployment osprey-worker -o jsonpath='{.spec.replicas}'; }
procs() { ip netns pids "$NS" 2>/dev/null | wc -l; }
backends() { curl -s -m 2 "$ADMIN/admin/backends" | jq '[.[] | select(.state == "ready")] | length'; }
state() { echo "replicas $(replicas), processes $(procs), ready backends $(backends)"; }
# until SECONDS CMD...: CMD true within SECONDS (polled every 0.5 s)
until_true() { local n=$(($1 * 2)); shift; for _ in $(seq "$n"); do "$@" && return 0; sleep 0.5; done; return 1; }
is() { [ "$(replicas)" = "$1" ] && [ "$(procs)" = "$1" ] && [ "$(backends)" = "$1" ]; }

echo "stack up: $(state)"
is 1 || die "expected 1 pod, 1 process, 1 backend at the start: $(state)"

# The step: 8 s low, 25 s high, 20 s low (862 requests; 431 under ASan).
"$OSPREY" load --url "$DISP" --images "$SRC/scripts/samples" --quiet --profile "$((4 / SCALE)):8s,$((30 / SCALE)):25s,$((4 / SCALE)):20s" \
    --out "$TMPD/load" --timeout-ms 30000 >"$TMPD/load.out" 2>"$TMPD/load.log" &
LOAD_PID=$!
PIDS+=("$LOAD_PID")
until_true 40 is 2 || die "no scale-out to 2 within 40 s of the start: $(state)"
echo "scaled out: $(state)"
wait "$LOAD_PID" || die "osprey load exited $? ($(tail -n 3 "$TMPD/load.log"))"
until_true 40 is 1 || die "no scale-in to 1 within 40 s after the load: $(state)"
echo "scaled in: $(state)"
grep -q "SIGTERM" "$STATE/node.log" && grep -q "gone (exit 0)" "$STATE/node.log" ||
    die "the removed pod did not stop through SIGTERM with exit 0"

read -r done errs <<<"$(jq -r '"\(.completed) \(.errors)"' "$TMPD/load/summary.json")"
echo "load: $done answered, $errs errors"
[ "$done" -gt $((700 / SCALE)) ] || die "only $done requests answered"
[ "$errs" = 0 ] || die "$errs failed requests over scale-out and scale-in"

stop_stack
left=$(pgrep -f "$STATE" | grep -v "^$$\$" || true)
[ -z "$left" ] || die "processes of the stack left after SIGTERM: $(ps -o pid,cmd -p "$(echo $left | tr ' ' ,)")"
ip netns list | grep -qw "$NS" && die "namespace $NS left after SIGTERM"
echo "PASS: scale_k8s"
