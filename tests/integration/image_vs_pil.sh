#!/usr/bin/env bash
# image_vs_pil.sh — compares osprey's decode + preprocess with PIL (the
# torchvision reference pipeline) on real photos: decoded pixels, U8 tensors
# for EXACT, SHORT_CROP and CENTRAL_FRACTION at full decode size (expected
# bit-exact: same libjpeg-turbo, same resampling arithmetic), the production
# path with the DCT-scaling decode hint (looser bound, see docs/image.md), and
# F32 normalisation. Needs /usr/bin/python3 with PIL + numpy and the shared
# photos; exits 77 (skipped) saying why when either is missing.
set -euo pipefail

PY=${OSP_PYTHON:-/usr/bin/python3}
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${OSP_BUILD_DIR:-$SRC/build}
TOOL=$BUILD/tests/osp_preprocess_dump

if ! "$PY" -c 'import PIL, numpy' 2>/dev/null; then
    echo "skipped: $PY lacks PIL or numpy (Debian: python3-pil python3-numpy)"
    exit 77
fi
IMAGES=""
for d in "${OSPREY_IMAGES:-}" "$SRC/../shared/images" "$SRC/../../shared/images"; do
    if [ -n "$d" ] && [ -f "$d/cat_1080p.jpg" ]; then IMAGES=$(cd "$d" && pwd); break; fi
done
if [ -z "$IMAGES" ]; then
    echo "skipped: photos not found (set OSPREY_IMAGES or provide ../shared/images)"
    exit 77
fi
if [ ! -x "$TOOL" ]; then
    echo "FAIL: $TOOL not built"
    exit 1
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

"$PY" - "$TOOL" "$IMAGES" "$TMP" <<'PYEOF'
import glob, os, subprocess, sys
import numpy as np
from PIL import Image

tool, images, tmp = sys.argv[1:4]
files = sorted(glob.glob(os.path.join(images, "*.jpg")) +
               glob.glob(os.path.join(images, "*.bmp")))
files += sorted(glob.glob(os.path.join(images, "imagenet-samples", "*")))[:25]

def torch_short_crop(img, short, cw, ch):
    w, h = img.size
    nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    r = img.resize((nw, nh), Image.BILINEAR)
    left, top = int(round((nw - cw) / 2.0)), int(round((nh - ch) / 2.0))
    return r.crop((left, top, left + cw, top + ch))

def tf_central(img, f, w, h):
    W, H = img.size
    x0, y0 = int((W - W * f) / 2), int((H - H * f) / 2)
    return img.crop((x0, y0, W - x0, H - y0)).resize((w, h), Image.BILINEAR)

CASES = [  # name, tool args, PIL reference
    ("exact224", ["--mode", "exact", "--size", "224x224"],
     lambda im: im.resize((224, 224), Image.BILINEAR)),
    ("exact299x150", ["--mode", "exact", "--size", "299x150"],
     lambda im: im.resize((299, 150), Image.BILINEAR)),
    ("short256crop224", ["--mode", "short_crop", "--short", "256", "--size", "224x224"],
     lambda im: torch_short_crop(im, 256, 224, 224)),
    ("central0875_299", ["--mode", "central_fraction", "--fraction", "0.875", "--size", "299x299"],
     lambda im: tf_central(im, 0.875, 299, 299)),
]
# Bounds (0..255 scale). Full decode: we reproduce PIL's arithmetic and link
# the same libjpeg-turbo, so any difference is a bug; 1.0 / 2 leave room for
# a rounding quirk only. Hinted decode: the JPEG scaled IDCT is sharper than
# PIL's antialiased bilinear, which shows on edges; measured worst mean 0.35
# and max 7 on these photos with the 2x margin.
FULL_MEAN, FULL_MAX = 1.0, 2
HINT_MEAN, HINT_MAX = 1.0, 24

bad = 0
worst = {}
def report(key, d, mean_b, max_b, label):
    global bad
    m, x = float(d.mean()), int(d.max())
    w = worst.setdefault(key, [0.0, 0])
    w[0], w[1] = max(w[0], m), max(w[1], x)
    if m > mean_b or x > max_b:
        bad += 1
        print(f"FAIL {label}: mean {m:.4f} (<= {mean_b}) max {x} (<= {max_b})")

for path in files:
    name = os.path.basename(path)
    ref_img = Image.open(path).convert("RGB")
    ref = np.asarray(ref_img).astype(np.int16)
    for cname, args, fn in CASES:
        want = np.asarray(fn(ref_img)).astype(np.int16)
        for mode in ("full", "hint"):
            out, ppm = os.path.join(tmp, "t.bin"), os.path.join(tmp, "d.ppm")
            cmd = [tool, *args, path, out]
            if mode == "full":
                cmd += ["--full", "--ppm", ppm]
            subprocess.run(cmd, check=True)
            got = np.fromfile(out, np.uint8).reshape(want.shape).astype(np.int16)
            d = np.abs(got - want)
            if mode == "full":
                report(cname + " full", d, FULL_MEAN, FULL_MAX, f"{name} {cname} full decode")
                if cname == "exact224":
                    dec = np.asarray(Image.open(ppm)).astype(np.int16)
                    if dec.shape != ref.shape:
                        bad += 1
                        print(f"FAIL {name}: decoded {dec.shape} vs PIL {ref.shape}")
                    else:
                        report("decode", np.abs(dec - ref), 0.5, 2, f"{name} decoded pixels")
            else:
                report(cname + " hint", d, HINT_MEAN, HINT_MAX, f"{name} {cname} hinted decode")

# F32 NCHW: exactly (v * float32(1/255) - mean) / std in float32, and within
# 1e-6 of torchvision's (v / 255 - mean) / std.
path = os.path.join(images, "cat_720p.jpg")
u8 = os.path.join(tmp, "u8.bin"); f32 = os.path.join(tmp, "f32.bin")
subprocess.run([tool, "--full", "--layout", "nchw", path, u8], check=True)
subprocess.run([tool, "--full", "--layout", "nchw", "--dtype", "f32", path, f32], check=True)
v = np.fromfile(u8, np.uint8).reshape(3, 224, 224).astype(np.float32)
got = np.fromfile(f32, np.float32).reshape(3, 224, 224)
mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
ours = (v * np.float32(1.0 / 255.0) - mean) / std
tv = (v / np.float32(255.0) - mean) / std
if not np.array_equal(got, ours):
    bad += 1
    print("FAIL F32: differs from the documented float32 formula, max",
          float(np.abs(got - ours).max()))
if float(np.abs(got - tv).max()) > 1e-6:
    bad += 1
    print("FAIL F32: differs from torchvision's formula by", float(np.abs(got - tv).max()))

for k, (m, x) in sorted(worst.items()):
    print(f"worst over {len(files)} photos: {k:24s} mean {m:.4f} max {x}")
print("FAILED" if bad else "OK", f"({bad} failures)")
sys.exit(1 if bad else 0)
PYEOF
