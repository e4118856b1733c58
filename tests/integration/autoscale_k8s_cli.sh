#!/usr/bin/env bash
# autoscale_k8s_cli.sh — `osprey autoscale --k8s-deployment ml/web
# --kubeconfig FILE` against a real API server (scripts/kube-test-cluster.sh
# via lib/autoscale_k8s_lib.bash: the Deployments, the autoscaler's
# ServiceAccount and its Role), with a kubeconfig carrying that account's
# token, and the metric from a real `osprey dispatch` in front of a real
# worker under `osprey load` (4 → 25 → 4 requests/s; rps target 10 per
# replica; period 2 s, scale-down window 6 s). The driver
# (autoscale_k8s_cli.py) asserts:
#   - the Deployment's spec.replicas follows the load: 3+ within 20 s of the
#     step, never above --max 4, back to 1 after the load falls;
#   - an autoscaler pointed at ml/other (which the token may not touch) logs
#     the 403 naming the missing RBAC rule and keeps running;
#   - the API server stopped for 8 s mid-run: the autoscaler keeps running
#     and counts actuator errors, spec.replicas is as it was when the API
#     server is back, and it scales down afterwards.
# There is no kubelet: pods stay Pending and status.readyReplicas stays 0,
# and the policy holds while no replica is ready (as the HPA: nothing
# reports yet). So the driver does what a kubelet does when a pod starts:
# as cluster admin it sets each pod's status to Running with Ready=True
# through the pods/status subresource; the ReplicaSet and Deployment
# controllers then count them in readyReplicas. The policy is not changed.
# Skips (77) only when Go, etcd or openssl is missing (or the model).
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"
source "$SRC/tests/integration/lib/autoscale_k8s_lib.bash"
trap 'k8s_stop; dispatch_cleanup' EXIT

k8s_start "$TMPD/c"
# The autoscaler's kubeconfig: the cluster's CA (a path relative to the
# file) and the ServiceAccount's token, the context's namespace ml.
cat >"$TMPD/c/autoscaler.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "$API_URL", certificate-authority: ca.crt}}]
users: [{name: osprey-autoscaler, user: {token: "$(cat "$TMPD/c/token")"}}]
contexts: [{name: autoscaler, context: {cluster: test, user: osprey-autoscaler, namespace: ml}}]
current-context: autoscaler
EOF

SCALE=1; [ "$ASAN" = 1 ] && SCALE=2
worker_start 0 0 || fail "worker did not start"
dispatch_start --health-interval-ms 200 --backend "127.0.0.1:${W_PORT[0]}" || fail "dispatcher did not start"
wait_ready "$D_URL" 30 || fail "dispatcher not ready"
$PY "$SRC/tests/integration/autoscale_k8s_cli.py" --osprey "$OSPREY" \
    --kubeconfig "$TMPD/c/autoscaler.kubeconfig" --api "$API_URL" --cluster "$K8S_CLUSTER" \
    --cluster-dir "$TMPD/c" --dispatch "$D_URL" --admin "http://127.0.0.1:$D_ADMIN" \
    --image "$IMG" --scale "$SCALE" --tmp "$TMPD" || {
    for f in "$TMPD"/web.log "$TMPD"/other.log; do
        [ -f "$f" ] && { echo "--- $(basename "$f"):"; tail -15 "$f"; }
    done
    fail "autoscale_k8s_cli"
}
echo "PASS: autoscale_k8s_cli"
