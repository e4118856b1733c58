#!/usr/bin/env python3
"""generate.py — the one source of osprey's Grafana dashboards: writes
dashboards/osprey-{overview,dispatcher,autoscaler}.json from the tables
below, so panels are never copied by hand between dashboards.

    python3 deploy/monitoring/grafana/generate.py           # write the JSON
    python3 deploy/monitoring/grafana/generate.py --check   # exit 1 if stale

The JSON is committed (Grafana's provisioning reads files; compose and the
Kubernetes ConfigMap mount them); tests/integration/deploy_rules.sh checks
it equals this script's output, and tests/integration/deploy_monitoring.sh
runs every panel's query against a real Prometheus scraping real osprey
processes. Queries use the recording rules of ../prometheus/rules where one
exists (one definition of "error ratio", "p99", ...). Standard library only.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dashboards")
# Fixed so that provisioning and the dashboards agree without a lookup
# (provisioning/datasources/prometheus.yml sets the same uid).
DS = {"type": "prometheus", "uid": "osprey-prometheus"}
W_FULL, W_HALF, H = 24, 12, 8


def var(name, label, query, hide=0):
    """A query variable (multi-select, All = the regex .*)."""
    return {
        "type": "query", "name": name, "label": label, "datasource": DS,
        "definition": query, "query": {"query": query, "refId": name},
        "refresh": 2, "sort": 1, "includeAll": True, "multi": True,
        "allValue": ".*", "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "hide": hide,
    }


def target(expr, legend):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "range": True}


def panel(title, unit, desc, *targets):
    """A time series panel; targets are (expr, legend) pairs."""
    return {"type": "timeseries", "title": title, "description": desc, "datasource": DS,
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                        "tooltip": {"mode": "multi"}},
            "targets": [target(e, l) for e, l in targets]}


def layout(panels):
    """Two panels per row, in order; ids and refIds numbered."""
    out = []
    for i, p in enumerate(panels):
        p = dict(p, id=i + 1, gridPos={"h": H, "w": W_HALF, "x": (i % 2) * W_HALF, "y": (i // 2) * H})
        p["targets"] = [dict(t, refId=chr(ord("A") + j)) for j, t in enumerate(p["targets"])]
        out.append(p)
    return out


def dashboard(uid, title, desc, variables, panels):
    return {
        "uid": uid, "title": title, "description": desc, "tags": ["osprey"],
        "editable": True, "graphTooltip": 1, "refresh": "10s", "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"}, "timezone": "browser",
        "templating": {"list": variables}, "annotations": {"list": []},
        "links": [], "panels": layout(panels),
    }


M = 'model=~"$model"'
WORKER = 'job="osprey-worker",instance=~"$instance"'


def process_panels(job, sel):
    """CPU, memory and network of one component's processes (by instance)."""
    return [
        panel(f"{job}: CPU", "short", "CPU seconds per second (cores) of each process.",
              (f"rate(process_cpu_seconds_total{{{sel}}}[1m])", "{{instance}}")),
        panel(f"{job}: memory", "bytes", "Resident memory of each process.",
              (f"process_resident_memory_bytes{{{sel}}}", "{{instance}}")),
        panel(f"{job}: network", "Bps",
              "HTTP body bytes per second each process received and sent (every route; "
              "osprey's own counters, so no cAdvisor is needed).",
              (f"rate(osprey_http_received_bytes_total{{{sel}}}[1m])", "{{instance}} in"),
              (f"rate(osprey_http_sent_bytes_total{{{sel}}}[1m])", "{{instance}} out")),
    ]


def overview():
    panels = [
        panel("Throughput", "reqps", "Answered requests per second: what clients got "
              "(dispatcher, /classify counts as _default) and what the workers answered.",
              (f"model:osprey_dispatch_requests:rate1m{{{M}}}", "{{model}} dispatcher"),
              (f"model:osprey_requests:rate1m{{{M}}}", "{{model}} workers")),
        panel("Latency p50 / p95 / p99", "s", "Worker request latency per model (request "
              "line to response) and the client-visible p99 at the dispatcher (the SLO).",
              (f"model:osprey_request_duration_seconds:p50_rate1m{{{M}}}", "{{model}} p50"),
              (f"model:osprey_request_duration_seconds:p95_rate1m{{{M}}}", "{{model}} p95"),
              (f"model:osprey_request_duration_seconds:p99_rate1m{{{M}}}", "{{model}} p99"),
              (":osprey_dispatch_request_duration_seconds:p99_rate1m", "dispatcher p99")),
        panel("Errors by code", "reqps", "Non-2xx answers per second by HTTP code: 4xx are "
              "the clients' (bad image, too large), 5xx the service's.",
              (f'sum by (code) (rate(osprey_dispatch_requests_total{{{M},code!~"2.."}}[1m]))',
               "{{code}} dispatcher"),
              (f'sum by (code) (rate(osprey_requests_total{{{M},code!~"2.."}}[1m]))', "{{code}} workers")),
        panel("Error ratio (5xx)", "percentunit", "Share of 5xx answers at the dispatcher "
              "(SLO: ≤ 0.1 %; OspreyErrorRatioHigh at 1 %).",
              (f"model:osprey_dispatch_requests_errors:ratio_rate1m{{{M}}}", "{{model}}")),
        panel("Queue depth", "short", "Images queued at the workers and requests waiting "
              "at the dispatcher for a worker slot.",
              (f"model:osprey_queue_depth:sum{{{M}}}", "{{model}} workers"),
              (f"model:osprey_dispatch_queue_depth:sum{{{M}}}", "{{model}} dispatcher")),
        panel("Batch size", "short", "Mean images per engine run: batching grows with load.",
              (f"model:osprey_batch_size:mean_rate1m{{{M}}}", "{{model}}")),
        panel("In flight", "short", "HTTP requests being handled by each worker, and sent "
              "to workers by the dispatchers.",
              (f"osprey_inflight_requests{{{WORKER}}}", "{{instance}}"),
              (":osprey_dispatch_inflight:sum", "dispatcher → workers")),
        panel("Saturation", "percentunit", "Share of time the engine instances run a batch "
              "(1 = the workers are at their throughput limit; more load only queues).",
              (f"model:osprey_engine_busy:ratio_rate1m{{{M}}}", "{{model}}"),
              (f"instance_model:osprey_engine_busy:ratio_rate1m{{{M},instance=~\"$instance\"}}",
               "{{instance}} {{model}}")),
        panel("Replicas: desired vs current", "short", "What osprey autoscale asks for, "
              "what it has, and the ready workers the dispatchers route to.",
              ("osprey_autoscaler_desired_replicas", "desired"),
              ("osprey_autoscaler_current_replicas", "current"),
              (f"model:osprey_dispatch_backends_ready:max{{{M}}}", "{{model}} ready")),
    ] + process_panels("workers", WORKER)
    return dashboard(
        "osprey-overview", "osprey: overview",
        "The service at a glance: traffic, latency, errors, queues, batching, capacity and "
        "the workers' resources. Runbooks: docs/operations.md.",
        [var("model", "model", 'label_values(osprey_requests_total{model!=""}, model)'),
         var("instance", "worker", 'label_values(osprey_inflight_requests{job="osprey-worker"}, instance)')],
        panels)


def dispatcher():
    d_sel = 'job="osprey-dispatcher",instance=~"$instance"'
    panels = [
        panel("Requests by code", "reqps", "Proxied requests per second by model and code.",
              (f"sum by (model, code) (rate(osprey_dispatch_requests_total{{{M}}}[1m]))",
               "{{model}} {{code}}")),
        panel("Error ratio (5xx)", "percentunit", "Share of 5xx answers (the availability SLI).",
              (f"model:osprey_dispatch_requests_errors:ratio_rate1m{{{M}}}", "{{model}}")),
        panel("Latency p50 / p95 / p99", "s", "Client-visible latency (queue, attempts, "
              "retries); SLO: p99 ≤ 0.5 s.",
              (":osprey_dispatch_request_duration_seconds:p50_rate1m", "p50"),
              (":osprey_dispatch_request_duration_seconds:p95_rate1m", "p95"),
              (":osprey_dispatch_request_duration_seconds:p99_rate1m", "p99")),
        panel("Admission queue", "short", "Requests waiting for a worker slot, and the "
              "fullest dispatcher's queue as a share of --queue-size.",
              (f"model:osprey_dispatch_queue_depth:sum{{{M}}}", "{{model}} waiting"),
              (f"model:osprey_dispatch_queue_fill:max_ratio{{{M}}}", "{{model}} fill")),
        panel("In flight per worker", "short", "Requests outstanding at each backend "
              "(--max-inflight bounds it).",
              (f"osprey_dispatch_inflight{{{d_sel}}}", "{{backend}}")),
        panel("Workers by state", "short", "Backends per model: ready, not_ready, ejected.",
              (f"sum by (model, state) (osprey_dispatch_backends{{{M}}})", "{{model}} {{state}}")),
        panel("Retries and ejections", "ops", "Attempts retried on another worker and "
              "workers ejected after consecutive failures, per second.",
              (f"rate(osprey_dispatch_retries_total{{{d_sel}}}[1m])", "{{instance}} retries"),
              (f"rate(osprey_dispatch_ejections_total{{{d_sel}}}[1m])", "{{instance}} ejections")),
        panel("File descriptors", "percentunit", "Open descriptors as a share of the limit "
              "(each client and backend connection holds one).",
              (f"process_open_fds{{{d_sel}}} / process_max_fds{{{d_sel}}}", "{{instance}}")),
    ] + process_panels("dispatcher", d_sel)
    return dashboard(
        "osprey-dispatcher", "osprey: dispatcher",
        "osprey dispatch: what clients see, its queue, the workers it routes to.",
        [var("model", "model", 'label_values(osprey_dispatch_requests_total{model!="_default"}, model)'),
         var("instance", "dispatcher", 'label_values(osprey_dispatch_queue_capacity, instance)')],
        panels)


def autoscaler():
    a_sel = 'job="osprey-autoscaler",instance=~"$instance"'
    panels = [
        panel("Replicas", "short", "Current and desired replicas between --min and --max.",
              (f"osprey_autoscaler_current_replicas{{{a_sel}}}", "current"),
              (f"osprey_autoscaler_desired_replicas{{{a_sel}}}", "desired"),
              (f"osprey_autoscaler_min_replicas{{{a_sel}}}", "min"),
              (f"osprey_autoscaler_max_replicas{{{a_sel}}}", "max")),
        panel("Metric vs target", "short", "Each scaling metric's period average and its "
              "target (per ready replica for totals).",
              (f"osprey_autoscaler_metric_value{{{a_sel}}}", "{{metric}} value"),
              (f"osprey_autoscaler_metric_target{{{a_sel}}}", "{{metric}} target")),
        panel("Decisions", "ops", "Full decisions per second by direction.",
              (f"sum by (direction) (rate(osprey_autoscaler_decisions_total{{{a_sel}}}[5m]))",
               "{{direction}}")),
        panel("Panic mode", "short", "1 while the panic mode scales on the short window.",
              (f"osprey_autoscaler_panic{{{a_sel}}}", "{{instance}}")),
        panel("Errors by source", "ops", "Failures to read the dispatcher or Prometheus, or "
              "to act, per second.",
              (f"sum by (source) (rate(osprey_autoscaler_errors_total{{{a_sel}}}[5m]))", "{{source}}")),
        panel("Actuation", "s", "Time to ask the actuator for a new count (p95; empty "
              "between scale events) and actuations per second.",
              (f"histogram_quantile(0.95, sum by (le) (rate("
               f"osprey_autoscaler_actuation_duration_seconds_bucket{{{a_sel}}}[5m])))", "p95"),
              (f"rate(osprey_autoscaler_actuation_duration_seconds_count{{{a_sel}}}[5m])", "per second")),
        panel("Local workers started and died", "ops", "Local actuator: workers started, "
              "and workers that exited unasked (replaced).",
              (f"rate(osprey_autoscaler_workers_started_total{{{a_sel}}}[5m])", "started"),
              (f"rate(osprey_autoscaler_worker_deaths_total{{{a_sel}}}[5m])", "died")),
    ] + process_panels("autoscaler", a_sel)[:2]
    return dashboard(
        "osprey-autoscaler", "osprey: autoscaler",
        "osprey autoscale: the replicas it wants, why (metric vs target), and its health.",
        [var("instance", "autoscaler", 'label_values(osprey_autoscaler_max_replicas, instance)')],
        panels)


DASHBOARDS = {"osprey-overview.json": overview, "osprey-dispatcher.json": dispatcher,
              "osprey-autoscaler.json": autoscaler}


def render(fn):
    return json.dumps(fn(), indent=2, ensure_ascii=False) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare, do not write")
    ap.add_argument("--out", default=OUT, help="directory of the JSON files")
    a = ap.parse_args()
    stale = []
    for name, fn in DASHBOARDS.items():
        path, text = os.path.join(a.out, name), render(fn)
        if a.check:
            try:
                with open(path, encoding="utf-8") as f:
                    same = f.read() == text
            except OSError:
                same = False
            if not same:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("stale (run deploy/monitoring/grafana/generate.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
