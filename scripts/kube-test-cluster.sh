#!/usr/bin/env bash
# kube-test-cluster.sh — a real Kubernetes control plane on 127.0.0.1 for the
# tests that must meet the real API (RBAC, the scale subresource, conflicts):
# kube-apiserver, kube-controller-manager and a kubectl of the same version
# built from the Go module proxy, etcd from Debian's etcd-server. No kubelet: Deployments get ReplicaSets and
# Pending Pods, which is all the scale subresource needs.
#
#   scripts/kube-test-cluster.sh build              build (or find cached) binaries
#   scripts/kube-test-cluster.sh kubectl            print the path of the matching kubectl
#   scripts/kube-test-cluster.sh start DIR [OPTIONS] certs, etcd, apiserver, controller-manager
#   scripts/kube-test-cluster.sh stop DIR           stop all three (idempotent)
#   scripts/kube-test-cluster.sh apiserver-stop DIR / apiserver-start DIR
#                                                   stop / start the API server alone
#                                                   (same port, certs and options)
#   scripts/kube-test-cluster.sh build-adapter      build (or find cached) prometheus-adapter
#   scripts/kube-test-cluster.sh adapter            print its path (building it if needed)
#
# start OPTIONS (for tests whose clients are not on loopback: the API server
# refuses loopback addresses in Endpoints and EndpointSlices, so such tests
# run their hosts in a network namespace, tests/integration/lib/netns.bash):
#   --address IP     bind the API server to IP instead of 127.0.0.1 (its
#                    serving certificate lists IP as well as 127.0.0.1); the
#                    kubeconfig and API_URL use IP
#   --aggregation    the aggregation layer, for APIServices such as
#                    prometheus-adapter's: a separate front-proxy CA, the
#                    --requestheader-* flags, the API server's proxy client
#                    certificate, and --enable-aggregator-routing=true (the
#                    API server calls a Service's endpoint address; there is
#                    no kube-proxy for cluster IPs)
#   --hpa            also run the HorizontalPodAutoscaler controller
#   --controller NAME  also run this kube-controller-manager controller
#                    (repeatable), e.g. endpointslice-controller
#   --cm-arg ARG     one more argument for kube-controller-manager
#                    (repeatable), e.g. --horizontal-pod-autoscaler-sync-period=2s
#
# start writes into DIR: admin.kubeconfig (cluster-admin by client cert),
# ca.crt, env (API_URL=https://ADDRESS:PORT, KUBECTL=its path), the logs,
# and the pid files that stop reads. A caller runs `stop DIR` from its EXIT trap.
# With --aggregation also front-proxy-ca.crt (the CA an aggregated API server
# trusts for the API server's proxied requests).
#
# Build: a scratch Go module requiring k8s.io/kubernetes vVERSION with one
# replace per staging module (k8s.io/X => k8s.io/X v0.MINOR.PATCH, from that
# version's go.mod, which points them at ./staging), then go mod tidy and go
# build with the version stamped (kubectl refuses v0.0.0-master). The
# binaries and GOCACHE live under the cache dir, so only the first run is
# slow (~6 min on 2 cores); the build runs under nice.
#
# prometheus-adapter (build-adapter) is built the same way, from a scratch
# module requiring sigs.k8s.io/prometheus-adapter vADAPTER_VERSION (`go
# install ...@v0.12.0` fails: the proxy refuses the version list, not the
# version), about 2 min on 2 cores, cached beside the Kubernetes binaries.
#
# Environment: OSPREY_KUBE_CACHE (default ~/.cache/osprey/kube),
# OSPREY_KUBE_VERSION (default 1.36.3), OSPREY_ADAPTER_VERSION (default 0.12.0).
# Exit codes: 0 ok; 1 failure; 77 a tool is missing (go, etcd, openssl) —
# tests turn that into a skip. Everything below main is read before it runs,
# so editing this file under a running build cannot break that build.
set -euo pipefail

VER=${OSPREY_KUBE_VERSION:-1.36.3}
CACHE=${OSPREY_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osprey/kube}
BIN=$CACHE/v$VER/bin
ETCD=$(command -v etcd || echo /usr/bin/etcd)
ADAPTER_VER=${OSPREY_ADAPTER_VERSION:-0.12.0}
ADAPTER=$CACHE/prometheus-adapter-v$ADAPTER_VER/bin/adapter

die() { echo "kube-test-cluster: $*" >&2; exit 1; }
missing() { echo "kube-test-cluster: $* (skip)" >&2; exit 77; }

# --- build -----------------------------------------------------------------

# The commands built (the module's tools, so tidy keeps what they import).
CMDS=(kube-apiserver kube-controller-manager kubectl)

# The scratch module's go.mod: the kubernetes module, its staging modules
# pinned to the matching v0 tags, and the commands as tools.
write_gomod() { # MODFILE_OF_KUBERNETES
  local staging=v0.${VER#*.}
  {
    echo "module osprey.invalid/kubetest"
    echo
    sed -n 's/^go .*/&/p' "$1" | head -1
    echo
    echo "require k8s.io/kubernetes v$VER"
    echo
    echo "tool ("
    printf '\tk8s.io/kubernetes/cmd/%s\n' "${CMDS[@]}"
    echo ")"
    echo
    echo "replace ("
    sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\t\1 => \1 '"$staging"'#p' "$1"
    echo ")"
  } >go.mod
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

# Puts a go new enough for Kubernetes first on PATH (scripts/go-toolchain.sh:
# PATH, /usr/local/go, or the toolchain module fetched into its cache).
use_go() {
  local g
  g=$("$(dirname "${BASH_SOURCE[0]}")/go-toolchain.sh") ||
    { [ $? = 77 ] && missing "go is not installed"; die "no usable go"; }
  PATH=$(dirname "$g"):$PATH
}

# In a subshell (it changes directory and GOCACHE).
build_now() {
  use_go
  local mod=$CACHE/v$VER/module
  mkdir -p "$mod" "$BIN" "$CACHE/gocache"
  export GOCACHE=$CACHE/gocache CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  cd "$mod"
  echo "kube-test-cluster: building ${CMDS[*]} v$VER" \
       "(first run: several minutes; cached in $CACHE)" >&2
  local kmod
  kmod=$(go mod download -json "k8s.io/kubernetes@v$VER" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$kmod" ] || die "cannot download k8s.io/kubernetes@v$VER"
  write_gomod "$kmod"
  go mod tidy >/dev/null 2>"$mod/tidy.log" || { cat "$mod/tidy.log" >&2; die "go mod tidy failed"; }
  local minor=${VER#*.}; minor=${minor%%.*}
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=v$VER"
  ld="$ld -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ld="$ld -X k8s.io/component-base/version.gitTreeState=clean"
  nice -n 10 go build -p 2 -trimpath -ldflags "$ld" -o "$BIN.tmp/" \
      "${CMDS[@]/#/k8s.io/kubernetes/cmd/}" || die "go build failed"
  local c
  for c in "${CMDS[@]}"; do mv -f "$BIN.tmp/$c" "$BIN/"; done
  rmdir "$BIN.tmp"
}

# prometheus-adapter: a scratch module requiring it, its cmd/adapter as the
# module's tool (so tidy keeps what it imports), built under nice; the lock
# is the Kubernetes build's (one Go build at a time per cache).
do_build_adapter() {
  [ -x "$ADAPTER" ] && return 0
  mkdir -p "$CACHE"
  (flock 9 && { [ -x "$ADAPTER" ] || build_adapter_now; }) 9>"$CACHE/build.lock" || exit $?
  [ -x "$ADAPTER" ] || die "the build left no binary at $ADAPTER"
}

build_adapter_now() { # in a subshell (it changes directory and GOCACHE)
  use_go
  local mod=${ADAPTER%/bin/adapter}/module
  mkdir -p "$mod" "$CACHE/gocache"
  export GOCACHE=$CACHE/gocache CGO_ENABLED=0 GOFLAGS=-buildvcs=false
  cd "$mod"
  echo "kube-test-cluster: building prometheus-adapter v$ADAPTER_VER" \
       "(first run: about 2 minutes; cached in $CACHE)" >&2
  cat >go.mod <<EOM
module osprey.invalid/adaptertest

go $(go env GOVERSION | sed 's/^go\([0-9]*\.[0-9]*\).*/\1/')

require sigs.k8s.io/prometheus-adapter v$ADAPTER_VER

tool sigs.k8s.io/prometheus-adapter/cmd/adapter
EOM
  go mod tidy >/dev/null 2>"$mod/tidy.log" || { cat "$mod/tidy.log" >&2; die "go mod tidy (adapter) failed"; }
  nice -n 10 go build -p 2 -trimpath -ldflags "-s -w" -o "$ADAPTER.tmp" \
      sigs.k8s.io/prometheus-adapter/cmd/adapter || die "go build (adapter) failed"
  mkdir -p "$(dirname "$ADAPTER")"
  mv -f "$ADAPTER.tmp" "$ADAPTER"
}

# --- start / stop ----------------------------------------------------------

free_port() { # [ADDRESS]
  python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1])' "${1:-127.0.0.1}"
}

# A CA, the API server's serving certificate (127.0.0.1, localhost and
# ADDRESS), an admin client certificate (group system:masters) and the
# service-account signing key pair; with AGGREGATION=1 also the front-proxy
# CA (separate: an aggregated API server trusts it for "this request was
# authenticated by the API server", which an admin certificate must not
# assert) and the API server's proxy client certificate it signs.
make_certs() { # DIR ADDRESS AGGREGATION
  local d=$1
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout "$d/ca.key" -out "$d/ca.crt" -subj /CN=osprey-test-ca 2>/dev/null
  cert() { # NAME SUBJECT [EXTFILE]
    openssl req -newkey rsa:2048 -nodes -keyout "$d/$1.key" -out "$d/$1.csr" \
        -subj "$2" 2>/dev/null
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" \
        -CAcreateserial -days 3650 -sha256 -out "$d/$1.crt" ${3:+-extfile "$3"} 2>/dev/null
  }
  local san=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc
  [ "$2" = 127.0.0.1 ] || san="$san,IP:$2"
  printf 'subjectAltName=%s\n' "$san" >"$d/san.ext"
  cert apiserver /CN=kube-apiserver "$d/san.ext"
  cert admin "/O=system:masters/CN=osprey-admin"
  if [ "$3" = 1 ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout "$d/front-proxy-ca.key" \
        -out "$d/front-proxy-ca.crt" -subj /CN=osprey-test-front-proxy-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$d/front-proxy-client.key" \
        -out "$d/front-proxy-client.csr" -subj /CN=front-proxy-client 2>/dev/null
    openssl x509 -req -in "$d/front-proxy-client.csr" -CA "$d/front-proxy-ca.crt" \
        -CAkey "$d/front-proxy-ca.key" -CAcreateserial -days 3650 -sha256 \
        -out "$d/front-proxy-client.crt" 2>/dev/null
  fi
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

write_kubeconfig() { # DIR URL
  cat >"$1/admin.kubeconfig" <<EOK
apiVersion: v1
kind: Config
current-context: admin
clusters:
- name: test
  cluster:
    server: $2
    certificate-authority: ca.crt
users:
- name: admin
  user:
    client-certificate: admin.crt
    client-key: admin.key
contexts:
- name: admin
  context: {cluster: test, user: admin, namespace: default}
EOK
}

# Starts a command in the background with its log and pid file in DIR.
launch() { # DIR NAME ARGS...
  local d=$1 n=$2; shift 2
  setsid "$@" >>"$d/$n.log" 2>&1 </dev/null &
  echo $! >"$d/$n.pid"
}

stop_one() { # DIR NAME
  local f=$1/$2.pid pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -TERM "$pid" 2>/dev/null; then
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

kctl() { "$BIN/kubectl" --kubeconfig "$1/admin.kubeconfig" "${@:2}"; }

wait_ready() { # DIR SECONDS
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    kctl "$1" get --raw /readyz >/dev/null 2>&1 && return 0
    kill -0 "$(cat "$1/apiserver.pid")" 2>/dev/null || break
    sleep 0.2
  done
  tail -20 "$1/apiserver.log" >&2
  die "the API server did not become ready (log: $1/apiserver.log)"
}

apiserver_start() { # DIR
  local d=$1
  . "$d/env"
  local agg=()
  [ "$AGGREGATION" = 1 ] && agg=(
    --requestheader-client-ca-file="$d/front-proxy-ca.crt"
    --requestheader-allowed-names=front-proxy-client
    --requestheader-username-headers=X-Remote-User
    --requestheader-group-headers=X-Remote-Group
    --requestheader-extra-headers-prefix=X-Remote-Extra-
    --proxy-client-cert-file="$d/front-proxy-client.crt"
    --proxy-client-key-file="$d/front-proxy-client.key"
    --enable-aggregator-routing=true)
  launch "$d" apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address="$API_ADDR" --advertise-address="$API_ADDR" --secure-port="$API_PORT" \
    --tls-cert-file="$d/apiserver.crt" --tls-private-key-file="$d/apiserver.key" \
    --client-ca-file="$d/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$d/sa.pub" \
    --service-account-signing-key-file="$d/sa.key" \
    --authorization-mode=Node,RBAC --endpoint-reconciler-type=none \
    --service-cluster-ip-range=10.96.0.0/24 --enable-priority-and-fairness=false "${agg[@]}"
  wait_ready "$d" 60
}

do_start() { # DIR [OPTIONS]
  local d=${1:-} addr=127.0.0.1 agg=0 cms=deployment-controller,replicaset-controller,serviceaccount-controller,serviceaccount-token-controller,garbage-collector-controller,namespace-controller
  local cm_args=()
  [ -n "$d" ] || die "start needs a directory"
  shift || true
  while [ $# -gt 0 ]; do
    case "$1" in
      --address) addr=${2:?--address needs an IP}; shift ;;
      --aggregation) agg=1 ;;
      --hpa) cms="$cms,horizontal-pod-autoscaler-controller" ;;
      --controller) cms="$cms,${2:?--controller needs a name}"; shift ;;
      --cm-arg) cm_args+=("${2:?--cm-arg needs an argument}"); shift ;;
      *) die "start: unknown option '$1' (try --help)" ;;
    esac
    shift
  done
  command -v openssl >/dev/null || missing "openssl is not installed"
  [ -x "$ETCD" ] || missing "etcd is not installed (Debian: etcd-server; scripts/install-deps.sh)"
  do_build
  mkdir -p "$d"
  d=$(cd "$d" && pwd -P)
  make_certs "$d" "$addr" "$agg"
  local ep pp ap
  ep=$(free_port) pp=$(free_port) ap=$(free_port "$addr")
  printf 'ETCD_PORT=%s\nAPI_ADDR=%s\nAPI_PORT=%s\nAPI_URL=https://%s:%s\nAGGREGATION=%s\nKUBECTL=%s\n' \
      "$ep" "$addr" "$ap" "$addr" "$ap" "$agg" "$BIN/kubectl" >"$d/env"
  write_kubeconfig "$d" "https://$addr:$ap"
  launch "$d" etcd "$ETCD" --name test --data-dir "$d/etcd-data" \
    --listen-client-urls "http://127.0.0.1:$ep" --advertise-client-urls "http://127.0.0.1:$ep" \
    --listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
    --initial-cluster "test=http://127.0.0.1:$pp"
  apiserver_start "$d"
  # Only what Deployments need: ReplicaSets, Pods, service accounts, GC
  # (and, with --hpa, the HorizontalPodAutoscaler controller).
  launch "$d" controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$d/admin.kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=0 \
    --controllers="$cms" \
    --service-account-private-key-file="$d/sa.key" --root-ca-file="$d/ca.crt" \
    --use-service-account-credentials=false "${cm_args[@]}"
  echo "kube-test-cluster: API server at https://$addr:$ap (kubeconfig $d/admin.kubeconfig)" >&2
}

do_stop() { # DIR
  local n
  for n in controller-manager apiserver etcd; do stop_one "$1" "$n"; done
}

main() {
case "${1:-}" in
  build) do_build ;;
  kubectl) do_build; echo "$BIN/kubectl" ;;
  build-adapter) do_build_adapter ;;
  adapter) do_build_adapter; echo "$ADAPTER" ;;
  start) shift; do_start "$@" ;;
  stop) do_stop "${2:?stop needs a directory}" ;;
  apiserver-stop) stop_one "${2:?needs a directory}" apiserver ;;
  apiserver-start) d=$(cd "${2:?needs a directory}" && pwd -P); apiserver_start "$d" ;;
  -h|--help|"") sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
  *) die "unknown command '$1' (try --help)" ;;
esac
}

main "$@"; exit
