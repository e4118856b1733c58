"""ImageNet top-1/top-5 of the quantized MobileNetV2 models on the 100
photos of IMAGES/imagenet-samples, through `osprey classify --json`.

Ground truth. A file is named <wnid>_<class name>.JPEG. The ImageNet class
index is the wnid's rank among the 1000 sorted ILSVRC-2012 wnids, but only
100 wnids are in the folder, so the rank cannot be computed from the files
alone. The 1001-line label file (line 0 "background") lists the classes in
that same sorted-wnid order, so the index is found by name instead: the
class name of the file (underscores → spaces) must equal one of the
comma-separated synonyms of a label line. A few ImageNet names occur twice
(e.g. "crane" the bird and the machine, "maillot"); because both lists are
in the same order, each file takes the first matching line *after* the
previous file's line (files sorted by wnid). Every file must match, and the
resulting indices must be strictly increasing — else the script fails
rather than guess. (The folder holds every tenth class, so the match is
also checked against index = 10·k + 1 for the k-th file, a consistency
check, not the rule.)

usage: imagenet_accuracy.py OSPREY MODELS_DIR IMAGES_DIR [CONFIG_DIR]
Asserts top-1 >= 65% and top-5 >= 85% for each model.
"""
import json
import os
import subprocess
import sys

# the shared helper lives in lib/ (tests/CMakeLists.txt says which files do)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from imagenet_truth import imagenet_truth  # noqa: E402

osprey, models, images = sys.argv[1:4]
config_dir = sys.argv[4] if len(sys.argv) > 4 else ""
samples = os.path.join(images, "imagenet-samples")
labels_path = os.path.join(models, "tflite", "imagenet_labels.txt")
MODELS = ["mobilenet_v2_1.0_224_quant", "tf2_mobilenet_v2_1.0_224_ptq"]
TOP1_MIN, TOP5_MIN = 0.65, 0.85

files, truth = imagenet_truth(samples, labels_path)

failures = 0
for m in MODELS:
    model = os.path.join(models, "tflite", m + ".tflite")
    if not os.path.isfile(model):
        print(f"SKIP {m}: {model} not found")
        continue
    cmd = [osprey, "classify", "--model", model, "--labels", labels_path,
           "--json", "--top-k", "5"]
    cfg = os.path.join(config_dir, m + ".json") if config_dir else ""
    if cfg and os.path.isfile(cfg):
        cmd += ["--config", cfg]
    r = subprocess.run(cmd + files, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL {m}: osprey classify exit {r.returncode}: "
              f"{r.stderr.strip()[:500]}")
        failures += 1
        continue
    top1 = top5 = n = 0
    for line in r.stdout.splitlines():
        o = json.loads(line)
        want = truth[o["image"]]
        got = [p["index"] for p in o["predictions"]]
        n += 1
        top1 += got[0] == want
        top5 += want in got
    if n != len(files):
        print(f"FAIL {m}: {n} results for {len(files)} photos")
        failures += 1
        continue
    a1, a5 = top1 / n, top5 / n
    ok = a1 >= TOP1_MIN and a5 >= TOP5_MIN
    print(f"{'ok  ' if ok else 'FAIL'} {m}: top-1 {a1:.0%} ({top1}/{n}), "
          f"top-5 {a5:.0%} ({top5}/{n}) [need {TOP1_MIN:.0%} / {TOP5_MIN:.0%}]")
    failures += not ok
sys.exit(1 if failures else 0)
