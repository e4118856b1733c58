# Cases for test_ref_conv.c (see ref_oracle.py): CONV incl. groups,
# depthwise, dilations, asymmetric and auto pads, 1-D/3-D, fused post-ops.
W2 = "n->p.conv.win"
case("conv2d_pad1_bias", "Conv", [F([1, 2, 5, 5], 1), F([3, 2, 3, 3], 2), F([3], 3)],
     "OSP_OP_CONV", f"{W2}.pad_begin[0] = {W2}.pad_begin[1] = {W2}.pad_end[0] = {W2}.pad_end[1] = 1",
     attrs=dict(pads=[1, 1, 1, 1]))
case("conv2d_group2_stride2", "Conv", [F([1, 4, 5, 5], 1), F([4, 2, 3, 3], 2)],
     "OSP_OP_CONV", f"n->p.conv.group = 2; {W2}.stride[0] = {W2}.stride[1] = 2",
     attrs=dict(group=2, strides=[2, 2]))
case("conv2d_depthwise_dil_asym", "Conv", [F([1, 3, 6, 6], 1), F([3, 1, 3, 3], 2), F([3], 4)],
     "OSP_OP_CONV",
     f"n->p.conv.group = 3; {W2}.dilation[0] = {W2}.dilation[1] = 2; "
     f"{W2}.pad_begin[0] = 2; {W2}.pad_begin[1] = 1; {W2}.pad_end[0] = 0; {W2}.pad_end[1] = 1",
     attrs=dict(group=3, dilations=[2, 2], pads=[2, 1, 0, 1]))
case("conv2d_same_upper_s2", "Conv", [F([1, 2, 6, 7], 1), F([2, 2, 3, 3], 2)],
     "OSP_OP_CONV", f"{W2}.auto_pad = OSP_PAD_SAME_UPPER; {W2}.stride[0] = {W2}.stride[1] = 2",
     attrs=dict(auto_pad="SAME_UPPER", strides=[2, 2]))
case("conv2d_same_lower_s2", "Conv", [F([1, 2, 6, 7], 1), F([2, 2, 4, 4], 2)],
     "OSP_OP_CONV", f"{W2}.auto_pad = OSP_PAD_SAME_LOWER; {W2}.stride[0] = {W2}.stride[1] = 2",
     attrs=dict(auto_pad="SAME_LOWER", strides=[2, 2]))
case("conv2d_valid_rect_stride", "Conv", [F([2, 3, 7, 6], 1), F([2, 3, 2, 3], 2)],
     "OSP_OP_CONV", f"{W2}.auto_pad = OSP_PAD_VALID; {W2}.stride[0] = 3; {W2}.stride[1] = 2",
     attrs=dict(auto_pad="VALID", strides=[3, 2]))
case("conv1d_s2_pads", "Conv", [F([2, 3, 9], 1), F([4, 3, 3], 2), F([4], 3)],
     "OSP_OP_CONV", f"{W2}.stride[0] = 2; {W2}.pad_begin[0] = 1; {W2}.pad_end[0] = 2",
     attrs=dict(strides=[2], pads=[1, 2]))
case("conv3d", "Conv", [F([1, 2, 4, 5, 5], 1), F([2, 2, 2, 3, 3], 2)],
     "OSP_OP_CONV",
     f"for (int i = 0; i < 3; i++) {W2}.pad_begin[i] = {W2}.pad_end[i] = 1; "
     f"{W2}.stride[1] = {W2}.stride[2] = 2",
     attrs=dict(pads=[1, 1, 1, 1, 1, 1], strides=[1, 2, 2]))
case("conv2d_1x1", "Conv", [F([2, 5, 3, 4], 1), F([3, 5, 1, 1], 2), F([3], 5)],
     "OSP_OP_CONV", "")
case("conv2d_post_sum_relu", "Conv", [F([1, 2, 5, 5], 1), F([3, 2, 3, 3], 2), F([3], 3)],
     "OSP_OP_CONV", f"{W2}.pad_begin[0] = {W2}.pad_begin[1] = {W2}.pad_end[0] = {W2}.pad_end[1] = 1",
     attrs=dict(pads=[1, 1, 1, 1]), post=[("sum", F([1, 3, 5, 5], 7)), ("relu",)])
case("conv2d_post_clip", "Conv", [F([1, 2, 4, 4], 1), F([2, 2, 3, 3], 2)],
     "OSP_OP_CONV", "", post=[("clip", 0.0, 1.5)])
case("conv2d_1x1_group2_o10", "Conv", [F([2, 6, 3, 3], 1), F([10, 3, 1, 1], 2), F([10], 3)],
     "OSP_OP_CONV", "n->p.conv.group = 2", attrs=dict(group=2))
case("conv2d_1x1_stride2", "Conv", [F([1, 4, 5, 5], 1), F([6, 4, 1, 1], 2)],
     "OSP_OP_CONV", f"{W2}.stride[0] = {W2}.stride[1] = 2", attrs=dict(strides=[2, 2]))
case("conv2d_1x1_post_relu", "Conv", [F([1, 8, 2, 3], 1), F([5, 8, 1, 1], 2)],
     "OSP_OP_CONV", "", post=[("relu",)])
# Planes too big for the unrolled (im2col) path take the direct loops; the
# cases above are small and go through im2col (opg >= 4) or direct (opg < 4).
case("conv2d_direct_large_plane", "Conv", [F([1, 2, 31, 31], 1), F([4, 2, 3, 3], 2), F([4], 3)],
     "OSP_OP_CONV", f"{W2}.pad_begin[0] = {W2}.pad_begin[1] = {W2}.pad_end[0] = {W2}.pad_end[1] = 1",
     attrs=dict(pads=[1, 1, 1, 1]))
case("conv2d_im2col_many_ic", "Conv", [F([1, 40, 7, 7], 1), F([6, 40, 3, 3], 2), F([6], 3)],
     "OSP_OP_CONV", f"{W2}.pad_begin[0] = {W2}.pad_begin[1] = {W2}.pad_end[0] = {W2}.pad_end[1] = 1",
     attrs=dict(pads=[1, 1, 1, 1]), tol=1e-4)
case("conv2d_im2col_group_stride_dil", "Conv", [F([1, 8, 9, 9], 1), F([8, 4, 3, 3], 2)],
     "OSP_OP_CONV",
     f"n->p.conv.group = 2; {W2}.stride[0] = {W2}.stride[1] = 2; {W2}.dilation[0] = 2; "
     f"{W2}.pad_begin[0] = 2; {W2}.pad_end[1] = 1",
     attrs=dict(group=2, strides=[2, 2], dilations=[2, 1], pads=[2, 0, 0, 1]))
