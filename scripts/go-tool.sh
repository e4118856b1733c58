#!/usr/bin/env bash
# go-tool.sh — builds (or finds cached) one of the Go tools the deployment
# checks run, and prints the binary's path:
#
#   scripts/go-tool.sh kubeconform      the offline Kubernetes manifest
#                                       validator (tests/integration/deploy_manifests.sh;
#                                       it is run with local schemas only,
#                                       scripts/kube-schemas.py)
#   scripts/go-tool.sh docker-compose   Docker Compose, the tool
#                                       docker-compose.yml is written for: its
#                                       `config` validates the file against the
#                                       Compose schema offline
#                                       (tests/integration/deploy_compose.sh)
#
# Each is built from the Go module proxy at a pinned version into a cache
# dir, so only the first run needs the proxy (kubeconform ~1 min, Docker
# Compose ~3 min on 2 cores). The build goes through a scratch module that
# requires the tool (`go install ...@VERSION` refuses Docker Compose: its
# go.mod has exclude directives), with a Go from scripts/go-toolchain.sh.
#
# Environment: OSPREY_GO_TOOLS_CACHE (default ~/.cache/osprey/go-tools),
# OSPREY_KUBECONFORM_VERSION (default v0.8.0), OSPREY_COMPOSE_VERSION
# (default v5.6.0).
# Exit codes: 0 ok (path on stdout); 1 build failure; 2 usage; 77 Go is
# missing — tests turn that into a skip.
set -euo pipefail

CACHE=${OSPREY_GO_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osprey/go-tools}

# name → the package to build, its version, extra -ldflags.
case "${1:-}" in
  kubeconform)
    PKG=github.com/yannh/kubeconform/cmd/kubeconform
    VER=${OSPREY_KUBECONFORM_VERSION:-v0.8.0}
    LDX="" ;;
  docker-compose)
    PKG=github.com/docker/compose/v5/cmd
    VER=${OSPREY_COMPOSE_VERSION:-v5.6.0}
    LDX="-X github.com/docker/compose/v5/internal.Version=$VER" ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "go-tool.sh: usage: scripts/go-tool.sh kubeconform|docker-compose" >&2; exit 2 ;;
esac
NAME=$1
DIR=$CACHE/$NAME/$VER
BIN=$DIR/bin/$NAME

if [ ! -x "$BIN" ]; then
  GO=$("$(dirname "$0")/go-toolchain.sh") || exit $?
  mkdir -p "$DIR/src"
  # One build at a time per tool (two test runs may start together).
  (
    flock 9
    [ -x "$BIN" ] && exit 0
    echo "go-tool.sh: building $NAME $VER (cached in $DIR)" >&2
    cd "$DIR/src"
    [ -f go.mod ] || "$GO" mod init "osprey.invalid/$NAME" >&2
    export GOCACHE=$CACHE/gocache CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"
    nice -n 10 "$GO" get "$PKG@$VER" >&2
    nice -n 10 "$GO" build -trimpath -ldflags "-s -w $LDX" -o "$BIN.tmp" "$PKG" >&2
    mv "$BIN.tmp" "$BIN"
  ) 9>"$DIR/build.lock" || { echo "go-tool.sh: building $NAME failed" >&2; exit 1; }
  [ -x "$BIN" ] || { echo "go-tool.sh: the build left no binary at $BIN" >&2; exit 1; }
fi
echo "$BIN"
