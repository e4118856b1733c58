#!/usr/bin/env python3
"""serve_api.py — drives a running `osprey serve` over loopback HTTP with the
standard library only (urllib, threads) and checks status codes, response
structure and metrics. Called by serve_api.sh / serve_limits.sh; the model
has random or real weights, so labels are never asserted, only structure.

usage: serve_api.py PORT MODEL_NAME IMAGE_DIR CHECK...
checks: api, batching, drain-load, overload, deadline, pixels, body
"""
import base64
import concurrent.futures as cf
import io
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
import uuid

PORT, MODEL, IMAGES = int(sys.argv[1]), sys.argv[2], sys.argv[3]
CHECKS = sys.argv[4:]
BASE = f"http://127.0.0.1:{PORT}"
TIMEOUT = 120  # seconds per request (ASan builds are slow)


def req(method, path, body=None, headers=None):
    """Returns (status, headers dict (lower-case keys), body bytes)."""
    r = urllib.request.Request(BASE + path, data=body, method=method,
                               headers=headers or {})
    try:
        with urllib.request.urlopen(r, timeout=TIMEOUT) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def jreq(method, path, body=None, headers=None, expect=200):
    st, h, b = req(method, path, body, headers)
    assert st == expect, f"{method} {path}: {st} (want {expect}): {b[:300]!r}"
    assert h.get("content-type", "").startswith("application/json"), h
    return json.loads(b), h


def multipart(files, extra=None):
    boundary = "----osp" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, (fname, data) in files:
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
                  f"filename=\"{fname}\"\r\nContent-Type: application/octet-stream\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def images():
    files = sorted(f for f in os.listdir(IMAGES)
                   if f.lower().endswith((".jpg", ".jpeg", ".png", ".bmp", ".webp")))
    assert files, f"no images in {IMAGES}"
    return [(f, open(os.path.join(IMAGES, f), "rb").read()) for f in files]


def metrics():
    st, h, b = req("GET", "/metrics")
    assert st == 200 and h["content-type"].startswith("text/plain; version=0.0.4"), (st, h)
    vals = {}
    for line in b.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        k, v = line.rsplit(" ", 1)
        vals[k] = float(v)
    return vals, b.decode()


def check_classify_body(j, n, k):
    assert set(j) == {"model", "version", "results", "timings_ms"}, j.keys()
    assert j["model"] == MODEL and j["version"] == "1"
    assert set(j["timings_ms"]) == {"decode", "queue", "infer"}
    assert all(v >= 0 for v in j["timings_ms"].values())
    assert len(j["results"]) == n, len(j["results"])
    for r in j["results"]:
        assert set(r) == {"predictions"}
        p = r["predictions"]
        assert len(p) == k, len(p)
        for q in p:
            assert set(q) == {"index", "label", "score"}
            assert isinstance(q["index"], int) and isinstance(q["label"], str)
            assert 0.0 <= q["score"] <= 1.0
        scores = [q["score"] for q in p]
        assert scores == sorted(scores, reverse=True)


def check_api():
    imgs = images()
    j, h = jreq("GET", "/v2/health/live")
    j, h = jreq("GET", "/v2/health/ready")
    assert j["ready"] is True
    jreq("GET", "/ready")
    j, _ = jreq("GET", "/v2")
    assert j["name"] == "osprey" and "version" in j and "binary_tensor_data" in j["extensions"]
    j, _ = jreq("GET", f"/v2/models/{MODEL}")
    assert j["name"] == MODEL and j["versions"] == ["1"]
    assert len(j["inputs"]) == 1 and j["inputs"][0]["datatype"] in ("FP32", "UINT8")
    in_shape = j["inputs"][0]["shape"]
    in_type = j["inputs"][0]["datatype"]
    assert len(j["outputs"]) >= 1
    jreq("GET", f"/v2/models/{MODEL}/versions/1")
    jreq("GET", f"/v2/models/{MODEL}/ready")
    jreq("GET", f"/v2/models/{MODEL}/versions/1/ready")
    jreq("GET", f"/v2/models/{MODEL}/versions/2", expect=404)
    j, _ = jreq("GET", "/v2/models/no_such_model", expect=404)
    assert "error" in j
    jreq("GET", "/no/such/route", expect=404)
    jreq("DELETE", "/v2/health/live", expect=405)

    before, _ = metrics()
    ok_key = f'osprey_requests_total{{model="{MODEL}",code="200"}}'

    # multipart with several files + a non-file field; top_k
    body, hd = multipart([("file", imgs[0]), ("note", ("n.txt", b"hello")),
                          ("file", imgs[-1])])
    j, h = jreq("POST", f"/v1/models/{MODEL}/classify?top_k=3", body, hd)
    check_classify_body(j, 2, 3)
    # raw body to the default-model route, default top_k = 5
    j, h = jreq("POST", "/classify", imgs[0][1], {"Content-Type": "application/octet-stream",
                                                  "X-Request-Id": "test-rid-42"})
    check_classify_body(j, 1, 5)
    assert h["x-request-id"] == "test-rid-42"
    # a version of the model
    j, h = jreq("POST", f"/v1/models/{MODEL}/versions/1/classify?top_k=2", imgs[0][1],
                {"Content-Type": "image/jpeg"})
    check_classify_body(j, 1, 2)
    assert j["version"] == "1"
    jreq("POST", f"/v1/models/{MODEL}/versions/2/classify", imgs[0][1],
         {"Content-Type": "image/jpeg"}, expect=404)
    j, h = jreq("POST", "/classify", imgs[0][1], {"Content-Type": "image/jpeg"})
    assert len(h["x-request-id"]) > 0
    # errors
    e, _ = jreq("POST", "/classify", b"this is not an image", {"Content-Type": "image/jpeg"}, expect=415)
    assert "error" in e
    jpg = next((d for f, d in imgs if f.lower().endswith((".jpg", ".jpeg"))), None)
    if jpg:
        e, _ = jreq("POST", "/classify", jpg[:len(jpg) // 3], {"Content-Type": "image/jpeg"}, expect=400)
    jreq("POST", "/classify", b"", {"Content-Type": "image/jpeg"}, expect=400)
    jreq("POST", "/classify", b"{}", {"Content-Type": "application/json"}, expect=415)
    jreq("POST", "/classify", b"--x\r\nbroken", {"Content-Type": "multipart/form-data; boundary=x"}, expect=400)
    jreq("POST", "/classify", b"x", {"Content-Type": "multipart/form-data"}, expect=400)
    body, hd = multipart([("other", imgs[0])])
    jreq("POST", "/classify", body, hd, expect=400)
    jreq("POST", "/classify?top_k=0", imgs[0][1], {"Content-Type": "image/jpeg"}, expect=400)
    jreq("POST", "/classify?top_k=abc", imgs[0][1], {"Content-Type": "image/jpeg"}, expect=400)
    jreq("POST", "/classify", imgs[0][1], {"X-Request-Timeout-Ms": "-5"}, expect=400)
    jreq("POST", "/v1/models/nope/classify", imgs[0][1], {"Content-Type": "image/jpeg"}, expect=404)

    # V2 infer: JSON tensor of the model's shape, then BYTES (an encoded image)
    shape = [2] + [d for d in in_shape[1:]]
    n = 1
    for d in shape:
        n *= d
    data = [0.25] * n if in_type == "FP32" else [7] * n
    j, _ = jreq("POST", f"/v2/models/{MODEL}/infer", json.dumps(
        {"id": "abc", "inputs": [{"name": "x", "shape": shape, "datatype": in_type,
                                  "data": data}]}).encode())
    assert j["id"] == "abc" and j["model_name"] == MODEL and j["model_version"] == "1"
    out = j["outputs"][0]
    assert out["datatype"] == "FP32" and out["shape"][0] == 2
    assert len(out["data"]) == out["shape"][0] * out["shape"][1]
    # identical inputs in one batch give identical rows
    c = out["shape"][1]
    assert out["data"][:c] == out["data"][c:]
    b64 = base64.b64encode(imgs[0][1]).decode()
    j, _ = jreq("POST", f"/v2/models/{MODEL}/versions/1/infer", json.dumps(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64]}]}).encode())
    assert j["outputs"][0]["shape"] == [1, c]
    # binary tensor extension: the same tensor as raw bytes after the JSON
    # header, output requested as binary
    import array
    import struct
    raw = array.array("f" if in_type == "FP32" else "B", data).tobytes()
    hdr = json.dumps({"inputs": [{"name": "x", "shape": shape, "datatype": in_type,
                                  "parameters": {"binary_data_size": len(raw)}}],
                      "outputs": [{"name": out["name"], "parameters": {"binary_data": True}}]}).encode()
    st, h, b = req("POST", f"/v2/models/{MODEL}/infer", hdr + raw,
                   {"Inference-Header-Content-Length": str(len(hdr)),
                    "Content-Type": "application/octet-stream"})
    assert st == 200, (st, b[:200])
    hl = int(h["inference-header-content-length"])
    jh = json.loads(b[:hl])
    o = jh["outputs"][0]
    assert o["shape"] == [2, c] and "data" not in o
    assert o["parameters"]["binary_data_size"] == 2 * c * 4 == len(b) - hl
    vals = array.array("f", b[hl:])
    assert max(abs(a - b2) for a, b2 in zip(vals, out["data"])) <= 1e-6 * max(1.0, max(map(abs, out["data"])))
    # JSON input, binary output via the request-level parameter
    st, h, b = req("POST", f"/v2/models/{MODEL}/infer", json.dumps(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64]}],
         "parameters": {"binary_data_output": True}}).encode())
    assert st == 200 and int(h["inference-header-content-length"]) < len(b)
    # BYTES in binary: 4-byte little-endian length + the encoded image
    el = struct.pack("<I", len(imgs[0][1])) + imgs[0][1]
    hdr = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                  "parameters": {"binary_data_size": len(el)}}]}).encode()
    j, _ = jreq("POST", f"/v2/models/{MODEL}/infer", hdr + el,
                {"Inference-Header-Content-Length": str(len(hdr))})
    assert j["outputs"][0]["shape"] == [1, c]
    # malformed binary requests
    jreq("POST", f"/v2/models/{MODEL}/infer", hdr + el[:-1],
         {"Inference-Header-Content-Length": str(len(hdr))}, expect=400)
    jreq("POST", f"/v2/models/{MODEL}/infer", hdr + el,
         {"Inference-Header-Content-Length": str(len(hdr) + len(el) + 1)}, expect=400)
    bad = struct.pack("<I", 1 << 30) + b"xx"
    hdr2 = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": len(bad)}}]}).encode()
    jreq("POST", f"/v2/models/{MODEL}/infer", hdr2 + bad,
         {"Inference-Header-Content-Length": str(len(hdr2))}, expect=400)
    jreq("POST", f"/v2/models/{MODEL}/infer", json.dumps(
        {"inputs": [{"name": "x", "shape": shape, "datatype": in_type, "data": data}],
         "outputs": [{"name": "nope"}]}).encode(), expect=400)
    jreq("POST", f"/v2/models/{MODEL}/infer", b"{not json", expect=400)
    jreq("POST", f"/v2/models/{MODEL}/infer", json.dumps({"inputs": []}).encode(), expect=400)
    jreq("POST", f"/v2/models/{MODEL}/infer", json.dumps(
        {"inputs": [{"name": "x", "shape": [1, 3, 5, 5], "datatype": in_type,
                     "data": [0] * 75}]}).encode(), expect=400)
    jreq("POST", f"/v2/models/{MODEL}/infer", json.dumps(
        {"inputs": [{"name": "x", "shape": shape, "datatype": in_type, "data": data[:-1]}]}).encode(),
        expect=400)
    jreq("POST", f"/v2/models/{MODEL}/infer", json.dumps(
        {"inputs": [{"name": "i", "shape": [1], "datatype": "BYTES", "data": ["!!notb64"]}]}).encode(),
        expect=400)
    jreq("POST", "/v2/models/nope/infer", b"{}", expect=404)

    after, text = metrics()
    for name in ["osprey_requests_total", "osprey_request_duration_seconds",
                 "osprey_queue_duration_seconds", "osprey_inference_duration_seconds",
                 "osprey_decode_duration_seconds", "osprey_batch_size",
                 "osprey_queue_depth", "osprey_inflight_requests", "osprey_model_ready",
                 "osprey_build_info", "process_cpu_seconds_total",
                 "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds"]:
        assert re.search(rf"^# TYPE {name} ", text, re.M), f"metric {name} missing"
    assert after[ok_key] - before.get(ok_key, 0) == 9, (after[ok_key], before.get(ok_key))
    assert after[f'osprey_requests_total{{model="{MODEL}",code="415"}}'] >= 2
    assert after[f'osprey_requests_total{{model="{MODEL}",code="400"}}'] >= 10
    assert after['osprey_requests_total{model="",code="404"}'] >= 2
    assert after[f'osprey_model_ready{{model="{MODEL}",version="1"}}'] == 1
    assert after[f'osprey_queue_depth{{model="{MODEL}"}}'] == 0
    assert after["osprey_inflight_requests"] == 0
    cnt = f'osprey_request_duration_seconds_count{{model="{MODEL}"}}'
    assert after[cnt] > before.get(cnt, 0)
    inf = f'osprey_request_duration_seconds_bucket{{model="{MODEL}",le="+Inf"}}'
    assert after[inf] == after[cnt]
    print("api: ok")


def check_openapi():
    """/openapi.json is an OpenAPI 3 document listing every route this test
    drives; each documented operation is routed (no 404 'no route' / 405);
    /docs is an HTML page that loads it."""
    spec, _ = jreq("GET", "/openapi.json")
    assert spec["openapi"].startswith("3.") and spec["info"]["title"]
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    expected = {
        ("POST", "/v1/models/{model}/classify"), ("POST", "/classify"),
        ("POST", "/v1/models/{model}/versions/{version}/classify"),
        ("GET", "/v2/health/live"), ("GET", "/v2/health/ready"), ("GET", "/ready"),
        ("GET", "/v2"), ("GET", "/v2/models/{model}"),
        ("GET", "/v2/models/{model}/versions/{version}"),
        ("GET", "/v2/models/{model}/ready"),
        ("GET", "/v2/models/{model}/versions/{version}/ready"),
        ("POST", "/v2/models/{model}/infer"),
        ("POST", "/v2/models/{model}/versions/{version}/infer"),
        ("GET", "/v2/repository/index"), ("POST", "/v2/repository/index"),
        ("POST", "/v2/repository/models/{model}/load"),
        ("POST", "/v2/repository/models/{model}/unload"),
        ("GET", "/metrics"), ("GET", "/openapi.json"), ("GET", "/docs"),
        ("GET", "/ui/{asset}")}
    assert ops == expected, ops ^ expected
    for method, path in sorted(ops):
        for code, resp in spec["paths"][path][method.lower()]["responses"].items():
            assert resp["description"] and "content" in resp
        # (repository routes get a name that is not served: unloading the
        # model under test would end the test)
        url = path.replace("{model}", "not_served" if "/repository/" in path else MODEL)
        url = url.replace("{version}", "1").replace("{asset}", "docs.js")
        st, h, b = req(method, url, b"{}" if method == "POST" else None)
        assert st not in (405, 500), (method, url, st)
        if st == 404:
            assert b"no route" not in b, (method, url)
    st, h, b = req("GET", "/docs")
    assert st == 200 and h["content-type"].startswith("text/html") and b"/openapi.json" in b
    print(f"openapi: ok ({len(ops)} operations)")


def classify_one(data, headers=None):
    h = {"Content-Type": "application/octet-stream"}
    h.update(headers or {})
    st, hd, b = req("POST", "/classify", data, h)
    return st, hd, b


def check_batching():
    data = images()[0][1]
    before, _ = metrics()
    with cf.ThreadPoolExecutor(16) as ex:
        res = list(ex.map(lambda _: classify_one(data)[0], range(96)))
    assert all(s == 200 for s in res), res
    after, _ = metrics()
    le1 = f'osprey_batch_size_bucket{{model="{MODEL}",le="1"}}'
    cnt = f'osprey_batch_size_count{{model="{MODEL}"}}'
    total = f'osprey_batch_size_sum{{model="{MODEL}"}}'
    batches = after[cnt] - before.get(cnt, 0)
    singles = after[le1] - before.get(le1, 0)
    images_run = after[total] - before.get(total, 0)
    assert images_run == 96, images_run
    assert batches < 96 and singles < batches, (batches, singles)
    print(f"batching: ok ({int(batches)} batches for 96 images, {int(singles)} of size 1)")


def check_drain_load():
    """Fires 12 concurrent requests and reports their statuses on stdout as
    JSON (the shell sends SIGTERM while they are in flight)."""
    data = images()[0][1]
    with cf.ThreadPoolExecutor(12) as ex:
        futs = [ex.submit(classify_one, data) for _ in range(12)]
        print("started", flush=True)
        res = [f.result()[0] for f in futs]
    print(json.dumps(res))
    assert all(s == 200 for s in res), res
    print("drain-load: ok")


def check_overload():
    data = images()[0][1]
    with cf.ThreadPoolExecutor(32) as ex:
        res = list(ex.map(lambda _: classify_one(data), range(96)))
    codes = [r[0] for r in res]
    assert set(codes) <= {200, 503}, codes
    assert 503 in codes, "no 503 under overload"
    assert 200 in codes
    for st, hd, b in res:
        if st == 503:
            assert hd.get("retry-after") == "1", hd
            assert "queue full" in json.loads(b)["error"]
    print(f"overload: ok ({codes.count(503)} x 503, {codes.count(200)} x 200)")


def check_deadline():
    # A large photo takes well over 1 ms to decode, so a 1 ms deadline has
    # passed by the time it reaches the queue.
    from PIL import Image
    im = Image.effect_noise((1000, 900), 64).convert("RGB")  # < --max-pixels
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    st, hd, b = classify_one(buf.getvalue(), {"X-Request-Timeout-Ms": "1"})
    assert st == 504, (st, b)
    assert "deadline" in json.loads(b)["error"]
    st, _, _ = classify_one(buf.getvalue(), {"X-Request-Timeout-Ms": "60000"})
    assert st == 200
    print("deadline: ok")


def check_pixels():
    # The server runs with --max-pixels 1000000: a 1200x1000 PNG is refused.
    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (1200, 1000), (10, 200, 30)).save(buf, "PNG")
    st, hd, b = classify_one(buf.getvalue())
    assert st == 413, (st, b)
    buf = io.BytesIO()
    Image.new("RGB", (900, 1000), (10, 200, 30)).save(buf, "PNG")
    assert classify_one(buf.getvalue())[0] == 200
    print("pixels: ok")


def check_body():
    # The server runs with --max-body-bytes 2000000.
    st, hd, b = classify_one(b"\0" * 2000001)
    assert st == 413, st
    assert "larger than" in json.loads(b)["error"]
    print("body: ok")


def check_slow():
    """A client that sends headers and part of its body, then stalls, is
    disconnected after --conn-timeout-s (2 s here) instead of holding a
    thread forever; others are served meanwhile."""
    import socket
    sk = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    sk.sendall(b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
               b"Content-Length: 100000\r\n\r\n" + b"\xff\xd8" * 10)
    t0 = time.time()
    assert classify_one(images()[0][1])[0] == 200       # not blocked by it
    try:
        got = sk.recv(4096)                              # closed (b"") or reset
    except ConnectionResetError:
        got = b""
    waited = time.time() - t0
    assert waited < 15, waited
    assert b"200 OK" not in got, got
    sk.close()
    print(f"slow client: ok (dropped after {waited:.1f} s)")


def check_labels():
    """Real weights (TFLite MobileNetV2): cat.bmp is a cat, and the second
    part of the same request (another image) gets its own answer."""
    cat = open(os.path.join(IMAGES, "cat.bmp"), "rb").read()
    body, hd = multipart([("file", ("cat.bmp", cat))])
    j, _ = jreq("POST", f"/v1/models/{MODEL}/classify?top_k=3", body, hd)
    check_classify_body(j, 1, 3)
    top = j["results"][0]["predictions"][0]
    assert "cat" in top["label"].lower() and top["score"] > 0.3, top
    # the same image as a raw body and through V2 BYTES agree on the class
    j2, _ = jreq("POST", "/classify", cat, {"Content-Type": "image/bmp"})
    assert j2["results"][0]["predictions"][0]["index"] == top["index"]
    b64 = base64.b64encode(cat).decode()
    j3, _ = jreq("POST", f"/v2/models/{MODEL}/infer", json.dumps(
        {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64]}]}).encode())
    d = j3["outputs"][0]["data"]
    assert max(range(len(d)), key=lambda i: d[i]) == top["index"]
    print(f"labels: ok (cat.bmp -> {top['label']} {top['score']})")


for c in CHECKS:
    globals()["check_" + c.replace("-", "_")]()
