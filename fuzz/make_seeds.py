#!/usr/bin/env python3
"""make_seeds.py — writes the seed corpora for the libFuzzer targets.

fuzz/seeds/onnx (fuzz_onnx.c): tiny ONNX models (a few hundred bytes each) built with the onnx helper API,
covering the operators and attribute shapes of the real classifiers (conv
with pads/strides/groups, batch norm, residual add, pools, gemm, reshape,
concat, clip, softmax) plus a dynamic batch dim. Small seeds keep libFuzzer's
mutations meaningful; the committed files in fuzz/seeds/onnx are the output
of this script (deterministic: seeded weights, fixed opset and IR version).

fuzz/seeds/image (fuzz_image.c): tiny images in every format and flavour the
decoders handle (baseline/progressive/grayscale/EXIF-rotated JPEG, RGB/RGBA/
palette/16-bit PNG, lossy/lossless WebP, BMP), each prefixed with the
selector byte fuzz_image.c reads first (resize mode, DCT hint).

    python3 fuzz/make_seeds.py [SEEDS_DIR]     # default fuzz/seeds
Needs numpy, onnx and Pillow (.venv from scripts/setup-venv.sh).
"""
import io
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 7
rng = np.random.default_rng(7)


def w(name, *shape):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def model(name, nodes, inputs, outputs, inits):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="osprey-fuzz-seeds")
    m.ir_version = IR_VERSION
    onnx.checker.check_model(m)
    return m


def vi(name, shape, dt=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dt, shape)


def seeds():
    out = {}
    # Conv + Relu, fixed shape.
    out["conv_relu"] = model(
        "conv_relu",
        [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])],
        [vi("x", [1, 1, 4, 4])], [vi("y", [1, 2, 4, 4])], [w("w", 2, 1, 3, 3), w("b", 2)])
    # Strided conv + BatchNorm + residual Add + Relu, dynamic batch.
    out["conv_bn_add"] = model(
        "conv_bn_add",
        [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
         helper.make_node("BatchNormalization", ["c", "s", "bb", "m", "v"], ["n"], epsilon=1e-5),
         helper.make_node("Add", ["n", "x"], ["a"]),
         helper.make_node("Relu", ["a"], ["y"])],
        [vi("x", ["N", 2, 3, 3])], [vi("y", ["N", 2, 3, 3])],
        [w("w", 2, 2, 1, 1), w("s", 2), w("bb", 2), w("m", 2),
         numpy_helper.from_array(np.abs(rng.standard_normal(2)).astype(np.float32) + 0.5, "v")])
    # Depthwise conv (group) + Clip (ReLU6), as in MobileNetV2.
    out["dwconv_clip"] = model(
        "dwconv_clip",
        [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], strides=[2, 2],
                          pads=[1, 1, 1, 1], group=2),
         helper.make_node("Clip", ["c", "lo", "hi"], ["y"])],
        [vi("x", [1, 2, 5, 5])], [vi("y", [1, 2, 3, 3])],
        [w("w", 2, 1, 3, 3), numpy_helper.from_array(np.array(0, np.float32), "lo"),
         numpy_helper.from_array(np.array(6, np.float32), "hi")])
    # Pools + Flatten + Gemm + Softmax: a classifier head.
    out["pool_gemm_softmax"] = model(
        "pool_gemm_softmax",
        [helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
         helper.make_node("GlobalAveragePool", ["p"], ["g"]),
         helper.make_node("Flatten", ["g"], ["f"], axis=1),
         helper.make_node("Gemm", ["f", "w", "b"], ["l"], transB=1),
         helper.make_node("Softmax", ["l"], ["y"], axis=1)],
        [vi("x", ["N", 3, 4, 4])], [vi("y", ["N", 5])], [w("w", 5, 3), w("b", 5)])
    # SqueezeNet fire module: two convs concatenated, AveragePool, Reshape.
    out["fire_concat"] = model(
        "fire_concat",
        [helper.make_node("Conv", ["x", "w1"], ["a"], kernel_shape=[1, 1]),
         helper.make_node("Conv", ["x", "w3"], ["b"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Concat", ["a", "b"], ["c"], axis=1),
         helper.make_node("AveragePool", ["c"], ["p"], kernel_shape=[2, 2]),
         helper.make_node("Reshape", ["p", "shape"], ["y"])],
        [vi("x", [1, 2, 3, 3])], [vi("y", [1, 16])],
        [w("w1", 2, 2, 1, 1), w("w3", 2, 2, 3, 3),
         numpy_helper.from_array(np.array([1, -1], np.int64), "shape")])
    # MatMul + Add + Sigmoid/Mul (SiLU) + Transpose: non-conv ops.
    out["matmul_silu"] = model(
        "matmul_silu",
        [helper.make_node("MatMul", ["x", "w"], ["m"]),
         helper.make_node("Add", ["m", "b"], ["a"]),
         helper.make_node("Sigmoid", ["a"], ["s"]),
         helper.make_node("Mul", ["a", "s"], ["t"]),
         helper.make_node("Transpose", ["t"], ["y"], perm=[1, 0])],
        [vi("x", [2, 3])], [vi("y", [4, 2])], [w("w", 3, 4), w("b", 4)])
    return out


def image_seeds():
    from PIL import Image
    r = np.random.default_rng(11)
    rgb = Image.fromarray(r.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB")
    rgb2 = Image.fromarray(r.integers(0, 256, (7, 9, 3), dtype=np.uint8), "RGB")
    out = {}

    def enc(img, fmt, **kw):
        b = io.BytesIO()
        img.save(b, fmt, **kw)
        return b.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW
    out["jpeg_baseline"] = enc(rgb, "JPEG", quality=80)
    out["jpeg_progressive"] = enc(rgb2, "JPEG", quality=70, progressive=True)
    out["jpeg_gray"] = enc(rgb.convert("L"), "JPEG", quality=90)
    out["jpeg_exif_orient6"] = enc(rgb2, "JPEG", quality=75, exif=exif.tobytes())
    out["jpeg_444"] = enc(rgb, "JPEG", quality=95, subsampling=0)
    out["png_rgb"] = enc(rgb, "PNG")
    out["png_rgba"] = enc(rgb.convert("RGBA"), "PNG")
    out["png_palette"] = enc(rgb2.convert("P"), "PNG")
    out["png_gray16"] = enc(Image.fromarray(r.integers(0, 65536, (5, 4), dtype=np.uint16)), "PNG")
    out["webp_lossy"] = enc(rgb, "WEBP", quality=60)
    out["webp_lossless"] = enc(rgb2, "WEBP", lossless=True)
    out["bmp_24"] = enc(rgb2, "BMP")
    # Selector byte first (see fuzz_image.c): spread over resize modes/hints.
    return {name: bytes([(37 * i + 5) & 0xFF]) + data
            for i, (name, data) in enumerate(sorted(out.items()))}


def write(outdir, files):
    os.makedirs(outdir, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        print(f"{os.path.basename(outdir)}/{name} {len(data)} bytes")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "seeds")
    write(os.path.join(root, "onnx"),
          {name + ".onnx": m.SerializeToString() for name, m in seeds().items()})
    write(os.path.join(root, "image"), image_seeds())


if __name__ == "__main__":
    main()
