#!/usr/bin/env bash
# deploy.sh — deploys osprey to the cluster of the current kubectl context:
# the monitoring stack (deploy/monitoring/kubernetes, when present: Prometheus
# first, since the autoscalers read it), then one overlay of
# deploy/kubernetes, each with `kubectl apply -k`; then waits for every
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
#   -h, --help               this text
# Environment: KUBECTL (default kubectl), and whatever kubectl reads
# (KUBECONFIG, ...).
# Exit: 0 applied (and rolled out unless --no-wait); 1 kubectl failed or a
# rollout did not finish in time; 2 usage.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
KUBECTL=${KUBECTL:-kubectl}
MONITORING=$ROOT/deploy/monitoring/kubernetes

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

# The Deployments of an applied kustomization, as NAMESPACE/NAME lines.
deployments_of() { # DIR
  "$KUBECTL" get -k "$1" \
    -o jsonpath='{range .items[?(@.kind=="Deployment")]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}'
}

main() {
  local dry="" wait=1 timeout=10m monitoring=1 overlay="" a
  while [ $# -gt 0 ]; do
    a=$1; shift
    case "$a" in
      --dry-run=client|--dry-run=server) dry=$a ;;
      --dry-run) dry=--dry-run=client ;;
      --no-wait) wait=0 ;;
      --timeout) timeout=${1:?--timeout needs a duration}; shift ;;
      --timeout=*) timeout=${a#--timeout=} ;;
      --no-monitoring) monitoring=0 ;;
      -h|--help) usage; exit 0 ;;
      -*) echo "deploy: unknown option '$a' (try --help)" >&2; exit 2 ;;
      *) [ -z "$overlay" ] || { echo "deploy: one overlay only" >&2; exit 2; }; overlay=$a ;;
    esac
  done
  [ -n "$overlay" ] || { usage >&2; exit 2; }
  local dir
  dir=$(overlay_dir "$overlay")
  command -v "$KUBECTL" >/dev/null || die "kubectl not found (set KUBECTL)"

  local dirs=()
  [ $monitoring = 1 ] && [ -f "$MONITORING/kustomization.yaml" ] && dirs+=("$MONITORING")
  dirs+=("$dir")
  local d
  for d in "${dirs[@]}"; do
    echo "deploy: kubectl apply -k ${d#"$ROOT"/} ${dry}" >&2
    "$KUBECTL" apply -k "$d" ${dry:+"$dry"} || die "kubectl apply -k $d failed"
  done
  [ -z "$dry" ] && [ $wait = 1 ] || return 0

  # prometheus-adapter cannot start without its serving certificate.
  if "$KUBECTL" get apiservice v1beta1.custom.metrics.k8s.io >/dev/null 2>&1 &&
     ! "$KUBECTL" -n osprey-adapter get secret prometheus-adapter-tls >/dev/null 2>&1; then
    echo "deploy: warning: no Secret osprey-adapter/prometheus-adapter-tls: prometheus-adapter waits for it" \
         "(docs/kubernetes.md, \"prometheus-adapter's certificate\")" >&2
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
