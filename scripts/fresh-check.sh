#!/usr/bin/env bash
# fresh-check.sh — `make fresh-check`: proves that the README's commands work
# on a fresh Debian bookworm machine, i.e. that the project's own scripts
# install everything the build, the tests and `make run` need.
#
# It builds a minimal bookworm root (mmdebstrap --variant=minbase) from the
# host's apt sources, copies into it a clean `git clone` of HEAD and the
# shared models/images beside it (../shared, same relative path), plus the
# host's package-client settings (apt, pip, npm, CA bundle, resolv.conf — a
# fresh machine on this network has those too), then inside it with chroot:
#
#   bootstrap  apt-get install make (README: what a fresh machine needs first)
#   deps       make deps    (scripts/install-deps.sh)
#   venv       make venv    (scripts/setup-venv.sh)
#   build      make build   (Release)
#   test       make test    (the README's command; prints the CTest summary),
#                            less the tests labelled `host`: they need the
#                            machine itself (podman, network namespaces, a
#                            real API server) or Go builds of minutes, and
#                            run on the host (tests/CMakeLists.txt)
#   host-tools what those tests use is checked instead: installed by the
#                            scripts, and a Go new enough fetched
#                            (scripts/go-toolchain.sh) and used for one
#                            small build (kubeconform)
#   run        make run     (deps, build, models, serve on 127.0.0.1) until
#                            one /classify of a shared photo answers 200 with
#                            a JSON label; then Ctrl-C (SIGINT), which drains
#
# and, with --bench-deps (not in CI: torch is ~1 GB):
#   bench-deps scripts/install-bench-deps.sh, then what the benchmark drivers
#              use is checked, not run: the tools on PATH, the Python modules,
#              and the FastAPI + PyTorch baseline answering one /classify
#
# Exits non-zero when any phase fails. Why a chroot and not a container: it
# needs only mmdebstrap (installed here when missing) and root, which CI has.
#
#   scripts/fresh-check.sh [--keep] [--no-test] [--no-run] [--bench-deps]
#     --keep        keep the root (unmounted) for inspection instead of removing it
#     --no-test     stop after the build (debugging the dependency phases)
#     --no-run      skip the `make run` phase
#     --bench-deps  add the bench-deps phase
# Environment: FRESH_DIR (parent of the temporary root, default /var/tmp),
# FRESH_LOG_DIR (phase logs, default <checkout>/build-fresh), FRESH_SHARED
# (the shared folder, default <checkout>/../shared).
#
# Safety: every mount is made below the root and found again with findmnt
# (so none is forgotten); the EXIT trap stops the processes still running in
# the root (ours: started by this script), unmounts in reverse order (lazily
# when busy) and refuses to delete the root while anything is still mounted
# inside it.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd -P)
KEEP=0 DO_TEST=1 DO_RUN=1 DO_BENCH=0
for a in "$@"; do
  case "$a" in
    --keep) KEEP=1 ;;
    --no-test) DO_TEST=0; DO_RUN=0 ;;
    --no-run) DO_RUN=0 ;;
    --bench-deps) DO_BENCH=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "fresh-check: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" -eq 0 ] || { echo "fresh-check: needs root (mmdebstrap --mode=root, mount, chroot)" >&2; exit 1; }
SHARED=${FRESH_SHARED:-$SRC/../shared}
[ -d "$SHARED/models" ] && [ -d "$SHARED/images" ] ||
  { echo "fresh-check: no shared models/images in $SHARED (set FRESH_SHARED)" >&2; exit 1; }
SHARED=$(cd "$SHARED" && pwd -P)
if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no)" ]; then
  echo "fresh-check: note: uncommitted changes in $SRC are not part of the check (it clones HEAD)"
fi
LOGDIR=${FRESH_LOG_DIR:-$SRC/build-fresh}
mkdir -p "$LOGDIR"
# Only our own logs: FRESH_LOG_DIR may be a directory with other files.
rm -f "$LOGDIR"/{root,setup,bootstrap,deps,venv,build,test,ctest-full,host-tools,run,run-server,bench-deps}.log

if ! command -v mmdebstrap >/dev/null; then
  echo "fresh-check: installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap
fi

# The physical path (no symlinks), as findmnt and /proc/PID/root report it,
# and plain characters only (findmnt escapes the others), so that the
# cleanup's mount checks cannot miss a mount.
WORK=$(mktemp -d "${FRESH_DIR:-/var/tmp}/osprey-fresh.XXXXXX")
WORK=$(cd "$WORK" && pwd -P)
case "$WORK" in
  *[!A-Za-z0-9._/-]*) rmdir "$WORK"; echo "fresh-check: use a FRESH_DIR with a plain path (not '$WORK')" >&2; exit 1 ;;
esac
ROOT=$WORK/root
# Inside the root: /work/osprey (the clone) and /work/shared beside it, so
# that the tests' ../shared/models lookup sees the same relative layout.
IN_SRC=/work/osprey

# --- cleanup: never rm -rf while anything is mounted below $ROOT ---------

mounts_below() {   # mount points at or below $ROOT, deepest (latest) first
  findmnt -rn -o TARGET | awk -v r="$ROOT" '$0 == r || index($0, r "/") == 1' | tac
}

stop_root_processes() {
  # Processes whose root directory is $ROOT were started by this script
  # (the chroot commands and their children, e.g. a server a test left
  # behind); they would keep the mounts busy.
  local p pids=()
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && pids+=("${p#/proc/}")
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  echo "fresh-check: stopping processes still running in the root:"
  for p in "${pids[@]}"; do
    echo "  $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
  done
  kill -TERM "${pids[@]}" 2>/dev/null || true
  sleep 2
  kill -KILL "${pids[@]}" 2>/dev/null || true
  sleep 1
}

cleanup() {
  local rc=$? m left
  set +e
  if [ -d "$ROOT" ]; then
    stop_root_processes
    for _ in 1 2 3; do
      while IFS= read -r m; do
        [ -n "$m" ] || continue
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
          echo "fresh-check: cannot unmount $m" >&2
      done < <(mounts_below)
      [ -z "$(mounts_below)" ] && break
    done
    left=$(mounts_below)
    if [ -n "$left" ]; then
      echo "fresh-check: still mounted below $ROOT; NOT removing it:" >&2
      echo "$left" >&2
      exit 1
    fi
    if [ "$KEEP" = 1 ]; then
      echo "fresh-check: kept the root (nothing mounted): $ROOT"
    else
      nice -n 19 rm -rf --one-file-system "$WORK"
    fi
  else
    nice -n 19 rm -rf --one-file-system "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- phases ---------------------------------------------------------------

PHASES=() TIMES=()
T_START=$(date +%s)

fmt_s() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# phase NAME CMD... — runs CMD (a function is fine) with its output in
# $LOGDIR/NAME.log and records its duration; then runs after_NAME if defined
# (even on failure); on failure shows the end of the log and exits 1. CMD runs
# in a background subshell so that `set -e` holds inside it (bash ignores -e
# in a function called from a `||` or `if`).
phase() {
  local name=$1 t0 rc=0
  shift
  echo "fresh-check: [$name] ..."
  t0=$(date +%s)
  ( "$@" ) >"$LOGDIR/$name.log" 2>&1 &
  wait $! || rc=$?
  PHASES+=("$name") TIMES+=($(($(date +%s) - t0)))
  if declare -F "after_$name" >/dev/null; then "after_$name"; fi
  if [ $rc -ne 0 ]; then
    echo "fresh-check: [$name] FAILED (exit $rc) after $(fmt_s "${TIMES[-1]}"); last lines of $LOGDIR/$name.log:" >&2
    tail -n 60 "$LOGDIR/$name.log" >&2
    summary
    exit 1
  fi
  echo "fresh-check: [$name] ok in $(fmt_s "${TIMES[-1]}")"
}

summary() {
  local i
  echo "fresh-check: phase times:"
  for i in "${!PHASES[@]}"; do printf '  %-10s %s\n' "${PHASES[$i]}" "$(fmt_s "${TIMES[$i]}")"; done
  printf '  %-10s %s\n' total "$(fmt_s $(($(date +%s) - T_START)))"
  echo "fresh-check: logs in $LOGDIR"
}

# Environment inside the root: what a login shell on a fresh machine has,
# plus the host's settings for reaching the package registries (proxies,
# pip/npm registry settings). PIP_FIND_LINKS is left out on purpose: a local
# wheel directory is the host's cache, not a registry setting, and would
# make the check less honest.
ROOT_ENV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
          HOME=/root LANG=C.UTF-8 TERM=dumb)
while IFS='=' read -r k _; do
  case "$k" in
    PIP_FIND_LINKS) ;;
    http_proxy|https_proxy|no_proxy|HTTP_PROXY|HTTPS_PROXY|NO_PROXY|PIP_*|npm_config_*|NPM_CONFIG_*)
      ROOT_ENV+=("$k=${!k}") ;;
  esac
done < <(env)

# in_root CMD — runs a bash command line in the clone inside the root,
# niced (nice is inherited by everything the command starts).
in_root() {
  root_exec /bin/bash -c "cd $IN_SRC && $1"
}

# root_exec PROGRAM ARGS... — runs a program inside the root, niced, with the
# root's environment.
root_exec() {
  nice -n 19 chroot "$ROOT" /usr/bin/env -i "${ROOT_ENV[@]}" "$@"
}

make_root() {
  # The host's apt sources (the active files, as apt itself reads them) and
  # the local settings for fetching (Acquire::*, e.g. proxies or the
  # validity check of a snapshot mirror) from apt.conf.d files that no
  # package owns. Mirror names are read here at run time, never stored.
  local args=() f conf=$WORK/apt-host.conf
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && grep -qvE '^[[:space:]]*(#|$)' "$f" && args+=("$f")
  done
  [ ${#args[@]} -gt 0 ] || { echo "no apt sources on the host"; return 1; }
  : >"$conf"
  for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] || continue
    dpkg -S "$f" >/dev/null 2>&1 && continue
    grep -qE '^[[:space:]]*Acquire' "$f" && { echo "// host: $f"; cat "$f"; echo; } >>"$conf"
  done
  local opts=(--variant=minbase --mode=root --format=directory)
  [ -s "$conf" ] && opts+=("--aptopt=$conf")
  # Credentials for the mirror, if the host has any, go in unread.
  for f in /etc/apt/auth.conf /etc/apt/auth.conf.d/*; do
    [ -f "$f" ] && opts+=("--setup-hook=copy-in $f $(dirname "$f")")
  done
  nice -n 19 mmdebstrap "${opts[@]}" bookworm "$ROOT" "${args[@]}"
}

copy_host_file() {   # copy_host_file HOST_PATH [ROOT_PATH]
  local dst=$ROOT${2:-$1}
  [ -f "$1" ] || return 0
  mkdir -p "$(dirname "$dst")"
  cp -L --preserve=mode "$1" "$dst"
  echo "copied $1 -> ${2:-$1}"
}

setup_root() {
  # Name resolution and the CA bundle (a machine on this network trusts the
  # same CAs). The bundle also goes to /usr/local/share/ca-certificates so
  # that it survives the ca-certificates package regenerating the bundle.
  copy_host_file /etc/resolv.conf
  # /etc/hosts: minbase ships none (the installer, cloud-init or a container
  # runtime writes it), and without it `localhost` does not resolve. This is
  # the file Debian's installer writes, IPv6 loopback included.
  printf '%s\n' '127.0.0.1	localhost' '::1		localhost ip6-localhost ip6-loopback' \
    'ff02::1		ip6-allnodes' 'ff02::2		ip6-allrouters' >"$ROOT/etc/hosts"
  copy_host_file /etc/ssl/certs/ca-certificates.crt
  copy_host_file /etc/ssl/certs/ca-certificates.crt /usr/local/share/ca-certificates/host-ca-bundle.crt
  # pip's and npm's configuration files (global, then user: root's HOME).
  copy_host_file /etc/pip.conf
  copy_host_file /etc/xdg/pip/pip.conf
  copy_host_file "$HOME/.config/pip/pip.conf" /root/.config/pip/pip.conf
  copy_host_file "$HOME/.pip/pip.conf" /root/.pip/pip.conf
  copy_host_file /etc/npmrc
  copy_host_file /usr/etc/npmrc
  copy_host_file "$HOME/.npmrc" /root/.npmrc

  # A clean clone of HEAD (committed work only) and the shared data beside it.
  mkdir -p "$ROOT/work"
  git clone -q --no-hardlinks "$SRC" "$ROOT$IN_SRC"
  git -C "$ROOT$IN_SRC" checkout -q --detach "$(git -C "$SRC" rev-parse HEAD)"
  echo "cloned $(git -C "$ROOT$IN_SRC" log --oneline -1)"
  mkdir -p "$ROOT/work/shared"
  cp -a "$SHARED/models" "$SHARED/images" "$ROOT/work/shared/"

  # Kernel filesystems. Bind mounts are made private at once so that nothing
  # mounted below them propagates back to the host.
  mount -t proc proc "$ROOT/proc"
  mount --bind /dev "$ROOT/dev"
  mount --make-private "$ROOT/dev"
  mount --bind /dev/pts "$ROOT/dev/pts"
  mount --make-private "$ROOT/dev/pts"
  mount -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOT/dev/shm"
  mount -t sysfs -o ro sysfs "$ROOT/sys"
  echo "mounted:"; mounts_below | tac
}

bootstrap() {
  # The README's prerequisite: `make` (a clone also needs git, but ours was
  # made outside). Everything else must come from the project's scripts.
  in_root 'export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends make'
}

after_test() {
  local full=$LOGDIR/ctest-full.log
  echo "fresh-check: CTest summary inside the root:"
  grep -E 'tests passed|tests failed out of|Total Test time' "$LOGDIR/test.log" | sed 's/^/  /' || true
  # The lists CTest prints at the end: tests that did not run (skipped) and failed.
  sed -n '/^The following tests did not run:/,/^$/p; /^The following tests FAILED:/,/^$/p' \
    "$LOGDIR/test.log" | sed 's/^/  /'
  # Every test's output (CTest keeps it, --output-on-failure shows only the
  # failures'): the skip notes of tests that passed with a part skipped
  # (e.g. a missing tool), which are exactly the dependency gaps to catch.
  # Every line that mentions a skip, except the per-node ONNX conformance
  # skips (operators osprey does not implement; their counts still show).
  cp "$ROOT$IN_SRC/build/Testing/Temporary/LastTest.log" "$full" 2>/dev/null || return 0
  echo "fresh-check: skip notes in the tests' output (all of it: $full):"
  grep -iE 'skip' "$full" | grep -vE '^SKIP test_' | sort | uniq -c | sed 's/^/  /' || echo "  (none)"
}

# `make run` as a user would type it, bound to loopback on a free port; one
# /classify of a shared photo must answer 200 with a label; then Ctrl-C.
run_step() {
  local port url img body=$WORK/classify.json code ok=0 i left state
  port=$(free_port)
  url=http://127.0.0.1:$port
  # The stack's state directory (inside the root): every process of the
  # stack carries OSPREY_STACK=<it> in its environment, so the host's /proc
  # shows whether any is left after the stop.
  state=/tmp/osprey-up-fresh-$port
  # setsid: the make, run.sh and `osprey up` form one process group we can
  # signal like a terminal's Ctrl-C. The dispatcher gets OSPREY_PORT; the
  # other ports of the stack (admin, autoscaler, Prometheus, Alertmanager)
  # any free ones, since the root shares the host's network.
  setsid nice -n 19 chroot "$ROOT" /usr/bin/env -i "${ROOT_ENV[@]}" OSPREY_PORT="$port" \
    /bin/bash -c "cd $IN_SRC && exec make run RUN_ARGS='--host 127.0.0.1 --admin-port 0 --autoscaler-port 0 --prometheus-port 0 --alertmanager-port 0 --state-dir $state'" \
    >"$LOGDIR/run-server.log" 2>&1 &
  RUN_PGID=$!
  for ((i = 0; i < 1200; i++)); do   # deps + build are no-ops by now; models: linking
    kill -0 "$RUN_PGID" 2>/dev/null || { echo "make run exited early:"; cat "$LOGDIR/run-server.log"; return 1; }
    root_exec /usr/bin/curl -sf -o /dev/null --max-time 2 "$url/v2/health/ready" && { ok=1; break; }
    sleep 0.5
  done
  [ $ok = 1 ] || { echo "the stack not ready after 600 s:"; cat "$LOGDIR/run-server.log"; return 1; }
  img=/work/shared/images/cat_720p.jpg
  code=$(root_exec /usr/bin/curl -s -o /tmp/classify.json -w '%{http_code}' --max-time 60 \
           -H 'Content-Type: image/jpeg' --data-binary "@$img" "$url/classify?top_k=3")
  cp "$ROOT/tmp/classify.json" "$body"
  echo "POST /classify $img (through the dispatcher) -> $code: $(cat "$body")"
  [ "$code" = 200 ] || { cat "$LOGDIR/run-server.log"; return 1; }
  root_exec /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
top = r["results"][0]["predictions"][0]
assert isinstance(top["label"], str) and top["label"], r
print("top-1:", top["label"], top["score"])' /tmp/classify.json || return 1
  # Ctrl-C: the whole group gets SIGINT; `osprey up` (run.sh execs it)
  # drains the dispatcher, stops the autoscaler and its workers, then
  # Prometheus and Alertmanager.
  kill -INT -- "-$RUN_PGID"
  for ((i = 0; i < 60; i++)); do
    kill -0 -- "-$RUN_PGID" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 -- "-$RUN_PGID" 2>/dev/null; then
    echo "make run did not stop within 30 s of SIGINT"; return 1
  fi
  RUN_PGID=
  left=$(stack_processes "$state")
  if [ -n "$left" ]; then
    echo "processes of the stack left after the stop:"; echo "$left"; return 1
  fi
  cat "$LOGDIR/run-server.log"
}

# stack_processes STATE — "pid command" of every process whose environment
# says it belongs to the `osprey up` stack with that state directory.
stack_processes() {
  local f
  for f in /proc/[0-9]*/environ; do
    if tr '\0' '\n' <"$f" 2>/dev/null | grep -qx "OSPREY_STACK=$1"; then
      echo "${f//[^0-9]/} $(tr '\0' ' ' <"${f%environ}cmdline" 2>/dev/null | head -c 120)"
    fi
  done
}

# free_port — a free loopback port (asked of the kernel inside the root).
free_port() {
  root_exec /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The tools of the tests labelled `host` (which run on the host, not in the
# root): each installed by the project's scripts, and the Go builds'
# toolchain reachable — fetched by scripts/go-toolchain.sh with Debian's
# golang-go, then used for the smallest of those builds.
host_tools() {
  local t
  for t in podman buildah runc mmdebstrap prometheus promtool amtool etcd openssl yamllint ip unshare; do
    in_root "command -v $t"
  done
  in_root 'test -x /usr/lib/cni/dnsname && echo /usr/lib/cni/dnsname'
  in_root '.venv/bin/hadolint --version && .venv/bin/podman-compose version | head -n 1'
  in_root ".venv/bin/python -c 'import kubernetes_validate, yaml; print(\"kubernetes-validate schemas:\", kubernetes_validate.__path__[0])'"
  in_root 'go=$(scripts/go-toolchain.sh) && "$go" version && scripts/go-tool.sh kubeconform'
}

# The benchmarks' dependencies: installed by their script, then checked
# without running a benchmark.
bench_deps() {
  local port t
  in_root 'scripts/install-bench-deps.sh'
  for t in wrk hey haproxy perf taskset; do   # bench/*.sh and *.py call these
    in_root "command -v $t"
  done
  in_root 'haproxy -v | head -n 1; perf --version'
  in_root "/usr/bin/python3 -c 'import torch, torchvision, fastapi, uvicorn, multipart, PIL; print(\"torch\", torch.__version__)'"
  # The baseline (bench/baselines/fastapi-torch) up, one request, down.
  port=$(free_port)
  # Not via root_exec: a function in the background would be a subshell
  # between us and the server, and our SIGTERM would orphan the server.
  nice -n 19 chroot "$ROOT" /usr/bin/env -i "${ROOT_ENV[@]}" /bin/bash -c \
    "cd $IN_SRC && exec /usr/bin/python3 bench/baselines/fastapi-torch/app.py --model mobilenet_v2 --threads 2 --port $port" &
  local pid=$! ok=0 i
  for ((i = 0; i < 240; i++)); do
    kill -0 $pid 2>/dev/null || break
    root_exec /usr/bin/curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$port/ready" && { ok=1; break; }
    sleep 0.5
  done
  [ $ok = 1 ] && root_exec /usr/bin/curl -sf --max-time 60 -H 'Content-Type: image/jpeg' \
    --data-binary @/work/shared/images/cat_720p.jpg "http://127.0.0.1:$port/classify?top_k=1" || ok=0
  echo
  kill -TERM $pid 2>/dev/null || true
  wait $pid || true
  [ $ok = 1 ] || { echo "the FastAPI + PyTorch baseline did not answer /classify"; return 1; }
}

echo "fresh-check: root in $ROOT, logs in $LOGDIR"
phase root make_root
phase setup setup_root
phase bootstrap bootstrap
phase deps in_root 'make deps'
phase venv in_root 'make venv'
phase build in_root 'make build'
[ "$DO_TEST" = 0 ] || phase test in_root "make test CTEST_ARGS='-LE host'"
[ "$DO_TEST" = 0 ] || phase host-tools host_tools
[ "$DO_RUN" = 0 ] || phase run run_step
[ "$DO_BENCH" = 0 ] || phase bench-deps bench_deps
summary
echo "fresh-check: OK"
