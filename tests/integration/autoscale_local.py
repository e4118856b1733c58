#!/usr/bin/env python3
"""autoscale_local.py — the driver of autoscale_local.sh (see there): runs
the load, watches the autoscaler's /status and the dispatcher's admin API
every 0.25 s, kills one worker mid-run, stops the autoscaler, and checks.
Standard library only."""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request


def get(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.load(r)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purpose
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    for a in ("osprey", "dispatch", "admin", "autoscaler", "image", "tmp"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--autoscaler-pid", type=int, required=True)
    ap.add_argument("--scale", type=int, default=1)
    o = ap.parse_args()
    low, high, tail = 8 // o.scale, 56 // o.scale, 4 // o.scale
    step_at, high_s, tail_s = 15, 30, 45
    out = os.path.join(o.tmp, "load")
    load = subprocess.Popen(
        [o.osprey, "load", "--url", o.dispatch, "--images", o.image,
         "--profile", f"{low}:{step_at}s,{high}:{high_s}s,{tail}:{tail_s}s",
         "--out", out, "--timeout-ms", "30000"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(o.tmp, "load.log"), "w"))
    t0 = time.monotonic()
    samples, mismatches, killed, pids_seen = [], [], None, set()
    while load.poll() is None:
        t = time.monotonic() - t0
        try:
            st = get(o.autoscaler + "/status")
            be = get(o.admin + "/admin/backends")
        except OSError as e:
            print(f"FAIL: at {t:.1f} s: {e}")
            return 1
        ready = sorted(w["address"] for w in st.get("workers") or [] if w["state"] == "ready")
        listed = sorted(b["address"] for b in be if "admin" in b.get("sources", []))
        pids_seen.update(w["pid"] for w in st.get("workers") or [])
        samples.append((t, len(ready), st["current"], st["desired"]))
        if ready != listed:
            mismatches.append((t, ready, listed))
        # One SIGKILL mid-run, during the high phase, once 2+ are ready.
        if killed is None and t > step_at + 12 and len(ready) >= 2:
            victim = [w for w in st["workers"] if w["state"] == "ready"][-1]
            os.kill(victim["pid"], signal.SIGKILL)
            killed = (t, victim["address"])
            print(f"killed worker {victim['address']} (pid {victim['pid']}) at {t:.1f} s")
        time.sleep(0.25)
    summary = json.load(open(os.path.join(out, "summary.json")))
    metrics = urllib.request.urlopen(o.autoscaler + "/metrics", timeout=2).read().decode()
    ok = True

    def check(cond, msg):
        nonlocal ok
        print(("ok: " if cond else "FAIL: ") + msg)
        ok = ok and cond

    up = [t for t, r, _, _ in samples if t >= step_at and r >= 2]
    check(up and up[0] - step_at <= 20,
          f"2+ ready workers {up[0] - step_at:.1f} s after the step" if up else "never 2+ ready workers")
    check(max(r for _, r, _, _ in samples) <= 3, "never more than --max 3 ready")
    errors = summary.get("errors", -1) + summary.get("unfinished", 0)
    check(errors == 0 and summary.get("completed", 0) > 0,
          f"{summary.get('completed')} requests, {errors} failed or unfinished")
    end = [c for t, _, c, _ in samples if t > step_at + high_s + 25]
    check(end and end[-1] == 1, f"back to 1 worker after the load fell (last asked-for count {end[-1] if end else '?'})")
    # A mismatch may last one poll (the two reads are not atomic); two in a
    # row would be a real divergence.
    runs = [b for a, b in zip(mismatches, mismatches[1:]) if b[0] - a[0] < 0.6]
    check(not runs, f"dispatcher's backends = ready workers at every poll ({len(mismatches)} single-poll differences)")
    check(killed is not None, "a worker was killed mid-run")
    deaths = [l for l in metrics.splitlines() if l.startswith("osprey_autoscaler_worker_deaths_total")]
    check(deaths and float(deaths[0].split()[1]) == 1, f"the death was counted: {deaths}")
    # Stop: every worker process it started must be gone.
    os.kill(o.autoscaler_pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (alive(o.autoscaler_pid) or any(alive(p) for p in pids_seen)):
        time.sleep(0.2)
    left = [p for p in pids_seen if alive(p)]
    check(not alive(o.autoscaler_pid) and not left, f"after SIGTERM: no child left ({left})")
    print(f"samples: {len(samples)}, first/last: {samples[0]} {samples[-1]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
