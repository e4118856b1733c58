#!/usr/bin/env bash
# autoscale_k8s.sh — the autoscaler's Kubernetes actuator against a real API
# server (scripts/kube-test-cluster.sh: kube-apiserver, controller-manager
# and kubectl built from the Go module proxy and cached, etcd, all on
# 127.0.0.1):
#   - a Deployment (its pods stay Pending: no kubelet, readyReplicas 0) and
#     the autoscaler's ServiceAccount with exactly its Role (get/patch on
#     deployments/scale and get on deployments, resourceNames [web]);
#   - with that account's token (kubectl create token) and the cluster CA,
#     through tests/tools/osp_k8s_scale: observe reads spec.replicas,
#     scale changes it; a human's `kubectl scale` is what observe sees next;
#   - the same token on another Deployment: `kubectl auth can-i` says no and
#     the actuator's 403 names the missing rule;
#   - a kubeconfig (client certificate, relative paths) works as well;
#   - the API server stopped: observe fails cleanly (no hang past its
#     timeout); started again: observe and scale work again.
# Skips (77) only when Go, etcd or openssl is missing; the first run builds
# the API server (several minutes), later runs take about 25 s.
set -u
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${OSP_BUILD_DIR:-$SRC/build}
TOOL=$BUILD/tests/osp_k8s_scale
fail() { echo "FAIL: $*"; exit 1; }

source "$SRC/tests/integration/lib/autoscale_k8s_lib.bash"
CLUSTER=$K8S_CLUSTER

TMP=$(mktemp -d)
trap 'k8s_stop; rm -rf "$TMP"' EXIT
k8s_start "$TMP/c"

SA=(--api "$API_URL" --token "$TMP/c/token" --ca "$TMP/c/ca.crt" --timeout-ms 3000)
observe() { "$TOOL" "${SA[@]}" --deployment ml/web observe; }
current_of() { sed -n 's/.*"current":\([0-9]*\).*/\1/p' <<<"$1"; }

# observe: spec.replicas, readyReplicas 0 (Pending pods).
out=$(observe) || fail "observe: $out"
[ "$out" = '{"current":1,"ready":0}' ] || fail "observe said $out"
# scale through the actuator changes spec.replicas (and the ReplicaSet follows).
"$TOOL" "${SA[@]}" --deployment ml/web scale 3 >/dev/null || fail "scale 3"
[ "$(spec_replicas web)" = 3 ] || fail "spec.replicas $(spec_replicas web) after scale 3"
for ((i = 0; i < 50; i++)); do
  [ "$(K -n ml get rs -l app=web -o jsonpath='{.items[0].spec.replicas}')" = 3 ] && break
  sleep 0.2
done
[ $i -lt 50 ] || fail "the ReplicaSet did not follow the scale"
# A human's kubectl scale is seen, not remembered over.
K -n ml scale deployment web --replicas=2 >/dev/null || fail "kubectl scale"
out=$(observe) || fail "observe after kubectl scale: $out"
[ "$(current_of "$out")" = 2 ] || fail "observe after kubectl scale said $out"
"$TOOL" "${SA[@]}" --deployment ml/web scale 4 >/dev/null || fail "scale 4"
[ "$(spec_replicas web)" = 4 ] || fail "spec.replicas $(spec_replicas web) after scale 4"

# The same token cannot scale another Deployment, and the actuator says why.
as_sa=(--as=system:serviceaccount:ml:osprey-autoscaler -n ml)
[ "$(K auth can-i patch deployments/web --subresource=scale "${as_sa[@]}")" = yes ] ||
  fail "can-i patch web/scale should be yes"
[ "$(K auth can-i patch deployments/other --subresource=scale "${as_sa[@]}" 2>/dev/null)" = no ] ||
  fail "can-i patch other/scale should be no"
[ "$(K auth can-i list deployments "${as_sa[@]}" 2>/dev/null)" = no ] || fail "can-i list should be no"
if "$TOOL" "${SA[@]}" --deployment ml/other scale 5 >"$TMP/o" 2>"$TMP/e"; then
  fail "scaled another deployment: $(cat "$TMP/o")"
fi
msg=$(cat "$TMP/e")
echo "403 reported as: $msg"
for want in "forbidden" "deployments/scale" "resourceNames: [other]" "in namespace ml" "verbs: [get"; do
  grep -qF -- "$want" <<<"$msg" || fail "the 403 message lacks '$want'"
done
[ "$(spec_replicas other)" = 1 ] || fail "other was changed"

# A kubeconfig (client certificate, paths relative to the file) works too.
out=$("$TOOL" --kubeconfig "$TMP/c/admin.kubeconfig" --deployment ml/web observe) ||
  fail "observe via kubeconfig: $out"
[ "$(current_of "$out")" = 4 ] || fail "kubeconfig observe said $out"

# The API server goes away: observe fails cleanly and quickly; it comes
# back: observe and scale work again.
"$CLUSTER" apiserver-stop "$TMP/c"
t0=$(date +%s)
if out=$(observe 2>"$TMP/e"); then fail "observe worked without an API server: $out"; fi
t1=$(date +%s)
echo "API server down reported as: $(cat "$TMP/e")"
grep -qF "kubernetes: GET deployments/scale ml/web at $API_URL" "$TMP/e" || fail "unclear error: $(cat "$TMP/e")"
[ $((t1 - t0)) -le 6 ] || fail "observe took $((t1 - t0)) s without an API server"
"$CLUSTER" apiserver-start "$TMP/c" || fail "the API server did not restart"
out=$(observe) || fail "observe after the restart: $out"
[ "$(current_of "$out")" = 4 ] || fail "observe after the restart said $out"
"$TOOL" "${SA[@]}" --deployment ml/web scale 2 >/dev/null || fail "scale after the restart"
[ "$(spec_replicas web)" = 2 ] || fail "spec.replicas $(spec_replicas web) after the restart"
echo "PASS"
