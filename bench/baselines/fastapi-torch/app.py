"""The seed-design baseline: FastAPI + PyTorch image classification.

This is the service our users would otherwise deploy, written the way the
FastAPI and torchvision documentation suggest: a torchvision model in eval
mode, the standard ImageNet preprocessing (Resize(256), CenterCrop(224),
ToTensor, Normalize), torch.inference_mode, softmax + top-k, served by one
uvicorn worker. It exists so that bench/service.sh can drive it and
`osprey serve` with the same load, on the same CPUs, in the same run.

Its HTTP API is the subset of osprey's REST API that the load generator
uses, so one load profile drives both:
  POST /classify   multipart/form-data with one or more `file` parts, or a raw
                   image body; query `top_k` (default 5)
                   -> {"model": ..., "results": [{"predictions":
                       [{"index", "label", "score"}, ...]}], "timings_ms": {...}}
  GET  /health, /ready, /v2/health/ready, /v2/health/live  -> 200 when loaded

Configuration (environment, or the command-line flags of `python3 app.py`):
  BASELINE_MODEL    resnet50 | mobilenet_v2        (default resnet50)
  BASELINE_THREADS  torch intra-op threads          (default 2)
  BASELINE_JIT      1: TorchScript + optimize_for_inference, a tuned
                    variant for reference (default 0: eager, the seed design)
  BASELINE_HOST / BASELINE_PORT                     (default 127.0.0.1:8000)

Design choices (why, not just what):
- Random weights (weights=None): the comparison is the cost per request,
  which does not depend on the weight values of a dense CNN. The 1000
  ImageNet class names come from torchvision's weight metadata, which ships
  with the package (nothing is downloaded).
- OMP_WAIT_POLICY=PASSIVE unless the environment says otherwise (see the
  comment at the import of torch).
- Inference runs on ONE dedicated executor thread with
  torch.set_num_threads(BASELINE_THREADS): the event loop keeps accepting and
  parsing requests while the model runs, and concurrent requests never
  oversubscribe the CPU budget (FastAPI's default for a plain `def` handler
  is a 40-thread pool, which with 2 OpenMP threads each would thrash a
  2-CPU budget). Decoding and preprocessing run on that thread too, as in the
  usual `predict(image_bytes)` helper. No batching: the typical deployment
  does not have it, and osprey's dynamic batcher is part of what we compare.
"""

import argparse
import asyncio
import concurrent.futures
import io
import os
import time

# Must be set before libgomp loads (with torch). libgomp's default spins at
# every barrier; with the event loop as a third thread on a 2-CPU budget the
# spinning team keeps getting preempted, and one ResNet50 request measured
# 0.86 CPU-s and ~1 s instead of 0.13 CPU-s and ~0.12 s passive. Every tuning
# guide says to set it; osprey defaults to passive too. The environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (after the OpenMP setting above)
import torchvision  # noqa: E402
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from PIL import Image, UnidentifiedImageError
from torchvision import transforms

MODELS = {
    "resnet50": (torchvision.models.resnet50,
                 torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
    "mobilenet_v2": (torchvision.models.mobilenet_v2,
                     torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1),
}

# Settings: the environment, overridden by main()'s flags.
CONFIG = {"model": os.environ.get("BASELINE_MODEL", "resnet50"),
          "threads": int(os.environ.get("BASELINE_THREADS", "2")),
          "jit": os.environ.get("BASELINE_JIT", "0") == "1"}

PREPROCESS = transforms.Compose([
    transforms.Resize(256),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(mean=[0.485, 0.456, 0.406],
                         std=[0.229, 0.224, 0.225]),
])

app = FastAPI(title="fastapi-torch baseline")
state = {"model": None, "labels": None, "executor": None}


def load_model(name):
    """Build the torchvision model with random weights, in eval mode."""
    if name not in MODELS:
        raise SystemExit(f"baseline: unknown model {name!r} "
                         f"(choose one of {', '.join(sorted(MODELS))})")
    builder, weights_enum = MODELS[name]
    model = builder(weights=None)
    model.eval()
    if CONFIG["jit"]:
        # The "tuned" variant: TorchScript, frozen, optimize_for_inference
        # (folds batch norm into the convolutions, pre-packs the oneDNN
        # weights). Not the seed design; a reference point for how much of
        # the gap eager mode explains.
        with torch.no_grad():
            model = torch.jit.optimize_for_inference(torch.jit.script(model))
    return model, list(weights_enum.meta["categories"])


def predict(images, top_k):
    """Decode, preprocess, run the model and take top-k per image.

    Runs on the single inference thread (see the module comment)."""
    t0 = time.perf_counter()
    tensors = []
    for data in images:
        try:
            img = Image.open(io.BytesIO(data))
            img = img.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise HTTPException(status_code=415 if isinstance(
                exc, UnidentifiedImageError) else 400,
                detail=f"cannot decode image: {exc}") from exc
        tensors.append(PREPROCESS(img))
    batch = torch.stack(tensors)
    t1 = time.perf_counter()
    with torch.inference_mode():
        probs = torch.softmax(state["model"](batch), dim=1)
        scores, indices = torch.topk(probs, k=top_k, dim=1)
    t2 = time.perf_counter()
    labels = state["labels"]
    results = []
    for row_s, row_i in zip(scores.tolist(), indices.tolist()):
        results.append({"predictions": [
            {"index": i, "label": labels[i], "score": round(s, 6)}
            for s, i in zip(row_s, row_i)]})
    return results, {"decode": round((t1 - t0) * 1e3, 3),
                     "infer": round((t2 - t1) * 1e3, 3)}


@app.exception_handler(HTTPException)
async def error_json(request, exc):
    """Errors as osprey answers them, {"error": "..."}, so one load
    generator classifies both servers' failures alike."""
    return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)


@app.on_event("startup")
def startup():
    torch.set_num_threads(CONFIG["threads"])
    torch.set_num_interop_threads(1)
    state["model"], state["labels"] = load_model(CONFIG["model"])
    state["executor"] = concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="infer")
    # Warm up on the inference thread, so the first request is not slower
    # than the rest (allocator, oneDNN primitive creation).
    def warm():
        with torch.inference_mode():
            state["model"](torch.zeros(1, 3, 224, 224))
        return torch.get_num_threads()
    # What the inference thread itself sees (reported by /health), since
    # OpenMP thread counts are per-thread settings.
    state["infer_threads"] = state["executor"].submit(warm).result()


@app.get("/health")
@app.get("/ready")
@app.get("/v2/health/ready")
@app.get("/v2/health/live")
def health():
    return {"status": "ok", "model": CONFIG["model"], "ready": True,
            "jit": CONFIG["jit"],
            "threads": state.get("infer_threads"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


@app.post("/classify")
async def classify(request: Request, top_k: int = 5):
    if not 1 <= top_k <= len(state["labels"]):
        raise HTTPException(status_code=400, detail="top_k out of range")
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        images = [await f.read() for f in form.getlist("file")
                  if hasattr(f, "read")]
        if not images:
            raise HTTPException(status_code=400,
                                detail="multipart body without a file part")
    else:
        images = [await request.body()]
        if not images[0]:
            raise HTTPException(status_code=400, detail="empty body")
    loop = asyncio.get_running_loop()
    results, timings = await loop.run_in_executor(
        state["executor"], predict, images, top_k)
    return JSONResponse({"model": CONFIG["model"], "results": results,
                         "timings_ms": timings})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=CONFIG["model"], choices=sorted(MODELS))
    ap.add_argument("--threads", type=int, default=CONFIG["threads"])
    ap.add_argument("--jit", action="store_true", default=CONFIG["jit"],
                    help="TorchScript + optimize_for_inference (tuned variant)")
    ap.add_argument("--host", default=os.environ.get("BASELINE_HOST",
                                                     "127.0.0.1"))
    ap.add_argument("--port", type=int,
                    default=int(os.environ.get("BASELINE_PORT", "8000")))
    args = ap.parse_args()
    CONFIG["model"], CONFIG["threads"] = args.model, args.threads
    CONFIG["jit"] = args.jit
    import uvicorn
    uvicorn.run(app, host=args.host, port=args.port, workers=1,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
