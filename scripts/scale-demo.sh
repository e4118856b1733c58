#!/usr/bin/env bash
# scale-demo.sh — `make scale-demo`: the scaling scenario of the mission's
# validation, as one command whose output anyone can regenerate
# (docs/validation.md walks through it). It
#   1. starts the whole local stack with `osprey up` through scripts/run.sh
#      (the default model of `make run`; 1…3 workers, one inference thread
#      each, oversubscribed on small machines; the autoscaler on rps with
#      windows of seconds instead of minutes; Prometheus scraping every
#      second), every port a free loopback one, the state under the results;
#   2. runs `osprey load` (open loop) low → high → spike → low against the
#      dispatcher, polls the autoscaler's /status every second
#      (status.jsonl) and snapshots the dispatcher's /ui/status page in the
#      middle of each level (`osprey report snapshot`: level-N.png);
#   3. runs Locust (closed loop, headless) as a second, independent load
#      source for a short extra phase, with one more snapshot;
#   4. runs `osprey report` over the osprey load window against the stack's
#      Prometheus (before stopping it: Prometheus is part of the stack),
#      renders report.png, then stops the stack with SIGTERM;
#   5. prints where everything is (the results directory, gitignored).
# About 4 minutes on 2 CPUs; every wait is bounded.
#
# --kubernetes runs the same scenario on osprey's Kubernetes path instead
# (`make scale-demo-k8s`; scripts/kube-local-stack.sh): a real API server and
# controller manager, the shipped manifests' worker Deployment, Service and
# RBAC, the autoscaler scaling the Deployment through its scale subresource,
# the dispatcher following the Service's EndpointSlices, pods run as local
# processes by scripts/kube-local-node.py, Prometheus with its Kubernetes
# discovery. The model is then the shipped manifests' (the Coral
# MobileNetV2). Needs root (a network namespace) and Go (the control plane
# and Prometheus are built once, ~10 min, then cached).
#
#   scripts/scale-demo.sh [--out DIR] [--model PATH] [--images DIR] [--no-locust] [--kubernetes]
#
# Environment: OSPREY (the binary, default build/osprey), OSPREY_MODELS and
# OSPREY_RUN_MODEL as for scripts/run.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=find-models.sh
. "$ROOT/scripts/find-models.sh"

usage() { sed -n '/^#   scripts\/scale-demo.sh/,/^# OSPREY_RUN_MODEL/p' "$0" | sed 's/^# \{0,1\}//'; }
OUT="" IMAGES="" LOCUST=1 KUBE=0
OSPREY=${OSPREY:-$ROOT/build/osprey}
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --model) export OSPREY_RUN_MODEL=$2; shift 2 ;;
    --images) IMAGES=$2; shift 2 ;;
    --no-locust) LOCUST=0; shift ;;
    --kubernetes) KUBE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "scale-demo: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
[ -x "$OSPREY" ] || { echo "scale-demo: $OSPREY is not built; run 'make build' first" >&2; exit 1; }
command -v curl >/dev/null || { echo "scale-demo: needs curl" >&2; exit 1; }
command -v jq >/dev/null || { echo "scale-demo: needs jq (scripts/install-deps.sh)" >&2; exit 1; }
if [ "$LOCUST" = 1 ] && [ ! -x "$ROOT/.venv/bin/locust" ]; then
  echo "scale-demo: .venv/bin/locust missing (make venv); or give --no-locust" >&2
  exit 1
fi

# The corpus: real ImageNet photos when the shared copy is there (the
# decode cost of real JPEGs), else the bundled synthetic samples.
if [ -z "$IMAGES" ]; then
  IMAGES=$ROOT/scripts/samples
  MDIR=$(osp_models_dir || true)
  if [ -n "$MDIR" ]; then
    d=$(osp_images_dir "$MDIR/tflite/x" imagenet-samples)/imagenet-samples
    [ -d "$d" ] && IMAGES=$(cd "$d" && pwd -P)
  fi
fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/results/scale-demo-$STAMP}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
STATE=$OUT/stack
rm -rf "$STATE"

# ---- the scenario --------------------------------------------------------
# Requests/s and seconds per level. The autoscaler aims at 20 req/s per
# worker: low wants 1 worker, high 2, the spike 3 (the maximum), the
# last level 1 again once the 20-s scale-down window has passed.
LOW=6 HIGH=36 SPIKE=64
LEVELS="$LOW:40s,$HIGH:50s,$SPIKE:25s,$LOW:65s"
LOCUST_USERS=4 LOCUST_S=35
AUTOSCALE_ARGS="--json-log --metric rps=20 --period-s 3 --rate-window-s 5 \
--scale-down-window-s 20 --stable-window-s 15"
# Local workers share this machine's CPUs: allow 3 one-thread workers on 2.
[ "$KUBE" = 1 ] || AUTOSCALE_ARGS="--oversubscribe $AUTOSCALE_ARGS"
if [ "$KUBE" = 1 ]; then
  PATH_NOTE="Kubernetes path: kube-apiserver + kube-controller-manager (Deployment, ReplicaSet, EndpointSlice controllers) from scripts/kube-test-cluster.sh; the shipped worker Deployment, Service and RBAC; osprey autoscale --k8s-deployment osprey/osprey-worker (scale subresource); osprey dispatch --k8s-service (EndpointSlices); 1-3 pods run as processes by scripts/kube-local-node.py; Prometheus with Kubernetes discovery; scripts/scale-demo.sh --kubernetes"
  if [ -z "${OSPREY_RUN_MODEL:-}" ]; then
    OSPREY_RUN_MODEL=$(osp_model_path tflite/mobilenet_v2_1.0_224_quant.tflite) ||
      { echo "scale-demo: the shipped manifests' model tflite/mobilenet_v2_1.0_224_quant.tflite is not found (make models)" >&2; exit 1; }
    export OSPREY_RUN_MODEL
  fi
else
  PATH_NOTE="local path: osprey up (dispatcher, autoscaler in local mode starting 1-3 worker processes, Prometheus); scripts/scale-demo.sh"
fi

UP_PID="" POLL_PID=""
cleanup() {
  [ -n "$POLL_PID" ] && kill "$POLL_PID" 2>/dev/null || true
  if [ -n "$UP_PID" ] && kill -0 "$UP_PID" 2>/dev/null; then
    kill -TERM "$UP_PID" 2>/dev/null || true
    # osprey up drains and stops everything; bounded, then the hard way
    # (its children follow it: PR_SET_PDEATHSIG).
    # (the Kubernetes stack also stops its pods, Prometheus and the control plane)
    for _ in $(seq $((KUBE ? 360 : 120))); do kill -0 "$UP_PID" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$UP_PID" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Seconds since $1 (a `date +%s.%N`), for the log lines.
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }'; }
log() { echo "scale-demo: $*"; }

{
  echo "date (UTC): $(date -u '+%Y-%m-%d %H:%M:%S')"
  echo "host: $(uname -srm), $(nproc) CPUs"
  echo "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n1) ($(grep -m1 '^model' /proc/cpuinfo | tr -s '\t ' ' '))"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "command: scripts/scale-demo.sh --out $OUT${OSPREY_RUN_MODEL:+ --model $OSPREY_RUN_MODEL}$([ "$KUBE" = 1 ] && echo ' --kubernetes')"
  echo "path: $PATH_NOTE"
  echo "images: $IMAGES"
  echo "osprey load --profile $LEVELS"
  echo "autoscaler: --workers 1:3 $AUTOSCALE_ARGS"
  [ "$LOCUST" = 0 ] || echo "locust: $LOCUST_USERS users for ${LOCUST_S}s (closed loop)"
} > "$OUT/run.txt"

# ---- 1. the stack ----------------------------------------------------------
log "starting the stack (state: $STATE)"
if [ "$KUBE" = 1 ]; then
  OSPREY=$OSPREY "$ROOT/scripts/kube-local-stack.sh" --state-dir "$STATE" --model "$OSPREY_RUN_MODEL" \
      --workers 1:3 --scrape-interval-s 1 --worker-args "--threads 1" --autoscale-args "$AUTOSCALE_ARGS" \
      > "$OUT/up.out" 2>&1 < /dev/null &
else
  "$ROOT/scripts/run.sh" "$OSPREY" --workers 1:3 --state-dir "$STATE" \
      --port 0 --admin-port 0 --autoscaler-port 0 --prometheus-port 0 --alertmanager-port 0 \
      --scrape-interval-s 1 --worker-args "--threads 1" --autoscale-args "$AUTOSCALE_ARGS" \
      > "$OUT/up.out" 2>&1 < /dev/null &
fi
UP_PID=$!
t_up=$(date +%s.%N)
for _ in $(seq $((KUBE ? 1800 : 480))); do   # 240 s (Kubernetes: 900 s, a first build of the control plane)
  [ -f "$STATE/stack.json" ] && break
  kill -0 "$UP_PID" 2>/dev/null || { cat "$OUT/up.out" >&2; log "osprey up exited"; exit 1; }
  sleep 0.5
done
[ -f "$STATE/stack.json" ] || { tail -n 20 "$OUT/up.out" >&2; log "the stack was not up in time"; exit 1; }
port() { jq -r ".ports.$1" "$STATE/stack.json"; }
DISP=http://127.0.0.1:$(port dispatcher)
AUTO=http://127.0.0.1:$(port autoscaler)
PROM=http://127.0.0.1:$(port prometheus)
[ "$(port prometheus)" != null ] || { log "Prometheus did not start (installed? scripts/install-deps.sh)"; exit 1; }
if [ "$KUBE" = 1 ]; then
  echo "model: $OSPREY_RUN_MODEL" >> "$OUT/run.txt"
else
  sed -n 's/^run: .* up --model \([^ ]*\).*/model: \1/p' "$OUT/up.out" | head -n1 >> "$OUT/run.txt"
fi
log "stack up in $(since "$t_up") s: $DISP/ui/status, Prometheus $PROM"

# Prometheus applies its targets a few seconds after it is ready (its scrape
# manager reloads every 5 s): wait until every osprey process has been
# scraped, so the report's charts start with the load (bounded: 30 s).
for _ in $(seq 60); do
  jobs_up=$(curl -s -m 2 "$PROM/api/v1/query" --data-urlencode 'query=count by (job) (up{job=~"osprey-.*"} == 1)' |
              jq -r '.data.result | length' 2>/dev/null || echo 0)
  [ "${jobs_up:-0}" -ge 3 ] && break
  sleep 0.5
done
[ "${jobs_up:-0}" -ge 3 ] || log "Prometheus has not scraped every osprey job yet (${jobs_up:-0} of 3); going on"

# The autoscaler's view, once a second, stamped: the scale-out and
# scale-in times in docs/validation.md come from here.
( while :; do
    s=$(curl -s -m 1 "$AUTO/status" || true)
    [ -n "$s" ] && printf '{"t":%s,"status":%s}\n' "$(date +%s.%N)" "$s"
    sleep 1
  done ) > "$OUT/status.jsonl" 2>/dev/null &
POLL_PID=$!

# A snapshot of /ui/status in the background (it takes a few seconds).
snapshot() {
  "$OSPREY" report snapshot --url "$DISP/ui/status" --out "$OUT/$1.png" --timeout-ms 45000 \
      > "$OUT/$1.snapshot.log" 2>&1 || log "snapshot $1 failed (see $1.snapshot.log)"
}

# ---- 2. osprey load: low → high → spike → low -------------------------------
log "osprey load --profile $LEVELS"
t_load=$(date +%s.%N)
"$OSPREY" load --url "$DISP" --images "$IMAGES" --quiet --profile "$LEVELS" \
    --out "$OUT/load" --timeout-ms 30000 > "$OUT/load.out" 2> "$OUT/load.log" &
LOAD_PID=$!
echo "load start (Unix s): $t_load" >> "$OUT/run.txt"
# The middle of each level, in seconds from the load's start.
start=0 n=0 snaps=()
for step in ${LEVELS//,/ }; do
  d=${step#*:}; d=${d%s}; n=$((n + 1))
  snaps+=("$((start + d / 2)):level-$n")
  start=$((start + d))
done
for s in "${snaps[@]}"; do
  at=${s%%:*} name=${s#*:}
  while [ "$(since "$t_load")" -lt "$at" ] && kill -0 "$LOAD_PID" 2>/dev/null; do sleep 0.5; done
  kill -0 "$LOAD_PID" 2>/dev/null || break
  log "$(since "$t_load") s: snapshot $name ($(curl -s -m 1 "$AUTO/status" | jq -r '"\(.current) workers, desired \(.desired)"' 2>/dev/null || echo '?'))"
  snapshot "$name" &
done
wait "$LOAD_PID" || log "osprey load exited $? (see load.log)"
t_load_end=$(date +%s.%N)
log "load done: $(jq -r '"\(.completed) answered, \(.errors) errors, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms"' "$OUT/load/summary.json")"

# ---- 3. Locust, the second load source -------------------------------------
if [ "$LOCUST" = 1 ]; then
  log "Locust: $LOCUST_USERS users for ${LOCUST_S} s"
  mkdir -p "$OUT/locust"
  t_locust=$(date +%s.%N)
  OSPREY_IMAGES=$IMAGES OSPREY_STEPS="$LOCUST_USERS:${LOCUST_S}s" \
    timeout $((LOCUST_S + 60)) "$ROOT/.venv/bin/locust" -f "$ROOT/load-testing/locust/locustfile.py" \
      --host "$DISP" --headless --only-summary --csv "$OUT/locust/locust" \
      > "$OUT/locust/locust.out" 2>&1 &
  LOCUST_PID=$!
  sleep $((LOCUST_S * 2 / 3))
  log "$(since "$t_load") s: snapshot level-locust"
  snapshot level-locust
  wait "$LOCUST_PID" || log "locust exited $? (see locust/locust.out)"
  echo "locust (Unix s): from $t_locust to $(date +%s.%N)" >> "$OUT/run.txt"
fi
wait_snapshots() { for j in $(jobs -p); do [ "$j" = "$POLL_PID" ] || [ "$j" = "$UP_PID" ] || wait "$j" || true; done; }
wait_snapshots

# ---- 4. the report (Prometheus is still up), then the stop ------------------
log "osprey report"
"$OSPREY" report --timeseries "$OUT/load" --prometheus "$PROM" \
    --from "${t_load%.*}" --to "$(awk -v t="$t_load_end" 'BEGIN { printf "%d", t + 2 }')" \
    --levels "$LEVELS" --load-start "$t_load" --out "$OUT/report" --png "$OUT" \
    --title "osprey scale demo, $(date -u +%Y-%m-%d)" \
    --source-note "$PATH_NOTE" \
    > "$OUT/report.log" 2>&1 || { cat "$OUT/report.log" >&2; log "osprey report failed"; exit 1; }
kill "$POLL_PID" 2>/dev/null || true
POLL_PID=""
log "stopping the stack"
cleanup
UP_PID=""
cp "$STATE"/*.log "$OUT/" 2>/dev/null || true

# ---- 5. where -----------------------------------------------------------------
# The autoscaler's changes (desired, current, ready workers), in seconds
# from the load's start: when it scaled out and in, and why.
jq -r --argjson t0 "$t_load" '[((.t - $t0) * 10 | round / 10), .status.desired, .status.current,
    (if (.status.workers | type) == "object" then .status.workers.ready_replicas
     else [.status.workers[]? | select(.state == "ready")] | length end),
    .status.last_decision.rule] | @tsv' \
  "$OUT/status.jsonl" | awk -F'\t' 'BEGIN { print "s_from_load_start\tdesired\tcurrent\tready\trule" }
    { k = $2 " " $3 " " $4; if (k != p) print; p = k }' > "$OUT/scaling.tsv"
peak=$(jq -s '[.[].status.current] | max' "$OUT/status.jsonl")
last=$(jq -s '.[-1].status.current' "$OUT/status.jsonl")
log "workers: peak $peak, at the end $last (status.jsonl)"
if [ "$LOCUST" = 1 ] && [ -f "$OUT/locust/locust_stats.csv" ]; then
  log "locust: $(awk -F, '$2=="Aggregated" { printf "%s requests, %s failures, %.1f req/s, p50 %s ms, p99 %s ms", $3, $4, $10, $12, $19 }' "$OUT/locust/locust_stats.csv")"
fi
echo
echo "results: $OUT"
echo "  report:    $OUT/report/report.html (and report.md, report.png)"
echo "  snapshots: $(cd "$OUT" && ls level-*.png 2>/dev/null | tr '\n' ' ')"
echo "  scaling:   $OUT/scaling.tsv"
echo "  raw:       load/ locust/ status.jsonl *.log run.txt stack/"
