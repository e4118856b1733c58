#!/usr/bin/env bash
# deploy.sh — deploys osprey to the cluster of the current kubectl context:
# one overlay of deploy/kubernetes, then the monitoring stack
# (deploy/monitoring, when present: it comes second because its pod-discovery
# Role lives in the overlay's namespace `osprey`; the autoscalers hold their
# count until Prometheus answers), each with `kubectl apply -k`; then waits for every
# Deployment of both to finish its rollout. docs/kubernetes.md explains the
# overlays; scripts/cleanup.sh undoes this.
#
#   scripts/deploy.sh [options] OVERLAY
#
# OVERLAY  dev | production | production-osprey-autoscaler (a directory of
#          deploy/kubernetes/overlays), or the path of any kustomization
# options:
#   --dry-run=client|server  passed to kubectl apply; nothing is changed and
#                            nothing waited for. `server` asks the API server
#                            (admission, validation) but needs the namespaces
#                            to exist already
#   --no-wait                apply, do not wait for the rollouts
#   --timeout DURATION       per Deployment rollout (kubectl's syntax, default 10m)
#   --no-monitoring          only the overlay
#   --adapter-cert           (overlays with prometheus-adapter, clusters without
#                            cert-manager) make its serving certificate: a new
#                            CA and a certificate for
#                            prometheus-adapter.osprey-adapter.svc (openssl,
#                            1 year), into the Secret prometheus-adapter-tls,
#                            and that CA into both APIServices' caBundle.
#                            Run again to renew; the CA's key is not kept
#   -h, --help               this text
# Environment: KUBECTL (default kubectl), and whatever kubectl reads
# (KUBECONFIG, ...).
# Exit: 0 applied (and rolled out unless --no-wait); 1 kubectl failed or a
# rollout did not finish in time; 2 usage.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
KUBECTL=${KUBECTL:-kubectl}
MONITORING=$ROOT/deploy/monitoring

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "deploy: $*" >&2; exit 1; }

# The overlay argument to a kustomization directory (cleanup.sh uses it too).
overlay_dir() { # NAME_OR_PATH
  if [ -f "$1/kustomization.yaml" ]; then (cd "$1" && pwd -P)
  elif [ -f "$ROOT/deploy/kubernetes/overlays/$1/kustomization.yaml" ]; then
    echo "$ROOT/deploy/kubernetes/overlays/$1"
  else
    echo "$(basename "$0"): no overlay '$1' (one of: $(cd "$ROOT/deploy/kubernetes/overlays" && echo *), or a kustomization directory)" >&2
    exit 2
  fi
}

ADAPTER_NS=osprey-adapter
ADAPTER_SVC=prometheus-adapter
ADAPTER_APIS=(v1beta1.custom.metrics.k8s.io v1beta1.external.metrics.k8s.io)

# prometheus-adapter's serving certificate and the APIServices' caBundle
# (docs/kubernetes.md, "prometheus-adapter's certificate").
adapter_cert() {
  command -v openssl >/dev/null || die "--adapter-cert needs openssl"
  local t dns=$ADAPTER_SVC.$ADAPTER_NS.svc api
  t=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$t'" RETURN
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 365 -subj "/CN=osprey-adapter-ca" \
      -keyout "$t/ca.key" -out "$t/ca.crt" 2>/dev/null || die "openssl: the CA"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$dns" -keyout "$t/tls.key" -out "$t/tls.csr" 2>/dev/null ||
    die "openssl: the request"
  printf 'subjectAltName=DNS:%s,DNS:%s.cluster.local,DNS:%s.%s\nextendedKeyUsage=serverAuth\n' \
      "$dns" "$dns" "$ADAPTER_SVC" "$ADAPTER_NS" >"$t/ext"
  openssl x509 -req -in "$t/tls.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" -CAcreateserial -days 365 \
      -sha256 -extfile "$t/ext" -out "$t/tls.crt" 2>/dev/null || die "openssl: the certificate"
  "$KUBECTL" -n "$ADAPTER_NS" create secret tls prometheus-adapter-tls --cert "$t/tls.crt" --key "$t/tls.key" \
      --dry-run=client -o yaml | "$KUBECTL" apply -f - || die "cannot write the Secret prometheus-adapter-tls"
  for api in "${ADAPTER_APIS[@]}"; do
    "$KUBECTL" patch apiservice "$api" --type merge \
        -p "{\"spec\":{\"caBundle\":\"$(base64 -w0 "$t/ca.crt")\"}}" || die "cannot set the caBundle of $api"
  done
  # A running adapter reads its certificate at start.
  "$KUBECTL" -n "$ADAPTER_NS" rollout restart "deployment/$ADAPTER_SVC" >/dev/null || true
}

# The Deployments of an applied kustomization, as NAMESPACE/NAME lines.
deployments_of() { # DIR
  "$KUBECTL" get -k "$1" \
    -o jsonpath='{range .items[?(@.kind=="Deployment")]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}'
}

main() {
  local dry="" wait=1 timeout=10m monitoring=1 overlay="" cert=0 a
  while [ $# -gt 0 ]; do
    a=$1; shift
    case "$a" in
      --dry-run=client|--dry-run=server) dry=$a ;;
      --dry-run) dry=--dry-run=client ;;
      --no-wait) wait=0 ;;
      --timeout) timeout=${1:?--timeout needs a duration}; shift ;;
      --timeout=*) timeout=${a#--timeout=} ;;
      --no-monitoring) monitoring=0 ;;
      --adapter-cert) cert=1 ;;
      -h|--help) usage; exit 0 ;;
      -*) echo "deploy: unknown option '$a' (try --help)" >&2; exit 2 ;;
      *) [ -z "$overlay" ] || { echo "deploy: one overlay only" >&2; exit 2; }; overlay=$a ;;
    esac
  done
  [ -n "$overlay" ] || { usage >&2; exit 2; }
  local dir
  dir=$(overlay_dir "$overlay")
  command -v "$KUBECTL" >/dev/null || die "kubectl not found (set KUBECTL)"

  local dirs=("$dir")
  [ $monitoring = 1 ] && [ -f "$MONITORING/kustomization.yaml" ] && dirs+=("$MONITORING")
  local d
  for d in "${dirs[@]}"; do
    echo "deploy: kubectl apply -k ${d#"$ROOT"/} ${dry}" >&2
    "$KUBECTL" apply -k "$d" ${dry:+"$dry"} || die "kubectl apply -k $d failed"
  done
  [ -z "$dry" ] || return 0
  if [ $cert = 1 ]; then
    "$KUBECTL" get apiservice "${ADAPTER_APIS[0]}" >/dev/null 2>&1 ||
      die "--adapter-cert: this overlay has no prometheus-adapter (components/hpa)"
    adapter_cert
  fi
  [ $wait = 1 ] || return 0

  # prometheus-adapter cannot start without its serving certificate.
  if "$KUBECTL" get apiservice v1beta1.custom.metrics.k8s.io >/dev/null 2>&1 &&
     ! "$KUBECTL" -n "$ADAPTER_NS" get secret prometheus-adapter-tls >/dev/null 2>&1; then
    echo "deploy: warning: no Secret osprey-adapter/prometheus-adapter-tls: prometheus-adapter waits for it" \
         "(--adapter-cert, or docs/kubernetes.md, \"prometheus-adapter's certificate\")" >&2
  fi
  local dep failed=0
  for d in "${dirs[@]}"; do
    for dep in $(deployments_of "$d"); do
      echo "deploy: waiting for deployment ${dep#*/} in ${dep%/*} (up to $timeout)" >&2
      "$KUBECTL" -n "${dep%/*}" rollout status "deployment/${dep#*/}" --timeout "$timeout" || failed=1
    done
  done
  [ $failed = 0 ] || die "some rollouts did not finish within $timeout (kubectl get pods -A; kubectl describe ...)"
  echo "deploy: ${overlay} rolled out" >&2
}

# cleanup.sh sources this file for overlay_dir.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
