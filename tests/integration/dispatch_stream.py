#!/usr/bin/env python3
"""Streamed request bodies through the dispatcher (run by
dispatch_stream.sh; stdlib only; helpers shared with dispatch_event.py).

  1. byte for byte: 8 concurrent clients, bodies of 0, 60 KB (buffered),
     100 KB, 1 MB (streamed, whole retry copy) and 3 MB (streamed through
     the 64 KiB window) to two echoing backends;
  2. backpressure: a worker that reads a 64 MB body only 1.5 s after its
     head. The dispatcher must hold it back, not take it: during the stall
     its budget in use (osprey_http_inflight_bytes) is at most one 64 KiB
     window and its RSS grows by at most 16 MiB (buffering would take the
     40 MB the kernel lets the client send: its send buffer, 4 MB
     tcp_wmem max, plus the dispatcher's receive buffer, up to the 32 MB
     tcp_rmem max, plus the dispatcher→worker send buffer); the client's
     upload cannot finish before the worker reads (64 MB is more than
     those buffers hold); the worker gets all 64 MB intact;
  3. retries: beside a backend that closes mid-answer, 200 KB bodies (kept
     whole) are all retried to 200; a 3 MB body (past its window) to the
     closing backend alone gets a clean 503, not a hang; a 3 MB body whose
     backend was killed (connect refused: nothing sent yet) is retried on
     the other one;
  4. a client that leaves after 1 MB of a 3 MB body: the dispatcher's
     budget and the backend's in-flight gauge return to 0 within 5 s, and
     the next request is answered.
"""

import hashlib
import json
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dispatch_event as de  # noqa: E402  (start/backend/dispatcher/req/metric)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def wait_ready_backends(port, n):
    """Waits (<= 10 s) until n backends are ready: dispatcher() waits for
    one, and a retry test needs its bad backend in the rotation."""
    t = time.time() + 10
    while time.time() < t:
        _, _, text = de.req(port, "GET", "/metrics")
        ready = sum(float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
                    if line.startswith("osprey_dispatch_backends{") and 'state="ready"' in line)
        if ready >= n:
            return
        time.sleep(0.05)
    de.fail(f"{n} backends not ready within 10 s")


def echo_ok(port, n, prefix, count):
    """count POSTs of n random bytes, each answered 200 with its echo (the
    "good" stand-in's "<id>\\n" + body); fails with what came instead."""
    for i in range(count):
        b, rid = os.urandom(n), f"{prefix}{i}"
        s, _, data = de.req(port, "POST", "/v2/models/echo/infer", b,
                            {"Content-Type": "application/octet-stream", "X-Request-Id": rid})
        if s != 200 or data != rid.encode() + b"\n" + b:
            de.fail(f"{n} B body {rid}: status {s}, {data[:200]!r}")


def main():
    t_all = time.time()
    # 1. Byte for byte across the thresholds.
    g1, g2 = de.backend("good"), de.backend("good")
    d, port = de.dispatcher([g1, g2], "--loops", "2")
    sizes = [0, 60_000, 100_000, 1_000_000, 3_000_000]
    errors = []

    def client(k):
        for i, n in enumerate(sizes * max(1, 2 // de.SCALE)):
            body = os.urandom(n)
            rid = f"s{k}-{i}"
            s, _, data = de.req(port, "POST", "/v2/models/echo/infer", body,
                                {"Content-Type": "application/octet-stream",
                                 "X-Request-Id": rid})
            if s != 200 or data != rid.encode() + b"\n" + body:
                errors.append(f"{rid} ({n} B): status {s}, {len(data)} bytes")

    ts = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        de.fail(f"byte for byte: {len(errors)} wrong, e.g. {errors[:3]}")
    rx = de.metric(port, "osprey_http_received_bytes_total")
    if rx != 8 * sum(sizes) * max(1, 2 // de.SCALE):
        de.fail(f"osprey_http_received_bytes_total {rx:.0f}, want every body byte "
                f"({8 * sum(sizes) * max(1, 2 // de.SCALE)}), streamed ones too")
    print(f"1. {8 * len(sizes) * max(1, 2 // de.SCALE)} bodies of 0..3 MB byte for byte: OK")
    de.stop(d)

    # 2. Backpressure from a slow reader.
    st = de.backend("stall")
    d, port = de.dispatcher([st], "--loops", "1", "--max-body-bytes", "80000000")
    n = 64 << 20
    body = os.urandom(1 << 20) * 64
    want = hashlib.md5(body).hexdigest()
    base = rss_kib(d.pid)
    res = {}

    def upload():
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % n)
        t0 = time.time()
        s.sendall(body)
        res["sent_s"] = time.time() - t0
        data = b""
        while b"}" not in data:
            part = s.recv(65536)
            if not part:
                break
            data += part
        res["answer"] = data
        s.close()

    t0 = time.time()
    th = threading.Thread(target=upload)
    th.start()
    time.sleep(1.0)  # inside the worker's 1.5 s stall
    used = de.metric(port, "osprey_http_inflight_bytes")
    grown = rss_kib(d.pid) - base
    th.join(60)
    ans = res.get("answer", b"")
    head, _, js = ans.partition(b"\r\n\r\n")
    got = json.loads(js) if js.strip() else {}
    if not head.startswith(b"HTTP/1.1 200") or got.get("len") != n or got.get("md5") != want:
        de.fail(f"backpressure: answer {ans[-300:]!r}, want len {n} md5 {want}")
    if used > 65536:
        de.fail(f"backpressure: {used:.0f} bytes of the budget held during the stall (want <= 65536)")
    if grown > 16 << 10:
        de.fail(f"backpressure: dispatcher RSS grew {grown} KiB during the stall (want <= 16 MiB)")
    if res.get("sent_s", 0) < 0.3:
        de.fail(f"backpressure: the client sent 64 MB in {res.get('sent_s')} s while the worker stalled")
    print(f"2. 64 MB to a stalled worker: budget held {used:.0f} B, RSS +{grown} KiB, "
          f"client held back {res['sent_s']:.2f} s, intact ({time.time() - t0:.1f} s)")
    de.stop(d)

    # 3. Retries.
    g = de.backend("good")
    bc = de.backend("close")
    d, port = de.dispatcher([g, bc], "--loops", "1", "--policy", "rr")
    wait_ready_backends(port, 2)
    echo_ok(port, 200_000, "r", 6)
    retries = de.metric(port, "osprey_dispatch_retries_total")
    if retries < 1:
        de.fail("retry of 200 KB bodies: no retry counted (rr must have tried the closing backend)")
    de.stop(d)
    d, port = de.dispatcher([bc], "--loops", "1")
    t = time.time()
    s, _, data = de.req(port, "POST", "/v2/models/echo/infer", os.urandom(3_000_000),
                        {"Content-Type": "application/octet-stream"})
    if s not in (502, 503) or not data.startswith(b"{"):
        de.fail(f"3 MB to the closing backend: {s} {data[:200]!r}")
    dt, s_close = time.time() - t, s
    de.stop(d)
    ga, gb = de.backend("good"), de.backend("good")
    victim = de.PROCS[-1]  # gb's process
    d, port = de.dispatcher([ga, gb], "--loops", "1", "--policy", "rr",
                            "--health-interval-ms", "60000")
    wait_ready_backends(port, 2)
    time.sleep(0.5)  # the probes the two additions kicked are over: the
                     # next is 60 s away, so the dead one stays "ready"
    victim.kill()
    victim.wait()
    echo_ok(port, 3_000_000, "k", 4)
    retries = de.metric(port, "osprey_dispatch_retries_total")
    if retries < 1:
        m = de.req(port, "GET", "/metrics")[2].decode()
        de.fail("3 MB after a backend died: no retry counted; " + " | ".join(
            l for l in m.splitlines() if l.startswith(("osprey_dispatch_retries", "osprey_dispatch_backend", "osprey_dispatch_requests"))))
    print(f"3. retries: 200 KB bodies past a closing backend all 200; 3 MB to it alone "
          f"a clean {s_close} in {dt * 1000:.0f} ms; 3 MB past a dead backend all 200 "
          f"({retries:.0f} retries)")

    # 4. A client that leaves mid-body.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v2/models/echo/infer HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 3000000\r\n\r\n" + b"a" * 1_000_000)
    time.sleep(0.3)
    s.close()
    t = time.time() + 5
    while time.time() < t:
        used = de.metric(port, "osprey_http_inflight_bytes")
        inflight = de.metric(port, "osprey_dispatch_inflight")
        if used == 0 and inflight == 0:
            break
        time.sleep(0.1)
    if used != 0 or inflight != 0:
        de.fail(f"client left mid-body: budget {used}, backend in-flight {inflight} after 5 s")
    s2, _, data = de.req(port, "POST", "/v2/models/echo/infer", b"ok" * 50_000,
                         {"X-Request-Id": "after"})
    if s2 != 200 or data != b"after\n" + b"ok" * 50_000:
        de.fail(f"after the aborted upload: {s2}")
    print("4. a client leaving mid-body: budget and in-flight back to 0, next request 200")
    de.stop(d)
    print(f"PASS ({time.time() - t_all:.1f} s)")


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in de.PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
            if getattr(p, "logname", None) and os.path.exists(p.logname):
                os.unlink(p.logname)
