#!/usr/bin/env bash
# deploy_hpa.sh — the shipped HorizontalPodAutoscaler, for real: the
# kube-controller-manager's HPA controller scales the Deployment
# osprey/osprey-worker on the dispatcher's in-flight requests, read through
# a real Prometheus and a real prometheus-adapter configured by the shipped
# rules. The chain:
#   osprey load → osprey dispatch (loopback) → two `osprey serve` workers
#   (test hosts in a network namespace, lib/netns.bash; --debug-delay-ms so
#   requests stay in flight on a small machine)
#   Prometheus (Debian's; on the host end of the veth) scrapes them
#   prometheus-adapter v0.12.0 (inside the namespace on its own address,
#   scripts/kube-test-cluster.sh build-adapter) with
#   deploy/kubernetes/components/hpa/prometheus-adapter-config.yaml
#   the API server (on the host end, with the aggregation layer) routes
#   external.metrics.k8s.io to the adapter: an APIService, a selector-less
#   Service and an EndpointSlice at the adapter's address (the API server refuses
#   loopback there, hence the namespace)
#   the HPA controller (sync period 2 s) reads osprey_dispatch_inflight for
#   deploy/kubernetes/components/hpa/hpa.yaml, patched only where the test
#   needs it (see hpa_for_test below)
# Asserted: at rest the HPA reads the metric (ScalingActive) and holds
# minReplicas; under load (TARGET × (minReplicas + 4) closed-loop users)
# spec.replicas rises within 30 s and reaches minReplicas + 4 (at most
# maxReplicas), never more; after the load stops it returns to
# minReplicas after the shortened stabilization window. There is no kubelet:
# the pods stay Pending, which the External metric does not need (its
# AverageValue divides the total by the target, not by ready pods).
# Needs root (ip netns), Prometheus, Go/etcd/openssl for the cluster; skips
# (77) without them. The shipped files are read from the source tree
# (OSPREY_HPA_DIR overrides the directory); their absence is a failure.
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"
source "$SRC/tests/integration/lib/autoscale_k8s_lib.bash"
source "$SRC/tests/integration/lib/netns.bash"
netns_check
T0=$(date +%s)
HPA_DIR=${OSPREY_HPA_DIR:-$SRC/deploy/kubernetes/components/hpa}
for f in hpa.yaml prometheus-adapter-config.yaml; do
    [ -f "$HPA_DIR/$f" ] || { echo "FAIL: the shipped $HPA_DIR/$f is missing"; exit 1; }
done
command -v prometheus >/dev/null || { echo "SKIP: prometheus is not installed (Debian: prometheus)"; exit 77; }
ADAPTER=$("$K8S_CLUSTER" adapter)
rc=$?
[ $rc = 77 ] && { echo "SKIP: prometheus-adapter cannot be built here (see above)"; exit 77; }
[ $rc = 0 ] || { echo "FAIL: building prometheus-adapter"; exit 1; }
trap 'k8s_stop; netns_cleanup; dispatch_cleanup' EXIT
say() { echo "[$(($(date +%s) - T0)) s] $*"; }

# --- the shipped files, as the test applies them ---------------------------
# The adapter's config: the file is the adapter's config, or a ConfigMap
# holding it (its one key, or config.yaml).
$PY - "$HPA_DIR/prometheus-adapter-config.yaml" >"$TMPD/adapter.yaml" <<'EOF' || fail "adapter config"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cfg = None
for d in docs:
    if d.get("kind") == "ConfigMap":
        data = d.get("data", {})
        cfg = yaml.safe_load(data.get("config.yaml", next(iter(data.values()), "")))
    elif "rules" in d or "externalRules" in d:
        cfg = d
assert cfg and cfg.get("externalRules"), "no externalRules in the shipped adapter config"
print(yaml.safe_dump(cfg))
EOF
# The HPA, patched for this test only:
#  - namespace osprey (the kustomization sets it when shipped);
#  - only the External metric: the Pods metric (osprey_inflight_requests per
#    pod) needs Running pods with their own series, and the CPU metric needs
#    metrics-server; without a kubelet neither can have values, and the HPA
#    controller refuses to scale down while any metric is invalid;
#  - scaleDown: stabilization window 10 s and policy periods at most 5 s, so
#    scale-in shows within the test (the shipped minutes guard production
#    against flapping). scaleUp is as shipped.
$PY - "$HPA_DIR/hpa.yaml" >"$TMPD/hpa.json" <<'EOF' || fail "hpa"
import json, sys, yaml
hpa = [d for d in yaml.safe_load_all(open(sys.argv[1]))
       if d and d.get("kind") == "HorizontalPodAutoscaler"]
assert len(hpa) == 1, "expected one HorizontalPodAutoscaler"
h = hpa[0]
assert h["apiVersion"] == "autoscaling/v2", h["apiVersion"]
assert h["spec"]["scaleTargetRef"]["name"] == "osprey-worker", h["spec"]["scaleTargetRef"]
h["metadata"]["namespace"] = "osprey"
kinds = sorted(m["type"] for m in h["spec"]["metrics"])
ext = [m for m in h["spec"]["metrics"] if m["type"] == "External"
       and m["external"]["metric"]["name"] == "osprey_dispatch_inflight"]
assert ext and ext[0]["external"]["target"]["type"] == "AverageValue", "no External osprey_dispatch_inflight AverageValue"
print("shipped metrics:", kinds, file=sys.stderr)
h["spec"]["metrics"] = ext
down = h["spec"].setdefault("behavior", {}).setdefault("scaleDown", {})
down["stabilizationWindowSeconds"] = 10
for p in down.get("policies", []):
    p["periodSeconds"] = min(p["periodSeconds"], 5)
json.dump(h, sys.stdout)
EOF
MIN=$(jq_get "$(cat "$TMPD/hpa.json")" 'v["spec"].get("minReplicas", 1)')
MAX=$(jq_get "$(cat "$TMPD/hpa.json")" 'v["spec"]["maxReplicas"]')
TARGET=$(jq_get "$(cat "$TMPD/hpa.json")" 'v["spec"]["metrics"][0]["external"]["target"]["averageValue"]')
say "shipped HPA: minReplicas $MIN, maxReplicas $MAX, External osprey_dispatch_inflight AverageValue $TARGET"

# --- test hosts, control plane ---------------------------------------------
netns_create hpa 3 || exit 1
W=("${NETNS_IPS[0]}" "${NETNS_IPS[1]}") ADAPTER_IP=${NETNS_IPS[2]}
netns_kube_start "$TMPD/c" --aggregation --hpa \
    --cm-arg --horizontal-pod-autoscaler-sync-period=2s
say "control plane up at $API_URL"

# Workers in the namespace (each request held 250 ms: in flight long enough
# for 2 cores to show a queue), the dispatcher on loopback.
for i in 0 1; do
    netns_exec "$OSPREY" serve --host "${W[$i]}" --port 8080 --model "$MODEL" --threads 1 \
        --debug-delay-ms 250 >"$TMPD/w$i.log" 2>&1 &
    PIDS+=($!)
done
for i in 0 1; do wait_ready "http://${W[$i]}:8080" 60 || fail "worker $i: $(tail -3 "$TMPD/w$i.log")"; done
dispatch_start --backend "${W[0]}:8080" --backend "${W[1]}:8080" --health-interval-ms 200 || exit 1
wait_ready "$D_URL" 30 || fail "dispatcher not ready"

# The worker Deployment at minReplicas; its pods stay Pending (no kubelet).
K apply -f - >/dev/null <<EOF || fail "apply the Deployment"
apiVersion: v1
kind: Namespace
metadata: {name: osprey}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: osprey-worker, namespace: osprey}
spec:
  replicas: $MIN
  selector: {matchLabels: {app: osprey-worker}}
  template:
    metadata: {labels: {app: osprey-worker}}
    spec:
      containers: [{name: osprey, image: "registry.invalid/osprey:test"}]
EOF
pod_names() { K -n osprey get pods -l app=osprey-worker -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort; }
for ((i = 0; i < 100; i++)); do [ "$(pod_names | wc -l)" -ge 2 ] && break; sleep 0.2; done
mapfile -t POD < <(pod_names)
[ "${#POD[@]}" -ge 2 ] || fail "the Deployment has ${#POD[@]} pods"

# Prometheus on the host end, scraping every second. The namespace/pod
# labels stand in for the kubernetes_sd relabelling a cluster's Prometheus
# does: the adapter maps namespace to the Namespace and pod to the Pod. Each
# worker process is labelled as one of the Deployment's (Pending) pods, so
# the shipped per-pod rule can be read for them.
PROM_PORT=$($PY -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "$NETNS_HOST_IP")
PROM=http://$NETNS_HOST_IP:$PROM_PORT
cat >"$TMPD/prometheus.yml" <<EOF
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: osprey-dispatcher
  static_configs:
  - targets: ['127.0.0.1:$D_PORT']
    labels: {namespace: osprey, pod: osprey-dispatcher-test}
- job_name: osprey-worker
  static_configs:
  - targets: ['${W[0]}:8080']
    labels: {namespace: osprey, pod: ${POD[0]}}
  - targets: ['${W[1]}:8080']
    labels: {namespace: osprey, pod: ${POD[1]}}
EOF
prometheus --config.file="$TMPD/prometheus.yml" --storage.tsdb.path="$TMPD/prom-data" \
    --web.listen-address="$NETNS_HOST_IP:$PROM_PORT" >"$TMPD/prometheus.log" 2>&1 &
PIDS+=($!)
prom_value() { # QUERY → the first sample's value (empty when none)
    curl -s --max-time 2 "$PROM/api/v1/query" --data-urlencode "query=$1" |
        $PY -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null
}
for ((i = 0; i < 300; i++)); do
    [ "$(prom_value 'count(up{job=~"osprey-.*"} == 1)')" = 3 ] &&
        [ -n "$(prom_value 'sum(osprey_dispatch_inflight{namespace="osprey"})')" ] && break
    sleep 0.1
done
[ $i -lt 300 ] || { tail -5 "$TMPD/prometheus.log"; fail "Prometheus does not see the three targets"; }
say "Prometheus at $PROM scrapes the dispatcher and both workers"

# The adapter's Service and its endpoint at the adapter's address, the APIServices. With
# --enable-aggregator-routing the API server looks the endpoint up in the
# Service's EndpointSlices (1.36: an Endpoints object alone is "cannot find
# endpointslices"; no controller here mirrors one into the other).
K apply -f - >/dev/null <<EOF || fail "apply"
apiVersion: v1
kind: Service
metadata: {name: prometheus-adapter, namespace: osprey}
spec:
  ports: [{name: https, port: 443, targetPort: 6443}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: prometheus-adapter
  namespace: osprey
  labels: {kubernetes.io/service-name: prometheus-adapter}
addressType: IPv4
endpoints: [{addresses: ["$ADAPTER_IP"], conditions: {ready: true}}]
ports: [{name: https, port: 6443, protocol: TCP}]
EOF
# Both metrics APIs the adapter serves (the shipped APIServices carry a CA
# bundle; the adapter's certificate here is self-signed, so skip the check).
for g in external custom; do
    K apply -f - >/dev/null <<EOF || fail "apply the $g APIService"
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.$g.metrics.k8s.io}
spec:
  group: $g.metrics.k8s.io
  version: v1beta1
  service: {name: prometheus-adapter, namespace: osprey, port: 443}
  insecureSkipTLSVerify: true
  groupPriorityMinimum: 100
  versionPriority: 100
EOF
done

# The adapter inside the namespace, on its address; it reaches the API
# server and Prometheus at the host end. Its kubeconfigs are the admin's
# (the test's; the shipped deployment gives it a ServiceAccount).
KC=$K8S_DIR/admin.kubeconfig
mkdir -p "$TMPD/adapter-certs"
netns_exec "$ADAPTER" --secure-port=6443 --bind-address="$ADAPTER_IP" --cert-dir="$TMPD/adapter-certs" \
    --lister-kubeconfig="$KC" --authentication-kubeconfig="$KC" --authorization-kubeconfig="$KC" \
    --prometheus-url="$PROM/" --config="$TMPD/adapter.yaml" --metrics-relist-interval=5s \
    >"$TMPD/adapter.log" 2>&1 &
PIDS+=($!)
ext_value() { # the external metric as the API server serves it (empty on error)
    K get --raw /apis/external.metrics.k8s.io/v1beta1/namespaces/osprey/osprey_dispatch_inflight 2>/dev/null |
        $PY -c 'import json,sys; i=json.load(sys.stdin)["items"]; print(i[0]["value"] if i else "")' 2>/dev/null
}
for ((i = 0; i < 300; i++)); do [ -n "$(ext_value)" ] && break; sleep 0.1; done
[ $i -lt 300 ] || {
    tail -15 "$TMPD/adapter.log"
    K get apiservice v1beta1.external.metrics.k8s.io -o jsonpath='{.status.conditions}'; echo
    fail "the external metric is not served through the API server"
}
say "external.metrics.k8s.io through the API server: osprey_dispatch_inflight = $(ext_value)"
# The shipped per-pod rule, through custom.metrics.k8s.io: one value per
# labelled pod (the HPA does not use it here, see above; this proves the
# rule and the metric name against the live series).
pods_value() { # → "POD=VALUE ..." sorted, for the Deployment's pods
    K get --raw "/apis/custom.metrics.k8s.io/v1beta1/namespaces/osprey/pods/*/osprey_inflight_requests?labelSelector=app%3Dosprey-worker" 2>/dev/null |
        $PY -c 'import json,sys; print(" ".join(sorted("%s=%s" % (i["describedObject"]["name"], i["value"]) for i in json.load(sys.stdin)["items"])))' 2>/dev/null
}
for ((i = 0; i < 150; i++)); do [ "$(pods_value)" = "${POD[0]}=0 ${POD[1]}=0" ] && break; sleep 0.2; done
[ $i -lt 150 ] || fail "custom.metrics.k8s.io osprey_inflight_requests at rest: '$(pods_value)'"
say "custom.metrics.k8s.io through the API server: osprey_inflight_requests $(pods_value)"

K apply -f "$TMPD/hpa.json" >/dev/null || fail "apply the HPA"
replicas() { K -n osprey get deployment osprey-worker -o jsonpath='{.spec.replicas}'; }
hpa_status() { K -n osprey get hpa osprey-worker -o jsonpath="{.status.conditions[?(@.type==\"$1\")].status}"; }
for ((i = 0; i < 150; i++)); do [ "$(hpa_status ScalingActive)" = True ] && break; sleep 0.2; done
[ $i -lt 150 ] || { K -n osprey describe hpa osprey-worker | tail -15; fail "the HPA never read its metric"; }
say "HPA ScalingActive; at rest spec.replicas = $(replicas) (minReplicas $MIN)"
sleep 4
[ "$(replicas)" = "$MIN" ] || fail "at rest spec.replicas $(replicas), not minReplicas $MIN"

# --- load: scale-out --------------------------------------------------------
# Closed loop, TARGET × (MIN + 4) users: the dispatcher's in-flight total is
# about that, so the HPA's desired count is MIN + 4 (capped at maxReplicas).
want=$((MIN + 4)); [ $want -gt "$MAX" ] && want=$MAX
users=$($PY -c 'import sys,math; t=sys.argv[1]; v=float(t[:-1])/1000 if t.endswith("m") else float(t); print(max(1, math.ceil(v*int(sys.argv[2]))))' "$TARGET" $((MIN + 4)))
say "load: $users closed-loop users through the dispatcher for 35 s (expect spec.replicas $want)"
"$OSPREY" load --url "$D_URL" --mode closed --concurrency "$users" --duration 35s \
    --images "$IMG" >"$TMPD/load.log" 2>&1 &
LOAD_PID=$!
PIDS+=($LOAD_PID)
load_t=$(date +%s) peak=$MIN out_in= last=$MIN
while [ $(($(date +%s) - load_t)) -lt 35 ]; do
    sleep 0.5
    r=$(replicas)
    [ "$r" -gt "$peak" ] && peak=$r
    if [ -z "$out_in" ] && [ "$r" -gt "$MIN" ]; then
        out_in=$(($(date +%s) - load_t))
        loaded_pods=$(pods_value)
    fi
    [ "$r" != "$last" ] && say "spec.replicas $last → $r (external metric $(ext_value))" && last=$r
    [ "$r" -le "$want" ] || fail "spec.replicas $r above $want"
done
[ -n "$out_in" ] || { K -n osprey describe hpa osprey-worker | tail -15; fail "no scale-out under load"; }
[ "$out_in" -le 30 ] || fail "scale-out $out_in s after the load started"
# Both labelled pods report requests in flight (their share of the users).
say "per pod under load: $loaded_pods"
$PY -c 'import sys; v=[float(x.split("=")[1].rstrip("m"))/(1000 if x.endswith("m") else 1) for x in sys.argv[1].split()]; sys.exit(not (len(v) == 2 and min(v) > 0))' "$loaded_pods" ||
    fail "osprey_inflight_requests per pod under load: '$loaded_pods'"
[ "$peak" = "$want" ] || { K -n osprey describe hpa osprey-worker | tail -15; fail "scale-out reached $peak, not $want"; }
wait "$LOAD_PID"; rc=$?
[ $rc = 0 ] || { cat "$TMPD/load.log"; fail "osprey load exit $rc"; }
grep -E 'errors|throughput' "$TMPD/load.log" | head -3
pods=$(K -n osprey get pods -l app=osprey-worker -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | sort | uniq -c | tr -s ' \n' ' ')
say "scale-out: $MIN → $peak, the first step $out_in s after the load started; pods by phase:$pods(no kubelet here: they stay Pending)"

# --- load gone: scale-in -----------------------------------------------------
stop_t=$(date +%s)
for ((i = 0; i < 120; i++)); do
    r=$(replicas)
    [ "$r" != "$last" ] && say "spec.replicas $last → $r" && last=$r
    [ "$r" = "$MIN" ] && break
    sleep 0.5
done
[ "$r" = "$MIN" ] || { K -n osprey describe hpa osprey-worker | tail -15; fail "no scale-in to $MIN within 60 s (at $r)"; }
say "scale-in to minReplicas $MIN $(($(date +%s) - stop_t)) s after the load stopped (window 10 s)"
K -n osprey get hpa osprey-worker
echo "PASS ($(($(date +%s) - T0)) s; the API server is stopped with SIGKILL if SIGTERM is ignored for 10 s)"
