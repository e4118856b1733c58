/* test_shape_fuzz.c — robustness of shape inference, constant folding and
 * the reference kernels against hostile IR: thousands of random one-node
 * graphs (every op, random dtypes/ranks/dims, random constant data, random
 * and out-of-range params, random post-ops). Every call must return 0 or an
 * error with a message — never crash, overflow or trip ASan/UBSan (run it
 * under `make asan`). Deterministic: a fixed-seed PRNG. */
#include "ref_testutil.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void) { /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545f4914f6cdd1dull) >> 32);
}
static int64_t pick(const int64_t *v, size_t n) { return v[rnd() % n]; }
#define PICK(...)                                                              \
    pick((const int64_t[]){__VA_ARGS__},                                       \
         sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

static int64_t small(void) { return PICK(0, 1, 2, 3, -1, -2, 4, 5); }
static int64_t any_int(void) {
    return rnd() % 8 ? small() : PICK(INT64_MAX, INT64_MIN, 1ll << 40, -7, 100);
}

static void random_params(osp_node_t *n) {
    osp_op_params_t *p = &n->p;
    switch (n->op) {
    case OSP_OP_CONV:
    case OSP_OP_MAXPOOL:
    case OSP_OP_AVGPOOL: {
        osp_window_t *w = n->op == OSP_OP_CONV ? &p->conv.win : &p->pool.win;
        for (int i = 0; i < OSP_MAX_SPATIAL; i++) {
            w->kernel[i] = rnd() % 4 ? PICK(1, 2, 3) : any_int();
            w->stride[i] = rnd() % 4 ? PICK(0, 1, 2) : any_int();
            w->dilation[i] = rnd() % 4 ? PICK(0, 1, 2) : any_int();
            w->pad_begin[i] = rnd() % 4 ? PICK(0, 1) : any_int();
            w->pad_end[i] = rnd() % 4 ? PICK(0, 1, 2) : any_int();
        }
        w->auto_pad = (osp_auto_pad_t)(rnd() % 5);
        if (n->op == OSP_OP_CONV)
            p->conv.group = rnd() % 3 ? PICK(0, 1, 2) : any_int();
        else {
            p->pool.ceil_mode = rnd() % 2;
            p->pool.count_include_pad = rnd() % 2;
        }
        break;
    }
    case OSP_OP_LEAKY_RELU:
    case OSP_OP_CLIP:
    case OSP_OP_HARD_SIGMOID:
        p->act.alpha = (float)small() * 0.5f;
        p->act.beta = (float)small() * 0.5f;
        break;
    case OSP_OP_GEMM:
        p->gemm.alpha = (float)small();
        p->gemm.beta = (float)small();
        p->gemm.trans_a = rnd() % 2;
        p->gemm.trans_b = rnd() % 2;
        break;
    case OSP_OP_FLATTEN:
    case OSP_OP_CONCAT:
    case OSP_OP_GATHER:
    case OSP_OP_SOFTMAX:
        p->axis.axis = any_int();
        p->axis.legacy = rnd() % 2;
        break;
    case OSP_OP_SQUEEZE:
    case OSP_OP_UNSQUEEZE:
    case OSP_OP_REDUCE_MEAN:
    case OSP_OP_TRANSPOSE:
    case OSP_OP_RESHAPE:
    case OSP_OP_SHAPE:
        p->axes.has_axes = rnd() % 2;
        p->axes.n_axes = (int)(rnd() % 4 ? rnd() % 5 : PICK(-1, 9, 100));
        for (int i = 0; i < OSP_MAX_RANK; i++)
            p->axes.axes[i] = any_int();
        p->axes.keepdims = rnd() % 2;
        p->axes.allowzero = rnd() % 2;
        p->axes.noop_with_empty_axes = rnd() % 2;
        break;
    case OSP_OP_PAD:
        p->pad.mode = (osp_pad_mode_t)(rnd() % 4);
        p->pad.has_pads = rnd() % 2;
        p->pad.n_pads = (int)(rnd() % 4 ? rnd() % 11 : PICK(-1, 17, 99));
        for (int i = 0; i < 2 * OSP_MAX_RANK; i++)
            p->pad.pads[i] = rnd() % 6 ? small() : any_int();
        p->pad.value = (float)small();
        break;
    case OSP_OP_LRN:
        p->lrn.size = rnd() % 4 ? PICK(1, 2, 3, 5) : any_int();
        p->lrn.alpha = 0.1f;
        p->lrn.beta = 0.75f;
        p->lrn.bias = (float)small();
        break;
    case OSP_OP_BATCHNORM:
        p->bn.epsilon = 1e-3f;
        break;
    case OSP_OP_QUANTIZE:
    case OSP_OP_DEQUANTIZE:
    case OSP_OP_CAST:
        p->cast.to = (osp_dtype_t)(rnd() % (OSP_DT_COUNT + 2));
        p->cast.axis = any_int();
        break;
    default:
        break;
    }
    if (n->op == OSP_OP_CONV || n->op == OSP_OP_GEMM ||
        n->op == OSP_OP_MATMUL) {
        n->n_post = (int)(rnd() % 3);
        for (int k = 0; k < n->n_post; k++) {
            osp_post_op_t *po = &n->post[k];
            po->kind = rnd() % 2 ? OSP_POST_ACT : OSP_POST_SUM;
            po->act = (osp_act_t)(rnd() % (OSP_ACT_COUNT + 1));
            po->alpha = 0.5f;
            po->beta = 6.f;
            po->sum_value = n->in[n->n_in - 1];
        }
    }
}

static const osp_dtype_t dts[] = {OSP_DT_F32, OSP_DT_F32, OSP_DT_F32,
                                  OSP_DT_S64, OSP_DT_S32, OSP_DT_U8,
                                  OSP_DT_S8, OSP_DT_F16, OSP_DT_BOOL};

static int random_const(osp_graph_t *g, int like_rank, const int64_t *like) {
    osp_dtype_t dt = dts[rnd() % OSP_ARRAY_LEN(dts)];
    int rank = (int)(rnd() % 6);
    int64_t dims[OSP_MAX_RANK];
    for (int i = 0; i < rank; i++)
        dims[i] = PICK(1, 2, 3, 4, 1, 2, 0);
    if (like && rnd() % 2) { /* often reuse input 0's shape */
        rank = like_rank;
        memcpy(dims, like, sizeof dims);
    }
    int v = osp_graph_add_value(g, NULL, dt, rank, dims);
    size_t n = osp_value_numel(&g->values[v]) * osp_dtype_size(dt);
    uint8_t *d = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) /* small values: plausible axes/indices */
        d[i] = (uint8_t)(i % osp_dtype_size(dt) == 0 ? rnd() % 7 : 0);
    if (dt == OSP_DT_F32)
        for (size_t i = 0; i < n / 4; i++)
            ((float *)d)[i] = (float)(int)(rnd() % 9) - 4.0f;
    osp_graph_set_const(g, v, d, n);
    return v;
}

static void test_random_nodes(void **state) {
    (void)state;
    int ok = 0, refused = 0, iters = 20000;
    /* OSP_FUZZ_SEED / OSP_FUZZ_ITERS explore further than the CI default */
    if (getenv("OSP_FUZZ_SEED"))
        rng ^= strtoull(getenv("OSP_FUZZ_SEED"), NULL, 0) * 0x100000001b3ull;
    if (getenv("OSP_FUZZ_ITERS"))
        iters = atoi(getenv("OSP_FUZZ_ITERS"));
    for (int iter = 0; iter < iters; iter++) {
        osp_graph_t *g = osp_graph_create();
        osp_op_t op = (osp_op_t)(1 + rnd() % (OSP_OP_COUNT - 1));
        int in[6];
        int n_in = 1 + (int)(rnd() % 5);
        in[0] = random_const(g, 0, NULL);
        const osp_value_t *x0 = &g->values[in[0]];
        int r0 = x0->rank;
        int64_t d0[OSP_MAX_RANK];
        memcpy(d0, x0->dims, sizeof d0);
        for (int i = 1; i < n_in; i++)
            in[i] = rnd() % 8 ? random_const(g, r0, d0) : -1;
        int out[2];
        int n_out = rnd() % 10 ? 1 : 2;
        for (int i = 0; i < n_out; i++)
            out[i] = osp_graph_add_value(g, NULL, OSP_DT_UNDEF, -1, NULL);
        if (rnd() % 4 == 0) { /* input 0 fed at run time: shapes only */
            g->values[in[0]].is_input = true;
            osp_graph_set_const(g, in[0], NULL, 0);
            g->inputs = malloc(sizeof(int));
            g->inputs[0] = in[0];
            g->n_inputs = 1;
        }
        int ni = osp_graph_add_node(g, op, NULL, in, n_in, out, n_out);
        random_params(&g->nodes[ni]);
        if (rnd() % 3 == 0) { /* a second node consuming the first */
            osp_op_t op2 = (osp_op_t)(1 + rnd() % (OSP_OP_COUNT - 1));
            int in2[4] = {out[0]};
            int n_in2 = 1 + (int)(rnd() % 3);
            for (int i = 1; i < n_in2; i++)
                in2[i] = random_const(g, r0, d0);
            int out2 = osp_graph_add_value(g, NULL, OSP_DT_UNDEF, -1, NULL);
            int n2 = osp_graph_add_node(g, op2, NULL, in2, n_in2, &out2, 1);
            random_params(&g->nodes[n2]);
        }
        if (rnd() % 8 == 0) /* TFLite-style quantization on the values */
            osp_graph_set_quant(g, in[0], -1, 1, (float[]){0.5f},
                                (int32_t[]){3});
        if (rnd() % 8 == 0)
            osp_graph_set_quant(g, out[0], (int)(rnd() % 3), 2,
                                (float[]){0.25f, 2.f}, (int32_t[]){1, -2});
        osp_err_t err = {0};
        bool supported = osp_ref_supports(g, &g->nodes[ni]);
        (void)supported;
        int rc = osp_infer_shapes(g, &err);
        if (rc == 0)
            rc = osp_fold_constants(g, 1u << 20, &err);
        if (rc < 0) {
            refused++;
            if (!err.msg[0])
                fail_msg("iteration %d (%s): error %d without a message",
                         iter, osp_op_name(op), rc);
        } else {
            ok++;
        }
        osp_graph_destroy(g);
    }
    printf("random nodes: %d evaluated or left alone, %d refused\n", ok,
           refused);
    assert_true(ok > iters / 20);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
