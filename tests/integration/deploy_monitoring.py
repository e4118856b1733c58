#!/usr/bin/env python3
"""deploy_monitoring.py — the driver of deploy_monitoring.sh (see there for
what is asserted and why): real osprey processes, a real Prometheus running
the shipped config (targets rewritten to loopback) and rules, a real
Alertmanager with the shipped config, load, then every dashboard query,
every recording rule and every metric name checked against them.
Standard library + PyYAML (python3-yaml, which Prometheus-config users
have; the test skips without it)."""
import argparse
import glob
import json
import os
import re
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
from autoscale_lib import Checks, Procs, free_port, listening_port, log_lines, request, wait_until  # noqa: E402

try:
    import yaml
except ImportError:
    print("SKIP: PyYAML (python3-yaml) is not installed: the shipped Prometheus config cannot be rewritten")
    sys.exit(77)

LOAD_S = 30         # the load runs this long; the checks run during its second half
SETTLE_S = 15       # load before the first query: several 1 s scrapes and rule evaluations
# Names Prometheus makes itself (not in any /metrics page).
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}

# ---------------------------------------------------------------- PromQL names

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
            "or", "unless", "offset", "inf", "nan", "atan2"}
# Keywords followed by a parenthesised list of label names (not series).
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
TOKEN = re.compile(r"""
    (?P<ws>\s+) | (?P<comment>\#[^\n]*) |
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`) |
    (?P<range>\[[^\]]*\]) |
    (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:[smhdwy]|ms)?) |
    (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*) |
    (?P<brace>[{}]) | (?P<paren>[()]) | (?P<var>\$\{?\w+\}?) | (?P<op>[^\sa-zA-Z0-9_:])
""", re.X)


def promql_names(expr):
    """The series names an expression reads: identifiers that are not
    functions, aggregations, keywords, label names (inside {...} or in a
    by/on/... list) or numbers/durations. Raises on text it cannot read."""
    toks, pos = [], 0
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize PromQL at {expr[pos:pos + 20]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup not in ("ws", "comment"):
            toks.append((m.lastgroup, m.group()))
    names, i, depth_brace = set(), 0, 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1] if i + 1 < len(toks) else (None, None)
        if kind == "brace":
            depth_brace += 1 if text == "{" else -1
        elif depth_brace:
            pass  # label matchers: names and values
        elif kind == "ident":
            low = text.lower()
            if low in LABEL_LISTS and nxt == ("paren", "("):
                while i < len(toks) and toks[i] != ("paren", ")"):
                    i += 1
            elif low in KEYWORDS:
                pass
            elif nxt == ("paren", "(") or (nxt[0] == "ident" and nxt[1].lower() in ("by", "without")):
                pass  # a function, or an aggregation (its by/without clause first)
            else:
                names.add(text)
        i += 1
    return names


# ------------------------------------------------------------- shipped files

def rule_exprs(rule_files):
    """(records, [(where, expr)]) of the rule files."""
    records, exprs = set(), []
    for path in rule_files:
        for g in yaml.safe_load(open(path))["groups"]:
            for r in g["rules"]:
                if "record" in r:
                    records.add(r["record"])
                exprs.append((f"{os.path.basename(path)}: {r.get('record') or r.get('alert')}", r["expr"]))
    return records, exprs


def dashboard_exprs(path):
    """[(where, expr)] of a dashboard's panels and variable queries."""
    d = json.load(open(path))
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            out.append((f"{d['uid']}: {p['title']} {t['refId']}", t["expr"]))
    for v in d["templating"]["list"]:
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
        out.append((f"{d['uid']}: variable {v['name']}", m.group(1) if m else q))
    return out


def adapter_exprs(path):
    """[(where, expr)] of a prometheus-adapter config (plain or inside a
    ConfigMap): seriesQuery and metricsQuery of rules and externalRules,
    with the adapter's <<.Series>> templates dropped (the series is in
    seriesQuery). resourceRules read the kubelet's metrics: not checked."""
    out = []
    for doc in yaml.safe_load_all(open(path)):
        if not isinstance(doc, dict):
            continue
        configs = [doc]
        if doc.get("kind") == "ConfigMap":
            configs = [yaml.safe_load(v) for v in (doc.get("data") or {}).values()]
        for c in configs:
            if not isinstance(c, dict):
                continue
            if c.get("resourceRules"):
                print("note: the adapter's resourceRules read kubelet/cAdvisor metrics: not checked here")
            for kind in ("rules", "externalRules"):
                for i, r in enumerate(c.get(kind) or []):
                    for key in ("seriesQuery", "metricsQuery"):
                        if key in r:
                            e = re.sub(r"<<[^>]*>>", "", r[key])
                            out.append((f"adapter {kind}[{i}].{key}", e))
    return out


def unknown_names(exprs, defined):
    """{name: [where...]} of names read by exprs and not defined."""
    bad = {}
    for where, e in exprs:
        for n in promql_names(e):
            if n not in defined:
                bad.setdefault(n, []).append(where)
    return bad


# ------------------------------------------------------------------ processes

def start(procs, name, argv):
    p = procs.start(name, argv)
    port = listening_port(p)
    if not port:
        raise RuntimeError(f"{name} did not start: " + open(p.log).read()[-2000:])
    return p, port


def admin_port(p):
    for j in log_lines(p.log):
        if j.get("msg") == "listening" and "admin_port" in j:
            return j["admin_port"]
    raise RuntimeError("no admin_port in the dispatcher's log")


def prometheus_config(src, tmp, ports):
    """The shipped compose config with loopback targets, 1 s intervals and
    the rule files by absolute path: the same jobs, labels and rules."""
    cfg = yaml.safe_load(open(src))
    cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    base = os.path.dirname(src)
    cfg["rule_files"] = [os.path.join(base, f) for f in cfg["rule_files"]]
    seen = set()

    def rewrite(targets):
        out = []
        for t in targets:
            if t not in ports:
                raise RuntimeError(f"target {t} of {src} has no process in this test")
            seen.add(t)
            out.append(ports[t])
        return out
    for sc in cfg["scrape_configs"]:
        for st in sc["static_configs"]:
            st["targets"] = rewrite(st["targets"])
    for am in cfg["alerting"]["alertmanagers"]:
        for st in am["static_configs"]:
            st["targets"] = rewrite(st["targets"])
    if seen != set(ports):
        raise RuntimeError(f"targets not in {src}: {sorted(set(ports) - seen)}")
    path = os.path.join(tmp, "prometheus.yml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def cluster_config(src, tmp, rules, ports, pods):
    """The cluster config (kubernetes/prometheus.yml) with its
    kubernetes_sd_configs replaced by a file_sd_configs listing `pods`:
    targets carrying the __meta_kubernetes_* labels the pod role sets, so
    the shipped relabelling runs for real on them (Debian's Prometheus is
    built without the Kubernetes service discovery)."""
    cfg = yaml.safe_load(open(src))
    cfg["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    cfg["rule_files"] = rules
    sd = os.path.join(tmp, "pods.json")
    with open(sd, "w") as f:
        json.dump(pods, f)
    n_sd = 0
    for sc in cfg["scrape_configs"]:
        if sc.pop("kubernetes_sd_configs", None) is not None:
            sc["file_sd_configs"] = [{"files": [sd]}]
            n_sd += 1
        for st in sc.get("static_configs", []):
            st["targets"] = [ports[t] for t in st["targets"]]
    for am in cfg["alerting"]["alertmanagers"]:
        for st in am["static_configs"]:
            st["targets"] = [ports[t] for t in st["targets"]]
    if n_sd != 1:
        raise RuntimeError(f"{src}: {n_sd} kubernetes_sd_configs jobs, expected 1")
    path = os.path.join(tmp, "prometheus-k8s.yml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def pod(addr, name, component, port_name, part_of="osprey", phase="Running"):
    """One target as the pod role makes it (one per container port)."""
    labels = {"__meta_kubernetes_namespace": "osprey", "__meta_kubernetes_pod_name": name,
              "__meta_kubernetes_pod_phase": phase,
              "__meta_kubernetes_pod_container_port_name": port_name,
              "__meta_kubernetes_pod_label_app_kubernetes_io_part_of": part_of}
    if component:
        labels["__meta_kubernetes_pod_label_app_kubernetes_io_component"] = component
    return {"targets": [addr], "labels": labels}


def check_cluster(check, o, procs, mon, rule_files, addr):
    """Phase 2: the cluster config's relabelling on pod-role targets."""
    prom_port = free_port()
    pods = [pod(addr["worker1"], "worker-a", "worker", "http"),
            pod(addr["worker2"], "worker-b", "worker", "http"),
            pod(addr["dispatcher"], "dispatcher-a", "dispatcher", "http"),
            pod(addr["autoscaler"], "autoscaler-a", "autoscaler", "metrics"),
            # dropped: the dispatcher's admin port, a pending pod, another
            # app's pod, a pod without a component.
            pod(addr["admin"], "dispatcher-a", "dispatcher", "admin"),
            pod(addr["worker1"], "worker-c", "worker", "http", phase="Pending"),
            pod(addr["worker1"], "other-a", "worker", "http", part_of="other"),
            pod(addr["worker1"], "nocomp-a", None, "http")]
    ports = {"localhost:9090": f"127.0.0.1:{prom_port}", "alertmanager:9093": addr["alertmanager"]}
    cfg = cluster_config(os.path.join(mon, "kubernetes", "prometheus.yml"), o.tmp, rule_files, ports, pods)
    procs.start("prometheus-k8s", [o.prometheus, "--config.file=" + cfg,
                                   "--storage.tsdb.path=" + os.path.join(o.tmp, "prometheus-k8s-data"),
                                   f"--web.listen-address=127.0.0.1:{prom_port}"])
    url = f"http://127.0.0.1:{prom_port}"
    if not wait_until(lambda: request("GET", url + "/-/ready")[0] == 200, 60):
        raise RuntimeError("Prometheus (cluster config) not ready")

    def all_up():
        t = json.loads(request("GET", url + "/api/v1/targets", timeout=10)[1])["data"]
        return t if len(t["activeTargets"]) == 6 and all(x["health"] == "up" for x in t["activeTargets"]) else None
    t = wait_until(all_up, 20)
    check(t, "cluster config: 6 targets up (4 osprey pods, Prometheus, Alertmanager)")
    if not t:
        return
    got = sorted((x["labels"]["job"], x["labels"].get("component"), x["labels"].get("namespace"),
                  x["labels"].get("pod")) for x in t["activeTargets"] if x["labels"]["job"].startswith("osprey-"))
    want = sorted([("osprey-worker", "worker", "osprey", "worker-a"), ("osprey-worker", "worker", "osprey", "worker-b"),
                   ("osprey-dispatcher", "dispatcher", "osprey", "dispatcher-a"),
                   ("osprey-autoscaler", "autoscaler", "osprey", "autoscaler-a")])
    check(got == want, f"cluster config: relabelled job/component/namespace/pod {got}")
    check(len(t["droppedTargets"]) == 4, f"cluster config: {len(t['droppedTargets'])} targets dropped "
          "(admin port, Pending, other app, no component: 4)")
    # The shared rules give data on these labels too (after a few evaluations).
    records, _ = rule_exprs(rule_files)
    time.sleep(4)
    for r in sorted(records):
        check(query(url, r), f"cluster config: recording rule {r} has data")


def query(url, expr):
    st, body = request("GET", url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=10)
    j = json.loads(body)
    if st != 200 or j.get("status") != "success":
        raise RuntimeError(f"query {expr!r}: HTTP {st}: {j.get('error')}")
    return j["data"]["result"]


def scrape_names(urls):
    names = set()
    for u in urls:
        st, text = request("GET", u + "/metrics", timeout=5)
        assert st == 200, f"{u}/metrics: {st}"
        for line in text.splitlines():
            if line and not line.startswith("#"):
                names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group())
    return names


# --------------------------------------------------------------------- checks

def variable_values(url, d):
    """{var: [All value, first concrete value]} of a dashboard's variables,
    resolved as Grafana does (label_values → the label values API)."""
    out = {}
    for v in d["templating"]["list"]:
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"]["query"])
        st, body = request("GET", f"{url}/api/v1/label/{m.group(2)}/values?"
                           + urllib.parse.urlencode({"match[]": m.group(1)}), timeout=10)
        vals = sorted(json.loads(body)["data"]) if st == 200 else []
        out[v["name"]] = [v["allValue"]] + vals[:1]
    return out


def substitute(expr, values):
    for k, v in values.items():
        expr = expr.replace("${" + k + "}", v).replace("$" + k, v)
    return expr


def check_dashboards(check, url, paths):
    for path in paths:
        d = json.load(open(path))
        variables = variable_values(url, d)
        for k, vals in variables.items():
            check(len(vals) == 2, f"{d['uid']}: variable {k} has values: {vals[1:]}")
        choices = [{k: v[0] for k, v in variables.items()},
                   {k: v[-1] for k, v in variables.items()}]
        for p in d["panels"]:
            for t in p["targets"]:
                for values in choices:
                    expr = substitute(t["expr"], values)
                    res = query(url, expr)
                    nan = res and all(r["value"][1] == "NaN" for r in res)
                    check(res, f"{d['uid']}: '{p['title']}' {t['refId']} {values}: {len(res)} series"
                          + (" (NaN: no events in the window)" if nan else ""))
                    if not res:
                        print(f"      query: {expr}")


def check_rules(check, url, rule_files):
    st, body = request("GET", url + "/api/v1/rules", timeout=10)
    groups = json.loads(body)["data"]["groups"]
    loaded = {(g["name"], r["name"]): r for g in groups for r in g["rules"]}
    for path in rule_files:
        for g in yaml.safe_load(open(path))["groups"]:
            for r in g["rules"]:
                name = r.get("record") or r.get("alert")
                lr = loaded.get((g["name"], name))
                check(lr and lr["health"] == "ok",
                      f"rule {g['name']}/{name} loaded, health {lr and lr['health']} {lr and lr.get('lastError', '')}")
                if "record" in r:
                    res = query(url, r["record"])
                    check(res, f"recording rule {r['record']}: {len(res)} series")


def check_names(check, exprs, defined):
    bad = unknown_names(exprs, defined)
    for n, where in sorted(bad.items()):
        check(False, f"metric {n} is in no live scrape (used by {', '.join(where[:3])})")
    check(not bad, f"every metric name of {len(exprs)} expressions exists in a live scrape or a rule")
    return bad


def self_test(check, exprs, defined, tmp):
    """A typo must be caught: in a rule, a dashboard query and an adapter
    config (a ConfigMap-wrapped one written here)."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "adapter"},
          "data": {"config.yaml": yaml.safe_dump({
              "rules": [{"seriesQuery": 'osprey_inflight_requests{namespace!="",pod!=""}',
                         "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"}],
              "externalRules": [{"seriesQuery": "osprey_dispatch_inflights",
                                 "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>})"}]})}}
    path = os.path.join(tmp, "adapter.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cm, f)
    bad = unknown_names(adapter_exprs(path), defined)
    check(list(bad) == ["osprey_dispatch_inflights"], f"self-test: the typo in an adapter config is reported: {list(bad)}")
    # A copy of the first rule and the first dashboard query that read
    # osprey_requests_total, with a typo in the name.
    victims = [next(e for e in exprs if ".yml: " in e[0] and "osprey_requests_total" in e[1]),
               next(e for e in exprs if e[0].startswith("osprey-overview: ") and "osprey_requests_total" in e[1])]
    for where, e in victims:
        bad = unknown_names([(where, e.replace("osprey_requests_total", "osprey_request_total", 1))], defined)
        check(list(bad) == ["osprey_request_total"], f"self-test: a typo in a copy of {where} is reported: {list(bad)}")
    # The tokenizer drops what is not a series name.
    names = promql_names('sum by (model, le) (rate(a_b{model=~"x|y",le!="1"}[1m] offset 5m)) '
                         '/ on (instance) group_left (pod) max without (code) (c:d:e) > bool 0.5 '
                         'or label_replace(vector(1), "x", "$1", "y", "(.*)")')
    check(names == {"a_b", "c:d:e"}, f"self-test: tokenizer finds exactly the series {sorted(names)}")
    check(promql_names('osprey_queue_depth{model=~"$model"} / osprey_queue_capacity') ==
          {"osprey_queue_depth", "osprey_queue_capacity"}, "self-test: template variables are not names")


def main():
    ap = argparse.ArgumentParser()
    for a in ("osprey", "prometheus", "alertmanager", "model", "model-name", "image", "tmp", "src"):
        ap.add_argument("--" + a, required=True)
    o = ap.parse_args()
    mon = os.path.join(o.src, "deploy", "monitoring")
    rule_files = sorted(glob.glob(os.path.join(mon, "prometheus", "rules", "*.yml")))
    dashboards = sorted(glob.glob(os.path.join(mon, "grafana", "dashboards", "*.json")))
    adapter = os.path.join(o.src, "deploy", "kubernetes", "components", "hpa", "prometheus-adapter-config.yaml")
    check, procs = Checks(), Procs(o.tmp)
    t0 = time.monotonic()
    try:
        serve = [o.osprey, "serve", "--host", "127.0.0.1", "--port", "0", "--model", o.model, "--threads", "1"]
        workers = [start(procs, f"worker{i}", serve)[1] for i in (1, 2)]
        d, d_port = start(procs, "dispatcher", [o.osprey, "dispatch", "--host", "127.0.0.1", "--port", "0",
                                                "--admin-port", "0", "--health-interval-ms", "200"]
                          + [a for w in workers for a in ("--backend", f"127.0.0.1:{w}")])
        d_admin = admin_port(d)
        # A dry run observes the dispatcher's workers and exports every
        # autoscaler metric without starting any.
        _, a_port = start(procs, "autoscaler", [
            o.osprey, "autoscale", "--dispatcher", f"http://127.0.0.1:{d_admin}", "--dry-run",
            "--port", "0", "--json-log", "--period-s", "2", "--min", "1", "--max", "4",
            "--oversubscribe", "--metric", "rps=5"])
        am_port, prom_port = free_port(), free_port()
        am_dir = os.path.join(o.tmp, "alertmanager")
        os.makedirs(am_dir)
        procs.start("alertmanager", [
            o.alertmanager, "--config.file=" + os.path.join(mon, "alertmanager", "alertmanager.yml"),
            "--storage.path=" + am_dir, f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address="])
        ports = {"worker1:8080": f"127.0.0.1:{workers[0]}", "worker2:8080": f"127.0.0.1:{workers[1]}",
                 "dispatcher:8000": f"127.0.0.1:{d_port}", "autoscaler:8002": f"127.0.0.1:{a_port}",
                 "alertmanager:9093": f"127.0.0.1:{am_port}", "localhost:9090": f"127.0.0.1:{prom_port}"}
        cfg = prometheus_config(os.path.join(mon, "prometheus", "prometheus.yml"), o.tmp, ports)
        procs.start("prometheus", [o.prometheus, "--config.file=" + cfg,
                                   "--storage.tsdb.path=" + os.path.join(o.tmp, "prometheus-data"),
                                   f"--web.listen-address=127.0.0.1:{prom_port}"])
        url = f"http://127.0.0.1:{prom_port}"
        if not wait_until(lambda: request("GET", url + "/-/ready")[0] == 200, 60):
            raise RuntimeError("Prometheus not ready: " + open(os.path.join(o.tmp, "prometheus.log")).read()[-2000:])
        print(f"started in {time.monotonic() - t0:.1f} s; Prometheus {url}")
        # Load: /classify (model _default at the dispatcher) and the model's
        # own path, plus a bad image both ways (415: the error panels).
        bad = os.path.join(o.tmp, "bad.jpg")
        with open(bad, "wb") as f:
            f.write(b"not an image")
        dsp = f"http://127.0.0.1:{d_port}"
        for name, img, rate, model in (("load-default", o.image, 12, None), ("load-model", o.image, 12, o.model_name),
                                       ("load-bad", bad, 2, None), ("load-bad-model", bad, 2, o.model_name)):
            procs.start(name, [o.osprey, "load", "--url", dsp, "--images", img, "--rate", str(rate),
                               "--duration", f"{LOAD_S}s", "--timeout-ms", "10000"]
                        + (["--model", model] if model else []))
        time.sleep(SETTLE_S)
        st, body = request("GET", url + "/api/v1/targets", timeout=10)
        targets = json.loads(body)["data"]["activeTargets"]
        for t in targets:
            check(t["health"] == "up", f"target {t['labels']['job']} {t['scrapeUrl']}: {t['health']} {t['lastError']}")
        check(len(targets) == len(ports), f"{len(targets)} targets scraped ({len(ports)} in the config)")
        # (b) every rule loaded and every recording rule has data.
        check_rules(check, url, rule_files)
        # (a) every panel of every dashboard has data.
        check_dashboards(check, url, dashboards)
        # (c) every metric name exists in a live scrape of the real processes.
        live = scrape_names([f"http://127.0.0.1:{p}" for p in workers + [d_port, a_port]])
        records, rexprs = rule_exprs(rule_files)
        exprs = rexprs + [e for p in dashboards for e in dashboard_exprs(p)]
        if os.path.exists(adapter):
            exprs += adapter_exprs(adapter)
        else:
            print(f"note: {os.path.relpath(adapter, o.src)} is absent in this tree: its metric names are not checked")
        defined = live | records | SYNTHETIC
        check_names(check, exprs, defined)
        # (d) the check above can fail.
        self_test(check, exprs, defined, o.tmp)
        # The cluster variant of the config, its relabelling for real.
        check_cluster(check, o, procs, mon, rule_files, {
            "worker1": ports["worker1:8080"], "worker2": ports["worker2:8080"],
            "dispatcher": ports["dispatcher:8000"], "admin": f"127.0.0.1:{d_admin}",
            "autoscaler": ports["autoscaler:8002"], "alertmanager": ports["alertmanager:9093"]})
        print(f"checks done at {time.monotonic() - t0:.1f} s")
    finally:
        procs.stop_all()
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
