#!/usr/bin/env bash
# install-onednn.sh — puts oneDNN 3.2 (Intel's PyPI build, GNU OpenMP
# runtime) into third_party/onednn/ of the checkout, where CMake finds it
# (CMakeLists.txt, OSP_ONEDNN_DIR). Called by scripts/install-deps.sh and by
# the container image's build stage.
#
# Why PyPI wheels and not Debian's libdnnl-dev: bookworm ships oneDNN 2.6.3,
# whose int8 convolutions run at half the speed of 3.2's on AMX CPUs
# (docs/adr/0048-onednn-3.md). Intel publishes the 3.x C library as two
# plain wheels: onednn-cpu-gomp (one self-contained libdnnl.so.3) and
# onednn-devel-cpu-gomp (headers, CMake config). A wheel is a zip file; we
# take the library and the headers out of it and nothing else.
#
# Pinned versions and sha256 checked: a changed wheel fails the install
# instead of building against something else. Idempotent: when the stamp
# file names the pinned version, it returns at once. Downloads are cached in
# ${ONEDNN_CACHE:-~/.cache/osprey/onednn}, so a re-extraction is offline.
#
#   scripts/install-onednn.sh [DEST]     (default <checkout>/third_party/onednn)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd -P)
DEST=${1:-$SRC/third_party/onednn}
VERSION=2023.2.0   # the wheels' version; the library inside is oneDNN 3.2.0
LIB_WHEEL=onednn_cpu_gomp-$VERSION-py2.py3-none-manylinux1_x86_64.whl
LIB_SHA=2f22a54d6a890ed14bfa185d42a4be65d8b5b1df85dc1f0f3a9abe31620416fb
DEV_WHEEL=onednn_devel_cpu_gomp-$VERSION-py2.py3-none-manylinux1_x86_64.whl
DEV_SHA=9763c69e8c907e119056bd52ad918ca84ac9ba939d130a99dfa95ccca3e5e284
STAMP="$DEST/.installed"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VERSION" ] &&
   [ -f "$DEST/lib/libdnnl.so.3" ] && [ -f "$DEST/include/oneapi/dnnl/dnnl.h" ]; then
  exit 0
fi
if [ "$(uname -m)" != x86_64 ]; then
  echo "install-onednn: the pinned wheels are x86_64 builds; this is $(uname -m)" >&2
  exit 1
fi

CACHE=${ONEDNN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/osprey/onednn}
mkdir -p "$CACHE"
sha_ok() { echo "$2  $CACHE/$1" | sha256sum --check --status 2>/dev/null; }
if ! sha_ok "$LIB_WHEEL" "$LIB_SHA" || ! sha_ok "$DEV_WHEEL" "$DEV_SHA"; then
  # pip from the system Python when it has one, else the project's venv.
  if python3 -m pip --version >/dev/null 2>&1; then PIP=(python3 -m pip)
  elif [ -x "$SRC/.venv/bin/pip" ]; then PIP=("$SRC/.venv/bin/pip")
  else echo "install-onednn: needs pip (apt-get install python3-pip)" >&2; exit 1
  fi
  echo "install-onednn: downloading oneDNN wheels $VERSION into $CACHE"
  "${PIP[@]}" download --disable-pip-version-check -q --no-deps \
    --only-binary=:all: --platform manylinux1_x86_64 -d "$CACHE" \
    "onednn-cpu-gomp==$VERSION" "onednn-devel-cpu-gomp==$VERSION"
fi
for w in "$LIB_WHEEL:$LIB_SHA" "$DEV_WHEEL:$DEV_SHA"; do
  if ! sha_ok "${w%%:*}" "${w##*:}"; then
    echo "install-onednn: sha256 mismatch for $CACHE/${w%%:*} (expected ${w##*:})" >&2
    exit 1
  fi
done

# Extract into a temporary directory beside DEST, then rename: an
# interrupted run never leaves a half tree that the stamp check accepts.
TMP="$DEST.tmp.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
python3 - "$CACHE/$LIB_WHEEL" "$CACHE/$DEV_WHEEL" "$TMP" <<'EOF'
# The wheels keep their payload under <name>.data/data/{lib,include,share};
# the library wheel stores libdnnl.so, .so.3 and .so.3.2 as three copies of
# the same 54 MB file: keep .so.3 (the soname) and link the others to it.
# The wheel's own CMake config is not taken: CMakeLists.txt finds the
# library and headers by path.
import os, sys, zipfile
lib_whl, dev_whl, dest = sys.argv[1:4]
for whl, keep in ((lib_whl, ("lib/libdnnl.so.3", "share/doc/onednn/")),
                  (dev_whl, ("include/",))):
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            parts = info.filename.split("/", 2)
            if (len(parts) < 3 or not parts[0].endswith(".data") or
                    parts[1] != "data" or info.is_dir()):
                continue
            rel = parts[2]
            if not any(rel == k or (k.endswith("/") and rel.startswith(k)) for k in keep):
                continue
            out = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(info) as f, open(out, "wb") as o:
                o.write(f.read())
os.chmod(os.path.join(dest, "lib/libdnnl.so.3"), 0o755)
os.symlink("libdnnl.so.3", os.path.join(dest, "lib/libdnnl.so"))
EOF
echo "$VERSION" > "$TMP/.installed"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$TMP" "$DEST"
trap - EXIT
echo "install-onednn: oneDNN 3.2.0 ($VERSION wheels) in $DEST"
