#!/usr/bin/env bash
# deploy_monitoring.sh — the monitoring stack of deploy/monitoring proven
# against the real tools and real processes (issue 14, CTest label deploy).
#
# Two `osprey serve` workers (the small quantized MobileNetV1 0.25), an
# `osprey dispatch` in front, an `osprey autoscale --dry-run` (observes the
# dispatcher's workers and exports every autoscaler metric), a real
# Alertmanager with the shipped alertmanager.yml, and a real Prometheus
# running the shipped prometheus/prometheus.yml — parsed and rewritten, not
# retyped: the compose targets become the processes' loopback ports, the
# intervals 1 s, the rule files the repository's — all bound to 127.0.0.1
# with temp storage. `osprey load` drives /classify and the model's own path
# (good images, and a bad one for 4xx answers) for 30 s. Then
# (deploy_monitoring.py):
#   - every target is up; every rule loads with health ok;
#   (a) every panel query of every dashboard, variables substituted as
#       Grafana does (All = .*, and the first value of the variable's
#       label_values query), returns data from /api/v1/query;
#   (b) every recording rule has data;
#   (c) every metric name in the rules, the dashboards and the
#       prometheus-adapter config (deploy/kubernetes/components/hpa/, when
#       present) exists in a live scrape of the real processes (names parsed
#       out of PromQL by a tokenizer that drops functions, keywords, label
#       names, strings, durations; recording-rule names count as defined);
#   (d) self-test: a typo injected into copies of a dashboard query and a
#       rule is reported, and the tokenizer keeps exactly the series of a
#       tricky expression.
# Then the cluster variant (deploy/monitoring/kubernetes/prometheus.yml) in a
# second Prometheus: Debian's Prometheus is built without the Kubernetes
# service discovery, so its kubernetes_sd_configs is swapped for a file_sd
# listing the same processes as the pod role would (the __meta_kubernetes_*
# labels of pods in namespace osprey): the shipped relabelling keeps the four
# osprey pods with job/component/namespace/pod labels, drops the
# dispatcher's admin port, a Pending pod, another app's pod and a pod
# without a component, and every recording rule has data on those labels.
set -euo pipefail
source "$(dirname "$0")/lib/dispatch_lib.bash"

PROMETHEUS=$(command -v prometheus) || {
    echo "SKIP: prometheus not installed (scripts/install-deps.sh installs the Debian package)"
    exit 77
}
ALERTMANAGER=$(command -v prometheus-alertmanager || command -v alertmanager) || {
    echo "SKIP: alertmanager not installed (Debian prometheus-alertmanager; scripts/install-deps.sh)"
    exit 77
}
$PY "$SRC/tests/integration/deploy_monitoring.py" --osprey "$OSPREY" --prometheus "$PROMETHEUS" \
    --alertmanager "$ALERTMANAGER" --model "$MODEL" --model-name "$MODEL_NAME" --image "$IMG" \
    --tmp "$TMPD" --src "$SRC" || {
    for f in "$TMPD"/prometheus.log "$TMPD"/alertmanager.log "$TMPD"/autoscaler.log; do
        [ -f "$f" ] && { echo "--- $(basename "$f"):"; tail -15 "$f"; }
    done
    echo "FAIL: deploy_monitoring"
    exit 1
}
echo "PASS: deploy_monitoring"
