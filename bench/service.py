#!/usr/bin/env python3
"""The service benchmark: osprey serve vs the seed-design baseline.

Starts `osprey serve` (fp32, then bf16) and the FastAPI + PyTorch baseline
(bench/baselines/fastapi-torch) one after the other, each pinned to the same
CPUs with the same thread budget, drives each with the same load profile
from `osprey load`, and reports, per model (ResNet50, then MobileNetV2):

  - max throughput with p99 <= SLO (an open-loop search of rates, below),
  - p50/p99 at fixed rates that both sides can sustain (derived from the
    baseline's max), so latency is compared at equal load,
  - CPU seconds per request of the server process (/proc/<pid>/stat
    utime + stime, before and after each run, divided by completed requests),
  - errors, time to ready and peak RSS.

It writes everything as one JSON file under bench/results/ and prints a
Markdown table for docs/performance.md. It is run by bench/service.sh (which
resolves the model and image directories the way the tests do); see
`--help` and docs/performance.md, "Service benchmark", for the method and
docs/decisions.md for why it is done this way.

Only the standard library is used, so the osprey-only smoke test
(tests/integration/service_bench_smoke.sh) runs where torch is not installed.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE_APP = os.path.join(ROOT, "bench", "baselines", "fastapi-torch",
                            "app.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")

MODELS = {  # name -> ONNX file under the models dir (torchvision exports)
    "resnet50": "onnx/resnet50.onnx",
    "mobilenet_v2": "onnx/mobilenet_v2.onnx",
}


def log(msg):
    print(f"service-bench: {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def proc_cpu_s(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the ')' field 3 (state) is index 0, so utime (14) is index 11.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_peak_rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def free_port():
    """A port nobody listens on right now (for --port-base 0: tests)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_ok(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Server:
    """One server under test: started pinned to the CPU set, stopped after."""

    def __init__(self, name, argv, env, port, ready_path, log_path):
        self.name, self.argv, self.port = name, argv, port
        self.env, self.ready_path, self.log_path = env, ready_path, log_path
        self.proc = None
        self.ready_s = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s):
        log(f"starting {self.name}: {shlex.join(self.argv)}")
        if http_ok(self.url + self.ready_path, timeout=0.5):
            raise RuntimeError(f"port {self.port} already answers: another server "
                               "would be measured (choose --port-base)")
        t0 = time.monotonic()
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, env=self.env,
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        while time.monotonic() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} "
                                   f"before becoming ready; log: {self.log_path}")
            if http_ok(self.url + self.ready_path):
                self.ready_s = round(time.monotonic() - t0, 2)
                log(f"{self.name} ready in {self.ready_s} s (pid {self.proc.pid})")
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout_s} s; "
                           f"log: {self.log_path}")

    def cpu_s(self):
        return proc_cpu_s(self.proc.pid)

    def wait_idle(self, max_s=60.0):
        """Waits until the server burns < 5% of one CPU over 0.5 s: after an
        overloaded step, work queued by timed-out requests must not leak
        into the next measurement."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < max_s:
            a = self.cpu_s()
            time.sleep(0.5)
            b = self.cpu_s()
            if a is None or b is None or b - a < 0.025:
                return round(time.monotonic() - t0, 1)
        log(f"{self.name} still busy after {max_s} s; measuring anyway")
        return round(time.monotonic() - t0, 1)

    def stop(self):
        """SIGTERM (both servers drain on it), SIGKILL after 40 s; returns
        the exit status (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.logf.closed:
            self.logf.close()
        return self.proc.returncode


# ---------------------------------------------------------------- drivers --

class OspreyLoad:
    """`osprey load` with the contract in COMMON.md (the real driver)."""
    name = "osprey-load"

    def __init__(self, binary, images, connections, timeout_ms):
        self.binary, self.images = binary, images
        self.connections, self.timeout_ms = connections, timeout_ms

    def _run(self, url, extra):
        argv = [self.binary, "load", "--url", url, "--target", "multipart",
                "--images", self.images, "--order", "rr",
                "--connections", str(self.connections),
                "--timeout-ms", str(self.timeout_ms),
                "--max-error-rate", "1", "--json"] + extra
        r = subprocess.run(argv, capture_output=True, text=True)
        lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
        if r.returncode not in (0, 3) or not lines:
            raise RuntimeError(f"osprey load failed ({r.returncode}): "
                               f"{shlex.join(argv)}\n{r.stderr[-2000:]}")
        return json.loads(lines[-1])

    def open_loop(self, url, rate, duration_s):
        return self._run(url, ["--mode", "open", "--arrival", "poisson",
                               "--rate", f"{rate:g}",
                               "--duration", f"{duration_s:g}s"])

    def closed_loop(self, url, concurrency, duration_s):
        return self._run(url, ["--mode", "closed",
                               "--concurrency", str(concurrency),
                               "--duration", f"{duration_s:g}s"])


class HeyLoad:
    """Stand-in driver (Debian `hey`) for trying the harness while `osprey
    load` is not built. NOT open-loop: hey's workers wait for each answer
    (rate-limited closed loop), so latencies under overload are
    underestimated (coordinated omission). Raw-body requests, one image."""
    name = "hey (stand-in, closed-loop)"

    def __init__(self, images, timeout_ms):
        if os.path.isdir(images):
            files = sorted(os.path.join(images, f) for f in os.listdir(images))
            self.image = files[0]
        else:
            self.image = images
        self.timeout_s = max(1, timeout_ms // 1000)

    def _run(self, url, extra, duration_s):
        argv = ["hey", "-z", f"{duration_s:g}s", "-m", "POST",
                "-T", "image/jpeg", "-D", self.image, "-t", str(self.timeout_s),
                "-o", "csv"] + extra + [url + "/classify"]
        r = subprocess.run(argv, capture_output=True, text=True)
        lat, errors = [], 0
        for line in r.stdout.splitlines()[1:]:
            parts = line.split(",")
            if len(parts) < 7:
                continue
            if parts[6] == "200":
                lat.append(float(parts[0]) * 1e3)
            else:
                errors += 1
        lat.sort()

        def pct(p):
            if not lat:
                return None
            return round(lat[min(len(lat) - 1, math.ceil(p / 100 * len(lat)) - 1)], 2)
        return {"rps": round(len(lat) / duration_s, 2), "sent": len(lat) + errors,
                "completed": len(lat), "errors": errors, "p50_ms": pct(50),
                "p90_ms": pct(90), "p99_ms": pct(99), "max_ms": pct(100),
                "duration_s": duration_s}

    def open_loop(self, url, rate, duration_s):
        # hey's -q is a whole number of requests per second per worker.
        workers = max(1, min(32, int(rate)))
        return self._run(url, ["-c", str(workers),
                               "-q", str(max(1, round(rate / workers)))],
                         duration_s)

    def closed_loop(self, url, concurrency, duration_s):
        return self._run(url, ["-c", str(concurrency)], duration_s)


# ------------------------------------------------------------ measurement --

class Bench:
    def __init__(self, args, driver):
        self.a, self.driver = args, driver

    def measure(self, server, kind, value, duration_s):
        """One load run with CPU accounting around it."""
        idle_wait = server.wait_idle()
        c0, t0 = server.cpu_s(), time.monotonic()
        if kind == "open":
            res = self.driver.open_loop(server.url, value, duration_s)
        else:
            res = self.driver.closed_loop(server.url, value, duration_s)
        wall = time.monotonic() - t0
        # The server may still finish requests the client gave up on; count
        # that CPU too, it was spent because of this run.
        server.wait_idle(max_s=30)
        c1 = server.cpu_s()
        completed = res.get("completed") or 0
        dur = res.get("duration_s") or duration_s
        row = {
            "mode": kind, ("rate" if kind == "open" else "concurrency"): value,
            "duration_s": dur,
            "rps": round(completed / dur, 2) if dur else res.get("rps"),
            "sent": res.get("sent"), "completed": completed,
            "errors": res.get("errors"),
            "errors_by_class": res.get("errors_by_class"),
            "p50_ms": res.get("p50_ms"), "p90_ms": res.get("p90_ms"),
            "p99_ms": res.get("p99_ms"), "max_ms": res.get("max_ms"),
            "cpu_s": round(c1 - c0, 3),
            "cpu_s_per_req": round((c1 - c0) / completed, 4) if completed else None,
            "wall_s": round(wall, 2), "idle_wait_s": idle_wait,
            "loadavg_1m": loadavg()[0],
        }
        log(f"  {server.name} {kind} {value}: {row['rps']} req/s, p50 {row['p50_ms']} "
            f"p99 {row['p99_ms']} ms, errors {row['errors']}, "
            f"cpu/req {row['cpu_s_per_req']} s")
        return row

    def passes(self, row):
        """A rate is sustained when p99 <= SLO and at most 0.1% of the
        requests failed. (Open loop: a server that falls behind shows it in
        the latency, measured from the intended send time, or in timeouts;
        achieved req/s is not compared with the offered rate because a short
        Poisson run's arrival count itself varies by ~1/sqrt(n).)"""
        sent = row["sent"] or 0
        errs = row["errors"] or 0
        return (row["p99_ms"] is not None and row["p99_ms"] <= self.a.slo_ms
                and errs <= 0.001 * max(sent, 1)
                and row["completed"] >= 0.999 * sent)

    def step_seconds(self, rate):
        """An open-loop step lasts --step-s, stretched (up to 3x) so that
        it holds at least --min-requests arrivals: a p99 of a handful of
        requests is just their maximum. At most 2x, to bound the run time."""
        a = self.a
        return round(min(max(a.step_s, a.min_requests / rate), 2 * a.step_s), 1)

    def fixed_seconds(self, rate):
        """Same stretching for the fixed-rate runs (identical for every
        system, since they all run the same rates), to 40 arrivals and at
        most twice --fixed-s: they are repeated --rounds times."""
        a = self.a
        return round(min(max(a.fixed_s, 40 / rate), 2 * a.fixed_s), 1)

    def search_max(self, server):
        """Max throughput with p99 <= SLO.

        1. Closed loop, 1 client: the unloaded latency (reported; no rate
           can do better than it).
        2. Closed loop, --probe-concurrency clients: the saturated
           throughput X (reported as well: the no-SLO capacity).
        3. Open-loop (Poisson) steps start at 0.7 X; while steps pass, the
           rate grows by 1.25x; below any pass a failing step is followed
           by 0.6x; once there is both a pass and a fail, the remaining
           steps bisect (geometric mean) until they are within 6%.
           The answer is the highest passing step's achieved throughput."""
        a = self.a
        unloaded = self.measure(server, "closed", 1, a.probe_s)
        probe = self.measure(server, "closed", a.probe_concurrency, a.probe_s)
        res = {"unloaded": unloaded, "probe": probe,
               "saturated_rps": probe["rps"], "steps": [],
               "max_rps_under_slo": 0.0, "max_rate_under_slo": 0.0,
               "at_max": None, "lowest_failing_rate": None}
        lo, hi, steps = None, None, res["steps"]
        rate = max(0.2, 0.7 * probe["rps"])
        for _ in range(a.steps):
            rate = round(rate, 2 if rate < 10 else 1)
            row = self.measure(server, "open", rate, self.step_seconds(rate))
            row["pass"] = self.passes(row)
            steps.append(row)
            if row["pass"]:
                lo = row if lo is None or row["rate"] > lo["rate"] else lo
            else:
                hi = row if hi is None or row["rate"] < hi["rate"] else hi
            if hi is None:
                rate = rate * 1.25
            elif lo is None:
                rate = rate * 0.6
            else:
                if hi["rate"] / lo["rate"] < 1.06:
                    break
                rate = math.sqrt(lo["rate"] * hi["rate"])
        if lo:
            res["max_rps_under_slo"] = lo["rps"]
            res["max_rate_under_slo"] = lo["rate"]
            res["at_max"] = {k: lo[k] for k in ("p50_ms", "p99_ms",
                                                "cpu_s_per_req", "errors")}
        res["lowest_failing_rate"] = hi["rate"] if hi else None
        return res

    def run_model(self, systems):
        """All systems of one model: start each (pinned to the same CPUs;
        an idle server costs nothing), then for each system in turn a
        warm-up and the search for its max under the SLO, then the
        fixed-rate runs INTERLEAVED: --rounds rounds, each running every
        rate on every system back to back (system order rotated per
        round). On a shared machine the background load changes by the
        minute; interleaving makes a noisy minute hit every system alike
        instead of whichever happened to run then. Per rate and system we
        report the median over rounds of p50 and p99, and CPU per request
        over all rounds. The fixed rates come from the first system (the
        baseline): its max under the SLO and half of it."""
        recs = []
        for sd in systems:
            srv = sd["server"]
            rec = {"system": sd["system"], "precision": sd["precision"],
                   "model": sd["model"], "command": shlex.join(srv.argv),
                   "loadavg_before": loadavg()}
            try:
                srv.start(self.a.ready_timeout_s)
                rec["ready_s"] = srv.ready_s
                # Warm-up: untimed, lets caches, allocators and (osprey)
                # every batch-size plan see traffic before measuring.
                self.driver.closed_loop(srv.url, self.a.probe_concurrency,
                                        self.a.warmup_s)
                rec.update(self.search_max(srv))
            except RuntimeError as exc:
                rec["error"] = str(exc)
                log(f"{srv.name}: {exc}")
                srv.stop()
            rec["loadavg_after_search"] = loadavg()
            recs.append(rec)
        live = [(sd, rec) for sd, rec in zip(systems, recs) if "error" not in rec]
        fixed_rates = []
        if live:
            ref = live[0][1]
            # The reference's max under the SLO; when it meets the SLO at no
            # rate, half its saturated throughput (a 50% load).
            m = ref["max_rate_under_slo"] or ref["saturated_rps"] * 0.5
            fixed_rates = fixed_rate_list(m, self.a.quick, self.a.osprey_only)
        runs = {id(rec): {r: [] for r in fixed_rates} for _, rec in live}
        for rnd in range(self.a.rounds):
            order = live[rnd % len(live):] + live[:rnd % len(live)] if live else []
            for rate in fixed_rates:
                for sd, rec in order:
                    try:
                        row = self.measure(sd["server"], "open", rate,
                                           self.fixed_seconds(rate))
                    except RuntimeError as exc:
                        rec["error"] = str(exc)
                        continue
                    row["round"] = rnd
                    runs[id(rec)][rate].append(row)
        for sd, rec in live:
            rec["fixed"] = [summarise_rounds(rate, runs[id(rec)][rate])
                            for rate in fixed_rates]
            rec["peak_rss_mb"] = proc_peak_rss_mb(sd["server"].proc.pid)
        for sd, rec in zip(systems, recs):
            rec["exit_code"] = sd["server"].stop()
            rec["loadavg_after"] = loadavg()
        return recs, fixed_rates


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else round((xs[n // 2 - 1] + xs[n // 2]) / 2, 3)


def summarise_rounds(rate, rows):
    """One fixed rate on one system over its rounds."""
    completed = sum(r["completed"] or 0 for r in rows)
    cpu = sum(r["cpu_s"] or 0 for r in rows)
    return {
        "rate": rate, "rounds": rows,
        "p50_ms": median(r["p50_ms"] for r in rows),
        "p99_ms": median(r["p99_ms"] for r in rows),
        "p99_ms_range": [min((r["p99_ms"] for r in rows if r["p99_ms"] is not None),
                             default=None),
                         max((r["p99_ms"] for r in rows if r["p99_ms"] is not None),
                             default=None)],
        "rps": median(r["rps"] for r in rows),
        "sent": sum(r["sent"] or 0 for r in rows), "completed": completed,
        "errors": sum(r["errors"] or 0 for r in rows),
        "cpu_s": round(cpu, 3),
        "cpu_s_per_req": round(cpu / completed, 4) if completed else None,
    }


def fixed_rate_list(max_rate, quick, half_only):
    """Rates every system is measured at: half the reference max and the
    reference max itself (equal load for the p99 comparison). The
    reference is the first system run: the baseline, or osprey itself with
    --osprey-only, where only half its max is kept in quick mode (a smoke
    run wants a rate with no errors, not a second probe of the limit)."""
    m = max(max_rate, 0.5)
    full, half = round(m, 2 if m < 10 else 1), round(m / 2, 2 if m < 20 else 1)
    if quick:
        return [half] if half_only else [full]
    return [half, full]


# ---------------------------------------------------------------- report --

def fmt(v, nd=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def model_table(model, recs, slo_ms):
    ok = [r for r in recs if "error" not in r]
    rates = ok[0]["fixed"] if ok else []
    head = ["system", "precision", f"max req/s (p99 ≤ {slo_ms:g} ms)",
            "p50 / p99 ms at that rate", "saturated req/s (closed loop)",
            "unloaded p50 / p99 ms"]
    for f in rates:
        head.append(f"p50 / p99 ms @ {fmt(f['rate'], 2)} req/s")
    head += ["CPU s/req @ equal load", "errors / sent", "ready s", "peak RSS MB"]
    lines = [f"### {model}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for r in recs:
        if "error" in r:
            lines.append(f"| {r['system']} | {r['precision']} | failed: "
                         f"{r['error'][:80]} |" + " |" * (len(head) - 3))
            continue
        am = r["at_max"] or {}
        un = r["unloaded"]
        mx = fmt(r["max_rps_under_slo"])
        if not r["max_rps_under_slo"]:
            mx = f"none of {len(r['steps'])} rates tried"
        cells = [r["system"], r["precision"], mx,
                 f"{fmt(am.get('p50_ms'))} / {fmt(am.get('p99_ms'))}",
                 fmt(r["saturated_rps"]),
                 f"{fmt(un.get('p50_ms'))} / {fmt(un.get('p99_ms'))}"]
        for f in r["fixed"]:
            cells.append(f"{fmt(f['p50_ms'])} / {fmt(f['p99_ms'])}")
        eq = r["fixed"][-1] if r["fixed"] else {}
        runs = [r["unloaded"], r["probe"]] + r["steps"] + r["fixed"]
        errs = sum((x.get("errors") or 0) for x in runs)
        sent = sum((x.get("sent") or 0) for x in runs)
        cells += [fmt(eq.get("cpu_s_per_req"), 4), f"{errs} / {sent}",
                  fmt(r.get("ready_s")), fmt(r.get("peak_rss_mb"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def ratios(recs, goal_tput, goal_p99):
    """osprey vs baseline: max throughput under the SLO, saturated
    throughput, p99 and CPU per request at equal load (the baseline's
    sustainable rate, the last fixed rate)."""
    base = next((r for r in recs if r["system"] == "baseline"
                 and "error" not in r), None)
    out = []
    if base is None:
        return out
    for r in recs:
        if r["system"] == "baseline" or "error" in r:
            continue
        item = {"system": r["system"], "precision": r["precision"]}
        if base["max_rps_under_slo"]:
            item["throughput_ratio"] = round(r["max_rps_under_slo"]
                                             / base["max_rps_under_slo"], 2)
        elif r["max_rps_under_slo"] and base["steps"]:
            # No step of the baseline passed: its max is below the lowest
            # rate tried, so the ratio is at least this.
            lowest = min(x["rate"] for x in base["steps"])
            item["throughput_ratio_at_least"] = round(r["max_rps_under_slo"] / lowest, 2)
        if base["saturated_rps"]:
            item["saturated_ratio"] = round(r["saturated_rps"]
                                            / base["saturated_rps"], 2)
        bf, of = base["fixed"][-1], r["fixed"][-1]
        item["equal_load_rate"] = bf["rate"]
        if bf.get("p99_ms") and of.get("p99_ms") is not None:
            item["p99_ratio_equal_load"] = round(of["p99_ms"] / bf["p99_ms"], 3)
        if bf.get("cpu_s_per_req") and of.get("cpu_s_per_req"):
            item["cpu_per_req_ratio"] = round(of["cpu_s_per_req"]
                                              / bf["cpu_s_per_req"], 3)
        t = item.get("throughput_ratio")
        lb = item.get("throughput_ratio_at_least")
        item["throughput_goal_met"] = ((t is not None and t >= goal_tput)
                                       or (lb is not None and lb >= goal_tput))
        item["p99_goal_met"] = (item.get("p99_ratio_equal_load") is not None
                                and item["p99_ratio_equal_load"] <= goal_p99)
        out.append(item)
    return out


def ratio_lines(model, items):
    lines = []
    for it in items:
        t = it.get("throughput_ratio")
        if t is not None:
            t = f"{fmt(t, 2)}×"
        elif it.get("throughput_ratio_at_least") is not None:
            t = (f"> {fmt(it['throughput_ratio_at_least'], 2)}× (no rate tried "
                 "met the SLO on the baseline)")
        else:
            t = "–"
        if it["system"] != "osprey":  # a tuned baseline: no goal applies
            lines.append(
                f"- {model}, {it['system']} vs baseline: max throughput under "
                f"the SLO {t}, saturated {fmt(it.get('saturated_ratio'), 2)}×, "
                f"p99 at equal load {fmt(it.get('p99_ratio_equal_load'), 3)}×, "
                f"CPU per request {fmt(it.get('cpu_per_req_ratio'), 3)}×")
            continue
        lines.append(
            f"- {model}, {it['system']} {it['precision']} vs baseline: max throughput "
            f"under the SLO **{t}** (goal ≥ 10×: "
            f"{'met' if it['throughput_goal_met'] else 'not met'}); saturated "
            f"throughput {fmt(it.get('saturated_ratio'), 2)}×; p99 at "
            f"{fmt(it.get('equal_load_rate'), 2)} req/s "
            f"**{fmt(it.get('p99_ratio_equal_load'), 3)}×** the baseline's (goal ≤ 0.2×: "
            f"{'met' if it['p99_goal_met'] else 'not met'}); CPU per request "
            f"{fmt(it.get('cpu_per_req_ratio'), 3)}×")
    return lines


# ------------------------------------------------------------------ main --

def calib_args(a, precision):
    """osprey serve arguments for int8 on the float ONNX models: calibrate on
    photos outside the load corpus (speed does not depend on which)."""
    if precision != "int8":
        return []
    d = a.calibration or os.path.dirname(os.path.abspath(a.images.rstrip("/")))
    return ["--calibration", d, "--calibration-count", "16"]


def main():
    ap = argparse.ArgumentParser(
        description="osprey serve vs the FastAPI + PyTorch baseline under the "
                    "same load. Usually run through bench/service.sh.")
    ap.add_argument("--osprey", default=os.path.join(ROOT, "build", "osprey"))
    ap.add_argument("--models-dir", required=True)
    ap.add_argument("--images", required=True, help="image corpus (dir or file)")
    ap.add_argument("--models", help="default resnet50,mobilenet_v2 "
                                      "(--quick: resnet50)")
    ap.add_argument("--calibration",
                    help="int8: calibration images for osprey's post-training "
                         "quantization (default: the corpus directory's "
                         "parent, i.e. the photos beside imagenet-samples; "
                         "16 of them)")
    ap.add_argument("--precisions",
                    help="osprey precisions, default fp32,bf16 (--quick: fp32); "
                         "the baseline is always fp32")
    ap.add_argument("--baseline-variants", default="eager",
                    help="eager (the seed design) and/or jit (TorchScript + "
                         "optimize_for_inference, a tuned reference point)")
    ap.add_argument("--osprey-only", action="store_true",
                    help="skip the baseline (no torch needed)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: ResNet50 fp32 only, short runs (~1 min)")
    ap.add_argument("--slo-ms", type=float, default=250.0)
    ap.add_argument("--cpus", default="0,1", help="taskset CPU list for servers")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--port-base", type=int, default=18300,
                    help="servers listen on consecutive ports from here "
                         "(0: any free port each)")
    ap.add_argument("--driver", choices=["auto", "osprey-load", "hey"],
                    default="auto")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--timeout-ms", type=int, default=10000)
    ap.add_argument("--step-s", type=float, help="seconds per search step")
    ap.add_argument("--steps", type=int, help="open-loop search steps")
    ap.add_argument("--fixed-s", type=float, help="seconds per fixed-rate run")
    ap.add_argument("--probe-s", type=float)
    ap.add_argument("--warmup-s", type=float)
    ap.add_argument("--probe-concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int,
                    help="interleaved rounds of the fixed-rate runs")
    ap.add_argument("--min-requests", type=int,
                    help="stretch a search step to hold this many arrivals")
    ap.add_argument("--ready-timeout-s", type=float, default=300)
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra argument for osprey serve (repeatable)")
    ap.add_argument("--python", default="/usr/bin/python3",
                    help="interpreter for the baseline (Debian's, with torch)")
    ap.add_argument("--out", help="JSON file (default bench/results/<UTC>-service.json)")
    ap.add_argument("--log-dir", default=None)
    a = ap.parse_args()

    quick_defaults = dict(step_s=3, steps=2, fixed_s=3, probe_s=2, warmup_s=2,
                          min_requests=10, rounds=1)
    full_defaults = dict(step_s=8, steps=5, fixed_s=8, probe_s=4, warmup_s=3,
                         min_requests=40, rounds=2)
    for k, v in (quick_defaults if a.quick else full_defaults).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.models is None:
        a.models = "resnet50" if a.quick else "resnet50,mobilenet_v2"
    if a.precisions is None:
        a.precisions = "fp32" if a.quick else "fp32,bf16"

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    out = a.out or os.path.join(ROOT, "bench", "results", f"{stamp}-service.json")
    log_dir = a.log_dir or os.path.join("/tmp", f"osprey-service-bench-{stamp}")
    os.makedirs(log_dir, exist_ok=True)

    if a.driver == "auto":
        probe = subprocess.run([a.osprey, "load", "--help"], capture_output=True)
        a.driver = "osprey-load" if probe.returncode == 0 else "hey"
        if a.driver == "hey":
            log("`osprey load` is not available; using hey as a STAND-IN "
                "(closed-loop, raw body) — not for published numbers")
    driver = (OspreyLoad(a.osprey, a.images, a.connections, a.timeout_ms)
              if a.driver == "osprey-load" else HeyLoad(a.images, a.timeout_ms))
    bench = Bench(a, driver)

    models = [m for m in a.models.split(",") if m]
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r} (known: {', '.join(MODELS)})")
    precisions = [p for p in a.precisions.split(",") if p]

    env = dict(os.environ)
    # osprey chooses its own OpenMP waiting when neither variable is set
    # (src/cli/main.c: passive with a short spin); the baseline sets its own
    result = {
        "kind": "service", "started_utc": stamp,
        "host": {"cpu": cpu_model(), "nproc": os.cpu_count(),
                 "kernel": platform.release()},
        "commit": git_commit(),
        "command": " ".join(shlex.quote(x) for x in sys.argv),
        "driver": driver.name,
        "settings": {k: getattr(a, k) for k in (
            "slo_ms", "cpus", "threads", "step_s", "steps", "fixed_s", "probe_s",
            "warmup_s", "probe_concurrency", "min_requests", "rounds", "baseline_variants", "connections", "timeout_ms", "quick",
            "serve_arg")},
        "loadavg_before": loadavg(), "models": {},
    }
    port = a.port_base

    def next_port():
        nonlocal port
        if a.port_base == 0:
            return free_port()
        port += 1
        return port - 1
    tables = []
    for m in models:
        model_file = os.path.join(a.models_dir, MODELS[m])
        if not os.path.exists(model_file):
            log(f"skipping {m}: {model_file} not found")
            result["models"][m] = {"skipped": f"{model_file} not found"}
            continue
        systems = []
        if not a.osprey_only:
            for variant in [v for v in a.baseline_variants.split(",") if v]:
                bport = next_port()
                sysname = "baseline" if variant == "eager" else f"baseline-{variant}"
                benv = dict(env, BASELINE_MODEL=m, BASELINE_THREADS=str(a.threads),
                            BASELINE_PORT=str(bport), OMP_NUM_THREADS=str(a.threads),
                            BASELINE_JIT="1" if variant == "jit" else "0")
                systems.append({"system": sysname, "precision": "fp32", "model": m,
                                "server": Server(
                                    f"{sysname}/{m}",
                                    ["taskset", "-c", a.cpus, a.python, BASELINE_APP,
                                     "--model", m, "--threads", str(a.threads),
                                     "--port", str(bport)],
                                    benv, bport, "/health",
                                    os.path.join(log_dir, f"{sysname}-{m}.log"))})
        for p in precisions:
            oport = next_port()
            systems.append({"system": "osprey", "precision": p, "model": m,
                            "server": Server(
                                f"osprey/{m}/{p}",
                                ["taskset", "-c", a.cpus, a.osprey, "serve",
                                 "--model", model_file, "--host", "127.0.0.1",
                                 "--port", str(oport), "--threads", str(a.threads),
                                 "--precision", p] + calib_args(a, p) + a.serve_arg,
                                env, oport, "/v2/health/ready",
                                os.path.join(log_dir, f"osprey-{m}-{p}.log"))})
        recs, fixed = bench.run_model(systems)
        rat = ratios(recs, 10.0, 0.2)
        result["models"][m] = {"model_file": model_file, "fixed_rates": fixed,
                               "systems": recs, "ratios": rat}
        tables += model_table(m, recs, a.slo_ms) + [""] + ratio_lines(m, rat) + [""]
    result["loadavg_after"] = loadavg()
    result["finished_utc"] = datetime.datetime.now(
        datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"Service benchmark {stamp} (driver: {driver.name}, SLO p99 ≤ "
          f"{a.slo_ms:g} ms, servers on CPUs {a.cpus} with {a.threads} threads, "
          f"load average {result['loadavg_before']} → {result['loadavg_after']})")
    print()
    print("\n".join(tables))
    log(f"wrote {out}; server logs in {log_dir}")
    failed = any("error" in r for v in result["models"].values()
                 for r in v.get("systems", []))
    return 1 if failed else 0


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def git_commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip() or None
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
