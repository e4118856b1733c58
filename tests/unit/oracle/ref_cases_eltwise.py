# Cases for test_ref_eltwise.c (see ref_oracle.py): activations and
# numpy-broadcasting ADD/SUB/MUL/DIV on f32, s32, s64.
case("add_bcast", "Add", [F([2, 3, 4], 1), F([3, 1], 2)], "OSP_OP_ADD")
case("add_bcast_left_scalar", "Add", [F([], 4), F([2, 3], 2)], "OSP_OP_ADD")
case("sub_bcast_both", "Sub", [F([2, 1, 4], 1), F([3, 1], 2)], "OSP_OP_SUB")
case("sub_scalar_first", "Sub", [F([1], 3), F([2, 3], 1)], "OSP_OP_SUB")
case("mul_channel", "Mul", [F([2, 3, 2, 2], 1), F([1, 3, 1, 1], 5)], "OSP_OP_MUL")
case("div_bcast", "Div", [F([2, 3, 4], 1), T([0.5, -2, 4, 0.25], np.float32)], "OSP_OP_DIV")
case("add_s64", "Add", [T([[1, 2, 3], [4, 5, 6]], np.int64), T([10, -20, 30], np.int64)], "OSP_OP_ADD")
case("mul_s64", "Mul", [T([2, 3, 4], np.int64), T([[-1], [7]], np.int64)], "OSP_OP_MUL")
case("div_s64_trunc", "Div", [T([7, -7, 7, -7, 9], np.int64), T([2, 2, -2, -2, 3], np.int64)], "OSP_OP_DIV")
case("div_s32", "Div", [T([[7, -8, 9]], np.int32), T([[2], [-3]], np.int32)], "OSP_OP_DIV")
case("sub_s32", "Sub", [T([5, 6], np.int32), T([[1], [2], [3]], np.int32)], "OSP_OP_SUB")
case("relu", "Relu", [F([3, 5], 1)], "OSP_OP_RELU")
case("leaky_relu", "LeakyRelu", [F([3, 5], 1)], "OSP_OP_LEAKY_RELU", "n->p.act.alpha = 0.1f",
     attrs=dict(alpha=0.1))
case("clip_attr_opset6", "Clip", [F([3, 5], 2)], "OSP_OP_CLIP",
     "n->p.act.alpha = -0.5f; n->p.act.beta = 0.75f", attrs=dict(min=-0.5, max=0.75), opset=6)
case("clip_min_input_only", "Clip", [F([3, 5], 2), T(-0.25, np.float32)], "OSP_OP_CLIP",
     "n->p.act.alpha = -INFINITY; n->p.act.beta = INFINITY")
case("clip_max_input_only", "Clip", [F([3, 5], 2), None, T(0.5, np.float32)], "OSP_OP_CLIP",
     "n->p.act.alpha = -INFINITY; n->p.act.beta = INFINITY")
case("sigmoid", "Sigmoid", [F([3, 5], 3)], "OSP_OP_SIGMOID", tol=1e-6)
case("hard_sigmoid", "HardSigmoid", [F([3, 5], 3)], "OSP_OP_HARD_SIGMOID",
     "n->p.act.alpha = 0.3f; n->p.act.beta = 0.4f", attrs=dict(alpha=0.3, beta=0.4))
case("hard_swish", "HardSwish", [T(np.linspace(-4, 4, 17), np.float32)], "OSP_OP_HARD_SWISH",
     opset=14)
case("add_u8_wraps", "Add", [T([250, 3, 128], np.uint8), T([10], np.uint8)], "OSP_OP_ADD", opset=14)
case("sub_s8", "Sub", [T([-128, 5, 100], np.int8), T([[1], [-100]], np.int8)], "OSP_OP_SUB", opset=14)
case("clip_s32_inputs", "Clip", [T([-9, -2, 0, 4, 11], np.int32), T(-3, np.int32), T(5, np.int32)],
     "OSP_OP_CLIP", "n->p.act.alpha = -INFINITY; n->p.act.beta = INFINITY")
