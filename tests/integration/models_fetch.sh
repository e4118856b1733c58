#!/usr/bin/env bash
# models_fetch.sh — `osprey models list|fetch` against a loopback mirror
# (python3 -m http.server on 127.0.0.1; nothing leaves the machine): the
# built-in catalogue is scripts/models.tsv; a good file verifies and lands
# with no temporary file left; a corrupt one fails with exit 1, says
# REFUSING and leaves nothing; an unknown name exits 2 before any download;
# a re-run skips verified files without a request; a .tar.gz (from a
# --manifest) unpacks with long names, and an archive whose entry would
# escape the directory is refused. The real files served are the Coral
# model and labels from the models directory (scripts/find-models.sh).
set -euo pipefail
: "${OSPREY:?OSPREY must point at the osprey binary}"
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=../../scripts/find-models.sh
. "$SRC/scripts/find-models.sh"
# shellcheck source=lib/file_server.bash
. "$(dirname "$0")/lib/file_server.bash"

MODELS=$(osp_models_dir) || { echo "SKIP: no models directory (looked in $(osp_models_searched))"; exit 77; }
for f in imagenet_labels.txt mobilenet_v1_0.25_128_quant.tflite inat_bird_labels.txt; do
    [ -f "$MODELS/tflite/$f" ] || { echo "SKIP: $MODELS/tflite/$f not found"; exit 77; }
done

WORK=$(mktemp -d /tmp/osp_models_fetch.XXXXXX)
cleanup() { file_server_stop; rm -rf "$WORK"; }
trap cleanup EXIT
MIRROR=$WORK/mirror DEST=$WORK/models
mkdir -p "$MIRROR"
cp "$MODELS/tflite/imagenet_labels.txt" "$MODELS/tflite/mobilenet_v1_0.25_128_quant.tflite" "$MIRROR/"
# The corrupt file: the real labels with one byte changed, same size.
python3 - "$MODELS/tflite/inat_bird_labels.txt" "$MIRROR/inat_bird_labels.txt" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
b[len(b) // 2] ^= 0x20
open(sys.argv[2], "wb").write(b)
EOF
file_server_start "$MIRROR"
echo "mirror: $FS_URL ($MIRROR)"

fail() { echo "FAIL: $*"; exit 1; }
run() {  # run OUT_PREFIX ARGS... → $RC, output in OUT_PREFIX.{out,err}
    local p=$1; shift
    RC=0
    timeout 120 "$OSPREY" models "$@" >"$p.out" 2>"$p.err" || RC=$?
}

# 1. The catalogue is models.tsv: every name in the file, nothing else.
run "$WORK/list" list
[ "$RC" = 0 ] || fail "models list exited $RC"
diff <(grep -v '^#' "$SRC/scripts/models.tsv" | grep . | cut -f1) \
     <(tail -n +2 "$WORK/list.out" | awk '{print $1}') || fail "models list differs from scripts/models.tsv"
grep -q '^mobilenet_v2_1.0_224_quant.tflite .*3.4 MiB  tflite/mobilenet_v2_1.0_224_quant.tflite$' "$WORK/list.out" ||
    fail "list lacks the size/destination of mobilenet_v2_1.0_224_quant.tflite: $(cat "$WORK/list.out")"
echo "ok: list shows the $(($(wc -l <"$WORK/list.out") - 1)) models of scripts/models.tsv"

# 2. Good files verify and land; no temporary file is left.
run "$WORK/good" fetch --dir "$DEST" --url-base "$FS_URL" imagenet_labels.txt mobilenet_v1_0.25_128_quant.tflite
[ "$RC" = 0 ] || fail "fetch of good files exited $RC: $(cat "$WORK/good.err")"
for f in imagenet_labels.txt mobilenet_v1_0.25_128_quant.tflite; do
    cmp "$DEST/tflite/$f" "$MODELS/tflite/$f" || fail "$f landed with different bytes"
done
[ -z "$(find "$DEST" -name '*.part.*')" ] || fail "temporary files left: $(find "$DEST" -name '*.part.*')"
echo "ok: good files verified and landed"

# 3. A corrupt file: exit 1, a clear message, nothing left.
run "$WORK/bad" fetch --dir "$DEST" --url-base "$FS_URL" inat_bird_labels.txt
[ "$RC" = 1 ] || fail "corrupt download exited $RC, want 1"
grep -q 'REFUSING inat_bird_labels.txt: sha256 [0-9a-f]\{64\}, expected a16108dfe3f8' "$WORK/bad.err" ||
    fail "no clear refusal message: $(cat "$WORK/bad.err")"
[ ! -e "$DEST/tflite/inat_bird_labels.txt" ] || fail "the corrupt file was left in place"
[ -z "$(find "$DEST" -name '*.part.*')" ] || fail "the corrupt download's temporary file was left"
echo "ok: corrupt file refused: $(head -1 "$WORK/bad.err")"

# 4. An unknown name: usage error, before anything is downloaded. (The
#    hit counter counts: the labels were fetched above, so it is not 0.)
hits=$(file_server_hits imagenet_labels.txt)
[ "$hits" -ge 1 ] || fail "the file server's log counts no download of imagenet_labels.txt"
run "$WORK/unknown" fetch --dir "$DEST" --url-base "$FS_URL" no-such-model.onnx imagenet_labels.txt
[ "$RC" = 2 ] || fail "unknown name exited $RC, want 2"
grep -q "unknown model 'no-such-model.onnx'" "$WORK/unknown.err" || fail "unclear message: $(cat "$WORK/unknown.err")"
[ "$(file_server_hits imagenet_labels.txt)" = "$hits" ] || fail "a download started despite the unknown name"
echo "ok: unknown name exits 2"

# 5. A re-run skips verified files without asking the server; a file with
#    the wrong bytes on disk is downloaded again.
hits=$(file_server_hits mobilenet_v1_0.25_128_quant.tflite)
run "$WORK/again" fetch --dir "$DEST" --url-base "$FS_URL" imagenet_labels.txt mobilenet_v1_0.25_128_quant.tflite
[ "$RC" = 0 ] || fail "re-run exited $RC"
[ "$(grep -c 'present and verified, skipped' "$WORK/again.out")" = 2 ] || fail "re-run did not skip: $(cat "$WORK/again.out")"
[ "$(file_server_hits mobilenet_v1_0.25_128_quant.tflite)" = "$hits" ] || fail "re-run downloaded again"
echo "tampered" >"$DEST/tflite/imagenet_labels.txt"
run "$WORK/repair" fetch --dir "$DEST" --url-base "$FS_URL" imagenet_labels.txt
[ "$RC" = 0 ] && cmp -s "$DEST/tflite/imagenet_labels.txt" "$MODELS/tflite/imagenet_labels.txt" ||
    fail "a wrong file on disk was not replaced (rc $RC): $(cat "$WORK/repair.err")"
echo "ok: re-run skips; a wrong file on disk is fetched again"

# 6. Archives (a --manifest in models.tsv's format): long names (GNU and
#    pax), directories, the stamp; and an archive escaping the directory.
python3 - "$MIRROR" "$WORK" <<'EOF'
import hashlib, io, os, sys, tarfile
mirror, work = sys.argv[1], sys.argv[2]
long_dir = "model_dir/" + "d" * 120
files = {"model_dir/model.onnx": os.urandom(300000),
         long_dir + "/test_data_set_0/input_0.pb": b"x" * 1000}
def make(name, fmt, entries, dirs=()):
    path = os.path.join(mirror, name)
    with tarfile.open(path, "w:gz", format=fmt) as t:
        for d in dirs:
            ti = tarfile.TarInfo(d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755
            t.addfile(ti)
        for n, data in entries.items():
            ti = tarfile.TarInfo(n); ti.size = len(data); ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return hashlib.sha256(open(path, "rb").read()).hexdigest(), os.path.getsize(path)
rows = []
for name, fmt in (("gnu.tar.gz", tarfile.GNU_FORMAT), ("pax.tar.gz", tarfile.PAX_FORMAT)):
    sha, size = make(name, fmt, files, dirs=("model_dir", long_dir))
    rows.append(f"{name}\thttp://invalid.example/{name}\t{sha}\t{size}\t{name}\ttar")
sha, size = make("evil.tar.gz", tarfile.GNU_FORMAT, {"ok.txt": b"a", "../escaped.txt": b"b"})
rows.append(f"evil.tar.gz\thttp://invalid.example/evil.tar.gz\t{sha}\t{size}\tevil.tar.gz\ttar")
# an empty line and a comment between entries are allowed
open(os.path.join(work, "manifest.tsv"), "w").write("# test archives\n" + rows[0] + "\n\n# more\n" + "\n".join(rows[1:]) + "\n")
for n, data in files.items():
    p = os.path.join(work, "expect", n)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(data)
EOF
for a in gnu pax; do
    rm -rf "$WORK/arch"
    run "$WORK/$a" fetch --dir "$WORK/arch" --url-base "$FS_URL" --manifest "$WORK/manifest.tsv" "$a.tar.gz"
    [ "$RC" = 0 ] || fail "$a archive: exit $RC: $(cat "$WORK/$a.err")"
    diff -r "$WORK/expect/model_dir" "$WORK/arch/model_dir" || fail "$a archive: extracted tree differs"
    [ ! -e "$WORK/arch/$a.tar.gz" ] || fail "$a archive: the archive was kept after extraction"
    grep -q "^$(grep "^$a.tar.gz" "$WORK/manifest.tsv" | cut -f3)\$" "$WORK/arch/.stamps/$a.tar.gz.sha256" ||
        fail "$a archive: no stamp"
    run "$WORK/$a-again" fetch --dir "$WORK/arch" --url-base "$FS_URL" --manifest "$WORK/manifest.tsv" "$a.tar.gz"
    [ "$RC" = 0 ] && grep -q 'already extracted' "$WORK/$a-again.out" || fail "$a archive: re-run did not skip"
done
echo "ok: tar.gz archives (GNU and pax long names) unpack; re-run skips"
mkdir -p "$WORK/evil/inner"
run "$WORK/evil" fetch --dir "$WORK/evil/inner" --url-base "$FS_URL" --manifest "$WORK/manifest.tsv" evil.tar.gz
[ "$RC" = 1 ] || fail "escaping archive exited $RC, want 1"
grep -q "would land outside" "$WORK/evil.err" || fail "unclear message: $(cat "$WORK/evil.err")"
[ ! -e "$WORK/evil/escaped.txt" ] || fail "an entry escaped the models directory"
[ ! -e "$WORK/evil/inner/.stamps/evil.tar.gz.sha256" ] || fail "a refused archive was stamped"
echo "ok: an archive escaping the directory is refused"

# 7. A malformed --manifest is a usage error.
printf 'name\tonly-two-fields\n' >"$WORK/broken.tsv"
run "$WORK/broken" list --manifest "$WORK/broken.tsv"
[ "$RC" = 2 ] && grep -q 'broken.tsv:1: not a manifest line' "$WORK/broken.err" ||
    fail "malformed manifest: exit $RC, $(cat "$WORK/broken.err")"
{ echo "# seven fields"; grep -v '^#' "$SRC/scripts/models.tsv" | head -1 | sed 's/$/\textra/'; } >"$WORK/broken7.tsv"
run "$WORK/broken7" list --manifest "$WORK/broken7.tsv"
[ "$RC" = 2 ] && grep -q 'broken7.tsv:2: not a manifest line' "$WORK/broken7.err" ||
    fail "a seven-field line was accepted: exit $RC, $(cat "$WORK/broken7.err")"

# 8. The shell side of the one catalogue: scripts/fetch-models.sh (`make
#    models`) reads the same models.tsv. Run a copy whose models.tsv points
#    every URL at the mirror: the good files verify, the corrupt one is
#    refused, the ones the mirror lacks fail the run.
mkdir -p "$WORK/root/scripts"
cp "$SRC/scripts/fetch-models.sh" "$SRC/scripts/find-models.sh" "$WORK/root/scripts/"
awk -F'\t' -v base="$FS_URL" 'BEGIN {OFS = "\t"} /^#/ || NF == 0 {print; next}
    {n = split($2, a, "/"); $2 = base "/" a[n]; print}' "$SRC/scripts/models.tsv" >"$WORK/root/scripts/models.tsv"
RC=0
OSP_SOURCE_DIR=$WORK/root timeout 120 bash "$WORK/root/scripts/fetch-models.sh" --download >"$WORK/sh.out" 2>&1 || RC=$?
[ "$RC" = 1 ] || fail "fetch-models.sh with a partial mirror exited $RC, want 1: $(tail -5 "$WORK/sh.out")"
grep -q 'tflite/imagenet_labels.txt verified' "$WORK/sh.out" &&
    grep -q 'tflite/mobilenet_v1_0.25_128_quant.tflite verified' "$WORK/sh.out" &&
    grep -q 'REFUSING inat_bird_labels.txt' "$WORK/sh.out" ||
    fail "fetch-models.sh did not read scripts/models.tsv as the binary does: $(cat "$WORK/sh.out")"
cmp -s "$WORK/root/models/tflite/imagenet_labels.txt" "$MODELS/tflite/imagenet_labels.txt" ||
    fail "fetch-models.sh: imagenet_labels.txt differs"
echo "ok: scripts/fetch-models.sh reads the same catalogue (good files verified, the corrupt one refused)"
echo "models_fetch: ok"
