/* test_shape.c — unit tests of shape inference (shape.c), window resolution
 * (osp_window_resolve: auto_pad, ceil_mode, dilations) and constant folding
 * (fold.c), including PyTorch's Shape→Gather→Unsqueeze→Concat→Reshape chain
 * and clear errors on inconsistent models. */
#include "ref_testutil.h"

typedef struct win_case_s {
    osp_auto_pad_t ap;
    int64_t in, k, s, d, pb, pe;
    bool ceil;
    int64_t out, want_pb, want_pe;
} win_case_t;

static void test_window_resolve(void **state) {
    (void)state;
    static const win_case_t cases[] = {
        {OSP_PAD_SAME_UPPER, 5, 3, 2, 1, 0, 0, false, 3, 1, 1},
        {OSP_PAD_SAME_UPPER, 4, 3, 2, 1, 0, 0, false, 2, 0, 1},
        {OSP_PAD_SAME_LOWER, 4, 3, 2, 1, 0, 0, false, 2, 1, 0},
        {OSP_PAD_SAME_UPPER, 224, 7, 2, 1, 0, 0, false, 112, 2, 3},
        {OSP_PAD_SAME_LOWER, 224, 7, 2, 1, 0, 0, false, 112, 3, 2},
        {OSP_PAD_SAME_UPPER, 7, 3, 1, 2, 0, 0, false, 7, 2, 2},
        {OSP_PAD_VALID, 7, 3, 2, 1, 5, 5, false, 3, 0, 0},
        {OSP_PAD_EXPLICIT, 7, 3, 1, 2, 0, 0, false, 3, 0, 0},
        {OSP_PAD_EXPLICIT, 4, 3, 2, 1, 0, 0, true, 2, 0, 0},
        {OSP_PAD_EXPLICIT, 5, 2, 2, 1, 0, 0, false, 2, 0, 0},
        {OSP_PAD_EXPLICIT, 5, 2, 2, 1, 0, 0, true, 3, 0, 0},
        /* ceil would start the last window in the end padding: dropped */
        {OSP_PAD_EXPLICIT, 5, 1, 2, 1, 0, 1, true, 3, 0, 1},
        {OSP_PAD_EXPLICIT, 112, 3, 2, 1, 1, 1, false, 56, 1, 1},
        {OSP_PAD_EXPLICIT, 6, 3, 1, 1, 2, 0, false, 6, 2, 0},
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(cases); i++) {
        const win_case_t *c = &cases[i];
        osp_window_t w;
        memset(&w, 0, sizeof w);
        w.n_spatial = 1;
        w.auto_pad = c->ap;
        w.stride[0] = c->s;
        w.dilation[0] = c->d;
        w.pad_begin[0] = c->pb;
        w.pad_end[0] = c->pe;
        int64_t out = 0;
        osp_err_t err = {0};
        int rc = osp_window_resolve(&w, &c->in, &c->k, c->ceil, &out, &err);
        if (rc != 0 || out != c->out || w.pad_begin[0] != c->want_pb ||
            w.pad_end[0] != c->want_pe || w.auto_pad != OSP_PAD_EXPLICIT)
            fail_msg("case %zu: rc %d (%s) out %lld pads %lld/%lld", i, rc,
                     err.msg, (long long)out, (long long)w.pad_begin[0],
                     (long long)w.pad_end[0]);
    }
    /* window larger than the padded input */
    osp_window_t w;
    memset(&w, 0, sizeof w);
    w.n_spatial = 1;
    int64_t in = 2, k = 5, out;
    osp_err_t err = {0};
    assert_int_equal(osp_window_resolve(&w, &in, &k, false, &out, &err),
                     OSP_ESHAPE);
    assert_non_null(strstr(err.msg, "does not fit"));
}

static int add_input(osp_graph_t *g, const char *name, int rank,
                     const int64_t *dims) {
    int v = osp_graph_add_value(g, name, OSP_DT_F32, rank, dims);
    g->values[v].is_input = true;
    g->inputs = realloc(g->inputs, sizeof(int) * (size_t)(g->n_inputs + 1));
    g->inputs[g->n_inputs++] = v;
    return v;
}

static int add_const_f32(osp_graph_t *g, int rank, const int64_t *dims) {
    int v = osp_graph_add_value(g, NULL, OSP_DT_F32, rank, dims);
    size_t n = osp_value_numel(&g->values[v]);
    float *d = calloc(n ? n : 1, sizeof(float));
    osp_graph_set_const(g, v, d, n * sizeof(float));
    return v;
}

static int add_const_i64(osp_graph_t *g, int rank, const int64_t *dims,
                         const int64_t *data) {
    int v = osp_graph_add_value(g, NULL, OSP_DT_S64, rank, dims);
    size_t n = osp_value_numel(&g->values[v]);
    int64_t *d = malloc(sizeof(int64_t) * (n ? n : 1));
    memcpy(d, data, sizeof(int64_t) * n);
    osp_graph_set_const(g, v, d, n * sizeof(int64_t));
    return v;
}

static int tmp(osp_graph_t *g) {
    return osp_graph_add_value(g, NULL, OSP_DT_UNDEF, -1, NULL);
}

/* conv(SAME_UPPER, s2) → maxpool(ceil) → globalavg → flatten → gemm(transB)
 * → softmax */
static void test_infer_small_net(void **state) {
    (void)state;
    osp_graph_t *g = osp_graph_create();
    int x = add_input(g, "x", 4, D(2, 3, 9, 9));
    int w = add_const_f32(g, 4, D(8, 3, 3, 3));
    int b = add_const_f32(g, 1, D(8));
    int c1 = tmp(g), p1 = tmp(g), gp = tmp(g), fl = tmp(g), fc = tmp(g),
        sm = tmp(g);
    int fw = add_const_f32(g, 2, D(10, 8));
    int fb = add_const_f32(g, 1, D(10));
    int n = osp_graph_add_node(g, OSP_OP_CONV, "conv", (int[]){x, w, b}, 3,
                               &c1, 1);
    g->nodes[n].p.conv.win.auto_pad = OSP_PAD_SAME_UPPER;
    g->nodes[n].p.conv.win.stride[0] = g->nodes[n].p.conv.win.stride[1] = 2;
    n = osp_graph_add_node(g, OSP_OP_MAXPOOL, "pool", &c1, 1, &p1, 1);
    g->nodes[n].p.pool.win.kernel[0] = g->nodes[n].p.pool.win.kernel[1] = 2;
    g->nodes[n].p.pool.win.stride[0] = g->nodes[n].p.pool.win.stride[1] = 2;
    g->nodes[n].p.pool.ceil_mode = true;
    osp_graph_add_node(g, OSP_OP_GLOBAL_AVGPOOL, "gap", &p1, 1, &gp, 1);
    n = osp_graph_add_node(g, OSP_OP_FLATTEN, "flat", &gp, 1, &fl, 1);
    g->nodes[n].p.axis.axis = 1;
    n = osp_graph_add_node(g, OSP_OP_GEMM, "fc", (int[]){fl, fw, fb}, 3, &fc,
                           1);
    g->nodes[n].p.gemm = (osp_gemm_params_t){1.f, 1.f, false, true};
    n = osp_graph_add_node(g, OSP_OP_SOFTMAX, "sm", &fc, 1, &sm, 1);
    g->nodes[n].p.axis.axis = -1;
    osp_err_t err = {0};
    int rc = osp_infer_shapes(g, &err);
    if (rc)
        fail_msg("%s", err.msg);
    check_shape(&g->values[c1], 4, D(2, 8, 5, 5));
    check_shape(&g->values[p1], 4, D(2, 8, 3, 3));
    check_shape(&g->values[gp], 4, D(2, 8, 1, 1));
    check_shape(&g->values[fl], 2, D(2, 8));
    check_shape(&g->values[fc], 2, D(2, 10));
    check_shape(&g->values[sm], 2, D(2, 10));
    assert_int_equal(g->values[sm].dtype, OSP_DT_F32);
    /* the node's own params are not rewritten by inference */
    assert_int_equal(g->nodes[0].p.conv.win.auto_pad, OSP_PAD_SAME_UPPER);
    osp_graph_destroy(g);
}

/* x → Shape → Gather(0) → Unsqueeze([0]) → Concat(·, [-1]) → Reshape(x, ·) */
static osp_graph_t *pytorch_chain(const int64_t *xdims, int *y_out) {
    osp_graph_t *g = osp_graph_create();
    int x = add_input(g, "x", 4, xdims);
    int sh = tmp(g), ga = tmp(g), un = tmp(g), cc = tmp(g), y = tmp(g);
    int i0 = add_const_i64(g, 0, NULL, (int64_t[]){0});
    int ax = add_const_i64(g, 1, D(1), (int64_t[]){0});
    int m1 = add_const_i64(g, 1, D(1), (int64_t[]){-1});
    osp_graph_add_node(g, OSP_OP_SHAPE, "Shape_0", &x, 1, &sh, 1);
    osp_graph_add_node(g, OSP_OP_GATHER, "Gather_1", (int[]){sh, i0}, 2, &ga,
                       1);
    osp_graph_add_node(g, OSP_OP_UNSQUEEZE, "Unsqueeze_2", (int[]){ga, ax}, 2,
                       &un, 1);
    osp_graph_add_node(g, OSP_OP_CONCAT, "Concat_3", (int[]){un, m1}, 2, &cc,
                       1);
    osp_graph_add_node(g, OSP_OP_RESHAPE, "Reshape_4", (int[]){x, cc}, 2, &y,
                       1);
    g->values[y].is_output = true;
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = y;
    g->n_outputs = 1;
    *y_out = y;
    return g;
}

static void test_fold_pytorch_chain(void **state) {
    (void)state;
    int y;
    osp_graph_t *g = pytorch_chain(D(2, 3, 4, 4), &y);
    osp_err_t err = {0};
    /* inference evaluates the shape arithmetic on the side, leaving the
     * graph as it was... */
    int rc = osp_infer_shapes(g, &err);
    if (rc)
        fail_msg("%s", err.msg);
    check_shape(&g->values[y], 2, D(2, 48));
    for (int i = 0; i < 5; i++)
        assert_int_not_equal(g->nodes[i].op, OSP_OP_NONE);
    for (int i = 0; i < 4; i++)
        assert_null(g->values[g->nodes[i].out[0]].data);
    /* ...and folding makes the target a real constant */
    rc = osp_fold_constants(g, 0, &err);
    if (rc)
        fail_msg("%s", err.msg);
    for (int i = 0; i < 4; i++)
        assert_int_equal(g->nodes[i].op, OSP_OP_NONE);
    assert_int_equal(g->nodes[4].op, OSP_OP_RESHAPE);
    const osp_value_t *t = &g->values[g->nodes[4].in[1]];
    assert_non_null(t->data);
    check_shape(t, 1, D(2));
    assert_int_equal(((int64_t *)t->data)[0], 2);
    assert_int_equal(((int64_t *)t->data)[1], -1);
    check_shape(&g->values[y], 2, D(2, 48));
    assert_int_equal(osp_infer_shapes(g, &err), 0);
    assert_int_equal(osp_graph_compact(g), 0);
    assert_int_equal(g->n_nodes, 1);
    osp_graph_destroy(g);

    /* A Reshape target that depends on data is still refused clearly. */
    g = osp_graph_create();
    int x = add_input(g, "x", 2, D(2, 3));
    int s = add_input(g, "s", 1, D(2));
    g->values[s].dtype = OSP_DT_S64;
    y = tmp(g);
    osp_graph_add_node(g, OSP_OP_RESHAPE, "Reshape_4", (int[]){x, s}, 2, &y,
                       1);
    assert_int_equal(osp_infer_shapes(g, &err), OSP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "Reshape_4"));
    assert_non_null(strstr(err.msg, "not a constant"));
    osp_graph_destroy(g);

    /* With a dynamic batch (load time) nothing folds and nothing fails. */
    g = pytorch_chain(D(-1, 3, 4, 4), &y);
    assert_int_equal(osp_fold_constants(g, 0, &err), 0);
    assert_int_equal(g->nodes[0].op, OSP_OP_SHAPE);
    assert_int_equal(g->nodes[4].op, OSP_OP_RESHAPE);
    check_shape(&g->values[g->nodes[0].out[0]], 1, D(4));
    osp_graph_destroy(g);
}

/* Sizes computed in float: Shape → Gather(2) → Cast(f32) → Mul(0.5) →
 * Cast(s64) → Unsqueeze → Concat([1, 3, ·, -1]) → Reshape. */
static void test_infer_float_shape_arith(void **state) {
    (void)state;
    osp_graph_t *g = osp_graph_create();
    int x = add_input(g, "x", 4, D(1, 3, 8, 8));
    int sh = tmp(g), ga = tmp(g), cf = tmp(g), mu = tmp(g), ci = tmp(g),
        un = tmp(g), cc = tmp(g), y = tmp(g);
    int i2 = add_const_i64(g, 0, NULL, (int64_t[]){2});
    int half = osp_graph_add_value(g, NULL, OSP_DT_F32, 0, NULL);
    float *hv = malloc(sizeof(float));
    *hv = 0.5f;
    osp_graph_set_const(g, half, hv, sizeof(float));
    int ax = add_const_i64(g, 1, D(1), (int64_t[]){0});
    int head = add_const_i64(g, 1, D(2), (int64_t[]){1, 3});
    int m1 = add_const_i64(g, 1, D(1), (int64_t[]){-1});
    osp_graph_add_node(g, OSP_OP_SHAPE, "s", &x, 1, &sh, 1);
    osp_graph_add_node(g, OSP_OP_GATHER, "g", (int[]){sh, i2}, 2, &ga, 1);
    int n = osp_graph_add_node(g, OSP_OP_CAST, "cf", &ga, 1, &cf, 1);
    g->nodes[n].p.cast.to = OSP_DT_F32;
    osp_graph_add_node(g, OSP_OP_MUL, "mul", (int[]){cf, half}, 2, &mu, 1);
    n = osp_graph_add_node(g, OSP_OP_CAST, "ci", &mu, 1, &ci, 1);
    g->nodes[n].p.cast.to = OSP_DT_S64;
    osp_graph_add_node(g, OSP_OP_UNSQUEEZE, "u", (int[]){ci, ax}, 2, &un, 1);
    osp_graph_add_node(g, OSP_OP_CONCAT, "c", (int[]){head, un, m1}, 3, &cc,
                       1);
    osp_graph_add_node(g, OSP_OP_RESHAPE, "r", (int[]){x, cc}, 2, &y, 1);
    osp_err_t err = {0};
    if (osp_infer_shapes(g, &err))
        fail_msg("%s", err.msg);
    check_shape(&g->values[y], 4, D(1, 3, 4, 16));
    assert_null(g->values[cc].data);
    osp_graph_destroy(g);
}

static void test_fold_max_bytes(void **state) {
    (void)state;
    one_t o = one_new();
    one_in_f32(&o, 2, D(4, 4), 1);
    one_node(&o, OSP_OP_RELU);
    osp_err_t err = {0};
    assert_int_equal(osp_fold_constants(o.g, 32, &err), 0);
    assert_int_equal(o.g->nodes[0].op, OSP_OP_RELU); /* 64 bytes > 32 */
    assert_int_equal(osp_fold_constants(o.g, 64, &err), 0);
    assert_int_equal(o.g->nodes[0].op, OSP_OP_NONE);
    osp_graph_destroy(o.g);
}

static void test_shape_op_slices(void **state) {
    (void)state;
    static const struct {
        int64_t start, end;
        bool has_end;
        int n;
        int64_t want[4];
    } cases[] = {
        {0, 0, false, 4, {2, 3, 5, 7}},
        {1, INT64_MAX, true, 3, {3, 5, 7}},
        {-1, INT64_MAX, true, 1, {7}},
        {1, -1, true, 2, {3, 5}},
        {-10, 10, true, 4, {2, 3, 5, 7}},
        {3, 1, true, 0, {0}},
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(cases); i++) {
        one_t o = one_new();
        one_in_f32(&o, 4, D(2, 3, 5, 7), 0);
        osp_node_t *n = one_node(&o, OSP_OP_SHAPE);
        /* importer convention: axes[0] = start, axes[1] = end */
        n->p.axes.has_axes = cases[i].has_end;
        n->p.axes.n_axes = 2;
        n->p.axes.axes[0] = cases[i].start;
        n->p.axes.axes[1] = cases[i].end;
        one_check_i64(&o, 1, (int64_t[]){cases[i].n}, cases[i].want);
    }
}

static void test_infer_shapes_misc(void **state) {
    (void)state;
    /* Unsqueeze with negative axes (attribute form) */
    one_t o = one_new();
    one_in_f32(&o, 2, D(3, 4), 0);
    osp_node_t *n = one_node(&o, OSP_OP_UNSQUEEZE);
    n->p.axes = (osp_axes_params_t){.n_axes = 2, .axes = {-1, 0},
                                    .has_axes = true};
    check_shape(one_run(&o), 4, D(1, 3, 4, 1));
    osp_graph_destroy(o.g);
    /* Squeeze without axes drops every 1 */
    o = one_new();
    one_in_f32(&o, 4, D(1, 3, 1, 4), 0);
    one_node(&o, OSP_OP_SQUEEZE);
    check_shape(one_run(&o), 2, D(3, 4));
    osp_graph_destroy(o.g);
    /* ReduceMean keepdims=0 with axes from input 1 (opset 18 form) */
    o = one_new();
    one_in_f32(&o, 3, D(2, 3, 4), 0);
    one_in_i64(&o, 1, D(1), (int64_t[]){-2});
    n = one_node(&o, OSP_OP_REDUCE_MEAN);
    n->p.axes.keepdims = false;
    check_shape(one_run(&o), 2, D(2, 4));
    osp_graph_destroy(o.g);
    /* Reshape with 0 and -1, and allowzero */
    o = one_new();
    one_in_f32(&o, 3, D(2, 3, 4), 0);
    one_in_i64(&o, 1, D(3), (int64_t[]){0, -1, 2});
    one_node(&o, OSP_OP_RESHAPE);
    check_shape(one_run(&o), 3, D(2, 6, 2));
    osp_graph_destroy(o.g);
    o = one_new();
    one_in_f32(&o, 2, D(0, 3), 0);
    one_in_i64(&o, 1, D(2), (int64_t[]){3, 0});
    n = one_node(&o, OSP_OP_RESHAPE);
    n->p.axes.allowzero = true;
    check_shape(one_run(&o), 2, D(3, 0));
    osp_graph_destroy(o.g);
    /* Gather with 2-D indices on axis 1 */
    o = one_new();
    one_in_f32(&o, 3, D(2, 5, 3), 0);
    one_in_i64(&o, 2, D(2, 2), (int64_t[]){0, -1, 2, 3});
    n = one_node(&o, OSP_OP_GATHER);
    n->p.axis.axis = 1;
    check_shape(one_run(&o), 4, D(2, 2, 2, 3));
    osp_graph_destroy(o.g);
    /* batched MatMul with broadcast batch and 1-D operand */
    o = one_new();
    one_in_f32(&o, 4, D(2, 1, 3, 4), 0);
    one_in_f32(&o, 3, D(5, 4, 6), 1);
    one_node(&o, OSP_OP_MATMUL);
    check_shape(one_run(&o), 4, D(2, 5, 3, 6));
    osp_graph_destroy(o.g);
    o = one_new();
    one_in_f32(&o, 1, D(4), 0);
    one_in_f32(&o, 3, D(5, 4, 6), 1);
    one_node(&o, OSP_OP_MATMUL);
    check_shape(one_run(&o), 2, D(5, 6));
    osp_graph_destroy(o.g);
    /* Pad with negative pads, Transpose default perm, Cast dtype */
    o = one_new();
    one_in_f32(&o, 2, D(3, 4), 0);
    one_in_i64(&o, 1, D(4), (int64_t[]){1, -1, 2, 0});
    one_node(&o, OSP_OP_PAD);
    check_shape(one_run(&o), 2, D(6, 3));
    osp_graph_destroy(o.g);
    o = one_new();
    one_in_f32(&o, 3, D(2, 3, 4), 0);
    one_node(&o, OSP_OP_TRANSPOSE);
    check_shape(one_run(&o), 3, D(4, 3, 2));
    osp_graph_destroy(o.g);
    o = one_new();
    one_in_f32(&o, 1, D(3), 0);
    n = one_node(&o, OSP_OP_CAST);
    n->p.cast.to = OSP_DT_S32;
    assert_int_equal(one_run(&o)->dtype, OSP_DT_S32);
    osp_graph_destroy(o.g);
}

static void test_infer_errors(void **state) {
    (void)state;
    one_t o = one_new();
    one_in_f32(&o, 3, D(2, 3, 4), 0);
    one_in_i64(&o, 1, D(2), (int64_t[]){5, -1});
    one_node(&o, OSP_OP_RESHAPE);
    one_fail(&o, OSP_ESHAPE, "node 'n0' (RESHAPE): cannot reshape 24");

    o = one_new();
    one_in_f32(&o, 4, D(1, 3, 8, 8), 0);
    one_in_f32(&o, 4, D(4, 2, 3, 3), 1);
    one_node(&o, OSP_OP_CONV);
    one_fail(&o, OSP_ESHAPE, "node 'n0' (CONV): input has 3 channels");

    o = one_new();
    one_in_f32(&o, 2, D(2, 3), 0);
    one_in_f32(&o, 2, D(4, 3), 0);
    one_node(&o, OSP_OP_ADD);
    one_fail(&o, OSP_ESHAPE, "shapes [2,3] and [4,3] do not broadcast");

    o = one_new();
    one_in_f32(&o, 2, D(2, 3), 0);
    one_in_f32(&o, 2, D(4, 3), 0);
    one_node(&o, OSP_OP_GEMM);
    one_fail(&o, OSP_ESHAPE, "inner dimensions differ");

    o = one_new();
    one_in_f32(&o, 2, D(2, 3), 0);
    one_in_i64(&o, 1, D(1), (int64_t[]){2});
    one_node(&o, OSP_OP_GATHER);
    one_fail(&o, OSP_ESHAPE, "index 2 out of range");

    o = one_new();
    one_in_f32(&o, 2, D(2, 3), 0);
    osp_node_t *n = one_node(&o, OSP_OP_SQUEEZE);
    n->p.axes = (osp_axes_params_t){.n_axes = 1, .axes = {1}, .has_axes = true};
    one_fail(&o, OSP_ESHAPE, "cannot squeeze axis 1");

    o = one_new();
    one_in_f32(&o, 2, D(2, 3), 0);
    one_in_f32(&o, 3, D(2, 3, 1), 0);
    n = one_node(&o, OSP_OP_CONCAT);
    one_fail(&o, OSP_ESHAPE, "input 1 has rank 3");

    /* hostile sizes are a limit error, not an overflow */
    o = one_new();
    one_in_f32(&o, 1, D(4), 0);
    one_in_i64(&o, 1, D(3), (int64_t[]){1ll << 30, 1ll << 30, 1ll << 30});
    one_node(&o, OSP_OP_RESHAPE);
    one_fail(&o, OSP_ELIMIT, "target shape too large");
    o = one_new();
    one_in_f32(&o, 1, D(4), 0);
    one_in_i64(&o, 1, D(2), (int64_t[]){0, 1ll << 39});
    one_node(&o, OSP_OP_PAD);
    one_fail(&o, OSP_ELIMIT, "output 0 would exceed");
    o = one_new();
    one_in_f32(&o, 1, D(4), 0);
    one_in_i64(&o, 1, D(2), (int64_t[]){0, INT64_MAX});
    one_node(&o, OSP_OP_PAD);
    one_fail(&o, OSP_ELIMIT, "too large");

    o = one_new();
    one_in_f32(&o, 4, D(1, 1, 2, 2), 0);
    n = one_node(&o, OSP_OP_MAXPOOL);
    n->p.pool.win.kernel[0] = n->p.pool.win.kernel[1] = 3;
    one_fail(&o, OSP_ESHAPE, "node 'n0' (MAXPOOL): window");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_resolve),
        cmocka_unit_test(test_infer_small_net),
        cmocka_unit_test(test_fold_pytorch_chain),
        cmocka_unit_test(test_infer_float_shape_arith),
        cmocka_unit_test(test_fold_max_bytes),
        cmocka_unit_test(test_shape_op_slices),
        cmocka_unit_test(test_infer_shapes_misc),
        cmocka_unit_test(test_infer_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
