#!/usr/bin/env python3
"""ref_oracle.py — generates tests/unit/oracle/test_ref_<group>_cases.inc from
ref_cases_<group>.py: expected outputs of the reference kernels, computed by
onnxruntime from one-node ONNX models.

Each case builds the same inputs the C side builds (ref_testutil.h pattern
x[i] = (((i*7 + seed*5 + 3) % 13) - 6) * 0.25), runs the ONNX op, and emits
a cmocka test function that builds the IR node, folds it and compares.
Run, for each ref_cases_<group>.py (e.g. conv):
  .venv/bin/python tests/unit/oracle/ref_oracle.py tests/unit/oracle/ref_cases_conv.py \
      > tests/unit/oracle/test_ref_conv_cases.inc
(needs onnx + onnxruntime; the generated file is committed)."""
import sys
import numpy as np
import onnx
from onnx import helper, TensorProto
import onnxruntime as ort

CDT = {"float32": "OSP_DT_F32", "int64": "OSP_DT_S64", "int32": "OSP_DT_S32",
       "uint8": "OSP_DT_U8", "int8": "OSP_DT_S8", "bool": "OSP_DT_BOOL"}
CTY = {"float32": "float", "int64": "int64_t", "int32": "int32_t",
       "uint8": "uint8_t", "int8": "int8_t", "bool": "uint8_t"}


def pat(shape, seed):
    n = int(np.prod(shape)) if len(shape) else 1
    i = np.arange(n, dtype=np.int64)
    v = (((i * 7 + seed * 5 + 3) % 13) - 6).astype(np.float32) * 0.25
    return v.reshape(shape)


def F(shape, seed):
    return ("pat", tuple(shape), seed)


def T(arr, dtype):
    return ("data", np.asarray(arr, dtype=dtype))


def dims(shape):
    return "NULL" if len(shape) == 0 else "D(%s)" % ", ".join(str(d) for d in shape)


def cvals(a):
    a = a.reshape(-1)
    if a.dtype == np.float32:
        return ", ".join("%.9g" % float(x) if np.isfinite(x) else
                         ("NAN" if np.isnan(x) else ("INFINITY" if x > 0 else "-INFINITY"))
                         for x in a)
    return ", ".join(str(int(x)) for x in a)


CASES = []


def case(name, op, inputs, c_op, c_params="", attrs=None, opset=13,
         post=None, tol=1e-5, oracle="ort"):
    """oracle="onnx" uses onnx.reference instead of onnxruntime; a callable
    oracle gets the input arrays and returns the expected output (for cases
    both refuse or get wrong, e.g. LRN with an even size)."""
    CASES.append(dict(name=name, op=op, inputs=inputs, c_op=c_op,
                      c_params=c_params, attrs=attrs or {}, opset=opset,
                      post=post or [], tol=tol, oracle=oracle))


def run(c):
    feeds, vals, names = {}, [], []
    for k, spec in enumerate(c["inputs"]):
        if spec is None:
            names.append("")
            vals.append(None)
            continue
        a = pat(spec[1], spec[2]) if spec[0] == "pat" else spec[1]
        nm = "in%d" % k
        names.append(nm)
        vals.append(a)
    inits = [onnx.numpy_helper.from_array(a, n) for a, n in zip(vals, names) if a is not None]
    nodes = [helper.make_node(c["op"], names, ["y0"], **c["attrs"])]
    cur = "y0"
    extra_vals = []
    for j, p in enumerate(c["post"]):
        nxt = "y%d" % (j + 1)
        if p[0] == "sum":
            a = pat(p[1][1], p[1][2])
            nm = "sum%d" % j
            inits.append(onnx.numpy_helper.from_array(a, nm))
            nodes.append(helper.make_node("Add", [cur, nm], [nxt]))
            extra_vals.append(p[1])
        elif p[0] == "relu":
            nodes.append(helper.make_node("Relu", [cur], [nxt]))
        elif p[0] == "clip":
            lo = onnx.numpy_helper.from_array(np.float32(p[1]), "lo%d" % j)
            hi = onnx.numpy_helper.from_array(np.float32(p[2]), "hi%d" % j)
            inits += [lo, hi]
            nodes.append(helper.make_node("Clip", [cur, "lo%d" % j, "hi%d" % j], [nxt]))
        cur = nxt
    out = onnx.ValueInfoProto(name=cur)
    g = helper.make_graph(nodes, "g", [], [out], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", c["opset"])])
    m.ir_version = 8
    inf = onnx.shape_inference.infer_shapes(m)
    for vi in list(inf.graph.value_info) + list(inf.graph.output):
        if vi.name == cur and vi.type.tensor_type.elem_type:
            m.graph.output[0].CopyFrom(vi)
    if callable(c["oracle"]):
        return c["oracle"](*vals)
    if c["oracle"] == "onnx":
        from onnx.reference import ReferenceEvaluator
        return ReferenceEvaluator(m).run(None, {})[0]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {})[0]


def emit(c):
    y = np.asarray(run(c))
    out = []
    out.append("static void t_%s(void **state) {" % c["name"])
    out.append("    (void)state;")
    out.append("    one_t o = one_new();")
    for spec in c["inputs"]:
        if spec is None:
            out.append("    one_absent(&o);")
        elif spec[0] == "pat":
            out.append("    one_in_f32(&o, %d, %s, %d);" % (len(spec[1]), dims(spec[1]), spec[2]))
        else:
            a = spec[1]
            t = a.dtype.name
            out.append("    one_const(&o, %s, %d, %s, (%s[]){%s});" % (
                CDT[t], a.ndim, dims(a.shape), CTY[t], cvals(a) if a.size else "0"))
    sums = []
    for p in c["post"]:
        if p[0] == "sum":
            sums.append("o.in[o.n_in]")
            out.append("    int sum%d = o.n_in;" % (len(sums) - 1))
            out.append("    one_in_f32(&o, %d, %s, %d);" % (len(p[1][1]), dims(p[1][1]), p[1][2]))
    out.append("    osp_node_t *n = one_node(&o, %s);" % c["c_op"])
    out.append("    (void)n;")
    if c["c_params"]:
        for line in c["c_params"].split(";"):
            if line.strip():
                out.append("    %s;" % line.strip())
    k = 0
    for p in c["post"]:
        if p[0] == "sum":
            out.append("    n->post[n->n_post++] = (osp_post_op_t){.kind = OSP_POST_SUM, "
                       ".sum_value = o.in[sum%d]};" % k)
            k += 1
        elif p[0] == "relu":
            out.append("    n->post[n->n_post++] = (osp_post_op_t){.kind = OSP_POST_ACT, "
                       ".act = OSP_ACT_RELU};")
        elif p[0] == "clip":
            out.append("    n->post[n->n_post++] = (osp_post_op_t){.kind = OSP_POST_ACT, "
                       ".act = OSP_ACT_CLIP, .alpha = (float)%r, .beta = (float)%r};" % (p[1], p[2]))
    t = y.dtype.name
    out.append("    static const %s want[] = {%s};" % (CTY[t], cvals(y) if y.size else "0"))
    if t == "float32":
        out.append("    one_check_f32(&o, %d, %s, want, %gf);" % (y.ndim, dims(y.shape), c["tol"]))
    else:
        out.append("    one_check_raw(&o, %s, %d, %s, want);" % (CDT[t], y.ndim, dims(y.shape)))
    out.append("}")
    out.append("")
    return "\n".join(out)


def main():
    import importlib.util
    spec = importlib.util.spec_from_file_location("cases", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    mod.__dict__.update(dict(case=case, F=F, T=T, np=np))
    spec.loader.exec_module(mod)
    print("/* Generated by tests/unit/oracle/ref_oracle.py from %s (onnxruntime %s) — "
          "do not edit. */\n" % (sys.argv[1].split("/")[-1], ort.__version__))
    for c in CASES:
        print(emit(c))
    print("#define REF_CASES \\")
    print(" \\\n".join("    cmocka_unit_test(t_%s)," % c["name"] for c in CASES))
    print("")


if __name__ == "__main__":
    main()
