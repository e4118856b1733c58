#!/usr/bin/env bash
# report.sh — `osprey report` from a real short run (issue 15).
#
# A real `osprey serve` worker (the quantized MobileNetV1 0.25) behind a
# real `osprey dispatch`, an `osprey autoscale --dry-run` deciding on them
# (its desired/current replicas and decisions get recorded), `osprey report
# record` scraping the dispatcher's and the autoscaler's /metrics pages and,
# through --discover (the dispatcher's backends), the worker's, every 0.5 s, a real Prometheus
# on 127.0.0.1 scraping the same pages every 1 s, and `osprey load` with a
# 3-step profile (4 → 16 → 4 req/s, 6 s each) writing its time series.
# Then:
#   - `osprey report --samples` writes report.html that parses (python's
#     html.parser, every tag balanced), has the 7 titled charts with both
#     axes, each of the load, latency, workers, CPU, memory and network
#     charts with a non-empty line; report.md has the per-level table with
#     exactly 3 levels; `--png` writes report.png of the page's width and
#     the height it asked for, and `report snapshot` a page of the stack as
#     a PNG of the --window size;
#   - `osprey report --prometheus --from --to` (the same run through
#     Prometheus's range queries) draws the worker's CPU and memory too;
#   - bad input: a missing time series, a garbage one, a garbage samples
#     file, an unreachable Prometheus → exit 1 with a message naming the
#     problem; a bad flag or a non-loopback snapshot URL → exit 2.
set -u
source "$(dirname "$0")/lib/dispatch_lib.bash"

PROMETHEUS=$(command -v prometheus) || {
    echo "SKIP: prometheus not installed (scripts/install-deps.sh installs the Debian package)"
    exit 77
}
command -v chromium >/dev/null || {
    echo "SKIP: chromium not installed (scripts/install-deps.sh installs the Debian package)"
    exit 77
}
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# png_size FILE → "W H" from the IHDR chunk
png_size() { $PY -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); assert d[:8]==b"\x89PNG\r\n\x1a\n"; print(*struct.unpack(">II", d[16:24]))' "$1"; }

worker_start 0 0 || fail "worker did not start"
W_URL=http://127.0.0.1:${W_PORT[0]}
dispatch_start --backend "127.0.0.1:${W_PORT[0]}" --health-interval-ms 200 || fail "dispatcher did not start"
wait_ready "$D_URL" 60 || fail "dispatcher not ready"
"$OSPREY" autoscale --dispatcher "http://127.0.0.1:$D_ADMIN" --port 0 --json-log --dry-run \
    --min 1 --max 4 --metric rps --target 5 --period-s 2 --scale-down-window-s 4 >"$TMPD/a.log" 2>&1 &
PIDS+=($!)
A_PORT=$(wait_port "$TMPD/a.log") || { cat "$TMPD/a.log"; fail "autoscaler did not start"; }
# the worker through --discover (the dispatcher's /admin/backends), as a
# recorder following an autoscaler's workers finds them
SCRAPES=("http://127.0.0.1:$D_ADMIN/metrics" "http://127.0.0.1:$A_PORT/metrics")

P_PORT=$(free_port)
cat >"$TMPD/prometheus.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: osprey
    static_configs: [{targets: ['127.0.0.1:${W_PORT[0]}', '127.0.0.1:$D_ADMIN', '127.0.0.1:$A_PORT']}]
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$P_PORT']}]
EOF
"$PROMETHEUS" --config.file="$TMPD/prometheus.yml" --storage.tsdb.path="$TMPD/prom-data" \
    --web.listen-address="127.0.0.1:$P_PORT" >"$TMPD/prometheus.log" 2>&1 &
PIDS+=($!)
P_URL=http://127.0.0.1:$P_PORT

"$OSPREY" report record "${SCRAPES[@]/#/--scrape=}" --discover "http://127.0.0.1:$D_ADMIN" --interval 0.5 --out "$TMPD/samples.jsonl" \
    2>"$TMPD/record.log" &
REC_PID=$!
PIDS+=($REC_PID)
for ((i = 0; i < 300; i++)); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$P_URL/-/ready")" = 200 ] && break
    sleep 0.1
done
sleep 2 # a few samples before the load
FROM=$(date +%s.%N)
"$OSPREY" load --url "$D_URL" --profile 4:6s,16:6s,4:6s --images "$IMG" --out "$TMPD/load" \
    --quiet --json >"$TMPD/load.json" 2>"$TMPD/load.err" || { cat "$TMPD/load.err"; fail "osprey load"; }
sleep 3 # Prometheus's last scrapes of the run
TO=$(date +%s.%N)
kill -TERM "$REC_PID"
wait "$REC_PID"
rc=$?
[ "$rc" = 0 ] || { cat "$TMPD/record.log"; fail "report record exited $rc after SIGTERM"; }
lines=$(wc -l <"$TMPD/samples.jsonl")
[ "$lines" -ge 60 ] || fail "recorder wrote $lines lines (want >= 60: 3 pages every 0.5 s for 20+ s)"
echo "ok: recorder wrote $lines lines"

# check_report DIR MIN_R: the HTML parses and has its series; the Markdown
# has 3 levels with the offered rates of the profile, and the worker's CPU
# follows the load (Pearson r >= MIN_R: Prometheus's 1 s scrapes of a CPU
# counter are coarser than the recorder's 0.5 s, hence its lower bound).
check_report() {
    $PY - "$1" "$2" <<'PYEOF' || fail "report in $1"
import re, sys
from html.parser import HTMLParser
d = sys.argv[1]
html = open(d + "/report.html", encoding="utf-8").read()
VOID = {"meta", "br", "rect", "line", "polyline", "path", "circle", "img", "hr", "link"}
class Strict(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.charts, self.cur = [], [], None
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.cur = {"title": "", "axes": set(), "lines": [], "intitle": False}
            self.charts.append(self.cur)
        if self.cur is not None:
            if tag == "g" and "axis" in a.get("class", ""):
                self.cur["axes"].add(a["class"])
            if tag == "polyline":
                self.cur["lines"].append(len(a.get("points", "").split()))
            if tag == "title":
                self.cur["intitle"] = True
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))
    def handle_startendtag(self, tag, attrs):
        saved = list(self.stack)
        self.handle_starttag(tag, attrs)
        self.stack = saved
    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            raise SystemExit(f"unbalanced </{tag}> at {self.getpos()}, open: {self.stack[-3:]}")
        self.stack.pop()
        if tag == "svg":
            self.cur = None
        if tag == "title" and self.cur is not None:
            self.cur["intitle"] = False
    def handle_data(self, data):
        if self.cur is not None and self.cur["intitle"]:
            self.cur["title"] += data
p = Strict()
p.feed(html)
p.close()
assert not p.stack, f"unclosed tags: {p.stack}"
assert "<script" not in html and "src=" not in html and "href=" not in html, "external asset or script"
assert len(p.charts) == 7, f"{len(p.charts)} charts"
want = {"Offered vs achieved load": 2, "Latency per second": 2, "Workers": 1,
        "CPU per worker": 1, "Memory per worker": 1, "Network per worker": 1}
for c in p.charts:
    assert c["title"], "a chart without a title"
    assert c["axes"] == {"axis x", "axis y"}, f"{c['title']}: axes {c['axes']}"
    for k, n in want.items():
        if c["title"].startswith(k):
            full = [x for x in c["lines"] if x >= 10]
            assert len(full) >= n, f"{c['title']}: lines with 10+ points: {c['lines']}"
            want[k] = 0
assert not [k for k, v in want.items() if v], f"charts missing: {want}"
md = open(d + "/report.md", encoding="utf-8").read()
levels = re.findall(r"^\| L(\d+) \|", md, re.M)
assert levels == ["1", "2", "3"], f"levels in report.md: {levels}\n{md}"
rows = {int(m[0]): float(m[1]) for m in re.findall(r"^\| L(\d+) \| [^|]+ \| ([0-9.]+) \|", md, re.M)}
assert abs(rows[1] - 4) < 1 and abs(rows[2] - 16) < 2 and abs(rows[3] - 4) < 1, f"offered per level: {rows}"
assert "| worker CPU, all workers (cores) | " in md
r = float(re.search(r"\| worker CPU, all workers \(cores\) \| (-?[0-9.]+) \|", md).group(1))
assert r >= float(sys.argv[2]), f"CPU vs load r = {r}: the worker's CPU should follow the load"
print(f"ok: {d}: 7 charts, 3 levels, offered {rows}, CPU vs load r = {r}")
PYEOF
}

T0=$(date +%s.%N)
"$OSPREY" report --timeseries "$TMPD/load" --samples "$TMPD/samples.jsonl" --out "$TMPD/rep" \
    --png "$TMPD/png" --status-url "$W_URL/docs" >"$TMPD/rep.out" 2>&1 ||
    { cat "$TMPD/rep.out"; fail "osprey report"; }
T1=$(date +%s.%N)
check_report "$TMPD/rep" 0.5
read -r w h < <(png_size "$TMPD/png/report.png") || fail "report.png is not a PNG"
[ "$w" = 1040 ] && [ "$h" -ge 2500 ] || fail "report.png is ${w}x$h (want 1040 x 2500+)"
read -r w h < <(png_size "$TMPD/png/status.png") || fail "status.png is not a PNG"
[ "$w" = 1280 ] && [ "$h" = 900 ] || fail "status.png is ${w}x$h (want 1280x900)"
echo "ok: report.png and status.png ${w}x$h written ($(echo "$T1 - $T0" | bc) s with Chromium)"
"$OSPREY" report snapshot --url "$W_URL/docs" --out "$TMPD/level-1.png" --window 800x600 --wait-ms 500 ||
    fail "report snapshot"
[ "$(png_size "$TMPD/level-1.png")" = "800 600" ] || fail "snapshot size $(png_size "$TMPD/level-1.png")"
echo "ok: report snapshot → 800x600 PNG"

# The same run through Prometheus.
START=$($PY -c 'import sys,re; print(re.search(r"Second 0 of the load is ([0-9.]+)", open(sys.argv[1]).read()).group(1))' "$TMPD/rep/report.html")
$PY -c "import sys; s=float(sys.argv[1]); f=float(sys.argv[2]); assert abs(s-f) < 3, (s, f)" "$START" "$FROM" ||
    fail "the load's start detected at $START, osprey load started at $FROM"
"$OSPREY" report --timeseries "$TMPD/load" --prometheus "$P_URL" --from "$FROM" --to "$TO" \
    --load-start "$FROM" --out "$TMPD/rep-prom" >"$TMPD/rep-prom.out" 2>&1 ||
    { cat "$TMPD/rep-prom.out"; fail "osprey report --prometheus"; }
check_report "$TMPD/rep-prom" 0.3
# A process that is not osprey's is named by its Prometheus job.
grep -q '<td class="l">127.0.0.1:'"$P_PORT"'</td><td class="l">prometheus</td>' "$TMPD/rep-prom/report.html" ||
    fail "the processes table does not name Prometheus by its job"
echo "ok: Prometheus itself listed as 'prometheus' (its job)"

# Bad input: clear errors, non-zero exits, no crash.
expect() { # CODE PATTERN CMD...
    local code=$1 pat=$2 out rc
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    [ "$rc" = "$code" ] || fail "exit $rc (want $code) from: $* — $out"
    grep -q -- "$pat" <<<"$out" || fail "no '$pat' in: $out"
}
expect 1 "nope: No such file" "$OSPREY" report --timeseries "$TMPD/nope" --out "$TMPD/x"
printf 'second,target,sent,completed,errors,p50_ms,p99_ms,max_ms,inflight,queued\n0,1,1,1,0,1,1,1,0,0\n1,garbage\n' >"$TMPD/bad.csv"
expect 1 "bad.csv:3" "$OSPREY" report --timeseries "$TMPD/bad.csv" --out "$TMPD/x"
head -c 3000 /dev/urandom >"$TMPD/rand.csv"
expect 1 "rand.csv" "$OSPREY" report --timeseries "$TMPD/rand.csv" --out "$TMPD/x"
echo 'not json' >"$TMPD/bad.jsonl"
expect 1 "bad.jsonl:1" "$OSPREY" report --timeseries "$TMPD/load" --samples "$TMPD/bad.jsonl" --out "$TMPD/x"
expect 1 "Prometheus" "$OSPREY" report --timeseries "$TMPD/load" --prometheus "http://127.0.0.1:$(free_port)" \
    --from 1 --to 2 --timeout-ms 2000 --out "$TMPD/x"
expect 2 "--timeseries is required" "$OSPREY" report --out "$TMPD/x"
expect 2 "levels" "$OSPREY" report --timeseries "$TMPD/load" --levels 5:zz --out "$TMPD/x"
expect 2 "loopback" "$OSPREY" report snapshot --url http://example.com/ --out "$TMPD/x.png"
echo "ok: bad input → exit 1 or 2 with the reason"
[ -n "${OSP_REPORT_KEEP:-}" ] && cp -r "$TMPD"/png "$TMPD"/rep "$TMPD"/rep-prom "$TMPD"/level-1.png "$OSP_REPORT_KEEP"/
echo "PASS: report"
