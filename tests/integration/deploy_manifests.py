#!/usr/bin/env python3
"""deploy_manifests.py — the policy facts of the rendered Kubernetes
manifests (driver of deploy_manifests.sh; the schemas are kubeconform's job).

    deploy_manifests.py OVERLAY_NAME RENDERED.yaml

OVERLAY_NAME is the overlay's directory name (dev, production, ...), used
for the per-overlay expectations (which autoscaler; sizes). Prints one line
per overlay and exits 1 listing every violated fact. The facts are what
docs/kubernetes.md promises and what other parts rely on: the names, labels
and ports; every container's requests = limits and hardened securityContext;
the workers' probes, CPU = serve's threads, grace period > preStop + drain;
the Ingress limits matching serve/dispatch; the admin API unexposed; the
RBAC exactly as narrow as documented; one autoscaler, never two; the HPA's
metric names equal to prometheus-adapter's rule names.
"""
import json
import re
import sys

import yaml

NS = "osprey"
PROM_NS = "osprey-monitoring"
PROM_URL = "http://prometheus.osprey-monitoring.svc:9090"
PART_OF = {"app.kubernetes.io/part-of": "osprey"}
# The API groups the manifests may use: anything else (a custom resource)
# would need a CRD nobody ships.
BUILTIN_GROUPS = {"v1", "apps/v1", "rbac.authorization.k8s.io/v1", "policy/v1",
                  "networking.k8s.io/v1", "autoscaling/v2", "apiregistration.k8s.io/v1"}
# Which autoscaler each overlay selects.
AUTOSCALER = {"dev": "osprey", "production": "hpa", "production-osprey-autoscaler": "osprey"}

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def labels_of(obj):
    return obj.get("metadata", {}).get("labels") or {}


def k8s_cpu(q):
    """A CPU quantity in cores."""
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def nginx_size(q):
    """nginx's size syntax (8m = 8 MiB) in bytes."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", str(q))
    if not m:
        return None
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]


def pod_checks(dep, objs):
    """Every container of a Deployment: resources and hardening."""
    name = dep["metadata"]["name"]
    spec = dep["spec"]["template"]["spec"]
    psc = spec.get("securityContext") or {}
    check(psc.get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot")
    check((psc.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
          f"{name}: pod seccompProfile RuntimeDefault")
    if name.startswith("osprey-"):
        check(psc.get("runAsUser") == 10001, f"{name}: runAsUser 10001 (the image's UID)")
    check(spec.get("hostNetwork") is not True and spec.get("hostPID") is not True,
          f"{name}: no host namespaces")
    for c in spec.get("initContainers", []) + spec["containers"]:
        cn = f"{name}/{c['name']}"
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        check(set(req) >= {"cpu", "memory"}, f"{cn}: requests cpu and memory")
        check(req == lim, f"{cn}: requests {req} != limits {lim}")
        sc = c.get("securityContext") or {}
        check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{cn}: runAsNonRoot")
        check(sc.get("readOnlyRootFilesystem") is True, f"{cn}: readOnlyRootFilesystem")
        check(sc.get("allowPrivilegeEscalation") is False, f"{cn}: allowPrivilegeEscalation false")
        check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{cn}: drop ALL")
        check(not (sc.get("capabilities") or {}).get("add"), f"{cn}: adds no capability")
        check(sc.get("privileged") is not True, f"{cn}: not privileged")
        if c in spec["containers"]:
            check("livenessProbe" in c and "readinessProbe" in c, f"{cn}: liveness and readiness probes")


def config_of(objs, cm_name, key):
    for o in objs:
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(cm_name + "-") and key in o.get("data", {}):
            return json.loads(o["data"][key])
    errors.append(f"no ConfigMap {cm_name}-<hash> with {key}")
    return {}


def find(objs, kind, name, ns=NS):
    for o in objs:
        md = o["metadata"]
        if o["kind"] == kind and md["name"] == name and md.get("namespace") in (ns, None):
            return o
    return None


def prestop_sleep(c):
    return ((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep", {}).get("seconds", 0)


def main():
    overlay, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        objs = [o for o in yaml.safe_load_all(f) if o]

    for o in objs:
        ident = f"{o['kind']} {o['metadata'].get('namespace', '')}/{o['metadata']['name']}"
        check(o["apiVersion"] in BUILTIN_GROUPS, f"{ident}: apiVersion {o['apiVersion']} is not built in")
        check(labels_of(o).items() >= PART_OF.items(), f"{ident}: label app.kubernetes.io/part-of=osprey")

    check(find(objs, "Namespace", NS) is not None, "Namespace osprey")
    serve = config_of(objs, "osprey-config", "serve.json")
    dispatch = config_of(objs, "osprey-config", "dispatch.json")
    model = config_of(objs, "osprey-config", "model.json")

    # The worker: names, labels, probes, sizing, shutdown.
    worker = find(objs, "Deployment", "osprey-worker")
    if check(worker is not None, "Deployment osprey-worker"):
        pod_checks(worker, objs)
        want = {"app.kubernetes.io/name": "osprey", "app.kubernetes.io/component": "worker"}
        check(labels_of(worker["spec"]["template"]).items() >= want.items(), "worker pod labels")
        spec = worker["spec"]["template"]["spec"]
        serve_c = [c for c in spec["containers"] if c["name"] == "serve"][0]
        check(serve_c["args"] == ["serve", "--config", "/etc/osprey/serve.json"], f"worker args {serve_c['args']}")
        for probe, path_ in (("startupProbe", "/v2/health/ready"), ("readinessProbe", "/v2/health/ready"),
                             ("livenessProbe", "/v2/health/live")):
            got = ((serve_c.get(probe) or {}).get("httpGet") or {}).get("path")
            check(got == path_, f"worker {probe} on {path_}, not {got}")
        check(k8s_cpu(serve_c["resources"]["limits"]["cpu"]) == serve.get("threads"),
              f"worker CPU {serve_c['resources']['limits']['cpu']} != serve threads {serve.get('threads')}")
        check(serve.get("http_threads", serve.get("threads")) <= serve.get("threads", 0),
              "serve http_threads within the CPUs")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        check(grace > prestop_sleep(serve_c) + serve.get("drain_timeout", 30),
              f"worker grace {grace} s <= preStop {prestop_sleep(serve_c)} + drain {serve.get('drain_timeout')}")
        check(prestop_sleep(serve_c) > 0, "worker preStop sleep")
        check(serve.get("port") == 8080 and {"name": "http", "containerPort": 8080, "protocol": "TCP"}
              in serve_c["ports"], "worker port http 8080")
        check(spec.get("automountServiceAccountToken") is False, "workers mount no API token")
        check(len(spec.get("topologySpreadConstraints", [])) > 0, "worker topologySpreadConstraints")
        fetched = [c["args"] for c in spec.get("initContainers", [])]
        model_file = serve.get("model", "")
        check(any(a[:4] == ["models", "fetch", "--dir", "/models"] and model_file.endswith("/" + a[-1])
                  for a in fetched), f"an init container fetches {model_file} into /models: {fetched}")
        check(any(model.get("labels", "").endswith("/" + a[-1]) for a in fetched), "the labels are fetched")
        check(serve.get("model_config") == "/etc/osprey/model.json", "serve reads the model config")
        cache = serve.get("cache_dir", "")
        check(cache.startswith("/tmp/") and any(m["mountPath"] == "/tmp" for m in serve_c["volumeMounts"]),
              "the engine cache is on the writable /tmp volume")
        if overlay.startswith("production"):
            check("podAntiAffinity" in (spec.get("affinity") or {}), "production workers: anti-affinity")

    svc = find(objs, "Service", "osprey-worker")
    if check(svc is not None, "Service osprey-worker"):
        check(svc["spec"].get("clusterIP") == "None", "the worker Service is headless")
        check([(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http", 8080)], "worker Service port http 8080")

    # The dispatcher: discovery, admin API unexposed, shutdown.
    disp = find(objs, "Deployment", "osprey-dispatcher")
    if check(disp is not None, "Deployment osprey-dispatcher"):
        pod_checks(disp, objs)
        spec = disp["spec"]["template"]["spec"]
        c = spec["containers"][0]
        args = c["args"]
        check(args[0] == "dispatch" and "--k8s-service" in args and
              args[args.index("--k8s-service") + 1] == "osprey/osprey-worker:8080", f"dispatcher args {args}")
        check(spec.get("serviceAccountName") == "osprey-dispatcher", "dispatcher service account")
        ports = [p["containerPort"] for p in c["ports"]]
        check(ports == [dispatch.get("port")] == [8000], f"dispatcher container ports {ports}")
        check(dispatch.get("admin_host") in ("127.0.0.1", "::1", None), "the admin API is on loopback")
        check(dispatch.get("admin_port", 8001) not in ports, "the admin port is not a container port")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        check(grace > prestop_sleep(c) + dispatch.get("drain_timeout", 30), f"dispatcher grace {grace} s too short")
        check(k8s_cpu(c["resources"]["limits"]["cpu"]) >= dispatch.get("loops", 1) * 0.5,
              "dispatcher CPU for its event loops")
    svc = find(objs, "Service", "osprey-dispatcher")
    if check(svc is not None, "Service osprey-dispatcher"):
        check([(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [("http", 8000)],
              f"dispatcher Service ports {svc['spec']['ports']} (8001 must not be exposed)")
        check(svc["spec"].get("type", "ClusterIP") == ("NodePort" if overlay == "dev" else "ClusterIP"),
              "dispatcher Service type")

    # Ingress limits = osprey's limits.
    ing = find(objs, "Ingress", "osprey")
    if check(ing is not None, "Ingress osprey"):
        ann = ing["metadata"].get("annotations", {})
        check(ing["spec"].get("ingressClassName") == "nginx", "ingressClassName nginx")
        body = nginx_size(ann.get("nginx.ingress.kubernetes.io/proxy-body-size"))
        check(body == serve.get("max_body_bytes") == dispatch.get("max_body_bytes"),
              f"body size: nginx {body}, serve {serve.get('max_body_bytes')}, dispatch {dispatch.get('max_body_bytes')}")
        for t in ("read", "send"):
            v = int(ann.get(f"nginx.ingress.kubernetes.io/proxy-{t}-timeout", 60))
            check(v * 1000 > dispatch.get("request_timeout_ms", 30000), f"nginx proxy-{t}-timeout {v} s <= request deadline")

    # RBAC: exactly as narrow as documented.
    role = find(objs, "Role", "osprey-dispatcher")
    check(role is not None and role["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                                                  "verbs": ["list", "watch"]}], "dispatcher Role: list/watch endpointslices")
    check(all(o["kind"] != "ClusterRoleBinding" or not any(s.get("namespace") == NS for s in o.get("subjects", []))
              for o in objs), "no osprey service account is bound cluster-wide")

    # One autoscaler, never two.
    hpas = [o for o in objs if o["kind"] == "HorizontalPodAutoscaler"]
    asc = find(objs, "Deployment", "osprey-autoscaler")
    check(not (hpas and asc), "both an HPA and the osprey-autoscaler Deployment")
    kind = "hpa" if hpas else "osprey" if asc else None
    check(kind == AUTOSCALER.get(overlay, kind), f"overlay {overlay} selects {kind}, expected {AUTOSCALER.get(overlay)}")
    if worker is not None and kind:
        check("replicas" not in worker["spec"], "with an autoscaler the worker Deployment leaves spec.replicas to it")
    if asc is not None:
        pod_checks(asc, objs)
        cfg = config_of(objs, "osprey-autoscaler", "autoscale.json")
        check(cfg.get("k8s_deployment") == "osprey/osprey-worker", "autoscaler scales osprey/osprey-worker")
        check(cfg.get("prometheus") == PROM_URL, f"autoscaler reads {PROM_URL}")
        check(asc["spec"]["replicas"] == 1 and asc["spec"]["strategy"]["type"] == "Recreate", "one autoscaler at a time")
        role = find(objs, "Role", "osprey-autoscaler")
        check(role is not None and role["rules"] == [
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "resourceNames": ["osprey-worker"],
             "verbs": ["get", "patch"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["osprey-worker"], "verbs": ["get"]}],
            "autoscaler Role: get/patch deployments/scale, get deployments, osprey-worker only")
    for hpa in hpas:
        spec = hpa["spec"]
        check(spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "osprey-worker"},
              "HPA targets osprey-worker")
        by_type = {m["type"]: m for m in spec["metrics"]}
        check(by_type.get("Pods", {}).get("pods", {}).get("metric", {}).get("name") == "osprey_inflight_requests",
              "HPA Pods metric osprey_inflight_requests")
        ext = by_type.get("External", {}).get("external", {})
        check(ext.get("metric", {}).get("name") == "osprey_dispatch_inflight"
              and ext.get("target", {}).get("type") == "AverageValue", "HPA External osprey_dispatch_inflight AverageValue")
        check(by_type.get("Resource", {}).get("resource", {}).get("name") == "cpu", "HPA CPU metric")
        beh = spec.get("behavior", {})
        check("stabilizationWindowSeconds" in beh.get("scaleUp", {}) and
              "stabilizationWindowSeconds" in beh.get("scaleDown", {}), "HPA stabilization windows")
        adapter = None
        for o in objs:
            if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("prometheus-adapter-config-"):
                adapter = yaml.safe_load(o["data"]["config.yaml"])
        if check(adapter is not None, "prometheus-adapter's ConfigMap"):
            custom = {r["name"]["as"] for r in adapter.get("rules", [])}
            external = {r["name"]["as"] for r in adapter.get("externalRules", [])}
            check("osprey_inflight_requests" in custom, f"adapter rules serve osprey_inflight_requests: {custom}")
            check("osprey_dispatch_inflight" in external, f"adapter externalRules serve osprey_dispatch_inflight: {external}")
        svcs = {o["spec"]["service"]["name"] + "." + o["spec"]["service"]["namespace"]
                for o in objs if o["kind"] == "APIService"}
        names = {o["metadata"]["name"] for o in objs if o["kind"] == "APIService"}
        check(names == {"v1beta1.custom.metrics.k8s.io", "v1beta1.external.metrics.k8s.io"}, f"APIServices {names}")
        for s in svcs:
            n, ns = s.split(".", 1)
            check(find(objs, "Service", n, ns) is not None, f"the APIServices' Service {s} is shipped")

    # NetworkPolicies: default deny; workers from dispatchers and Prometheus only.
    pols = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "NetworkPolicy"}
    dd = pols.get("default-deny", {})
    check(dd.get("podSelector") == {} and set(dd.get("policyTypes", [])) == {"Ingress", "Egress"}
          and not dd.get("ingress") and not dd.get("egress"), "default-deny NetworkPolicy")
    wp = pols.get("osprey-worker", {})
    peers = [p for rule in wp.get("ingress", []) for p in rule.get("from", [])]
    prom = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": PROM_NS}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}
    check(peers == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "osprey",
                                                     "app.kubernetes.io/component": "dispatcher"}}}, prom],
          f"worker ingress only from dispatchers and Prometheus: {peers}")
    check([p["port"] for r in wp.get("ingress", []) for p in r.get("ports", [])] == [8080], "worker ingress port 8080 only")
    other = [n for n, p in pols.items() if n != "osprey-worker" and "Ingress" in p.get("policyTypes", [])
             and p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component") == "worker"]
    check(not other, f"no other policy admits traffic to workers: {other}")

    kinds = sorted({o["kind"] for o in objs})
    print(f"{overlay}: {len(objs)} objects ({', '.join(kinds)}); autoscaler: {kind}; "
          f"{len(errors)} violations")
    for e in errors:
        print(f"  VIOLATION: {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
