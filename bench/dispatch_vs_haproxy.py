#!/usr/bin/env python3
"""The dispatcher benchmark (issue 6): osprey dispatch vs HAProxy 2.6.

In one run, with the same workers (`osprey serve`) and the same load from
`osprey load`, it measures:

  1. added latency: p50/p99 of an open-loop load at a fixed, modest rate sent
     (a) straight to one worker, (b) through `osprey dispatch` (p2c; the
     event path, `--io event`, and the thread-per-connection path,
     `--io blocking`, as "dispatch-blocking") and (c) through HAProxy (`balance leastconn`, keep-alive and connection
     reuse to the server), each with that one worker as the only backend,
     so the difference to (a) is what the proxy adds; three request kinds:
       - small-get : GET /v2/models/{m} (no inference: the proxy's own cost)
       - 100kb-415 : POST /v1/models/{m}/classify with 100 KiB of random
                     bytes: the worker reads the body and answers 415 at
                     once, so this is the proxy's cost for a 100 KB body
       - small     : POST /v1/models/{m}/classify, a 738-byte JPEG
       - 100kb     : POST /v1/models/{m}/classify, a 105 KB JPEG (cat_720p)
     (the last two include decoding and inference, whose run-to-run noise
     on a shared machine is far larger than what a proxy adds);
     The three targets run interleaved, `--rounds` times, and the medians of
     the per-round percentiles are reported (the machine is shared: this
     keeps slow minutes from landing on one target);
  2. max req/s: closed loop with `--concurrency` users for each target and
     kind;
  2b. CPU per request (--parts cpu): `perf stat -e
     task-clock,context-switches` on the proxy process during a closed-loop
     small-get run: CPU µs and context switches per request;
  3. one slow worker: three workers, one answering --slow-ms later
     (`serve --debug-delay-ms`), closed loop: client p50/p99 and the slow
     worker's share under dispatch p2c, dispatch rr and HAProxy leastconn.

With --osprey-before PATH (the .sh passes $OSPREY_BEFORE), a second event-path
dispatcher from that binary (e.g. main's, before a change) runs as target
"dispatch-before" in parts 1 and 2, interleaved with the others, and a table
compares it with the current one and HAProxy.

Writes bench/results/<UTC>-dispatch.json and prints Markdown tables. Stdlib
only; run through bench/dispatch_vs_haproxy.sh.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"dispatch-bench: {msg}", file=sys.stderr, flush=True)


class Procs:
    """Child processes, all killed on exit."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.ps = []

    def start(self, name, argv):
        logf = open(os.path.join(self.tmp, name + ".log"), "w")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT)
        self.ps.append(p)
        return p, logf.name

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def close(self):
        for p in self.ps:
            if p.poll() is None:
                p.kill()
                p.wait()


def wait_port(logfile, key="port", timeout=60):
    t = time.time() + timeout
    rx = re.compile(r'"msg":"listening".*?"%s":(\d+)' % key)
    while time.time() < t:
        with open(logfile) as f:
            m = rx.search(f.read())
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    raise SystemExit(f"no listening line in {logfile}")


def wait_ok(url, timeout=120):
    t = time.time() + timeout
    while time.time() < t:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:  # noqa: BLE001 — not up yet
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready")


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def haproxy_cfg(port, backends, balance, tmp):
    lines = [
        "global",
        "  maxconn 4096",
        "defaults",
        "  mode http",
        "  timeout connect 1s",
        "  timeout client 60s",
        "  timeout server 60s",
        "  option http-keep-alive",
        "  http-reuse always",
        "frontend fe",
        f"  bind 127.0.0.1:{port}",
        "  default_backend be",
        "backend be",
        f"  balance {balance}",
    ]
    for i, b in enumerate(backends):
        lines.append(f"  server w{i} {b} check inter 2s")
    path = os.path.join(tmp, f"haproxy-{port}.cfg")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def run_load(osprey, base, kind, model, images, mode, rate, conc, duration):
    argv = [osprey, "load", "--json", "--quiet", "--duration", f"{duration}s"]
    if kind == "small-get":
        argv += ["--url", f"{base}/v2/models/{model}", "--target", "get"]
    else:
        argv += ["--url", base, "--target", "raw", "--model", model,
                 "--images", images[kind]]
    if mode == "open":
        argv += ["--mode", "open", "--rate", str(rate)]
    else:
        argv += ["--mode", "closed", "--concurrency", str(conc)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    if out.returncode not in (0, 3):
        raise SystemExit(f"osprey load failed: {out.stderr}")
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--osprey", required=True)
    ap.add_argument("--model", required=True, help="a small .tflite/.onnx")
    ap.add_argument("--small-image", required=True)
    ap.add_argument("--big-image", required=True)
    ap.add_argument("--haproxy", default="haproxy")
    ap.add_argument("--rate-get", type=float, default=200,
                    help="open-loop req/s of the latency runs, small-get")
    ap.add_argument("--rate", type=float, default=8,
                    help="open-loop req/s of the latency runs, classify (well below "
                         "what one worker sustains, so that nothing queues)")
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--slow-ms", type=int, default=1000)
    ap.add_argument("--worker-threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="short runs (smoke)")
    ap.add_argument("--osprey-before", default="",
                    help="an earlier osprey binary: its dispatcher is measured too")
    ap.add_argument("--parts", default="latency,max,cpu,slow",
                    help="comma-separated subset of latency,max,cpu,slow")
    ap.add_argument("--kinds", default="small-get,100kb-415,small,100kb",
                    help="request kinds of the latency/max/cpu parts (cpu: only "
                         "small-get and 100kb-415)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    a = ap.parse_args()
    if a.quick:
        a.duration, a.rounds = 2, 1
    hv = subprocess.run([a.haproxy, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    model_name = os.path.splitext(os.path.basename(a.model))[0]
    tmp = tempfile.mkdtemp(prefix="osp_dispatch_bench.")
    junk = os.path.join(tmp, "random-100k.bin")
    with open(junk, "wb") as f:
        f.write(os.urandom(100 * 1024))
    images = {"small": a.small_image, "100kb": a.big_image, "100kb-415": junk}
    procs = Procs(tmp)
    res = {"when": datetime.datetime.utcnow().isoformat() + "Z",
           "host": platform.node(), "cpus": os.cpu_count(),
           "loadavg_start": os.getloadavg(), "haproxy": hv,
           "model": model_name, "rate": a.rate, "rate_get": a.rate_get,
           "duration_s": a.duration,
           "rounds": a.rounds, "concurrency": a.concurrency,
           }
    res["body_bytes"] = {k: os.path.getsize(v) for k, v in images.items()}
    try:
        def worker(name, extra=()):
            p, lf = procs.start(name, [a.osprey, "serve", "--host", "127.0.0.1", "--port", "0",
                                       "--model", a.model, "--threads",
                                       str(a.worker_threads), *extra])
            port = wait_port(lf)
            wait_ok(f"http://127.0.0.1:{port}/v2/health/ready")
            return p, f"127.0.0.1:{port}"

        def dispatcher(name, backends, policy="p2c", io="event", binary=None):
            argv = [binary or a.osprey, "dispatch", "--host", "127.0.0.1", "--port", "0",
                    "--admin-port", "-1", "--policy", policy, "--health-interval-ms", "1000",
                    "--io", io]
            for b in backends:
                argv += ["--backend", b]
            p, lf = procs.start(name, argv)
            port = wait_port(lf)
            wait_ok(f"http://127.0.0.1:{port}/v2/health/ready")
            return p, f"http://127.0.0.1:{port}"

        def served(addr):
            """Requests a worker answered (its own osprey_requests_total)."""
            text = urllib.request.urlopen(f"http://{addr}/metrics").read().decode()
            return int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
                           if l.startswith("osprey_requests_total{")))

        def haproxy(name, backends, balance="leastconn"):
            port = free_port()
            cfg = haproxy_cfg(port, backends, balance, tmp)
            p, _ = procs.start(name, [a.haproxy, "-db", "-f", cfg])
            wait_ok(f"http://127.0.0.1:{port}/v2/models/{model_name}")
            return p, f"http://127.0.0.1:{port}"

        parts = a.parts.split(",")
        # ---- 1 + 2: one worker, three ways to reach it ----------------------
        w, waddr = worker("w0")
        dp, durl = dispatcher("d0", [waddr])
        bp, burl = dispatcher("d0b", [waddr], io="blocking")
        hp, hurl = haproxy("h0", [waddr])
        targets = {"direct": f"http://{waddr}", "dispatch": durl,
                   "dispatch-blocking": burl, "haproxy": hurl}
        pids = {"dispatch": dp.pid, "dispatch-blocking": bp.pid, "haproxy": hp.pid}
        if a.osprey_before:
            _, targets["dispatch-before"] = dispatcher("d0old", [waddr],
                                                       binary=a.osprey_before)
        kinds = a.kinds.split(",")
        lat = {k: {t: [] for t in targets} for k in kinds}
        def rate(kind):
            return a.rate_get if kind in ("small-get", "100kb-415") else a.rate
        for kind in kinds:  # warm-up: connections, caches
            for t, url in targets.items():
                run_load(a.osprey, url, kind, model_name, images, "open", rate(kind), 0, 1)
        for r in range(a.rounds if "latency" in parts else 0):
            for kind in kinds:
                for t, url in targets.items():
                    s = run_load(a.osprey, url, kind, model_name, images, "open",
                                 rate(kind), 0, a.duration)
                    lat[kind][t].append(s)
                    log(f"round {r} {kind:9s} {t:8s} p50 {s['p50_ms']:.3f} p99 "
                        f"{s['p99_ms']:.3f} ms errors {s['errors']}")
        latency = {}
        for kind in (kinds if "latency" in parts else []):
            latency[kind] = {}
            for t in targets:
                runs = lat[kind][t]
                latency[kind][t] = {
                    "p50_ms": statistics.median(x["p50_ms"] for x in runs),
                    "p99_ms": statistics.median(x["p99_ms"] for x in runs),
                    "errors": sum(x["errors"] for x in runs),
                    "runs": [{k: x[k] for k in ("p50_ms", "p99_ms", "completed", "errors")}
                             for x in runs]}
            d = latency[kind]["direct"]
            for t in (x for x in targets if x != "direct"):
                latency[kind][t]["added_p50_ms"] = round(latency[kind][t]["p50_ms"] - d["p50_ms"], 3)
                latency[kind][t]["added_p99_ms"] = round(latency[kind][t]["p99_ms"] - d["p99_ms"], 3)
        res["latency"] = latency
        maxrps = {}
        for kind in (kinds if "max" in parts else []):
            maxrps[kind] = {}
            for t, url in targets.items():
                s = run_load(a.osprey, url, kind, model_name, images, "closed", 0,
                             a.concurrency, a.duration)
                # 100kb-415 answers are all 415 by design: count answers.
                maxrps[kind][t] = {"rps": s["rps" if kind == "100kb-415" else "ok_rps"],
                                   "p50_ms": s["p50_ms"],
                                   "p99_ms": s["p99_ms"], "errors": s["errors"]}
                log(f"max {kind:9s} {t:8s} {maxrps[kind][t]['rps']:.1f} req/s "
                    f"errors {s['errors']}")
        res["max_rps"] = maxrps
        cpu_kinds = [k for k in kinds if k in ("small-get", "100kb-415")]
        cpu = {f"{t} {k}": [] for k in cpu_kinds for t in pids}
        for r in range(a.rounds if "cpu" in parts else 0):
            for k, t in ((k, t) for k in cpu_kinds for t in pids):
                pid = pids[t]
                out = os.path.join(tmp, "perf.txt")
                perf = subprocess.Popen(["perf", "stat", "-x,", "-o", out, "-e",
                                         "task-clock,context-switches", "-p", str(pid)])
                time.sleep(0.2)
                s = run_load(a.osprey, targets[t], k, model_name, images,
                             "closed", 0, a.concurrency, a.duration)
                perf.send_signal(signal.SIGINT)
                perf.wait(30)
                vals = {}
                with open(out) as f:
                    for line in f:
                        parts_ = line.strip().split(",")
                        if len(parts_) > 3 and parts_[0].replace(".", "").isdigit():
                            vals[parts_[2]] = float(parts_[0])
                n = max(1, s["completed"])
                row = {"rps": s["rps"], "cpu_us_per_req":
                       round(vals.get("task-clock", 0) * 1e3 / n, 2),
                       "cs_per_req": round(vals.get("context-switches", 0) / n, 3)}
                cpu[f"{t} {k}"].append(row)
                log(f"cpu {t:17s} {k:9s} {row['cpu_us_per_req']:.1f} us/req "
                    f"{row['cs_per_req']:.2f} cs/req {row['rps']:.0f} req/s")
        res["cpu"] = cpu
        for p in (dp, bp, hp, w):
            procs.stop(p)

        # ---- 3: one slow worker among three ---------------------------------
        ws = [worker("s0"), worker("s1"), worker("s2", ["--debug-delay-ms", str(a.slow_ms)])] \
            if "slow" in parts else []
        addrs = [x[1] for x in ws]
        slow = {}
        for name, mk in () if "slow" not in parts else (("dispatch-p2c", lambda: dispatcher("dp2c", addrs, "p2c")),
                         ("dispatch-rr", lambda: dispatcher("drr", addrs, "rr")),
                         ("haproxy-leastconn", lambda: haproxy("hlc", addrs, "leastconn")),
                         ("dispatch-p2c-again", lambda: dispatcher("dp2c2", addrs, "p2c"))):
            p, url = mk()
            run_load(a.osprey, url, "small", model_name, images, "closed", 0, 4, 2)
            before = [served(x) for x in addrs]
            s = run_load(a.osprey, url, "small", model_name, images, "closed", 0, 4,
                         a.duration * 2)
            got = [served(x) - b for x, b in zip(addrs, before)]
            slow[name] = {"rps": s["ok_rps"], "p50_ms": s["p50_ms"], "p99_ms": s["p99_ms"],
                          "errors": s["errors"], "per_worker": got,
                          "slow_share": round(got[2] / max(1, sum(got)), 4)}
            log(f"slow worker: {name:18s} p50 {s['p50_ms']:.1f} p99 {s['p99_ms']:.1f} ms "
                f"per worker {got}")
            procs.stop(p)
        res["slow_worker"] = slow
        res["slow_ms"] = a.slow_ms
        res["loadavg_end"] = os.getloadavg()
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)

    os.makedirs(a.out, exist_ok=True)
    stamp = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H%M%SZ")
    path = os.path.join(a.out, f"{stamp}-dispatch.json")
    with open(path, "w") as f:
        json.dump(res, f, indent=1)
    log(f"wrote {path}")
    print(f"\nAdded latency over direct (open loop {a.rate_get:g} req/s small-get, {a.rate:g} "
          f"req/s classify; one worker; median of "
          f"{a.rounds} rounds of {a.duration:g} s):\n")
    print("| request | direct p50 / p99 ms | dispatch (event) added p50 / p99 ms | "
          "dispatch-blocking added | HAProxy added p50 / p99 ms | event / HAProxy p50 |")
    print("|---|---|---|---|---|---|")

    def ratio(x, y):
        return f"{x / y:.2f}" if y > 0 else "n/a"
    for kind in res["latency"]:
        L = res["latency"][kind]
        d, o, b, h = L["direct"], L["dispatch"], L["dispatch-blocking"], L["haproxy"]
        print(f"| {kind} | {d['p50_ms']:.3f} / {d['p99_ms']:.3f} | {o['added_p50_ms']:.3f} / "
              f"{o['added_p99_ms']:.3f} | {b['added_p50_ms']:.3f} / {b['added_p99_ms']:.3f} | "
              f"{h['added_p50_ms']:.3f} / {h['added_p99_ms']:.3f} | "
              f"{ratio(o['added_p50_ms'], h['added_p50_ms'])} |")
    print(f"\nMax req/s (closed loop, {a.concurrency} users):\n")
    print("| request | direct | dispatch (event) | dispatch-blocking | HAProxy | event / HAProxy |")
    print("|---|---|---|---|---|---|")
    for kind in res["max_rps"]:
        M = res["max_rps"][kind]
        print(f"| {kind} | {M['direct']['rps']:.0f} | {M['dispatch']['rps']:.0f} | "
              f"{M['dispatch-blocking']['rps']:.0f} | {M['haproxy']['rps']:.0f} | "
              f"{ratio(M['dispatch']['rps'], M['haproxy']['rps'])} |")
    if a.osprey_before:
        print("\nThe event-path dispatcher before (--osprey-before) and now, and HAProxy:\n")
        print("| request | added p50 before / now / HAProxy ms | now / HAProxy | "
              "max req/s before / now / HAProxy | now / before | now / HAProxy |")
        print("|---|---|---|---|---|---|")
        for kind in sorted(set(res["latency"]) | set(res["max_rps"])):
            L, M = res["latency"].get(kind), res["max_rps"].get(kind)
            lat = (f"{L['dispatch-before']['added_p50_ms']:.3f} / {L['dispatch']['added_p50_ms']:.3f}"
                   f" / {L['haproxy']['added_p50_ms']:.3f} | "
                   f"{ratio(L['dispatch']['added_p50_ms'], L['haproxy']['added_p50_ms'])}"
                   ) if L else "- | -"
            mx = (f"{M['dispatch-before']['rps']:.0f} / {M['dispatch']['rps']:.0f} / "
                  f"{M['haproxy']['rps']:.0f} | {ratio(M['dispatch']['rps'], M['dispatch-before']['rps'])} | "
                  f"{ratio(M['dispatch']['rps'], M['haproxy']['rps'])}") if M else "- | - | -"
            print(f"| {kind} | {lat} | {mx} |")
    if any(res["cpu"].values()):
        print(f"\nCPU per proxied request (perf stat on the proxy, closed loop, "
              f"{a.concurrency} users; per round):\n")
        print("| proxy, request | CPU µs / request | context switches / request | req/s |")
        print("|---|---|---|---|")
        for t, rows in res["cpu"].items():
            print(f"| {t} | {' / '.join(str(r['cpu_us_per_req']) for r in rows)} | "
                  f"{' / '.join(str(r['cs_per_req']) for r in rows)} | "
                  f"{' / '.join(str(round(r['rps'])) for r in rows)} |")
    print(f"\nOne of three workers {a.slow_ms} ms slower (closed loop, 4 users, small image):\n")
    print("| balancer | req/s | p50 ms | p99 ms | slow worker's share |")
    print("|---|---|---|---|---|")
    for k, v in res["slow_worker"].items():
        print(f"| {k} | {v['rps']:.1f} | {v['p50_ms']:.1f} | {v['p99_ms']:.1f} | "
              f"{100 * v['slow_share']:.1f} % |")


if __name__ == "__main__":
    sys.exit(main())
