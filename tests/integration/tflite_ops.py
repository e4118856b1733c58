"""Per-op tests of osprey's TFLite path against LiteRT on generated models.

No TensorFlow here (too heavy to install), so this file carries its own
small TFLite FlatBuffer *writer* (TFLiteWriter below, written from the
public schema: tables with vtables, vectors, strings, unions; children are
laid out after their parents so every offset points forward, and every
scalar and vector is aligned to its size). Each case is a one-operator
model (CONV_2D SAME/VALID/strides/fused activations, DEPTHWISE_CONV_2D with
a depth multiplier, ADD, MUL, AVERAGE/MAX_POOL_2D, MEAN, FULLY_CONNECTED,
RESHAPE, SOFTMAX, CONCATENATION, PAD, QUANTIZE, DEQUANTIZE, LOGISTIC,
HARD_SWISH, RELU, RELU6) in uint8 (per-tensor weights with a zero point) and
int8 (per-channel symmetric weights); 4-D results are reshaped to [1, N]
by a second operator (osprey's importer takes 2-D graph outputs). LiteRT's
builtin kernels
(BUILTIN_WITHOUT_DEFAULT_DELEGATES) are the oracle; osprey runs the same
file on the same input bytes through tests/osp_run_model, once on the
default path and once on the exact path (--engine-int8-dnnl off). Outputs
are compared in quantization steps: both must be within ±1 (the default
path: oneDNN int8 convolutions accumulating into s32, then osprey's exact
fixed-point requantization; docs/engine.md, "int8 on oneDNN").

usage: tflite_ops.py BUILD_DIR [OSP_RUN_MODEL_ARGS...]  (e.g. --max-isa avx2)
"""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

# ---- FlatBuffer writer -------------------------------------------------

SCALAR = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8,
          "f": 4, "d": 8}


class Table:
    """fields: {index: (kind, value)}; kind is a struct code or 'o' for an
    offset to a child (Table, Vec or Str)."""
    def __init__(self, fields):
        self.fields = fields


class Vec:
    """kind: struct code for scalars, 'o' for a vector of children."""
    def __init__(self, kind, items, align=None):
        self.kind, self.items, self.align = kind, list(items), align


class Str:
    def __init__(self, s):
        self.s = s.encode()


class TFLiteWriter:
    def __init__(self):
        self.buf = bytearray()
        self.todo = []  # (position of a uoffset field, child object)

    def pad_to(self, n, extra=0):
        while (len(self.buf) + extra) % n:
            self.buf.append(0)

    def ref(self, obj):
        self.todo.append((len(self.buf), obj))
        self.buf += b"\0\0\0\0"

    def emit(self, obj):
        if isinstance(obj, Str):
            self.pad_to(4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(obj.s)) + obj.s + b"\0"
            return pos
        if isinstance(obj, Vec):
            es = 4 if obj.kind == "o" else SCALAR[obj.kind]
            self.pad_to(max(4, es, obj.align or 1), extra=4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(obj.items))
            for it in obj.items:
                if obj.kind == "o":
                    self.ref(it)
                else:
                    self.buf += struct.pack("<" + obj.kind, it)
            return pos
        # Table: vtable first, then the table (8-aligned), fields by size.
        fields = obj.fields
        n = max(fields) + 1 if fields else 0
        order = sorted(fields, key=lambda k: -(4 if fields[k][0] == "o"
                                               else SCALAR[fields[k][0]]))
        layout, off = {}, 4
        for k in order:
            sz = 4 if fields[k][0] == "o" else SCALAR[fields[k][0]]
            off = (off + sz - 1) // sz * sz
            layout[k] = off
            off += sz
        size = (off + 3) // 4 * 4
        vt = struct.pack("<HH", 4 + 2 * n, size) + b"".join(
            struct.pack("<H", layout.get(k, 0)) for k in range(n))
        self.pad_to(8, extra=len(vt))
        vpos = len(self.buf)
        self.buf += vt
        tpos = len(self.buf)
        assert tpos % 8 == 0
        self.buf += struct.pack("<i", tpos - vpos) + bytes(size - 4)
        for k in order:
            kind, val = fields[k]
            at = tpos + layout[k]
            if kind == "o":
                self.todo.append((at, val))
            else:
                struct.pack_into("<" + kind, self.buf, at, val)
        return tpos

    def finish(self, root):
        self.buf += b"\0\0\0\0TFL3"
        self.todo.append((0, root))
        while self.todo:
            at, obj = self.todo.pop(0)
            pos = self.emit(obj)
            struct.pack_into("<I", self.buf, at, pos - at)
        return bytes(self.buf)


# ---- TFLite model construction -----------------------------------------

TT = {"f32": 0, "i32": 2, "u8": 3, "i64": 4, "i8": 9}
NP = {"f32": np.float32, "i32": np.int32, "u8": np.uint8, "i8": np.int8}
OPS = {"ADD": 0, "AVERAGE_POOL_2D": 1, "CONCATENATION": 2, "CONV_2D": 3,
       "DEPTHWISE_CONV_2D": 4, "DEQUANTIZE": 6, "FULLY_CONNECTED": 9,
       "LOGISTIC": 14, "MAX_POOL_2D": 17, "MUL": 18, "RELU": 19, "RELU6": 21,
       "RESHAPE": 22, "SOFTMAX": 25, "PAD": 34, "MEAN": 40, "QUANTIZE": 114,
       "HARD_SWISH": 117}
ACT = {"NONE": 0, "RELU": 1, "RELU6": 3}
PAD = {"SAME": 0, "VALID": 1}


class Model:
    def __init__(self):
        self.tensors, self.buffers = [], [Table({})]  # buffer 0: empty

    def tensor(self, dtype, shape, scale=None, zp=None, axis=0, data=None):
        buf = 0
        if data is not None:
            raw = np.asarray(data, dtype=NP[dtype]).tobytes()
            self.buffers.append(Table({0: ("o", Vec("B", raw, align=16))}))
            buf = len(self.buffers) - 1
        f = {0: ("o", Vec("i", shape)), 1: ("b", TT[dtype]), 2: ("I", buf),
             3: ("o", Str("t%d" % len(self.tensors)))}
        if scale is not None:
            sc = list(np.atleast_1d(scale).astype(np.float32))
            zs = list(np.atleast_1d(zp).astype(np.int64))
            f[4] = ("o", Table({2: ("o", Vec("f", sc)), 3: ("o", Vec("q", zs)),
                                6: ("i", axis)}))
        self.tensors.append((Table(f), dtype, shape, scale, zp))
        return len(self.tensors) - 1

    def build(self, op, ins, outs, opt_type=0, opts=None):
        """A model running op; a 4-D output is followed by a RESHAPE to
        [1, N] (osprey's TFLite importer takes 2-D graph outputs; the
        reshape moves integers unchanged, in both runtimes)."""
        ops = [(op, ins, outs, opt_type, opts)]
        t, dt, shape, scale, zp = self.tensors[outs[0]]
        if len(shape) == 4:
            n = int(np.prod(shape))
            s = self.tensor("i32", [2], data=[1, n])
            flat = self.tensor(dt, [1, n], scale, zp)
            ops.append(("RESHAPE", [outs[0], s], [flat], 17,
                        {0: ("o", Vec("i", [1, n]))}))
            outs = [flat]
        codes, opers = [], []
        for name, i_, o_, ot, oo in ops:
            code = OPS[name]
            if code not in codes:
                codes.append(code)
            o = {0: ("I", codes.index(code)), 1: ("o", Vec("i", i_)),
                 2: ("o", Vec("i", o_))}
            if ot:
                o[3] = ("B", ot)
                o[4] = ("o", Table(oo or {}))
            opers.append(Table(o))
        opcodes = [Table({0: ("b", min(c, 127)), 2: ("i", 1), 3: ("i", c)})
                   for c in codes]
        runtime = [i for i in ins if self.tensors[i][0].fields[2][1] == 0]
        sg = Table({0: ("o", Vec("o", [t[0] for t in self.tensors])),
                    1: ("o", Vec("i", runtime)), 2: ("o", Vec("i", outs)),
                    3: ("o", Vec("o", opers)), 4: ("o", Str("main"))})
        model = Table({0: ("I", 3), 1: ("o", Vec("o", opcodes)),
                       2: ("o", Vec("o", [sg])), 3: ("o", Str("osprey test")),
                       4: ("o", Vec("o", self.buffers))})
        return TFLiteWriter().finish(model)


# ---- cases ---------------------------------------------------------------

RNG = np.random.default_rng(1234)


def qparams(dt):
    """(scale, zero point) of an activation of type dt."""
    return (0.05, 128) if dt == "u8" else (0.05, -3)


def weights(m, dt, shape, axis):
    """Weights: uint8 per tensor with a zero point, int8 per channel."""
    if dt == "u8":
        return m.tensor("u8", shape, 0.02, 120,
                        data=RNG.integers(0, 256, shape))
    n = shape[axis]
    sc = 0.004 + 0.004 * RNG.random(n)
    return m.tensor("i8", shape, sc, np.zeros(n, np.int64), axis=axis,
                    data=RNG.integers(-127, 128, shape))


def bias(m, dt, n, xs, wt):
    wsc = np.atleast_1d(m.tensors[wt][3]).astype(np.float64)
    sc = (xs * wsc) if wsc.size == n else np.full(n, xs * wsc[0])
    return m.tensor("i32", [n], sc, np.zeros(n, np.int64),
                    data=RNG.integers(-2000, 2000, n))


def conv(dt, pad, stride, act, k=3, cin=5, cout=7, h=9, w=8):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [1, h, w, cin], xs, xz)
    wt = weights(m, dt, [cout, k, k, cin], 0)
    b = bias(m, dt, cout, xs, wt)
    oh = (h + stride - 1) // stride if pad == "SAME" else (h - k) // stride + 1
    ow = (w + stride - 1) // stride if pad == "SAME" else (w - k) // stride + 1
    y = m.tensor(dt, [1, oh, ow, cout], 0.15, 100 if dt == "u8" else -10)
    return m.build("CONV_2D", [x, wt, b], [y], 1,
                   {0: ("b", PAD[pad]), 1: ("i", stride), 2: ("i", stride),
                    3: ("b", ACT[act]), 4: ("i", 1), 5: ("i", 1)})


def depthwise(dt, mult, act, pad="SAME", stride=1, c=6, h=7, w=7):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [1, h, w, c], xs, xz)
    wt = weights(m, dt, [1, 3, 3, c * mult], 3)
    b = bias(m, dt, c * mult, xs, wt)
    oh = (h + stride - 1) // stride if pad == "SAME" else (h - 3) // stride + 1
    y = m.tensor(dt, [1, oh, oh, c * mult], 0.1, 110 if dt == "u8" else 5)
    return m.build("DEPTHWISE_CONV_2D", [x, wt, b], [y], 2,
                   {0: ("b", PAD[pad]), 1: ("i", stride), 2: ("i", stride),
                    3: ("i", mult), 4: ("b", ACT[act]), 5: ("i", 1),
                    6: ("i", 1)})


def fully_connected(dt, act):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [2, 24], xs, xz)
    wt = weights(m, dt, [10, 24], 0)
    b = bias(m, dt, 10, xs, wt)
    y = m.tensor(dt, [2, 10], 0.2, 120 if dt == "u8" else 0)
    return m.build("FULLY_CONNECTED", [x, wt, b], [y], 8,
                   {0: ("b", ACT[act]), 1: ("b", 0)})


def binary(dt, op, act="NONE"):
    m = Model()
    xs, xz = qparams(dt)
    a = m.tensor(dt, [1, 5, 6, 4], xs, xz)
    b2 = m.tensor(dt, [1, 5, 6, 4], 0.08, xz + (7 if dt == "u8" else 2))
    y = m.tensor(dt, [1, 5, 6, 4], 0.11 if op == "ADD" else 0.3,
                 125 if dt == "u8" else -1)
    return m.build(op, [a, b2], [y], 11 if op == "ADD" else 21,
                   {0: ("b", ACT[act])})


def pool(dt, op, pad, stride, k):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [1, 9, 9, 3], xs, xz)
    o = (9 + stride - 1) // stride if pad == "SAME" else (9 - k) // stride + 1
    y = m.tensor(dt, [1, o, o, 3], xs, xz)  # TFLite: same quantization
    return m.build(op, [x], [y], 5,
                   {0: ("b", PAD[pad]), 1: ("i", stride), 2: ("i", stride),
                    3: ("i", k), 4: ("i", k), 5: ("b", 0)})


def mean(dt):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [1, 6, 5, 8], xs, xz)
    ax = m.tensor("i32", [2], data=[1, 2])
    y = m.tensor(dt, [1, 8], 0.03, xz + 2)
    return m.build("MEAN", [x, ax], [y], 27, {0: ("B", 0)})


def reshape(dt):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [1, 3, 4, 5], xs, xz)
    s = m.tensor("i32", [2], data=[1, 60])
    y = m.tensor(dt, [1, 60], xs, xz)
    return m.build("RESHAPE", [x, s], [y], 17, {0: ("o", Vec("i", [1, 60]))})


def softmax(dt):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [2, 12], xs, xz)
    y = m.tensor(dt, [2, 12], 1 / 256, 0 if dt == "u8" else -128)
    return m.build("SOFTMAX", [x], [y], 9, {0: ("f", 1.0)})


def concat(dt):
    m = Model()
    xs, xz = qparams(dt)
    a = m.tensor(dt, [1, 4, 4, 3], xs, xz)
    b2 = m.tensor(dt, [1, 4, 4, 5], xs, xz)
    y = m.tensor(dt, [1, 4, 4, 8], xs, xz)
    return m.build("CONCATENATION", [a, b2], [y], 10,
                   {0: ("i", 3), 1: ("b", 0)})


def pad_op(dt):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [1, 4, 5, 3], xs, xz)
    p = m.tensor("i32", [4, 2], data=[[0, 0], [1, 2], [2, 0], [0, 0]])
    y = m.tensor(dt, [1, 7, 7, 3], xs, xz)
    return m.build("PAD", [x, p], [y], 22, {})


def unary(dt, op, ys=None, yz=None):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [1, 6, 6, 4], xs, xz)
    y = m.tensor(dt, [1, 6, 6, 4], ys or xs, xz if yz is None else yz)
    return m.build(op, [x], [y])


def quantize(src, dst):
    m = Model()
    xs, xz = qparams(src)
    x = m.tensor(src, [1, 5, 5, 3], xs, xz)
    y = m.tensor(dst, [1, 5, 5, 3], 0.07, 7 if dst == "i8" else 130)
    return m.build("QUANTIZE", [x], [y])


def dequantize(dt):
    m = Model()
    xs, xz = qparams(dt)
    x = m.tensor(dt, [1, 5, 5, 3], xs, xz)
    y = m.tensor("f32", [1, 5, 5, 3])
    return m.build("DEQUANTIZE", [x], [y])


def cases():
    for dt in ("u8", "i8"):
        yield f"conv {dt} SAME s1 relu6", conv(dt, "SAME", 1, "RELU6")
        yield f"conv {dt} SAME s2", conv(dt, "SAME", 2, "NONE")
        yield f"conv {dt} VALID s2 relu", conv(dt, "VALID", 2, "RELU")
        yield f"conv {dt} 1x1", conv(dt, "VALID", 1, "NONE", k=1, cin=16, cout=24)
        yield f"depthwise {dt} x1 relu6", depthwise(dt, 1, "RELU6")
        yield f"depthwise {dt} x2 VALID s2", depthwise(dt, 2, "NONE", "VALID", 2)
        yield f"fully_connected {dt}", fully_connected(dt, "NONE")
        yield f"fully_connected {dt} relu", fully_connected(dt, "RELU")
        yield f"add {dt}", binary(dt, "ADD")
        yield f"add {dt} relu6", binary(dt, "ADD", "RELU6")
        yield f"mul {dt}", binary(dt, "MUL")
        yield f"avg_pool {dt} SAME s2", pool(dt, "AVERAGE_POOL_2D", "SAME", 2, 3)
        yield f"avg_pool {dt} VALID", pool(dt, "AVERAGE_POOL_2D", "VALID", 1, 2)
        yield f"max_pool {dt} SAME s2", pool(dt, "MAX_POOL_2D", "SAME", 2, 3)
        yield f"mean {dt}", mean(dt)
        yield f"reshape {dt}", reshape(dt)
        yield f"softmax {dt}", softmax(dt)
        yield f"concatenation {dt}", concat(dt)
        yield f"pad {dt}", pad_op(dt)
        yield f"logistic {dt}", unary(dt, "LOGISTIC", 1 / 256,
                                      0 if dt == "u8" else -128)
        yield f"hard_swish {dt}", unary(dt, "HARD_SWISH", 0.04,
                                        20 if dt == "u8" else -100)
        yield f"relu {dt}", unary(dt, "RELU")
        yield f"relu6 {dt}", unary(dt, "RELU6")
        yield f"dequantize {dt}", dequantize(dt)
    yield "quantize u8->i8", quantize("u8", "i8")
    yield "quantize i8->i8", quantize("i8", "i8")
    yield "quantize i8->u8", quantize("i8", "u8")


# ---- run -----------------------------------------------------------------

def main():
    build = sys.argv[1]
    run_model = os.path.join(build, "tests", "osp_run_model")
    extra = sys.argv[2:]  # for every run, e.g. an ISA ceiling
    failures = checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, blob in cases():
            path = os.path.join(tmp, "m.tflite")
            with open(path, "wb") as f:
                f.write(blob)
            try:
                it = Interpreter(model_path=path, experimental_op_resolver_type=
                                 OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
                it.allocate_tensors()
            except Exception as e:  # noqa: BLE001 - report and count
                print(f"FAIL {name}: LiteRT rejects the generated model: {e}")
                failures += 1
                continue
            args = [run_model, "--model", path, "--threads", "2",
                    "--out-dir", tmp] + extra
            for d in it.get_input_details():
                x = RNG.integers(np.iinfo(d["dtype"]).min,
                                 np.iinfo(d["dtype"]).max + 1,
                                 d["shape"]).astype(d["dtype"])
                it.set_tensor(d["index"], x)
                raw = os.path.join(tmp, "in%d.raw" % d["index"])
                x.tofile(raw)
                dts = "u8" if d["dtype"] == np.uint8 else "s8"
                args += ["--input", "%s:%s:%s" % (
                    raw, dts, "x".join(str(v) for v in d["shape"]))]
            it.invoke()
            od = it.get_output_details()[0]
            want = it.get_tensor(od["index"]).astype(np.float64).ravel()
            scale, zp = od["quantization"]
            for label, path in (("exact", ["--engine-int8-dnnl", "off"]),
                                ("default", [])):
                r = subprocess.run(args + path, capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"FAIL {name} ({label}): osp_run_model: {r.stderr.strip()}")
                    failures += 1
                    continue
                got = np.load(os.path.join(tmp, "output_0.npy")).astype(np.float64).ravel()
                if od["dtype"] == np.float32:  # DEQUANTIZE: compare in input steps
                    step = it.get_input_details()[0]["quantization"][0]
                    diff = np.abs(got - want).max() / step if got.size else 0
                else:
                    diff = np.abs(np.rint(got / scale + zp) - want).max() if got.size else 0
                checked += 1
                ok = got.size == want.size and diff <= 1
                print(f"{'ok  ' if ok else 'FAIL'} {name} ({label}): max|diff| "
                      f"{diff:g} steps")
                failures += not ok
    print(f"tflite_ops: {checked} runs, {failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
