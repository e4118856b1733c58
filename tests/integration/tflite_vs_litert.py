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

Three osprey paths run; the first two are held to the ±1 bound above:
  - the default path: depthwise and 1x1 convolutions on osprey's own
    exact int8 kernels (q8_dwconv.c, q8_pwconv.c), the other convolutions
    on oneDNN int8 primitives that only accumulate (s32 destination), then
    osprey's exact fixed-point requantization (dnnl_q8conv.c); for uint8
    models (oneDNN int8 cannot take their weight zero points) the
    fp32-carrier convolutions (q8_f32conv.c). Its --verbose summary must
    show it engaged (osprey int8 ops, oneDNN int8 ops all with the exact
    requantization, or fp32-carrier ops).
  - the exact path without oneDNN int8 (--engine-int8-dnnl off:
    fp32-carrier convolutions where their bound holds, else the integer
    reference kernels, plus exact lookup tables); on the first photo of
    each model it must also be bit-identical to the pure integer reference
    (--engine-fcq off as well), and the fp32-carrier path must have engaged.
  - oneDNN's own float requantization (--engine-int8-requant onednn, the
    older fast path), where it engages: fp32's 24-bit significands flip
    ~1e-5 of each layer's outputs by one step, which compounds through the
    network (docs/engine.md, "int8 on oneDNN"). Its distance is printed;
    it must keep the identical top-1 and stay within FLOAT_MAX_STEPS.
Then the first BATCH photos run as one batch (batch lanes, tiles across
images): the default path must equal the integer reference bit for bit.

usage: tflite_vs_litert.py BUILD_DIR MODELS_DIR IMAGES_DIR [OSP_RUN_MODEL_ARGS...]
(e.g. --max-isa avx2: every path under that ceiling)
"""
import re
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

build, models, images = sys.argv[1:4]
extra = sys.argv[4:]  # for every osp_run_model run, e.g. an ISA ceiling
# the engine's measured choices are made once per model and kept there
if os.environ.get("OSPREY_CACHE_DIR"):
    extra += ["--cache-dir", os.environ["OSPREY_CACHE_DIR"]]
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

FLOAT_MAX_STEPS = 16  # measured max 13 on the 13 photos (docs/engine.md)
# Photos per batch in the batch check (the reference kernels are slow).
BATCH = int(os.environ.get("OSP_LITERT_BATCH", "8"))

failures = 0
checked = 0
# The paths, as osp_run_model's engine tuning flags (src/cli/tuning.c).
# The default path is the engine's own, its choices measured on this machine
# (src/engine/tune.c). The others name a path and fix the measured switches
# too: which they pick is not what they check, and measuring each of them
# per model and batch would multiply the test's time (each candidate's
# exactness is checked by the default run and by unit/test_dnnl_qconv).
default_path = []
fixed = ["--engine-conv-layout", "any", "--engine-q8-dw", "on",
         "--engine-q8-pw", "on"]
exact_path = ["--engine-int8-dnnl", "off"] + fixed
ref_path = ["--engine-int8-dnnl", "off", "--engine-fcq", "off"] + fixed
float_path = ["--engine-int8-requant", "onednn"] + fixed


def run_osprey(model, raw, h, w, c, out_dir, path, verbose=False, batch=1):
    os.makedirs(out_dir, exist_ok=True)
    args = [run_model, "--model", model, "--threads", "2",
            "--input", f"{raw}:u8:{batch}x{h}x{w}x{c}", "--out-dir", out_dir]
    args += path + extra
    if verbose:
        args.append("--verbose")
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()
    return np.load(os.path.join(out_dir, "output_0.npy")).ravel(), r.stderr


def top5(v):
    return sorted(range(len(v)), key=lambda i: (-v[i], i))[:5]


def within_one(got, want):
    """max |diff| in steps, and whether got meets the bound: ±1 step and the
    identical top-5 (ties broken by index; a tie at the 5th place may
    reorder when the scores agree exactly)."""
    diff = int(np.abs(got - want).max())
    tg, tw = top5(got), top5(want)
    ok = diff <= 1 and (tg == tw or ([want[i] for i in tw] == [got[i] for i in tg]
                                     and tw[:4] == tg[:4]))
    return diff, ok, tg, tw


with tempfile.TemporaryDirectory() as tmp:
    for model in tfl:
        name = os.path.basename(model)
        it = Interpreter(model_path=model, experimental_op_resolver_type=
                         OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
        xnn = Interpreter(model_path=model)  # default delegate: information
        xnn.allocate_tensors()
        ind = it.get_input_details()[0]
        outd = it.get_output_details()[0]
        _, h, w, c = ind["shape"]
        scale, zp = outd["quantization"]
        worst = {"default": 0, "exact": 0, "float": 0}
        worst_xnn = 0
        float_top5_misses = 0
        default_summary = None  # --verbose "int8 path" of the default path
        fcq_used = None   # fp32-carrier ops in the exact path
        float_used = None  # oneDNN int8 ops with the float requantization
        batch_x = []  # the preprocessed photos, for the batch check below
        for photo in photos:
            raw = os.path.join(tmp, "x.u8")
            subprocess.run([dump, "--mode", "exact", "--size", f"{w}x{h}",
                            "--layout", "nhwc", "--dtype", "u8", photo, raw],
                           check=True, stdout=subprocess.DEVNULL)
            x = np.fromfile(raw, dtype=np.uint8).reshape(1, h, w, c)
            batch_x.append(x)
            it.set_tensor(ind["index"], x)
            it.invoke()
            want = it.get_tensor(outd["index"]).astype(np.int64).ravel()
            xnn.set_tensor(ind["index"], x)
            xnn.invoke()
            want_xnn = xnn.get_tensor(outd["index"]).astype(np.int64).ravel()
            out_dir = os.path.join(tmp, "out")
            pname = os.path.basename(photo)

            def steps_of(f):
                return np.rint(f / scale + zp).astype(np.int64)

            # 1. the default path
            got_f, msg = run_osprey(model, raw, h, w, c, out_dir, default_path,
                                    verbose=default_summary is None)
            if got_f is None:
                print(f"FAIL {name} {pname}: osp_run_model (default path): {msg}")
                failures += 1
                continue
            if default_summary is None:
                m = re.search(r"int8 path: [^\n]*", msg)
                default_summary = m.group(0) if m else ""
                q = re.search(r"oneDNN int8 (\d+) ops \(.*exact requant (\d+)\)",
                              default_summary)
                f = re.search(r"exact fp32-carrier (\d+) ops", default_summary)
                o = re.search(r"osprey int8 (\d+) ops", default_summary)
                n_q8, n_rq = (int(q.group(1)), int(q.group(2))) if q else (0, 0)
                n_fcq = int(f.group(1)) if f else 0
                n_own = int(o.group(1)) if o else 0
                if n_q8 != n_rq or n_q8 + n_fcq + n_own == 0:
                    failures += 1
                    print(f"FAIL {name}: the default path must run its convs on "
                          f"oneDNN int8 with the exact requantization, on "
                          f"osprey's int8 kernels or on fp32-carrier convs: "
                          f"{default_summary}")
            got = steps_of(got_f)
            diff, ok, tg, tw = within_one(got, want)
            worst["default"] = max(worst["default"], diff)
            worst_xnn = max(worst_xnn, int(np.abs(got - want_xnn).max()))
            checked += 1
            if not ok:
                failures += 1
                print(f"FAIL {name} {pname} (default path): max|diff| {diff} "
                      f"steps, top-5 {tg} vs LiteRT {tw}")

            # 2. the exact path without oneDNN int8
            ex_f, msg = run_osprey(model, raw, h, w, c, out_dir, exact_path,
                                   verbose=fcq_used is None)
            if ex_f is None:
                print(f"FAIL {name} {pname}: osp_run_model (exact path): {msg}")
                failures += 1
                continue
            if fcq_used is None:
                m = re.search(r"exact fp32-carrier (\d+) ops", msg)
                fcq_used = int(m.group(1)) if m else 0
                ref_f, rmsg = run_osprey(model, raw, h, w, c,
                                         os.path.join(tmp, "ref"), ref_path)
                if fcq_used == 0 or ref_f is None or \
                        not np.array_equal(ref_f, ex_f):
                    failures += 1
                    print(f"FAIL {name}: exact path with {fcq_used} "
                          f"fp32-carrier ops vs the integer reference: " +
                          (rmsg if ref_f is None else
                           f"max|diff| {float(np.abs(ref_f - ex_f).max())}"))
            diff, ok, tg, tw = within_one(steps_of(ex_f), want)
            worst["exact"] = max(worst["exact"], diff)
            if not ok:
                failures += 1
                print(f"FAIL {name} {pname} (exact path): max|diff| {diff} "
                      f"steps, top-5 {tg} vs LiteRT {tw}")

            # 3. oneDNN's float requantization, where it engages
            if float_used is None or float_used > 0:
                fl_f, msg = run_osprey(model, raw, h, w, c, out_dir, float_path,
                                       verbose=float_used is None)
                if fl_f is None:
                    print(f"FAIL {name} {pname}: osp_run_model (oneDNN float "
                          f"requant): {msg}")
                    failures += 1
                    continue
                if float_used is None:
                    m = re.search(r"oneDNN int8 (\d+) ops", msg)
                    float_used = int(m.group(1)) if m else 0
                if float_used > 0:
                    diff, ok, tg, tw = within_one(steps_of(fl_f), want)
                    worst["float"] = max(worst["float"], diff)
                    float_top5_misses += tg != tw
                    if diff > FLOAT_MAX_STEPS or tg[0] != tw[0]:
                        failures += 1
                        print(f"FAIL {name} {pname} (oneDNN float requant): "
                              f"max|diff| {diff} steps, top-5 {tg} vs LiteRT {tw}")
        # 4. the photos as one batch (batch lanes and tiles across images):
        # the default path must equal the integer reference bit for bit.
        nb = min(len(batch_x), BATCH)
        if nb >= 2:
            raw = os.path.join(tmp, "batch.u8")
            np.concatenate(batch_x[:nb]).tofile(raw)
            args = (model, raw, h, w, c)
            got_b, msg = run_osprey(*args, os.path.join(tmp, "b"), default_path,
                                    batch=nb)
            ref_b, rmsg = run_osprey(*args, os.path.join(tmp, "br"), ref_path,
                                     batch=nb)
            if got_b is None or ref_b is None or not np.array_equal(got_b, ref_b):
                failures += 1
                print(f"FAIL {name}: batch of {nb}, default path vs the integer "
                      f"reference: " + (msg if got_b is None else rmsg if ref_b
                      is None else f"max|diff| {float(np.abs(got_b - ref_b).max())}"))
            else:
                print(f"  batch of {nb}: default path bit-identical to the "
                      f"integer reference")
        print(f"{name}: {len(photos)} photos; default path max|diff| "
              f"{worst['default']} quantization steps ({default_summary}); "
              f"exact path without oneDNN int8 ({fcq_used} fp32-carrier convs) "
              f"max|diff| {worst['exact']}; the XNNPACK delegate is "
              f"{worst_xnn} steps from the default path (not checked)")
        if float_used:
            print(f"  oneDNN float requantization (--engine-int8-requant "
                  f"onednn, {float_used} ops): max|diff| {worst['float']} steps, "
                  f"top-5 differs on {float_top5_misses} photo(s), top-1 "
                  f"identical on all (not held to ±1)")

print(f"tflite_vs_litert: {checked} model/photo pairs, {failures} failures")
sys.exit(1 if failures else 0)
