"""autoscale_lib.py — what the autoscaler's Python test drivers share
(autoscale_sources.py, autoscale_k8s_cli.py): child processes that are
always stopped, free loopback ports, JSON and /metrics reads, the
autoscaler's decision log lines, bounded waits. Standard library only."""
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request


class Checks:
    """check(cond, msg): prints ok/FAIL and remembers a failure (.ok)."""

    def __init__(self):
        self.ok = True

    def __call__(self, cond, msg):
        print(("ok: " if cond else "FAIL: ") + msg, flush=True)
        self.ok = self.ok and bool(cond)
        return cond


class Procs:
    """Children started by a driver; stop_all() (in a finally) ends every
    one still running, so a failed assertion leaves nothing behind."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, name, argv, env=None):
        log = os.path.join(self.tmp, name + ".log")
        p = subprocess.Popen(argv, stdout=open(log, "a"), stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
        p.log = log
        p.name = name
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p, sig=signal.SIGTERM, timeout=30):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p, signal.SIGKILL)


def free_port():
    """A free loopback port (bound, read, closed: the caller binds it next)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def request(method, url, body=None, timeout=2):
    """(status, text) of one request with an optional JSON body."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(url, name, **labels):
    """The value of one series on a /metrics page (0 when absent)."""
    text = urllib.request.urlopen(url + "/metrics", timeout=2).read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    key = f"{name}{{{want}}}" if want else name
    for line in text.splitlines():
        if line.split(" ")[0] == key:
            return float(line.split()[1])
    return 0.0


def wait_until(pred, timeout, every=0.25):
    """pred()'s first true value within timeout seconds, else None."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            v = pred()
        except OSError:
            v = None
        if v:
            return v
        time.sleep(every)
    return None


def log_lines(path):
    """The JSON lines of a log (other lines skipped)."""
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def listening_port(p, timeout=60):
    """The port of the process's first "listening" log line."""
    def find():
        for j in log_lines(p.log):
            if j.get("msg") == "listening":
                return j["port"]
        if p.poll() is not None:
            raise RuntimeError(f"{p.name} exited: {open(p.log).read()[-2000:]}")
        return None
    return wait_until(find, timeout, 0.1)


def epoch(ts):
    """A log line's "ts" (2026-01-02T03:04:05.678Z) in seconds since 1970."""
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def decisions(path):
    """The autoscaler's decision lines (--json-log), each with t (epoch s)
    and values {metric: value or None}."""
    out = []
    for j in log_lines(path):
        if j.get("msg") == "decision":
            j["t"] = epoch(j["ts"])
            j["values"] = {m["metric"]: m["value"] for m in j["metrics"]}
            out.append(j)
    return out


def warnings(path, msg_part):
    """The warn lines whose msg contains msg_part."""
    return [j for j in log_lines(path) if j.get("level") == "warn" and msg_part in j.get("msg", "")]


def rule_matches(decision, pattern):
    return decision is not None and re.match(pattern, decision.get("rule", "")) is not None
