"""osprey's post-training int8 quantization on real trained weights.

`--precision int8` quantizes float (ONNX) models from calibration images
(calibrate.c, pass_quantize.c). The ONNX models on these machines have
random weights, so accuracy is measured on the trained TFLite MobileNetV2s
instead: tests/tools/osp_ptq_classify dequantizes each to a float model
(what --precision fp32 does) and quantizes that again with osprey's
calibration, from the photos at the top of IMAGES (not the evaluation set),
then classifies the 100 ImageNet samples with both. Asserts, per model:
int8 top-1 within 5 points of the float model's, top-1 >= 65% and top-5 >=
85% (issue 3's bounds for quantized models), and that the two agree on the
top-1 of at least 90% of the photos.

usage: ptq_accuracy.py TOOL MODELS_DIR IMAGES_DIR
"""
import json
import os
import subprocess
import sys

# the shared helper lives in lib/ (tests/CMakeLists.txt says which files do)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from imagenet_truth import imagenet_truth  # noqa: E402

tool, models, images = sys.argv[1:4]
labels_path = os.path.join(models, "tflite", "imagenet_labels.txt")
files, truth = imagenet_truth(os.path.join(images, "imagenet-samples"),
                              labels_path)
MODELS = ["tf2_mobilenet_v2_1.0_224_ptq", "mobilenet_v2_1.0_224_quant"]
failures = 0
for m in MODELS:
    model = os.path.join(models, "tflite", m + ".tflite")
    if not os.path.isfile(model):
        print(f"SKIP {m}: {model} not found")
        continue
    r = subprocess.run([tool, model, images, "16"] + files,
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL {m}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
        failures += 1
        continue
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    if len(rows) != len(files):
        print(f"FAIL {m}: {len(rows)} results for {len(files)} photos")
        failures += 1
        continue
    n = len(rows)
    acc = {}
    for k in ("fp32", "int8"):
        t1 = sum(o[k][0] == truth[o["image"]] for o in rows) / n
        t5 = sum(truth[o["image"]] in o[k] for o in rows) / n
        acc[k] = (t1, t5)
    agree = sum(o["fp32"][0] == o["int8"][0] for o in rows) / n
    (f1, f5), (q1, q5) = acc["fp32"], acc["int8"]
    ok = q1 >= f1 - 0.05 and q1 >= 0.65 and q5 >= 0.85 and agree >= 0.90
    print(f"{'ok  ' if ok else 'FAIL'} {m}, dequantized then quantized by "
          f"osprey ({n} photos): float top-1 {f1:.0%} top-5 {f5:.0%}; osprey "
          f"int8 top-1 {q1:.0%} top-5 {q5:.0%}; same top-1 on {agree:.0%}")
    failures += not ok
sys.exit(1 if failures else 0)
