#!/usr/bin/env bash
# commands_cli.sh — what every `osprey` command shares through the settings
# layer (src/cli/settings.c) and src/cli/lifecycle.c, checked for bench,
# classify, load, serve and dispatch alike: one --help format (usage line,
# "options:", option lines "  [-x, ]--name [ARG]", -h/--help, the sources
# paragraph, "exit status:"), the exit codes (an unknown flag or a bad value
# → 2, a failed start → 1: a missing model, unreadable images, a port in
# use), and for bench, classify and load the precedence flags >
# OSPREY_<CMD>_* environment > config file, seen in which model path a
# failed start names (bench, classify) or in how many requests a run sends
# (load, against a loopback port with no listener). Needs no model.
set -uo pipefail
: "${OSPREY:?OSPREY must point at the osprey binary}"
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/osp_commands_cli.XXXXXX)
LISTENER_PID=
cleanup() {
    [ -n "$LISTENER_PID" ] && kill "$LISTENER_PID" 2>/dev/null && wait "$LISTENER_PID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
SAMPLES="$SRC/scripts/samples"
NOMODEL=/nonexistent/model.onnx
IMAGE="$SAMPLES/gradient.jpg"

# ---- one --help format ----------------------------------------------------
for cmd in bench classify load serve dispatch autoscale; do
    "$OSPREY" "$cmd" --help >"$TMP/help" || fail "$cmd --help exited $?"
    "$OSPREY" "$cmd" -h | cmp -s - "$TMP/help" || fail "$cmd -h differs from --help"
    "$PY" - "$cmd" "$TMP/help" <<'PYEOF' || fail "$cmd --help format"
import re, sys
cmd, text = sys.argv[1], open(sys.argv[2]).read()
lines = text.split("\n")
assert lines[0].startswith(f"usage: osprey {cmd} "), lines[0]
assert "options:" in lines, "no 'options:' line"
opt = re.compile(r"^  (-[A-Za-z], |    )--[a-z0-9-]+( |$)")
start = lines.index("options:") + 1
n = 0
for line in lines[start:]:
    if line.startswith("  -") or line.startswith("      --"):
        assert opt.match(line), f"option line: {line!r}"
        n += 1
    assert len(line) <= 79 or line.startswith("usage:"), f"wider than 79: {line!r}"
assert n >= 5, f"{n} option lines"
assert any(l.startswith("  -h, --help ") for l in lines), "no -h, --help line"
assert re.search(r"--(config|settings) FILE ", text), "no config file option"
assert "flags win over\nthe environment" in text or "flags win over the environment" in text.replace("\n", " "), "no precedence"
assert re.search(r"^exit status: 0 ok, 1 runtime failure", text, re.M), "no exit status"
PYEOF
done
echo "--help: one format in bench, classify, load, serve, dispatch, autoscale"

# ---- exit codes -------------------------------------------------------------
expect() { # expected exit code, then the command; stderr kept in $TMP/err
    local want=$1; shift
    timeout 60 "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
    [ $rc -eq "$want" ] || { cat "$TMP/err"; fail "expected exit $want, got $rc: $*"; }
}
U=http://127.0.0.1:9
for cmd in bench classify load serve dispatch autoscale; do
    expect 2 "$OSPREY" "$cmd" --no-such-flag
    grep -q -- "--help lists the options" "$TMP/err" || fail "$cmd: no pointer to --help"
done
expect 2 "$OSPREY" bench --model x.onnx --batch 0
expect 2 "$OSPREY" classify --model x.onnx --top-k 0 "$IMAGE"
expect 2 "$OSPREY" load --url $U --rate 5 --seed x --images "$SAMPLES"
expect 2 "$OSPREY" serve --model x.onnx --port 70000
expect 2 "$OSPREY" dispatch --port 0 --admin-port -1 --io sideways
expect 2 "$OSPREY" autoscale --dispatcher $U --min 0
expect 2 "$OSPREY" autoscale --dispatcher $U --behavior '{"scaleUp":{"selectPolicy":"Most"}}'
grep -q "selectPolicy" "$TMP/err" || fail "autoscale: the bad behavior field is not named"
expect 2 "$OSPREY" autoscale --min 1
expect 2 "$OSPREY" autoscale simulate --trace x.csv
expect 2 "$OSPREY" autoscale simulate --no-such-flag
expect 1 "$OSPREY" autoscale simulate --trace /nonexistent/trace.csv --capacity 10
expect 2 "$OSPREY" serve --model x.onnx --host 127.0.0.1 --port 0 --http-mode fibers
grep -q "http-mode" "$TMP/err" || fail "serve: the rejected value is not named"
expect 1 "$OSPREY" bench --model $NOMODEL
expect 1 "$OSPREY" classify --model $NOMODEL "$IMAGE"
expect 1 "$OSPREY" load --url $U --rate 5 --images /nonexistent/images
expect 1 "$OSPREY" serve --model $NOMODEL --host 127.0.0.1 --port 0
# A port in use (a listener without SO_REUSEPORT): a failed start, exit 1.
"$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(600)' >"$TMP/port" &
LISTENER_PID=$!
for ((i = 0; i < 100; i++)); do [ -s "$TMP/port" ] && break; sleep 0.05; done
P=$(cat "$TMP/port")
[ -n "$P" ] || fail "no listener"
expect 1 "$OSPREY" serve --model x.onnx --host 127.0.0.1 --port "$P"
grep -q "cannot listen" "$TMP/err" || fail "serve: port in use not said"
expect 1 "$OSPREY" dispatch --host 127.0.0.1 --port "$P" --admin-port -1
expect 1 "$OSPREY" dispatch --io blocking --host 127.0.0.1 --port "$P" --admin-port -1
expect 1 "$OSPREY" autoscale --dispatcher $U --host 127.0.0.1 --port "$P"
echo "exit codes: 2 for a bad flag or value, 1 for a failed start, in every command"

# ---- precedence: flags > environment > file (bench, classify) -----------------
names() { # expects the failed start to name the model path $1
    grep -q -- "$1" "$TMP/err" || { cat "$TMP/err"; fail "the message does not name $1"; }
}
echo '{"model": "/nonexistent/from-file.onnx", "threads": 1}' >"$TMP/bench.json"
expect 1 "$OSPREY" bench --config "$TMP/bench.json"
names from-file.onnx
expect 1 env OSPREY_BENCH_MODEL=/nonexistent/from-env.onnx "$OSPREY" bench --config "$TMP/bench.json"
names from-env.onnx
expect 1 env OSPREY_BENCH_MODEL=/nonexistent/from-env.onnx "$OSPREY" bench --config "$TMP/bench.json" \
    --model /nonexistent/from-flag.onnx
names from-flag.onnx
expect 1 env OSPREY_BENCH_CONFIG="$TMP/bench.json" "$OSPREY" bench
names from-file.onnx
expect 2 env OSPREY_BENCH_BATCH=0 "$OSPREY" bench --model x.onnx
grep -q OSPREY_BENCH_BATCH "$TMP/err" || fail "bench: the variable is not named"
echo '{"model": "x.onnx", "warmup": "many"}' >"$TMP/bad.json"
expect 2 "$OSPREY" bench --config "$TMP/bad.json"
echo '{"model": "x.onnx", "no_such_key": 1}' >"$TMP/bad.json"
expect 2 "$OSPREY" bench --config "$TMP/bad.json"

# classify: the file is --settings (its --config is the model's config).
echo '{"model": "/nonexistent/from-file.onnx", "json": true}' >"$TMP/classify.json"
expect 1 "$OSPREY" classify --settings "$TMP/classify.json" "$IMAGE"
names from-file.onnx
expect 1 env OSPREY_CLASSIFY_MODEL=/nonexistent/from-env.onnx "$OSPREY" classify \
    --settings "$TMP/classify.json" "$IMAGE"
names from-env.onnx
expect 1 env OSPREY_CLASSIFY_MODEL=/nonexistent/from-env.onnx "$OSPREY" classify \
    --settings "$TMP/classify.json" -m /nonexistent/from-flag.onnx "$IMAGE"
names from-flag.onnx
expect 2 env OSPREY_CLASSIFY_JSON=maybe "$OSPREY" classify --model x.onnx "$IMAGE"
expect 2 "$OSPREY" classify --settings "$TMP/classify.json"     # no images
echo "bench, classify: flags > OSPREY_BENCH_*/OSPREY_CLASSIFY_* > config file"

# ---- precedence: load (requests sent to a port with no listener) ----------
if (exec 3<>/dev/tcp/127.0.0.1/9) 2>/dev/null; then
    echo "SKIP (after the checks above passed): something listens on 127.0.0.1:9"
    exit 77
fi
sent() { "$PY" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["sent"])' "$TMP/out"; }
printf '{"url": "%s", "rate": 5, "duration": "1s", "images": "%s", "json": true}\n' "$U" "$SAMPLES" >"$TMP/load.json"
expect 0 "$OSPREY" load --config "$TMP/load.json"
[ "$(sent)" = 5 ] || fail "load: the file's rate: sent $(sent)"
expect 0 env OSPREY_LOAD_RATE=10 "$OSPREY" load --config "$TMP/load.json"
[ "$(sent)" = 10 ] || fail "load: the environment's rate: sent $(sent)"
expect 0 env OSPREY_LOAD_RATE=10 "$OSPREY" load --config "$TMP/load.json" --rate=20
[ "$(sent)" = 20 ] || fail "load: the flag's rate: sent $(sent)"
expect 0 env OSPREY_LOAD_CONFIG="$TMP/load.json" OSPREY_LOAD_HEADER="X-A: 1,X-B: 2" "$OSPREY" load
[ "$(sent)" = 5 ] || fail "load: OSPREY_LOAD_CONFIG: sent $(sent)"
expect 2 env OSPREY_LOAD_RATE=fast "$OSPREY" load --config "$TMP/load.json"
grep -q OSPREY_LOAD_RATE "$TMP/err" || fail "load: the variable is not named"
echo "load: flags > OSPREY_LOAD_* > config file"
echo "commands_cli: ok"
