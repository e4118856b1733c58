#!/usr/bin/env python3
"""overload_client.py — closed-loop clients for the load-shedding test and
benchmark (tests/integration/serve_shed.sh, bench/overload.sh).

N threads, each with one keep-alive connection, POST an image, wait for the
answer, think, and repeat until the duration ends. Unlike `osprey load`, it
keeps the latency of admitted (200) and refused (503) requests apart, which
is what shedding is judged by, and checks each 503's Retry-After header and
JSON body. Requests that started before --warmup-s are counted but left out
of the percentiles (the onset of overload, before the controller reacts).
Prints one JSON object.

usage: overload_client.py URL PATH IMAGE --clients N --duration-s S
       [--think-ms MS] [--warmup-s S] [--timeout-s S]
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("path")
    ap.add_argument("image")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration-s", type=float, default=5)
    ap.add_argument("--think-ms", type=float, default=0)
    ap.add_argument("--warmup-s", type=float, default=0)
    ap.add_argument("--timeout-s", type=float, default=35)
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    body = open(a.image, "rb").read()
    ctype = "image/png" if body[:4] == b"\x89PNG" else (
        "image/bmp" if body[:2] == b"BM" else "image/jpeg")
    t0 = time.monotonic()
    end = t0 + a.duration_s
    lock = threading.Lock()
    rec = []      # (start offset s, latency s, status, retry_after, json_ok)
    failures = []

    def client():
        conn = None
        mine = []
        while time.monotonic() < end:
            if conn is None:
                conn = http.client.HTTPConnection(u.hostname, u.port,
                                                  timeout=a.timeout_s)
            ts = time.monotonic()
            try:
                conn.request("POST", a.path, body, {"Content-Type": ctype})
                resp = conn.getresponse()
                data = resp.read()
                lat = time.monotonic() - ts
                ra = resp.getheader("Retry-After")
                ok_json = False
                if resp.status != 200:
                    try:
                        ok_json = "error" in json.loads(data)
                    except ValueError:
                        pass
                mine.append((ts - t0, lat, resp.status, ra, ok_json))
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # a failure without an answer
                failures.append(repr(e))
                conn.close()
                conn = None
            if a.think_ms > 0:
                time.sleep(a.think_ms / 1000.0)
        if conn is not None:
            conn.close()
        with lock:
            rec.extend(mine)

    th = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    wall = time.monotonic() - t0
    steady = [r for r in rec if r[0] >= a.warmup_s]
    ok = [r[1] * 1e3 for r in steady if r[2] == 200]
    shed = [r[1] * 1e3 for r in steady if r[2] == 503]
    codes = {}
    for r in rec:
        codes[str(r[2])] = codes.get(str(r[2]), 0) + 1
    all503 = [r for r in rec if r[2] == 503]
    span = max(wall - a.warmup_s, 1e-9)
    out = {
        "requests": len(rec), "failures": len(failures),
        "failure_examples": failures[:3], "codes": codes,
        "n_503": len(all503),
        "n_503_retry_after": sum(1 for r in all503 if r[3]),
        "n_503_json": sum(1 for r in all503 if r[4]),
        "steady_s": round(span, 3),
        "ok_rps": round(len(ok) / span, 2),
        "ok_p50_ms": pct(ok, 50), "ok_p99_ms": pct(ok, 99),
        "ok_max_ms": max(ok) if ok else None,
        "shed_p50_ms": pct(shed, 50), "shed_p99_ms": pct(shed, 99),
        "shed_max_ms": max(shed) if shed else None,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
