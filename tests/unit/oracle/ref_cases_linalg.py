# Cases for test_ref_linalg.c (see ref_oracle.py): GEMM with alpha/beta,
# transposes and broadcast C; batched MATMUL incl. 1-D operands; post-ops.
def g(alpha=1.0, beta=1.0, ta=0, tb=0):
    return (f"n->p.gemm = (osp_gemm_params_t){{{alpha}f, {beta}f, {'true' if ta else 'false'}, "
            f"{'true' if tb else 'false'}}}")
case("gemm_plain", "Gemm", [F([3, 4], 1), F([4, 5], 2)], "OSP_OP_GEMM", g())
case("gemm_transB_biasN", "Gemm", [F([2, 7], 1), F([5, 7], 2), F([5], 3)], "OSP_OP_GEMM",
     g(tb=1), attrs=dict(transB=1))
case("gemm_transA_alpha_beta_C_m1", "Gemm", [F([4, 3], 1), F([4, 5], 2), F([3, 1], 3)],
     "OSP_OP_GEMM", g(0.5, 2.0, ta=1), attrs=dict(transA=1, alpha=0.5, beta=2.0))
case("gemm_transAB_C_scalar", "Gemm", [F([9, 3], 1), F([2, 9], 2), F([], 4)], "OSP_OP_GEMM",
     g(1.5, -1.0, 1, 1), attrs=dict(transA=1, transB=1, alpha=1.5, beta=-1.0))
case("gemm_C_full", "Gemm", [F([2, 3], 1), F([3, 4], 2), F([2, 4], 3)], "OSP_OP_GEMM", g())
case("gemm_post_relu", "Gemm", [F([2, 3], 1), F([4, 3], 2), F([4], 3)], "OSP_OP_GEMM",
     g(tb=1), attrs=dict(transB=1), post=[("relu",)])
case("matmul_2d", "MatMul", [F([3, 4], 1), F([4, 5], 2)], "OSP_OP_MATMUL")
case("matmul_batched_bcast", "MatMul", [F([2, 1, 3, 4], 1), F([5, 4, 2], 2)], "OSP_OP_MATMUL")
case("matmul_1d_left", "MatMul", [F([4], 1), F([2, 4, 3], 2)], "OSP_OP_MATMUL")
case("matmul_1d_right", "MatMul", [F([2, 3, 4], 1), F([4], 2)], "OSP_OP_MATMUL")
case("matmul_1d_1d", "MatMul", [F([5], 1), F([5], 2)], "OSP_OP_MATMUL")
case("matmul_long_k", "MatMul", [F([2, 37], 1), F([37, 3], 2)], "OSP_OP_MATMUL")
case("matmul_post_sum", "MatMul", [F([2, 3], 1), F([3, 4], 2)], "OSP_OP_MATMUL",
     post=[("sum", F([2, 4], 6)), ("clip", -1.0, 1.0)])
case("matmul_m6_blocked", "MatMul", [F([6, 5], 1), F([5, 7], 2)], "OSP_OP_MATMUL")
case("gemm_m9_alpha", "Gemm", [F([9, 4], 3), F([4, 6], 4), F([6], 5)], "OSP_OP_GEMM",
     g(0.75, 0.5), attrs=dict(alpha=0.75, beta=0.5))
