#!/usr/bin/env bash
# `osprey classify` end to end on the ../shared ONNX models (random weights,
# so labels are not meaningful here; the TFLite tests check real labels):
# the JSON contract, batching (results identical whatever the batch size),
# a bad image gets an error line and exit 1, usage errors exit 2.
set -u
. "$OSP_SOURCE_DIR/scripts/find-models.sh"
MODELS=$(osp_models_dir) || { echo "SKIP: no model directory found (set OSPREY_MODELS, run make models, or provide ../shared)"; exit 77; }
MODEL="$MODELS/onnx/squeezenet1_1.onnx"
IMAGES=$(osp_images_dir "$MODELS")
[ -f "$MODEL" ] || { echo "SKIP: $MODEL not found"; exit 77; }
[ -d "$IMAGES" ] || { echo "SKIP: $IMAGES not found (sample photos)"; exit 77; }
PY=/usr/bin/python3
fail() { echo "FAIL: $*"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

imgs=("$IMAGES/cat.bmp" "$IMAGES/hot_dog.jpg" "$IMAGES/owl.jpg" "$IMAGES/parrot.jpg" "$IMAGES/cat_720p.jpg")
"$OSPREY" classify --model "$MODEL" --top-k 3 --json --batch 2 "${imgs[@]}" > "$tmp/b2.jsonl" || fail "classify exited $?"
"$OSPREY" classify --model "$MODEL" --top-k 3 --json --batch 8 "${imgs[@]}" > "$tmp/b8.jsonl" || fail "classify --batch 8 exited $?"
$PY - "$tmp/b2.jsonl" "$tmp/b8.jsonl" "${#imgs[@]}" <<'PYEOF' || fail "JSON contract"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
n = int(sys.argv[3])
assert len(a) == n and len(b) == n, (len(a), len(b))
for x, y in zip(a, b):
    assert set(x) == {"image", "predictions"}, x
    p = x["predictions"]
    assert len(p) == 3, p
    for q in p:
        assert set(q) == {"index", "label", "score"}, q
        assert 0 <= q["index"] < 1000 and 0.0 <= q["score"] <= 1.0, q
    assert p[0]["score"] >= p[1]["score"] >= p[2]["score"], p
    # batch size must not change results (beyond float noise)
    assert [q["index"] for q in p] == [q["index"] for q in y["predictions"]], (x, y)
    for q, r in zip(p, y["predictions"]):
        assert abs(q["score"] - r["score"]) < 1e-4, (q, r)
print("json ok:", n, "images, batch 2 == batch 8")
PYEOF

# A broken image: error line, others still classified, exit 1.
head -c 1000 "$IMAGES/hot_dog.jpg" > "$tmp/truncated.jpg"
echo "not an image" > "$tmp/text.jpg"
"$OSPREY" classify --model "$MODEL" --json "$IMAGES/cat.bmp" "$tmp/truncated.jpg" "$tmp/text.jpg" "$tmp/missing.png" > "$tmp/err.jsonl"
rc=$?
[ $rc -eq 1 ] || fail "expected exit 1 with bad images, got $rc"
$PY - "$tmp/err.jsonl" <<'PYEOF' || fail "error lines"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert len(lines) == 4, lines
ok = [l for l in lines if "predictions" in l]
bad = [l for l in lines if "error" in l]
assert len(ok) == 1 and ok[0]["image"].endswith("cat.bmp"), lines
assert len(bad) == 3 and all(isinstance(l["error"], str) and l["error"] for l in bad), bad
print("error lines ok:", [l["error"][:60] for l in bad])
PYEOF

# Text output and usage errors.
"$OSPREY" classify --model "$MODEL" --top-k 2 "$IMAGES/cat.bmp" | grep -q "index" || fail "text output"
"$OSPREY" classify --model "$MODEL" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no images should exit 2"
"$OSPREY" classify "$IMAGES/cat.bmp" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no --model should exit 2"
"$OSPREY" classify --model "$MODEL" --precision fp64 "$IMAGES/cat.bmp" >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad precision should exit 2"
"$OSPREY" classify --model "$tmp/missing.onnx" "$IMAGES/cat.bmp" >/dev/null 2>&1; [ $? -eq 1 ] || fail "missing model should exit 1"
echo "classify: all checks passed"
