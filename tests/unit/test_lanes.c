/* test_lanes.c — batch-parallel lanes (src/engine/lanes.c): a batch split
 * into single-threaded sub-batches must give the same outputs as the
 * reference evaluation and as a one-thread whole-batch run, for even and
 * odd batches, alternating with unsplit batch sizes on one engine, in
 * fp32 and bf16; graphs that mix images along dim 0, graphs of heavy
 * steps and engines with tuning.batch_split off must not be split, while
 * batch_split on splits heavy graphs and uneven batches too. Threads are
 * set to 2 explicitly so the lanes run on any CI machine. */
#include <malloc.h>

#include "engine_testutil.h"

#define TOL 1e-5

/* Residual conv block + classifier head: conv, in-place SUM, global pool,
 * Flatten, Gemm, Softmax — the op mix of the real models. */
static osp_graph_t *g_net(void) {
    osp_graph_t *g = osp_graph_create();
    int x0 = tu_input(g, "x", 4, D(-1, 16, 8, 8));
    int n;
    int x = tu_conv(g, x0, 16, 32, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true, 1, NULL);
    int y = tu_conv(g, x, 32, 32, 3, 32, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 2, &n);
    g->nodes[n].n_post = 1;
    g->nodes[n].post[0] = (osp_post_op_t){OSP_POST_ACT, OSP_ACT_CLIP, 0, 6, 0};
    y = tu_conv(g, y, 32, 32, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true, 3, NULL);
    int s = tu_node(g, OSP_OP_ADD, I(y, x), 2, NULL);
    int p = tu_node(g, OSP_OP_GLOBAL_AVGPOOL, I(s), 1, NULL);
    int f = tu_node(g, OSP_OP_FLATTEN, I(p), 1, &n);
    g->nodes[n].p.axis.axis = 1;
    int w = tu_const(g, "fc.w", 2, D(10, 32), 0.3f, 9);
    int b = tu_const(g, "fc.b", 1, D(10), 0.1f, 10);
    int z = tu_node(g, OSP_OP_GEMM, I(f, w, b), 3, &n);
    g->nodes[n].p.gemm = (osp_gemm_params_t){1.0f, 1.0f, false, true};
    int sm = tu_node(g, OSP_OP_SOFTMAX, I(z), 1, &n);
    g->nodes[n].p.axis.axis = -1;
    tu_output(g, z);
    tu_output(g, sm);
    return g;
}

/* Mixes images: the conv output is reshaped to one row of B*C*H*W. */
static osp_graph_t *g_mixing(void) {
    osp_graph_t *g = osp_graph_create();
    int x0 = tu_input(g, "x", 4, D(-1, 16, 4, 4));
    int x = tu_conv(g, x0, 16, 16, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), true, 4, NULL);
    int shape = tu_const_i64(g, 1, D(2), D(1, -1));
    int r = tu_node(g, OSP_OP_RESHAPE, I(x, shape), 2, NULL);
    tu_output(g, r);
    return g;
}

/* One big conv (64->64 3x3 on 56x56: 231 MFLOP per image): heavy steps
 * keep intra-op threads. */
static osp_graph_t *g_heavy(void) {
    osp_graph_t *g = osp_graph_create();
    int x0 = tu_input(g, "x", 4, D(-1, 64, 56, 56));
    int y = tu_conv(g, x0, 64, 64, 3, 1, tu_win2(3, 1, 1, 1, 1, 1, 1), true, 6, NULL);
    tu_output(g, y);
    return g;
}

static osp_engine_t *engine_split(osp_graph_t *(*build)(void), int threads,
                                  osp_precision_t prec, osp_tune_t split) {
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.precision = prec;
    o.threads = threads;
    o.tuning.batch_split = split;
    return tu_engine(build(), &o);
}

static osp_engine_t *engine(osp_graph_t *(*build)(void), int threads,
                            osp_precision_t prec) {
    return engine_split(build, threads, prec, OSP_TUNE_AUTO);
}

/* Runs batch B through e and checks both outputs against the reference
 * (fp32: rel diff <= TOL; bf16: cosine >= 0.999) and, when base is
 * non-NULL, against base's outputs (bitwise-close fp32). Returns whether
 * the run was split into lanes. */
static bool check_batch(osp_engine_t *e, osp_engine_t *base, int64_t B,
                        osp_precision_t prec) {
    osp_tensor_t x = tu_tensor(4, D(B, 16, 8, 8), (uint32_t)(100 + B));
    osp_tensor_t refs[2];
    float **ref = tu_ref_eval(e->g, &x, refs);
    osp_tensor_t out[2], bout[2];
    osp_err_t err = {0};
    for (int rep = 0; rep < 2; rep++) {
        if (osp_engine_run(e, &x, 1, out, 2, &err) < 0)
            fail_msg("run B=%lld: %s", (long long)B, err.msg);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(out[i].rank, 2);
            assert_int_equal(out[i].dims[0], B);
            assert_int_equal(out[i].dims[1], 10);
            size_t n = osp_tensor_numel(&refs[i]);
            if (prec == OSP_PREC_FP32) {
                double r = tu_rel_diff(out[i].data, ref[i], n);
                if (!(r <= TOL))
                    fail_msg("B=%lld output %d: rel diff %g\n%s", (long long)B,
                             i, r, osp_engine_describe(e));
            } else {
                assert_true(tu_cosine(out[i].data, ref[i], n) >= 0.999);
            }
        }
    }
    bool split = strstr(osp_engine_describe(e), "split into") != NULL;
    if (base) {
        float *mine = malloc(sizeof(float) * (size_t)B * 10);
        memcpy(mine, out[0].data, sizeof(float) * (size_t)B * 10);
        if (osp_engine_run(base, &x, 1, bout, 2, &err) < 0)
            fail_msg("base run: %s", err.msg);
        assert_true(tu_rel_diff(mine, bout[0].data, (size_t)B * 10) <= 1e-6);
        free(mine);
    }
    for (int i = 0; i < 2; i++)
        free(ref[i]);
    free(ref);
    free(x.data);
    return split;
}

static void test_split_even(void **state) {
    (void)state;
    osp_engine_t *e = engine(g_net, 2, OSP_PREC_FP32);
    osp_engine_t *one = engine(g_net, 1, OSP_PREC_FP32);
    assert_true(check_batch(e, one, 4, OSP_PREC_FP32));
    const char *d = osp_engine_describe(e);
    assert_non_null(strstr(d, "split into 2 lanes (1 image at a time)"));
    assert_non_null(strstr(d, "threads 1"));
    assert_non_null(strstr(d, "(in place)"));
    /* One thread never splits. */
    assert_false(check_batch(one, NULL, 4, OSP_PREC_FP32));
    osp_engine_destroy(e);
    osp_engine_destroy(one);
}

static void test_split_mixed_sizes(void **state) {
    (void)state;
    osp_engine_t *e = engine(g_net, 2, OSP_PREC_FP32);
    osp_engine_t *one = engine(g_net, 1, OSP_PREC_FP32);
    /* 7 (imbalance 8/7 <= 1.15): split. */
    assert_true(check_batch(e, one, 7, OSP_PREC_FP32));
    assert_non_null(strstr(osp_engine_describe(e), "batch 7 split into 2"));
    /* 1 and 3 (imbalance 4/3) run whole; then back to split plans. */
    assert_false(check_batch(e, one, 1, OSP_PREC_FP32));
    assert_false(check_batch(e, one, 3, OSP_PREC_FP32));
    assert_true(check_batch(e, one, 7, OSP_PREC_FP32));
    assert_true(check_batch(e, one, 2, OSP_PREC_FP32));
    /* From 4 per lane on, two images at a time; 9 = four pairs + one. */
    assert_true(check_batch(e, one, 8, OSP_PREC_FP32));
    assert_non_null(strstr(osp_engine_describe(e), "(2 images at a time)"));
    assert_true(check_batch(e, one, 9, OSP_PREC_FP32));
    assert_non_null(strstr(osp_engine_describe(e), "batch 9 split into 2"));
    osp_engine_destroy(e);
    osp_engine_destroy(one);
}

static void test_split_prepare(void **state) {
    (void)state;
    osp_engine_t *e = engine(g_net, 2, OSP_PREC_FP32);
    osp_err_t err = {0};
    assert_int_equal(osp_engine_prepare(e, 6, &err), 0);
    assert_non_null(strstr(osp_engine_describe(e), "batch 6 split into 2 lanes"));
    assert_true(check_batch(e, NULL, 6, OSP_PREC_FP32));
    osp_engine_destroy(e);
}

static void test_split_bf16(void **state) {
    (void)state;
    osp_engine_t *e = engine(g_net, 2, OSP_PREC_BF16);
    assert_true(check_batch(e, NULL, 4, OSP_PREC_BF16));
    osp_engine_destroy(e);
}

static void test_no_split_when_mixing(void **state) {
    (void)state;
    char *desc = NULL;
    osp_tensor_t x = tu_tensor(4, D(4, 16, 4, 4), 5);
    /* tu_check uses the default threads; force two via a local engine. */
    osp_engine_t *e = engine(g_mixing, 2, OSP_PREC_FP32);
    osp_tensor_t refs[1], out;
    float **ref = tu_ref_eval(e->g, &x, refs);
    osp_err_t err = {0};
    if (osp_engine_run(e, &x, 1, &out, 1, &err) < 0)
        fail_msg("run: %s", err.msg);
    assert_int_equal(out.dims[0], 1);
    assert_true(tu_rel_diff(out.data, ref[0], osp_tensor_numel(&refs[0])) <= TOL);
    desc = strdup(osp_engine_describe(e));
    assert_null(strstr(desc, "split into"));
    free(desc);
    free(ref[0]);
    free(ref);
    free(x.data);
    osp_engine_destroy(e);
}

static void test_no_split_when_heavy(void **state) {
    (void)state;
    osp_engine_t *e = engine(g_heavy, 2, OSP_PREC_FP32);
    osp_tensor_t x = tu_tensor(4, D(2, 64, 56, 56), 8), out;
    osp_err_t err = {0};
    assert_int_equal(osp_engine_run(e, &x, 1, &out, 1, &err), 0);
    assert_int_equal(out.dims[0], 2);
    assert_null(strstr(osp_engine_describe(e), "split into"));
    assert_non_null(strstr(osp_engine_describe(e), "threads 2"));
    free(x.data);
    osp_engine_destroy(e);
}

static void test_split_off(void **state) {
    (void)state;
    osp_engine_t *e = engine_split(g_net, 2, OSP_PREC_FP32, OSP_TUNE_OFF);
    assert_false(check_batch(e, NULL, 4, OSP_PREC_FP32));
    assert_non_null(strstr(osp_engine_describe(e), "threads 2"));
    osp_engine_destroy(e);
}

/* On: the cost rules (heavy steps, uneven batches) give way, the
 * correctness rules do not. */
static void test_split_on(void **state) {
    (void)state;
    osp_engine_t *e = engine_split(g_net, 2, OSP_PREC_FP32, OSP_TUNE_ON);
    osp_engine_t *one = engine(g_net, 1, OSP_PREC_FP32);
    assert_true(check_batch(e, one, 3, OSP_PREC_FP32)); /* 4/3 uneven */
    assert_non_null(strstr(osp_engine_describe(e), "batch 3 split into 2"));
    osp_engine_destroy(e);
    osp_engine_destroy(one);

    e = engine_split(g_heavy, 2, OSP_PREC_FP32, OSP_TUNE_ON);
    osp_engine_t *whole = engine_split(g_heavy, 2, OSP_PREC_FP32, OSP_TUNE_OFF);
    osp_tensor_t x = tu_tensor(4, D(2, 64, 56, 56), 8), out, wout;
    osp_err_t err = {0};
    assert_int_equal(osp_engine_run(e, &x, 1, &out, 1, &err), 0);
    assert_non_null(strstr(osp_engine_describe(e), "batch 2 split into 2"));
    assert_int_equal(osp_engine_run(whole, &x, 1, &wout, 1, &err), 0);
    size_t n = osp_tensor_numel(&wout);
    assert_int_equal(osp_tensor_numel(&out), n);
    assert_true(tu_rel_diff(out.data, wout.data, n) <= TOL);
    free(x.data);
    osp_engine_destroy(e);
    osp_engine_destroy(whole);

    e = engine_split(g_mixing, 2, OSP_PREC_FP32, OSP_TUNE_ON);
    x = tu_tensor(4, D(4, 16, 4, 4), 5);
    assert_int_equal(osp_engine_run(e, &x, 1, &out, 1, &err), 0);
    assert_null(strstr(osp_engine_describe(e), "split into"));
    free(x.data);
    osp_engine_destroy(e);
}

/* After the first run of each batch size, split runs (alternating with a
 * whole-batch size) allocate nothing, on any thread. */
static void test_split_no_alloc(void **state) {
    (void)state;
    osp_engine_t *e = engine(g_net, 2, OSP_PREC_FP32);
    osp_tensor_t x1 = tu_tensor(4, D(1, 16, 8, 8), 1);
    /* 9: pairs and a last single image, both plan kinds. */
    osp_tensor_t x4 = tu_tensor(4, D(9, 16, 8, 8), 2);
    osp_tensor_t out[2];
    osp_err_t err = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(osp_engine_run(e, &x1, 1, out, 2, &err), 0);
        assert_int_equal(osp_engine_run(e, &x4, 1, out, 2, &err), 0);
    }
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < 20; i++)
        assert_int_equal(osp_engine_run(e, i % 2 ? &x1 : &x4, 1, out, 2, &err), 0);
    struct mallinfo2 after = mallinfo2();
    assert_int_equal(after.uordblks, before.uordblks);
    assert_int_equal(after.hblkhd, before.hblkhd);
    free(x1.data);
    free(x4.data);
    osp_engine_destroy(e);
}

int main(int argc, char **argv) {
    tu_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_even),
        cmocka_unit_test(test_split_mixed_sizes),
        cmocka_unit_test(test_split_prepare),
        cmocka_unit_test(test_split_bf16),
        cmocka_unit_test(test_no_split_when_mixing),
        cmocka_unit_test(test_no_split_when_heavy),
        cmocka_unit_test(test_split_off),
        cmocka_unit_test(test_split_on),
        cmocka_unit_test(test_split_no_alloc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
