#!/usr/bin/env bash
# kube-local-stack.sh — osprey's Kubernetes path on one machine, for the
# scaling scenario (`scripts/scale-demo.sh --kubernetes`, `make
# scale-demo-k8s`): the autoscaler scales a real Deployment through a real
# API server, the controllers turn its replicas into Pods, and those Pods
# run as worker processes; the dispatcher follows them through the Service's
# EndpointSlices; Prometheus finds them with its Kubernetes discovery.
#
#   - a control plane (scripts/kube-test-cluster.sh: kube-apiserver,
#     kube-controller-manager with the Deployment, ReplicaSet and
#     EndpointSlice controllers, etcd) on the host end of a network
#     namespace (tests/integration/lib/netns.bash): the API server refuses
#     loopback addresses in EndpointSlices, so each pod gets its own
#     10.254.X.N inside the namespace, reachable from this machine only;
#   - from the shipped manifests (kubectl kustomize
#     deploy/kubernetes/overlays/production-osprey-autoscaler): the
#     Namespace, the worker Service, the dispatcher's and autoscaler's
#     ServiceAccounts, Roles and RoleBindings unchanged, and the worker
#     Deployment with its labels, ports, probes, preStop and grace period
#     unchanged but its container's args replaced by a local model (no init
#     containers or volumes: the node agent below mounts nothing);
#   - scripts/kube-local-node.py: a Node whose pods are processes (it binds
#     pods, runs `osprey serve` per pod in the namespace, reports status and
#     readiness from the pod's own probes, stops pods as a kubelet does);
#   - `osprey dispatch --k8s-service osprey/osprey-worker:8080` with the
#     dispatcher ServiceAccount's token, and `osprey autoscale
#     --k8s-deployment osprey/osprey-worker` with the autoscaler's — so the
#     shipped RBAC is what they run with; both on 127.0.0.1;
#   - upstream Prometheus (scripts/prometheus-upstream.sh: Debian's lacks
#     the Kubernetes discovery) with the shipped cluster scrape job for the
#     pods (deploy/monitoring/kubernetes/prometheus.yml, plus where the API
#     server is), static jobs for the dispatcher and the autoscaler, and the
#     shipped rules.
# It writes STATE/stack.json (like `osprey up`: {"path":"kubernetes",
# "ports":{...}}) once everything answers, then waits; SIGTERM or SIGINT
# stops everything it started, in order, and removes the namespace.
#
#   scripts/kube-local-stack.sh --state-dir DIR --model PATH [--workers MIN:MAX]
#       [--scrape-interval-s N] [--worker-args "FLAGS"] [--autoscale-args "FLAGS"]
#
# Needs root (ip netns), Go (builds the control plane and Prometheus once,
# cached in ~/.cache/osprey), etcd, openssl, Python 3 with PyYAML.
# Environment: OSPREY (default build/osprey).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
OSPREY=${OSPREY:-$ROOT/build/osprey}
STATE="" MODEL="" MINW=1 MAXW=3 SCRAPE=1 WORKER_ARGS="--threads 1" AUTOSCALE_ARGS=""
usage() { sed -n '/^#   scripts\/kube-local-stack.sh/,/^#       \[--scrape/p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --state-dir) STATE=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --workers) MINW=${2%%:*}; MAXW=${2##*:}; shift 2 ;;
    --scrape-interval-s) SCRAPE=$2; shift 2 ;;
    --worker-args) WORKER_ARGS=$2; shift 2 ;;
    --autoscale-args) AUTOSCALE_ARGS=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "kube-local-stack: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
die() { echo "kube-local-stack: $*" >&2; exit 1; }
log() { echo "kube-local-stack: $*"; }
[ -n "$STATE" ] && [ -n "$MODEL" ] || { usage >&2; exit 2; }
[ -f "$MODEL" ] || die "model $MODEL not found"
[ -x "$OSPREY" ] || die "$OSPREY is not built; run 'make build' first"
PY=/usr/bin/python3
$PY -c 'import yaml' 2>/dev/null || die "needs Python 3 with PyYAML (Debian python3-yaml; scripts/install-deps.sh)"
MODEL=$(cd "$(dirname "$MODEL")" && pwd -P)/$(basename "$MODEL")
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
rm -f "$STATE/stack.json"

# shellcheck source=../tests/integration/lib/netns.bash
. "$ROOT/tests/integration/lib/netns.bash"
netns_check
K8S_CLUSTER=$ROOT/scripts/kube-test-cluster.sh
CLUSTER=$STATE/cluster
PIDS=()        # started here, stopped in reverse order
stop_all() {
  trap - EXIT INT TERM
  rm -f "$STATE/stack.json"
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[$i]}" 2>/dev/null || true
    # each drains within its own bound; then the hard way
    for _ in $(seq 60); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "${PIDS[$i]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  "$K8S_CLUSTER" stop "$CLUSTER" >/dev/null 2>&1 || true
  netns_cleanup
  log "stopped"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL SECONDS PID
  local i
  for ((i = 0; i < $2 * 4; i++)); do
    curl -fs -m 1 -o /dev/null "$1" && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}

# ---- the network and the control plane -------------------------------------
netns_create stack "$MAXW" >"$STATE/netns.log" || die "network namespace: $(cat "$STATE/netns.log")"
log "pods' network: ${NETNS_IPS[*]} in $NETNS (host end $NETNS_HOST_IP)"
"$K8S_CLUSTER" start "$CLUSTER" --address "$NETNS_HOST_IP" --controller endpointslice-controller \
    >"$STATE/cluster.log" 2>&1 || die "the control plane did not start ($STATE/cluster.log)"
. "$CLUSTER/env"
K() { "$KUBECTL" --kubeconfig "$CLUSTER/admin.kubeconfig" "$@"; }

# ---- the shipped manifests, the worker's container made local --------------
K kustomize "$ROOT/deploy/kubernetes/overlays/production-osprey-autoscaler" >"$STATE/shipped.yaml"
# shellcheck disable=SC2016
$PY - "$STATE/shipped.yaml" "$MODEL" "$MINW" "$WORKER_ARGS" >"$STATE/applied.yaml" <<'EOF'
import shlex, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
model, replicas, args = sys.argv[2], int(sys.argv[3]), shlex.split(sys.argv[4])
keep = []
for d in docs:
    kind, name = d["kind"], d["metadata"]["name"]
    if kind in ("Namespace", "ServiceAccount", "Role", "RoleBinding"):
        keep.append(d)
    elif kind == "Service" and name == "osprey-worker":
        keep.append(d)
    elif kind == "Deployment" and name == "osprey-worker":
        d["spec"]["replicas"] = replicas
        pod = d["spec"]["template"]["spec"]
        pod.pop("initContainers", None)
        pod.pop("volumes", None)
        c = pod["containers"][0]
        c.pop("volumeMounts", None)
        c["args"] = ["serve", "--port", "8080", "--model", model] + args
        keep.append(d)
yaml.safe_dump_all(keep, sys.stdout, sort_keys=False)
EOF
K apply -f "$STATE/applied.yaml" >"$STATE/apply.log" 2>&1 || die "apply: $(tail -5 "$STATE/apply.log")"
for sa in osprey-dispatcher osprey-autoscaler; do
  K -n osprey create token "$sa" --duration=2h >"$CLUSTER/$sa.token" || die "token for $sa"
done
cat >"$CLUSTER/autoscaler.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$API_URL", certificate-authority: ca.crt}}]
users: [{name: osprey-autoscaler, user: {tokenFile: osprey-autoscaler.token}}]
contexts: [{name: autoscaler, context: {cluster: local, user: osprey-autoscaler, namespace: osprey}}]
current-context: autoscaler
EOF

# ---- the node: pods as processes ------------------------------------------
$PY "$ROOT/scripts/kube-local-node.py" --api "$API_URL" --ca "$CLUSTER/ca.crt" \
    --cert "$CLUSTER/admin.crt" --key "$CLUSTER/admin.key" --host-ip "$NETNS_HOST_IP" \
    --namespace osprey --selector app.kubernetes.io/component=worker --netns "$NETNS" \
    --pod-ips "$(IFS=,; echo "${NETNS_IPS[*]}")" --image "osprey=$OSPREY" \
    --log-dir "$STATE/pods" >"$STATE/node.log" 2>&1 &
PIDS+=($!)

# ---- dispatcher and autoscaler (on the host, loopback) ----------------------
DP=$(free_port) AP=$(free_port) SP=$(free_port) PP=$(free_port)
"$OSPREY" dispatch --host 127.0.0.1 --port "$DP" --admin-port "$AP" \
    --k8s-service osprey/osprey-worker:8080 --k8s-api "$API_URL" \
    --k8s-token "$CLUSTER/osprey-dispatcher.token" --k8s-ca "$CLUSTER/ca.crt" \
    --health-interval-ms 500 --autoscaler-url "http://127.0.0.1:$SP" \
    >"$STATE/dispatcher.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$DP/ready" 120 "${PIDS[-1]}" ||
  die "the dispatcher has no ready worker within 120 s ($STATE/dispatcher.log, $STATE/node.log)"
# shellcheck disable=SC2086  # the flags are words
"$OSPREY" autoscale --k8s-deployment osprey/osprey-worker --kubeconfig "$CLUSTER/autoscaler.kubeconfig" \
    --dispatcher "http://127.0.0.1:$AP" --port "$SP" --min "$MINW" --max "$MAXW" $AUTOSCALE_ARGS \
    >"$STATE/autoscaler.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$SP/status" 30 "${PIDS[-1]}" || die "the autoscaler did not start ($STATE/autoscaler.log)"

# ---- Prometheus ----------------------------------------------------------------
PROMETHEUS=$("$ROOT/scripts/prometheus-upstream.sh" prometheus 2>"$STATE/prometheus-build.log") ||
  die "upstream Prometheus could not be built ($STATE/prometheus-build.log)"
mkdir -p "$STATE/prometheus"
$PY - "$ROOT/deploy/monitoring/kubernetes/prometheus.yml" "$CLUSTER" "$API_URL" "$SCRAPE" \
    "$ROOT/deploy/monitoring/prometheus/rules" "$DP" "$SP" "$PP" >"$STATE/prometheus/prometheus.yml" <<'EOF'
# The shipped cluster config: its pod job unchanged but for where the API
# server is (out of cluster), the host processes as static jobs.
import sys, yaml
src, cluster, api, scrape, rules, dp, sp, pp = sys.argv[1:]
c = yaml.safe_load(open(src))
s = int(scrape)
c["global"].update(scrape_interval=f"{s}s", scrape_timeout=f"{max(1, s - 1) if s > 1 else 1}s",
                   evaluation_interval=f"{s}s")
c["global"]["external_labels"] = {"cluster": "kube-local"}
c["rule_files"] = [f"{rules}/*.yml"]
c.pop("alerting", None)
jobs = []
for j in c["scrape_configs"]:
    if j["job_name"] == "osprey-pods":
        for sd in j["kubernetes_sd_configs"]:
            sd["api_server"] = api
            sd["tls_config"] = {"ca_file": f"{cluster}/ca.crt", "cert_file": f"{cluster}/admin.crt",
                                "key_file": f"{cluster}/admin.key"}
        jobs.append(j)
jobs += [
    {"job_name": "osprey-dispatcher", "static_configs": [
        {"targets": [f"127.0.0.1:{dp}"], "labels": {"component": "dispatcher"}}]},
    {"job_name": "osprey-autoscaler", "static_configs": [
        {"targets": [f"127.0.0.1:{sp}"], "labels": {"component": "autoscaler"}}]},
    {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{pp}"]}]},
]
c["scrape_configs"] = jobs
yaml.safe_dump(c, sys.stdout, sort_keys=False)
EOF
"$PROMETHEUS" --config.file="$STATE/prometheus/prometheus.yml" --storage.tsdb.path="$STATE/prometheus/data" \
    --web.listen-address="127.0.0.1:$PP" >"$STATE/prometheus.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$PP/-/ready" 60 "${PIDS[-1]}" || die "Prometheus did not start ($STATE/prometheus.log)"

printf '{"path":"kubernetes","api":"%s","namespace":"%s","ports":{"dispatcher":%d,"admin":%d,"autoscaler":%d,"prometheus":%d}}\n' \
    "$API_URL" "$NETNS" "$DP" "$AP" "$SP" "$PP" >"$STATE/stack.json.tmp"
mv "$STATE/stack.json.tmp" "$STATE/stack.json"
log "up: dispatcher http://127.0.0.1:$DP (UI /, /ui/status), autoscaler http://127.0.0.1:$SP/status, Prometheus http://127.0.0.1:$PP, API server $API_URL"
log "kubectl: $KUBECTL --kubeconfig $CLUSTER/admin.kubeconfig -n osprey get deploy,pods,endpointslices"
# Until told to stop, or until one of ours dies.
while :; do
  for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "a process of the stack exited (pid $p); logs in $STATE"; done
  sleep 1
done
