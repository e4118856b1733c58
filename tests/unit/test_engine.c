/* test_engine.c — the oneDNN executor against the reference kernels on small
 * hand-built graphs: each graph runs through osp__engine_from_graph +
 * osp_engine_run in fp32 and must match a node-by-node reference evaluation
 * to within 1e-5 of the output's magnitude; bf16 runs must keep cosine
 * similarity >= 0.999. The describe text is checked where the point of a
 * test is which kernel ran (oneDNN vs ref, fusions, in-place sums). */
#include <malloc.h>

#include "engine_testutil.h"

#define TOL 1e-5

static void run_both(osp_graph_t *(*build)(void), int rank,
                     const int64_t *dims, char **desc) {
    osp_tensor_t x = tu_tensor(rank, dims, 7);
    tu_check(build(), &x, OSP_PREC_FP32, TOL, 0, desc);
    tu_check(build(), &x, OSP_PREC_BF16, 0, 0.999, NULL);
    free(x.data);
}

/* conv: groups, dilation, asymmetric pads, stride, bias, fused relu. */
static osp_graph_t *g_conv_grouped(void) {
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 4, D(-1, 8, 11, 11));
    int n;
    int y = tu_conv(g, x, 8, 12, 3, 4, tu_win2(3, 2, 2, 1, 2, 2, 0), true, 11, &n);
    g->nodes[n].n_post = 1;
    g->nodes[n].post[0].kind = OSP_POST_ACT;
    g->nodes[n].post[0].act = OSP_ACT_RELU;
    tu_output(g, y);
    return g;
}

static void test_conv_grouped(void **state) {
    (void)state;
    char *desc = NULL;
    run_both(g_conv_grouped, 4, D(2, 8, 11, 11), &desc);
    assert_non_null(strstr(desc, "CONV"));
    assert_null(strstr(desc, ": ref"));
    assert_non_null(strstr(desc, "+relu"));
    free(desc);
}

/* depthwise conv + clip (relu6) + 1x1 conv with leaky relu, no bias. */
static osp_graph_t *g_depthwise(void) {
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 4, D(-1, 16, 10, 10));
    int n1, n2;
    int y = tu_conv(g, x, 16, 16, 3, 16, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 3, &n1);
    g->nodes[n1].n_post = 1;
    g->nodes[n1].post[0] = (osp_post_op_t){OSP_POST_ACT, OSP_ACT_CLIP, 0.f, 0.6f, 0};
    y = tu_conv(g, y, 16, 24, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), false, 5, &n2);
    g->nodes[n2].n_post = 1;
    g->nodes[n2].post[0] = (osp_post_op_t){OSP_POST_ACT, OSP_ACT_LEAKY_RELU, 0.1f, 0.f, 0};
    tu_output(g, y);
    return g;
}

static void test_depthwise(void **state) {
    (void)state;
    run_both(g_depthwise, 4, D(3, 16, 10, 10), NULL);
}

/* ResNet-style block: conv→relu→conv + x → relu, the Add fused by the
 * plan-time residual pass into a SUM post-op. With `reuse`, x is read
 * again afterwards so the sum cannot be computed in place. */
static osp_graph_t *g_residual_common(bool reuse) {
    osp_graph_t *g = osp_graph_create();
    int x0 = tu_input(g, "x", 4, D(-1, 16, 8, 8));
    int n;
    /* x is a conv output so that it lives in the arena (blocked layout). */
    int x = tu_conv(g, x0, 16, 16, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true, 1, NULL);
    int y = tu_conv(g, x, 16, 16, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 2, &n);
    g->nodes[n].n_post = 1;
    g->nodes[n].post[0] = (osp_post_op_t){OSP_POST_ACT, OSP_ACT_RELU, 0, 0, 0};
    y = tu_conv(g, y, 16, 16, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 3, NULL);
    int s = tu_node(g, OSP_OP_ADD, I(y, x), 2, NULL);
    int r = tu_node(g, OSP_OP_RELU, I(s), 1, NULL);
    if (reuse)
        r = tu_node(g, OSP_OP_MUL, I(r, x), 2, NULL);
    tu_output(g, r);
    return g;
}
static osp_graph_t *g_residual(void) { return g_residual_common(false); }
static osp_graph_t *g_residual_reuse(void) { return g_residual_common(true); }

static void test_residual(void **state) {
    (void)state;
    char *desc = NULL;
    run_both(g_residual, 4, D(2, 16, 8, 8), &desc);
    assert_non_null(strstr(desc, "+sum"));
    assert_non_null(strstr(desc, "(in place)"));
    free(desc);
    run_both(g_residual_reuse, 4, D(2, 16, 8, 8), &desc);
    assert_non_null(strstr(desc, "residual copy"));
    free(desc);
}

/* Pools: max with ceil_mode and pads, avg with/without count_include_pad,
 * global average, summed so that all are checked at once. */
static osp_graph_t *g_pools(void) {
    osp_graph_t *g = osp_graph_create();
    int x0 = tu_input(g, "x", 4, D(-1, 8, 13, 13));
    int x = tu_conv(g, x0, 8, 8, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true, 4, NULL);
    int n1, n2, n3, n4;
    int a = tu_node(g, OSP_OP_MAXPOOL, I(x), 1, &n1);
    g->nodes[n1].p.pool.win = tu_win2(3, 2, 1, 0, 0, 0, 0);
    g->nodes[n1].p.pool.ceil_mode = true;
    int b = tu_node(g, OSP_OP_AVGPOOL, I(x), 1, &n2);
    g->nodes[n2].p.pool.win = tu_win2(3, 2, 1, 1, 1, 1, 1);
    g->nodes[n2].p.pool.count_include_pad = false;
    int c = tu_node(g, OSP_OP_AVGPOOL, I(x), 1, &n3);
    g->nodes[n3].p.pool.win = tu_win2(3, 2, 1, 1, 1, 1, 1);
    g->nodes[n3].p.pool.count_include_pad = true;
    int d = tu_node(g, OSP_OP_GLOBAL_AVGPOOL, I(x), 1, NULL);
    int m = tu_node(g, OSP_OP_MAXPOOL, I(x), 1, &n4);
    g->nodes[n4].p.pool.win = tu_win2(2, 2, 1, 0, 0, 0, 0);
    g->nodes[n4].p.pool.win.auto_pad = OSP_PAD_SAME_UPPER;
    tu_output(g, a);
    tu_output(g, b);
    tu_output(g, c);
    tu_output(g, d);
    tu_output(g, m);
    return g;
}

static void test_pools(void **state) {
    (void)state;
    char *desc = NULL;
    run_both(g_pools, 4, D(2, 8, 13, 13), &desc);
    assert_null(strstr(desc, ": ref"));
    free(desc);
}

/* Classifier head: GAP → Flatten → Gemm(transB, bias) → Softmax, and a
 * second Gemm without transB and with alpha != 1 (reference kernel). */
static osp_graph_t *g_head(void) {
    osp_graph_t *g = osp_graph_create();
    int x0 = tu_input(g, "x", 4, D(-1, 32, 5, 5));
    int x = tu_conv(g, x0, 32, 32, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 4, NULL);
    int p = tu_node(g, OSP_OP_GLOBAL_AVGPOOL, I(x), 1, NULL);
    int nf, ng, ng2, ns;
    int f = tu_node(g, OSP_OP_FLATTEN, I(p), 1, &nf);
    g->nodes[nf].p.axis.axis = 1;
    int w = tu_const(g, "fc.w", 2, D(10, 32), 0.3f, 9);
    int bias = tu_const(g, "fc.b", 1, D(10), 0.1f, 10);
    int y = tu_node(g, OSP_OP_GEMM, I(f, w, bias), 3, &ng);
    g->nodes[ng].p.gemm = (osp_gemm_params_t){1.0f, 1.0f, false, true};
    int s = tu_node(g, OSP_OP_SOFTMAX, I(y), 1, &ns);
    g->nodes[ns].p.axis.axis = -1;
    int w2 = tu_const(g, "fc2.w", 2, D(32, 7), 0.3f, 11);
    int y2 = tu_node(g, OSP_OP_GEMM, I(f, w2), 2, &ng2);
    g->nodes[ng2].p.gemm = (osp_gemm_params_t){0.5f, 1.0f, false, false};
    tu_output(g, y);
    tu_output(g, s);
    tu_output(g, y2);
    return g;
}

static void test_head(void **state) {
    (void)state;
    char *desc = NULL;
    run_both(g_head, 4, D(3, 32, 5, 5), &desc);
    assert_non_null(strstr(desc, "SOFTMAX"));
    free(desc);
}

/* SqueezeNet fire module: squeeze conv, two expand convs, channel concat;
 * then Reshape with a constant shape and a Transpose (reference step in
 * the middle of oneDNN steps), and a broadcast Add/Mul with constants. */
static osp_graph_t *g_fire(void) {
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 4, D(-1, 16, 6, 6));
    int sq = tu_conv(g, x, 16, 8, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true, 21, NULL);
    int e1 = tu_conv(g, sq, 8, 12, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true, 22, NULL);
    int e3 = tu_conv(g, sq, 8, 12, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 23, NULL);
    int nc;
    int cat = tu_node(g, OSP_OP_CONCAT, I(e1, e3), 2, &nc);
    g->nodes[nc].p.axis.axis = 1;
    int cb = tu_const(g, "chan_bias", 3, D(24, 1, 1), 0.5f, 24);
    int add = tu_node(g, OSP_OP_ADD, I(cb, cat), 2, NULL); /* swapped operands */
    int sc = tu_const(g, "scale", 0, NULL, 1.5f, 25);
    int mul = tu_node(g, OSP_OP_MUL, I(add, sc), 2, NULL);
    int shape = tu_const_i64(g, 1, D(3), (const int64_t[]){0, 24, -1});
    int rs = tu_node(g, OSP_OP_RESHAPE, I(mul, shape), 2, NULL);
    int nt;
    int tr = tu_node(g, OSP_OP_TRANSPOSE, I(rs), 1, &nt);
    g->nodes[nt].p.axes.has_axes = true;
    g->nodes[nt].p.axes.n_axes = 3;
    g->nodes[nt].p.axes.axes[0] = 0;
    g->nodes[nt].p.axes.axes[1] = 2;
    g->nodes[nt].p.axes.axes[2] = 1;
    int sg = tu_node(g, OSP_OP_SIGMOID, I(tr), 1, NULL);
    tu_output(g, sg);
    return g;
}

static void test_fire(void **state) {
    (void)state;
    char *desc = NULL;
    run_both(g_fire, 4, D(2, 16, 6, 6), &desc);
    assert_non_null(strstr(desc, "TRANSPOSE"));
    assert_non_null(strstr(desc, "CONCAT"));
    /* never oneDNN's reference concat (slow, allocates on every run): the
     * 12 + 12 channels fill no whole 8-channel block under AVX2 */
    assert_null(strstr(desc, "CONCAT_3: ref"));
    free(desc);
}

/* Standalone activations, batchnorm and LRN on a conv output, plus a
 * MatMul against a constant and a Sub with a runtime broadcast operand. */
static osp_graph_t *g_misc(void) {
    osp_graph_t *g = osp_graph_create();
    int x0 = tu_input(g, "x", 4, D(-1, 8, 5, 5));
    int x = tu_conv(g, x0, 8, 8, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true, 31, NULL);
    int n;
    int l = tu_node(g, OSP_OP_LEAKY_RELU, I(x), 1, &n);
    g->nodes[n].p.act.alpha = 0.2f;
    int c = tu_node(g, OSP_OP_CLIP, I(l), 1, &n);
    g->nodes[n].p.act.alpha = -0.3f;
    g->nodes[n].p.act.beta = 0.4f;
    int hs = tu_node(g, OSP_OP_HARD_SWISH, I(x), 1, NULL);
    int hg = tu_node(g, OSP_OP_HARD_SIGMOID, I(x), 1, &n);
    g->nodes[n].p.act.alpha = 0.2f;
    g->nodes[n].p.act.beta = 0.5f;
    int bn_in[5] = {x, tu_const(g, NULL, 1, D(8), 1.0f, 32),
                    tu_const(g, NULL, 1, D(8), 0.5f, 33),
                    tu_const(g, NULL, 1, D(8), 0.5f, 34), -1};
    {
        /* variance must be positive */
        int v = osp_graph_add_value(g, NULL, OSP_DT_F32, 1, D(8));
        float *d = malloc(8 * sizeof(float));
        for (int i = 0; i < 8; i++)
            d[i] = 0.5f + 0.1f * (float)i;
        osp_graph_set_const(g, v, d, 8 * sizeof(float));
        bn_in[4] = v;
    }
    int bn = tu_node(g, OSP_OP_BATCHNORM, bn_in, 5, &n);
    g->nodes[n].p.bn.epsilon = 1e-5f;
    int lrn = tu_node(g, OSP_OP_LRN, I(bn), 1, &n);
    g->nodes[n].p.lrn = (osp_lrn_params_t){3, 1e-2f, 0.75f, 1.0f};
    int mw = tu_const(g, NULL, 2, D(5, 4), 0.5f, 35);
    int mm = tu_node(g, OSP_OP_MATMUL, I(lrn, mw), 2, NULL);
    int gp = tu_node(g, OSP_OP_GLOBAL_AVGPOOL, I(hs), 1, NULL);
    int sub = tu_node(g, OSP_OP_SUB, I(hg, gp), 2, NULL);
    tu_output(g, c);
    tu_output(g, mm);
    tu_output(g, sub);
    return g;
}

static void test_misc(void **state) {
    (void)state;
    run_both(g_misc, 4, D(2, 8, 5, 5), NULL);
}

/* Concats done by memcpy: channel-blocked conv outputs along C (whole
 * 16-channel blocks on AVX-512, 8-channel ones under AVX2), and plain
 * tensors along an inner axis. */
static osp_graph_t *g_concat_copy(void) {
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 4, D(-1, 16, 7, 7));
    osp_window_t w1 = tu_win2(1, 1, 1, 0, 0, 0, 0);
    int a = tu_conv(g, x, 16, 32, 1, 1, w1, true, 51, NULL);
    int b = tu_conv(g, x, 16, 16, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 52, NULL);
    int n;
    int cat = tu_node(g, OSP_OP_CONCAT, I(a, b, a), 3, &n);
    g->nodes[n].p.axis.axis = 1;
    int r = tu_node(g, OSP_OP_RELU, I(cat), 1, NULL);
    /* plain: transposes (reference steps) concatenated along axis 2 */
    int t1 = tu_node(g, OSP_OP_TRANSPOSE, I(a), 1, &n);
    g->nodes[n].p.axes = (osp_axes_params_t){.n_axes = 4, .axes = {0, 2, 3, 1}, .has_axes = true};
    int t2 = tu_node(g, OSP_OP_TRANSPOSE, I(b), 1, &n);
    g->nodes[n].p.axes = (osp_axes_params_t){.n_axes = 4, .axes = {0, 2, 3, 1}, .has_axes = true};
    int cat2 = tu_node(g, OSP_OP_CONCAT, I(t1, t2), 2, &n);
    g->nodes[n].p.axis.axis = 3;
    tu_output(g, r);
    tu_output(g, cat2);
    return g;
}

static void test_concat_copy(void **state) {
    (void)state;
    char *desc = NULL;
    run_both(g_concat_copy, 4, D(2, 16, 7, 7), &desc);
    const char *first = strstr(desc, "osprey:memcpy");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "osprey:memcpy"));
    free(desc);
}

/* Softmax variants (opset-13 axis, legacy flatten-at-axis with trailing
 * ones → oneDNN, legacy over several dims → reference) and a MatMul of two
 * runtime tensors with batch broadcasting. */
static osp_graph_t *g_softmax_matmul(void) {
    osp_graph_t *g = osp_graph_create();
    int x = tu_input(g, "x", 4, D(-1, 3, 4, 5));
    int n;
    int s1 = tu_node(g, OSP_OP_SOFTMAX, I(x), 1, &n);
    g->nodes[n].p.axis = (osp_axis_params_t){2, false};
    int s2 = tu_node(g, OSP_OP_SOFTMAX, I(x), 1, &n);
    g->nodes[n].p.axis = (osp_axis_params_t){1, true};
    int p = tu_node(g, OSP_OP_GLOBAL_AVGPOOL, I(x), 1, NULL);
    int s3 = tu_node(g, OSP_OP_SOFTMAX, I(p), 1, &n);
    g->nodes[n].p.axis = (osp_axis_params_t){1, true};
    int t = tu_node(g, OSP_OP_TRANSPOSE, I(x), 1, &n);
    g->nodes[n].p.axes = (osp_axes_params_t){.n_axes = 4, .axes = {0, 1, 3, 2}, .has_axes = true};
    int mm = tu_node(g, OSP_OP_MATMUL, I(x, t), 2, NULL); /* [N,3,4,4] */
    int sl = tu_const(g, NULL, 3, D(3, 4, 4), 1.0f, 61);
    int mm2 = tu_node(g, OSP_OP_MATMUL, I(sl, mm), 2, NULL); /* const A */
    tu_output(g, s1);
    tu_output(g, s2);
    tu_output(g, s3);
    tu_output(g, mm2);
    return g;
}

static void test_softmax_matmul(void **state) {
    (void)state;
    char *desc = NULL;
    run_both(g_softmax_matmul, 4, D(2, 3, 4, 5), &desc);
    assert_non_null(strstr(desc, "SOFTMAX"));
    assert_non_null(strstr(desc, "MATMUL"));
    free(desc);
}

/* 1-D and 3-D convolutions and pools, two graph inputs. */
static osp_graph_t *g_nd(void) {
    osp_graph_t *g = osp_graph_create();
    int a = tu_input(g, "a", 3, D(-1, 16, 20));
    int b = tu_input(g, "b", 5, D(-1, 16, 4, 6, 6));
    osp_window_t w1;
    memset(&w1, 0, sizeof w1);
    w1.n_spatial = 1;
    w1.pad_begin[0] = 1;
    w1.pad_end[0] = 2;
    w1.dilation[0] = 2;
    int wa = tu_const(g, NULL, 3, D(32, 16, 3), 0.25f, 41);
    int na, nb, np;
    int ya = tu_node(g, OSP_OP_CONV, I(a, wa), 2, &na);
    g->nodes[na].p.conv.win = w1;
    g->nodes[na].p.conv.group = 1;
    int pa = tu_node(g, OSP_OP_MAXPOOL, I(ya), 1, &np);
    memset(&g->nodes[np].p.pool.win, 0, sizeof(osp_window_t));
    g->nodes[np].p.pool.win.n_spatial = 1;
    g->nodes[np].p.pool.win.kernel[0] = 3;
    g->nodes[np].p.pool.win.stride[0] = 2;
    osp_window_t w3;
    memset(&w3, 0, sizeof w3);
    w3.n_spatial = 3;
    for (int i = 0; i < 3; i++)
        w3.pad_begin[i] = w3.pad_end[i] = 1;
    int wb = tu_const(g, NULL, 5, D(16, 16, 3, 3, 3), 0.1f, 42);
    int bb = tu_const(g, NULL, 1, D(16), 0.1f, 43);
    int yb = tu_node(g, OSP_OP_CONV, I(b, wb, bb), 3, &nb);
    g->nodes[nb].p.conv.win = w3;
    g->nodes[nb].p.conv.group = 1;
    g->nodes[nb].n_post = 1;
    g->nodes[nb].post[0] = (osp_post_op_t){OSP_POST_ACT, OSP_ACT_SIGMOID, 0, 0, 0};
    int gb = tu_node(g, OSP_OP_GLOBAL_MAXPOOL, I(yb), 1, NULL);
    tu_output(g, pa);
    tu_output(g, gb);
    return g;
}

static void test_nd(void **state) {
    (void)state;
    osp_tensor_t x[2] = {tu_tensor(3, D(2, 16, 20), 5),
                         tu_tensor(5, D(2, 16, 4, 6, 6), 6)};
    char *desc = NULL;
    tu_check(g_nd(), x, OSP_PREC_FP32, TOL, 0, &desc);
    assert_null(strstr(desc, ": ref"));
    free(desc);
    tu_check(g_nd(), x, OSP_PREC_BF16, 0, 0.999, NULL);
    free(x[0].data);
    free(x[1].data);
}

/* Batch changes build new plans; the old plan stays cached and valid. */
static void test_batches(void **state) {
    (void)state;
    osp_graph_t *g = g_residual();
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.precision = OSP_PREC_FP32;
    o.max_batch = 4;
    /* One thread: with more, even batches run as lanes (test_lanes.c) with
     * plans of their own, and this test counts whole-batch plans. */
    o.threads = 1;
    osp_err_t err = {0};
    osp_engine_t *e = osp__engine_from_graph(g, &o, &err);
    assert_non_null(e);
    assert_int_equal(osp_engine_num_inputs(e), 1);
    assert_int_equal(osp_engine_input(e, 0)->dims[0], -1);
    assert_int_equal(osp_engine_prepare(e, 3, &err), 0);
    assert_int_equal(e->n_plans, 1);
    /* Growing batches grow the shared arena; the second pass re-runs the
     * older plans, which must re-bind to the moved arena. */
    for (int k = 0; k < 8; k++) {
        int b = k < 4 ? k + 1 : 8 - k;
        osp_tensor_t x = tu_tensor(4, D(b, 16, 8, 8), (uint32_t)k);
        osp_tensor_t refs[1], out;
        float **ref = tu_ref_eval(e->g, &x, refs);
        assert_int_equal(osp_engine_run(e, &x, 1, &out, 1, &err), 0);
        assert_int_equal(out.dims[0], b);
        assert_true(tu_rel_diff(out.data, ref[0], osp_tensor_numel(&out)) < TOL);
        free(ref[0]);
        free(ref);
        free(x.data);
    }
    assert_int_equal(e->n_plans, 4);
    osp_tensor_t x = tu_tensor(4, D(5, 16, 8, 8), 1), out;
    assert_int_equal(osp_engine_run(e, &x, 1, &out, 1, &err), OSP_ELIMIT);
    free(x.data);
    x = tu_tensor(4, D(1, 15, 8, 8), 1);
    assert_int_equal(osp_engine_run(e, &x, 1, &out, 1, &err), OSP_ESHAPE);
    assert_non_null(strstr(err.msg, "dim 1"));
    x.dtype = OSP_DT_U8;
    assert_int_equal(osp_engine_run(e, &x, 1, &out, 1, &err), OSP_EINVAL);
    free(x.data);
    osp_engine_destroy(e);
}

/* After the first run of each plan, runs (also switching between cached
 * plans) must not grow the heap: no allocation on the inference path. */
static void test_no_alloc(void **state) {
    (void)state;
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.precision = OSP_PREC_FP32;
    osp_err_t err = {0};
    osp_engine_t *e = osp__engine_from_graph(g_fire(), &o, &err);
    assert_non_null(e);
    osp_tensor_t x1 = tu_tensor(4, D(1, 16, 6, 6), 1);
    osp_tensor_t x3 = tu_tensor(4, D(3, 16, 6, 6), 2);
    osp_tensor_t out;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(osp_engine_run(e, &x1, 1, &out, 1, &err), 0);
        assert_int_equal(osp_engine_run(e, &x3, 1, &out, 1, &err), 0);
    }
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < 20; i++) {
        assert_int_equal(osp_engine_run(e, i % 2 ? &x1 : &x3, 1, &out, 1, &err), 0);
    }
    struct mallinfo2 after = mallinfo2();
    assert_int_equal(after.uordblks, before.uordblks);
    assert_int_equal(after.hblkhd, before.hblkhd);
    free(x1.data);
    free(x3.data);
    osp_engine_destroy(e);
}

static void test_api(void **state) {
    (void)state;
    osp_precision_t p;
    assert_int_equal(osp_precision_parse("bf16", &p), 0);
    assert_int_equal(p, OSP_PREC_BF16);
    assert_int_equal(osp_precision_parse("auto", &p), 0);
    assert_int_equal(p, OSP_PREC_AUTO);
    assert_int_equal(osp_precision_parse("fp16", &p), OSP_EINVAL);
    for (int i = 0; i < OSP_PREC_COUNT; i++) {
        assert_int_equal(osp_precision_parse(osp_precision_name(i), &p), 0);
        assert_int_equal(p, i);
    }
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    assert_int_equal(o.precision, OSP_PREC_AUTO);
    osp_err_t err = {0};
    o.precision = OSP_PREC_INT8;
    assert_null(osp__engine_from_graph(g_residual(), &o, &err));
    assert_int_equal(err.code, OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "calibration inputs"));

    o.precision = OSP_PREC_AUTO;
    o.threads = 1;
    osp_engine_t *e = osp__engine_from_graph(g_residual(), &o, &err);
    assert_non_null(e);
    assert_int_equal(osp_engine_threads(e), 1);
    assert_int_equal(osp_engine_precision(e),
                     osp__cpu_caps()->bf16 ? OSP_PREC_BF16 : OSP_PREC_FP32);
    assert_non_null(strstr(osp_engine_describe(e), "no plan"));
    assert_int_equal(osp_engine_prepare(e, 2, &err), 0);
    assert_non_null(strstr(osp_engine_describe(e), "threads 1 (OpenMP max threads 1)"));
    osp_engine_destroy(e);

    /* Format sniffing. */
    uint8_t tfl[16] = {0x1c, 0, 0, 0, 'T', 'F', 'L', '3'};
    assert_null(osp_engine_load_buffer(tfl, sizeof tfl, "m.tflite", NULL, &err));
    assert_int_equal(err.code, OSP_EFORMAT); /* sniffed as TFLite, malformed */
    assert_non_null(strstr(err.msg, "TFLite"));
    uint8_t junk[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_null(osp_engine_load_buffer(junk, sizeof junk, "junk", NULL, &err));
    assert_true(err.code < 0);
    assert_null(osp_engine_load("/nonexistent/model.onnx", NULL, &err));
    assert_int_equal(err.code, OSP_ENOENT);
}

int main(int argc, char **argv) {
    tu_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_grouped), cmocka_unit_test(test_depthwise),
        cmocka_unit_test(test_residual),     cmocka_unit_test(test_pools),
        cmocka_unit_test(test_head),         cmocka_unit_test(test_fire),
        cmocka_unit_test(test_misc),         cmocka_unit_test(test_nd),
        cmocka_unit_test(test_concat_copy), cmocka_unit_test(test_softmax_matmul),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_no_alloc),     cmocka_unit_test(test_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
