#!/usr/bin/env bash
# cleanup.sh — removes what scripts/deploy.sh deployed:
# the overlay first (the service, its autoscaler, prometheus-adapter and its
# APIServices, the namespaces), then the monitoring stack
# (deploy/monitoring, when present; its discovery Role went with namespace
# osprey). The overlay goes first because its APIServices must: while an
# aggregated API is registered but unavailable, the namespace controller
# cannot finish deleting any namespace. Objects already gone are
# fine (--ignore-not-found), so it can be run again after a partial failure.
#
#   scripts/cleanup.sh [options] OVERLAY
#
# OVERLAY  the one given to deploy.sh: dev | production |
#          production-osprey-autoscaler, or a kustomization path
# options:
#   --no-wait            do not wait for the objects (the namespaces above all)
#                        to be gone; they finish terminating in the background
#   --timeout DURATION   how long kubectl delete waits (default 5m)
#   --no-monitoring      leave the monitoring stack
#   -h, --help           this text
# Environment: KUBECTL (default kubectl), and whatever kubectl reads.
# Exit: 0 deleted; 1 kubectl failed or timed out; 2 usage.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=deploy.sh
. "$ROOT/scripts/deploy.sh"

main_cleanup() {
  local wait=true timeout=5m monitoring=1 overlay="" a
  while [ $# -gt 0 ]; do
    a=$1; shift
    case "$a" in
      --no-wait) wait=false ;;
      --timeout) timeout=${1:?--timeout needs a duration}; shift ;;
      --timeout=*) timeout=${a#--timeout=} ;;
      --no-monitoring) monitoring=0 ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
      -*) echo "cleanup: unknown option '$a' (try --help)" >&2; exit 2 ;;
      *) [ -z "$overlay" ] || { echo "cleanup: one overlay only" >&2; exit 2; }; overlay=$a ;;
    esac
  done
  [ -n "$overlay" ] || { echo "usage: scripts/cleanup.sh [--no-wait] [--timeout D] [--no-monitoring] OVERLAY" >&2; exit 2; }
  local dir
  dir=$(overlay_dir "$overlay")
  command -v "$KUBECTL" >/dev/null || { echo "cleanup: kubectl not found (set KUBECTL)" >&2; exit 1; }

  local dirs=("$dir")
  [ $monitoring = 1 ] && [ -f "$MONITORING/kustomization.yaml" ] && dirs+=("$MONITORING")
  local d
  for d in "${dirs[@]}"; do
    echo "cleanup: kubectl delete -k ${d#"$ROOT"/}" >&2
    "$KUBECTL" delete -k "$d" --ignore-not-found --wait="$wait" --timeout="$timeout" ||
      { echo "cleanup: kubectl delete -k $d failed" >&2; exit 1; }
  done
  echo "cleanup: ${overlay} removed$([ "$wait" = true ] || echo ' (namespaces may still be terminating)')" >&2
}

main_cleanup "$@"
