"""osprey vs the LiteRT interpreter on the Coral TFLite models.

For every model in MODELS/tflite and every photo in IMAGES (not the
imagenet-samples folder), the photo is preprocessed once by osprey's image
module (osp_preprocess_dump: exact resize to the model's input size, RGB
uint8 NHWC) and the same bytes are fed to LiteRT and to osprey
(osp_run_model). osprey dequantizes the uint8 output; it is mapped back to
quantization steps with the output's scale and zero point and must equal
LiteRT's output within ±1 step per element, with the identical top-5.

LiteRT runs its builtin TFLite kernels (OpResolverType.
BUILTIN_WITHOUT_DEFAULT_DELEGATES): they define TFLite's integer arithmetic,
which osprey reproduces. The interpreter's default XNNPACK delegate uses its
own requantization (float multipliers, its own ADD/pool/softmax rounding)
and differs from the builtin kernels by up to 10 steps on these very models
(measured), so no implementation can be within ±1 of both; its distance is
printed for information only (docs/engine.md, "Quantized models").

usage: tflite_vs_litert.py BUILD_DIR MODELS_DIR IMAGES_DIR
"""
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

build, models, images = sys.argv[1:4]
run_model = os.path.join(build, "tests", "osp_run_model")
dump = os.path.join(build, "tests", "osp_preprocess_dump")
photos = sorted(p for p in glob.glob(os.path.join(images, "*"))
                if os.path.isfile(p) and p.lower().endswith((".jpg", ".jpeg", ".bmp", ".png")))
tfl = sorted(glob.glob(os.path.join(models, "tflite", "*.tflite")))
# OSP_LITERT_PHOTOS=n compares on the first n photos only (the ASan suite
# uses it; the Release suite compares all of them).
if os.environ.get("OSP_LITERT_PHOTOS"):
    photos = photos[:int(os.environ["OSP_LITERT_PHOTOS"])]
if not photos or not tfl:
    print("SKIP: no photos or TFLite models")
    sys.exit(77)

failures = 0
checked = 0
with tempfile.TemporaryDirectory() as tmp:
    for model in tfl:
        it = Interpreter(model_path=model, experimental_op_resolver_type=
                         OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
        xnn = Interpreter(model_path=model)  # default delegate: information
        xnn.allocate_tensors()
        ind = it.get_input_details()[0]
        outd = it.get_output_details()[0]
        _, h, w, c = ind["shape"]
        scale, zp = outd["quantization"]
        worst_model = 0
        worst_xnn = 0
        for photo in photos:
            raw = os.path.join(tmp, "x.u8")
            subprocess.run([dump, "--mode", "exact", "--size", f"{w}x{h}",
                            "--layout", "nhwc", "--dtype", "u8", photo, raw],
                           check=True, stdout=subprocess.DEVNULL)
            x = np.fromfile(raw, dtype=np.uint8).reshape(1, h, w, c)
            it.set_tensor(ind["index"], x)
            it.invoke()
            want = it.get_tensor(outd["index"]).astype(np.int64).ravel()
            xnn.set_tensor(ind["index"], x)
            xnn.invoke()
            want_xnn = xnn.get_tensor(outd["index"]).astype(np.int64).ravel()
            out_dir = os.path.join(tmp, "out")
            os.makedirs(out_dir, exist_ok=True)
            r = subprocess.run([run_model, "--model", model, "--threads", "2",
                                "--input", f"{raw}:u8:1x{h}x{w}x{c}",
                                "--out-dir", out_dir],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL {os.path.basename(model)} {os.path.basename(photo)}: "
                      f"osp_run_model: {r.stderr.strip()}")
                failures += 1
                continue
            got_f = np.load(os.path.join(out_dir, "output_0.npy")).ravel()
            got = np.rint(got_f / scale + zp).astype(np.int64)
            diff = int(np.abs(got - want).max())
            worst_model = max(worst_model, diff)
            worst_xnn = max(worst_xnn, int(np.abs(got - want_xnn).max()))
            # top-5 by score; ties broken by index so equal scores compare
            top_w = sorted(range(len(want)), key=lambda i: (-want[i], i))[:5]
            top_g = sorted(range(len(got)), key=lambda i: (-got[i], i))[:5]
            ok = diff <= 1 and top_w == top_g
            # A tie at the 5th place can legitimately reorder: accept when the
            # sets of scores agree exactly.
            if not ok and diff <= 1 and [want[i] for i in top_w] == [got[i] for i in top_g] \
                    and top_w[:4] == top_g[:4]:
                ok = True
            checked += 1
            if not ok:
                failures += 1
                print(f"FAIL {os.path.basename(model)} {os.path.basename(photo)}: "
                      f"max|diff| {diff} steps, top-5 {top_g} vs LiteRT {top_w}")
        print(f"{os.path.basename(model)}: {len(photos)} photos, max|diff| "
              f"{worst_model} quantization steps (vs the XNNPACK delegate: "
              f"{worst_xnn}, not checked)")

print(f"tflite_vs_litert: {checked} model/photo pairs, {failures} failures")
sys.exit(1 if failures else 0)
