#!/usr/bin/env python3
"""slow_clients.py — slow_clients.sh's Slowloris driver: holds N connections
to each given server, each sending a request line and then one header line
every --interval seconds, never the blank line that ends the head (the
pattern of `slowhttptest -H`; the connections' sends are spread evenly over
the interval, as slowhttptest's ramp spreads them, rather than all at
once). slowhttptest itself is the test's slow-body
attacker and the benchmark's attacker; for 2 x 2,000 slow-header
connections it would spend about a core of system time in its own polling
loop, which on a 2-core machine measures the attacker rather than the
servers. This driver costs a few percent of a core.

Prints one JSON line when all connections are open ({"open": {...}}) and a
last one at the end: per server, how many connections the server closed,
how many of those sent any byte first (an answer: there should be none,
a head that never completes gets no answer), and when (seconds after the
connection opened) the first and last close came.

    slow_clients.py --connections 2000 --interval 3 --duration 25 \
        127.0.0.1:8000 127.0.0.1:8080
"""
import argparse
import collections
import json
import selectors
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("servers", nargs="+", help="HOST:PORT")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--interval", type=float, default=3.0)
    ap.add_argument("--duration", type=float, default=25.0)
    ap.add_argument("--path", default="/v2/health/live")
    a = ap.parse_args()
    sel = selectors.DefaultSelector()
    stats = {s: {"opened": 0, "closed_by_server": 0, "answered": 0,
                 "first_close_s": None, "last_close_s": None}
             for s in a.servers}
    conns = []  # [socket, server, opened_at]
    t0 = time.monotonic()
    end = t0 + a.duration
    for i in range(a.connections):
        for srv in a.servers:
            host, port = srv.rsplit(":", 1)
            try:
                s = socket.create_connection((host, int(port)), timeout=5)
            except OSError as e:
                print(json.dumps({"error": f"{srv}: connect {i}: {e}"}), flush=True)
                return 1
            s.sendall(f"GET {a.path} HTTP/1.1\r\nHost: {host}\r\n".encode())
            s.setblocking(False)
            c = [s, srv, time.monotonic()]
            conns.append(c)
            sel.register(s, selectors.EVENT_READ, c)
            stats[srv]["opened"] += 1
    print(json.dumps({"open": {s: v["opened"] for s, v in stats.items()},
                      "seconds": round(time.monotonic() - t0, 2)}), flush=True)
    alive = {id(c[0]): c for c in conns}
    # (when, connection) in the order the sends are due: connection i first
    # sends i/N of an interval after the last one opened.
    now = time.monotonic()
    due = collections.deque((now + a.interval * (i + 1) / len(conns), c)
                            for i, c in enumerate(conns))
    n = 0
    while alive and time.monotonic() < end:
        wake = min(due[0][0] if due else end, end)
        for key, _ in sel.select(timeout=max(0.0, wake - time.monotonic())):
            c = key.data
            s, srv, opened = c
            try:
                d = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            if d:  # an answer to a head that never ended
                stats[srv]["answered"] += 1
                continue
            st = stats[srv]
            age = round(time.monotonic() - opened, 2)
            st["closed_by_server"] += 1
            st["first_close_s"] = age if st["first_close_s"] is None else min(st["first_close_s"], age)
            st["last_close_s"] = age if st["last_close_s"] is None else max(st["last_close_s"], age)
            sel.unregister(s)
            s.close()
            del alive[id(s)]
        now = time.monotonic()
        while due and due[0][0] <= now:
            when, c = due.popleft()
            if id(c[0]) not in alive:
                continue
            n += 1
            try:
                c[0].send(f"X-Slow-{n}: {n}\r\n".encode())
            except OSError:
                pass  # the close shows up as a readable end of stream
            due.append((when + a.interval, c))
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
