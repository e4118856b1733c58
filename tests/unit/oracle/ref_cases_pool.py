# Cases for test_ref_pool.c (see ref_oracle.py): MAXPOOL/AVGPOOL with
# ceil_mode, count_include_pad, dilations, auto_pad; 1-D/3-D; global pools.
W = "n->p.pool.win"
def k2(k, s=None):
    t = f"{W}.kernel[0] = {W}.kernel[1] = {k}"
    if s:
        t += f"; {W}.stride[0] = {W}.stride[1] = {s}"
    return t
P1 = f"{W}.pad_begin[0] = {W}.pad_begin[1] = {W}.pad_end[0] = {W}.pad_end[1] = 1"
case("maxpool_ceil", "MaxPool", [F([1, 2, 7, 7], 1)], "OSP_OP_MAXPOOL",
     k2(3, 2) + "; n->p.pool.ceil_mode = true",
     attrs=dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1))
case("maxpool_pad_floor", "MaxPool", [F([1, 2, 6, 6], 2)], "OSP_OP_MAXPOOL",
     k2(3, 2) + "; " + P1, attrs=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
case("maxpool_dilated", "MaxPool", [F([1, 1, 7, 7], 1)], "OSP_OP_MAXPOOL",
     k2(2) + f"; {W}.dilation[0] = {W}.dilation[1] = 2; " + P1,
     attrs=dict(kernel_shape=[2, 2], dilations=[2, 2], pads=[1, 1, 1, 1]), opset=12)
case("maxpool_same_lower", "MaxPool", [F([1, 1, 5, 5], 3)], "OSP_OP_MAXPOOL",
     k2(2, 2) + f"; {W}.auto_pad = OSP_PAD_SAME_LOWER",
     attrs=dict(kernel_shape=[2, 2], strides=[2, 2], auto_pad="SAME_LOWER"))
case("maxpool_1d", "MaxPool", [F([2, 3, 9], 1)], "OSP_OP_MAXPOOL",
     f"{W}.kernel[0] = 3; {W}.stride[0] = 2; {W}.pad_end[0] = 1",
     attrs=dict(kernel_shape=[3], strides=[2], pads=[0, 1]))
case("avgpool_include_pad", "AveragePool", [F([1, 1, 5, 5], 1)], "OSP_OP_AVGPOOL",
     k2(3, 2) + "; " + P1 + "; n->p.pool.count_include_pad = true",
     attrs=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1))
case("avgpool_exclude_pad", "AveragePool", [F([1, 1, 5, 5], 1)], "OSP_OP_AVGPOOL",
     k2(3, 2) + "; " + P1, attrs=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]))
case("avgpool_ceil_include_pad", "AveragePool", [F([1, 2, 6, 6], 2)], "OSP_OP_AVGPOOL",
     k2(3, 2) + "; " + P1 + "; n->p.pool.count_include_pad = true; n->p.pool.ceil_mode = true",
     attrs=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1,
                ceil_mode=1))
case("avgpool_ceil_exclude", "AveragePool", [F([1, 1, 7, 7], 4)], "OSP_OP_AVGPOOL",
     k2(2, 2) + "; n->p.pool.ceil_mode = true",
     attrs=dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1))
case("avgpool_same_upper", "AveragePool", [F([1, 2, 6, 6], 1)], "OSP_OP_AVGPOOL",
     k2(3, 2) + f"; {W}.auto_pad = OSP_PAD_SAME_UPPER",
     attrs=dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER"))
case("avgpool_3d", "AveragePool", [F([1, 2, 4, 4, 4], 1)], "OSP_OP_AVGPOOL",
     f"for (int i = 0; i < 3; i++) {W}.kernel[i] = {W}.stride[i] = 2",
     attrs=dict(kernel_shape=[2, 2, 2], strides=[2, 2, 2]))
case("global_avgpool", "GlobalAveragePool", [F([2, 3, 4, 5], 1)], "OSP_OP_GLOBAL_AVGPOOL")
case("global_maxpool", "GlobalMaxPool", [F([2, 3, 4, 5], 2)], "OSP_OP_GLOBAL_MAXPOOL")
case("maxpool_u8_pads", "MaxPool", [T(np.arange(25).reshape(1, 1, 5, 5) * 10 % 256, np.uint8)],
     "OSP_OP_MAXPOOL", k2(3, 2) + "; " + P1,
     attrs=dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), opset=12)
