#!/usr/bin/env python3
"""k8s_api_server.py — a stand-in Kubernetes API server for the dispatcher's
EndpointSlice discovery test. It serves real-API-shaped JSON for
  GET /apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices
      ?labelSelector=kubernetes.io/service-name={svc}            (LIST)
      &watch=1&resourceVersion=RV[&allowWatchBookmarks=true]     (WATCH)
(EndpointSliceList; watch = a chunked stream of {"type","object"} lines,
ERROR events carrying a Status with code 410 when RV is too old) and
requires "Authorization: Bearer <token>".

The test drives it through /ctl/* (JSON bodies):
  POST /ctl/set     {"name", "endpoints": [{"ip", "ready"|null}], "port"}
                    → ADDED/MODIFIED event to watchers
  POST /ctl/delete  {"name"} → DELETED event
  POST /ctl/expire  {"name", "endpoints", "port"} → changes the slice
                    WITHOUT an event, marks every older version expired and
                    sends ERROR 410 to open watches (the client must relist)
  GET  /ctl/stats   → {"lists", "watches", "watch_rvs", "unauthorized"}
Prints "PORT <n>" on stdout once listening."""
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NS, SVC, TOKEN = sys.argv[1], sys.argv[2], sys.argv[3]
LOCK = threading.Condition()
STATE = {"rv": 100, "expired_below": 0, "slices": {}, "events": [],
         "lists": 0, "watches": 0, "watch_rvs": [], "unauthorized": 0}


def slice_obj(name, spec, rv):
    return {
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {"name": name, "namespace": NS, "resourceVersion": str(rv),
                     "labels": {"kubernetes.io/service-name": SVC,
                                "endpointslice.kubernetes.io/managed-by":
                                    "endpointslice-controller.k8s.io"},
                     "ownerReferences": [{"kind": "Service", "name": SVC}]},
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": [e["ip"]],
             "conditions": ({} if e.get("ready", True) is None else
                            {"ready": e.get("ready", True),
                             "serving": e.get("ready", True),
                             "terminating": False}),
             "targetRef": {"kind": "Pod", "namespace": NS,
                           "name": "%s-%d" % (name, i)},
             "nodeName": "node-1"}
            for i, e in enumerate(spec["endpoints"])],
        "ports": [{"name": "http", "protocol": "TCP", "port": spec["port"]}],
    }


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send_json(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/ctl/stats":
            with LOCK:
                return self.send_json(200, {k: STATE[k] for k in
                                            ("lists", "watches", "watch_rvs",
                                             "unauthorized")})
        want = "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices" % NS
        if u.path != want or q.get("labelSelector") != ["kubernetes.io/service-name=" + SVC]:
            return self.send_json(404, {"kind": "Status", "code": 404,
                                        "message": "not found: " + self.path})
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            with LOCK:
                STATE["unauthorized"] += 1
            return self.send_json(401, {"kind": "Status", "code": 401,
                                        "reason": "Unauthorized"})
        if q.get("watch") == ["1"]:
            return self.watch(int(q.get("resourceVersion", ["0"])[0] or 0))
        with LOCK:
            STATE["lists"] += 1
            items = [slice_obj(n, s, s["rv"]) for n, s in STATE["slices"].items()]
            rv = STATE["rv"]
        self.send_json(200, {"kind": "EndpointSliceList",
                             "apiVersion": "discovery.k8s.io/v1",
                             "metadata": {"resourceVersion": str(rv)},
                             "items": items})

    def chunk(self, obj):
        b = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
        self.wfile.flush()

    def watch(self, rv):
        with LOCK:
            STATE["watches"] += 1
            STATE["watch_rvs"].append(rv)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            with LOCK:
                if rv < STATE["expired_below"]:
                    self.chunk({"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": "too old resource version: %d (%d)" % (rv, STATE["rv"]),
                        "reason": "Expired", "code": 410}})
                    self.wfile.write(b"0\r\n\r\n")
                    return
                seen = len(STATE["events"])
                # Events after rv that happened before this watch started.
                pending = [e for e in STATE["events"] if e[0] > rv]
            for e in pending:
                self.chunk(e[1])
            while True:
                with LOCK:
                    LOCK.wait_for(lambda: len(STATE["events"]) > seen, timeout=30)
                    new = STATE["events"][seen:]
                    seen = len(STATE["events"])
                    if not new:
                        break
                gone = False
                for e in new:
                    self.chunk(e[1])
                    gone = gone or e[1]["type"] == "ERROR"
                if gone:
                    break
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(n) or b"{}")
        with LOCK:
            STATE["rv"] += 1
            rv = STATE["rv"]
            name = body["name"]
            if self.path == "/ctl/set":
                kind = "MODIFIED" if name in STATE["slices"] else "ADDED"
                STATE["slices"][name] = {"endpoints": body["endpoints"],
                                         "port": body["port"], "rv": rv}
                STATE["events"].append((rv, {"type": kind, "object":
                                             slice_obj(name, STATE["slices"][name], rv)}))
            elif self.path == "/ctl/delete":
                s = STATE["slices"].pop(name)
                STATE["events"].append((rv, {"type": "DELETED",
                                             "object": slice_obj(name, s, rv)}))
            elif self.path == "/ctl/expire":
                STATE["slices"][name] = {"endpoints": body["endpoints"],
                                         "port": body["port"], "rv": rv}
                STATE["expired_below"] = rv
                STATE["events"].append((rv, {"type": "ERROR", "object": {
                    "kind": "Status", "apiVersion": "v1", "status": "Failure",
                    "message": "too old resource version", "reason": "Expired",
                    "code": 410}}))
            else:
                return self.send_json(404, {})
            LOCK.notify_all()
        self.send_json(200, {"rv": rv})


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
print("PORT", srv.server_address[1], flush=True)
srv.serve_forever()
