# Cases for test_ref_norm.c (see ref_oracle.py): BATCHNORM, LRN, SOFTMAX
# (legacy opset < 13 vs opset 13) and REDUCE_MEAN.
case("batchnorm", "BatchNormalization",
     [F([2, 3, 2, 2], 1), F([3], 2), F([3], 3), F([3], 4),
      T([0.5, 1.0, 2.0], np.float32)], "OSP_OP_BATCHNORM", "n->p.bn.epsilon = 1e-3f",
     attrs=dict(epsilon=1e-3))
case("batchnorm_2d", "BatchNormalization",
     [F([4, 3], 1), F([3], 2), F([3], 3), F([3], 4), T([0.5, 1.0, 2.0], np.float32)],
     "OSP_OP_BATCHNORM", "n->p.bn.epsilon = 1e-5f")
def lrn_numpy(x, size, alpha, beta, bias):
    """The ONNX spec formula (ORT refuses even sizes; onnx.reference loops
    over the batch instead of the channels)."""
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    ss = np.zeros_like(x)
    for c in range(x.shape[1]):
        ss[:, c] = (x[:, max(0, c - lo):min(x.shape[1], c + hi + 1)] ** 2).sum(1)
    return (x / (bias + alpha / size * ss) ** beta).astype(np.float32)


case("lrn_size3", "LRN", [F([1, 5, 2, 2], 1)], "OSP_OP_LRN",
     "n->p.lrn = (osp_lrn_params_t){3, 0.5f, 0.75f, 1.0f}",
     attrs=dict(size=3, alpha=0.5, beta=0.75, bias=1.0))
case("lrn_size4_even", "LRN", [F([2, 6, 1, 3], 2)], "OSP_OP_LRN",
     "n->p.lrn = (osp_lrn_params_t){4, 0.25f, 0.5f, 2.0f}",
     oracle=lambda x: lrn_numpy(x, 4, 0.25, 0.5, 2.0))
case("softmax_legacy_axis1", "Softmax", [F([2, 3, 4], 1)], "OSP_OP_SOFTMAX",
     "n->p.axis.axis = 1; n->p.axis.legacy = true", attrs=dict(axis=1), opset=11, tol=1e-6)
case("softmax_13_axis1", "Softmax", [F([2, 3, 4], 1)], "OSP_OP_SOFTMAX",
     "n->p.axis.axis = 1", attrs=dict(axis=1), opset=13, tol=1e-6)
case("softmax_13_last", "Softmax", [F([2, 3, 4], 2)], "OSP_OP_SOFTMAX",
     "n->p.axis.axis = -1", opset=13, tol=1e-6)
case("softmax_legacy_default", "Softmax", [F([2, 3, 4], 3)], "OSP_OP_SOFTMAX",
     "n->p.axis.axis = 1; n->p.axis.legacy = true", opset=7, tol=1e-6)
case("reduce_mean_keep0", "ReduceMean", [F([2, 3, 4], 1)], "OSP_OP_REDUCE_MEAN",
     "n->p.axes = (osp_axes_params_t){.n_axes = 2, .axes = {1, -1}, .has_axes = true}",
     attrs=dict(axes=[1, -1], keepdims=0))
case("reduce_mean_all_keep", "ReduceMean", [F([2, 3, 4], 2)], "OSP_OP_REDUCE_MEAN",
     "n->p.axes.keepdims = true", attrs=dict(keepdims=1))
case("reduce_mean_spatial", "ReduceMean", [F([2, 3, 4, 5], 3)], "OSP_OP_REDUCE_MEAN",
     "n->p.axes = (osp_axes_params_t){.n_axes = 2, .axes = {2, 3}, .has_axes = true, .keepdims = true}",
     attrs=dict(axes=[2, 3], keepdims=1))
case("reduce_mean_axes_input", "ReduceMean", [F([2, 3, 4], 4), T([0], np.int64)], "OSP_OP_REDUCE_MEAN",
     "n->p.axes.keepdims = false", attrs=dict(keepdims=0), opset=18)
