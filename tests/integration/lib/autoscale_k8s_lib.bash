# autoscale_k8s_lib.bash — sourced by the autoscaler's Kubernetes tests
# (autoscale_k8s.sh, autoscale_k8s_cli.sh): a real API server from
# scripts/kube-test-cluster.sh, two Deployments in namespace ml (web and
# other: one replica each, pods Pending, there is no kubelet) and the
# autoscaler's ServiceAccount with exactly the Role it needs on web (get and
# patch on deployments/scale, get on deployments, resourceNames [web]),
# and a token of that account.
#
#   k8s_start DIR   start the cluster into DIR (exit 77 when it cannot be
#                   built here: no Go, etcd or openssl), apply the manifests,
#                   write DIR/token; sets API_URL, KUBECTL (from DIR/env)
#   k8s_stop DIR    stop the cluster (for the caller's EXIT trap)
#   K ARGS...       kubectl as cluster admin
#   spec_replicas NAME
K8S_CLUSTER=$SRC/scripts/kube-test-cluster.sh
K8S_DIR=

K() { "$KUBECTL" --kubeconfig "$K8S_DIR/admin.kubeconfig" "$@"; }
spec_replicas() { K -n ml get deployment "$1" -o jsonpath='{.spec.replicas}'; }
k8s_stop() { [ -n "$K8S_DIR" ] && "$K8S_CLUSTER" stop "$K8S_DIR" >/dev/null 2>&1; }

k8s_deployment() { # NAME: one replica whose pod stays Pending (no kubelet)
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1, namespace: ml}
spec:
  replicas: 1
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      containers: [{name: w, image: "registry.invalid/osprey:test"}]
---
EOF
}

k8s_start() {
  K8S_DIR=$1
  "$K8S_CLUSTER" start "$K8S_DIR"
  local rc=$?
  [ $rc = 77 ] && { echo "SKIP: the test cluster cannot be built here (see above)"; exit 77; }
  [ $rc = 0 ] || { echo "FAIL: the test cluster did not start"; exit 1; }
  . "$K8S_DIR/env"
  K create namespace ml >/dev/null || { echo "FAIL: namespace"; exit 1; }
  { k8s_deployment web; k8s_deployment other; cat <<'EOF'; } | K apply -f - >/dev/null || { echo "FAIL: apply"; exit 1; }
apiVersion: v1
kind: ServiceAccount
metadata: {name: osprey-autoscaler, namespace: ml}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: osprey-autoscaler, namespace: ml}
rules:
- apiGroups: [apps]
  resources: [deployments/scale]
  resourceNames: [web]
  verbs: [get, patch]
- apiGroups: [apps]
  resources: [deployments]
  resourceNames: [web]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: osprey-autoscaler, namespace: ml}
subjects: [{kind: ServiceAccount, name: osprey-autoscaler, namespace: ml}]
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: osprey-autoscaler}
EOF
  K -n ml create token osprey-autoscaler --duration=1h >"$K8S_DIR/token" || { echo "FAIL: create token"; exit 1; }
}
