#!/usr/bin/env bash
# deploy_prometheus_k8s.sh — the cluster Prometheus config
# (deploy/monitoring/kubernetes/prometheus.yml) run unchanged by upstream
# Prometheus with the Kubernetes service discovery (issue 14, CTest label
# deploy): Debian's prometheus lacks that discovery, so deploy_monitoring.sh
# can only feed the relabelling a file_sd copy; here the real pod role meets
# a real API server.
#
#   - a control plane from scripts/kube-test-cluster.sh (127.0.0.1);
#   - namespace osprey with the osprey pods: the Deployments of
#     deploy/kubernetes/overlays/dev applied (their pods made by the real
#     controllers) when that overlay exists, else minimal pods with the
#     labels and named ports the relabelling expects (worker http,
#     dispatcher http + admin, autoscaler metrics); and decoys: another
#     app's pod, an osprey pod without a known component, a Pending worker,
#     a worker whose port is not named http/metrics, an osprey worker in
#     namespace default;
#   - no kubelet runs, so the test gives each pod a loopback podIP and sets
#     it Running (decoy-pending: Pending) through the status subresource
#     (nothing overrides it), and serves a small /metrics page on each
#     osprey pod's ip:port;
#   - `kubectl apply -k deploy/monitoring` (the shipped ServiceAccount, Role
#     and RoleBinding, and the ConfigMap prometheus-config);
#   - upstream Prometheus of the shipped image's version
#     (scripts/prometheus-upstream.sh, built and cached) started as in its pod: the config byte for byte from that ConfigMap,
#     the Deployment's own args (only the listen address → 127.0.0.1 and the
#     TSDB path → a temp dir), and the in-cluster credentials where
#     client-go looks for them — a token of the shipped ServiceAccount and
#     the cluster CA under /var/run/secrets/kubernetes.io/serviceaccount,
#     KUBERNETES_SERVICE_HOST/PORT — in a private mount namespace (unshare),
#     which also holds the rule files at /etc/prometheus/rules and maps the
#     config's `alertmanager` host to 127.0.0.1 so nothing leaves loopback.
#     So the shipped RBAC is what discovery runs with;
# then /api/v1/targets must list exactly the osprey pods (one target each,
# on podIP:the port named http|metrics) with job osprey-<component>,
# component, namespace osprey, pod; each scraped and up; the decoys among
# the dropped targets (discovered, then relabelled away), the pod in
# namespace default nowhere; and the ServiceAccount may list pods in osprey
# and nothing in default (kubectl auth can-i).
# Skips (77) only when Go, etcd, openssl or unshare is missing. The first
# run builds Prometheus and the control plane (minutes, cached after).
set -euo pipefail
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MON=$SRC/deploy/monitoring
OVERLAY=$SRC/deploy/kubernetes/overlays/dev
CLUSTER=$SRC/scripts/kube-test-cluster.sh
PY=/usr/bin/python3
fail() { echo "FAIL: $*"; exit 1; }
command -v unshare >/dev/null || { echo "SKIP: unshare (util-linux) not installed"; exit 77; }

rc=0
PROMETHEUS=$("$SRC/scripts/prometheus-upstream.sh" prometheus) || rc=$?
[ $rc = 77 ] && { echo "SKIP: upstream Prometheus cannot be built here (see above)"; exit 77; }
[ $rc = 0 ] || fail "scripts/prometheus-upstream.sh prometheus"
"$PROMETHEUS" --version 2>&1 | sed -n 1p

TMP=$(mktemp -d /tmp/osp_prom_k8s.XXXXXX)
C=$TMP/c PROM_PID= SERVER_PID=
cleanup() {
    local p
    for p in $PROM_PID $SERVER_PID; do { kill "$p" && wait "$p"; } 2>/dev/null || true; done
    "$CLUSTER" stop "$C" >/dev/null 2>&1 || true
    rm -rf "$TMP"
}
trap cleanup EXIT
T0=$SECONDS

rc=0
"$CLUSTER" start "$C" || rc=$?
[ $rc = 77 ] && { echo "SKIP: the test cluster cannot be built here (see above)"; exit 77; }
[ $rc = 0 ] || fail "the test cluster did not start"
. "$C/env"
K() { "$KUBECTL" --kubeconfig "$C/admin.kubeconfig" "$@"; }

# --- the osprey pods ----------------------------------------------------------
# pod NAME NAMESPACE LABELS PORTS: a pod that never runs (no kubelet);
# LABELS "k: v, ...", PORTS "name:port ..." (an empty name: an unnamed port).
# Hardened enough for a namespace that enforces Pod Security "restricted"
# (the overlay's osprey namespace does).
pod() {
    local ports="" p
    for p in $4; do
        ports+="{containerPort: ${p#*:}"
        [ -n "${p%%:*}" ] && ports+=", name: ${p%%:*}"
        ports+="}, "
    done
    printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: %s, labels: {%s}}\n' "$1" "$2" "$3"
    printf 'spec:\n  securityContext: {runAsNonRoot: true, runAsUser: 65534, seccompProfile: {type: RuntimeDefault}}\n'
    printf '  containers: [{name: main, image: registry.invalid/osprey:test, ports: [%s],\n' "$ports"
    printf '    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]\n---\n'
}
OSP="app.kubernetes.io/part-of: osprey, app.kubernetes.io/component"
if [ -d "$OVERLAY" ]; then
    echo "== the osprey pods: deploy/kubernetes/overlays/dev applied, pods from its Deployments"
    K apply -k "$OVERLAY" >"$TMP/apply.log" || { cat "$TMP/apply.log"; fail "kubectl apply -k overlays/dev"; }
    mapfile -t DEPLOYS < <(K -n osprey get deployments -l app.kubernetes.io/part-of=osprey -o name)
    [ ${#DEPLOYS[@]} -gt 0 ] || fail "overlays/dev has no osprey Deployments in namespace osprey"
    want=0
    for d in "${DEPLOYS[@]}"; do want=$((want + $(K -n osprey get "$d" -o jsonpath='{.spec.replicas}'))); done
    for ((i = 0; i < 150; i++)); do
        have=$(K -n osprey get pods -l app.kubernetes.io/part-of=osprey -o name | wc -l)
        [ "$have" -ge "$want" ] && break
        sleep 0.2
    done
    [ "$have" -ge "$want" ] || fail "the controllers made $have of $want osprey pods in 30 s"
else
    echo "== the osprey pods: minimal pods (deploy/kubernetes/overlays/dev does not exist)"
    K create namespace osprey >/dev/null
    { pod osprey-worker-a osprey "$OSP: worker" "http:8080"
      pod osprey-worker-b osprey "$OSP: worker" "http:8080"
      pod osprey-dispatcher-a osprey "$OSP: dispatcher" "http:8000 admin:8001"
      pod osprey-autoscaler-a osprey "$OSP: autoscaler" "metrics:8002"
    } | K apply -f - >/dev/null || fail "create the osprey pods"
fi
# Every pod the relabelling must keep: osprey's, with a known component.
mapfile -t KEEP < <(K -n osprey get pods -o name \
    -l 'app.kubernetes.io/part-of=osprey,app.kubernetes.io/component in (worker,dispatcher,autoscaler)')
echo "osprey pods: ${KEEP[*]#pod/}"
# ... and they are all of osprey's pods, a worker and a dispatcher among them.
[ "$(K -n osprey get pods -l app.kubernetes.io/part-of=osprey -o name | wc -l)" = ${#KEEP[@]} ] ||
    fail "osprey pods without a worker|dispatcher|autoscaler component label"
for c in worker dispatcher; do
    [ -n "$(K -n osprey get pods -l "app.kubernetes.io/component=$c" -o name)" ] || fail "no $c pod"
done
{ pod decoy-other-app osprey "app.kubernetes.io/part-of: shop, app.kubernetes.io/component: worker" "http:8080"
  pod decoy-no-component osprey "app.kubernetes.io/part-of: osprey" "http:8080"
  pod decoy-loadgen osprey "$OSP: loadgen" "http:8080"
  pod decoy-pending osprey "$OSP: worker" "http:8080"
  pod decoy-unnamed-port osprey "$OSP: worker" ":8080 other:9100"
  pod decoy-other-namespace default "$OSP: worker" "http:8080"
} | K apply -f - >/dev/null || fail "create the decoys"

# A loopback podIP each (127.0.0.10, .11, ...) and phase Running, but
# decoy-pending: Pending with its IP, as a pod whose containers are still
# being created (a pod without an IP is not even discovered).
n=10
for p in "${KEEP[@]#pod/}" decoy-other-app decoy-no-component decoy-loadgen decoy-pending \
         decoy-unnamed-port decoy-other-namespace; do
    ns=osprey; [ "$p" = decoy-other-namespace ] && ns=default
    phase=Running; [ "$p" = decoy-pending ] && phase=Pending
    ip=127.0.0.$n; n=$((n + 1))
    K -n "$ns" patch pod "$p" --subresource=status --type=merge \
      -p "{\"status\":{\"phase\":\"$phase\",\"podIP\":\"$ip\",\"podIPs\":[{\"ip\":\"$ip\"}]}}" >/dev/null ||
        fail "set $p $phase at $ip"
done
# The expected targets, from the pods as the API server holds them.
K get pods -A -o json >"$TMP/pods.json"
$PY - "$TMP/pods.json" "$TMP/expected.json" "${KEEP[@]#pod/}" <<'PYEOF' || fail "the osprey pods' ports"
import json, sys
pods = {p["metadata"]["name"]: p for p in json.load(open(sys.argv[1]))["items"]}
want = {}
for name in sys.argv[3:]:
    p = pods[name]
    ports = [c["containerPort"] for ct in p["spec"]["containers"] for c in ct.get("ports", [])
             if c.get("name") in ("http", "metrics")]
    assert len(ports) == 1, f"{name}: ports named http|metrics: {ports} (one wanted)"
    comp = p["metadata"]["labels"]["app.kubernetes.io/component"]
    want[f"{p['status']['podIP']}:{ports[0]}"] = {
        "job": f"osprey-{comp}", "component": comp, "namespace": "osprey", "pod": name}
json.dump(want, open(sys.argv[2], "w"), indent=1)
print(f"expected targets: {len(want)}")
PYEOF

# A /metrics page on each expected target address (Prometheus 3 wants the
# text format's Content-Type).
$PY - "$TMP/expected.json" >"$TMP/server.log" 2>&1 <<'PYEOF' &
import http.server, json, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"# TYPE osprey_test_page gauge\nosprey_test_page 1\n"
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
servers = []
for addr in json.load(open(sys.argv[1])):
    host, port = addr.rsplit(":", 1)
    servers.append(http.server.ThreadingHTTPServer((host, int(port)), H))
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("serving", flush=True)
servers[0].serve_forever()
PYEOF
SERVER_PID=$!

# --- the shipped monitoring stack and its ServiceAccount --------------------------
echo "== kubectl apply -k deploy/monitoring"
K apply -k "$MON" >"$TMP/apply-mon.log" || { cat "$TMP/apply-mon.log"; fail "kubectl apply -k deploy/monitoring"; }
SA=(--as=system:serviceaccount:osprey-monitoring:prometheus)
for check in "yes list pods -n osprey" "yes watch endpoints -n osprey" "no list pods -n default" \
             "no list pods -A" "no get secrets -n osprey"; do
    read -r want verb what ns <<<"$check"
    # shellcheck disable=SC2086  # the namespace flag is one or two words
    got=$(K auth can-i "$verb" "$what" $ns "${SA[@]}" 2>/dev/null || true)
    [ "$got" = "$want" ] || fail "prometheus may $verb $what $ns: $got, expected $want"
done
echo "ok: the prometheus ServiceAccount reads pods/endpoints in osprey only"
K -n osprey-monitoring create token prometheus --duration=1h >"$TMP/token" || fail "create token"
CM=$(K -n osprey-monitoring get deployment prometheus \
    -o jsonpath='{.spec.template.spec.volumes[?(@.name=="config")].configMap.name}')
K -n osprey-monitoring get configmap "$CM" -o jsonpath='{.data.prometheus\.yml}' >"$TMP/prometheus.yml"
cmp -s "$TMP/prometheus.yml" "$MON/kubernetes/prometheus.yml" ||
    fail "ConfigMap $CM is not kubernetes/prometheus.yml"
mapfile -t ARGS < <(K -n osprey-monitoring get deployment prometheus \
    -o jsonpath='{range .spec.template.spec.containers[?(@.name=="prometheus")].args[*]}{@}{"\n"}{end}')
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
CONF_DIR=
for i in "${!ARGS[@]}"; do
    case "${ARGS[$i]}" in
        --web.listen-address=*) ARGS[i]=--web.listen-address=127.0.0.1:$PORT ;;
        --storage.tsdb.path=*) ARGS[i]=--storage.tsdb.path=$TMP/data ;;
        --config.file=*) CONF_DIR=$(dirname "${ARGS[$i]#*=}") ;;
    esac
done
case "$CONF_DIR" in /etc/prometheus/*) ;; *) fail "--config.file outside /etc/prometheus: '$CONF_DIR'" ;; esac
echo "prometheus args: ${ARGS[*]}"

# --- Prometheus as in its pod -------------------------------------------------------
# The pod's files, placed by a private mount namespace: the config where the
# ConfigMap is mounted, the rules, the service account's token and CA.
cp "$C/ca.crt" "$TMP/ca.crt"; echo osprey-monitoring >"$TMP/namespace"
{ cat /etc/hosts; echo "127.0.0.1 alertmanager"; } >"$TMP/hosts"
UNSHARE=(unshare --mount --propagation private)
[ "$(id -u)" = 0 ] || UNSHARE=(unshare --map-root-user --mount --propagation private)
KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$API_PORT \
"${UNSHARE[@]}" bash -euc '
    T=$1 CONF_DIR=$2 MON=$3; shift 3
    mount -t tmpfs tmpfs /run
    S=/run/secrets/kubernetes.io/serviceaccount
    mkdir -p "$S"; cp "$T/token" "$T/ca.crt" "$T/namespace" "$S/"
    mount -t tmpfs tmpfs /etc/prometheus
    mkdir -p "$CONF_DIR" /etc/prometheus/rules
    cp "$T/prometheus.yml" "$CONF_DIR/"; cp "$MON"/prometheus/rules/*.yml /etc/prometheus/rules/
    mount --bind "$T/hosts" /etc/hosts
    exec "$@"' prometheus "$TMP" "$CONF_DIR" "$MON" "$PROMETHEUS" "${ARGS[@]}" \
    >"$TMP/prometheus.log" 2>&1 </dev/null &
PROM_PID=$!
URL=http://127.0.0.1:$PORT
for ((i = 0; i < 150; i++)); do
    curl -sf "$URL/-/ready" >/dev/null 2>&1 && break
    kill -0 "$PROM_PID" 2>/dev/null || { tail -20 "$TMP/prometheus.log"; fail "prometheus exited"; }
    sleep 0.2
done
curl -sf "$URL/-/ready" >/dev/null || { tail -20 "$TMP/prometheus.log"; fail "prometheus not ready in 30 s"; }
grep -q serving "$TMP/server.log" || { cat "$TMP/server.log"; fail "the /metrics pages did not start"; }

# --- the targets ----------------------------------------------------------------------
# Discovery, relabelling and a scrape each (5 s interval): poll up to 60 s
# for the final state, then judge it.
echo "== /api/v1/targets"
ok=1
for ((i = 0; i < 60; i++)); do
    curl -sf "$URL/api/v1/targets?state=any" >"$TMP/targets.json" || true
    if $PY - "$TMP/targets.json" "$TMP/expected.json" quiet <<'PYEOF'; then ok=0; break; fi
import json, sys
t, want = json.load(open(sys.argv[1]))["data"], json.load(open(sys.argv[2]))
act = [x for x in t["activeTargets"] if x["scrapePool"] == "osprey-pods"]
sys.exit(0 if len(act) == len(want) and all(x["health"] == "up" for x in act) else 1)
PYEOF
    sleep 1
done
[ $ok = 0 ] || echo "note: the targets did not settle in 60 s; judging what there is"
$PY - "$TMP/targets.json" "$TMP/expected.json" <<'PYEOF' || { tail -20 "$TMP/prometheus.log"; fail "targets"; }
import json, sys
t, want = json.load(open(sys.argv[1]))["data"], json.load(open(sys.argv[2]))
ok = True
def check(c, msg):
    global ok
    print(("ok: " if c else "FAIL: ") + msg)
    ok = ok and c
act = [x for x in t["activeTargets"] if x["scrapePool"] == "osprey-pods"]
got = {x["labels"]["instance"]: x for x in act}
check(len(act) == len(got), f"one target per address ({len(act)} targets)")
check(set(got) == set(want), f"targets {sorted(got)} = the osprey pods' {sorted(want)}")
for addr, labels in sorted(want.items()):
    x = got.get(addr)
    if not x:
        continue
    sub = {k: x["labels"].get(k) for k in labels}
    check(sub == labels, f"{addr}: {sub}")
    check(x["scrapeUrl"] == f"http://{addr}/metrics", f"{addr}: scrapes {x['scrapeUrl']}")
    check(x["health"] == "up", f"{addr}: health {x['health']} {x.get('lastError', '')}")
pool = lambda x: x.get("scrapePool") or x["discoveredLabels"].get("job")
dropped = {x["discoveredLabels"].get("__meta_kubernetes_pod_name")
           for x in t["droppedTargets"] if pool(x) == "osprey-pods"}
for p in ("decoy-other-app", "decoy-no-component", "decoy-loadgen", "decoy-pending", "decoy-unnamed-port"):
    check(p in dropped, f"{p}: discovered and dropped")
namespaces = {x["discoveredLabels"].get("__meta_kubernetes_namespace")
              for x in t["droppedTargets"] + t["activeTargets"] if pool(x) == "osprey-pods"}
check(namespaces == {"osprey"}, f"only namespace osprey discovered: {sorted(namespaces)}")
# The dispatcher's admin port (or any second port of a kept pod) is dropped, not a second target.
kept_pods = {v["pod"] for v in want.values()}
extra = [x["discoveredLabels"].get("__address__") for x in t["droppedTargets"]
         if x["discoveredLabels"].get("__meta_kubernetes_pod_name") in kept_pods]
print(f"other ports of the osprey pods, dropped: {extra}")
sys.exit(0 if ok else 1)
PYEOF
# The rule files load where the config looks for them (/etc/prometheus/rules).
curl -sf "$URL/api/v1/rules" >"$TMP/rules.json" || fail "/api/v1/rules"
$PY - "$TMP/rules.json" "$MON"/prometheus/rules/*.yml <<'PYEOF' || fail "rules"
import json, sys, yaml
groups = json.load(open(sys.argv[1]))["data"]["groups"]
loaded = sum(len(g["rules"]) for g in groups)
shipped = sum(len(g["rules"]) for f in sys.argv[2:] for g in yaml.safe_load(open(f))["groups"])
bad = [r["name"] for g in groups for r in g["rules"] if r.get("health") == "err"]
print(("ok: " if loaded == shipped and not bad else "FAIL: ") + f"{loaded} of {shipped} rules loaded, errors: {bad}")
sys.exit(0 if loaded == shipped and not bad else 1)
PYEOF
grep -qi "forbidden" "$TMP/prometheus.log" && { grep -i forbidden "$TMP/prometheus.log" | head -3; fail "discovery was refused"; }
echo "PASS: deploy_prometheus_k8s ($((SECONDS - T0)) s after the build)"
