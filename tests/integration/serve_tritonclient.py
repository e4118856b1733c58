#!/usr/bin/env python3
"""serve_tritonclient.py — the official Triton HTTP client (tritonclient[http]),
unchanged, against a running `osprey serve`: health, server and model
metadata, infer with JSON and with binary tensor data (the model's own input
type), an encoded image as a BYTES input, and an unknown model raising the
client's exception. usage: serve_tritonclient.py PORT MODEL_NAME IMAGE"""
import sys

import numpy as np
import tritonclient.http as th
from tritonclient.utils import InferenceServerException

port, model, image = sys.argv[1], sys.argv[2], sys.argv[3]
c = th.InferenceServerClient(url=f"127.0.0.1:{port}", network_timeout=300)
assert c.is_server_live() and c.is_server_ready()
meta = c.get_server_metadata()
assert meta["name"] == "osprey" and "binary_tensor_data" in meta["extensions"]
assert c.is_model_ready(model) and c.is_model_ready(model, "1")
md = c.get_model_metadata(model)
assert md["name"] == model and md["versions"] == ["1"]
inp_md, out_md = md["inputs"][0], md["outputs"][0]
dtype = {"FP32": np.float32, "UINT8": np.uint8}[inp_md["datatype"]]
shape = [2] + inp_md["shape"][1:]
x = (np.arange(np.prod(shape)) % 251).astype(dtype).reshape(shape)
results = []
for binary in (False, True):
    inp = th.InferInput(inp_md["name"], shape, inp_md["datatype"])
    inp.set_data_from_numpy(x, binary_data=binary)
    out = th.InferRequestedOutput(out_md["name"], binary_data=binary)
    r = c.infer(model, [inp], outputs=[out], request_id="tc-1")
    a = r.as_numpy(out_md["name"])
    assert a.shape[0] == 2 and a.dtype == np.float32, (a.shape, a.dtype)
    assert r.get_response()["model_name"] == model
    results.append(a)
assert np.allclose(results[0], results[1], rtol=1e-5, atol=1e-6)
# An encoded image as a BYTES input (binary: tritonclient cannot put
# non-UTF-8 bytes in JSON), default outputs.
img = open(image, "rb").read()
inp = th.InferInput("image", [1], "BYTES")
inp.set_data_from_numpy(np.array([img], dtype=np.object_), binary_data=True)
r = c.infer(model, [inp], model_version="1")
assert r.as_numpy(out_md["name"]).shape[0] == 1
assert r.get_response()["model_version"] == "1"
try:
    c.get_model_metadata("no_such_model")
    raise AssertionError("unknown model accepted")
except InferenceServerException as e:
    assert "unknown model" in str(e), e
print("tritonclient: ok")
