#!/usr/bin/env bash
# go-toolchain.sh — prints the path of a `go` command new enough for the
# project's Go builds: the tests' Kubernetes control plane and
# prometheus-adapter (scripts/kube-test-cluster.sh), upstream Prometheus
# (scripts/prometheus-upstream.sh), kubeconform and Docker Compose
# (scripts/go-tool.sh). Kubernetes 1.36 needs Go 1.25 or later; Debian
# bookworm's golang-go is 1.19.
#
# Where it looks, in order: `go` on PATH, /usr/local/go/bin/go, the cached
# toolchain; the first whose version is at least the minimum wins. When
# none is, it fetches the Go distribution that Go's own toolchain switching
# uses — the module golang.org/toolchain@v0.0.1-goVERSION.OS-ARCH, served
# by the Go module proxy like any module — with whatever older `go` there is
# (install-deps.sh installs Debian's golang-go for this), and unpacks it
# into the cache. One fetch at a time per cache (flock).
#
#   scripts/go-toolchain.sh          print the path of a suitable go
#
# Environment: OSPREY_GO_MIN (default 1.25), OSPREY_GO_VERSION (the
# toolchain fetched when needed, default 1.26.8), OSPREY_GO_CACHE (default
# ~/.cache/osprey/go).
# Exit codes: 0 printed; 1 the fetch failed; 77 no Go at all (tests skip).
set -euo pipefail

MIN=${OSPREY_GO_MIN:-1.25}
VER=${OSPREY_GO_VERSION:-1.26.8}
CACHE=${OSPREY_GO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osprey/go}
GOROOT_NEW=$CACHE/go$VER

# "go1.26.8" or "go1.22rc1" → 1 when at least $MIN.
new_enough() { # GO
  local v
  v=$("$1" env GOVERSION 2>/dev/null) || return 1
  v=${v#go}
  v=$(printf '%s' "$v" | sed 's/^\([0-9]*\.[0-9]*\).*/\1/')
  [ "$(printf '%s\n%s\n' "$MIN" "$v" | sort -V | head -1)" = "$MIN" ]
}

any_go=""
for g in "$(command -v go || true)" /usr/local/go/bin/go "$GOROOT_NEW/bin/go"; do
  [ -n "$g" ] && [ -x "$g" ] || continue
  if new_enough "$g"; then echo "$g"; exit 0; fi
  [ "$g" = "$GOROOT_NEW/bin/go" ] || any_go=${any_go:-$g}
done
[ -n "$any_go" ] || { echo "go-toolchain: no Go installed (Debian: apt-get install golang-go) (skip)" >&2; exit 77; }

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) echo "go-toolchain: no Go toolchain module for $(uname -m)" >&2; exit 1 ;;
esac
mod="golang.org/toolchain@v0.0.1-go$VER.linux-$arch"

fetch() {
  [ -x "$GOROOT_NEW/bin/go" ] && return 0
  local tmp dir
  tmp=$(mktemp -d "$CACHE/fetch.XXXXXX")
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' RETURN
  echo "go-toolchain: $any_go is older than $MIN; fetching $mod" >&2
  # A scratch GOMODCACHE: the module's files land read-only there; we copy
  # them out and give the commands back their execute bits (a module zip
  # keeps none), as Go's own toolchain switch does.
  dir=$(cd "$tmp" && GOMODCACHE="$tmp/mod" GOFLAGS=-modcacherw GO111MODULE=on \
        "$any_go" mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -f "$dir/bin/go" ] || { echo "go-toolchain: fetching $mod failed" >&2; return 1; }
  cp -a "$dir" "$tmp/go"
  chmod -R u+w "$tmp/go"
  chmod +x "$tmp/go/bin/"* "$tmp/go/pkg/tool/"*/*
  mv "$tmp/go" "$GOROOT_NEW"
}

mkdir -p "$CACHE"
(flock 9 && fetch) 9>"$CACHE/fetch.lock" || exit 1
new_enough "$GOROOT_NEW/bin/go" || { echo "go-toolchain: $GOROOT_NEW/bin/go is not Go $MIN or later" >&2; exit 1; }
echo "$GOROOT_NEW/bin/go"
