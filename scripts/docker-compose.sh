#!/usr/bin/env bash
# docker-compose.sh — builds (or finds cached) Docker Compose, the tool
# docker-compose.yml is written for, and prints the binary's path. The
# deployment check (tests/integration/deploy_compose.sh) runs its `config`,
# which validates the file against the Compose specification's schema
# offline; podman-compose runs the stack.
#
#   scripts/docker-compose.sh       print the path (building it first if needed)
#
# Built from the Go module proxy at a pinned version into a cache dir, so
# only the first run needs the proxy (~3 min on 2 cores). `go install
# ...@VERSION` refuses this module (its go.mod has exclude directives), so
# the build goes through a scratch module that requires it.
#
# Environment: OSPREY_COMPOSE_CACHE (default ~/.cache/osprey/docker-compose),
# OSPREY_COMPOSE_VERSION (default v5.6.0).
# Exit codes: 0 ok (path on stdout); 1 build failure; 77 Go is missing —
# tests turn that into a skip.
set -euo pipefail

VER=${OSPREY_COMPOSE_VERSION:-v5.6.0}
CACHE=${OSPREY_COMPOSE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osprey/docker-compose}
BIN=$CACHE/$VER/bin/docker-compose
MOD=github.com/docker/compose/v5

case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) echo "docker-compose.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

if [ ! -x "$BIN" ]; then
  # scripts/go-toolchain.sh: a go new enough (exit 77 when there is none).
  GO=$("$(dirname "$0")/go-toolchain.sh") || exit $?
  mkdir -p "$CACHE/$VER/src"
  (
    flock 9
    [ -x "$BIN" ] && exit 0
    echo "docker-compose.sh: building Docker Compose $VER (cached in $CACHE)" >&2
    cd "$CACHE/$VER/src"
    [ -f go.mod ] || "$GO" mod init osprey.local/docker-compose >&2
    export GOCACHE=$CACHE/gocache CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"
    nice -n 10 "$GO" get "$MOD/cmd@$VER" >&2
    nice -n 10 "$GO" build -trimpath -ldflags "-s -w -X $MOD/internal.Version=$VER" \
      -o "$BIN" "$MOD/cmd" >&2
  ) 9>"$CACHE/build.lock" || { echo "docker-compose.sh: the build failed" >&2; exit 1; }
  [ -x "$BIN" ] || { echo "docker-compose.sh: the build left no binary at $BIN" >&2; exit 1; }
fi
echo "$BIN"
