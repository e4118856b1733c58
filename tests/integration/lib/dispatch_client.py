#!/usr/bin/env python3
"""dispatch_client.py — a small closed-loop HTTP load client for the
dispatcher's integration tests (standard library only, so the tests need no
venv): N threads, each with its own keep-alive connection, POST the same
image until a duration or request count is reached. Prints one JSON object:
completed, errors, codes {status: count}, error_kinds, p50_ms, p99_ms,
max_ms, rps. A connection error is an error (the dispatcher must turn
backend failures into retries, never into a broken client connection)."""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True, help="base, e.g. http://127.0.0.1:8000")
    ap.add_argument("--path", default="/classify")
    ap.add_argument("--file", required=True)
    ap.add_argument("--content-type", default="image/jpeg")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--duration", type=float, default=0)
    ap.add_argument("--requests", type=int, default=0, help="total (0 = use duration)")
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    body = open(a.file, "rb").read()
    u = urllib.parse.urlparse(a.url)
    lock = threading.Lock()
    lat, codes, kinds = [], {}, {}
    state = {"issued": 0}
    t0 = time.monotonic()
    end = t0 + a.duration if a.duration > 0 else None

    def take():
        with lock:
            if a.requests and state["issued"] >= a.requests:
                return False
            if end and time.monotonic() >= end:
                return False
            state["issued"] += 1
            return True

    def worker():
        conn = None
        while take():
            s = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=a.timeout)
                conn.request("POST", a.path, body, {"Content-Type": a.content_type})
                r = conn.getresponse()
                r.read()
                code = r.status
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 — every failure is counted
                code = None
                with lock:
                    k = type(e).__name__
                    kinds[k] = kinds.get(k, 0) + 1
                if conn:
                    conn.close()
                conn = None
            ms = (time.monotonic() - s) * 1e3
            with lock:
                lat.append(ms)
                key = str(code) if code else "conn_error"
                codes[key] = codes.get(key, 0) + 1
        if conn:
            conn.close()

    ts = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.monotonic() - t0
    lat.sort()

    def q(p):
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

    ok = codes.get("200", 0)
    print(json.dumps({"completed": len(lat), "ok": ok, "errors": len(lat) - ok,
                      "codes": codes, "error_kinds": kinds, "p50_ms": q(0.50),
                      "p99_ms": q(0.99), "max_ms": round(lat[-1], 2) if lat else None,
                      "rps": round(len(lat) / wall, 1) if wall > 0 else 0}))


if __name__ == "__main__":
    sys.exit(main())
