#!/usr/bin/env bash
# engine_tuning_cli.sh — the engine's tuning knobs (src/cli/tuning.c) reach
# the engine the same way through serve, bench and classify: --help lists
# them, a bad value exits 2 naming the knob, and a value set as a flag, as
# OSPREY_ENGINE_* or as the older OSP_ENGINE_* spelling changes what the
# engine does (seen in --verbose's plan: "conv activations ..."; in
# --engine-profile's per-step timings at exit), with flags > OSPREY_ENGINE_*
# > OSP_ENGINE_*. --max-isa / OSPREY_MAX_ISA shows in the plan, in bench's
# report and in serve's "model ready" line. Skips the runs (not the
# argument checks) without SqueezeNet.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"
. "$SRC/scripts/find-models.sh"
fail() { echo "FAIL: $*"; exit 1; }
unset OSPREY_ENGINE_CONV_LAYOUT OSP_ENGINE_CONV_LAYOUT OSPREY_ENGINE_PROFILE OSP_ENGINE_PROFILE OSPREY_MAX_ISA

for cmd in serve bench classify; do
    help=$("$OSPREY" "$cmd" --help) || fail "$cmd --help exited $?"
    for f in --max-isa --engine-conv-layout --engine-winograd --engine-int8-dnnl --engine-int8-requant \
             --engine-q8-dw --engine-q8-pw --engine-q8-tile --engine-q8-tile-kb --engine-fcq \
             --engine-batch-split --engine-bind --engine-profile --cache-dir; do
        grep -q -- "$f " <<<"$help" || fail "$cmd --help lacks $f"
    done
done
expect_fail() { # expected exit code, a pattern stderr must contain, then the command
    local want=$1 pat=$2; shift 2
    local err; err=$(timeout 30 "$@" 2>&1 >/dev/null); local rc=$?
    [ $rc -eq "$want" ] || fail "expected exit $want, got $rc: $*"
    grep -q -- "$pat" <<<"$err" || fail "no '$pat' in the message of: $* ($err)"
}
expect_fail 2 engine-winograd "$OSPREY" classify --model x.onnx --engine-winograd maybe x.jpg
expect_fail 2 engine-conv-layout "$OSPREY" bench --model x.onnx --engine-conv-layout nhwc
expect_fail 2 engine-q8-tile-kb "$OSPREY" serve --model x.onnx --engine-q8-tile-kb -1
expect_fail 2 OSPREY_ENGINE_BIND env OSPREY_ENGINE_BIND=sometimes "$OSPREY" classify --model x.onnx x.jpg
expect_fail 2 OSP_ENGINE_FCQ env OSP_ENGINE_FCQ=no "$OSPREY" bench --model x.onnx
expect_fail 2 max-isa "$OSPREY" classify --model x.onnx --max-isa avx10 x.jpg
expect_fail 2 OSPREY_MAX_ISA env OSPREY_MAX_ISA=AVX2 "$OSPREY" serve --model x.onnx
CFG=$(mktemp /tmp/osp_tuning_cfg.XXXXXX)
CACHE=$(mktemp -d /tmp/osp_tuning_cache.XXXXXX)
trap 'rm -f "$CFG"; rm -rf "$CACHE"; serve_cleanup' EXIT
echo '{"engine-int8-requant": "float"}' >"$CFG"
expect_fail 2 engine-int8-requant "$OSPREY" serve --config "$CFG" --model x.onnx

MODELS=$(osp_models_dir) || { echo "SKIP (after the argument checks passed): no model directory"; exit 77; }
MODEL="$MODELS/onnx/squeezenet1_1.onnx"
IMAGE="$SRC/scripts/samples/gradient.jpg"
[ -f "$MODEL" ] || { echo "SKIP (after the argument checks passed): $MODEL not found"; exit 77; }

verbose() { # classify --verbose's stderr for: [env...] -- [classify flags...]
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" "$OSPREY" classify --model "$MODEL" --threads 1 --precision fp32 \
        --verbose "$@" "$IMAGE" 2>&1 >/dev/null
}
layout() { # the conv layout the engine's plan reports for: [env...] -- [classify flags...]
    verbose "$@" | sed -n 's/.*conv activations \([^,]*\).*/\1/p' | head -1
}
check_layout() { # expected, then layout's arguments
    local want=$1; shift
    local got; got=$(layout "$@")
    [ "$got" = "$want" ] || fail "conv activations '$got', expected '$want' for: $*"
}
# default: measured; the plan follows the choice, the cache keeps it
out=$(verbose -- --cache-dir "$CACHE")
choice=$(sed -n 's/^choices: conv layout \([a-z+]*\).*measured at batch.*/\1/p' <<<"$out")
[ -n "$choice" ] || fail "no measured choice in classify --verbose: $out"
want="oneDNN's choice"; [ "${choice%%+*}" = blocked ] && want=nChw16c
grep -q "conv activations $want" <<<"$out" || fail "choice $choice but the plan says: $(grep 'conv activations' <<<"$out")"
grep -q "	$choice	" "$CACHE/engine-choices.tsv" || fail "choice $choice not in $CACHE/engine-choices.tsv"
out=$(OSPREY_CACHE_DIR="$CACHE" verbose --)
grep -q "^choices: conv layout $choice: cached in $CACHE/engine-choices.tsv" <<<"$out" ||
    fail "the second run did not take the cached choice: $(grep '^choices' <<<"$out")"
grep -q "conv activations $want" <<<"$out" || fail "cached choice $choice but the plan differs"
out=$(verbose -- --cache-dir off)
grep -q "^choices: conv layout [a-z+]*: measured" <<<"$out" || fail "--cache-dir off still read a cache"
echo "classify: the measured layout reaches the plan, and is cached ($choice)"
check_layout "oneDNN's choice" -- --engine-conv-layout any         # flag
check_layout "oneDNN's choice" OSPREY_ENGINE_CONV_LAYOUT=any --    # environment
check_layout "oneDNN's choice" OSP_ENGINE_CONV_LAYOUT=any --       # the older spelling
check_layout "nChw16c" OSPREY_ENGINE_CONV_LAYOUT=any -- --engine-conv-layout blocked
check_layout "nChw16c" OSPREY_ENGINE_CONV_LAYOUT=blocked OSP_ENGINE_CONV_LAYOUT=any --
echo "classify: conv layout from flag, OSPREY_ENGINE_*, OSP_ENGINE_*, in that order"

# the ISA ceiling: the plan says it, AUTO precision follows it
plan=$("$OSPREY" classify --model "$MODEL" --threads 1 --verbose --max-isa avx2 "$IMAGE" 2>&1 >/dev/null)
grep -q "^ISA avx2 (ceiling avx2; this CPU: " <<<"$plan" || fail "classify --max-isa avx2: no ISA line in: $plan"
grep -q "^precision fp32," <<<"$plan" || fail "classify --max-isa avx2: auto precision is not fp32"
plan=$(OSPREY_MAX_ISA=avx2 "$OSPREY" classify --model "$MODEL" --threads 1 --verbose "$IMAGE" 2>&1 >/dev/null)
grep -q "^ISA avx2 (ceiling avx2" <<<"$plan" || fail "OSPREY_MAX_ISA=avx2 not applied"
out=$("$OSPREY" bench --model "$MODEL" --threads 1 --seconds 0 --warmup 0 --max-isa avx2 2>&1) ||
    fail "bench --max-isa avx2: $out"
grep -q "^isa  *avx2  *(ceiling avx2; this CPU " <<<"$out" || fail "bench prints no ISA line: $out"
echo "classify, bench: --max-isa and OSPREY_MAX_ISA"

# bench: the step profile is printed with the plans when the engine ends.
out=$("$OSPREY" bench --model "$MODEL" --threads 1 --seconds 0 --warmup 0 \
      --engine-profile on 2>&1) || fail "bench --engine-profile on: $out"
grep -q "^profile: [0-9]* runs" <<<"$out" || fail "bench --engine-profile on printed no step profile"
out=$("$OSPREY" bench --model "$MODEL" --threads 1 --seconds 0 --warmup 0 2>&1) || fail "bench: $out"
grep -q "^profile:" <<<"$out" && fail "bench printed a step profile without --engine-profile"
echo "bench: --engine-profile on times the steps"

# serve: the same knob from its config file; the profile comes at shutdown.
printf '{"engine-profile": "on", "max-isa": "avx2", "model": "%s", "threads": 1, "max-batch": 1}\n' "$MODEL" >"$CFG"
serve_start --config "$CFG" || exit 1
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -F "file=@$IMAGE" \
       "http://127.0.0.1:$SERVE_PORT/classify")
[ "$code" = 200 ] || fail "serve answered $code to a classification"
serve_stop || fail "serve did not exit 0"
grep -q "^profile: [0-9]* runs" "$SERVE_LOG" || fail "serve with engine-profile in its config printed no step profile"
grep -q '"msg":"model ready".*"isa":"avx2"' "$SERVE_LOG" || fail "serve: max-isa in the config not in effect"
echo "serve: engine-profile and max-isa from the config file reach the engine"
echo "engine_tuning_cli: ok"
