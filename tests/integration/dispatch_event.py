#!/usr/bin/env python3
"""The dispatcher's event path (`--io event`) against stand-in workers
(dispatch_fake_backend.py), stdlib only; run by dispatch_event.sh.

  1. byte-for-byte: 48 concurrent keep-alive clients through 2 loops to
     two good backends, random bodies 0..300 KB, answers with a
     Content-Length or chunked; every answer must be exactly
     "<our X-Request-Id>\\n" + our body (GETs: the JSON naming our id);
  2. a backend that answers garbage, and one that closes mid-answer, next
     to a good one: every request succeeds (retried), retries and
     ejections are counted;
  3. only a garbage backend → 502; only a closing one → 503; both clean
     JSON errors, quickly;
  4. one loop thread: a slow upstream answer (2 s) does not hold up 20
     other requests on the same loop;
  5. a backend that never answers + X-Request-Timeout-Ms: 300 → 504 in
     about 0.3 s, and the dispatcher still serves afterwards;
  6. SIGTERM while a request is in flight: it is answered, exit 0;
  8. admission across loops: --max-inflight 1 on two backends, 8 clients
     on 2 loops, each answer 300 ms: 2 run, 6 wait in the queue and are
     woken as slots free (also by the other loop's releases) — all 8
     succeed, in about 4 × 300 ms, and the queue gauge returns to 0;
  7. a backend that answers a 16 MB POST before reading it: the answer is
     forwarded, and the next requests on the same loop get their own
     answers (the half-sent connection is closed, not pooled; the backend
     here also closes it, so this checks the outcome, not which side
     closed).
"""

import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

OSPREY = os.environ["OSPREY"]
HERE = os.path.dirname(os.path.abspath(__file__))
ASAN = b"__asan_init" in subprocess.run(["nm", "-an", OSPREY], capture_output=True).stdout
SCALE = 4 if ASAN else 1
PROCS = []


def fail(msg):
    print("FAIL:", msg, flush=True)
    for p in PROCS:
        if getattr(p, "logname", None):
            print(f"--- {p.logname}:")
            with open(p.logname) as f:
                print("".join(f.readlines()[-20:]))
    sys.exit(1)


def start(argv, name):
    logname = f"/tmp/osp_dispatch_event.{os.getpid()}.{name}.log"
    f = open(logname, "w")
    p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
    p.logname = logname
    PROCS.append(p)
    t = time.time() + 60
    while time.time() < t:
        with open(logname) as g:
            m = re.search(r'"msg":\s*"listening".*?"port":\s*(\d+)', g.read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            break
        time.sleep(0.05)
    fail(f"{name} did not start")


def backend(role):
    _, port = start([sys.executable, os.path.join(HERE, "lib", "dispatch_fake_backend.py"),
                     "--role", role], f"b-{role}-{len(PROCS)}")
    return f"127.0.0.1:{port}"


def dispatcher(backends, *extra):
    argv = [OSPREY, "dispatch", "--io", "event", "--host", "127.0.0.1", "--port", "0",
            "--admin-port", "-1", "--health-interval-ms", "200", "--eject-base-ms", "500",
            *extra]
    for b in backends:
        argv += ["--backend", b]
    p, port = start(argv, f"d{len(PROCS)}")
    t = time.time() + 30
    while time.time() < t:
        try:
            s, _, _ = req(port, "GET", "/v2/health/ready")
            if s == 200:
                return p, port
        except OSError:
            pass
        time.sleep(0.05)
    fail("dispatcher not ready")


def req(port, method, path, body=None, headers=None, conn=None, timeout=30):
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    if not conn:
        c.close()
    return r.status, dict(r.getheaders()), data


def metric(port, name):
    _, _, text = req(port, "GET", "/metrics")
    tot = 0.0
    for line in text.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            tot += float(line.rsplit(" ", 1)[1])
    return tot


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        fail("dispatcher did not stop on SIGTERM")


def clients(port, n_clients, n_req, errors, seed):
    """n_clients threads, n_req requests each, byte-for-byte checks."""
    def run(k):
        rnd = random.Random(seed * 1000 + k)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for i in range(n_req):
            rid = f"c{seed}-{k}-{i}"
            q = "?te=chunked" if rnd.random() < 0.5 else ""
            try:
                if rnd.random() < 0.2:
                    s, _, data = req(port, "GET", "/v2/models/echo" + q,
                                     headers={"X-Request-Id": rid}, conn=c)
                    ok = s == 200 and json.loads(data) == {"name": "echo", "request_id": rid}
                else:
                    size = rnd.choice([0, 1, 100, 4096, 65536, 100 * 1024,
                                       rnd.randint(0, 300 * 1024)])
                    body = rnd.randbytes(size)
                    s, h, data = req(port, "POST", "/v2/models/echo/infer" + q, body,
                                     {"X-Request-Id": rid,
                                      "Content-Type": "application/octet-stream"}, conn=c)
                    ok = (s == 200 and data == rid.encode() + b"\n" + body and
                          h.get("X-Request-Id") == rid)
                if not ok:
                    errors.append(f"{rid}: status {s}, {len(data)} bytes: {data[:120]!r}")
            except Exception as e:  # noqa: BLE001 — any failure counts
                errors.append(f"{rid}: {e!r}")
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        c.close()
    ts = [threading.Thread(target=run, args=(k,)) for k in range(n_clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def main():
    # 1. Many concurrent clients, byte for byte.
    g1, g2 = backend("good"), backend("good")
    d, port = dispatcher([g1, g2], "--loops", "2")
    errors = []
    t0 = time.time()
    clients(port, 48, 20 // SCALE, errors, 1)
    if errors:
        fail(f"{len(errors)} wrong answers, e.g. {errors[:3]}")
    print(f"1. {48 * (20 // SCALE)} requests byte-for-byte through 2 loops: OK "
          f"({time.time() - t0:.1f} s)")

    # 5 (same dispatcher, later): stays usable after the timeouts below.
    # 2. Garbage and close-mid-answer backends next to a good one.
    bg, bc = backend("garbage"), backend("close")
    d2, port2 = dispatcher([g1, bg, bc], "--loops", "2")
    errors = []
    clients(port2, 8, 40 // SCALE, errors, 2)
    if errors:
        fail(f"with bad backends: {len(errors)} failed, e.g. {errors[:3]}")
    retries = metric(port2, "osprey_dispatch_retries_total")
    ejections = metric(port2, "osprey_dispatch_ejections_total")
    if retries < 2 or ejections < 2:
        fail(f"retries {retries}, ejections {ejections}: expected both bad backends "
             "to be tried and ejected")
    print(f"2. garbage + closing backends beside a good one: 0 failed, "
          f"{retries:.0f} retries, {ejections:.0f} ejections")
    stop(d2)

    # 3. Only bad backends: clean 502 / 503.
    for role, want in (("garbage", 502), ("close", 503)):
        dd, pp = dispatcher([bg if role == "garbage" else bc], "--loops", "1")
        t = time.time()
        s, h, data = req(pp, "POST", "/v2/models/echo/infer", b"x" * 1000,
                         {"Content-Type": "application/octet-stream"})
        dt = time.time() - t
        err = json.loads(data).get("error", "")
        if s != want or not err or dt > 2:
            fail(f"only a {role} backend: status {s} in {dt:.2f} s: {data[:200]!r}")
        print(f"3. only a {role} backend: {s} in {1000 * dt:.0f} ms ({err})")
        stop(dd)

    # 4. One loop: a slow upstream answer does not hold up the others.
    d4, port4 = dispatcher([g1, g2], "--loops", "1")
    slow = {}

    def slow_req():
        t = time.time()
        slow["s"], _, _ = req(port4, "POST", "/v2/models/echo/infer?mode=slow&ms=2000",
                              b"slow", {"Content-Type": "application/octet-stream"})
        slow["t"] = time.time() - t
    th = threading.Thread(target=slow_req)
    th.start()
    time.sleep(0.2)
    errors = []
    t = time.time()
    clients(port4, 4, 5, errors, 4)
    fast = time.time() - t
    th.join()
    if errors or fast > 1.5 * SCALE or slow.get("s") != 200 or slow["t"] < 1.9:
        fail(f"slow request {slow}, 20 others took {fast:.2f} s, errors {errors[:3]}")
    print(f"4. one loop: 20 requests in {fast:.2f} s while a 2 s answer was pending "
          f"({slow['t']:.2f} s)")
    stop(d4)

    # 5. Upstream never answers: 504 at the request's deadline.
    bh = backend("hang")
    d5, port5 = dispatcher([bh], "--loops", "1")
    t = time.time()
    s, _, data = req(port5, "POST", "/v2/models/echo/infer", b"x",
                     {"X-Request-Timeout-Ms": "300",
                      "Content-Type": "application/octet-stream"})
    dt = time.time() - t
    if s != 504 or not 0.25 <= dt < 1.5 * SCALE:
        fail(f"hanging backend: {s} after {dt:.2f} s: {data[:200]!r}")
    s2, _, _ = req(port5, "GET", "/v2/health/live")
    if s2 != 200:
        fail("dispatcher unusable after a timeout")
    print(f"5. hanging backend: 504 after {1000 * dt:.0f} ms")
    stop(d5)

    # 6. SIGTERM with a request in flight: it is answered, clean exit.
    got = {}

    def inflight():
        got["s"], _, got["d"] = req(port, "POST", "/v2/models/echo/infer?mode=slow&ms=700",
                                    b"bye", {"X-Request-Id": "bye",
                                             "Content-Type": "application/octet-stream"})
    th = threading.Thread(target=inflight)
    th.start()
    time.sleep(0.3)
    rc = stop(d)
    th.join()
    if rc != 0 or got.get("s") != 200 or got.get("d") != b"bye\nbye":
        fail(f"drain: exit {rc}, answer {got}")
    print("6. SIGTERM drained the in-flight request, exit 0")

    # 7. An early answer leaves the connection mid-request: not reused.
    be = backend("early")
    d7, port7 = dispatcher([be], "--loops", "1", "--max-body-bytes", "20000000")
    c = http.client.HTTPConnection("127.0.0.1", port7, timeout=30)
    s, _, data = req(port7, "POST", "/v2/models/echo/infer", b"z" * 16_000_000,
                     {"Content-Type": "application/octet-stream"}, conn=c)
    if s != 413:
        fail(f"early answer: {s} {data[:200]!r}")
    for i in range(3):
        s, _, data = req(port7, "GET", "/v2/models/echo", headers={"X-Request-Id": f"after{i}"})
        if s != 200 or json.loads(data).get("request_id") != f"after{i}":
            fail(f"request after an early answer: {s} {data[:200]!r}")
    c.close()
    print("7. early 413 forwarded; the half-sent connection was not reused")
    stop(d7)

    # 8. Queued requests are served when slots free, across loops.
    d8, port8 = dispatcher([g1, g2], "--loops", "2", "--max-inflight", "1",
                           "--queue-size", "16", "--queue-timeout-ms", "5000")
    res = []

    def queued(k):
        c = http.client.HTTPConnection("127.0.0.1", port8, timeout=30)
        rid = f"q{k}"
        s, _, data = req(port8, "POST", "/v2/models/echo/infer?mode=slow&ms=300",
                         rid.encode(), {"X-Request-Id": rid,
                                        "Content-Type": "application/octet-stream"},
                         conn=c)
        res.append((s, data == (rid + "\n" + rid).encode()))
        c.close()
    t = time.time()
    ts = [threading.Thread(target=queued, args=(k,)) for k in range(8)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    dt = time.time() - t
    depth = metric(port8, "osprey_dispatch_queue_depth")
    if len(res) != 8 or not all(s == 200 and ok for s, ok in res) or depth != 0 \
            or not 1.1 <= dt < 3.5 * SCALE:
        fail(f"admission: {res}, {dt:.2f} s, queue depth after {depth}")
    print(f"8. 8 requests through 2 slots on 2 loops: all 200 in {dt:.2f} s, "
          "queue back to 0")
    stop(d8)
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
            if getattr(p, "logname", None) and os.path.exists(p.logname):
                os.unlink(p.logname)
