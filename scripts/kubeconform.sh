#!/usr/bin/env bash
# kubeconform.sh — builds (or finds cached) kubeconform, the offline
# Kubernetes manifest validator the deployment checks use
# (tests/integration/deploy_manifests.sh), and prints the binary's path.
#
#   scripts/kubeconform.sh          print the path (building it first if needed)
#
# Built from the Go module proxy at a pinned version with `go install`, into
# a cache dir, so only the first run needs the proxy (~1 min on 2 cores);
# kubeconform itself is then run with local schemas only
# (scripts/kube-schemas.py), never fetching anything.
#
# Environment: OSPREY_KUBECONFORM_CACHE (default ~/.cache/osprey/kubeconform),
# OSPREY_KUBECONFORM_VERSION (default v0.8.0).
# Exit codes: 0 ok (path on stdout); 1 build failure; 77 Go is missing —
# tests turn that into a skip.
set -euo pipefail

VER=${OSPREY_KUBECONFORM_VERSION:-v0.8.0}
CACHE=${OSPREY_KUBECONFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osprey/kubeconform}
BIN=$CACHE/$VER/bin/kubeconform

case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "kubeconform.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

if [ ! -x "$BIN" ]; then
  # scripts/go-toolchain.sh: a go new enough (exit 77 when there is none).
  GO=$("$(dirname "$0")/go-toolchain.sh") || exit $?
  mkdir -p "$CACHE"
  # One build at a time per cache (two test runs may start together).
  (
    flock 9
    [ -x "$BIN" ] && exit 0
    echo "kubeconform.sh: building kubeconform $VER (cached in $CACHE)" >&2
    GOBIN=$CACHE/$VER/bin GOCACHE=$CACHE/gocache CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
      nice -n 10 "$GO" install -trimpath -ldflags "-s -w" \
      "github.com/yannh/kubeconform/cmd/kubeconform@$VER" >&2
  ) 9>"$CACHE/build.lock" || { echo "kubeconform.sh: the build failed" >&2; exit 1; }
  [ -x "$BIN" ] || { echo "kubeconform.sh: the build left no binary at $BIN" >&2; exit 1; }
fi
echo "$BIN"
