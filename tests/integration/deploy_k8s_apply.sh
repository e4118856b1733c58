#!/usr/bin/env bash
# deploy_k8s_apply.sh — every overlay of deploy/kubernetes applied to a real
# control plane (scripts/kube-test-cluster.sh: kube-apiserver with RBAC and
# Pod Security admission, kube-controller-manager with the Deployment,
# ReplicaSet, service-account, garbage-collector and namespace controllers;
# etcd; all on 127.0.0.1), and scripts/deploy.sh + scripts/cleanup.sh on it.
#
# Per overlay, on an empty cluster:
#   - `kubectl apply --dry-run=server -k` first fails only with 'namespaces
#     "..." not found' (a server dry run creates nothing, so the objects of
#     a namespace it would create have nowhere to go — kubectl's documented
#     behaviour) and leaves nothing behind; with the overlay's Namespaces
#     applied for real, the server dry run of everything passes (admission,
#     validation, RBAC escalation checks) and still creates nothing;
#   - Pod Security admission is enforced in those namespaces (a pod without
#     the restricted profile is refused), then `kubectl apply -k` for real;
#     `kubectl diff -k` finds nothing to change;
#   - every Deployment gets a ReplicaSet with the expected replicas and that
#     many Pods (which passed admission). The Pods stay Pending: there is no
#     kubelet here, so nothing runs and no rollout completes;
#   - `kubectl auth can-i --as=system:serviceaccount:...`: each service
#     account can do what it needs and nothing more (dispatcher: list/watch
#     EndpointSlices in osprey; autoscaler: get/patch deployments/scale and
#     get deployments, of osprey-worker only; prometheus-adapter: read pods
#     and namespaces, delegate authentication; the workers' default
#     account: nothing);
#   - the real programs with those accounts' tokens: `osprey dispatch
#     --k8s-service` lists the worker Service's EndpointSlices; `osprey
#     autoscale` with the overlay's autoscale.json observes osprey-worker
#     and, below its minimum, scales it there (the ReplicaSet follows);
#     another Deployment's scale is forbidden to it;
#   - the APIServices of prometheus-adapter (production): the server accepts
#     them, and reports them Available=False because their Service has no
#     endpoints here (no adapter pod runs) — said, not hidden;
#   - scripts/cleanup.sh removes everything: namespaces gone or
#     terminating at once, gone within a minute, cluster-wide objects gone.
# Then scripts/deploy.sh: --dry-run=client changes nothing; a real deploy
# with --timeout 5s applies and fails on the rollouts (no kubelet) with a
# message; --no-wait returns 0; --adapter-cert makes the adapter's Secret
# and caBundles (a re-apply keeps them); cleanup.sh (waiting) removes it all.
# Skips (77) only when the cluster cannot be built here (no Go, etcd or
# openssl). About 90 s with the cluster's binaries cached (first build: ~6 min).
set -u
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${OSP_BUILD_DIR:-$SRC/build}
OSPREY=${OSPREY:-$BUILD/osprey}
SCALE_TOOL=$BUILD/tests/osp_k8s_scale
CLUSTER=$SRC/scripts/kube-test-cluster.sh
PY=$SRC/.venv/bin/python
[ -x "$PY" ] || PY=python3
OVERLAYS_DIR=$SRC/deploy/kubernetes/overlays
fail() { echo "FAIL: $*"; exit 1; }

[ -x "$OSPREY" ] || fail "no osprey binary at $OSPREY (build first)"
[ -x "$SCALE_TOOL" ] || fail "no $SCALE_TOOL (build the tests first)"
TMP=$(mktemp -d)
PIDS=()
MAIN=$BASHPID
cleanup() {
  local p
  # Only the test's own shell: a subshell that inherited the trap must not
  # stop the cluster or remove the directory under the running test.
  [ "$BASHPID" = "$MAIN" ] || return 0
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  "$CLUSTER" stop "$TMP/c" >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
"$CLUSTER" start "$TMP/c"
rc=$?
[ $rc = 77 ] && { echo "SKIP: the test cluster cannot be built here (see above)"; exit 77; }
[ $rc = 0 ] || fail "the test cluster did not start"
. "$TMP/c/env"
export KUBECONFIG=$TMP/c/admin.kubeconfig KUBECTL
K() { "$KUBECTL" "$@"; }

# The expected replicas per overlay and Deployment. The worker's count
# belongs to the autoscaler (the manifests leave spec.replicas out), so it
# starts at 1; no HPA controller runs here.
declare -A WANT=(
  [dev/osprey-worker]=1 [dev/osprey-dispatcher]=1 [dev/osprey-autoscaler]=1
  [production/osprey-worker]=1 [production/osprey-dispatcher]=3 [production/prometheus-adapter]=1
  [production-osprey-autoscaler/osprey-worker]=1 [production-osprey-autoscaler/osprey-dispatcher]=3
  [production-osprey-autoscaler/osprey-autoscaler]=1
)

# Lines "KIND NAMESPACE NAME REPLICAS" of a rendered file.
objects_of() { # FILE
  "$PY" - "$1" <<'EOF'
import sys, yaml
for o in yaml.safe_load_all(open(sys.argv[1])):
    if o:
        print(o["kind"], o["metadata"].get("namespace", "-"), o["metadata"]["name"],
              o.get("spec", {}).get("replicas", "-") if o["kind"] == "Deployment" else "-")
EOF
}

# kubectl auth can-i as a service account; EXPECT is yes or no.
can() { # EXPECT SA_NS SA VERB RESOURCE [ARGS...]
  local want=$1 sa="system:serviceaccount:$2:$3" got
  got=$(K auth can-i "${@:4}" --as="$sa" 2>/dev/null)
  [ "$got" = "$want" ] || fail "can-i ${*:4} as $sa: '$got', expected $want"
}

# The ReplicaSet of Deployment NAME in NS reaches N replicas and N Pods.
wait_rs() { # NS NAME N
  local i rs pods
  for ((i = 0; i < 100; i++)); do
    rs=$(K -n "$1" get rs -o jsonpath="{range .items[?(@.metadata.ownerReferences[0].name==\"$2\")]}{.spec.replicas}/{.status.replicas} {end}")
    pods=$(K -n "$1" get pods -o name 2>/dev/null | grep -c "^pod/$2-")
    [ "$rs" = "$3/$3 " ] && [ "$pods" = "$3" ] && return 0
    sleep 0.3
  done
  fail "deployment $1/$2: ReplicaSets '$rs', $pods pods, expected $3 (events: $(K -n "$1" get events --field-selector reason=FailedCreate -o jsonpath='{.items[*].message}'))"
}

# A kubeconfig with a service account's token (what the pod would mount).
sa_kubeconfig() { # SA
  K -n osprey create token "$1" --duration=1h >"$TMP/$1.token" || fail "create token $1"
  cat >"$TMP/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: sa
clusters: [{name: c, cluster: {server: "$API_URL", certificate-authority: "$TMP/c/ca.crt"}}]
users: [{name: sa, user: {tokenFile: "$TMP/$1.token"}}]
contexts: [{name: sa, context: {cluster: c, user: sa}}]
EOF
}

namespaces_gone() { # NS...: gone or terminating at once, gone within 60 s
  local ns i phase
  for ns in "$@"; do
    phase=$(K get ns "$ns" -o jsonpath='{.status.phase}' 2>/dev/null)
    [ -z "$phase" ] || [ "$phase" = Terminating ] || fail "namespace $ns is $phase after cleanup"
  done
  for ns in "$@"; do
    for ((i = 0; i < 300; i++)); do K get ns "$ns" >/dev/null 2>&1 || break; sleep 0.2; done
    K get ns "$ns" >/dev/null 2>&1 && fail "namespace $ns still exists a minute after cleanup: $(K get ns "$ns" -o jsonpath='{.status.conditions}')"
  done
  return 0
}

PSA_POD='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"psa-probe"},"spec":{"containers":[{"name":"c","image":"osprey"}]}}'

for dir in "$OVERLAYS_DIR"/*/; do
  o=$(basename "$dir")
  echo "== overlay $o"
  K kustomize "$dir" >"$TMP/$o.yaml" || fail "kustomize $o"
  objects_of "$TMP/$o.yaml" >"$TMP/$o.objects" || fail "cannot read the rendered $o"
  nss=$(awk '$1 == "Namespace" {print $3}' "$TMP/$o.objects")

  # Server dry run on the empty cluster: only the missing namespaces stop it.
  K apply --dry-run=server -k "$dir" >"$TMP/dry1.out" 2>&1 && fail "server dry run on an empty cluster passed?"
  others=$(grep -v '^[a-z0-9.]*/[a-z0-9.-]* created (server dry run)$' "$TMP/dry1.out" |
           grep -v 'namespaces "[a-z-]*" not found' || true)
  [ -z "$others" ] || fail "server dry run of $o: $others"
  for ns in $nss; do K get ns "$ns" >/dev/null 2>&1 && fail "the dry run created namespace $ns"; done
  # With the namespaces there, the whole overlay passes and creates nothing.
  "$PY" - "$TMP/$o.yaml" >"$TMP/$o.ns.yaml" <<'EOF'
import sys, yaml
yaml.safe_dump_all([o for o in yaml.safe_load_all(open(sys.argv[1])) if o and o["kind"] == "Namespace"], sys.stdout)
EOF
  K apply -f "$TMP/$o.ns.yaml" >/dev/null || fail "apply the namespaces of $o"
  K apply --dry-run=server -k "$dir" >"$TMP/dry2.out" 2>&1 || fail "server dry run of $o: $(cat "$TMP/dry2.out")"
  n=$(grep -c '(server dry run)$' "$TMP/dry2.out")
  [ "$n" = "$(wc -l <"$TMP/$o.objects")" ] || fail "server dry run of $o covered $n of $(wc -l <"$TMP/$o.objects") objects"
  [ -z "$(K get deploy -A -o name)" ] || fail "the server dry run created Deployments"
  echo "server dry run: $n objects accepted (after the namespaces were created; nothing else created)"

  # Pod Security admission (restricted) is enforced where the pods go.
  for ns in osprey $(grep -q osprey-adapter <<<"$nss" && echo osprey-adapter); do
    if out=$(K -n "$ns" apply --dry-run=server -f - <<<"$PSA_POD" 2>&1); then
      fail "namespace $ns admits a pod outside the restricted profile: $out"
    fi
    grep -q 'violates PodSecurity "restricted' <<<"$out" || fail "unexpected refusal in $ns: $out"
  done

  K apply -k "$dir" >"$TMP/apply.out" 2>&1 || fail "apply -k $o: $(cat "$TMP/apply.out")"
  K diff -k "$dir" >"$TMP/diff.out" 2>&1 || fail "kubectl diff after apply of $o: $(cat "$TMP/diff.out")"
  echo "applied: $(wc -l <"$TMP/apply.out") objects; kubectl diff: no changes"

  # ReplicaSets and Pods (Pending: no kubelet).
  while read -r kind ns name _; do
    [ "$kind" = Deployment ] || continue
    want=${WANT[$o/$name]:-}
    [ -n "$want" ] || fail "no expected replicas for $o/$name in this test"
    wait_rs "$ns" "$name" "$want"
    phases=$(K -n "$ns" get pods -o jsonpath='{.items[*].status.phase}' | tr ' ' '\n' | sort -u | tr '\n' ' ')
    echo "deployment $ns/$name: ReplicaSet with $want replicas, pods: ${phases:-none} (no kubelet here)"
  done <"$TMP/$o.objects"
  [ "$(K -n osprey get pods -o jsonpath='{.items[*].status.phase}' | tr ' ' '\n' | sort -u)" = Pending ] ||
    fail "pods are not all Pending"

  # RBAC: what each account needs, and nothing more.
  can yes osprey osprey-dispatcher list endpointslices.discovery.k8s.io -n osprey
  can yes osprey osprey-dispatcher watch endpointslices.discovery.k8s.io -n osprey
  can no osprey osprey-dispatcher get endpointslices.discovery.k8s.io -n osprey
  can no osprey osprey-dispatcher list endpointslices.discovery.k8s.io -n default
  can no osprey osprey-dispatcher list endpointslices.discovery.k8s.io -A
  can no osprey osprey-dispatcher create endpointslices.discovery.k8s.io -n osprey
  can no osprey osprey-dispatcher delete endpointslices.discovery.k8s.io -n osprey
  can no osprey osprey-dispatcher list pods -n osprey
  can no osprey osprey-dispatcher list services -n osprey
  can no osprey osprey-dispatcher get secrets -n osprey
  can no osprey osprey-dispatcher patch deployments/osprey-worker --subresource=scale -n osprey
  can no osprey default list pods -n osprey
  can no osprey default list endpointslices.discovery.k8s.io -n osprey
  can no osprey default get secrets -n osprey
  if grep -q '^Deployment osprey osprey-autoscaler' "$TMP/$o.objects"; then
    can yes osprey osprey-autoscaler get deployments/osprey-worker --subresource=scale -n osprey
    can yes osprey osprey-autoscaler patch deployments/osprey-worker --subresource=scale -n osprey
    can yes osprey osprey-autoscaler get deployments/osprey-worker -n osprey
    can no osprey osprey-autoscaler update deployments/osprey-worker --subresource=scale -n osprey
    can no osprey osprey-autoscaler patch deployments/osprey-worker -n osprey
    can no osprey osprey-autoscaler delete deployments/osprey-worker -n osprey
    can no osprey osprey-autoscaler patch deployments/osprey-dispatcher --subresource=scale -n osprey
    can no osprey osprey-autoscaler get deployments/osprey-dispatcher -n osprey
    can no osprey osprey-autoscaler list deployments -n osprey
    can no osprey osprey-autoscaler get deployments/osprey-worker --subresource=scale -n default
    can no osprey osprey-autoscaler get secrets -n osprey
    can no osprey osprey-autoscaler list endpointslices.discovery.k8s.io -n osprey
  else
    can no osprey osprey-autoscaler get deployments/osprey-worker --subresource=scale -n osprey
  fi
  if grep -q '^Deployment osprey-adapter prometheus-adapter' "$TMP/$o.objects"; then
    can yes osprey-adapter prometheus-adapter list pods -A
    can yes osprey-adapter prometheus-adapter watch namespaces
    can yes osprey-adapter prometheus-adapter create tokenreviews.authentication.k8s.io
    can yes osprey-adapter prometheus-adapter create subjectaccessreviews.authorization.k8s.io
    can yes osprey-adapter prometheus-adapter get configmaps/extension-apiserver-authentication -n kube-system
    can no osprey-adapter prometheus-adapter get secrets -n osprey
    can no osprey-adapter prometheus-adapter list configmaps -n osprey
    can no osprey-adapter prometheus-adapter patch deployments/osprey-worker --subresource=scale -n osprey
    can no osprey-adapter prometheus-adapter delete pods -n osprey
  fi
  echo "RBAC: every service account can do what it needs, and no more"

  # The programs themselves with those tokens.
  sa_kubeconfig osprey-dispatcher
  "$OSPREY" dispatch --host 127.0.0.1 --port 0 --admin-port -1 --k8s-service osprey/osprey-worker:8080 \
    --k8s-api "$API_URL" --k8s-token "$TMP/osprey-dispatcher.token" --k8s-ca "$TMP/c/ca.crt" >"$TMP/dispatch.log" 2>&1 &
  PIDS+=($!)
  for ((i = 0; i < 150; i++)); do grep -q "\"k8s list\"" "$TMP/dispatch.log" && break; sleep 0.1; done
  kill "${PIDS[@]}"; wait 2>/dev/null; PIDS=()
  grep -q '"msg":"k8s list","slices":0' "$TMP/dispatch.log" ||
    fail "the dispatcher's discovery with its service account: $(head -5 "$TMP/dispatch.log")"
  grep -qi forbidden "$TMP/dispatch.log" && fail "the dispatcher was forbidden: $(grep -i forbidden "$TMP/dispatch.log")"
  echo "osprey dispatch --k8s-service with the dispatcher's token: EndpointSlices listed"
  if grep -q '^Deployment osprey osprey-autoscaler' "$TMP/$o.objects"; then
    sa_kubeconfig osprey-autoscaler
    cfg=$(K -n osprey get configmap -o name | grep osprey-autoscaler-)
    K -n osprey get "$cfg" -o jsonpath='{.data.autoscale\.json}' >"$TMP/autoscale.json"
    min=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["min"])' "$TMP/autoscale.json")
    # Flags win over the file: only where it listens and the Prometheus URL
    # (nothing to resolve or reach here) change; no metrics → it holds, but
    # never below min.
    "$OSPREY" autoscale --config "$TMP/autoscale.json" --kubeconfig "$TMP/osprey-autoscaler.kubeconfig" \
      --host 127.0.0.1 --port 0 --prometheus http://127.0.0.1:9 --tick-s 0.2 >"$TMP/autoscale.log" 2>&1 &
    PIDS+=($!)
    for ((i = 0; i < 50; i++)); do grep -q '"msg":"decision"' "$TMP/autoscale.log" && break; sleep 0.1; done
    sleep 0.5
    kill "${PIDS[@]}"; wait 2>/dev/null; PIDS=()
    grep '"source":"actuator"' "$TMP/autoscale.log" && fail "the autoscaler's actuator failed with its own Role"
    grep -q '"msg":"decision","current":1,"ready":0' "$TMP/autoscale.log" ||
      fail "the autoscaler did not observe osprey-worker: $(head -5 "$TMP/autoscale.log")"
    wait_rs osprey osprey-worker "$min"
    "$SCALE_TOOL" --kubeconfig "$TMP/osprey-autoscaler.kubeconfig" --deployment osprey/osprey-dispatcher observe \
      >/dev/null 2>"$TMP/scale.err" && fail "the autoscaler's token reads the dispatcher's scale"
    grep -q forbidden "$TMP/scale.err" || fail "unexpected error: $(cat "$TMP/scale.err")"
    echo "osprey autoscale with its token and the overlay's autoscale.json: observed 1 worker, scaled to min $min; the dispatcher's scale is forbidden to it"
  fi

  # prometheus-adapter's APIServices: accepted, unavailable without a running adapter.
  for api in $(awk '$1 == "APIService" {print $3}' "$TMP/$o.objects"); do
    for ((i = 0; i < 50; i++)); do
      reason=$(K get apiservice "$api" -o jsonpath='{.status.conditions[?(@.type=="Available")].status}/{.status.conditions[?(@.type=="Available")].reason}')
      [ "${reason#*/}" != "" ] && break
      sleep 0.2
    done
    case "$reason" in
      False/EndpointsNotFound|False/MissingEndpoints|False/ServiceNotFound) ;;
      *) fail "APIService $api: Available=$reason, expected False (no adapter pod runs here)" ;;
    esac
    echo "APIService $api: accepted; Available=${reason%/*} ($(K get apiservice "$api" -o jsonpath='{.status.conditions[0].message}')) — no adapter pod runs without a kubelet"
  done

  # cleanup.sh removes it all.
  KUBECTL=$KUBECTL "$SRC/scripts/cleanup.sh" --no-wait "$dir" >"$TMP/cleanup.out" 2>&1 || fail "cleanup.sh $o: $(cat "$TMP/cleanup.out")"
  # shellcheck disable=SC2086
  namespaces_gone $nss
  while read -r kind ns name _; do
    [ "$ns" = - ] || continue
    K get "$kind" "$name" >/dev/null 2>&1 && fail "$kind $name is still there after cleanup"
  done <"$TMP/$o.objects"
  echo "cleanup.sh: namespaces ($(echo $nss)) and cluster-wide objects gone"
done

# --- scripts/deploy.sh ------------------------------------------------------
echo "== scripts/deploy.sh"
D=$SRC/scripts/deploy.sh
"$D" --dry-run=client production >"$TMP/d.out" 2>&1 || fail "deploy.sh --dry-run=client: $(cat "$TMP/d.out")"
grep -q 'deployment.apps/osprey-worker created (dry run)' "$TMP/d.out" || fail "deploy.sh --dry-run=client said: $(cat "$TMP/d.out")"
K get ns osprey >/dev/null 2>&1 && fail "deploy.sh --dry-run=client created namespace osprey"
echo "deploy.sh --dry-run=client: $(grep -c '(dry run)$' "$TMP/d.out") objects, nothing created"
t0=$(date +%s)
"$D" --timeout 5s production-osprey-autoscaler >"$TMP/d.out" 2>&1 && fail "deploy.sh waited for rollouts that cannot finish without a kubelet?"
t1=$(date +%s)
grep -q 'deploy: some rollouts did not finish within 5s' "$TMP/d.out" || fail "deploy.sh said: $(tail -5 "$TMP/d.out")"
[ $((t1 - t0)) -lt 60 ] || fail "deploy.sh --timeout 5s took $((t1 - t0)) s"
for dep in osprey-worker osprey-dispatcher osprey-autoscaler; do
  grep -q "waiting for deployment $dep in osprey" "$TMP/d.out" || fail "deploy.sh did not wait for $dep"
done
if [ -f "$SRC/deploy/monitoring/kustomization.yaml" ]; then
  grep -q 'kubectl apply -k deploy/monitoring' "$TMP/d.out" || fail "deploy.sh skipped the monitoring stack"
  K get ns osprey-monitoring >/dev/null || fail "deploy.sh did not create namespace osprey-monitoring"
  for dep in prometheus alertmanager grafana; do
    grep -q "waiting for deployment $dep in osprey-monitoring" "$TMP/d.out" || fail "deploy.sh did not wait for $dep"
  done
  # Prometheus discovers pods in osprey (its Role there) and nothing else.
  for r in pods endpoints services; do
    can yes osprey-monitoring prometheus list "$r" -n osprey
    can yes osprey-monitoring prometheus watch "$r" -n osprey
  done
  can no osprey-monitoring prometheus list pods -n default
  can no osprey-monitoring prometheus list pods -n osprey-monitoring
  can no osprey-monitoring prometheus get secrets -n osprey
  can no osprey-monitoring prometheus delete pods -n osprey
  echo "deploy.sh: the monitoring stack applied after the overlay; Prometheus' account lists pods/endpoints/services in osprey only"
fi
echo "deploy.sh --timeout 5s: applied, then exit 1 after $((t1 - t0)) s: rollouts cannot finish here (no kubelet)"
"$D" --no-wait --adapter-cert production >"$TMP/d.out" 2>&1 || fail "deploy.sh --no-wait: $(tail -5 "$TMP/d.out")"
grep -q waiting "$TMP/d.out" && fail "deploy.sh --no-wait waited"
K get hpa -n osprey osprey-worker >/dev/null || fail "deploy.sh --no-wait production: no HPA"
echo "deploy.sh --no-wait --adapter-cert production: applied over it, exit 0"
# --adapter-cert: the Secret holds a certificate for the adapter's Service
# name that the APIServices' caBundle verifies, and a re-apply keeps it.
K -n osprey-adapter get secret prometheus-adapter-tls -o jsonpath='{.data.tls\.crt}' | base64 -d >"$TMP/tls.crt" ||
  fail "no Secret prometheus-adapter-tls"
"$D" --no-wait production >/dev/null 2>&1 || fail "deploy.sh again"
for api in v1beta1.custom.metrics.k8s.io v1beta1.external.metrics.k8s.io; do
  K get apiservice "$api" -o jsonpath='{.spec.caBundle}' | base64 -d >"$TMP/ca.crt"
  openssl verify -CAfile "$TMP/ca.crt" "$TMP/tls.crt" >/dev/null 2>&1 ||
    fail "the caBundle of $api does not verify the adapter's certificate"
done
openssl x509 -in "$TMP/tls.crt" -noout -ext subjectAltName | grep -q 'DNS:prometheus-adapter.osprey-adapter.svc' ||
  fail "the adapter's certificate lacks its Service name"
echo "deploy.sh --adapter-cert: Secret prometheus-adapter-tls for prometheus-adapter.osprey-adapter.svc, verified by both caBundles (kept by a re-apply)"
# Switching overlays leaves the other autoscaler behind (docs/kubernetes.md):
# clean both, waiting this time.
for o in production production-osprey-autoscaler; do
  "$SRC/scripts/cleanup.sh" --timeout 90s "$o" >"$TMP/c.out" 2>&1 || fail "cleanup.sh $o: $(tail -5 "$TMP/c.out")"
done
K get ns osprey >/dev/null 2>&1 && fail "namespace osprey still exists after cleanup.sh (waiting)"
K get ns osprey-adapter >/dev/null 2>&1 && fail "namespace osprey-adapter still exists after cleanup.sh (waiting)"
echo "cleanup.sh (waiting): all gone"
echo "PASS"
