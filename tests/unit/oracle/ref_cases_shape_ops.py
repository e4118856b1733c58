# Cases for test_ref_shape_ops.c (see ref_oracle.py): FLATTEN, RESHAPE,
# SQUEEZE, UNSQUEEZE, CONCAT, GATHER, TRANSPOSE, PAD, CAST, IDENTITY.
def axes(vals, extra=""):
    return (f"n->p.axes.has_axes = true; n->p.axes.n_axes = {len(vals)}; " +
            "; ".join(f"n->p.axes.axes[{i}] = {v}" for i, v in enumerate(vals)) + extra)
I64 = np.int64
case("flatten_axis0", "Flatten", [F([2, 3, 2], 1)], "OSP_OP_FLATTEN", "n->p.axis.axis = 0",
     attrs=dict(axis=0))
case("flatten_axis_neg", "Flatten", [F([2, 3, 2], 1)], "OSP_OP_FLATTEN", "n->p.axis.axis = -1",
     attrs=dict(axis=-1))
case("reshape_zero_minus1", "Reshape", [F([2, 3, 4], 1), T([0, -1, 3], I64)], "OSP_OP_RESHAPE")
case("squeeze_axes_input", "Squeeze", [F([1, 3, 1, 2], 1), T([-2, 0], I64)], "OSP_OP_SQUEEZE")
case("unsqueeze_neg", "Unsqueeze", [F([3, 2], 1), T([-1, 1], I64)], "OSP_OP_UNSQUEEZE")
case("identity", "Identity", [F([2, 5], 3)], "OSP_OP_IDENTITY")
case("concat_axis_neg2", "Concat", [F([2, 1, 3], 1), F([2, 2, 3], 2), F([2, 3, 3], 3)],
     "OSP_OP_CONCAT", "n->p.axis.axis = -2", attrs=dict(axis=-2))
case("concat_s64", "Concat", [T([1, 2], I64), T([-1], I64), T([7, 8, 9], I64)],
     "OSP_OP_CONCAT", "n->p.axis.axis = 0", attrs=dict(axis=0))
case("gather_axis0_neg", "Gather", [F([4, 3], 1), T([-1, 0, 2, -4], I64)], "OSP_OP_GATHER",
     "n->p.axis.axis = 0")
case("gather_axis1_2d_s32", "Gather", [F([2, 5, 3], 2), T([[0, -1], [3, 1]], np.int32)],
     "OSP_OP_GATHER", "n->p.axis.axis = 1", attrs=dict(axis=1))
case("gather_scalar_idx_last", "Gather", [F([2, 3, 4], 3), T(-2, I64)], "OSP_OP_GATHER",
     "n->p.axis.axis = -1", attrs=dict(axis=-1))
case("gather_s64_data", "Gather", [T([2, 3, 224, 224], I64), T(0, I64)], "OSP_OP_GATHER", "")
case("transpose_nhwc", "Transpose", [F([2, 3, 2, 4], 1)], "OSP_OP_TRANSPOSE",
     axes([0, 2, 3, 1]), attrs=dict(perm=[0, 2, 3, 1]))
case("transpose_default", "Transpose", [F([2, 3, 4], 2)], "OSP_OP_TRANSPOSE")
case("pad_constant", "Pad", [F([2, 3], 1), T([1, 0, 2, 2], I64), T(1.5, np.float32)],
     "OSP_OP_PAD", "")
case("pad_reflect", "Pad", [F([3, 4], 1), T([2, 3, 1, 3], I64)], "OSP_OP_PAD",
     "n->p.pad.mode = OSP_PADMODE_REFLECT", attrs=dict(mode="reflect"))
case("pad_edge", "Pad", [F([1, 2, 3], 1), T([0, 1, 2, 0, 2, 1], I64)], "OSP_OP_PAD",
     "n->p.pad.mode = OSP_PADMODE_EDGE", attrs=dict(mode="edge"))
case("pad_negative", "Pad", [F([3, 5], 1), T([-1, 1, 0, -2], I64)], "OSP_OP_PAD", "")
case("pad_attr_opset2", "Pad", [F([2, 2], 1)], "OSP_OP_PAD",
     "n->p.pad.has_pads = true; n->p.pad.n_pads = 4; n->p.pad.pads[0] = 1; n->p.pad.pads[3] = 1;"
     "n->p.pad.value = -3.0f", attrs=dict(pads=[1, 0, 0, 1], value=-3.0), opset=2)
case("cast_f32_s32", "Cast", [T([-2.75, -0.5, 0.5, 2.9, 100.25], np.float32)], "OSP_OP_CAST",
     "n->p.cast.to = OSP_DT_S32", attrs=dict(to=6))
case("cast_s64_f32", "Cast", [T([-3, 0, 5, 1 << 40], I64)], "OSP_OP_CAST",
     "n->p.cast.to = OSP_DT_F32", attrs=dict(to=1))
case("cast_f32_bool", "Cast", [T([0.0, -0.0, 0.25, -3], np.float32)], "OSP_OP_CAST",
     "n->p.cast.to = OSP_DT_BOOL", attrs=dict(to=9))
case("cast_s64_s32", "Cast", [T([-3, 7, 1 << 20], I64)], "OSP_OP_CAST",
     "n->p.cast.to = OSP_DT_S32", attrs=dict(to=6))
