#!/usr/bin/env bash
# serve_repository.sh — `osprey serve --model-repository DIR`: several models
# from DIR/<name>/<version>/model.{onnx,tflite} (+ config.json), the latest
# version of each served; repository index, per-version URLs, the default
# model (first by name), per-model metrics, unload with requests in flight
# and load again without a restart. Skips without the ONNX model.
set -uo pipefail
. "$(dirname "$0")/serve_lib.bash"

MODEL=$(serve_find_model) || { echo "SKIP: no ONNX model (mobilenet_v2/squeezenet1_1) in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
REPO=$(mktemp -d /tmp/osp_repo.XXXXXX)
trap 'rm -rf "$REPO"; serve_cleanup' EXIT
mkdir -p "$REPO/anet/1" "$REPO/anet/3" "$REPO/anet/2" "$REPO/anet/notaversion"
ln -s "$MODEL" "$REPO/anet/1/model.onnx"
ln -s "$MODEL" "$REPO/anet/3/model.onnx"          # latest: 3 (2 has no model)
TFL=$(dirname "$(dirname "$MODEL")")/tflite
HAVE_TFL=0
if [ -f "$TFL/mobilenet_v2_1.0_224_quant.tflite" ] && [ -f "$TFL/imagenet_labels.txt" ]; then
    mkdir -p "$REPO/quant/7"
    ln -s "$TFL/mobilenet_v2_1.0_224_quant.tflite" "$REPO/quant/7/model.tflite"
    printf '{"labels": "%s"}\n' "$TFL/imagenet_labels.txt" >"$REPO/quant/7/config.json"
    HAVE_TFL=1
fi

# A broken repository fails at start with a message, exit 1.
BAD=$(mktemp -d /tmp/osp_repo_bad.XXXXXX)
mkdir -p "$BAD/empty/1"
timeout 60 "$OSPREY" serve --model-repository "$BAD" --host 127.0.0.1 --port 0 >"$BAD.log" 2>&1
rc=$?
grep -q "no <version>/model.onnx" "$BAD.log" || { echo "no error for an empty model dir:"; cat "$BAD.log"; exit 1; }
rm -rf "$BAD" "$BAD.log"
[ $rc -eq 1 ] || { echo "bad repository: exit $rc, expected 1"; exit 1; }

serve_start --model-repository "$REPO" --threads 2 || exit 1
timeout 300 "$PY" - "$SERVE_PORT" "$HAVE_TFL" "$SRC/scripts/samples/gradient.jpg" <<'PYEOF' || { tail -20 "$SERVE_LOG"; exit 1; }
import json, sys, urllib.request, urllib.error
port, have_tfl, img = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
base = f"http://127.0.0.1:{port}"
def get(path, data=None, ctype=None):
    r = urllib.request.Request(base + path, data=data, headers={"Content-Type": ctype} if ctype else {})
    try:
        with urllib.request.urlopen(r, timeout=120) as f:
            return f.status, f.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
st, b = get("/v2/repository/index")
idx = {m["name"]: m for m in json.loads(b)}
assert st == 200 and idx["anet"]["version"] == "3" and idx["anet"]["state"] == "READY", idx
assert ("quant" in idx) == have_tfl, idx
st, b = get("/v2/repository/index", b"{}", "application/json")
assert st == 200
assert get("/v2/models/anet/versions/3")[0] == 200
assert get("/v2/models/anet/versions/1")[0] == 404
assert json.loads(get("/v2/models/anet")[1])["versions"] == ["3"]
data = open(img, "rb").read()
st, b = get("/classify", data, "image/jpeg")
assert st == 200 and json.loads(b)["model"] == "anet" and json.loads(b)["version"] == "3", b
st, b = get("/v1/models/anet/classify", data, "image/jpeg")
assert st == 200
if have_tfl:
    st, b = get("/v1/models/quant/classify?top_k=1", data, "image/jpeg")
    j = json.loads(b)
    assert st == 200 and j["model"] == "quant" and j["version"] == "7", b
    assert not j["results"][0]["predictions"][0]["label"].startswith("class_"), j  # labels from config.json
    assert get("/v2/models/quant/versions/7/ready")[0] == 200
st, b = get("/metrics")
t = b.decode()
assert 'osprey_model_ready{model="anet",version="3"} 1' in t
assert 'osprey_requests_total{model="anet",code="200"} 2' in t
if have_tfl:
    assert 'osprey_model_ready{model="quant",version="7"} 1' in t
# Unload while requests are in flight: they finish (200) or, arriving after
# the unload, get 404; nothing else. Then the model is gone, and loads again.
import concurrent.futures as cf, time
with cf.ThreadPoolExecutor(8) as ex:
    futs = [ex.submit(get, "/v1/models/anet/classify", data, "image/jpeg") for _ in range(8)]
    time.sleep(0.05)
    st, b = get("/v2/repository/models/anet/unload", b"", "application/json")
    assert st == 200 and json.loads(b)["state"] == "UNLOADED", (st, b)
    codes = [f.result()[0] for f in futs]
assert set(codes) <= {200, 404}, codes
assert get("/v1/models/anet/classify", data, "image/jpeg")[0] == 404
assert get("/v2/models/anet")[0] == 404
assert "anet" not in [m["name"] for m in json.loads(get("/v2/repository/index")[1])]
assert 'osprey_model_ready{model="anet",version="3"} 0' in get("/metrics")[1].decode()
assert get("/v2/repository/models/anet/unload", b"")[0] == 404
assert get("/v2/repository/models/nope/load", b"")[0] == 404
assert get("/v2/repository/models/..%2Fx/load", b"")[0] in (400, 404)
st, b = get("/v2/repository/models/anet/load", b"")
assert st == 200 and json.loads(b)["state"] == "READY", (st, b)
assert get("/v2/repository/models/anet/load", b"")[0] == 200   # already loaded: no-op
assert get("/v1/models/anet/classify", data, "image/jpeg")[0] == 200
assert json.loads(get("/v2/models/anet")[1])["versions"] == ["3"]
assert 'osprey_model_ready{model="anet",version="3"} 1' in get("/metrics")[1].decode()
print("repository: ok", sorted(idx), "in-flight during unload:", codes)
PYEOF
serve_stop || { echo "serve did not exit 0 on SIGTERM"; exit 1; }
echo "serve_repository: ok"
