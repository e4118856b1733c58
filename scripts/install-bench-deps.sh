#!/usr/bin/env bash
# install-bench-deps.sh — installs the Debian packages the service benchmark
# (bench/service.sh, `make bench-service`) needs beyond the build and tests:
# the FastAPI + PyTorch baseline (bench/baselines/fastapi-torch) and `wrk`
# for the load generator's overhead comparison; HAProxy for the dispatcher
# benchmark (bench/dispatch_vs_haproxy.sh, with `perf stat` for CPU per
# request). Kept apart from
# install-deps.sh because CI does not run the benchmark and torch is large
# (~1 GB with its dependencies). Idempotent.
#
# libopenblas0-openmp: libtorch recommends an optimised BLAS
# (libopenblas0 | libblis3 | ...), and a plain `apt-get install python3-torch`
# pulls one in; without it, torch's small 1x1 convolutions go through the
# reference BLAS and the baseline would be slower than what users deploy.
# We take the OpenMP flavour so that BLAS and ATen share one thread pool of
# the configured size (the pthread flavour adds its own threads on top).
# Note that it becomes the system's libblas.so.3 (Debian alternatives).
set -euo pipefail

PKGS=(
  python3-fastapi python3-uvicorn python3-multipart   # the web framework
  python3-torch python3-torchvision python3-pil       # the model + preprocessing
  libopenblas0-openmp                                 # see above
  wrk hey                                             # reference load tools
  haproxy                                             # bench/dispatch_vs_haproxy.sh
  linux-perf                                          # its CPU part: perf stat on the proxy
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-bench-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
