#!/usr/bin/env python3
"""autoscale_sources.py — the driver of autoscale_sources.sh (see there for
what is asserted and why). Phase 1 compares the embedded source with the
Prometheus source on the same live data; phase 2 stops Prometheus, then
the dispatcher, and starts them again; a third autoscaler sends a bad
--query all along. Standard library only."""
import argparse
import math
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from autoscale_lib import (Checks, Procs, decisions, free_port, get_json, listening_port,  # noqa: E402
                           metric, request, rule_matches, wait_until, warnings)

PERIOD_S = 5        # both autoscalers' decision period
RATE_WINDOW_S = 3   # Prometheus's rate() window: 3 scrapes at 1 s
TICK_S = 1          # both read their source once a second
# Every series both sources compute from changes over (T - PERIOD - 1, T]
# for the embedded source (the per-tick deltas averaged over the period)
# and over (T - PERIOD - RATE_WINDOW - 1, T] for Prometheus (rates over the
# window, a scrape up to 1 s old): after a step in the load, decisions agree
# once both windows lie on the new level.
SETTLE_S = PERIOD_S + RATE_WINDOW_S + 2
PRE_LOAD_S = 8      # both have data (Prometheus: 3+ scrapes) before the load


def prometheus_start(procs, o, port, target):
    cfg = os.path.join(o.tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
                "scrape_configs:\n"
                "  - job_name: osprey-dispatch\n"
                f"    static_configs: [{{targets: ['{target}']}}]\n")
    p = procs.start("prometheus", [
        o.prometheus, "--config.file=" + cfg,
        "--storage.tsdb.path=" + os.path.join(o.tmp, "prometheus-data"),
        f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h"])
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: request("GET", url + "/-/ready")[0] == 200, 60):
        raise RuntimeError("Prometheus not ready: " + open(p.log).read()[-2000:])
    return p, url


def autoscaler(procs, o, name, *flags):
    p = procs.start(name, [o.osprey, "autoscale", "--dispatcher", o.admin, "--port", "0",
                           "--json-log", *flags])
    port = listening_port(p)
    if not port:
        raise RuntimeError(f"{name} did not start: " + open(p.log).read()[-2000:])
    return p, f"http://127.0.0.1:{port}"


def close(a, b, rel, absolute):
    return a is not None and b is not None and abs(a - b) <= max(rel * max(abs(a), abs(b)), absolute)


def compare(check, da, db, steps):
    """Pairs the two logs' decisions by time (within one tick) and checks
    them outside the settling time after each step."""
    def settling(t):
        return any(s <= t < s + SETTLE_S for s in steps)
    compared, ratios = 0, []
    for mine, theirs, name in ((da, db, "embedded"), (db, da, "prometheus")):
        for d in mine:
            if settling(d["t"]) or not (steps[0] - 2 * PERIOD_S <= d["t"] < steps[-1] - TICK_S):
                continue
            other = min(theirs, key=lambda x: abs(x["t"] - d["t"]), default=None)
            if not check(other and abs(other["t"] - d["t"]) <= TICK_S + 0.3,
                         f"{name} decision at {d['t'] - steps[0]:+.1f} s has a partner within one tick"):
                continue
            if name == "prometheus":
                continue  # the pair was checked from the embedded side
            compared += 1
            va, vb = d["values"], other["values"]
            check(d["desired"] == other["desired"] and d["held"] == other["held"],
                  f"at {d['t'] - steps[0]:+.1f} s: desired {d['desired']} (held {d['held']}) vs "
                  f"{other['desired']} (held {other['held']}); rps {va['rps']} vs {vb['rps']}")
            if not d["held"]:
                # Rates: counts of evenly spaced requests over ~5 s vs
                # Prometheus's extrapolated rate() (see autoscale_sources.sh).
                check(close(va["rps"], vb["rps"], 0.06, 0.5),
                      f"  rps {va['rps']:.2f} vs {vb['rps']:.2f} within 6% (or 0.5/s)")
                # p95: interpolated in the same buckets, but the embedded
                # source's is over 1 s of requests (6 at the low level: the
                # slowest of them sets it) and Prometheus's over 3 s; one
                # slow request on a busy machine moves one side alone. So:
                # each within a factor of 4, their median within 1.5.
                pa, pb = va["latency-p95"], vb["latency-p95"]
                ratio = max(pa, pb) / max(min(pa, pb), 1e-9) if pa and pb else math.inf
                ratios.append(ratio)
                check(ratio <= 4, f"  p95 {pa} vs {pb} ms within a factor of 4")
    check(compared >= 8, f"{compared} decisions compared outside the settling times (8+)")
    ratios.sort()
    median = ratios[len(ratios) // 2] if ratios else math.inf
    check(median <= 1.5, f"median p95 ratio {median:.2f} (≤ 1.5) over {len(ratios)} decisions")


def phase1(procs, o, check, prom_url):
    """Two dry runs side by side on the same data; a load with three levels."""
    s = o.scale
    common = ["--dry-run", "--oversubscribe", "--min", "1", "--max", "40", "--panic=false",
              "--metric", f"rps={4 / s:g}", "--metric", "latency-p95=10000",
              "--period-s", str(PERIOD_S), "--tick-s", str(TICK_S), "--scale-down-window-s", "0",
              # No rate limit: the comparison is of the sources, not of
              # the behavior (from 1 replica the default allows 5).
              "--behavior", '{"scaleUp":{"policies":[{"type":"Pods","value":100,"periodSeconds":1}]}}']
    a, _ = autoscaler(procs, o, "embedded", *common)
    b, b_url = autoscaler(procs, o, "prom", *common, "--prometheus", prom_url,
                          "--rate-window-s", str(RATE_WINDOW_S))
    time.sleep(PRE_LOAD_S)
    # rps/target = 1.5, 7.5, 3.5: half a replica from a rounding edge, so a
    # value off by less than 2/s (7%) gives the same count.
    levels, lengths = [6 // s, 30 // s, 14 // s], [20, 22, 22]
    t_load = time.time()
    load = procs.start("load1", [o.osprey, "load", "--url", o.dispatch, "--images", o.image,
                                 "--profile", ",".join(f"{r}:{d}s" for r, d in zip(levels, lengths)),
                                 "--timeout-ms", "10000", "--json"])
    load.wait(sum(lengths) + 60)
    time.sleep(2 * TICK_S)  # the other's decision at the same time is logged
    Procs.stop(a)
    steps = [t_load]
    for d in lengths:
        steps.append(steps[-1] + d)
    da, db = decisions(a.log), decisions(b.log)
    print(f"decisions: embedded {len(da)}, prometheus {len(db)}")
    for d in da:
        print(f"  embedded {d['t'] - t_load:+6.1f} s desired {d['desired']:2d} rps {d['values']['rps']}")
    for d in db:
        print(f"  prometheus {d['t'] - t_load:+6.1f} s desired {d['desired']:2d} rps {d['values']['rps']}")
    compare(check, da, db, steps)
    return b, b_url


def last(url):
    return get_json(url + "/status").get("last_decision") or {}


def held_no_data(url, metric_name):
    d = last(url)
    return d if rule_matches(d, rf"held: no data for {metric_name}") else None


def recovered(url, metric_name):
    d = last(url)
    vals = {m["metric"]: m["value"] for m in d.get("metrics", [])}
    return d if not d.get("held") and isinstance(vals.get(metric_name), float) else None


def fault_prometheus(procs, o, check, prom, prom_port, b_url):
    e0 = metric(b_url, "osprey_autoscaler_errors_total", source="prometheus")
    Procs.stop(prom)
    # Held once no sample is younger than 2 periods (the last value bridges
    # a shorter gap), at the next decision; failing reads back off.
    d = wait_until(lambda: held_no_data(b_url, "rps"), 4 * PERIOD_S + 5)
    check(d, f"Prometheus stopped: the Prometheus source holds: {d and d['rule']}")
    e1 = metric(b_url, "osprey_autoscaler_errors_total", source="prometheus")
    check(e1 > e0, f"errors_total{{source=prometheus}} grew: {e0:g} → {e1:g}")
    prom, _ = prometheus_start(procs, o, prom_port, o.admin.split("//")[1])
    d = wait_until(lambda: recovered(b_url, "rps"), 4 * PERIOD_S + 10)
    check(d, f"Prometheus back: decisions from data again: {d and d['rule']}")
    return prom


def fault_dispatcher(procs, o, check, c_url):
    """The dispatcher killed and started again on the same ports: C (a real
    local autoscaler) holds its 2 workers, then registers them again."""
    e0 = metric(c_url, "osprey_autoscaler_errors_total", source="dispatcher")
    os.kill(o.dispatch_pid, signal.SIGKILL)
    d = wait_until(lambda: held_no_data(c_url, "rps"), 15)
    check(d, f"dispatcher stopped: the embedded source holds: {d and d['rule']}")
    # Stay down a few more periods: the count must not fall on no data.
    counts = []
    for _ in range(12):
        st = get_json(c_url + "/status")
        counts.append((st["current"], st["desired"]))
        time.sleep(0.5)
    check(all(c == 2 and dd == 2 for c, dd in counts),
          f"held 2 replicas while the dispatcher was down (current, desired: {sorted(set(counts))})")
    e1 = metric(c_url, "osprey_autoscaler_errors_total", source="dispatcher")
    check(e1 > e0, f"errors_total{{source=dispatcher}} grew: {e0:g} → {e1:g}")
    d_port = o.dispatch.rsplit(":", 1)[1]
    a_port = o.admin.rsplit(":", 1)[1]
    procs.start("dispatch2", [o.osprey, "dispatch", "--host", "127.0.0.1", "--port", d_port,
                              "--admin-port", a_port, "--health-interval-ms", "200"])
    def both_ready():
        bs = get_json(o.admin + "/admin/backends")
        return bs if len(bs) == 2 and all(b["state"] == "ready" for b in bs) else None
    workers = wait_until(both_ready, 30)
    check(workers, f"dispatcher back: the 2 workers registered again: {[b['address'] for b in workers or []]}")
    d = wait_until(lambda: recovered(c_url, "rps"), 20)
    check(d, f"dispatcher back: decisions from data again: {d and d['rule']}")


def main():
    ap = argparse.ArgumentParser()
    for a in ("osprey", "prometheus", "dispatch", "admin", "worker", "model", "image", "tmp"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--dispatch-pid", type=int, required=True)
    ap.add_argument("--scale", type=int, default=1)
    o = ap.parse_args()
    check = Checks()
    procs = Procs(o.tmp)
    try:
        status, _ = request("POST", o.admin + "/admin/backends", {"address": o.worker})
        if not check(status // 100 == 2, f"worker {o.worker} registered ({status})"):
            return 1
        wait_until(lambda: any(b["state"] == "ready" for b in get_json(o.admin + "/admin/backends")), 10)
        prom_port = free_port()
        prom, prom_url = prometheus_start(procs, o, prom_port, o.admin.split("//")[1])
        # A bad PromQL all along: each read is an error, counted and logged.
        bad, bad_url = autoscaler(procs, o, "badquery", "--dry-run", "--prometheus", prom_url,
                                  "--query", "sum(rate(osprey_dispatch_requests_total[5s])",
                                  "--target", "1", "--period-s", "2")
        b, b_url = phase1(procs, o, check, prom_url)

        n = metric(bad_url, "osprey_autoscaler_errors_total", source="prometheus")
        logged = warnings(bad.log, "cannot read or act")
        check(n >= 3 and logged and "parse error" in logged[0].get("error", ""),
              f"bad --query: {n:g} Prometheus errors counted; logged: {logged[0].get('error') if logged else None}")
        d = last(bad_url)
        check(rule_matches(d, "held: no data for query"), f"bad --query: held: {d.get('rule')}")
        Procs.stop(bad)

        # Phase 2: a real local autoscaler (C) runs 2 workers of its own.
        request("DELETE", o.admin + "/admin/backends", {"address": o.worker})
        c, c_url = autoscaler(procs, o, "local", "--oversubscribe", "--min", "1", "--max", "2",
                              "--metric", f"rps={10 / o.scale:g}", "--period-s", "2",
                              "--scale-down-window-s", "0", "--panic=false",
                              "--worker-args", f"--model {o.model} --threads 1")
        procs.start("load2", [o.osprey, "load", "--url", o.dispatch, "--images", o.image,
                              "--rate", str(30 // o.scale), "--duration", "120s",
                              "--timeout-ms", "2000"])
        two = wait_until(lambda: get_json(c_url + "/status")["current"] == 2 and
                         sum(w["state"] == "ready" for w in get_json(c_url + "/status")["workers"]) == 2, 40)
        if not check(two, "the local autoscaler runs 2 ready workers under load"):
            return 1
        prom = fault_prometheus(procs, o, check, prom, prom_port, b_url)
        fault_dispatcher(procs, o, check, c_url)
        Procs.stop(c)
        Procs.stop(b)
    finally:
        procs.stop_all()
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
