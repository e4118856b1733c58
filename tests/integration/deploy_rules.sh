#!/usr/bin/env bash
# deploy_rules.sh — the static checks of deploy/monitoring with the real tools
# (issue 14, CTest label deploy); deploy_monitoring.sh runs the same files
# against live processes.
#   - promtool check config on the compose config (prometheus/prometheus.yml,
#     which loads the rule files) and on the cluster config
#     (kubernetes/prometheus.yml) unchanged, with upstream promtool built
#     with the Kubernetes service discovery (scripts/prometheus-upstream.sh,
#     cached; the first run builds it). Only where Go is missing, Debian's
#     promtool (built without that discovery) checks a copy whose
#     kubernetes_sd_configs is swapped for a file_sd; the output says which;
#   - promtool check rules; promtool test rules (tests/*.yml), and every
#     rule file has a test file, every alert a test where it fires and one
#     where it does not, every recording rule a promql_expr_test;
#   - every runbook_url points at a heading of docs/operations.md;
#   - amtool check-config alertmanager.yml, and its routing: critical →
#     page, warning → ticket, no severity → null;
#   - the Grafana dashboards equal grafana/generate.py's output;
#   - kubectl kustomize deploy/monitoring builds, and its ConfigMaps carry
#     every rule file and dashboard byte for byte (one copy of each);
#   - yamllint (the repository's .yamllint when there is one).
set -euo pipefail
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MON=$SRC/deploy/monitoring
PY=/usr/bin/python3
# kubectl (for kustomize): the machine's, else the one built with the tests'
# control plane (scripts/kube-test-cluster.sh; exit 77 without Go).
KUBECTL=$(command -v kubectl) || {
    rc=0; KUBECTL=$("$SRC/scripts/kube-test-cluster.sh" kubectl) || rc=$?
    [ $rc = 77 ] && { echo "SKIP: no kubectl, and none can be built here (Go missing)"; exit 77; }
    [ $rc = 0 ] || { echo "FAIL: building kubectl (scripts/kube-test-cluster.sh kubectl) failed"; exit 1; }
}
for tool in promtool amtool yamllint; do
    command -v "$tool" >/dev/null || {
        echo "SKIP: $tool not installed (scripts/install-deps.sh installs it)"
        exit 77
    }
done
$PY -c 'import yaml' 2>/dev/null || { echo "SKIP: PyYAML (python3-yaml) not installed"; exit 77; }
TMPD=$(mktemp -d /tmp/osp_deploy_rules.XXXXXX)
trap 'rm -rf "$TMPD"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

echo "== promtool check config (compose)"
promtool check config "$MON/prometheus/prometheus.yml" || fail "compose prometheus.yml"

echo "== promtool check config (cluster)"
rc=0
UPSTREAM_PROMTOOL=$("$SRC/scripts/prometheus-upstream.sh" promtool) || rc=$?
if [ $rc = 0 ]; then
    echo "upstream promtool with the Kubernetes discovery ($("$UPSTREAM_PROMTOOL" --version 2>&1 | sed -n 1p)):"
    echo "      checking kubernetes/prometheus.yml unchanged"
    "$UPSTREAM_PROMTOOL" check config "$MON/kubernetes/prometheus.yml" || fail "cluster prometheus.yml"
elif [ $rc != 77 ]; then
    fail "scripts/prometheus-upstream.sh promtool (Go is installed, the build failed)"
elif promtool check config --syntax-only "$MON/kubernetes/prometheus.yml" >"$TMPD/k8s.out" 2>&1; then
    echo "note: no Go to build upstream promtool; this promtool has the Kubernetes discovery"
    cat "$TMPD/k8s.out"
elif grep -q 'field kubernetes_sd_configs not found' "$TMPD/k8s.out"; then
    echo "note: no Go to build upstream promtool, and this promtool is built without the"
    echo "      Kubernetes service discovery (Debian's);"
    echo "      checking a copy with kubernetes_sd_configs swapped for file_sd_configs"
    $PY - "$MON/kubernetes/prometheus.yml" "$TMPD/k8s.yml" <<'PYEOF'
import sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
n = 0
for sc in cfg["scrape_configs"]:
    sd = sc.pop("kubernetes_sd_configs", None)
    if sd is not None:
        assert sd == [{"role": "pod", "namespaces": {"names": ["osprey"]}}], sd
        sc["file_sd_configs"] = [{"files": ["pods.json"]}]
        n += 1
assert n == 1, n
yaml.safe_dump(cfg, open(sys.argv[2], "w"))
PYEOF
    promtool check config --syntax-only "$TMPD/k8s.yml" || fail "cluster prometheus.yml"
else
    cat "$TMPD/k8s.out"; fail "cluster prometheus.yml"
fi

echo "== promtool check rules / test rules"
promtool check rules "$MON"/prometheus/rules/*.yml || fail "check rules"
promtool test rules "$MON"/prometheus/tests/*.yml || fail "test rules"
$PY - "$MON" "$SRC/docs/operations.md" <<'PYEOF' || fail "rule coverage or runbooks"
import glob, os, re, sys, yaml
mon, ops = sys.argv[1], sys.argv[2]
ok = True
def check(c, msg):
    global ok
    print(("ok: " if c else "FAIL: ") + msg)
    ok = ok and c
tests = {p: yaml.safe_load(open(p)) for p in glob.glob(f"{mon}/prometheus/tests/*.yml")}
tested_files = {os.path.normpath(os.path.join(os.path.dirname(p), f)) for p, t in tests.items() for f in t["rule_files"]}
fired, silent, exprs = set(), set(), set()
for t in tests.values():
    for case in t["tests"]:
        for a in case.get("alert_rule_test", []):
            (fired if a.get("exp_alerts") else silent).add(a["alertname"])
        for e in case.get("promql_expr_test", []):
            exprs.add(e["expr"])
# GitHub's heading anchors: lower case, punctuation dropped, spaces → '-'.
anchors = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
           for h in re.findall(r"^#+ (.*)$", open(ops).read(), re.M)} if os.path.exists(ops) else set()
for path in sorted(glob.glob(f"{mon}/prometheus/rules/*.yml")):
    check(os.path.normpath(path) in tested_files, f"{os.path.basename(path)} has promtool tests")
    for g in yaml.safe_load(open(path))["groups"]:
        for r in g["rules"]:
            if "record" in r:
                check(r["record"] in exprs, f"recording rule {r['record']} is tested")
                continue
            a = r["alert"]
            check(a in fired and a in silent, f"alert {a} is tested firing and not firing")
            check({"severity"} <= set(r.get("labels", {})) and "for" in r, f"alert {a} has for: and a severity")
            ann = r.get("annotations", {})
            check({"summary", "description", "runbook_url"} <= set(ann), f"alert {a} has summary, description, runbook_url")
            url = ann.get("runbook_url", "")
            check(url.startswith("docs/operations.md#") and url.split("#", 1)[1] in anchors,
                  f"alert {a}: runbook {url} is a heading of docs/operations.md")
sys.exit(0 if ok else 1)
PYEOF

echo "== amtool"
AM=$MON/alertmanager/alertmanager.yml
amtool check-config "$AM" || fail "amtool check-config"
for case in "page severity=critical alertname=OspreyNoReadyWorkers" \
            "ticket severity=warning alertname=OspreyQueueNearFull" "null alertname=Other"; do
    read -r want labels <<<"$case"
    # shellcheck disable=SC2086  # the labels are separate arguments
    got=$(amtool config routes test --config.file="$AM" $labels 2>/dev/null)
    [ "$got" = "$want" ] || fail "route of {$labels}: $got, expected $want"
    echo "ok: {$labels} → $got"
done

echo "== Grafana dashboards = generate.py's output"
$PY "$MON/grafana/generate.py" --check || fail "dashboards are stale"
$PY "$MON/grafana/generate.py" --out "$TMPD" && cmp -s "$TMPD/osprey-overview.json" "$MON/grafana/dashboards/osprey-overview.json" ||
    fail "generate.py --out differs"
# The check itself can fail: a hand edit is caught.
mkdir "$TMPD/edited" && cp "$MON"/grafana/dashboards/*.json "$TMPD/edited/"
sed -i 's/"title": "Throughput"/"title": "Throughput!"/' "$TMPD/edited/osprey-overview.json"
if $PY "$MON/grafana/generate.py" --check --out "$TMPD/edited" >/dev/null; then fail "a hand-edited dashboard passed --check"; fi
echo "ok: the committed JSON is the generator's; a hand edit is caught"

echo "== kubectl kustomize deploy/monitoring"
"$KUBECTL" kustomize "$MON" >"$TMPD/k.yaml" || fail "kustomize build"
$PY - "$TMPD/k.yaml" "$MON" <<'PYEOF' || fail "kustomize ConfigMaps"
import glob, os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
mon = sys.argv[2]
cms = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in docs if d["kind"] == "ConfigMap"}
ok = True
for cm, pattern in (("prometheus-rules", "prometheus/rules/*.yml"), ("grafana-dashboards", "grafana/dashboards/*.json"),
                    ("alertmanager-config", "alertmanager/alertmanager.yml"),
                    ("prometheus-config", "kubernetes/prometheus.yml")):
    for path in sorted(glob.glob(os.path.join(mon, pattern))):
        data = cms.get(cm, {}).get("data", {}).get(os.path.basename(path))
        same = data == open(path).read()
        print(("ok: " if same else "FAIL: ") + f"ConfigMap {cm} carries {os.path.relpath(path, mon)} unchanged")
        ok = ok and same
kinds = sorted(f"{d['kind']}/{d['metadata'].get('namespace', '-')}/{d['metadata']['name']}" for d in docs
               if d["kind"] != "ConfigMap")
print("objects: " + ", ".join(kinds))
for d in docs:
    if d["kind"] == "Deployment":
        pod = d["spec"]["template"]["spec"]
        for c in pod["containers"]:
            sc, res = c.get("securityContext", {}), c.get("resources", {})
            hard = (pod["securityContext"].get("runAsNonRoot") and sc.get("readOnlyRootFilesystem")
                    and sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("allowPrivilegeEscalation", True)
                    and pod["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault"
                    and res.get("requests") == res.get("limits") and res.get("limits"))
            print(("ok: " if hard else "FAIL: ") + f"{d['metadata']['name']}/{c['name']}: non-root, read-only, "
                  "no capabilities, RuntimeDefault, requests = limits")
            ok = ok and bool(hard)
sys.exit(0 if ok else 1)
PYEOF

echo "== yamllint"
if [ -f "$SRC/.yamllint" ]; then
    (cd "$SRC" && yamllint -s deploy/monitoring) || fail "yamllint"
else
    yamllint -s -d "{extends: default, rules: {line-length: {max: 140}, document-start: disable, truthy: {check-keys: false}}}" \
        "$MON" || fail "yamllint"
fi
echo "PASS: deploy_rules"
