#!/usr/bin/env bash
# install-deps.sh — installs every Debian package osprey's build and tests
# need, then oneDNN 3 (Intel's PyPI wheels, scripts/install-onednn.sh) into
# third_party/onednn. Idempotent: when everything is present it only checks
# and returns.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git ca-certificates curl
  python3-pip                       # scripts/install-onednn.sh: pip downloads the oneDNN wheels
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev   # ONNX importer
  libturbojpeg0-dev libspng-dev libwebp-dev            # image decoders
  libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev  # HTTP + JSON
  libyaml-dev                       # the autoscaler reads HPA manifests
  libssl-dev                        # SHA-256 of fetched models (libcrypto)
  libcmocka-dev                     # unit tests
  libonnx-testdata                  # ONNX conformance data
  clang libclang-rt-14-dev          # libFuzzer targets
  python3-venv python3-pil python3-numpy   # test oracles (resize, tensors)
  iproute2                          # `ss`: serve_idle_conns' socket queues on failure
  nodejs npm                        # onnxruntime-node, the bench peer
  etcd-server openssl               # the real Kubernetes API server's store
                                    # and its certificates (autoscale_k8s;
                                    # scripts/kube-test-cluster.sh; Go builds
                                    # the API server)
  prometheus                        # autoscale_sources: the Prometheus source
                                    # against a real Prometheus (one static
                                    # binary, ~20 MB download; the test runs
                                    # its own on 127.0.0.1 with a temp config
                                    # and data dir, no network needed)
  prometheus-alertmanager           # deploy: amtool checks the Alertmanager config
  podman buildah runc uidmap mmdebstrap  # deploy: the image, built and run
  golang-github-containernetworking-plugin-dnsname  # compose: services find each other by name (podman's CNI)
  golang-go                         # fetches a newer Go for the Go builds (scripts/go-toolchain.sh)
  chromium python3-websockets fonts-dejavu-core  # web UI tests and report PNGs: headless Chromium over DevTools
  yamllint python3-yaml             # deploy: manifests' style; tests read rendered YAML
  slowhttptest                      # hostile traffic: slow-header / slow-body clients
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs/npm may come from elsewhere (e.g. a preinstalled toolchain).
if command -v node >/dev/null && command -v npm >/dev/null; then
  tmp=(); for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || tmp+=("$p"); done
  missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# oneDNN 3.2 is not in Debian (bookworm has 2.6): pinned PyPI wheels.
"$(dirname "$0")/install-onednn.sh"
