#!/usr/bin/env python3
"""kube-local-node.py — one Kubernetes node made of this machine's
processes, for running osprey's Kubernetes path end to end where there is
no kubelet (scripts/kube-local-stack.sh; `make scale-demo-k8s`).

A real API server and controller manager (scripts/kube-test-cluster.sh)
turn a Deployment's replicas into Pods; nothing would run them. This agent
does the part of a scheduler and a kubelet that osprey's path needs, through
the same API calls those components make:

  - registers a Node (status Ready, its InternalIP the host end of the test
    network) — the EndpointSlice controller skips pods whose node is unknown;
  - binds every unscheduled pod of the namespace (pods/binding, as the
    scheduler);
  - runs each bound pod's first container as a process: the image mapped to
    a local binary (--image NAME=PATH), the container's args, plus
    `--host POD_IP`; the process runs inside a network namespace where each
    pod has its own address (--pod-ips), because the API server refuses
    loopback addresses in EndpointSlices;
  - reports the pod Running with its podIP, and Ready only while the
    container's startupProbe / readinessProbe (httpGet) passes, at the
    probe's period — so the EndpointSlice controller, and through it the
    dispatcher, see exactly the pods that answer;
  - a pod being deleted: the preStop sleep, then SIGTERM (the worker
    drains), SIGKILL after terminationGracePeriodSeconds, then the final
    delete with grace 0, as the kubelet does once the containers are gone;
  - a container that exits on its own is restarted (restartPolicy Always).

It enforces no resources (no cgroups), mounts no volumes and runs no init
containers: the pod template must carry what the process needs in its args.
Standard library only. Stops (SIGTERM/SIGINT) by stopping its processes.
"""
import argparse
import datetime
import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(msg):
    print(f"{time.strftime('%H:%M:%S')} kube-local-node: {msg}", flush=True)


class Api:
    """The API server with a client certificate (the agent acts as node and
    scheduler; a kubelet's own credentials would be a node certificate)."""

    def __init__(self, url, ca, cert, key):
        self.url = url.rstrip("/")
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.load_cert_chain(cert, key)

    def call(self, method, path, body=None, ctype="application/json"):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": ctype})
        with urllib.request.urlopen(req, context=self.ctx, timeout=5) as r:
            return json.load(r)

    def patch_status(self, kind_path, status):
        return self.call("PATCH", kind_path + "/status", {"status": status},
                         "application/merge-patch+json")


class Pod:
    """What the agent knows of one pod it runs."""

    def __init__(self, obj, ip):
        self.name = obj["metadata"]["name"]
        self.ns = obj["metadata"]["namespace"]
        self.uid = obj["metadata"]["uid"]
        self.ip = ip
        spec = obj["spec"]
        self.c = spec["containers"][0]
        self.grace = spec.get("terminationGracePeriodSeconds", 30)
        self.proc = None
        self.restarts = 0
        self.ready = None          # last reported
        self.started = False       # the startupProbe passed (or there is none)
        self.next_probe = 0.0
        self.fails = 0
        self.term_at = None        # when SIGTERM is due (after preStop)
        self.kill_at = None
        self.log = None
        self.start_time = now_rfc3339()   # the pod's, kept across restarts

    @property
    def path(self):
        return f"/api/v1/namespaces/{self.ns}/pods/{self.name}"

    def port_of(self, port):
        if isinstance(port, int):
            return port
        for p in self.c.get("ports", []):
            if p.get("name") == port:
                return p["containerPort"]
        raise ValueError(f"{self.name}: no container port named {port}")


class Node:
    def __init__(self, o):
        self.o = o
        self.api = Api(o.api, o.ca, o.cert, o.key)
        self.images = dict(i.split("=", 1) for i in o.image)
        self.free_ips = list(o.pod_ips.split(","))
        self.pods = {}             # uid -> Pod
        self.stopping = False
        self.last_heartbeat = 0.0

    # ---- the node ----------------------------------------------------------
    def node_status(self):
        t = now_rfc3339()
        return {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "kube-local-node is posting ready status",
                            "lastHeartbeatTime": t, "lastTransitionTime": t}],
            "addresses": [{"type": "InternalIP", "address": self.o.host_ip},
                          {"type": "Hostname", "address": self.o.node}],
            "capacity": {"cpu": str(os.cpu_count()), "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": str(os.cpu_count()), "memory": "8Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": "kube-local-node", "operatingSystem": "linux",
                         "architecture": "amd64", "containerRuntimeVersion": "process://",
                         "kernelVersion": os.uname().release, "osImage": "", "kubeProxyVersion": "",
                         "machineID": "", "systemUUID": "", "bootID": ""},
        }

    def register(self):
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.o.node,
                             "labels": {"kubernetes.io/hostname": self.o.node,
                                        "kubernetes.io/os": "linux"}}}
        try:
            self.api.call("POST", "/api/v1/nodes", body)
        except urllib.error.HTTPError as e:
            if e.code != 409:      # already there from an earlier run
                raise
        self.api.patch_status(f"/api/v1/nodes/{self.o.node}", self.node_status())
        self.last_heartbeat = time.monotonic()
        log(f"node {self.o.node} registered (InternalIP {self.o.host_ip})")

    # ---- pods --------------------------------------------------------------
    def list_pods(self):
        q = urllib.parse.urlencode({"labelSelector": self.o.selector} if self.o.selector else {})
        return self.api.call("GET", f"/api/v1/namespaces/{self.o.namespace}/pods?{q}")["items"]

    def bind(self, obj):
        name = obj["metadata"]["name"]
        self.api.call("POST", f"/api/v1/namespaces/{self.o.namespace}/pods/{name}/binding",
                      {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                       "target": {"apiVersion": "v1", "kind": "Node", "name": self.o.node}})
        log(f"bound {name} to {self.o.node}")

    def report(self, p, ready):
        t = now_rfc3339()
        r = "True" if ready else "False"
        running = p.proc is not None and p.proc.poll() is None
        cstate = ({"running": {"startedAt": p.started_at}} if running else
                  {"waiting": {"reason": "ContainerCreating"}})
        self.api.patch_status(p.path, {
            "phase": "Running", "hostIP": self.o.host_ip, "hostIPs": [{"ip": self.o.host_ip}],
            "podIP": p.ip, "podIPs": [{"ip": p.ip}], "startTime": p.start_time,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
                {"type": "Initialized", "status": "True", "lastTransitionTime": t},
                {"type": "ContainersReady", "status": r, "lastTransitionTime": t},
                {"type": "Ready", "status": r, "lastTransitionTime": t}],
            "containerStatuses": [{"name": p.c["name"], "image": p.c.get("image", ""),
                                   "imageID": "", "ready": ready, "started": p.started,
                                   "restartCount": p.restarts, "state": cstate}]})
        if ready != p.ready:
            log(f"{p.name} ({p.ip}) ready={ready}")
        p.ready = ready

    def start(self, p):
        image = p.c.get("image", "")
        exe = self.images.get(image) or self.images.get(image.split(":")[0])
        if not exe:
            raise ValueError(f"{p.name}: image {image!r} is not mapped (--image NAME=PATH)")
        cmd = p.c.get("command") or []
        argv = [exe] + cmd[1:] + p.c.get("args", []) + ["--host", p.ip]
        if self.o.netns:
            argv = ["ip", "netns", "exec", self.o.netns] + argv
        if p.log is None:
            p.log = open(os.path.join(self.o.log_dir, f"{p.name}.log"), "ab")
        p.started_at = now_rfc3339()
        p.proc = subprocess.Popen(argv, stdout=p.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        p.started = "startupProbe" not in p.c
        p.fails = 0
        p.next_probe = time.monotonic() + 0.2
        log(f"{p.name}: started pid {p.proc.pid} on {p.ip} ({' '.join(argv[-6:])})")

    def probe(self, p):
        """The startupProbe until it passes, then the readinessProbe;
        httpGet only (what osprey's manifests use)."""
        pr = p.c.get("readinessProbe") if p.started else p.c.get("startupProbe")
        if not pr:
            return True
        g = pr["httpGet"]
        threshold = pr.get("failureThreshold", 3)
        p.next_probe = time.monotonic() + pr.get("periodSeconds", 10)
        try:
            conn = http.client.HTTPConnection(p.ip, p.port_of(g["port"]),
                                              timeout=pr.get("timeoutSeconds", 1))
            conn.request("GET", g.get("path", "/"))
            ok = 200 <= conn.getresponse().status < 400
            conn.close()
        except OSError:
            ok = False
        if not p.started:            # the startupProbe: not ready yet either way
            if ok:
                p.started = True         # readiness is probed from now on
                p.next_probe = time.monotonic()
            return False
        if ok:
            p.fails = 0
            return True
        p.fails += 1
        return False if p.fails >= threshold else bool(p.ready)

    def terminate(self, p, obj):
        """Deletion: preStop sleep, SIGTERM, SIGKILL after the grace period,
        then the pod object goes (grace 0: its containers are gone)."""
        now = time.monotonic()
        if p.term_at is None:
            pre = ((p.c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {})
            grace = obj["metadata"].get("deletionGracePeriodSeconds", p.grace)
            p.term_at = now + min(pre.get("seconds", 0), grace)
            p.kill_at = now + grace
            log(f"{p.name}: deleting (preStop {p.term_at - now:.0f} s, grace {grace} s)")
        alive = p.proc is not None and p.proc.poll() is None
        if alive and now >= p.kill_at:
            p.proc.kill()
            log(f"{p.name}: SIGKILL after the grace period")
        elif alive and p.term_at is not None and now >= p.term_at:
            p.proc.send_signal(signal.SIGTERM)
            p.term_at = float("inf")  # once
            log(f"{p.name}: SIGTERM")
        if p.proc is None or p.proc.poll() is not None:
            try:
                self.api.call("DELETE", p.path, {"apiVersion": "v1", "kind": "DeleteOptions",
                                                 "gracePeriodSeconds": 0,
                                                 "preconditions": {"uid": p.uid}})
            except urllib.error.HTTPError as e:
                if e.code not in (404, 409):
                    raise
            log(f"{p.name}: gone (exit {p.proc.returncode if p.proc else '-'})")
            self.forget(p)

    def forget(self, p):
        if p.ip:
            self.free_ips.append(p.ip)
        if p.log:
            p.log.close()
        del self.pods[p.uid]

    def step(self):
        if time.monotonic() - self.last_heartbeat > 10:
            self.api.patch_status(f"/api/v1/nodes/{self.o.node}", self.node_status())
            self.last_heartbeat = time.monotonic()
        seen = set()
        for obj in self.list_pods():
            md, spec = obj["metadata"], obj["spec"]
            uid = md["uid"]
            seen.add(uid)
            if not spec.get("nodeName"):
                if not md.get("deletionTimestamp"):
                    self.bind(obj)
                continue
            if spec["nodeName"] != self.o.node:
                continue
            p = self.pods.get(uid)
            if md.get("deletionTimestamp"):
                if p is None:   # never ran here: nothing to stop
                    p = Pod(obj, None)
                    self.pods[uid] = p
                self.terminate(p, obj)
                continue
            if p is None:
                if not self.free_ips:
                    log(f"{md['name']}: no free pod address; stays Pending")
                    continue
                p = Pod(obj, self.free_ips.pop(0))
                self.pods[uid] = p
                self.start(p)
                self.report(p, False)
                continue
            if p.proc.poll() is not None:        # exited on its own
                p.restarts += 1
                log(f"{p.name}: exited {p.proc.returncode}; restart {p.restarts}")
                self.start(p)
                self.report(p, False)
                continue
            if time.monotonic() >= p.next_probe:
                ready = bool(self.probe(p))
                if ready != p.ready:
                    self.report(p, ready)
        for uid in [u for u in self.pods if u not in seen]:   # deleted elsewhere
            p = self.pods[uid]
            if p.proc and p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
            self.forget(p)

    def stop(self):
        procs = [p.proc for p in self.pods.values() if p.proc and p.proc.poll() is None]
        for pr in procs:
            pr.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for pr in procs:
            try:
                pr.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pr.kill()
                pr.wait()
        log(f"stopped {len(procs)} process(es)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--api", required=True, help="API server URL")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True, help="client certificate (cluster admin)")
    ap.add_argument("--key", required=True)
    ap.add_argument("--node", default="osprey-local")
    ap.add_argument("--host-ip", required=True, help="the node's InternalIP")
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--selector", default="", help="label selector of the pods to run")
    ap.add_argument("--netns", default="", help="network namespace of the pods")
    ap.add_argument("--pod-ips", required=True, help="comma-separated pod addresses")
    ap.add_argument("--image", action="append", default=[], help="NAME=PATH (repeatable)")
    ap.add_argument("--log-dir", required=True)
    ap.add_argument("--interval", type=float, default=0.5)
    o = ap.parse_args()
    os.makedirs(o.log_dir, exist_ok=True)
    node = Node(o)
    signal.signal(signal.SIGTERM, lambda *_: setattr(node, "stopping", True))
    signal.signal(signal.SIGINT, lambda *_: setattr(node, "stopping", True))
    node.register()
    errors = 0
    while not node.stopping:
        try:
            node.step()
            errors = 0
        except (OSError, urllib.error.HTTPError, ValueError, KeyError) as e:
            errors += 1
            if errors in (1, 10) or errors % 100 == 0:
                log(f"step failed ({errors}x): {e}")
        time.sleep(o.interval)
    node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
