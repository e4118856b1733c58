#!/usr/bin/env python3
"""onnx_vs_ort.py — osprey vs ONNX Runtime on the same model and the same bytes.

Driven by onnx_vs_ort.sh. For each model and batch size, makes a fixed input
(seeded standard normal), runs ONNX Runtime (the oracle) and osprey
(tests/tools/osp_run_model) at each requested precision, and checks:
  fp32: max|osprey - ort| <= 1e-4 * max|ort|            (whole output)
  bf16: same top-1 class in every row, and cosine similarity >= 0.999 per row
  auto: the check of the precision the engine chose (--auto-expect P: it
        must have chosen P)
--max-isa ISA runs osprey under that ISA ceiling; --engine-arg passes one more
argument to osp_run_model (e.g. --engine-winograd on, twice); --expect-plan S
fails an fp32 run whose plan (osp_run_model --verbose) does not contain S,
so that a forced path is known to have run.
Every measured number is printed, pass or fail, so regressions in accuracy
show up in the log before they cross a threshold. Exit 0 = all pass, 1 = any
failure, 2 = harness error.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

FP32_REL_TOL = 1e-4   # max abs diff relative to the largest |logit|
BF16_MIN_COSINE = 0.999


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runner", required=True, help="path to osp_run_model")
    p.add_argument("--models", nargs="+", required=True)
    p.add_argument("--batches", nargs="+", type=int, default=[1, 3])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--timeout", type=float, default=600, help="seconds per osprey run")
    p.add_argument("--max-isa", help="osprey's ISA ceiling (osp_run_model --max-isa)")
    p.add_argument("--auto-expect", help="the precision 'auto' must resolve to")
    p.add_argument("--engine-arg", action="append", default=[],
                   help="one more argument for osp_run_model (repeatable)")
    p.add_argument("--expect-plan", help="text every fp32 plan must contain")
    return p.parse_args()


def ort_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=so, providers=["CPUExecutionProvider"])


def input_shape(meta, batch):
    shape = []
    for k, d in enumerate(meta.shape):
        if k == 0:
            shape.append(batch)
        elif isinstance(d, int) and d > 0:
            shape.append(d)
        else:
            raise SystemExit(f"harness: input {meta.name} has dynamic dim {k}")
    return shape


def run_osprey(args, model, inp_path, precision, workdir):
    outdir = os.path.join(workdir, f"out_{precision}")
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):
        os.unlink(os.path.join(outdir, f))
    cmd = [args.runner, "--model", model, "--precision", precision,
           "--threads", str(args.threads), "--input", inp_path, "--out-dir", outdir]
    if args.max_isa:
        cmd += ["--max-isa", args.max_isa]
    cmd += args.engine_arg
    if args.expect_plan:
        cmd += ["--verbose"]
    if os.environ.get("OSPREY_CACHE_DIR"):  # the engine's measured choices
        cmd += ["--cache-dir", os.environ["OSPREY_CACHE_DIR"]]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return None, None, f"timed out after {args.timeout:.0f} s", 0, ""
    dt = time.monotonic() - t0
    if r.returncode != 0:
        msg = (r.stderr.strip() or r.stdout.strip() or f"exit {r.returncode}").splitlines()
        return None, None, f"osp_run_model exit {r.returncode}: " + " | ".join(msg[-3:]), dt, ""
    used = None
    for line in r.stdout.splitlines():
        if line.startswith("precision="):
            used = line.split("=", 1)[1]
    out = np.load(os.path.join(outdir, "output_0.npy"))
    return out, used, None, dt, r.stderr


def cosine_rows(a, b):
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-300)


def main():
    args = parse_args()
    failures = []
    with tempfile.TemporaryDirectory(prefix="onnx_vs_ort.") as work:
        for model in args.models:
            name = os.path.basename(model)
            t0 = time.monotonic()
            sess = ort_session(model, args.threads)
            meta = sess.get_inputs()[0]
            print(f"== {name}: input {meta.name} {meta.shape}, ORT session {time.monotonic() - t0:.1f} s", flush=True)
            for batch in args.batches:
                if isinstance(meta.shape[0], int) and meta.shape[0] > 0 and meta.shape[0] != batch:
                    print(f"skip {name} batch={batch}: the model's batch is fixed at {meta.shape[0]}", flush=True)
                    continue
                rng = np.random.default_rng(20240 + batch)
                x = rng.standard_normal(input_shape(meta, batch)).astype(np.float32)
                inp = os.path.join(work, f"in_b{batch}.npy")
                np.save(inp, x)
                ref = sess.run(None, {meta.name: x})[0].astype(np.float32)
                scale = float(np.abs(ref).max())
                srt = np.sort(ref.reshape(batch, -1), axis=1)
                margin = float((srt[:, -1] - srt[:, -2]).min()) / max(scale, 1e-30)
                ref_top1 = ref.reshape(batch, -1).argmax(1)
                for prec in args.precisions:
                    tag = f"{name} batch={batch} {prec}"
                    out, used, err, dt, plan = run_osprey(args, model, inp, prec, work)
                    if err:
                        print(f"FAIL {tag}: {err}", flush=True)
                        failures.append(tag)
                        continue
                    if out.shape != ref.shape:
                        print(f"FAIL {tag}: output shape {out.shape}, ORT {ref.shape}", flush=True)
                        failures.append(tag)
                        continue
                    out = out.astype(np.float32)
                    maxdiff = float(np.abs(out - ref).max())
                    rel = maxdiff / max(scale, 1e-30)
                    cos = cosine_rows(out, ref)
                    top1 = out.reshape(batch, -1).argmax(1)
                    same = int((top1 == ref_top1).sum())
                    info = (f"max|diff|={maxdiff:.3e} max|logit|={scale:.3e} rel={rel:.2e} "
                            f"min_cos={cos.min():.6f} top1 {same}/{batch} "
                            f"(ORT top1-top2 margin {margin:.1e} rel) used={used} {dt:.1f}s")
                    checked = used if prec == "auto" else prec
                    if not np.isfinite(out).all():
                        ok, why = False, "non-finite values in output"
                    elif prec == "auto" and args.auto_expect and used != args.auto_expect:
                        ok, why = False, f"auto chose {used}, expected {args.auto_expect}"
                    elif checked == "fp32" and args.expect_plan and args.expect_plan not in plan:
                        ok, why = False, f"the plan has no {args.expect_plan} step"
                    elif checked == "fp32":
                        ok = rel <= FP32_REL_TOL
                        why = f"rel {rel:.2e} > {FP32_REL_TOL:.0e}"
                        if args.expect_plan:
                            info += f" [{plan.count(args.expect_plan)} {args.expect_plan} steps]"
                    else:
                        ok = same == batch and cos.min() >= BF16_MIN_COSINE
                        why = f"top-1 {same}/{batch} or cosine {cos.min():.6f} < {BF16_MIN_COSINE}"
                    if prec != "auto" and used and used != prec:
                        info += f" [note: requested {prec}, engine used {used}]"
                    print(f"{'ok  ' if ok else 'FAIL'} {tag}: {info}" + ("" if ok else f" -- {why}"), flush=True)
                    if not ok:
                        failures.append(tag)
    if failures:
        print(f"onnx_vs_ort: {len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("onnx_vs_ort: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
