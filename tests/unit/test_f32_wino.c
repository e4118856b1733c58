/* test_f32_wino.c — osprey's fp32 Winograd convolution F(4x4, 3x3)
 * (src/engine/f32/f32_wino.c) against the reference convolution
 * (src/engine/ops/ref_conv.c, with its post-ops): odd spatial sizes (tiles
 * cut by the edges), padding 0, 1, 2 and asymmetric, channel counts that
 * are not multiples of 16 (the zero-padded blocked layout) or of the 64
 * outputs of a U panel, batches > 1, several blocks over 2 threads or one
 * block they share, input channels in several shares of the kernel, bias,
 * ReLU, leaky ReLU, clip, sigmoid (the scalar path), and the residual sum
 * before and after the activation, read from a copy or in place; and a
 * conv of fewer than 16 channels, which keeps oneDNN's direct conv.
 *
 * The bound, per output element: |winograd − reference| ≤ 1e-5 · S, where
 * S = |bias| + |residual| + Σ |w|·|x| over the output's receptive field
 * (computed here in double). Why 1e-5: the transforms scale what each of
 * the 36 products rounds — rows of Bᵀ sum to up to 10 in magnitude (so
 * |V| ≤ 100·max|x|), rows of Aᵀ to up to 19 — so F(4x4, 3x3) keeps fewer
 * digits than a direct sum; over these cases the measured worst ratio is
 * printed (~1e-6, see the log), the reference's own rounding is below it,
 * and the bound leaves room for other inputs. A wrong tap, a lost bias, an
 * edge tile read or written wrongly or post-ops in the wrong order are
 * errors of order 0.1·S and fail it. Each case also checks that the plan
 * ran the Winograd step (forced with tuning.winograd = ON), and where the
 * CPU (under the ISA ceiling) has no AVX-512 that it did not and the
 * results still match. */
#include "engine_testutil.h"

#define WINO_TOL 1e-5

typedef enum post_e {
    P_NONE,
    P_RELU,
    P_SUM_RELU,   /* relu(conv + r): ResNet's residual */
    P_RELU_SUM,   /* relu(conv) + r */
    P_LEAKY,
    P_CLIP,
    P_SIGMOID_SUM, /* sigmoid (scalar path), then + r */
} post_t;

typedef struct wcase_s {
    const char *name;
    int64_t n, c, k, h, w;
    int64_t pt, pl, pb, pr;
    bool bias;
    post_t post;
    bool sum_inplace; /* residual from a blocked 1x1 conv used only here */
    osp_conv_layout_t layout;
    bool direct; /* not Winograd's to take: the plan must not have it */
} wcase_t;

static bool has_sum(post_t p) {
    return p == P_SUM_RELU || p == P_RELU_SUM || p == P_SIGMOID_SUM;
}

/* x → conv 3x3 (stride 1) with the case's post-ops; the residual is a
 * second input, or a 1x1 conv of x (blocked, dies at the sum: the conv
 * writes over it in place). */
static osp_graph_t *build(const wcase_t *q, int *conv_node) {
    osp_graph_t *g = osp_graph_create();
    assert_non_null(g);
    int x = tu_input(g, "x", 4, D(-1, q->c, q->h, q->w));
    int64_t oh = q->h + q->pt + q->pb - 2, ow = q->w + q->pl + q->pr - 2;
    int r = -1;
    if (has_sum(q->post)) {
        if (q->sum_inplace) {
            assert_true(q->pt == 1 && q->pb == 1 && q->pl == 1 && q->pr == 1);
            r = tu_conv(g, x, q->c, q->k, 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0),
                        true, 77, NULL);
        } else {
            r = tu_input(g, "r", 4, D(-1, q->k, oh, ow));
        }
    }
    /* inputs x, w, bias (or -1 when a summand follows), the summand last */
    int in[4] = {x, tu_const(g, "w", 4, D(q->k, q->c, 3, 3),
                             1.0f / sqrtf((float)(q->c * 9)), 11),
                 -1, -1};
    int n_in = 2;
    if (q->bias)
        in[n_in++] = tu_const(g, "b", 1, D(q->k), 0.1f, 12);
    if (r >= 0) {
        n_in = 3;
        in[n_in++] = r;
    }
    int ni;
    int y = tu_node(g, OSP_OP_CONV, in, n_in, &ni);
    osp_node_t *n = &g->nodes[ni];
    n->p.conv.win = tu_win2(0, 1, 1, q->pt, q->pl, q->pb, q->pr);
    n->p.conv.group = 1;
    const osp_post_op_t relu = {OSP_POST_ACT, OSP_ACT_RELU, 0.f, 0.f, 0};
    const osp_post_op_t sum = {OSP_POST_SUM, OSP_ACT_NONE, 0.f, 0.f, r};
    switch (q->post) {
    case P_NONE: break;
    case P_RELU: n->post[n->n_post++] = relu; break;
    case P_SUM_RELU:
        n->post[n->n_post++] = sum;
        n->post[n->n_post++] = relu;
        break;
    case P_RELU_SUM:
        n->post[n->n_post++] = relu;
        n->post[n->n_post++] = sum;
        break;
    case P_LEAKY:
        n->post[n->n_post++] =
            (osp_post_op_t){OSP_POST_ACT, OSP_ACT_LEAKY_RELU, 0.1f, 0.f, 0};
        break;
    case P_CLIP: /* a lower bound above 0: padded channels must stay 0 */
        n->post[n->n_post++] =
            (osp_post_op_t){OSP_POST_ACT, OSP_ACT_CLIP, 0.05f, 0.3f, 0};
        break;
    case P_SIGMOID_SUM:
        n->post[n->n_post++] =
            (osp_post_op_t){OSP_POST_ACT, OSP_ACT_SIGMOID, 0.f, 0.f, 0};
        n->post[n->n_post++] = sum;
        break;
    }
    tu_output(g, y);
    *conv_node = ni;
    return g;
}

/* S per output element (see the file comment), in double. */
static double *scales(const osp_graph_t *g, int ni, const wcase_t *q,
                      const float *x, const float *res) {
    const osp_node_t *n = &g->nodes[ni];
    const float *w = g->values[n->in[1]].data;
    const float *b = q->bias ? g->values[n->in[2]].data : NULL;
    int64_t oh = q->h + q->pt + q->pb - 2, ow = q->w + q->pl + q->pr - 2;
    size_t total = (size_t)(q->n * q->k * oh * ow);
    double *s = calloc(total, sizeof *s);
    assert_non_null(s);
    for (int64_t im = 0; im < q->n; im++)
        for (int64_t o = 0; o < q->k; o++)
            for (int64_t y = 0; y < oh; y++)
                for (int64_t xo = 0; xo < ow; xo++) {
                    double acc = b ? fabs(b[o]) : 0;
                    for (int64_t ci = 0; ci < q->c; ci++)
                        for (int kh = 0; kh < 3; kh++)
                            for (int kw = 0; kw < 3; kw++) {
                                int64_t iy = y + kh - q->pt, ix = xo + kw - q->pl;
                                if (iy < 0 || iy >= q->h || ix < 0 || ix >= q->w)
                                    continue;
                                acc += fabs(w[((o * q->c + ci) * 3 + kh) * 3 + kw]) *
                                       fabs(x[((im * q->c + ci) * q->h + iy) * q->w + ix]);
                            }
                    size_t i = (size_t)(((im * q->k + o) * oh + y) * ow + xo);
                    s[i] = acc + (res ? fabs(res[i]) : 0);
                }
    return s;
}

static double g_worst; /* largest |diff| / S over all cases */

static void check(const wcase_t *q) {
    int ni;
    osp_graph_t *g = build(q, &ni);
    int64_t oh = q->h + q->pt + q->pb - 2, ow = q->w + q->pl + q->pr - 2;
    osp_tensor_t in[2];
    in[0] = tu_tensor(4, D(q->n, q->c, q->h, q->w), 1234);
    int n_in = 1;
    if (has_sum(q->post) && !q->sum_inplace)
        in[n_in++] = tu_tensor(4, D(q->n, q->k, oh, ow), 4321);
    osp_tensor_t refs[1];
    float **ref = tu_ref_eval(g, in, refs);

    /* the residual as the conv's post-op reads it, for S */
    float *res = NULL;
    if (has_sum(q->post))
        res = q->sum_inplace ? NULL : in[1].data;
    double *s = scales(g, ni, q, in[0].data, res);
    size_t total = osp_tensor_numel(&refs[0]);
    if (q->sum_inplace) { /* the 1x1 conv's output, from the reference */
        osp_graph_t *g1 = osp_graph_clone(g);
        const osp_node_t *n = &g1->nodes[ni];
        int r = n->in[n->n_in - 1];
        g1->values[g1->outputs[0]].is_output = false;
        g1->outputs[0] = r;
        g1->values[r].is_output = true;
        g1->nodes[ni].op = OSP_OP_NONE;
        osp_tensor_t rr[1];
        float **rv = tu_ref_eval(g1, in, rr);
        for (size_t i = 0; i < total; i++)
            s[i] += fabs(rv[0][i]);
        free(rv[0]);
        free(rv);
        osp_graph_destroy(g1);
    }

    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 2;
    o.precision = OSP_PREC_FP32;
    o.tuning.winograd = OSP_TUNE_ON;
    /* Below AVX-512 (the _avx2 variant) there is no Winograd to test, and
     * oneDNN has no fast fp32 conv on the channel-blocked layout: it runs
     * its reference kernel, seconds per case. The engine's own default
     * there is oneDNN's layout (docs/engine.md), so the direct results are
     * checked on it. */
    o.tuning.conv_layout = osp__f32_wino_ok() ? q->layout : OSP_CONV_LAYOUT_ANY;
    /* two threads on the whole batch (not one-image lanes): the step's
     * split between threads is what the multi-tile cases test */
    o.tuning.batch_split = OSP_TUNE_OFF;
    osp_engine_t *e = tu_engine(g, &o);
    osp_tensor_t out;
    osp_err_t err = {0};
    /* twice: the second run reuses the plan (and its scratch) */
    for (int rep = 0; rep < 2; rep++) {
        if (osp_engine_run(e, in, n_in, &out, 1, &err) < 0)
            fail_msg("%s: %s", q->name, err.msg);
        assert_int_equal(osp_tensor_numel(&out), total);
        const float *y = out.data;
        double worst = 0;
        size_t at = 0;
        for (size_t i = 0; i < total; i++) {
            double d = fabs((double)y[i] - (double)ref[0][i]);
            if (!(d <= WINO_TOL * s[i]))
                fail_msg("%s: element %zu: winograd %.9g, reference %.9g, "
                         "|diff| %.3g > %.0e * S (S = %.4g)\n%s",
                         q->name, i, y[i], ref[0][i], d, WINO_TOL, s[i],
                         osp_engine_describe(e));
            if (s[i] > 0 && d / s[i] > worst) {
                worst = d / s[i];
                at = i;
            }
        }
        if (rep == 0)
            print_message("%s: max |diff|/S = %.3g (element %zu), rel diff %.3g\n",
                          q->name, worst, at, tu_rel_diff(y, ref[0], total));
        g_worst = worst > g_worst ? worst : g_worst;
    }
    const char *desc = osp_engine_describe(e);
    bool ran = strstr(desc, "wino_4x3") != NULL;
    if (ran) { /* how the step split the tiles, for the log */
        const char *l = strstr(desc, "wino_4x3");
        const char *eol = strchr(l, '\n');
        print_message("  %.*s\n", eol ? (int)(eol - l) : (int)strlen(l), l);
    }
    if (osp__f32_wino_ok() && !q->direct && !ran)
        fail_msg("%s: the plan has no Winograd step\n%s", q->name, desc);
    if (!osp__f32_wino_ok() || q->direct)
        assert_false(ran); /* below AVX-512: oneDNN's direct conv */
    if (q->sum_inplace && ran)
        assert_non_null(strstr(desc, "(in place)"));
    osp_engine_destroy(e);
    free(s);
    free(ref[0]);
    free(ref);
    for (int i = 0; i < n_in; i++)
        free(in[i].data);
}

#define B OSP_CONV_LAYOUT_BLOCKED
#define A OSP_CONV_LAYOUT_ANY

static void test_edges_and_padding(void **state) {
    (void)state;
    static const wcase_t cases[] = {
        /* 13x13: 4 tiles a row, the last cut to 1 column and row */
        {"13x13 pad 1 bias relu", 2, 16, 32, 13, 13, 1, 1, 1, 1, true, P_RELU, false, B, false},
        /* no padding: 7x9 outputs; 24 channels in, 20 out (padded blocks) */
        {"9x11 pad 0 c24 k20", 3, 24, 20, 9, 11, 0, 0, 0, 0, false, P_NONE, false, B, false},
        /* asymmetric and wider padding, whole tiles of zeros at the edge */
        {"asymmetric pads", 2, 16, 16, 7, 5, 2, 0, 1, 3, true, P_LEAKY, false, B, false},
        {"1x1 input pad 1", 2, 16, 16, 1, 1, 1, 1, 1, 1, true, P_RELU, false, B, false},
        /* a clamp above zero would fill padded channels: they must stay 0 */
        {"c17 k18 clip", 2, 17, 18, 6, 6, 1, 1, 1, 1, true, P_CLIP, false, B, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i]);
}

static void test_panels_and_blocks(void **state) {
    (void)state;
    static const wcase_t cases[] = {
        /* 144 outputs: two full U panels of 64 and one of 16 */
        {"c80 k144", 2, 80, 144, 10, 10, 1, 1, 1, 1, true, P_RELU, false, B, false},
        /* 196 tiles: several blocks per thread */
        {"28x28 batch 4", 4, 64, 64, 28, 28, 1, 1, 1, 1, true, P_RELU, false, B, false},
        /* the producer's layout is oneDNN's pick: reordered to nChw16c */
        {"layout any", 2, 32, 48, 12, 12, 1, 1, 1, 1, true, P_RELU, false, A, false},
        /* 9 MB of U for 8 tiles: the threads share one block */
        {"c256 k256, few tiles", 2, 256, 256, 6, 7, 1, 1, 1, 1, true, P_SUM_RELU, false, B, false},
        /* 5 MB of U, 75 tiles: blocks shared by the threads, in turn */
        {"c192 k192, 75 tiles", 3, 192, 192, 20, 20, 1, 1, 1, 1, true, P_RELU, false, B, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i]);
}

static void test_post_ops(void **state) {
    (void)state;
    static const wcase_t cases[] = {
        {"sum then relu (copy)", 2, 32, 32, 14, 14, 1, 1, 1, 1, true, P_SUM_RELU, false, B, false},
        {"sum then relu (in place)", 2, 32, 32, 14, 14, 1, 1, 1, 1, true, P_SUM_RELU, true, B, false},
        {"relu then sum", 3, 16, 48, 9, 9, 1, 1, 1, 1, false, P_RELU_SUM, false, B, false},
        {"sigmoid then sum, k 24", 2, 16, 24, 11, 6, 1, 1, 1, 1, true, P_SIGMOID_SUM, false, B, false},
        /* 3 channels in: not Winograd's (padding to 16 costs more than it
         * saves), still right */
        {"c3 k32 direct", 2, 3, 32, 10, 10, 1, 1, 1, 1, true, P_RELU, false, B, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&cases[i]);
    print_message("worst |diff|/S over all cases: %.3g (bound %.0e)\n", g_worst,
                  WINO_TOL);
}

int main(int argc, char **argv) {
    tu_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges_and_padding),
        cmocka_unit_test(test_panels_and_blocks),
        cmocka_unit_test(test_post_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
