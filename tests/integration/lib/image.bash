# image.bash — the container image of deploy/docker/Dockerfile, built once
# and shared by the deploy_image.sh and deploy_compose.sh tests (sourced;
# named .bash so the *.sh glob does not register it as a test).
#
# There is no registry to pull the Debian base images from, so the bases are
# made here: `mmdebstrap --variant=minbase bookworm` (cached per ISO week in
# ${XDG_CACHE_HOME:-~/.cache}/osprey/image), with the dpkg path excludes the
# official bookworm-slim image is built with (debuerreotype's slimify: no
# docs but copyright files, no man pages, no locales), imported as
# docker.io/library/debian:bookworm-slim and, the same root, as
# debian:bookworm (the build stage installs what it needs with apt); /usr
# is merged as in Debian's images. A tag
# that exists and was not made here (a real pulled image) is used as is.
# Then `podman build --network=host` of the unchanged Dockerfile, into
# $IMAGE_TAG, labelled with a key of the build's inputs (the Dockerfile and
# the files its context admits): the image is kept between runs as the
# cache (as the base tarballs are) and rebuilt only when the key changes;
# a rebuild removes the image it replaces, and no intermediate image is
# kept. The tests remove their containers and volumes.
# OSPREY_IMAGE_JOBS sets the build's compile jobs (default 2). Tests may run in parallel
# (CTest -j): the base and the build are made under a flock.
#
#   image_require_tools       → exit 77 with the reason when a tool is missing
#   image_build               → builds $IMAGE_TAG (prints the build time)
#   image_size_bytes          → the runtime image's size
#   image_podman ARGS...      → podman with the runtime every test uses (runc)

: "${OSP_SOURCE_DIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}"
IMAGE_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/osprey/image
IMAGE_TAG=${OSPREY_TEST_IMAGE:-localhost/osprey:test}
IMAGE_BASE_LABEL=org.osprey.test-base # marks the bases this file imported

image_podman() { podman --runtime runc "$@"; }

image_require_tools() {
    local t
    for t in podman mmdebstrap runc flock; do
        command -v "$t" >/dev/null || { echo "SKIP: $t not installed (scripts/install-deps.sh installs it)"; exit 77; }
    done
    [ "$(id -u)" = 0 ] || { echo "SKIP: needs root (mmdebstrap --mode=root, podman with runc and host networking)"; exit 77; }
    image_podman info >/dev/null 2>&1 || { echo "FAIL: podman info fails:"; image_podman info 2>&1 | tail -5; exit 1; }
}

# The host's apt sources and its local fetch settings (Acquire::* from
# apt.conf.d files no package owns: a proxy, a snapshot mirror's validity
# check), so that the root is made the way this machine reaches Debian.
image__mmdebstrap_args() {
    local f
    IMAGE_MM_SOURCES=() IMAGE_MM_OPTS=()
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] && grep -qvE '^[[:space:]]*(#|$)' "$f" && IMAGE_MM_SOURCES+=("$f")
    done
    for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
        [ -f "$f" ] || continue
        dpkg -S "$f" >/dev/null 2>&1 && continue
        grep -qE '^[[:space:]]*Acquire' "$f" && IMAGE_MM_OPTS+=("--aptopt=$f")
    done
    return 0
}

# Makes (or reuses) this week's base root tarball; prints its path.
image__base_tar() {
    local week tar
    week=$(date -u +%G-W%V)
    tar=$IMAGE_CACHE/bookworm-minbase-slim-$week.tar
    if [ ! -s "$tar" ]; then
        image__mmdebstrap_args
        echo "image: mmdebstrap --variant=minbase bookworm (slim excludes) → $tar" >&2
        local t0=$SECONDS
        # merged-usr hook: /usr merged as in Debian's own images, without the
        # usrmerge package (which would pull in 25 MB of perl).
        nice -n 10 mmdebstrap --variant=minbase --mode=root --format=tar \
            --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
            --dpkgopt='path-exclude=/usr/share/doc/*' \
            --dpkgopt='path-include=/usr/share/doc/*/copyright' \
            --dpkgopt='path-exclude=/usr/share/man/*' \
            --dpkgopt='path-exclude=/usr/share/groff/*' \
            --dpkgopt='path-exclude=/usr/share/info/*' \
            --dpkgopt='path-exclude=/usr/share/lintian/*' \
            --dpkgopt='path-exclude=/usr/share/linda/*' \
            --dpkgopt='path-exclude=/usr/share/locale/*' \
            "${IMAGE_MM_OPTS[@]}" bookworm "$tar.part" "${IMAGE_MM_SOURCES[@]}" >&2 || {
            rm -f "$tar.part"; return 1; }
        mv "$tar.part" "$tar"
        echo "image: base made in $((SECONDS - t0)) s ($(du -m "$tar" | cut -f1) MB)" >&2
        # older weeks' tarballs are no longer used
        find "$IMAGE_CACHE" -maxdepth 1 -name 'bookworm-minbase-slim-*.tar' ! -name "${tar##*/}" -delete
    fi
    echo "$tar"
}

# Imports the base under both Debian tags unless a real image holds the tag.
image__bases() {
    local tar week ref have
    tar=$(image__base_tar) || return 1
    week=$(basename "$tar" .tar)
    for ref in docker.io/library/debian:bookworm-slim docker.io/library/debian:bookworm; do
        if podman image exists "$ref"; then
            have=$(podman image inspect --format "{{ index .Labels \"$IMAGE_BASE_LABEL\" }}" "$ref" 2>/dev/null)
            if [ -z "$have" ] || [ "$have" = "<no value>" ]; then
                echo "image: using the existing $ref (not made by this test)" >&2
                continue
            fi
            [ "$have" = "$week" ] && continue
        fi
        echo "image: podman import $tar as $ref" >&2
        podman import --change "LABEL $IMAGE_BASE_LABEL=$week" "$tar" "$ref" >/dev/null || return 1
    done
}

# A key of what the build reads: the Dockerfile and the files the
# .dockerignore allow-list (its "!" lines) lets into the context. An image
# carrying the same key is up to date with the tree.
image__context_key() {
    local pats=() p
    while IFS= read -r p; do
        case "$p" in '!'*) p=${p#!}; pats+=("${p%/}") ;; esac
    done <"$OSP_SOURCE_DIR/.dockerignore"
    (
        cd "$OSP_SOURCE_DIR" && shopt -s nullglob
        for p in "${pats[@]}"; do
            # shellcheck disable=SC2086  # the pattern is a glob on purpose
            for f in $p; do find "$f" -type f; done
        done | LC_ALL=C sort -u | xargs -d '\n' sha256sum
        sha256sum deploy/docker/Dockerfile
        echo "jobs ${OSPREY_IMAGE_JOBS:-2}"
    ) | sha256sum | cut -c1-16
}

image_build() {
    mkdir -p "$IMAGE_CACHE"
    local lock_fd t0 key have old new
    exec {lock_fd}>"$IMAGE_CACHE/build.lock"
    # Another test may be building: wait for it (its build is ours too).
    flock -w 3600 "$lock_fd" || { echo "image: could not take $IMAGE_CACHE/build.lock within 1 h"; return 1; }
    image__bases || { flock -u "$lock_fd"; return 1; }
    key=$(image__context_key)
    have=$(podman image inspect --format "{{ index .Labels \"$IMAGE_BASE_LABEL-context\" }}" "$IMAGE_TAG" 2>/dev/null || true)
    if [ "$have" = "$key" ]; then
        IMAGE_BUILD_S=0
        echo "image: $IMAGE_TAG is up to date with the tree (context $key)"
        flock -u "$lock_fd"
        return 0
    fi
    old=$(podman image inspect --format '{{.Id}}' "$IMAGE_TAG" 2>/dev/null || true)
    t0=$SECONDS
    echo "image: podman build --network=host -f deploy/docker/Dockerfile -t $IMAGE_TAG (context $key; log: $IMAGE_CACHE/build.log)"
    # --format docker: the OCI image format has no HEALTHCHECK; Docker's
    # keeps it. --layers=false: no intermediate images are kept (the build
    # stage alone is 0.5 GB); the tree's key above is the cache instead.
    if ! nice -n 10 podman build --runtime runc --network=host --format docker --layers=false \
            --build-arg OSPREY_BUILD_JOBS="${OSPREY_IMAGE_JOBS:-2}" \
            --label "$IMAGE_BASE_LABEL-context=$key" \
            -f "$OSP_SOURCE_DIR/deploy/docker/Dockerfile" -t "$IMAGE_TAG" \
            "$OSP_SOURCE_DIR" >"$IMAGE_CACHE/build.log" 2>&1; then
        echo "image: podman build failed:"; tail -40 "$IMAGE_CACHE/build.log"
        flock -u "$lock_fd"
        return 1
    fi
    IMAGE_BUILD_S=$((SECONDS - t0))
    new=$(podman image inspect --format '{{.Id}}' "$IMAGE_TAG")
    # The image this build replaced is no cache any more.
    if [ -n "$old" ] && [ "$old" != "$new" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
    echo "image: built $IMAGE_TAG in ${IMAGE_BUILD_S} s"
    flock -u "$lock_fd"
}

image_size_bytes() {
    podman image inspect --format '{{.Size}}' "$IMAGE_TAG"
}
