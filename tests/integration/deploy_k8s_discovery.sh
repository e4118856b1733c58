#!/usr/bin/env bash
# deploy_k8s_discovery.sh — `osprey dispatch --k8s-service` against a real
# Kubernetes API server (scripts/kube-test-cluster.sh) and real workers.
# The API server refuses loopback addresses in EndpointSlices, so the
# workers run as test hosts in a network namespace (lib/netns.bash: a veth
# pair and a private 10.254.X.0/24 that exists only on it); the API server
# listens on the host end, the dispatcher on loopback. Three `osprey serve`
# workers (the quantized MobileNetV1 0.25) listen on 10.254.X.11-13:8080;
# the test publishes them as EndpointSlices of a selector-less Service
# osprey/osprey-worker, as the endpointslice controller would for pods, and
# the dispatcher follows with the token of a ServiceAccount that may only
# list and watch EndpointSlices in its namespace (the shipped RBAC's verbs;
# `kubectl auth can-i` checks it has no more). Asserted, on the admin API and
# on osprey_dispatch_backends:
#   - the first slice's worker is found and answers through the dispatcher
#     with the label the worker gives directly (cat.bmp → a cat);
#   - a second slice with a ready and a ready=false endpoint adds only the
#     ready one; the other turning ready adds it; requests reach all three;
#   - an endpoint turning ready=false in place removes it; deleting the
#     first slice removes its worker; requests still succeed on the rest.
# Needs root (ip netns); skips (77) without it, or without Go/etcd/openssl.
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"
source "$SRC/tests/integration/lib/autoscale_k8s_lib.bash"
source "$SRC/tests/integration/lib/netns.bash"
netns_check
T0=$(date +%s)
trap 'k8s_stop; netns_cleanup; dispatch_cleanup' EXIT
PHOTO=$SRC/../shared/images/cat.bmp
[ -f "$PHOTO" ] || { echo "SKIP: $PHOTO not found (the sample photos)"; exit 77; }

netns_create disc 3 || exit 1
netns_kube_start "$TMPD/c"
W=("${NETNS_IPS[@]}")
PORT=8080

# The workers, inside the namespace, each on its own address.
for i in 0 1 2; do
    netns_exec "$OSPREY" serve --host "${W[$i]}" --port $PORT --model "$MODEL" --threads 1 \
        >"$TMPD/w$i.log" 2>&1 &
    PIDS+=($!)
done
for i in 0 1 2; do wait_ready "http://${W[$i]}:$PORT" 60 || fail "worker $i: $(tail -3 "$TMPD/w$i.log")"; done

# The Service (no selector: nothing would match, there is no kubelet) and
# the dispatcher's ServiceAccount with list/watch on EndpointSlices only.
K apply -f - >/dev/null <<EOF || fail "apply"
apiVersion: v1
kind: Namespace
metadata: {name: osprey}
---
apiVersion: v1
kind: Service
metadata: {name: osprey-worker, namespace: osprey}
spec:
  clusterIP: None
  ports: [{name: http, port: $PORT, targetPort: $PORT}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: osprey-dispatcher, namespace: osprey}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: osprey-dispatcher, namespace: osprey}
rules:
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: osprey-dispatcher, namespace: osprey}
subjects: [{kind: ServiceAccount, name: osprey-dispatcher, namespace: osprey}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: osprey-dispatcher}
EOF
K -n osprey create token osprey-dispatcher --duration=1h >"$TMPD/token" || fail "create token"
as_sa=(--as=system:serviceaccount:osprey:osprey-dispatcher -n osprey)
[ "$(K auth can-i watch endpointslices.discovery.k8s.io "${as_sa[@]}")" = yes ] || fail "can-i watch"
for no in "get secrets" "list pods" "create endpointslices.discovery.k8s.io" "list endpointslices.discovery.k8s.io -n default"; do
    # shellcheck disable=SC2086  # the words are the verb, resource and flags
    [ "$(K auth can-i "${as_sa[@]}" $no 2>/dev/null)" = no ] || fail "the dispatcher's account may $no"
done

# slice NAME ADDR:READY... — an EndpointSlice of osprey-worker (apply).
slice() {
    local name=$1 e ep=""
    shift
    for e in "$@"; do ep="$ep  - {addresses: [\"${e%%:*}\"], conditions: {ready: ${e#*:}}}"$'\n'; done
    K apply -f - >/dev/null <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $name
  namespace: osprey
  labels: {kubernetes.io/service-name: osprey-worker}
addressType: IPv4
ports: [{name: http, port: $PORT, protocol: TCP}]
endpoints:
$ep
EOF
}
wait_until() { # DESCRIPTION COMMAND... (≤ 15 s)
    local what=$1 i; shift
    for ((i = 0; i < 150; i++)); do "$@" && return 0; sleep 0.1; done
    fail "$what (backends: $(curl -s "http://127.0.0.1:$D_ADMIN/admin/backends"))"
}
is_state() { [ "$(state_of "$1:$PORT")" = "$2" ]; }
ready_count() { [ "$(metric "osprey_dispatch_backends{model=\"$MODEL_NAME\",state=\"ready\"}")" = "$1" ]; }
top1() { jq_get "$1" 'v["results"][0]["predictions"][0]["label"]'; }

slice osprey-worker-a "${W[0]}:true" || fail "slice a"
dispatch_start --k8s-service osprey/osprey-worker:$PORT --k8s-api "$API_URL" \
    --k8s-token "$TMPD/token" --k8s-ca "$K8S_DIR/ca.crt" --health-interval-ms 200 || exit 1
wait_until "worker 0 from the LIST" is_state "${W[0]}" ready
wait_until "backends gauge 1" ready_count 1
wait_ready "$D_URL" 10 || fail "dispatcher not ready"

# Through the dispatcher, the label the worker gives directly.
direct=$(curl -s -F "file=@$PHOTO" "http://${W[0]}:$PORT/classify")
via=$(curl -s -F "file=@$PHOTO" "$D_URL/classify")
label=$(top1 "$direct") || fail "direct classify: $direct"
[ "$(top1 "$via")" = "$label" ] || fail "through the dispatcher: $via, directly: $direct"
grep -qi 'cat' <<<"$label" || fail "cat.bmp classified as '$label'"
echo "cat.bmp through the dispatcher: $label"

# A second slice: one ready endpoint, one not ready → only the ready one.
slice osprey-worker-b "${W[1]}:true" "${W[2]}:false" || fail "slice b"
wait_until "worker 1 from the watch" is_state "${W[1]}" ready
sleep 1
is_state "${W[2]}" absent || fail "a ready=false endpoint was added: $(state_of "${W[2]}:$PORT")"
ready_count 2 || fail "backends gauge $(metric "osprey_dispatch_backends{model=\"$MODEL_NAME\",state=\"ready\"}") != 2"
# It turns ready: added; requests reach all three.
slice osprey-worker-b "${W[1]}:true" "${W[2]}:true" || fail "slice b ready"
wait_until "worker 2 turning ready" is_state "${W[2]}" ready
wait_until "backends gauge 3" ready_count 3
r=$($CLIENT --url "$D_URL" --path "/v1/models/$MODEL_NAME/classify" --file "$IMG" --concurrency 4 --requests 60)
[ "$(jq_get "$r" 'v["errors"]')" = 0 ] || fail "client errors: $r"
for i in 0 1 2; do [ "$(sent_to "${W[$i]}:$PORT")" -gt 0 ] || fail "nothing sent to worker $i: $r"; done

# Worker 1 turns not ready in place (a pod failing its readiness probe):
# removed. Deleting slice a removes worker 0.
slice osprey-worker-b "${W[1]}:false" "${W[2]}:true" || fail "slice b not ready"
wait_until "worker 1 removed when not ready" is_state "${W[1]}" absent
K -n osprey delete endpointslice osprey-worker-a >/dev/null || fail "delete slice a"
wait_until "worker 0 removed with its slice" is_state "${W[0]}" absent
wait_until "backends gauge 1 again" ready_count 1
before=$(sent_to "${W[2]}:$PORT")
r=$($CLIENT --url "$D_URL" --path "/v1/models/$MODEL_NAME/classify" --file "$IMG" --concurrency 2 --requests 20)
[ "$(jq_get "$r" 'v["errors"]')" = 0 ] || fail "client errors after the removals: $r"
[ $(($(sent_to "${W[2]}:$PORT") - before)) -ge 20 ] || fail "the 20 requests did not all go to worker 2"
[ "$(top1 "$(curl -s -F "file=@$PHOTO" "$D_URL/classify")")" = "$label" ] || fail "label after the removals"
grep -q '"level":"error"' "$TMPD/d.log" && fail "the dispatcher logged an error: $(grep '"level":"error"' "$TMPD/d.log" | head -3)"

kill -TERM "$D_PID"; wait "$D_PID"; rc=$?
[ $rc = 0 ] || fail "dispatcher exit $rc after SIGTERM"
echo "PASS ($(($(date +%s) - T0)) s)"
