#!/usr/bin/env bash
# serve_repository.sh — `osprey serve --model-repository DIR`: models from
# DIR/<name>/<version>/model.{onnx,tflite}; config.json serving keys (model
# level DIR/<name>/config.json or a version's own) and their precedence over
# the server-wide flags; version policies (latest N, specific); several
# versions of one name at once, addressed by /versions/{v} on the V1 and V2
# routes; the repository index with every version's state; reload when a
# newer version appears on disk while 8 clients keep sending (every request
# answered 200, the new version takes over, the old one is drained and
# unloaded); unload with requests in flight; load errors in the index;
# osprey_model_ready{model,version}. Skips without the ONNX model.
set -uo pipefail
. "$(dirname "$0")/lib/serve_lib.bash"

MODEL=$(serve_find_model) || { echo "SKIP: no ONNX model (mobilenet_v2/squeezenet1_1) in \$OSPREY_MODELS or $SRC/../shared/models"; exit 77; }
REPO=$(mktemp -d /tmp/osp_repo.XXXXXX)
trap 'rm -rf "$REPO"; serve_cleanup' EXIT
mkdir -p "$REPO/anet/1" "$REPO/anet/3" "$REPO/anet/2" "$REPO/anet/notaversion" \
         "$REPO/bnet/1" "$REPO/bnet/2"
ln -s "$MODEL" "$REPO/anet/1/model.onnx"
ln -s "$MODEL" "$REPO/anet/3/model.onnx"          # 2 has no model file
ln -s "$MODEL" "$REPO/bnet/1/model.onnx"
ln -s "$MODEL" "$REPO/bnet/2/model.onnx"
# anet: the two latest versions, with its own batching settings (they win
# over the flags below); bnet: exactly version 1, the flags' settings.
cat >"$REPO/anet/config.json" <<'EOF'
{"version_policy": {"latest": {"num_versions": 2}}, "max_batch_size": 4,
 "preferred_batch_sizes": [2, 4], "max_queue_delay_us": 3000, "max_queue_size": 16}
EOF
echo '{"version_policy": {"specific": {"versions": [1]}}}' >"$REPO/bnet/config.json"
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
[ $rc -eq 1 ] || { echo "bad repository: exit $rc, expected 1"; exit 1; }
# A policy naming a version that is not on disk fails too.
rm -rf "$BAD/empty"; mkdir -p "$BAD/x/1"; ln -s "$MODEL" "$BAD/x/1/model.onnx"
echo '{"version_policy": {"specific": {"versions": [1, 5]}}}' >"$BAD/x/config.json"
timeout 60 "$OSPREY" serve --model-repository "$BAD" --host 127.0.0.1 --port 0 >"$BAD.log" 2>&1
rc=$?
grep -q "lists version 5" "$BAD.log" || { echo "no error for a missing policy version:"; cat "$BAD.log"; exit 1; }
[ $rc -eq 1 ] || { echo "missing policy version: exit $rc, expected 1"; exit 1; }
rm -rf "$BAD" "$BAD.log"

serve_start --model-repository "$REPO" --threads 2 --max-batch 8 --max-queue-size 256 \
            --max-queue-delay-us 2000 || exit 1
timeout 300 "$PY" - "$SERVE_PORT" "$HAVE_TFL" "$SRC/scripts/samples/gradient.jpg" "$REPO" "$MODEL" "$SERVE_LOG" <<'PYEOF' || { tail -30 "$SERVE_LOG"; exit 1; }
import concurrent.futures as cf, json, os, sys, threading, time, urllib.request, urllib.error
port, have_tfl, img, repo, model, log = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
base = f"http://127.0.0.1:{port}"
def get(path, data=None, ctype=None):
    r = urllib.request.Request(base + path, data=data, headers={"Content-Type": ctype} if ctype else {})
    try:
        with urllib.request.urlopen(r, timeout=120) as f:
            return f.status, f.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
def index(body=None):
    st, b = get("/v2/repository/index", body, "application/json" if body else None)
    assert st == 200, (st, b)
    return {(m["name"], m["version"]): m for m in json.loads(b)}
def metrics():
    return get("/metrics")[1].decode()
def ready_logs():
    out = {}
    for line in open(log):
        j = json.loads(line)
        if j["msg"] == "model ready":
            out[(j["model"], j["version"])] = j
    return out

# Versions and states.
idx = index()
st = {k: v["state"] for k, v in idx.items()}
assert st[("anet", "1")] == "READY" and st[("anet", "3")] == "READY", st
assert ("anet", "2") not in st, st                      # no model file
assert st[("bnet", "1")] == "READY" and st[("bnet", "2")] == "UNAVAILABLE", st
assert "reason" in idx[("bnet", "2")]
assert (("quant", "7") in st) == have_tfl, st
ready = index(b'{"ready": true}')
assert ("bnet", "2") not in ready and ("anet", "1") in ready, ready
assert get("/v2/repository/index", b'{"ready": 3}', "application/json")[0] == 400

# Serving keys: anet's config.json wins over the flags; bnet has none.
logs = ready_logs()
a = logs[("anet", "3")]
assert a["max_batch"] == 4 and a["max_queue_size"] == 16 and a["max_queue_delay_us"] == 3000 \
    and a["preferred_batch_sizes"] == [2, 4], a
b = logs[("bnet", "1")]
assert b["max_batch"] == 8 and b["max_queue_size"] == 256 and b["max_queue_delay_us"] == 2000 \
    and b["preferred_batch_sizes"] == [], b
# The CPU budget (2) is shared: every version holds one engine thread.
assert all(l["instances"] * l["engine_threads"] <= 1 for l in logs.values()), logs

# Several versions of one name.
assert json.loads(get("/v2/models/anet")[1])["versions"] == ["1", "3"]
assert get("/v2/models/anet/versions/3")[0] == 200
assert get("/v2/models/anet/versions/1/ready")[0] == 200
assert get("/v2/models/anet/versions/2")[0] == 404
assert get("/v2/models/bnet/versions/2")[0] == 404
data = open(img, "rb").read()
st_, b_ = get("/classify", data, "image/jpeg")        # default: first name, latest version
assert st_ == 200 and json.loads(b_)["model"] == "anet" and json.loads(b_)["version"] == "3", b_
st_, b_ = get("/v1/models/anet/versions/1/classify", data, "image/jpeg")
assert st_ == 200 and json.loads(b_)["version"] == "1", b_
assert get("/v1/models/anet/versions/2/classify", data, "image/jpeg")[0] == 404
if have_tfl:
    st_, b_ = get("/v1/models/quant/classify?top_k=1", data, "image/jpeg")
    j = json.loads(b_)
    assert st_ == 200 and j["model"] == "quant" and j["version"] == "7", b_
    assert not j["results"][0]["predictions"][0]["label"].startswith("class_"), j  # labels from config.json
    assert get("/v2/models/quant/versions/7/ready")[0] == 200
t = metrics()
for v in ("1", "3"):
    assert f'osprey_model_ready{{model="anet",version="{v}"}} 1' in t, t
assert 'osprey_model_ready{model="bnet",version="1"} 1' in t
assert 'osprey_requests_total{model="anet",code="200"} 2' in t

# Reload: version 4 appears on disk while 8 clients keep classifying with
# no version; POST load serves 3 and 4 (latest 2), drains and unloads 1.
# Every request gets 200; after the load answers, requests see version 4.
os.makedirs(f"{repo}/anet/4")
os.symlink(model, f"{repo}/anet/4/model.onnx")
stop = threading.Event()
seen, codes, lock = [], [], threading.Lock()
def client():
    while not stop.is_set():
        s, bb = get("/v1/models/anet/classify", data, "image/jpeg")
        with lock:
            codes.append(s)
            if s == 200:
                seen.append(json.loads(bb)["version"])
with cf.ThreadPoolExecutor(8) as ex:
    futs = [ex.submit(client) for _ in range(8)]
    time.sleep(0.3)
    st_, b_ = get("/v2/repository/models/anet/load", b"")
    assert st_ == 200 and json.loads(b_)["versions"] == ["3", "4"], (st_, b_)
    n_at_load = len(seen)
    time.sleep(0.3)
    stop.set()
    for f in futs:
        f.result()
assert codes and set(codes) == {200}, codes
assert "4" in seen[n_at_load:] and "3" in seen[:n_at_load], seen
assert json.loads(get("/v2/models/anet")[1])["versions"] == ["3", "4"]
assert get("/v1/models/anet/versions/1/classify", data, "image/jpeg")[0] == 404
st = {k: v["state"] for k, v in index().items()}
assert st[("anet", "1")] == "UNAVAILABLE" and st[("anet", "4")] == "READY", st
t = metrics()
assert 'osprey_model_ready{model="anet",version="1"} 0' in t
assert 'osprey_model_ready{model="anet",version="4"} 1' in t
# Load again with nothing new: a no-op.
st_, b_ = get("/v2/repository/models/anet/load", b"")
assert st_ == 200 and json.loads(b_)["versions"] == ["3", "4"], b_

# A specific policy changed on disk: bnet switches from 1 to 2.
with open(f"{repo}/bnet/config.json", "w") as f:
    f.write('{"version_policy": {"specific": {"versions": [2]}}}')
st_, b_ = get("/v2/repository/models/bnet/load", b"")
assert st_ == 200 and json.loads(b_)["versions"] == ["2"], b_

# Load errors: a version_policy in a version's own config; reported in the
# index with the reason, nothing served.
os.makedirs(f"{repo}/cnet/1")
os.symlink(model, f"{repo}/cnet/1/model.onnx")
with open(f"{repo}/cnet/1/config.json", "w") as f:
    f.write('{"version_policy": {"all": {}}}')
st_, b_ = get("/v2/repository/models/cnet/load", b"")
assert st_ == 400 and b"version_policy belongs" in b_, (st_, b_)
c = index()[("cnet", "1")]
assert c["state"] == "UNAVAILABLE" and "version_policy" in c["reason"], c

# Unload while requests are in flight: they finish (200) or, arriving after
# the unload, get 404; nothing else. Then the model is gone, and loads again.
with cf.ThreadPoolExecutor(8) as ex:
    futs = [ex.submit(get, "/v1/models/anet/classify", data, "image/jpeg") for _ in range(8)]
    time.sleep(0.05)
    st_, b_ = get("/v2/repository/models/anet/unload", b"", "application/json")
    assert st_ == 200 and json.loads(b_)["state"] == "UNLOADED", (st_, b_)
    codes = [f.result()[0] for f in futs]
assert set(codes) <= {200, 404}, codes
assert get("/v1/models/anet/classify", data, "image/jpeg")[0] == 404
assert get("/v2/models/anet")[0] == 404
assert all(v["state"] == "UNAVAILABLE" for k, v in index().items() if k[0] == "anet")
assert 'osprey_model_ready{model="anet",version="3"} 0' in metrics()
assert get("/v2/repository/models/anet/unload", b"")[0] == 404
assert get("/v2/repository/models/nope/load", b"")[0] == 404
assert get("/v2/repository/models/..%2Fx/load", b"")[0] in (400, 404)
st_, b_ = get("/v2/repository/models/anet/load", b"")
assert st_ == 200 and json.loads(b_)["state"] == "READY", (st_, b_)
assert get("/v1/models/anet/classify", data, "image/jpeg")[0] == 200
assert json.loads(get("/v2/models/anet")[1])["versions"] == ["3", "4"]
assert 'osprey_model_ready{model="anet",version="4"} 1' in metrics()
print("repository: ok; reload under load:", len(codes), "requests,", len(seen), "answers")
PYEOF
serve_stop || { echo "serve did not exit 0 on SIGTERM"; exit 1; }

# instances from config.json (2 engines x 1 thread within --threads 2),
# instances flag as the default elsewhere.
REPO2=$(mktemp -d /tmp/osp_repo2.XXXXXX)
trap 'rm -rf "$REPO" "$REPO2"; serve_cleanup' EXIT
mkdir -p "$REPO2/one/1"
ln -s "$MODEL" "$REPO2/one/1/model.onnx"
echo '{"instances": 2, "max_batch_size": 2}' >"$REPO2/one/config.json"
serve_start --model-repository "$REPO2" --threads 2 --instances 1 || exit 1
line=$(grep '"msg":"model ready"' "$SERVE_LOG")
serve_stop || exit 1
echo "$line" | grep -q '"instances":2,"engine_threads":1,"max_batch":2' ||
    { echo "config instances not used: $line"; exit 1; }
echo "serve_repository: ok"
