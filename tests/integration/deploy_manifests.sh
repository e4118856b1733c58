#!/usr/bin/env bash
# deploy_manifests.sh — the Kubernetes manifests, checked offline by the
# tools that consume them (issue 14):
#   - `kubectl kustomize` builds base, every overlay under
#     deploy/kubernetes/overlays/ and deploy/monitoring (when it
#     exists); a kustomization that selects both autoscaling components
#     fails to build (each removes the worker's spec.replicas);
#   - kubeconform -strict (scripts/go-tool.sh kubeconform, pinned, built from the Go
#     module proxy and cached) validates every rendered object against the
#     Kubernetes 1.30 .. 1.37 schemas of PyPI kubernetes-validate, made
#     self-contained by scripts/kube-schemas.py. It runs in a network
#     namespace with no interface but loopback (`unshare -n`) and with a
#     dead proxy in the environment, so any fetch fails; a kind without a
#     schema (a custom resource) fails too — and the test shows that
#     kubeconform does reject an unknown field and a custom resource, so a
#     pass is not a skip;
#   - yamllint (the repository's .yamllint) is clean over deploy/;
#   - deploy_manifests.py asserts the policy facts over each render
#     (requests = limits, hardened securityContexts, probes, grace period >
#     preStop + drain, Ingress limits = osprey's, narrow RBAC, one
#     autoscaler, the HPA's metrics = the adapter's rules, NetworkPolicies);
#   - the settings files in the ConfigMaps are what osprey accepts: a real
#     `osprey serve` with serve.json + model.json (paths mapped to the local
#     models and 127.0.0.1) becomes ready, a real `osprey dispatch` with
#     dispatch.json proxies to it, and `osprey autoscale` parses every
#     autoscale.json.
# Skips (77) only when kubectl, yamllint, Go or the kubernetes-validate
# package is missing. 40 to 75 s (mostly the serve starts) once kubeconform
# is cached (its first build: ~1 min).
set -u
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${OSP_BUILD_DIR:-$SRC/build}
OSPREY=${OSPREY:-$BUILD/osprey}
PY=$SRC/.venv/bin/python
K8S=$SRC/deploy/kubernetes
MON=$SRC/deploy/monitoring
VERSIONS=(1.30 1.31 1.32 1.33 1.34 1.35 1.36 1.37)
fail() { echo "FAIL: $*"; exit 1; }

# kubectl (for kustomize): the machine's, else the one built with the tests'
# control plane (scripts/kube-test-cluster.sh; exit 77 without Go).
KUBECTL=$(command -v kubectl) || {
  rc=0; KUBECTL=$("$SRC/scripts/kube-test-cluster.sh" kubectl) || rc=$?
  [ $rc = 77 ] && { echo "SKIP: no kubectl, and none can be built here (Go missing)"; exit 77; }
  [ $rc = 0 ] || { echo "FAIL: building kubectl (scripts/kube-test-cluster.sh kubectl) failed"; exit 1; }
}
command -v yamllint >/dev/null || { echo "SKIP: yamllint is not installed (scripts/install-deps.sh)"; exit 77; }
[ -x "$PY" ] || PY=python3
"$PY" -c 'import kubernetes_validate, yaml' 2>/dev/null ||
  { echo "SKIP: the Python package kubernetes-validate is missing (scripts/setup-venv.sh)"; exit 77; }
KC=$("$SRC/scripts/go-tool.sh" kubeconform); rc=$?
[ $rc = 77 ] && { echo "SKIP: kubeconform cannot be built here: Go is not installed"; exit 77; }
[ $rc = 0 ] || fail "scripts/go-tool.sh kubeconform failed"
SCHEMAS=$("$PY" "$SRC/scripts/kube-schemas.py" "${VERSIONS[@]}") || fail "scripts/kube-schemas.py failed"

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

# --- build every kustomization --------------------------------------------
declare -A RENDERED
render() { # NAME DIR
  "$KUBECTL" kustomize "$2" >"$TMP/$1.yaml" 2>"$TMP/$1.err" || fail "kustomize $2: $(cat "$TMP/$1.err")"
  RENDERED[$1]=$TMP/$1.yaml
  echo "built $2: $(grep -c '^kind:' "$TMP/$1.yaml") objects"
}
render base "$K8S/base"
OVERLAYS=()
for d in "$K8S"/overlays/*/; do
  o=$(basename "$d"); OVERLAYS+=("$o")
  render "$o" "$d"
done
[ ${#OVERLAYS[@]} -ge 3 ] || fail "expected dev, production and production-osprey-autoscaler, found ${OVERLAYS[*]}"
if [ -d "$MON" ]; then
  render monitoring "$MON"
else
  echo "note: $MON does not exist yet; not built"
fi

# Both autoscaling components at once must not build.
mkdir -p "$TMP/both"
rel=$(realpath --relative-to="$TMP/both" "$K8S")
printf 'resources: [%s/base]\ncomponents: [%s/components/hpa, %s/components/osprey-autoscaler]\n' \
  "$rel" "$rel" "$rel" >"$TMP/both/kustomization.yaml"
if "$KUBECTL" kustomize "$TMP/both" >/dev/null 2>"$TMP/both.err"; then
  fail "a kustomization with both the HPA and the osprey autoscaler builds"
fi
grep -q "replicas" "$TMP/both.err" || fail "both components failed for another reason: $(cat "$TMP/both.err")"
echo "both autoscaling components together: refused (each component removes the worker's spec.replicas)"

# --- kubeconform, offline ---------------------------------------------------
# No network: a private network namespace when the kernel lets us make one
# (only loopback inside), and in any case a dead proxy for every scheme.
# (-r: as an unprivileged user, in a user namespace of its own.)
NONET=()
if unshare -n true 2>/dev/null; then NONET=(unshare -n)
elif unshare -rn true 2>/dev/null; then NONET=(unshare -rn)
else echo "note: unshare -n is not available here; relying on the dead proxy alone"
fi
offline() {
  env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 \
      https_proxy=http://127.0.0.1:9 NO_PROXY= no_proxy= "${NONET[@]}" "$@"
}
grep -rl '"\$ref":"\(https\?:\|/\)' "$SCHEMAS"/v1.*-local-strict >/dev/null &&
  fail "a converted schema still refers to a URL or an absolute path"
LOCATION="$SCHEMAS/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json"
kubeconform() { # VERSION FILE...
  offline "$KC" -strict -summary -output text -kubernetes-version "$1.0" -schema-location "$LOCATION" "${@:2}"
}

# First, that it rejects what it must: an unknown field, a custom resource.
cat >"$TMP/bad.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad, namespace: osprey}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers: [{name: c, image: i, imagePullPolicyy: Always}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: cr, namespace: osprey}
EOF
if out=$(kubeconform 1.30 "$TMP/bad.yaml" 2>&1); then fail "kubeconform accepted an invalid file: $out"; fi
grep -q "additional properties 'imagePullPolicyy' not allowed" <<<"$out" || fail "unknown field not reported: $out"
grep -q "could not find schema for ServiceMonitor" <<<"$out" || fail "custom resource not reported: $out"
echo "kubeconform rejects an unknown field and a custom resource, offline"

files=()
for n in "${!RENDERED[@]}"; do files+=("${RENDERED[$n]}"); done
total=0
for n in "${!RENDERED[@]}"; do total=$((total + $(grep -c '^kind:' "${RENDERED[$n]}"))); done
for v in "${VERSIONS[@]}"; do
  out=$(kubeconform "$v" "${files[@]}" 2>&1) || fail "kubeconform, Kubernetes $v:"$'\n'"$out"
  want="Summary: $total resources found in ${#files[@]} files - Valid: $total, Invalid: 0, Errors: 0, Skipped: 0"
  [ "$(tail -1 <<<"$out")" = "$want" ] || fail "kubeconform, Kubernetes $v: $out (wanted: $want)"
  echo "Kubernetes $v: $total objects valid (strict, offline)"
done

# --- yamllint -------------------------------------------------------------
out=$(cd "$SRC" && yamllint -s -f parsable deploy 2>&1) || fail "yamllint deploy/:"$'\n'"$out"
echo "yamllint: deploy/ clean"

# --- policy facts ---------------------------------------------------------
for o in "${OVERLAYS[@]}"; do
  "$PY" "$SRC/tests/integration/deploy_manifests.py" "$o" "${RENDERED[$o]}" || fail "policy facts of overlay $o"
done

# --- the settings files against the real binary ---------------------------
[ -x "$OSPREY" ] || fail "no osprey binary at $OSPREY (build first)"
# Every distinct ConfigMap file of every overlay, mapped to this machine:
# /models -> the local models, /etc/osprey -> the extracted files, ports to
# free loopback ports.
"$PY" - "$TMP/cfg" "${RENDERED[@]}" <<'EOF' || fail "cannot extract the ConfigMaps"
import os, sys, yaml
out = sys.argv[1]
for path in sys.argv[2:]:
    for o in yaml.safe_load_all(open(path)):
        if o and o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(("osprey-config-", "osprey-autoscaler-")):
            d = os.path.join(out, o["metadata"]["name"])
            os.makedirs(d, exist_ok=True)
            for k, v in o["data"].items():
                open(os.path.join(d, k), "w").write(v)
EOF
. "$SRC/scripts/find-models.sh"
MODELS=$(osp_models_dir 2>/dev/null || true)
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL SECONDS
  local i
  for ((i = 0; i < $2 * 5; i++)); do curl -sf -o /dev/null "$1" && return 0; sleep 0.2; done
  return 1
}
local_copy() { # IN OUT WPORT DPORT: the file with this machine's paths and ports
  sed -e "s#\"/models/#\"$MODELS/#g" -e "s#\"/etc/osprey/#\"$(dirname "$2")/#g" \
      -e "s#\"/tmp/osprey-cache\"#\"$TMP/cache\"#" -e 's#"0.0.0.0"#"127.0.0.1"#' \
      -e "s#\"port\": 8080#\"port\": $3#" -e "s#\"port\": 8000#\"port\": $4#" -e 's#"admin_port": 8001#"admin_port": 0#' \
      "$1" >"$2"
}
checked=0
for d in "$TMP"/cfg/osprey-config-*/; do
  if [ -z "$MODELS" ] || [ ! -f "$MODELS/tflite/mobilenet_v2_1.0_224_quant.tflite" ]; then
    echo "note: no local model weights (scripts/find-models.sh): serve.json not run"; break
  fi
  mkdir -p "$d/local"
  wp=$(free_port) dp=$(free_port)
  local_copy "$d/serve.json" "$d/local/serve.json" "$wp" "$dp"
  local_copy "$d/model.json" "$d/local/model.json" "$wp" "$dp"
  local_copy "$d/dispatch.json" "$d/local/dispatch.json" "$wp" "$dp"
  "$OSPREY" serve --config "$d/local/serve.json" >"$d/serve.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$wp/v2/health/ready" 60 || fail "serve with $(basename "$d")/serve.json: $(tail -5 "$d/serve.log")"
  "$OSPREY" dispatch --config "$d/local/dispatch.json" --backend "127.0.0.1:$wp" >"$d/dispatch.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$dp/v2/health/ready" 20 || fail "dispatch with $(basename "$d")/dispatch.json: $(tail -5 "$d/dispatch.log")"
  img=$(ls "$SRC"/tests/data/images/*.jpg 2>/dev/null | head -1)
  if [ -n "$img" ]; then
    out=$(curl -sf -H 'Content-Type: image/jpeg' --data-binary "@$img" "http://127.0.0.1:$dp/classify") ||
      fail "classify through dispatch.json's dispatcher failed"
    grep -q '"label"' <<<"$out" || fail "classify answered $out"
  fi
  threads=$(grep -o '"threads": [0-9]*' "$d/serve.json")
  echo "$(basename "$d"): serve.json ($threads) ready, dispatch.json proxies to it"
  kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; PIDS=()
  checked=$((checked + 1))
done
for f in "$TMP"/cfg/osprey-autoscaler-*/autoscale.json; do
  # A usage error (exit 2, e.g. an unknown key) comes at once; a valid file
  # starts the loop, which we stop after a second.
  sed -e 's#"0.0.0.0"#"127.0.0.1"#' -e 's#"port": 8002#"port": 0#' "$f" >"$f.local"
  printf 'apiVersion: v1\nkind: Config\ncurrent-context: x\nclusters: [{name: x, cluster: {server: "https://127.0.0.1:9"}}]\nusers: [{name: x, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: x, user: x}}]\n' >"$TMP/dead.kubeconfig"
  timeout 2 "$OSPREY" autoscale --config "$f.local" --kubeconfig "$TMP/dead.kubeconfig" >"$f.log" 2>&1
  rc=$?
  [ $rc = 124 ] || fail "osprey autoscale with $f exited $rc: $(tail -3 "$f.log")"
  grep -q '"autoscale: started","actuator":"kubernetes","source":"prometheus"' "$f.log" ||
    fail "autoscale.json did not select the Kubernetes actuator and Prometheus: $(head -3 "$f.log")"
  echo "$(basename "$(dirname "$f")"): autoscale.json accepted (Kubernetes actuator, Prometheus source)"
done
echo "PASS"
