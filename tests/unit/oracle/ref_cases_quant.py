# Cases for test_ref_quant.c (see ref_oracle.py): QuantizeLinear /
# DequantizeLinear, per tensor and per axis, u8/s8, ties to even, saturation.
case("quantize_u8_ties", "QuantizeLinear", [F([2, 13], 1), T(0.5, np.float32), T(3, np.uint8)],
     "OSP_OP_QUANTIZE", "n->p.cast.axis = 1")
case("quantize_u8_no_zp", "QuantizeLinear", [F([13], 1), T(0.25, np.float32)],
     "OSP_OP_QUANTIZE", "n->p.cast.axis = 1")
case("quantize_s8_saturate", "QuantizeLinear",
     [T([-1000, -3.5, -0.01, 0, 2.5, 3.5, 1000], np.float32), T(0.02, np.float32), T(-5, np.int8)],
     "OSP_OP_QUANTIZE", "n->p.cast.axis = 1")
case("quantize_s8_per_axis", "QuantizeLinear",
     [F([2, 3, 2], 1), T([0.5, 0.25, 1.0], np.float32), T([0, -1, 2], np.int8)],
     "OSP_OP_QUANTIZE", "n->p.cast.axis = 1", attrs=dict(axis=1))
case("dequantize_u8", "DequantizeLinear", [T([0, 3, 128, 255], np.uint8), T(0.1, np.float32),
     T(128, np.uint8)], "OSP_OP_DEQUANTIZE", "n->p.cast.axis = 1")
case("dequantize_s8_per_axis0", "DequantizeLinear",
     [T([[-128, 0, 127], [5, -5, 1]], np.int8), T([0.5, 2.0], np.float32), T([1, -2], np.int8)],
     "OSP_OP_DEQUANTIZE", "n->p.cast.axis = 0", attrs=dict(axis=0))
case("dequantize_s32", "DequantizeLinear", [T([-70000, 0, 123456], np.int32), T(0.001, np.float32)],
     "OSP_OP_DEQUANTIZE", "n->p.cast.axis = 1")
