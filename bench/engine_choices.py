#!/usr/bin/env python3
"""engine_choices.py — is the engine's measured default as fast as the best
fixed setting, on this machine? (issue: "every precision's default within 5%
of the best of the candidate settings for that model on that machine").

For each model and precision it runs `osprey bench` with the default (the
engine measures its layout / Winograd / int8-kernel candidates at load,
src/engine/tune.c; a fresh cache directory per round, so every round
measures anew) and with every candidate fixed by flags, interleaved in
rounds so that drift on a shared machine hits all alike, and reports each
setting's best round in img/s, the default's ratio to the best fixed
setting, and which candidate the default chose. With --ort it adds ONNX
Runtime fp32 on the same model, batch and threads (`osprey bench
--compare-ort`, run once per model), and with --ceiling the oneDNN
convolution-only ceiling of ResNet50 (build/bench/bench_conv_algos).

usage: bench/engine_choices.py [--osprey build/osprey] [--models DIR]
           [--batch 8] [--threads 2] [--seconds 4] [--rounds 2]
           [--only resnet50,mobilenet_v2,...] [--ort] [--ceiling]
           [--out bench/results/<time>-choices.json]
Prints a Markdown table; writes the JSON record (with the CPU model)."""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from service import cpu_model  # noqa: E402  (bench/service.py, stdlib only)

LAYOUTS = ["blocked", "any"]


def candidates(precision, quantized):
    """(name, flags) of every fixed setting the engine chooses among."""
    out = []
    for lay in LAYOUTS:
        base = ["--engine-conv-layout", lay]
        if precision == "fp32" and not quantized:
            for w in ("on", "off"):
                out.append((lay + ("+winograd" if w == "on" else ""),
                            base + ["--engine-winograd", w]))
        elif precision == "int8":
            out.append((lay + "+own-int8",
                        base + ["--engine-q8-dw", "on", "--engine-q8-pw", "on"]))
            out.append((lay + "+onednn-int8",
                        base + ["--engine-q8-dw", "off", "--engine-q8-pw", "off"]))
        else:
            out.append((lay, base))
    return out


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = line.split(":", 1)[1].split()
                    return [x for x in ("avx512f", "avx512_vnni", "avx512_bf16",
                                        "amx_bf16", "amx_int8") if x in fl]
    except OSError:
        pass
    return []


def bench(a, model, precision, flags, cache, extra=()):
    cmd = [a.osprey, "bench", "--model", model, "--batch", str(a.batch),
           "--threads", str(a.threads), "--precision", precision,
           "--seconds", str(a.seconds), "--json", "--cache-dir", cache]
    cmd += list(flags) + list(extra)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), p.stderr[-2000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--osprey", default=os.path.join(ROOT, "build", "osprey"))
    ap.add_argument("--models", default=None)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--only", default="")
    ap.add_argument("--ort", action="store_true")
    ap.add_argument("--ceiling", action="store_true")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    models = a.models or os.environ.get("OSPREY_MODELS") or os.path.join(
        ROOT, "..", "shared", "models")
    calib = os.path.join(ROOT, "..", "shared", "images", "imagenet-samples")
    onnx = lambda n: os.path.join(models, "onnx", n + ".onnx")
    tfl = lambda n: os.path.join(models, "tflite", n + ".tflite")
    # (label, path, precision, quantized model, extra bench flags)
    cases = [
        ("resnet50", onnx("resnet50"), "fp32", False, []),
        ("resnet50", onnx("resnet50"), "bf16", False, []),
        ("resnet50", onnx("resnet50"), "int8", False,
         ["--calibration", calib, "--calibration-count", "16"]),
        ("mobilenet_v2", onnx("mobilenet_v2"), "fp32", False, []),
        ("mobilenet_v2", onnx("mobilenet_v2"), "bf16", False, []),
        ("tf2_mobilenet_v2_int8", tfl("tf2_mobilenet_v2_1.0_224_ptq"), "int8", True, []),
    ]
    only = set(x for x in a.only.split(",") if x)
    cases = [c for c in cases if (not only or c[0] in only) and os.path.exists(c[1])]
    if not cases:
        raise SystemExit("no models found under %s" % models)

    results = []
    for label, path, prec, quant, extra in cases:
        cands = candidates(prec, quant)
        best = {"default": 0.0}
        best.update({n: 0.0 for n, _ in cands})
        chose = []
        for r in range(a.rounds):
            with tempfile.TemporaryDirectory(prefix="osp-choices-") as cache:
                j = bench(a, path, prec, [], cache, extra)
                best["default"] = max(best["default"], j["img_per_s"])
                chose.append(j.get("choices", ""))
            for name, flags in cands:
                j = bench(a, path, prec, flags, "off", extra)
                best[name] = max(best[name], j["img_per_s"])
            print("  %s %s round %d: %s" % (label, prec, r + 1,
                  ", ".join("%s %.1f" % kv for kv in best.items())), file=sys.stderr)
        top = max(best[n] for n, _ in cands)
        top_name = [n for n, _ in cands if best[n] == top][0]
        results.append({
            "model": label, "precision": prec, "img_per_s": best,
            "best_fixed": top_name, "default_vs_best": best["default"] / top,
            "default_chose": [c.split(":")[0].replace("conv layout ", "") for c in chose],
            "choices_notes": chose})

    ort = {}
    if a.ort:
        for label, path, prec, quant, extra in cases:
            if quant or label in ort:
                continue
            with tempfile.TemporaryDirectory(prefix="osp-choices-") as cache:
                j = bench(a, path, "fp32", [], cache, ["--compare-ort"])
            ort[label] = j.get("ort_img_per_s") or j.get("ort", {}).get("img_per_s")
    ceiling = None
    if a.ceiling:
        probe = os.path.join(os.path.dirname(a.osprey), "bench", "bench_conv_algos")
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
        p = subprocess.run([probe, "--batch", str(a.batch), "--json"],
                           capture_output=True, text=True, env=env, timeout=1800)
        if p.returncode == 0:
            ceiling = json.loads(p.stdout.strip().splitlines()[-1])

    print("\nCPU: %s (%s); batch %d, %d threads, best of %d rounds of %gs\n" % (
        cpu_model(), " ".join(cpu_flags()) or "no AVX-512", a.batch, a.threads,
        a.rounds, a.seconds))
    print("| model | precision | default img/s | chose | best fixed | default ÷ best | others |")
    print("|---|---|---:|---|---|---:|---|")
    for r in results:
        others = ", ".join("%s %.1f" % (n, v) for n, v in r["img_per_s"].items()
                           if n != "default")
        print("| %s | %s | %.1f | %s | %s | %.3f | %s |" % (
            r["model"], r["precision"], r["img_per_s"]["default"],
            "/".join(sorted(set(r["default_chose"]))), r["best_fixed"],
            r["default_vs_best"], others))
    if ort:
        print("\nONNX Runtime fp32 (img/s): " + ", ".join(
            "%s %.1f" % kv for kv in ort.items() if kv[1]))
        for r in results:
            o = ort.get(r["model"])
            if o:
                r["vs_ort_fp32"] = r["img_per_s"]["default"] / o
                print("  %s %s default ÷ ORT fp32: %.2f" % (r["model"], r["precision"],
                                                         r["vs_ort_fp32"]))
    if ceiling:
        print("\noneDNN conv-only ceiling, ResNet50 (img/s): " + ", ".join(
            "%s %.1f" % kv for kv in ceiling["img_per_s"].items()))
        for r in results:
            c = ceiling["img_per_s"].get(r["precision"])
            if r["model"] == "resnet50" and c:
                r["vs_conv_ceiling"] = r["img_per_s"]["default"] / c
                print("  resnet50 %s default ÷ ceiling: %.2f" % (r["precision"],
                                                                r["vs_conv_ceiling"]))
    rec = {"kind": "engine-choices", "cpu": cpu_model(), "cpu_flags": cpu_flags(),
           "batch": a.batch, "threads": a.threads, "rounds": a.rounds,
           "seconds": a.seconds, "results": results, "ort_fp32": ort,
           "conv_ceiling": ceiling,
           "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip()}
    out = a.out or os.path.join(HERE, "results", datetime.datetime.utcnow().strftime(
        "%Y-%m-%dT%H%M%SZ") + "-choices.json")
    with open(out, "w") as f:
        json.dump(rec, f, indent=1)
    print("\nwrote " + out)


if __name__ == "__main__":
    main()
