#!/usr/bin/env bash
# tools_smoke.sh — checks the tooling contracts other parts rely on:
#   1. scripts/find-models.sh honours $OSPREY_MODELS and ignores empty dirs;
#   2. scripts/fetch-models.sh with $OSPREY_MODELS set succeeds offline and
#      touches nothing;
#   3. scripts/run.sh builds the `osprey up` command line (`make run`)
#      and, with --classify, the `osprey classify` one of the CLI contract
#      (checked against a stand-in binary);
#   4. `osprey bench --json` prints one JSON object with the documented keys
#      (SqueezeNet, when the development models are present), and with
#      --compare-ort adds the ort_* keys (when node + onnxruntime-node exist).
# Parts whose prerequisites are missing are skipped with a message; the test
# as a whole fails if any part that ran failed.
set -euo pipefail
SRC=${OSP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
OSPREY=${OSPREY:-${OSP_BUILD_DIR:-$SRC/build}/osprey}
TMP=$(mktemp -d /tmp/tools_smoke.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# 1. find-models
mkdir -p "$TMP/m/onnx" "$TMP/empty"
: > "$TMP/m/onnx/resnet50.onnx"
got=$(OSPREY_MODELS=$TMP/m bash -c ". '$SRC/scripts/find-models.sh'; osp_models_dir")
[ "$got" = "$TMP/m" ] && ok "find-models: \$OSPREY_MODELS wins" || bad "find-models: got '$got', want $TMP/m"
got=$(OSPREY_MODELS=$TMP/m bash -c ". '$SRC/scripts/find-models.sh'; osp_model_path resnet50v1/resnet50-v1-7.onnx onnx/resnet50.onnx")
[ "$got" = "$TMP/m/onnx/resnet50.onnx" ] && ok "find-models: osp_model_path picks the first existing" || bad "find-models: osp_model_path gave '$got'"
got=$(OSPREY_MODELS=$TMP/empty bash -c ". '$SRC/scripts/find-models.sh'; osp_models_dir" || true)
[ "$got" != "$TMP/empty" ] && ok "find-models: an empty \$OSPREY_MODELS is passed over" || bad "find-models: accepted an empty dir"

# 2. fetch-models, offline with OSPREY_MODELS
before=$(ls -A "$SRC" | sort | md5sum)
if out=$(OSPREY_MODELS=$TMP/m "$SRC/scripts/fetch-models.sh" 2>&1) && grep -q "$TMP/m" <<<"$out" &&
   [ "$(ls -A "$SRC" | sort | md5sum)" = "$before" ]; then
  ok "fetch-models: uses \$OSPREY_MODELS without downloading"
else
  bad "fetch-models with \$OSPREY_MODELS: $out"
fi

# 3. run.sh against a stand-in osprey that records its arguments
cat > "$TMP/fake-osprey" <<FAKE
#!/usr/bin/env bash
[ "\${2:-}" = "--help" ] && exit 0
printf '%s\n' "\$@" > "$TMP/args"
FAKE
chmod +x "$TMP/fake-osprey"
mkdir -p "$TMP/m/tflite" "$TMP/imgs"
{ echo background; for i in $(seq 1 1000); do echo "class $i"; done; } > "$TMP/m/tflite/imagenet_labels.txt"
cp "$SRC"/scripts/samples/* "$TMP/imgs/"
if OSPREY_MODELS=$TMP/m OSPREY_IMAGES=$TMP/imgs "$SRC/scripts/run.sh" "$TMP/fake-osprey" --classify --json >/dev/null 2>&1; then
  args=$(cat "$TMP/args")
  labels=$(sed -n '/^--labels$/{n;p}' "$TMP/args")
  if [ "$(sed -n 1p "$TMP/args")" = classify ] && grep -qx -- "--top-k" <<<"$args" &&
     grep -qx "3" <<<"$args" && grep -qx "$TMP/m/onnx/resnet50.onnx" <<<"$args" &&
     [ "$(grep -c "^$TMP/imgs/" <<<"$args")" = 3 ] && grep -qx -- "--json" <<<"$args"; then
    ok "run.sh: osprey classify --model ... --top-k 3 --labels ... IMAGES"
  else
    bad "run.sh: unexpected arguments: $(tr '\n' ' ' <<<"$args")"
  fi
  [ -n "$labels" ] || bad "run.sh: no --labels passed"
else
  bad "run.sh failed with the stand-in binary"
fi
if XDG_CACHE_HOME=$TMP/cache OSPREY_MODELS=$TMP/m OSPREY_IMAGES=$TMP/imgs \
     "$SRC/scripts/run.sh" "$TMP/fake-osprey" --workers 1:2 >/dev/null 2>&1; then
  args=$(tr '\n' ' ' <"$TMP/args")
  case "$args" in
    "up --model $TMP/m/onnx/resnet50.onnx --example-image $TMP/imgs/"*" --worker-args --labels '$TMP/cache/osprey/imagenet1000_labels.txt' --workers 1:2 ")
      ok "run.sh: osprey up --model ... --worker-args '--labels ...' (make run)" ;;
    *) bad "run.sh (up): unexpected arguments: $args" ;;
  esac
else
  bad "run.sh (up) failed with the stand-in binary"
fi

# 4. osprey bench --json (+ --compare-ort)
# shellcheck source=../../scripts/find-models.sh
. "$SRC/scripts/find-models.sh"
if ! MODEL=$(osp_model_path onnx/squeezenet1_1.onnx); then
  echo "skip bench part: onnx/squeezenet1_1.onnx not found in $(osp_models_searched)"
elif ! command -v python3 >/dev/null; then
  echo "skip bench part: python3 (used to parse the JSON) not found"
else
  check_json() { # $1 = json line, rest = required keys
    python3 -c '
import json, sys
d = json.loads(sys.argv[1]); missing = [k for k in sys.argv[2:] if k not in d]
bad = [k for k in ("img_per_s", "p50_ms", "load_ms", "rss_mb") if not (isinstance(d.get(k), (int, float)) and d[k] > 0)]
sys.exit(f"missing {missing}, non-positive {bad}" if missing or bad else 0)' "$@"
  }
  KEYS=(img_per_s p50_ms p99_ms load_ms rss_mb model batch threads precision)
  if line=$("$OSPREY" bench --model "$MODEL" --batch 2 --threads 1 --precision fp32 \
            --seconds 0.2 --warmup 1 --json 2>"$TMP/err") && check_json "$line" "${KEYS[@]}"; then
    ok "osprey bench --json: $line"
  else
    bad "osprey bench --json: ${line:-} $(cat "$TMP/err")"
  fi
  if ! command -v node >/dev/null; then
    echo "skip --compare-ort part: node not installed"
  elif ! (cd "$SRC/bench/ort" && node -e "require('onnxruntime-node')") 2>/dev/null; then
    echo "skip --compare-ort part: onnxruntime-node not installed in $SRC/bench/ort (scripts/setup-venv.sh)"
  else
    if line=$("$OSPREY" bench --model "$MODEL" --batch 2 --threads 1 --precision fp32 \
              --seconds 0.4 --warmup 1 --rounds 2 --compare-ort --json 2>"$TMP/err") &&
       check_json "$line" "${KEYS[@]}" ort_img_per_s ort_p50_ms ort_load_ms ort_rss_mb ratio_vs_ort; then
      ok "osprey bench --compare-ort --json: $line"
    else
      bad "osprey bench --compare-ort: ${line:-} $(cat "$TMP/err")"
    fi
  fi
fi
exit $fail
