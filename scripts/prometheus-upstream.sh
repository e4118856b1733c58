#!/usr/bin/env bash
# prometheus-upstream.sh — upstream Prometheus and promtool with the
# Kubernetes service discovery, built from the Go module proxy. Debian's
# prometheus package is built without it and rejects kubernetes_sd_configs,
# so the cluster config (deploy/monitoring/kubernetes/prometheus.yml) could
# otherwise only be checked on a rewritten copy; with these binaries it is
# checked and run unchanged.
#
#   scripts/prometheus-upstream.sh build        build (or find cached) binaries,
#                                               print both paths (prometheus, promtool)
#   scripts/prometheus-upstream.sh prometheus   print the path of prometheus (builds)
#   scripts/prometheus-upstream.sh promtool     print the path of promtool (builds)
#
# Build: a scratch Go module requiring github.com/prometheus/prometheus at
# the release's Go tag (2.M.P is v0.M.P, 3.M.P is v0.(300+M).P) with
# upstream's own requirements, replaces and go.sum copied, so the build uses
# exactly the versions upstream tested and downloads only what the built
# packages import. Build tags: remove_all_sd + enable_kubernetes_sd (file,
# http and static discovery stay — upstream's "minimum" plugins), netgo as
# in upstream's release builds.
# No builtinassets: the web UI is not embedded (the HTTP API works without
# it, which is all the tests use). Version stamped as promu does. The
# binaries and GOCACHE live under the cache dir, so only the first run is
# slow; the build runs under nice -n 15.
#
# Version: the one the cluster runs — the tag of the Prometheus image in
# deploy/monitoring/kubernetes/prometheus.yaml — so a bump of that image
# moves the checks with it. Releases from 3.10 on have the discovery build
# tags (only the Kubernetes one is compiled); older ones compile every
# discovery. Measured on 2 cores of an Intel(R) Xeon(R) Processor shared
# with other builds: 3.16.0 in 342 s (load ~9), 2.54.1 in 271 s (load ~5).
#
# Environment: OSPREY_PROMETHEUS_CACHE (default ~/.cache/osprey/prometheus),
# OSPREY_PROMETHEUS_VERSION (default: the shipped image's, see above).
# Exit codes: 0 ok; 1 failure; 77 go is missing — tests turn that into a
# skip or a fallback. Everything below main is read before it runs, so
# editing this file under a running build cannot break that build.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHIPPED=$(sed -n '\#^[[:space:]]*image: quay\.io/prometheus/prometheus:v\([0-9]*\.[0-9]*\.[0-9]*\)$#{s##\1#p;q;}' \
    "$ROOT/deploy/monitoring/kubernetes/prometheus.yaml" 2>/dev/null || true)
VER=${OSPREY_PROMETHEUS_VERSION:-$SHIPPED}
[ -n "$VER" ] || { echo "prometheus-upstream: no version: set OSPREY_PROMETHEUS_VERSION" \
    "(no quay.io/prometheus/prometheus:vX.Y.Z image in deploy/monitoring/kubernetes/prometheus.yaml)" >&2; exit 1; }
CACHE=${OSPREY_PROMETHEUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osprey/prometheus}
BIN=$CACHE/v$VER/bin
# 3.MINOR.PATCH is tagged v0.(300+MINOR).PATCH for Go (2.MINOR.PATCH was v0.MINOR.PATCH).
MAJOR=${VER%%.*} MINOR=${VER#*.} PATCH=${VER##*.}
MINOR=${MINOR%%.*}
case "$MAJOR" in
  2) MODVER=v0.$MINOR.$PATCH ;;
  3) MODVER=v0.$((300 + MINOR)).$PATCH ;;
  *) echo "prometheus-upstream: unsupported version $VER" >&2; exit 1 ;;
esac
MOD=github.com/prometheus/prometheus
CMDS=(prometheus promtool)

die() { echo "prometheus-upstream: $*" >&2; exit 1; }
missing() { echo "prometheus-upstream: $* (skip)" >&2; exit 77; }

# A go new enough for upstream's go.mod (scripts/go-toolchain.sh: PATH,
# /usr/local/go, or the toolchain module fetched into the cache).
find_go() {
  "$ROOT/scripts/go-toolchain.sh" || { [ $? = 77 ] && missing "go is not installed"; die "no usable go"; }
}

built() {
  local c
  for c in "${CMDS[@]}"; do [ -x "$BIN/$c" ] || return 1; done
}

# One build at a time per cache (two test runs may start together).
do_build() {
  built && return 0
  mkdir -p "$CACHE"
  (flock 9 && { built || build_now; }) 9>"$CACHE/build.lock" || exit $?
  built || die "the build left no binaries in $BIN"
}

# In a subshell (it changes directory and GOCACHE).
build_now() {
  local go
  go=$(find_go) || exit $?
  local mod=$CACHE/v$VER/module start=$SECONDS
  mkdir -p "$mod" "$BIN" "$CACHE/gocache"
  export GOCACHE=$CACHE/gocache CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  cd "$mod"
  echo "prometheus-upstream: building ${CMDS[*]} $VER ($MOD@$MODVER;" \
       "first run: several minutes; cached in $CACHE)" >&2
  local info dir sum gomodsum
  info=$("$go" mod download -json "$MOD@$MODVER") || die "cannot download $MOD@$MODVER"
  field() { sed -n 's/^[[:space:]]*"'"$1"'": "\(.*\)",\{0,1\}$/\1/p' <<<"$info"; }
  dir=$(field Dir) sum=$(field Sum) gomodsum=$(field GoModSum)
  [ -f "$dir/go.mod" ] && [ -f "$dir/go.sum" ] || die "no go.mod/go.sum in $dir"
  # Upstream's go.mod with the module renamed and upstream itself required.
  {
    sed 's#^module .*#module osprey.invalid/promupstream#' "$dir/go.mod"
    printf '\nrequire %s %s\n' "$MOD" "$MODVER"
  } >go.mod
  { cat "$dir/go.sum"; printf '%s %s %s\n%s %s/go.mod %s\n' \
      "$MOD" "$MODVER" "$sum" "$MOD" "$MODVER" "$gomodsum"; } >go.sum
  local ld="-s -w -X github.com/prometheus/common/version.Version=$VER"
  ld="$ld -X github.com/prometheus/common/version.Revision=$MODVER"
  ld="$ld -X github.com/prometheus/common/version.Branch=osprey-upstream-build"
  nice -n 15 "$go" build -p 2 -trimpath -tags netgo,remove_all_sd,enable_kubernetes_sd \
      -ldflags "$ld" -o "$BIN.tmp/" "${CMDS[@]/#/$MOD/cmd/}" || die "go build failed"
  local c
  for c in "${CMDS[@]}"; do mv -f "$BIN.tmp/$c" "$BIN/"; done
  rmdir "$BIN.tmp"
  echo "prometheus-upstream: built in $((SECONDS - start)) s" >&2
}

main() {
case "${1:-}" in
  build) do_build; printf '%s\n' "${CMDS[@]/#/$BIN/}" ;;
  prometheus|promtool) do_build; echo "$BIN/$1" ;;
  -h|--help|"") sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) die "unknown command '$1' (try --help)" ;;
esac
}

main "$@"; exit
