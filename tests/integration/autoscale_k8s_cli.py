#!/usr/bin/env python3
"""autoscale_k8s_cli.py — the driver of autoscale_k8s_cli.sh (see there for
what is asserted and why): `osprey autoscale --k8s-deployment` against the
test cluster, the metric from a real dispatcher under `osprey load`, the
pods made ready as a kubelet would, the API server stopped mid-run.
Standard library only."""
import argparse
import datetime
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from autoscale_lib import (Checks, Procs, get_json, listening_port, metric, wait_until,  # noqa: E402
                           warnings)

LOW_S, HIGH_S, TAIL_S = 10, 30, 30


class Api:
    """The API server as cluster admin (client certificate), for what a
    kubelet and a human would do; the autoscaler uses its own token."""

    def __init__(self, url, cluster_dir):
        self.url = url
        self.ctx = ssl.create_default_context(cafile=os.path.join(cluster_dir, "ca.crt"))
        self.ctx.load_cert_chain(os.path.join(cluster_dir, "admin.crt"),
                                 os.path.join(cluster_dir, "admin.key"))

    def call(self, method, path, body=None):
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode() if body is not None else None,
            method=method, headers={"Content-Type": "application/merge-patch+json"})
        with urllib.request.urlopen(req, context=self.ctx, timeout=3) as r:
            return json.load(r)

    def deployment(self, name):
        return self.call("GET", f"/apis/apps/v1/namespaces/ml/deployments/{name}")


def kubelet(api, stop):
    """Marks each pod of web Running and Ready through pods/status, as the
    kubelet of a node running it would: there is no kubelet here, and the
    autoscaler (as the HPA) holds while no replica is ready."""
    while not stop.is_set():
        try:
            pods = api.call("GET", "/api/v1/namespaces/ml/pods?labelSelector=app%3Dweb")["items"]
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            for p in pods:
                conds = p.get("status", {}).get("conditions", [])
                if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                    continue
                api.call("PATCH", f"/api/v1/namespaces/ml/pods/{p['metadata']['name']}/status",
                         {"status": {"phase": "Running", "conditions": [
                             {"type": "Ready", "status": "True", "lastTransitionTime": now}]}})
        except OSError:
            pass  # the API server is down on purpose for a while
        stop.wait(0.5)


def autoscaler(procs, o, name, deployment, *flags):
    p = procs.start(name, [o.osprey, "autoscale", "--k8s-deployment", deployment,
                           "--kubeconfig", o.kubeconfig, "--dispatcher", o.admin,
                           "--port", "0", "--json-log", *flags])
    port = listening_port(p)
    if not port:
        raise RuntimeError(f"{name} did not start: " + open(p.log).read()[-2000:])
    return p, f"http://127.0.0.1:{port}"


def forbidden(check, procs, o):
    """The token may not touch `other`: the 403 is logged with the rule it
    lacks, and the autoscaler keeps running."""
    p, url = autoscaler(procs, o, "other", "ml/other", "--period-s", "2")
    logged = wait_until(lambda: [w for w in warnings(p.log, "cannot read or act")
                                 if "forbidden" in w.get("error", "")], 15)
    msg = logged[0]["error"] if logged else ""
    print(f"403 logged as: {msg}")
    check(logged and all(s in msg for s in ("deployments/scale", "resourceNames: [other]",
                                            "in namespace ml", "verbs: [get")),
          "the 403 on ml/other names the missing RBAC rule")
    time.sleep(3)
    n = metric(url, "osprey_autoscaler_errors_total", source="actuator")
    check(p.poll() is None and n >= 2,
          f"after the 403s it keeps running ({n:g} actuator errors counted, /status answers: "
          f"{get_json(url + '/status')['actuator']})")
    Procs.stop(p)


def main():
    ap = argparse.ArgumentParser()
    for a in ("osprey", "kubeconfig", "api", "cluster", "cluster-dir", "dispatch", "admin",
              "image", "tmp"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--scale", type=int, default=1)
    o = ap.parse_args()
    check = Checks()
    procs = Procs(o.tmp)
    api = Api(o.api, o.cluster_dir)
    stop = threading.Event()
    th = threading.Thread(target=kubelet, args=(api, stop), daemon=True)
    th.start()
    try:
        forbidden(check, procs, o)
        # rps per replica 10: the load 4 → 25 → 4 requests/s asks for 1 → 3 → 1.
        a, a_url = autoscaler(procs, o, "web", "ml/web", "--min", "1", "--max", "4",
                              "--metric", f"rps={10 / o.scale:g}", "--period-s", "2",
                              "--scale-down-window-s", "6", "--panic=false")
        lo, hi = 4 // o.scale, 25 // o.scale
        t0 = time.monotonic()
        load = procs.start("load", [o.osprey, "load", "--url", o.dispatch, "--images", o.image,
                                    "--profile", f"{lo}:{LOW_S}s,{hi}:{HIGH_S}s,{lo}:{TAIL_S}s",
                                    "--timeout-ms", "5000"])
        seen = []  # (t, spec.replicas, status.readyReplicas)
        api_down = None
        while load.poll() is None:
            t = time.monotonic() - t0
            try:
                d = api.deployment("web")
                seen.append((t, d["spec"]["replicas"], d["status"].get("readyReplicas", 0)))
            except OSError:
                pass
            # The API server stops once the scale-up is done — asked for and
            # its pods ready (else the outage races the readiness checked
            # below: on a busy machine the restart takes 20 s) — for 8 s.
            if api_down is None and seen and seen[-1][1] >= 3 and seen[-1][2] >= 3 and t > LOW_S:
                e0 = metric(a_url, "osprey_autoscaler_errors_total", source="actuator")
                held = seen[-1][1]
                subprocess.run([o.cluster, "apiserver-stop", o.cluster_dir], check=True)
                api_down = t
                time.sleep(8)
                e1 = metric(a_url, "osprey_autoscaler_errors_total", source="actuator")
                st = get_json(a_url + "/status")
                check(a.poll() is None and e1 > e0,
                      f"API server down 8 s: still running, {e1 - e0:g} actuator errors counted, "
                      f"/status answers (last decision: {st['last_decision']['rule']})")
                subprocess.run([o.cluster, "apiserver-start", o.cluster_dir], check=True)
                back = api.deployment("web")["spec"]["replicas"]
                check(back == held, f"API server back: spec.replicas is what it was ({held} → {back}: held)")
            time.sleep(0.5)
        for t, r, ready in seen:
            print(f"  {t:5.1f} s spec.replicas {r} ready {ready}")
        up = [t for t, r, _ in seen if r >= 3]
        check(up and 0 <= up[0] - LOW_S <= 20,
              f"scaled up to 3+ within 20 s of the step ({up[0] - LOW_S:.1f} s)" if up else
              "never scaled up to 3")
        check(max(r for _, r, _ in seen) <= 4, "never above --max 4")
        check(api_down is not None, "the API server was stopped mid-run")
        down = [t for t, r, _ in seen if t > LOW_S + HIGH_S and r == 1]
        check(down, f"back to 1 replica after the load fell ({down[0] - LOW_S - HIGH_S:.1f} s)" if down
              else f"not back to 1 (last {seen[-1]})")
        check(max(ready for _, _, ready in seen) >= 3,
              "readyReplicas followed (the pods made ready as a kubelet would)")
        dec = [j for j in (json.loads(x) for x in open(a.log) if x.startswith("{"))
               if j.get("msg") == "decision"]
        check(any(d["desired"] > d["current"] for d in dec) and any(d["desired"] < d["current"] for d in dec),
              f"decisions up and down logged ({len(dec)} decisions)")
        Procs.stop(a)
    finally:
        stop.set()
        procs.stop_all()
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
