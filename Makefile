# Makefile — the front door. `make` builds, `make test` runs every test,
# `make run` starts the whole local stack (the main job: `osprey up`). CMake does the real work in $(BUILD_DIR).
BUILD_DIR ?= build
BUILD_TYPE ?= Release
SANITIZE ?= OFF
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all build install deps venv test run models debug asan fuzz fresh-check bench bench-service scale-demo scale-demo-k8s clean

all: build

deps:
	@scripts/install-deps.sh

venv:
	@scripts/setup-venv.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DOSP_SANITIZE=$(SANITIZE) $(CMAKE_FLAGS)

build: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The binary and libdnnl.so.3 (oneDNN 3, not a system package) into
# $(PREFIX)/bin and $(PREFIX)/lib; the binary finds the library through
# its $$ORIGIN/../lib rpath.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD_DIR) --prefix $(PREFIX)

# All tests: installs missing dependencies (idempotent, quick when present),
# builds, then runs CTest. Tests that need model weights look in
# $$OSPREY_MODELS, then ../shared/models, and report what they skip.
test: deps venv build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The main job: locate (or download) the default model and start the whole
# local stack with `osprey up` — dispatcher on :8000 (UI, API, /metrics),
# the autoscaler running 1…CPUs workers, Prometheus on :9090 and
# Alertmanager on :9093 (deps installs both); prints the URLs and a curl
# example; Ctrl-C drains and stops everything. RUN_ARGS adds `osprey up`
# flags; `scripts/run.sh --classify` is the one-shot demo that classifies
# the sample photos.
RUN_ARGS ?=
run: deps build models
	@scripts/run.sh $(BUILD_DIR)/osprey $(RUN_ARGS)

models:
	@scripts/fetch-models.sh

# Debug + AddressSanitizer/UBSan build of the same suite.
asan:
	$(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug SANITIZE=ON

# The README's commands on a fresh machine: a minimal Debian bookworm root
# (mmdebstrap), a clean clone of HEAD, `make test` and `make run` inside it
# with chroot. Needs root; 7-10 min on 2 CPUs. See README, "Fresh-machine check".
fresh-check:
	@scripts/fresh-check.sh $(FRESH_ARGS)

fuzz:
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DOSP_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS)

bench: build
	@scripts/bench.sh $(BUILD_DIR)/osprey

# Service benchmark: osprey serve vs the FastAPI + PyTorch baseline
# under the same load; needs scripts/install-bench-deps.sh. ~15 min;
# BENCH_SERVICE_ARGS=--quick for a ~1 min smoke run.
bench-service: build
	@scripts/install-bench-deps.sh
	@OSPREY=$(BUILD_DIR)/osprey bench/service.sh $(BENCH_SERVICE_ARGS)

# The scaling scenario of docs/validation.md: `osprey up` (1…3 workers),
# osprey load low → high → spike → low plus a short Locust phase, a /ui/status
# snapshot per level, `osprey report` into results/scale-demo-<UTC time>/
# (SCALE_DEMO_ARGS="--out DIR" to choose). About 4 min.
SCALE_DEMO_ARGS ?=
scale-demo: build
	@OSPREY=$(BUILD_DIR)/osprey scripts/scale-demo.sh $(SCALE_DEMO_ARGS)

# The same scenario on the Kubernetes path (a real API server and
# controllers, the shipped manifests, pods run as local processes; root):
# scripts/kube-local-stack.sh.
scale-demo-k8s: build
	@OSPREY=$(BUILD_DIR)/osprey scripts/scale-demo.sh --kubernetes $(SCALE_DEMO_ARGS)

clean:
	rm -rf build build-asan build-fuzz build-fuzz-smoke build-fresh
