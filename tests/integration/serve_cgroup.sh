#!/usr/bin/env bash
# serve_cgroup.sh — `osprey serve` sizes its threads from the CPU quota of a
# real cgroup (src/common/cpu_budget.c): the test makes its own cgroup,
# below its own one, in whichever version holds the cpu controller — v1's
# `cpu` hierarchy (this Debian host, many Kubernetes nodes) or, on a pure v2
# host, a child of the current cgroup with `cpu` in subtree_control — and
# starts the worker inside it:
#   quota 1 CPU (100000/100000)   -> cpu budget 1, engine_threads 1,
#                                    http_threads 1, and it classifies;
#   quota 1.5 CPUs                -> 1: rounded down;
#   quota 2.5 CPUs                -> min(2, affinity CPUs);
#   no quota (-1 / "max")         -> the affinity count (needs >= 2 CPUs and
#                                    no quota above our cgroup).
# The cgroups are removed on exit, after the server has left them. Skips
# (exit 77) without root, a writable cgroupfs or a delegable cpu controller,
# or without a model.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"

MODEL=$(serve_find_model) || { echo "SKIP: no ONNX model (mobilenet_v2/squeezenet1_1) in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: creating a cgroup needs root (uid $(id -u))"; exit 77; }

CGROUPS=()   # made by us, removed in reverse order on exit
. "$(dirname "$0")/lib/cgroup.bash"
cleanup() {
    serve_cleanup
    cgroup_remove "${CGROUPS[@]}"
}
trap cleanup EXIT

# The cgroup hierarchy to use: VERSION 1 or 2, PARENT (our own cgroup's
# directory there) and MOUNT (its mount point: quotas above it are not
# ours to see); mount_of, own_path, join_path: lib/cgroup.bash.

VERSION=
read -r V1ROOT V1MNT < <(mount_of cgroup cpu)
if [ -n "${V1MNT:-}" ]; then
    P=$(own_path cpu)
    PARENT=$(join_path "$V1ROOT" "$V1MNT" "$P") || { echo "SKIP: our cgroup $P is not under the cpu mount's root $V1ROOT"; exit 77; }
    VERSION=1 MOUNT=$V1MNT
else
    read -r V2ROOT V2MNT < <(mount_of cgroup2)
    [ -n "${V2MNT:-}" ] || { echo "SKIP: no cgroup v1 cpu controller and no cgroup2 mount"; exit 77; }
    P=$(own_path "")
    PARENT=$(join_path "$V2ROOT" "$V2MNT" "$P") || { echo "SKIP: our cgroup $P is not under the cgroup2 mount's root $V2ROOT"; exit 77; }
    VERSION=2 MOUNT=$V2MNT
    grep -qw cpu "$PARENT/cgroup.controllers" 2>/dev/null || { echo "SKIP: cgroup v2 without the cpu controller in $PARENT (not delegated to us)"; exit 77; }
    if ! grep -qw cpu "$PARENT/cgroup.subtree_control"; then
        echo +cpu >"$PARENT/cgroup.subtree_control" 2>/dev/null || {
            echo "SKIP: cannot enable cpu in $PARENT/cgroup.subtree_control (a v2 cgroup with processes cannot delegate controllers)"; exit 77; }
    fi
fi
echo "cgroup v$VERSION: making cgroups below $PARENT (mount $MOUNT)"

# make_cgroup QUOTA_US PERIOD_US (QUOTA_US -1 = none) -> prints the dir
make_cgroup() {
    local d="$PARENT/osp-test-$$-$RANDOM"
    mkdir "$d" 2>/dev/null || return 1
    CGROUPS+=("$d")
    if [ "$VERSION" = 1 ]; then
        # v1 refuses a quota above an ancestor's (EINVAL): the caller says
        # which case that skipped.
        echo "$2" >"$d/cpu.cfs_period_us" && echo "$1" >"$d/cpu.cfs_quota_us" || return 1
    else
        local q=$1; [ "$q" = -1 ] && q=max
        echo "$q $2" >"$d/cpu.max" || return 1
    fi
    CG=$d
}

# The tightest quota between our cgroup and the mount point, in CPUs x100
# (0 = none): what a "no quota" cgroup below us inherits.
ancestor_quota_x100() {
    local d=$PARENT best=0 q p
    while :; do
        q= p=
        if [ "$VERSION" = 1 ]; then
            q=$(cat "$d/cpu.cfs_quota_us" 2>/dev/null); p=$(cat "$d/cpu.cfs_period_us" 2>/dev/null)
        else
            read -r q p 2>/dev/null <"$d/cpu.max"
        fi
        if [[ "$q" =~ ^[0-9]+$ && "$p" =~ ^[0-9]+$ && $p -gt 0 && $q -gt 0 ]]; then
            local c=$((q * 100 / p))
            if [ $best = 0 ] || [ $c -lt $best ]; then best=$c; fi
        fi
        [ "$d" = "$MOUNT" ] || [ "${#d}" -le "${#MOUNT}" ] && break
        d=${d%/*}
    done
    echo $best
}

# field NAME MSG: the number NAME in the first log line with "msg":"MSG".
field() {
    grep -m1 "\"msg\":\"$2\"" "$SERVE_LOG" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"
}
source_of() { grep -m1 '"msg":"cpu budget"' "$SERVE_LOG" | sed -n 's/.*"source":"\([^"]*\)".*/\1/p'; }

# run_in QUOTA PERIOD: starts the worker in a new cgroup with that quota;
# returns 2 when the cgroup cannot be made.
run_in() {
    make_cgroup "$1" "$2" || return 2
    SERVE_WRAPPER=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CG")
    serve_start --model "$MODEL" --max-batch 2 || exit 1
    grep -q "$(basename "$CG")" "/proc/$SERVE_PID/cgroup" || {
        echo "FAIL: the worker is not in $CG:"; cat "/proc/$SERVE_PID/cgroup"; exit 1; }
    grep -m1 '"msg":"cpu budget"' "$SERVE_LOG"
}

# expect NAME VALUE MSG: the logged number NAME of line MSG is VALUE.
expect() {
    local got; got=$(field "$1" "$3")
    [ "$got" = "$2" ] || { echo "FAIL: $3: $1 is '$got', want $2"; cat "$SERVE_LOG"; exit 1; }
}

AFFINITY=$(nproc)
ANC=$(ancestor_quota_x100)
[ "$ANC" = 0 ] || echo "note: a quota of $ANC/100 CPUs above $PARENT limits every cgroup we make"
min() { [ "$1" -lt "$2" ] && echo "$1" || echo "$2"; }

# 1 CPU: every thread count the worker reports is 1, and it still serves.
run_in 100000 100000 || { echo "SKIP: cannot create a cgroup with a CPU quota below $PARENT (read-only cgroupfs?)"; exit 77; }
expect cpus 1 "cpu budget"
expect affinity_cpus "$AFFINITY" "cpu budget"
expect http_threads 1 listening
expect engine_threads 1 "model ready"
[[ "$(source_of)" == "cgroup v$VERSION "*"quota 100000/100000" ]] || {
    echo "FAIL: source '$(source_of)' does not name the v$VERSION quota"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -H 'Content-Type: image/jpeg' \
       --data-binary @"$SRC/scripts/samples/gradient.jpg" "http://127.0.0.1:$SERVE_PORT/classify")
[ "$code" = 200 ] || { echo "FAIL: classify in the 1-CPU cgroup: HTTP $code"; exit 1; }
echo "threads of the worker in the 1-CPU cgroup: $(awk '/^Threads:/ {print $2}' /proc/$SERVE_PID/status)"
serve_stop || { echo "serve did not exit 0 on SIGTERM"; tail -5 "$SERVE_LOG"; exit 1; }
echo "1-CPU quota: ok"

# 1.5 CPUs: rounded down to 1 (rounding up would give this 2-CPU machine 2).
if run_in 150000 100000; then
    expect cpus 1 "cpu budget"
    expect http_threads 1 listening
    expect engine_threads 1 "model ready"
    serve_stop || { echo "serve did not exit 0 on SIGTERM"; exit 1; }
    echo "1.5-CPU quota: ok (1)"
else
    echo "1.5-CPU quota: skipped (the kernel refused it below $PARENT: an ancestor's quota is smaller)"
fi

# 2.5 CPUs: rounded down to 2 (or fewer when the affinity mask has fewer).
want=$(min 2 "$AFFINITY")
[ "$ANC" = 0 ] || want=$(min "$want" "$(( ANC < 100 ? 1 : ANC / 100 ))")
if run_in 250000 100000; then
    expect cpus "$want" "cpu budget"
    expect http_threads "$want" listening
    expect engine_threads "$want" "model ready"
    [ "$ANC" != 0 ] || [[ "$(source_of)" == *"quota 250000/100000"* ]] || {
        echo "FAIL: source '$(source_of)' does not name the 2.5-CPU quota"; exit 1; }
    serve_stop || { echo "serve did not exit 0 on SIGTERM"; exit 1; }
    echo "2.5-CPU quota: ok ($want)"
else
    echo "2.5-CPU quota: skipped (the kernel refused it below $PARENT: an ancestor's quota is smaller)"
fi

# No quota: the affinity count.
if [ "$AFFINITY" -lt 2 ]; then
    echo "no quota: skipped (1 CPU in the affinity mask: nothing to tell apart)"
elif [ "$ANC" != 0 ]; then
    echo "no quota: skipped (a quota above $PARENT applies to every cgroup we make)"
else
    run_in -1 100000 || { echo "FAIL: cannot create a cgroup without a quota"; exit 1; }
    expect cpus "$AFFINITY" "cpu budget"
    expect engine_threads "$AFFINITY" "model ready"
    expect http_threads "$(min "$AFFINITY" 16)" listening
    [ "$(source_of)" = "affinity (no cgroup cpu quota)" ] || {
        echo "FAIL: source '$(source_of)'"; exit 1; }
    serve_stop || { echo "serve did not exit 0 on SIGTERM"; exit 1; }
    echo "no quota: ok ($AFFINITY)"
fi
echo "serve_cgroup: ok"
