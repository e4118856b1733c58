"""locustfile.py — Locust load test for osprey serve (or the dispatcher, or
any server with the same API): the same endpoints, wire formats and image
corpus as `osprey load` (src/load/corpus.c), driven by Locust users under a
step load shape.

    locust -f load-testing/locust/locustfile.py --host http://127.0.0.1:8080
    locust -f load-testing/locust/locustfile.py --host http://127.0.0.1:8080 \
        --headless --csv /tmp/run      # no web UI; stats as CSV

Settings (environment variables):
  OSPREY_IMAGES   directory (its JPEG/PNG/WebP/BMP files) or one file
                  (default: scripts/samples of this checkout)
  OSPREY_TARGET   multipart (default) | raw | v2-json | v2-binary
  OSPREY_MODEL    model name: POST /v1/models/NAME/classify instead of
                  /classify; required for the v2 targets (/v2/models/NAME/infer)
  OSPREY_ORDER    rr (default: round-robin over the images) | random
  OSPREY_THINK_MS pause of each user between requests (default 0)
  OSPREY_STEPS    step load shape "USERS:DURATION,..." (default
                  "5:30s,10:30s,20:30s"); durations take s/m suffixes;
                  OSPREY_STEPS=off hands control back to Locust's own
                  --users/--spawn-rate/--run-time.
  OSPREY_SPAWN_RATE users started per second at each step (default: all at
                  once, i.e. the step's user count)

Locust is closed-loop (each user waits for its answer), so under overload it
sends less and its latencies omit the wait users did not get to do
("coordinated omission"); `osprey load` is the open-loop tool for latency
SLOs. Locust is here for its UI, its Python extensibility and as an
independent cross-check (docs/load.md).
"""
import base64
import itertools
import json
import os
import random
import struct
import threading

from locust import FastHttpUser, LoadTestShape, constant, task

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGES = os.environ.get("OSPREY_IMAGES") or os.path.join(HERE, "..", "..", "scripts", "samples")
TARGET = os.environ.get("OSPREY_TARGET", "multipart")
MODEL = os.environ.get("OSPREY_MODEL") or None
ORDER = os.environ.get("OSPREY_ORDER", "rr")
THINK_MS = float(os.environ.get("OSPREY_THINK_MS", "0"))
STEPS = os.environ.get("OSPREY_STEPS", "5:30s,10:30s,20:30s")
SPAWN_RATE = os.environ.get("OSPREY_SPAWN_RATE")
BOUNDARY = "osprey-locust-7d1f2c9a4b"

if TARGET not in ("multipart", "raw", "v2-json", "v2-binary"):
    raise SystemExit(f"OSPREY_TARGET must be multipart, raw, v2-json or v2-binary, not {TARGET!r}")
if TARGET.startswith("v2") and not MODEL:
    raise SystemExit(f"OSPREY_TARGET={TARGET} needs OSPREY_MODEL (the path is /v2/models/NAME/infer)")
if ORDER not in ("rr", "random"):
    raise SystemExit(f"OSPREY_ORDER must be rr or random, not {ORDER!r}")


def media_type(b):
    """The image's media type from its first bytes (as corpus.c does)."""
    if b[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if b[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return "image/webp"
    if b[:2] == b"BM":
        return "image/bmp"
    return "application/octet-stream"


def parse_duration(s):
    """'30s', '2m', '1.5' (seconds) → seconds; strict like osprey load."""
    for suffix, mul in (("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600)):
        if s.endswith(suffix):
            s, m = s[: -len(suffix)], mul
            break
    else:
        m = 1
    v = float(s) * m
    if not v > 0:
        raise ValueError
    return v


def load_requests():
    """(path, body, headers) per image, built once: no per-request encoding."""
    if os.path.isdir(IMAGES):
        # Like osprey load: a directory's images only (a README is skipped).
        files = sorted(os.path.join(IMAGES, f) for f in os.listdir(IMAGES)
                       if not f.startswith(".") and os.path.isfile(os.path.join(IMAGES, f)))
        files = [f for f in files
                 if media_type(open(f, "rb").read(16)) != "application/octet-stream"]
    else:
        files = [IMAGES]
    if not files:
        raise SystemExit(f"OSPREY_IMAGES={IMAGES}: no JPEG, PNG, WebP or BMP files")
    if TARGET.startswith("v2"):
        path = f"/v2/models/{MODEL}/infer"
    else:
        path = f"/v1/models/{MODEL}/classify" if MODEL else "/classify"
    reqs = []
    for f in files:
        img = open(f, "rb").read()
        name = os.path.basename(f).replace('"', "_")
        if TARGET == "multipart":
            body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
                    f"filename=\"{name}\"\r\nContent-Type: {media_type(img)}\r\n\r\n").encode() \
                   + img + f"\r\n--{BOUNDARY}--\r\n".encode()
            headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        elif TARGET == "raw":
            body, headers = img, {"Content-Type": media_type(img)}
        elif TARGET == "v2-json":
            body = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                           "data": [base64.b64encode(img).decode()]}]}).encode()
            headers = {"Content-Type": "application/json"}
        else:  # v2-binary: JSON header + 4-byte little-endian length + bytes
            hdr = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                          "parameters": {"binary_data_size": len(img) + 4}}],
                              "parameters": {"binary_data_output": True}}).encode()
            body = hdr + struct.pack("<I", len(img)) + img
            headers = {"Content-Type": "application/octet-stream",
                       "Inference-Header-Content-Length": str(len(hdr))}
        reqs.append((path, body, headers))
    return reqs


REQUESTS = load_requests()
_rr = itertools.count()
_rr_lock = threading.Lock()


class OspreyUser(FastHttpUser):
    """One user: POSTs the next image, checks for 200, thinks, repeats."""
    wait_time = constant(THINK_MS / 1000.0)

    @task
    def classify(self):
        if ORDER == "random":
            path, body, headers = random.choice(REQUESTS)
        else:
            with _rr_lock:
                i = next(_rr)
            path, body, headers = REQUESTS[i % len(REQUESTS)]
        with self.client.post(path, data=body, headers=headers,
                              name=f"{path} [{TARGET}]", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}: {r.text[:200] if r.text else ''}")


def parse_steps(spec):
    steps = []
    for i, part in enumerate(spec.split(","), 1):
        try:
            users, dur = part.split(":")
            users = int(users)
            if users < 0:
                raise ValueError
            steps.append((users, parse_duration(dur)))
        except ValueError:
            raise SystemExit(f"OSPREY_STEPS step {i} {part!r} is not USERS:DURATION (e.g. 10:30s)")
    return steps


if STEPS != "off":
    _STEPS = parse_steps(STEPS)

    class StepLoadShape(LoadTestShape):
        """Holds each step's user count for its duration, then stops."""

        def tick(self):
            t = self.get_run_time()
            end = 0.0
            for users, dur in _STEPS:
                end += dur
                if t < end:
                    return users, float(SPAWN_RATE) if SPAWN_RATE else max(users, 1)
            return None
