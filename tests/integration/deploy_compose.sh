#!/usr/bin/env bash
# deploy_compose.sh — docker-compose.yml, proven with podman-compose: the
# file validates (`podman-compose config`, and Docker Compose's `config`
# against the Compose schema: the Docker CLI's plugin, or Docker Compose
# built by scripts/go-tool.sh docker-compose), then the osprey services (two workers, the dispatcher, the
# observing autoscaler) come up from the image deploy_image.sh builds
# (shared through lib/image.bash, one cached build), with the real Coral
# MobileNetV2 mounted: /classify through the dispatcher on a loopback port
# answers real photos with the right label, both workers served requests
# (their /metrics), the autoscaler sees the two workers, the dispatcher's
# HEALTHCHECK passes. Prometheus, Alertmanager and Grafana cannot run here:
# their images come from a registry this machine cannot reach (the test
# says so; their configuration is checked by the monitoring tests).
# Everything is brought down on exit.
set -euo pipefail
: "${OSPREY:?OSPREY must point at the osprey binary}"
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
OSP_SOURCE_DIR=$SRC
# shellcheck source=lib/image.bash
. "$(dirname "$0")/lib/image.bash"
# shellcheck source=../../scripts/find-models.sh
. "$SRC/scripts/find-models.sh"

image_require_tools
# podman-compose ≥ 1.1 (PyPI; it has `config`): the venv's, else PATH's.
COMPOSE=$SRC/.venv/bin/podman-compose
[ -x "$COMPOSE" ] || COMPOSE=$(command -v podman-compose || true)
[ -n "$COMPOSE" ] || { echo "SKIP: podman-compose not installed (PyPI podman-compose)"; exit 77; }
"$COMPOSE" --help 2>&1 | grep -qw config ||
    { echo "SKIP: $COMPOSE has no 'config' command (Debian's 1.0.3): PyPI podman-compose >= 1.1 is needed"; exit 77; }
MODEL=$(osp_model_path tflite/mobilenet_v2_1.0_224_quant.tflite) ||
    { echo "SKIP: tflite/mobilenet_v2_1.0_224_quant.tflite not found (looked in $(osp_models_searched))"; exit 77; }
MODELS_DIR=$(dirname "$(dirname "$(readlink -f "$MODEL")")")  # holds tflite/, no links out
PHOTOS=$(osp_images_dir "$MODELS_DIR" parrot.jpg)
[ -f "$PHOTOS/parrot.jpg" ] || { echo "SKIP: parrot.jpg not found in $PHOTOS"; exit 77; }

PROJECT=osp-test-compose-$$
WORK=$(mktemp -d /tmp/osp_deploy_compose.XXXXXX)
fail() { echo "FAIL: $*"; exit 1; }
# podman-compose passes these to every podman call and `podman run`: runc,
# and the ulimits this machine's container runtime needs (as deploy_image.sh).
compose() {
    "$COMPOSE" --podman-args="--runtime runc" \
        --podman-run-args="--ulimit nofile=1024:1024 --ulimit nproc=1024:1024" \
        -p "$PROJECT" -f "$SRC/docker-compose.yml" "$@"
}
UP=0
cleanup() {
    local c v anon=()
    if [ "$UP" = 1 ]; then
        # The image's VOLUMEs become anonymous volumes, which `down -v`
        # leaves behind (it removes the file's named volumes): note them.
        for c in $(podman ps -aq --filter "label=io.podman.compose.project=$PROJECT"); do
            for v in $(podman inspect --format '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' "$c"); do
                anon+=("$v")
            done
        done
        compose down -v -t 2 >"$WORK/down.log" 2>&1 || { echo "compose down failed:"; tail -5 "$WORK/down.log"; }
        for v in "${anon[@]}"; do podman volume rm -f "$v" >/dev/null 2>&1 || true; done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# 1. The file validates; what it declares.
(cd "$SRC" && env -u OSPREY_PORT -u OSPREY_IMAGE -u OSPREY_MODELS_DIR "$COMPOSE" -f docker-compose.yml config) >"$WORK/config.yml" 2>"$WORK/config.err" ||
    fail "podman-compose config: $(cat "$WORK/config.err")"
python3 - "$WORK/config.yml" "$SRC" <<'EOF' || fail "docker-compose.yml does not declare the stack"
import os, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
src = sys.argv[2]
svc = cfg["services"]
want = {"dispatcher", "worker1", "worker2", "autoscaler", "prometheus", "grafana", "alertmanager"}
assert want <= set(svc), f"services {sorted(svc)} lack {sorted(want - set(svc))}"
for name, s in svc.items():
    for p in s.get("ports", []):
        assert str(p).startswith("127.0.0.1:"), f"{name} publishes {p} beyond loopback"
    if name not in ("prometheus", "grafana", "alertmanager"):
        assert s.get("read_only") is True, f"{name} is not read_only"
        assert s["build"]["dockerfile"] == "deploy/docker/Dockerfile", name
    else:
        image = s["image"]
        assert image.split("/")[0] == "docker.io" and ":" in image.split("/")[-1] and \
            not image.endswith(":latest"), f"{name}: {image} is not a pinned Docker Hub image"
assert svc["dispatcher"]["ports"] == ["127.0.0.1:8000:8000"], svc["dispatcher"]["ports"]
# The monitoring files the stack mounts (deploy/monitoring/).
missing = []
for name in ("prometheus", "grafana", "alertmanager"):
    for v in svc[name].get("volumes", []):
        host = str(v).split(":")[0]
        if host.startswith("./"):
            if not os.path.exists(os.path.join(src, host)):
                missing.append(f"{name}: {host}")
if missing and os.path.isdir(os.path.join(src, "deploy/monitoring")):
    raise SystemExit(f"mounted files missing: {missing}")
print("config: %d services; published ports on 127.0.0.1 only; monitoring mounts %s" % (
    len(svc), "present" if not missing else "not in this tree (deploy/monitoring absent): " + ", ".join(missing)))
EOF
echo "ok: podman-compose config ($("$COMPOSE" version 2>/dev/null | head -1))"
# yamllint, with the repository's rules (.yamllint) when the tree has them.
if [ -f "$SRC/.yamllint" ] && command -v yamllint >/dev/null; then
    (cd "$SRC" && yamllint -s docker-compose.yml) || fail "yamllint docker-compose.yml"
    echo "ok: yamllint -s docker-compose.yml"
else
    echo "not run: yamllint (no .yamllint in the tree or no yamllint)"
fi
# Docker Compose's own check against the Compose specification's schema
# (podman-compose does not check the schema): the Docker CLI's plugin when
# it has one, else Docker Compose built from its Go module
# (scripts/go-tool.sh docker-compose, cached). A copy with a misspelt key must fail.
DC=()
if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    DC=(docker compose)
else
    dc_rc=0
    dc_bin=$("$SRC/scripts/go-tool.sh" docker-compose 2>"$WORK/dc-build.log") || dc_rc=$?
    case $dc_rc in
        0) DC=("$dc_bin") ;;
        77) echo "not run: docker compose config (no Docker Compose, and no Go to build it)" ;;
        *) tail -20 "$WORK/dc-build.log"; fail "scripts/go-tool.sh docker-compose failed" ;;
    esac
fi
if [ ${#DC[@]} -gt 0 ]; then
    (cd "$SRC" && env -u OSPREY_PORT -u OSPREY_IMAGE -u OSPREY_MODELS_DIR "${DC[@]}" -f docker-compose.yml config -q) ||
        fail "docker compose config rejects docker-compose.yml"
    sed 's/^  tmpfs:/  tmpfz:/' "$SRC/docker-compose.yml" >"$WORK/misspelt.yml"
    if "${DC[@]}" -f "$WORK/misspelt.yml" --project-directory "$SRC" config -q >/dev/null 2>&1; then
        fail "docker compose config accepted a misspelt key: it does not validate"
    fi
    echo "ok: docker compose config ($("${DC[@]}" version 2>/dev/null | head -1); a misspelt key is rejected)"
fi
# 2. The osprey services on the image of lib/image.bash.
image_build || fail "image build"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export OSPREY_IMAGE=$IMAGE_TAG OSPREY_PORT=$PORT OSPREY_MODELS_DIR=$MODELS_DIR OSPREY_WORKER_THREADS=1
UP=1
compose up -d --no-build worker1 worker2 dispatcher autoscaler >"$WORK/up.log" 2>&1 ||
    { tail -30 "$WORK/up.log"; fail "podman-compose up"; }
echo "up: worker1 worker2 dispatcher autoscaler (project $PROJECT, dispatcher on 127.0.0.1:$PORT, models $MODELS_DIR)"
echo "not run: prometheus, alertmanager, grafana — their Docker Hub images cannot be pulled here (no registry); deploy/monitoring's tests check their configuration with promtool and amtool"
ctr() { podman ps -a --filter "label=io.podman.compose.project=$PROJECT" \
            --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -1; }
logs_all() {
    local s
    for s in worker1 worker2 dispatcher autoscaler; do
        echo "--- $s"; podman logs "$(ctr "$s")" 2>&1 | grep -v 'level=error msg=".*systemd' | tail -15
    done
}
ready=0
for ((i = 0; i < 1800; i++)); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/v2/health/ready")" = 200 ]; then
        ready=1; break
    fi
    sleep 0.1
done
[ "$ready" = 1 ] || { logs_all; fail "the dispatcher is not ready on 127.0.0.1:$PORT after 180 s"; }
echo "ok: dispatcher ready on 127.0.0.1:$PORT after $((i / 10)) s"

# 3. /classify through the dispatcher, until both workers have answered.
N=24
for ((i = 0; i < N; i++)); do
    photo=parrot.jpg want=macaw
    if ((i % 2)); then photo=cat.bmp want="Egyptian cat"; fi
    label=$(curl -s --max-time 60 -F "file=@$PHOTOS/$photo" "http://127.0.0.1:$PORT/classify?top_k=1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["results"][0]["predictions"][0]["label"])') ||
        { logs_all; fail "POST /classify through the dispatcher failed"; }
    [ "$label" = "$want" ] || fail "$photo through the dispatcher: '$label', want '$want'"
done
echo "ok: $N × /classify through the dispatcher: parrot.jpg → macaw, cat.bmp → Egyptian cat"

# The workers' own /metrics, on their addresses in the project's network.
ip_of() { podman inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$(ctr "$1")"; }
served() {
    curl -s --max-time 5 "http://$(ip_of "$1"):8080/metrics" |
        awk '/^osprey_requests_total\{/ && /code="200"/ {n += $NF} END {print n + 0}'
}
s1=$(served worker1) s2=$(served worker2)
echo "workers: worker1 served $s1, worker2 served $s2 (osprey_requests_total, code 200)"
[ "$s1" -gt 0 ] && [ "$s2" -gt 0 ] || fail "a worker served nothing"
[ $((s1 + s2)) -eq "$N" ] || fail "the workers served $((s1 + s2)) requests, the dispatcher sent $N"

# 4. The autoscaler observes both workers; the dispatcher's HEALTHCHECK.
cur=
for ((i = 0; i < 100; i++)); do
    # the autoscaler shares the dispatcher's network namespace (its address)
    cur=$(curl -s --max-time 5 "http://$(ip_of dispatcher):8002/metrics" |
        awk '/^osprey_autoscaler_current_replicas/ {print $NF}')
    [ "$cur" = 2 ] && break
    sleep 0.1
done
[ "$cur" = 2 ] || { logs_all; fail "the autoscaler reports '$cur' current replicas, want 2"; }
echo "ok: the autoscaler (--dry-run) sees 2 workers"
image_podman healthcheck run "$(ctr dispatcher)" || fail "the dispatcher's HEALTHCHECK failed"
image_podman healthcheck run "$(ctr worker1)" || fail "worker1's HEALTHCHECK failed"
echo "ok: HEALTHCHECK (osprey health) passes on the dispatcher and a worker"
echo "deploy_compose: ok"
