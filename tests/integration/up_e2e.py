#!/usr/bin/env python3
"""up_e2e.py — the driver of up_e2e.sh (see there): starts `osprey up`,
runs the step load, watches the autoscaler's /status every 0.25 s, kills a
worker, freezes Prometheus, stops the stack, and checks. Standard library
only (tests/integration/lib/autoscale_lib.py)."""
import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from autoscale_lib import Checks, decisions, get_json, wait_until  # noqa: E402

SLO_P99_MS = 500  # docs/operations.md, "SLOs"


def alive(pid):
    """True when pid runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stack_processes(state):
    """[(pid, cmdline)] of every process carrying OSPREY_STACK=state."""
    out, key = [], ("OSPREY_STACK=" + state).encode()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if key not in f.read().split(b"\0"):
                    continue
            if not alive(d):
                continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                out.append((int(d), f.read().replace(b"\0", b" ").decode()[:120]))
        except OSError:
            pass
    return out


class _Charts(HTMLParser):
    """Each <svg>'s <title> and its longest polyline; raises on an
    unbalanced tag (void and self-closed SVG elements aside)."""
    VOID = {"meta", "br", "rect", "line", "polyline", "path", "circle", "img", "hr", "link"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.charts, self.in_title = [], [], False

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self.charts.append(["", 0])
        elif tag == "polyline" and self.charts:
            pts = len(dict(attrs).get("points", "").split())
            self.charts[-1][1] = max(self.charts[-1][1], pts)
        elif tag == "title" and self.charts:
            self.in_title = True
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        saved = list(self.stack)
        self.handle_starttag(tag, attrs)
        self.stack = saved

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            raise ValueError(f"unbalanced </{tag}> at {self.getpos()}")
        self.stack.pop()
        self.in_title = self.in_title and tag != "title"

    def handle_data(self, data):
        if self.in_title:
            self.charts[-1][0] += data


def report_charts(path):
    p = _Charts()
    p.feed(open(path, encoding="utf-8").read())
    p.close()
    if p.stack:
        raise ValueError(f"unclosed tags: {p.stack}")
    return [tuple(c) for c in p.charts]


def main():
    ap = argparse.ArgumentParser()
    for a in ("osprey", "model", "image", "tmp", "state"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--scale", type=int, default=1)
    o = ap.parse_args()
    check = Checks()
    # Profile (requests/s): low, high (3 workers at 20/s each), low.
    low, high, tail = 8 // o.scale, 56 // o.scale, 4 // o.scale
    step_at, high_s, tail_s = 15, 45, 70
    tail_at = step_at + high_s
    freeze_at, thaw_at = tail_at + 2, tail_at + 25

    up_out = os.path.join(o.tmp, "up.out")
    up = subprocess.Popen(
        [o.osprey, "up", "--model", o.model, "--workers", "1:3", "--state-dir", o.state,
         "--port", "0", "--admin-port", "0", "--autoscaler-port", "0",
         "--prometheus-port", "0", "--alertmanager-port", "0", "--scrape-interval-s", "1",
         "--worker-args", "--threads 1",
         "--autoscale-args", f"--oversubscribe --json-log --metric rps={20 // o.scale} "
                             "--period-s 3 --rate-window-s 3 --scale-down-window-s 10 "
                             "--stable-window-s 10"],
        stdout=open(up_out, "w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    stack_json = os.path.join(o.state, "stack.json")
    try:
        t_start = time.monotonic()
        if not wait_until(lambda: os.path.exists(stack_json) or up.poll() is not None, 240):
            print("FAIL: osprey up not ready within 240 s")
            return 1
        if up.poll() is not None:
            print(f"FAIL: osprey up exited {up.returncode}: {open(up_out).read()[-3000:]}")
            return 1
        print(f"osprey up ready in {time.monotonic() - t_start:.1f} s")
        stack = json.load(open(stack_json))
        ports, pids = stack["ports"], stack["pids"]
        check("prometheus" in pids and "alertmanager" in pids, f"Prometheus and Alertmanager run: {pids}")
        disp = f"http://127.0.0.1:{ports['dispatcher']}"
        auto = f"http://127.0.0.1:{ports['autoscaler']}"
        prom = f"http://127.0.0.1:{ports['prometheus']}"
        out = os.path.join(o.state, "load")
        load = subprocess.Popen(
            [o.osprey, "load", "--url", disp, "--images", o.image, "--quiet",
             "--profile", f"{low}:{step_at}s,{high}:{high_s}s,{tail}:{tail_s}s",
             "--out", out, "--timeout-ms", "30000"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(o.tmp, "load.log"), "w"))
        t0, t0_unix = time.monotonic(), time.time()
        samples, killed, frozen, pids_seen = [], None, None, set()
        while load.poll() is None:
            t = time.monotonic() - t0
            if up.poll() is not None:
                print(f"FAIL: osprey up exited mid-run ({up.returncode})")
                return 1
            try:
                st = get_json(auto + "/status")
            except OSError as e:
                print(f"FAIL: autoscaler /status at {t:.1f} s: {e}")
                return 1
            workers = st.get("workers") or []
            ready = [w for w in workers if w["state"] == "ready"]
            pids_seen.update(w["pid"] for w in workers)
            samples.append((t, len(ready), st["current"]))
            # kill -9 of one worker late in the high phase, once 2+ are ready.
            if killed is None and t > step_at + 30 and len(ready) >= 2:
                os.kill(ready[-1]["pid"], signal.SIGKILL)
                killed = t
                print(f"killed worker {ready[-1]['address']} (pid {ready[-1]['pid']}) at {t:.1f} s")
            if frozen is None and t > freeze_at:
                os.kill(pids["prometheus"], signal.SIGSTOP)
                frozen = (time.time(), t, st["current"])
                print(f"Prometheus stopped (SIGSTOP) at {t:.1f} s with {st['current']} workers")
            if frozen and len(frozen) == 3 and t > thaw_at:
                os.kill(pids["prometheus"], signal.SIGCONT)
                frozen = frozen + (time.time(), t)
                print(f"Prometheus continued (SIGCONT) at {t:.1f} s")
            time.sleep(0.25)
        if frozen and len(frozen) == 3:
            os.kill(pids["prometheus"], signal.SIGCONT)

        # ---- the checks ---------------------------------------------
        summary = json.load(open(os.path.join(out, "summary.json")))
        rows = list(csv.DictReader(open(os.path.join(out, "timeseries.csv"))))
        out3 = [t for t, r, _ in samples if t >= step_at and r >= 2]
        check(out3 and out3[0] - step_at <= 20,
              f"scale-out: 2+ ready workers {out3[0] - step_at:.1f} s after the step" if out3
              else "scale-out: never 2+ ready workers")
        peak = max(r for _, r, _ in samples)
        full = [t for t, r, _ in samples if t >= step_at and r >= peak]
        print(f"peak: {peak} ready workers, first at {full[0] - step_at:.1f} s after the step")
        # p99 after the scale-out: each second's p99 from 2 s after the
        # peak count was first reached until the kill (or the high phase's end).
        p_from = int(full[0]) + 2
        p_to = int(killed) if killed else tail_at
        p99s = [float(r["p99_ms"]) for r in rows
                if p_from <= int(r["second"]) < p_to and int(r["completed"]) > 0]
        worst = max(p99s) if p99s else float("nan")
        check(p99s and worst <= SLO_P99_MS,
              f"p99 after the scale-out (seconds {p_from}-{p_to}, worst second's p99): "
              f"{worst:.1f} ms <= {SLO_P99_MS} ms")
        errors = summary.get("errors", -1) + summary.get("unfinished", 0)
        check(errors == 0 and summary.get("completed", 0) > 0,
              f"{summary.get('completed')} requests, {errors} failed or unfinished "
              f"(p99 {summary.get('p99_ms')} ms over the whole run)")
        check(killed is not None, "a worker was killed with kill -9 mid-run (0 failed requests above)")
        # Prometheus stopped: no scale-down while it was, and the decisions say held.
        ds = decisions(os.path.join(o.state, "autoscaler.log"))
        if frozen and len(frozen) == 5:
            during = [d for d in ds if frozen[0] <= d["t"] <= frozen[3]]
            cur = [c for t, _, c in samples if frozen[1] <= t <= frozen[4]]
            held = [d for d in during if d.get("held") and "no data" in d.get("rule", "")]
            check(cur and min(cur) >= frozen[2],
                  f"Prometheus stopped: no scale-down ({frozen[2]} workers, then {sorted(set(cur))})")
            check(held, f"Prometheus stopped: the autoscaler says so: "
                        f"{held[-1]['rule'] if held else [d.get('rule') for d in during]}")
        else:
            check(False, "Prometheus was stopped and continued mid-run")
        end = [c for t, _, c in samples if t > thaw_at + 5]
        check(end and end[-1] == 1 and frozen and frozen[2] > 1,
              f"scale-in after the window: {frozen[2] if frozen else '?'} → "
              f"{end[-1] if end else '?'} worker(s) once the load fell and Prometheus was back")
        # The workers were scraped through osprey up's file_sd.
        q = get_json(prom + "/api/v1/query?query=count(up%7Bjob%3D%22osprey-worker%22%7D%3D%3D1)")
        res = q["data"]["result"]
        check(res and float(res[0]["value"][1]) >= 1, f"Prometheus scrapes the workers (file_sd): {res}")

        # ---- the report of the run ----------------------------------
        # `osprey report` from the load's time series and the stack's
        # Prometheus: the HTML parses (every tag balanced), its charts
        # have data, the Markdown has the profile's three levels.
        rep = os.path.join(o.state, "report")
        r = subprocess.run([o.osprey, "report", "--timeseries", out, "--prometheus", prom,
                            "--from", str(int(t0_unix) - 5), "--to", str(int(time.time()) + 1),
                            "--levels", f"{low}:{step_at}s,{high}:{high_s}s,{tail}:{tail_s}s",
                            "--load-start", f"{t0_unix:.3f}", "--out", rep,
                            "--source-note", "osprey up (local stack), up_e2e"],
                           capture_output=True, text=True, timeout=120)
        check(r.returncode == 0, f"osprey report exits 0 ({r.returncode}: {r.stderr.strip()[-300:]})")
        if r.returncode == 0:
            charts, md = report_charts(os.path.join(rep, "report.html")), \
                open(os.path.join(rep, "report.md"), encoding="utf-8").read()
            empty = [t for t, pts in charts if pts < 10]
            check(len(charts) == 7 and not empty,
                  f"report.html: {len(charts)} charts, each with 10+ points "
                  f"(too few: {empty})")
            levels = re.findall(r"^\| L(\d+) \|", md, re.M)
            check(levels == ["1", "2", "3"], f"report.md: the three load levels ({levels})")
            print(f"report: {rep}/report.html")

        # ---- the stop -----------------------------------------------
        up.send_signal(signal.SIGTERM)
        t_stop = time.monotonic()
        try:
            rc = up.wait(120)
        except subprocess.TimeoutExpired:
            rc = None
        took = time.monotonic() - t_stop
        check(rc == 0, f"osprey up exits 0 after SIGTERM (rc {rc}, {took:.1f} s)")
        wait_until(lambda: not stack_processes(o.state), 10)
        left = stack_processes(o.state)
        check(not left, f"after SIGTERM: no process of the stack left ({left})")
        check(not [p for p in pids_seen if alive(p)],
              f"after SIGTERM: none of the {len(pids_seen)} workers seen is alive")
        # kill -9 of `osprey up` itself: its children get SIGTERM from the
        # kernel (PR_SET_PDEATHSIG), the autoscaler's workers the same way.
        state2 = o.state + ".kill9"
        up2 = subprocess.Popen(
            [o.osprey, "up", "--model", o.model, "--workers", "1:1", "--state-dir", state2,
             "--port", "0", "--admin-port", "0", "--autoscaler-port", "0",
             "--prometheus-port", "0", "--alertmanager-port", "0"],
            stdout=open(os.path.join(o.tmp, "up2.out"), "w"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        ready2 = wait_until(lambda: os.path.exists(os.path.join(state2, "stack.json"))
                            or up2.poll() is not None, 120)
        n2 = len(stack_processes(state2))
        up2.kill()
        up2.wait()
        gone = wait_until(lambda: not stack_processes(state2), 60)
        check(ready2 and n2 >= 5 and gone,
              f"kill -9 of osprey up: its {n2} processes (dispatcher, autoscaler, worker, "
              f"Prometheus, Alertmanager) all gone ({stack_processes(state2)} left)")
        print(f"load time series: {os.path.join(out, 'timeseries.csv')}")
        print(f"samples: {len(samples)}, first/last: {samples[0]} {samples[-1]}")
        return 0 if check.ok else 1
    finally:
        if up.poll() is None:
            up.kill()  # osprey up's children follow it (PR_SET_PDEATHSIG)
            up.wait()


if __name__ == "__main__":
    sys.exit(main())
