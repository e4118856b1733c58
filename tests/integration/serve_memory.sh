#!/usr/bin/env bash
# serve_memory.sh — the memory budget (--max-inflight-bytes,
# docs/adr/0049-memory-budget.md) holds under issue 17's upload attack, on
# the worker and on the dispatcher, each run inside a cgroup with a real
# memory limit of 512 MiB (v1 `memory` hierarchy or v2 memory.max, made
# below our own cgroup as serve_cgroup.sh does):
#   * the default budget comes from that limit: a quarter, 128 MiB (the
#     start log says so and names the cgroup file);
#   * 40 attackers each declare a 24 MB body, send 16 MB of it at once and
#     then hold the connection (a byte every 5 s: far above the 1024 B/s
#     minimum body rate, whose allowance for 24 MB is hours, so the budget
#     and not the slow-client deadline is what holds). Unbounded, they would
#     take 640 MB: past the limit, the kernel would OOM-kill the process.
#     With the budget 5 fit (5 x 24 MB = 120 MB); the others get 503 +
#     Retry-After before their body is stored;
#   * meanwhile 20 normal classify requests all succeed (0 failures);
#   * the process is not OOM-killed, and its peak RSS (VmHWM) stays within
#     its RSS before the attack + the budget + 64 MiB — the fixed overhead
#     allowed: libmicrohttpd's per-connection pools (41 connections x
#     32 KiB at most), thread stacks touched, the allocator's slack. Before
#     the budget the same attack took a worker from 33 MB to 1.6 GB;
#   * osprey_http_budget_rejections_total counts the 503s, and
#     osprey_http_inflight_bytes returns to 0 once the attackers go away
#     (the bytes of requests whose client vanished are released);
#   * a client that sends "Expect: 100-continue" with a 30 MB body while
#     the budget is full gets the 503 without uploading the body;
#   * the dispatcher streams bodies over 64 KiB to its backend
#     (docs/adr/0050-dispatch-body-streaming.md): it holds no attacker's
#     body, only a 64 KiB window each, so under the same attack (through
#     it, to the worker, whose budget refuses what it cannot hold) its
#     peak RSS stays within its RSS before + 64 MiB, its budget in use
#     stays within 40 windows (+ the normal requests' small bodies), the
#     20 normal requests succeed and its budget returns to 0; the checks
#     above that count its own refusals (503s, the 100-continue client)
#     are the worker's (attack_streamed below);
#   * on the worker, a 3000x3000 PNG (27 MB of pixels) gets 503 while the
#     attackers leave ~14 MB of room — refused from its header, before the
#     pixels are allocated — and 200 once they are gone.
# Skips (77) without root or a memory controller we can use.
set -uo pipefail
. "$(dirname "$0")/lib/dispatch_lib.bash"
. "$(dirname "$0")/lib/cgroup.bash"

[ "$(id -u)" = 0 ] || { echo "SKIP: creating a cgroup needs root (uid $(id -u))"; exit 77; }
ATTACK="$PY $SRC/tests/integration/lib/upload_attack.py"
LIMIT=$((512 << 20))
BUDGET=$((LIMIT / 4))
OVERHEAD=$((64 << 20))
CLIENTS=40 DECLARED=24000000 SENT=16000000 HOLD_S=10

CGROUPS=()
cleanup() {
    dispatch_cleanup
    cgroup_remove "${CGROUPS[@]}"
}
trap cleanup EXIT

read -r V1ROOT V1MNT < <(mount_of cgroup memory)
if [ -n "${V1MNT:-}" ]; then
    PARENT=$(join_path "$V1ROOT" "$V1MNT" "$(own_path memory)") || { echo "SKIP: our memory cgroup is not under its mount's root"; exit 77; }
    VERSION=1 LIMIT_FILE=memory.limit_in_bytes
else
    read -r V2ROOT V2MNT < <(mount_of cgroup2)
    [ -n "${V2MNT:-}" ] || { echo "SKIP: no cgroup v1 memory controller and no cgroup2 mount"; exit 77; }
    PARENT=$(join_path "$V2ROOT" "$V2MNT" "$(own_path "")") || { echo "SKIP: our cgroup is not under the cgroup2 mount's root"; exit 77; }
    VERSION=2 LIMIT_FILE=memory.max
    grep -qw memory "$PARENT/cgroup.controllers" 2>/dev/null || { echo "SKIP: cgroup v2 without the memory controller in $PARENT"; exit 77; }
    grep -qw memory "$PARENT/cgroup.subtree_control" ||
        echo +memory >"$PARENT/cgroup.subtree_control" 2>/dev/null || {
            echo "SKIP: cannot enable memory in $PARENT/cgroup.subtree_control"; exit 77; }
fi
make_cgroup() { # → CG, a new cgroup limited to $LIMIT
    CG="$PARENT/osp-mem-$$-$RANDOM"
    mkdir "$CG" && CGROUPS+=("$CG") && echo "$LIMIT" >"$CG/$LIMIT_FILE"
}
oom_kills() { # cgroup dir → OOM kills in it so far
    if [ "$VERSION" = 1 ]; then
        awk '$1 == "oom_kill" { print $2; f = 1 } END { if (!f) print 0 }' "$1/memory.oom_control"
    else
        awk '$1 == "oom_kill" { print $2; f = 1 } END { if (!f) print 0 }' "$1/memory.events"
    fi
}
kib() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"; }

# start_in_cgroup NAME CMD... — runs CMD inside a new cgroup; sets PID, PORT.
start_in_cgroup() {
    local name=$1; shift
    make_cgroup || { echo "SKIP: cannot create a memory cgroup below $PARENT"; exit 77; }
    LOG=$TMPD/$name.log
    sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG" "$@" >"$LOG" 2>&1 &
    PID=$!
    PIDS+=($!)
    PORT=$(wait_port "$LOG") || { echo "$name did not start:"; cat "$LOG"; exit 1; }
    wait_ready "http://127.0.0.1:$PORT" || exit 1
    grep -q "$(basename "$CG")" "/proc/$PID/cgroup" || { echo "FAIL: $name is not in $CG"; exit 1; }
}

# attack NAME URL_PORT [streamed] — runs the attack against PID (in CG)
# and asserts. streamed: PID is the dispatcher, which streams the bodies to
# the worker (whose budget refuses): it must hold no body (RSS within
# OVERHEAD of the start, budget in use within the 40 windows + one normal
# request's body), and the refusals are the worker's, not counted here.
attack() {
    local name=$1 port=$2 streamed=${3:-} base out fails=0 i t0
    local murl=http://127.0.0.1:$port/metrics
    grep -m1 '"msg":"memory budget"' "$LOG"
    grep -q "\"msg\":\"memory budget\",\"max_inflight_bytes\":\"$BUDGET\",\"source\":\"cgroup v$VERSION " "$LOG" || {
        echo "FAIL: $name: the default budget is not a quarter of the cgroup's $LIMIT bytes"; exit 1; }
    base=$(( $(kib "$PID" VmRSS) * 1024 ))
    t0=$(date +%s.%N)
    $ATTACK 127.0.0.1 "$port" /classify "$CLIENTS" "$DECLARED" "$SENT" "$HOLD_S" >"$TMPD/attack.json" &
    local apid=$!
    sleep 2 # the attackers have connected and sent (loopback: well under 1 s)
    local used; used=$(curl -s "$murl" | awk '$1 == "osprey_http_inflight_bytes" { print $2 }')
    # While the budget is full, a 100-continue client is refused before
    # it uploads: 503, Retry-After, and (almost) nothing sent.
    [ -z "$streamed" ] && {
    head -c 30000000 /dev/zero >"$TMPD/big.bin"
    out=$(curl -s -D "$TMPD/h" -o "$TMPD/b" -w '%{http_code} %{size_upload}' --max-time 10 \
          -H 'Expect: 100-continue' -H 'Content-Type: image/jpeg' \
          --data-binary @"$TMPD/big.bin" "http://127.0.0.1:$port/classify")
    [ "${out%% *}" = 503 ] || { echo "FAIL: $name: 100-continue upload got '$out', want 503"; cat "$TMPD/b"; exit 1; }
    [ "${out##* }" -lt 1000000 ] || { echo "FAIL: $name: the refused client uploaded ${out##* } bytes"; exit 1; }
    grep -qi '^Retry-After: 1' "$TMPD/h" || { echo "FAIL: $name: no Retry-After in the 503"; cat "$TMPD/h"; exit 1; }
    grep -q 'memory budget' "$TMPD/b" || { echo "FAIL: $name: 503 body: $(cat "$TMPD/b")"; exit 1; }
    }
    # The decode path: a 3000x3000 PNG (27 MB of pixels, 40 KB encoded)
    # does not fit the room the attackers left (~14 MB): 503 before its
    # pixels are allocated. (The dispatcher forwards it: the worker, not
    # under attack then, classifies it.)
    if [ "$name" = worker ]; then
        out=$(curl -s -D "$TMPD/h" -o "$TMPD/b" -w '%{http_code}' --max-time 10 -H 'Content-Type: image/png' \
              --data-binary @"$TMPD/big.png" "http://127.0.0.1:$port/classify")
        [ "$out" = 503 ] && grep -qi '^Retry-After: 1' "$TMPD/h" || {
            echo "FAIL: $name: a 3000x3000 image while the budget is nearly full got $out, want 503"; cat "$TMPD/b"; exit 1; }
        n_extra=2
    else
        n_extra=1
    fi
    for ((i = 0; i < 20; i++)); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: image/jpeg' \
               --data-binary @"$IMG" "http://127.0.0.1:$port/classify")
        [ "$code" = 200 ] || { fails=$((fails + 1)); echo "normal request $i: HTTP $code"; }
        sleep 0.2
    done
    wait "$apid"
    local res; res=$(cat "$TMPD/attack.json")
    echo "$name: attack: $res; budget in use during it: $used bytes"
    kill -0 "$PID" 2>/dev/null || { echo "FAIL: $name died under the attack"; tail "$LOG"; exit 1; }
    [ "$(oom_kills "$CG")" = 0 ] || { echo "FAIL: $name: OOM kills in its cgroup"; exit 1; }
    [ "$fails" = 0 ] || { echo "FAIL: $name: $fails of 20 normal requests failed"; exit 1; }
    local peak=$(( $(kib "$PID" VmHWM) * 1024 ))
    local bodies=$BUDGET
    [ -z "$streamed" ] || bodies=0 # no body is held
    local bound=$((base + bodies + OVERHEAD))
    echo "$name: RSS before $((base >> 20)) MiB, peak $((peak >> 20)) MiB, bound $((bound >> 20)) MiB (before + bodies held $((bodies >> 20)) + $((OVERHEAD >> 20)))"
    [ "$peak" -le "$bound" ] || { echo "FAIL: $name: peak RSS above the bound"; exit 1; }
    if [ -n "$streamed" ]; then
        local max_used=$(( (CLIENTS + 2) * 65536 ))
        [ "${used:-0}" -le "$max_used" ] || {
            echo "FAIL: $name: osprey_http_inflight_bytes $used during the attack (want <= $max_used: windows only)"; exit 1; }
    else
    [ "${used:-0}" -le "$BUDGET" ] && [ "${used:-0}" -ge $((4 * DECLARED)) ] || {
        echo "FAIL: $name: osprey_http_inflight_bytes $used during the attack (want 4..5 bodies of $DECLARED, <= $BUDGET)"; exit 1; }
    local held n503
    held=$(jq_get "$res" 'v["held"]') n503=$(jq_get "$res" 'v["answered"].get("503", 0)')
    [ "$held" -le $((BUDGET / DECLARED)) ] && [ "$held" -ge 1 ] || { echo "FAIL: $name: $held attackers held (want 1..$((BUDGET / DECLARED)))"; exit 1; }
    [ $((held + n503)) = "$CLIENTS" ] || { echo "FAIL: $name: attackers neither held nor answered 503: $res"; exit 1; }
    local rej; rej=$(curl -s "$murl" | awk '$1 == "osprey_http_budget_rejections_total" { print $2 }')
    # the attackers' 503s, the 100-continue client's (and the big image's)
    [ "$rej" = $((n503 + n_extra)) ] || { echo "FAIL: $name: rejections_total $rej, want $((n503 + n_extra))"; exit 1; }
    fi
    # The attackers closed: what they held is released (≤ 5 s).
    for ((i = 0; i < 50; i++)); do
        used=$(curl -s "$murl" | awk '$1 == "osprey_http_inflight_bytes" { print $2 }')
        [ "$used" = 0 ] && break
        sleep 0.1
    done
    [ "$used" = 0 ] || { echo "FAIL: $name: $used bytes still reserved after the attackers left"; exit 1; }
    # With room again, the same image is classified.
    code=$(curl -s -o "$TMPD/b" -w '%{http_code}' --max-time 30 -H 'Content-Type: image/png' \
           --data-binary @"$TMPD/big.png" "http://127.0.0.1:$port/classify")
    [ "$code" = 200 ] || { echo "FAIL: $name: the 3000x3000 image after the attack got $code"; cat "$TMPD/b"; exit 1; }
    echo "$name: ok ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s)"
}

# A 3000x3000 grey PNG, written with zlib alone.
$PY - "$TMPD/big.png" <<'PYEOF'
import struct, sys, zlib
w = h = 3000
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
raw = zlib.compress((b"\0" + b"\x80" * (3 * w)) * h, 9)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", raw) + chunk(b"IEND", b""))
PYEOF
echo "cgroup v$VERSION: memory cgroups below $PARENT, limit $((LIMIT >> 20)) MiB"
start_in_cgroup worker "$OSPREY" serve --host 127.0.0.1 --port 0 --model "$MODEL" --threads 1
attack worker "$PORT"
WPORT=$PORT

start_in_cgroup dispatcher "$OSPREY" dispatch --host 127.0.0.1 --port 0 --admin-port 0 \
    --backend "127.0.0.1:$WPORT"
attack dispatcher "$PORT" streamed
echo "serve_memory: ok"
