"""The ImageNet class index of each photo in imagenet-samples, shared by
imagenet_accuracy.py and ptq_accuracy.py; the rule is explained at the top
of ../imagenet_accuracy.py (class name matched against the 1001-line label
file, in sorted-wnid order)."""
import glob
import os
import sys


def imagenet_truth(samples, labels_path):
    """(sorted photo paths, {path: label line index}); exits 77 (skip) when
    the photos or labels are missing, 1 when a name cannot be matched.
    OSP_ACCURACY_STRIDE=k keeps every k-th photo only (the ASan suite: the
    same code paths in a quarter of the time, thresholds unchanged)."""
    files = sorted(glob.glob(os.path.join(samples, "*.JPEG")))
    if not files or not os.path.isfile(labels_path):
        print(f"SKIP: no photos in {samples} or no {labels_path}")
        sys.exit(77)
    with open(labels_path, encoding="utf-8") as f:
        labels = [line.rstrip("\n") for line in f]
    syn = [[s.strip().lower() for s in line.split(",")] for line in labels]

    truth = {}
    prev = 0  # line 0 is "background"
    for k, path in enumerate(files):
        base = os.path.basename(path)[:-len(".JPEG")]
        wnid, _, name = base.partition("_")
        name = name.replace("_", " ").lower()
        idx = next((i for i in range(prev + 1, len(syn)) if name in syn[i]), None)
        if idx is None:
            print(f"FAIL: {base}: no label line after {prev} names '{name}'")
            sys.exit(1)
        if idx != 10 * k + 1:
            print(f"note: {base} -> line {idx} (every-tenth-class rule says "
                  f"{10 * k + 1})")
        truth[path] = idx
        prev = idx
    stride = int(os.environ.get("OSP_ACCURACY_STRIDE", "1") or 1)
    files = files[::max(stride, 1)]
    if stride > 1:
        print(f"note: every {stride}th photo only ({len(files)} photos)")
    return files, truth
