/* test_passes.c — structural unit tests of the graph passes (passes.h):
 * small graphs built with the IR API, one pass run, then the node list,
 * post-op lists, inputs and (for the BatchNorm fold) the folded numbers are
 * checked against hand-computed values. Numerical before/after comparisons
 * with the reference kernels live in test_passes_ref.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/ir/ir.h"
#include "engine/passes/passes.h"

/* ---- graph-building helpers ------------------------------------------ */

static int val(osp_graph_t *g, const char *name, int rank, const int64_t *d) {
    int v = osp_graph_add_value(g, name, OSP_DT_F32, rank, d);
    assert_true(v >= 0);
    return v;
}

static int cval(osp_graph_t *g, const char *name, int rank, const int64_t *d,
                const float *data) {
    int v = val(g, name, rank, d);
    size_t n = osp_value_numel(&g->values[v]);
    float *p = malloc(n * sizeof(float));
    memcpy(p, data, n * sizeof(float));
    osp_graph_set_const(g, v, p, n * sizeof(float));
    return v;
}

static int node(osp_graph_t *g, osp_op_t op, const char *name,
                const int *in, int n_in, int out) {
    int n = osp_graph_add_node(g, op, name, in, n_in, &out, 1);
    assert_true(n >= 0);
    return n;
}

static void set_io(osp_graph_t *g, int in, int out) {
    g->inputs = malloc(sizeof(int));
    g->inputs[0] = in;
    g->n_inputs = 1;
    g->values[in].is_input = true;
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = out;
    g->n_outputs = 1;
    g->values[out].is_output = true;
}

static void add_output(osp_graph_t *g, int v) {
    g->outputs = realloc(g->outputs, sizeof(int) * (size_t)(g->n_outputs + 1));
    g->outputs[g->n_outputs++] = v;
    g->values[v].is_output = true;
}

static int live_nodes(const osp_graph_t *g) {
    int c = 0;
    for (int i = 0; i < g->n_nodes; i++)
        c += g->nodes[i].op != OSP_OP_NONE;
    return c;
}

static const osp_node_t *producer(const osp_graph_t *g, const char *value) {
    int v = osp_graph_find_value(g, value);
    assert_true(v >= 0);
    int p = g->values[v].producer;
    assert_true(p >= 0);
    assert_int_not_equal(g->nodes[p].op, OSP_OP_NONE);
    return &g->nodes[p];
}

static const char *vname(const osp_graph_t *g, int v) {
    return v >= 0 ? g->values[v].name : "<none>";
}

static const int64_t D4[4] = {1, 2, 3, 3};
static const int64_t W4[4] = {2, 2, 1, 1};
static const float WDATA[4] = {1.f, 2.f, 3.f, 4.f};

/* x -> conv(w) -> c ; returns the graph with x as input, c not yet wired. */
static osp_graph_t *conv_graph(int *x, int *c, int *conv) {
    osp_graph_t *g = osp_graph_create();
    g->opset = 13;
    *x = val(g, "x", 4, D4);
    int w = cval(g, "w", 4, W4, WDATA);
    *c = val(g, "c", 4, D4);
    *conv = node(g, OSP_OP_CONV, "conv", (int[]){*x, w}, 2, *c);
    g->nodes[*conv].p.conv.win.n_spatial = 2;
    g->nodes[*conv].p.conv.group = 1;
    return g;
}

/* ---- identity -------------------------------------------------------- */

static void test_identity_inner(void **state) {
    (void)state;
    int x, c, conv;
    osp_graph_t *g = conv_graph(&x, &c, &conv);
    int a = val(g, "a", 4, D4), y = val(g, "y", 4, D4);
    node(g, OSP_OP_IDENTITY, "id", &c, 1, a);
    node(g, OSP_OP_RELU, "relu", &a, 1, y);
    set_io(g, x, y);
    assert_int_equal(osp__pass_remove_identity(g, NULL), 0);
    assert_int_equal(live_nodes(g), 2);
    assert_int_equal(g->nodes[2].in[0], c);
    assert_int_equal(osp__pass_dead_nodes(g, NULL), 0);
    assert_int_equal(g->n_nodes, 2);
    assert_string_equal(vname(g, g->nodes[1].in[0]), "c");
    assert_string_equal(vname(g, g->outputs[0]), "y");
    osp_graph_destroy(g);
}

/* conv -> c -> identity -> y(output): the conv must write y itself. */
static void test_identity_output_name_kept(void **state) {
    (void)state;
    int x, c, conv;
    osp_graph_t *g = conv_graph(&x, &c, &conv);
    int y = val(g, "y", 4, D4), r = val(g, "r", 4, D4);
    node(g, OSP_OP_IDENTITY, "id", &c, 1, y);
    node(g, OSP_OP_RELU, "relu", &c, 1, r); /* another reader of c */
    set_io(g, x, y);
    add_output(g, r);
    assert_int_equal(osp__pass_remove_identity(g, NULL), 0);
    assert_int_equal(osp__pass_dead_nodes(g, NULL), 0);
    assert_int_equal(g->n_nodes, 2);
    assert_string_equal(producer(g, "y")->name, "conv");
    assert_string_equal(vname(g, producer(g, "r")->in[0]), "y");
    assert_int_equal(osp_graph_find_value(g, "c"), -1);
    assert_string_equal(vname(g, g->outputs[0]), "y");
    osp_graph_destroy(g);
}

/* input -> identity -> output, and output -> identity -> output: kept. */
static void test_identity_kept(void **state) {
    (void)state;
    osp_graph_t *g = osp_graph_create();
    int x = val(g, "x", 4, D4), y = val(g, "y", 4, D4), z = val(g, "z", 4, D4);
    node(g, OSP_OP_IDENTITY, "id1", &x, 1, y);
    node(g, OSP_OP_IDENTITY, "id2", &y, 1, z);
    set_io(g, x, y);
    add_output(g, z);
    assert_int_equal(osp__pass_remove_identity(g, NULL), 0);
    assert_int_equal(osp__pass_dead_nodes(g, NULL), 0);
    assert_int_equal(g->n_nodes, 2);
    assert_int_equal(g->nodes[0].op, OSP_OP_IDENTITY);
    assert_int_equal(g->nodes[1].op, OSP_OP_IDENTITY);
    assert_string_equal(vname(g, g->outputs[0]), "y");
    assert_string_equal(vname(g, g->outputs[1]), "z");
    osp_graph_destroy(g);
}

/* Dropout imported as IDENTITY with a mask output that is read: kept. */
static void test_identity_used_mask_kept(void **state) {
    (void)state;
    int x, c, conv;
    osp_graph_t *g = conv_graph(&x, &c, &conv);
    int y = val(g, "y", 4, D4), m = val(g, "mask", 4, D4);
    int n = osp_graph_add_node(g, OSP_OP_IDENTITY, "drop", &c, 1,
                               (int[]){y, m}, 2);
    assert_true(n >= 0);
    set_io(g, x, y);
    add_output(g, m);
    assert_int_equal(osp__pass_remove_identity(g, NULL), 0);
    assert_int_equal(g->nodes[n].op, OSP_OP_IDENTITY);
    osp_graph_destroy(g);
}

/* ---- batchnorm ------------------------------------------------------- */

static const float GAMMA[2] = {2.f, 0.5f};
static const float BETA[2] = {0.1f, -0.2f};
static const float MEAN[2] = {1.f, -1.f};
static const float VAR[2] = {3.f, 0.25f};
static const float BIAS[2] = {0.5f, 1.5f};
#define EPS 1e-5f

/* conv(x, w[, bias]) -> c -> BN -> y(output) */
static osp_graph_t *conv_bn(bool with_bias, bool borrowed_w, int *bn_out) {
    osp_graph_t *g = osp_graph_create();
    g->opset = 13;
    int x = val(g, "x", 4, D4);
    int w = val(g, "w", 4, W4);
    if (borrowed_w) {
        g->values[w].data = (void *)WDATA;
        g->values[w].data_bytes = sizeof WDATA;
        g->values[w].data_borrowed = true;
    } else {
        float *p = malloc(sizeof WDATA);
        memcpy(p, WDATA, sizeof WDATA);
        osp_graph_set_const(g, w, p, sizeof WDATA);
    }
    int64_t d1[1] = {2};
    int b = with_bias ? cval(g, "b", 1, d1, BIAS) : -1;
    int c = val(g, "c", 4, D4), y = val(g, "y", 4, D4);
    int in[3] = {x, w, b};
    node(g, OSP_OP_CONV, "conv", in, with_bias ? 3 : 2, c);
    int ga = cval(g, "gamma", 1, d1, GAMMA), be = cval(g, "beta", 1, d1, BETA);
    int me = cval(g, "mean", 1, d1, MEAN), va = cval(g, "var", 1, d1, VAR);
    int bn = node(g, OSP_OP_BATCHNORM, "bn", (int[]){c, ga, be, me, va}, 5, y);
    g->nodes[bn].p.bn.epsilon = EPS;
    set_io(g, x, y);
    *bn_out = bn;
    return g;
}

static void check_fold(const osp_graph_t *g, bool with_bias) {
    const osp_node_t *cv = producer(g, "y");
    assert_int_equal(cv->op, OSP_OP_CONV);
    assert_int_equal(cv->n_in, 3);
    const osp_value_t *w = &g->values[cv->in[1]];
    const osp_value_t *b = &g->values[cv->in[2]];
    assert_int_equal(w->rank, 4);
    assert_int_equal(w->dims[0], 2);
    assert_int_equal(w->data_bytes, 4 * sizeof(float));
    assert_int_equal(b->data_bytes, 2 * sizeof(float));
    const float *wf = w->data, *bf = b->data;
    for (int o = 0; o < 2; o++) {
        float s = GAMMA[o] / sqrtf(VAR[o] + EPS);
        for (int k = 0; k < 2; k++)
            assert_float_equal(wf[o * 2 + k], WDATA[o * 2 + k] * s, 1e-5);
        float b0 = with_bias ? BIAS[o] : 0.f;
        assert_float_equal(bf[o], (b0 - MEAN[o]) * s + BETA[o], 1e-5);
    }
}

static void test_bn_fold_numbers(void **state) {
    (void)state;
    int bn;
    osp_graph_t *g = conv_bn(true, false, &bn);
    assert_int_equal(osp__pass_fold_batchnorm(g, NULL), 0);
    assert_int_equal(g->nodes[bn].op, OSP_OP_NONE);
    check_fold(g, true);
    assert_int_equal(osp__pass_dead_nodes(g, NULL), 0);
    assert_int_equal(g->n_nodes, 1);
    check_fold(g, true);
    /* old weights, bias and the BN parameters are gone after compaction */
    assert_int_equal(osp_graph_find_value(g, "gamma"), -1);
    assert_int_equal(osp_graph_find_value(g, "c"), -1);
    assert_int_equal(g->n_values, 4); /* x, y, folded w, folded b */
    osp_graph_destroy(g);
}

/* No bias: one is created. Borrowed weights: not written in place. */
static void test_bn_fold_no_bias_borrowed(void **state) {
    (void)state;
    int bn;
    osp_graph_t *g = conv_bn(false, true, &bn);
    assert_int_equal(osp__pass_fold_batchnorm(g, NULL), 0);
    check_fold(g, false);
    assert_float_equal(WDATA[0], 1.f, 0);
    assert_float_equal(WDATA[3], 4.f, 0);
    osp_graph_destroy(g);
}

/* A second conv sharing the weights still sees the originals. */
static void test_bn_fold_shared_weights(void **state) {
    (void)state;
    int bn;
    osp_graph_t *g = conv_bn(true, false, &bn);
    int x = osp_graph_find_value(g, "x"), w = osp_graph_find_value(g, "w");
    int z = val(g, "z", 4, D4);
    node(g, OSP_OP_CONV, "conv2", (int[]){x, w}, 2, z);
    add_output(g, z);
    assert_int_equal(osp__pass_fold_batchnorm(g, NULL), 0);
    assert_int_equal(osp__pass_dead_nodes(g, NULL), 0);
    check_fold(g, true);
    const osp_node_t *c2 = producer(g, "z");
    assert_string_equal(vname(g, c2->in[1]), "w");
    assert_memory_equal(g->values[c2->in[1]].data, WDATA, sizeof WDATA);
    osp_graph_destroy(g);
}

static void test_bn_not_folded(void **state) {
    (void)state;
    int bn;
    /* conv output also used elsewhere */
    osp_graph_t *g = conv_bn(true, false, &bn);
    add_output(g, osp_graph_find_value(g, "c"));
    assert_int_equal(osp__pass_fold_batchnorm(g, NULL), 0);
    assert_int_equal(g->nodes[bn].op, OSP_OP_BATCHNORM);
    osp_graph_destroy(g);
    /* non-constant variance */
    g = conv_bn(true, false, &bn);
    int v = osp_graph_find_value(g, "var");
    free(g->values[v].data);
    g->values[v].data = NULL;
    g->values[v].data_bytes = 0;
    assert_int_equal(osp__pass_fold_batchnorm(g, NULL), 0);
    assert_int_equal(g->nodes[bn].op, OSP_OP_BATCHNORM);
    osp_graph_destroy(g);
    /* conv already has a post-op */
    g = conv_bn(true, false, &bn);
    osp_node_t *cv = &g->nodes[g->values[osp_graph_find_value(g, "c")].producer];
    cv->post[cv->n_post++] = (osp_post_op_t){.kind = OSP_POST_ACT,
                                             .act = OSP_ACT_RELU};
    assert_int_equal(osp__pass_fold_batchnorm(g, NULL), 0);
    assert_int_equal(g->nodes[bn].op, OSP_OP_BATCHNORM);
    osp_graph_destroy(g);
    /* standalone BN (input is a graph input) stays */
    g = osp_graph_create();
    int64_t d1[1] = {2};
    int x = val(g, "x", 4, D4), y = val(g, "y", 4, D4);
    int ga = cval(g, "gamma", 1, d1, GAMMA), be = cval(g, "beta", 1, d1, BETA);
    int me = cval(g, "mean", 1, d1, MEAN), va = cval(g, "var", 1, d1, VAR);
    bn = node(g, OSP_OP_BATCHNORM, "bn", (int[]){x, ga, be, me, va}, 5, y);
    set_io(g, x, y);
    assert_int_equal(osp__passes_load(g, NULL), 0);
    assert_int_equal(g->n_nodes, 1);
    assert_int_equal(g->nodes[0].op, OSP_OP_BATCHNORM);
    osp_graph_destroy(g);
}

/* ---- activations ----------------------------------------------------- */

/* x -> producer(op) -> c -> act -> y(output); returns the act node. */
static osp_graph_t *prod_act(osp_op_t prod, osp_op_t act, int64_t opset,
                             int *act_node) {
    osp_graph_t *g = osp_graph_create();
    g->opset = opset;
    int x = val(g, "x", 4, D4);
    int w = cval(g, "w", 4, W4, WDATA);
    int c = val(g, "c", 4, D4), y = val(g, "y", 4, D4);
    node(g, prod, "prod", (int[]){x, w}, 2, c);
    *act_node = node(g, act, "act", &c, 1, y);
    set_io(g, x, y);
    return g;
}

static void expect_fused(osp_graph_t *g, osp_act_t act, float alpha,
                         float beta) {
    assert_int_equal(osp__pass_fuse_activation(g, NULL), 0);
    assert_int_equal(osp__pass_dead_nodes(g, NULL), 0);
    assert_int_equal(g->n_nodes, 1);
    const osp_node_t *p = producer(g, "y");
    assert_int_equal(p->n_post, 1);
    assert_int_equal(p->post[0].kind, OSP_POST_ACT);
    assert_int_equal(p->post[0].act, act);
    if (isinf(alpha))
        assert_true(isinf(p->post[0].alpha) && p->post[0].alpha < 0);
    else
        assert_float_equal(p->post[0].alpha, alpha, 0);
    if (isinf(beta))
        assert_true(isinf(p->post[0].beta) && p->post[0].beta > 0);
    else
        assert_float_equal(p->post[0].beta, beta, 0);
    assert_string_equal(vname(g, p->in[0]), "x");
    assert_string_equal(vname(g, g->outputs[0]), "y");
}

static void test_act_kinds(void **state) {
    (void)state;
    static const struct {
        osp_op_t prod, op;
        osp_act_t act;
        float alpha, beta;
    } cases[] = {
        {OSP_OP_CONV, OSP_OP_RELU, OSP_ACT_RELU, 0, 0},
        {OSP_OP_GEMM, OSP_OP_LEAKY_RELU, OSP_ACT_LEAKY_RELU, 0.1f, 0},
        {OSP_OP_MATMUL, OSP_OP_SIGMOID, OSP_ACT_SIGMOID, 0, 0},
        {OSP_OP_CONV, OSP_OP_HARD_SIGMOID, OSP_ACT_HARD_SIGMOID, 0.2f, 0.5f},
        {OSP_OP_CONV, OSP_OP_HARD_SWISH, OSP_ACT_HARD_SWISH, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int a;
        osp_graph_t *g = prod_act(cases[i].prod, cases[i].op, 13, &a);
        g->nodes[a].p.act.alpha = cases[i].alpha;
        g->nodes[a].p.act.beta = cases[i].beta;
        expect_fused(g, cases[i].act, cases[i].alpha, cases[i].beta);
        osp_graph_destroy(g);
    }
}

static void test_act_clip(void **state) {
    (void)state;
    int a;
    /* opset < 11: attributes */
    osp_graph_t *g = prod_act(OSP_OP_CONV, OSP_OP_CLIP, 9, &a);
    g->nodes[a].p.act.alpha = 0.f;
    g->nodes[a].p.act.beta = 6.f;
    expect_fused(g, OSP_ACT_CLIP, 0.f, 6.f);
    osp_graph_destroy(g);
    /* opset 13: constant min input, absent max = +inf */
    g = prod_act(OSP_OP_CONV, OSP_OP_CLIP, 13, &a);
    int lo = cval(g, "lo", 0, NULL, (float[]){-1.5f});
    osp_node_t *n = &g->nodes[a];
    n->in = realloc(n->in, 3 * sizeof(int));
    n->in[1] = lo;
    n->in[2] = -1;
    n->n_in = 3;
    expect_fused(g, OSP_ACT_CLIP, -1.5f, INFINITY);
    osp_graph_destroy(g);
    /* opset 13 without bounds: (-inf, +inf) */
    g = prod_act(OSP_OP_CONV, OSP_OP_CLIP, 13, &a);
    expect_fused(g, OSP_ACT_CLIP, -INFINITY, INFINITY);
    osp_graph_destroy(g);
    /* non-constant max: not fused */
    g = prod_act(OSP_OP_CONV, OSP_OP_CLIP, 13, &a);
    int hi = val(g, "hi", 0, NULL);
    n = &g->nodes[a];
    n->in = realloc(n->in, 3 * sizeof(int));
    n->in[1] = -1;
    n->in[2] = hi;
    n->n_in = 3;
    assert_int_equal(osp__pass_fuse_activation(g, NULL), 0);
    assert_int_equal(g->nodes[a].op, OSP_OP_CLIP);
    osp_graph_destroy(g);
}

static void test_act_not_fused(void **state) {
    (void)state;
    int a;
    /* producer cannot take post-ops */
    osp_graph_t *g = prod_act(OSP_OP_MAXPOOL, OSP_OP_RELU, 13, &a);
    assert_int_equal(osp__pass_fuse_activation(g, NULL), 0);
    assert_int_equal(g->nodes[a].op, OSP_OP_RELU);
    osp_graph_destroy(g);
    /* intermediate is a graph output */
    g = prod_act(OSP_OP_CONV, OSP_OP_RELU, 13, &a);
    add_output(g, osp_graph_find_value(g, "c"));
    assert_int_equal(osp__pass_fuse_activation(g, NULL), 0);
    assert_int_equal(g->nodes[a].op, OSP_OP_RELU);
    osp_graph_destroy(g);
    /* post-op list full */
    g = prod_act(OSP_OP_CONV, OSP_OP_RELU, 13, &a);
    osp_node_t *p = &g->nodes[0];
    for (int i = 0; i < OSP_MAX_POST_OPS; i++)
        p->post[p->n_post++] = (osp_post_op_t){.kind = OSP_POST_ACT,
                                               .act = OSP_ACT_SIGMOID};
    assert_int_equal(osp__pass_fuse_activation(g, NULL), 0);
    assert_int_equal(g->nodes[a].op, OSP_OP_RELU);
    osp_graph_destroy(g);
}

/* conv -> relu -> sigmoid: both become post-ops, in order. */
static void test_act_chain(void **state) {
    (void)state;
    int a;
    osp_graph_t *g = prod_act(OSP_OP_CONV, OSP_OP_RELU, 13, &a);
    int y = osp_graph_find_value(g, "y"), z = val(g, "z", 4, D4);
    node(g, OSP_OP_SIGMOID, "sig", &y, 1, z);
    g->outputs[0] = z;
    g->values[y].is_output = false;
    g->values[z].is_output = true;
    assert_int_equal(osp__pass_fuse_activation(g, NULL), 0);
    assert_int_equal(osp__pass_dead_nodes(g, NULL), 0);
    assert_int_equal(g->n_nodes, 1);
    const osp_node_t *p = producer(g, "z");
    assert_int_equal(p->n_post, 2);
    assert_int_equal(p->post[0].act, OSP_ACT_RELU);
    assert_int_equal(p->post[1].act, OSP_ACT_SIGMOID);
    osp_graph_destroy(g);
}

/* ---- residual add ---------------------------------------------------- */

/* x -> convA -> a ; x -> convB -> b ; add(in0, in1) -> s -> relu -> y */
static osp_graph_t *residual(bool a_is_first_operand, bool with_relu) {
    osp_graph_t *g = osp_graph_create();
    g->opset = 13;
    int x = val(g, "x", 4, D4);
    int w = cval(g, "w", 4, W4, WDATA);
    int a = val(g, "a", 4, D4), b = val(g, "b", 4, D4);
    int s = val(g, "s", 4, D4), y = val(g, "y", 4, D4);
    node(g, OSP_OP_CONV, "convA", (int[]){x, w}, 2, a);
    node(g, OSP_OP_CONV, "convB", (int[]){x, w}, 2, b);
    int in[2] = {a_is_first_operand ? a : b, a_is_first_operand ? b : a};
    node(g, OSP_OP_ADD, "add", in, 2, s);
    if (with_relu) {
        node(g, OSP_OP_RELU, "relu", &s, 1, y);
        set_io(g, x, y);
    } else {
        set_io(g, x, s);
    }
    return g;
}

static void test_residual_later_conv_chosen(void **state) {
    (void)state;
    for (int order = 0; order < 2; order++) {
        osp_graph_t *g = residual(order == 0, true);
        assert_int_equal(osp__pass_fuse_residual_add(g, NULL), 0);
        assert_int_equal(osp__pass_dead_nodes(g, NULL), 0);
        assert_int_equal(g->n_nodes, 2);
        const osp_node_t *cb = producer(g, "y");
        assert_string_equal(cb->name, "convB");
        /* no bias: slot 2 stays "absent", the summand comes after it */
        assert_int_equal(cb->n_in, 4);
        assert_int_equal(cb->in[2], -1);
        assert_string_equal(vname(g, cb->in[3]), "a");
        assert_int_equal(cb->n_post, 2);
        assert_int_equal(cb->post[0].kind, OSP_POST_SUM);
        assert_int_equal(cb->post[0].sum_value, cb->in[3]);
        assert_int_equal(cb->post[1].kind, OSP_POST_ACT);
        assert_int_equal(cb->post[1].act, OSP_ACT_RELU);
        assert_string_equal(producer(g, "a")->name, "convA");
        assert_int_equal(producer(g, "a")->n_post, 0);
        osp_graph_destroy(g);
    }
}

/* Add output is the graph output: its name survives. */
static void test_residual_output_name(void **state) {
    (void)state;
    osp_graph_t *g = residual(true, false);
    assert_int_equal(osp__passes_plan(g, NULL), 0);
    assert_int_equal(g->n_nodes, 2);
    assert_string_equal(vname(g, g->outputs[0]), "s");
    assert_string_equal(producer(g, "s")->name, "convB");
    osp_graph_destroy(g);
}

/* Residual from the graph input: add(conv(x), x). */
static void test_residual_input_operand(void **state) {
    (void)state;
    int x, c, conv;
    osp_graph_t *g = conv_graph(&x, &c, &conv);
    int s = val(g, "s", 4, D4);
    node(g, OSP_OP_ADD, "add", (int[]){x, c}, 2, s);
    set_io(g, x, s);
    assert_int_equal(osp__pass_fuse_residual_add(g, NULL), 0);
    assert_int_equal(live_nodes(g), 1);
    assert_int_equal(g->nodes[conv].n_post, 1);
    assert_int_equal(g->nodes[conv].post[0].sum_value, x);
    assert_int_equal(g->nodes[conv].in[g->nodes[conv].n_in - 1], x);
    if (g->nodes[conv].n_in == 4) /* bias-less conv: slot 2 kept absent */
        assert_int_equal(g->nodes[conv].in[2], -1);
    osp_graph_destroy(g);
}

static void test_residual_not_fused(void **state) {
    (void)state;
    /* broadcast: other operand has a different shape */
    int x, c, conv;
    osp_graph_t *g = conv_graph(&x, &c, &conv);
    int64_t d[4] = {1, 2, 1, 1};
    int bias = cval(g, "bias", 4, d, (float[]){1.f, 2.f});
    int s = val(g, "s", 4, D4);
    int add = node(g, OSP_OP_ADD, "add", (int[]){c, bias}, 2, s);
    set_io(g, x, s);
    assert_int_equal(osp__pass_fuse_residual_add(g, NULL), 0);
    assert_int_equal(g->nodes[add].op, OSP_OP_ADD);
    osp_graph_destroy(g);
    /* unknown (dynamic) dims */
    g = residual(true, false);
    g->values[osp_graph_find_value(g, "a")].dims[0] = -1;
    g->values[osp_graph_find_value(g, "b")].dims[0] = -1;
    assert_int_equal(osp__pass_fuse_residual_add(g, NULL), 0);
    assert_int_equal(live_nodes(g), 3);
    osp_graph_destroy(g);
    /* different dtype */
    g = residual(true, false);
    g->values[osp_graph_find_value(g, "a")].dtype = OSP_DT_BF16;
    assert_int_equal(osp__pass_fuse_residual_add(g, NULL), 0);
    assert_int_equal(live_nodes(g), 3);
    osp_graph_destroy(g);
    /* quantized sum: different scales need requantization, not a SUM */
    g = residual(true, false);
    float sc = 0.1f;
    int32_t zp = 128;
    assert_int_equal(osp_graph_set_quant(g, osp_graph_find_value(g, "s"), -1,
                                         1, &sc, &zp), 0);
    assert_int_equal(osp__pass_fuse_residual_add(g, NULL), 0);
    assert_int_equal(live_nodes(g), 3);
    osp_graph_destroy(g);
}

/* convB's output also read elsewhere → convA (the earlier one) is used,
 * since convB's output b is computed before the add... but after convA, so
 * neither may take the sum: nothing fuses. */
static void test_residual_order_respected(void **state) {
    (void)state;
    osp_graph_t *g = residual(true, false);
    add_output(g, osp_graph_find_value(g, "b"));
    assert_int_equal(osp__pass_fuse_residual_add(g, NULL), 0);
    assert_int_equal(live_nodes(g), 3);
    osp_graph_destroy(g);
}

/* ---- dead nodes and pipelines ---------------------------------------- */

static void test_dead_chain(void **state) {
    (void)state;
    int x, c, conv;
    osp_graph_t *g = conv_graph(&x, &c, &conv);
    int d1 = val(g, "d1", 4, D4), d2 = val(g, "d2", 4, D4);
    int y = val(g, "y", 4, D4);
    node(g, OSP_OP_RELU, "dead1", &x, 1, d1);
    node(g, OSP_OP_SIGMOID, "dead2", &d1, 1, d2);
    node(g, OSP_OP_RELU, "live", &c, 1, y);
    set_io(g, x, y);
    assert_int_equal(osp__pass_dead_nodes(g, NULL), 0);
    assert_int_equal(g->n_nodes, 2);
    assert_string_equal(g->nodes[0].name, "conv");
    assert_string_equal(g->nodes[1].name, "live");
    assert_int_equal(osp_graph_find_value(g, "d1"), -1);
    assert_int_equal(g->values[g->outputs[0]].producer, 1);
    assert_int_equal(g->inputs[0], osp_graph_find_value(g, "x"));
    osp_graph_destroy(g);
}

/* conv -> identity -> BN -> relu: the load pipeline leaves one conv with a
 * relu post-op and folded weights. */
static void test_load_pipeline(void **state) {
    (void)state;
    int bn;
    osp_graph_t *g = conv_bn(true, false, &bn);
    int c = osp_graph_find_value(g, "c"), y = osp_graph_find_value(g, "y");
    int i = val(g, "i", 4, D4), r = val(g, "r", 4, D4);
    /* insert identity between conv and BN, relu after BN */
    node(g, OSP_OP_IDENTITY, "id", &c, 1, i);
    g->nodes[bn].in[0] = i;
    node(g, OSP_OP_RELU, "relu", &y, 1, r);
    /* identity was appended after the BN; move it before to keep order */
    osp_node_t tmp = g->nodes[bn];
    g->nodes[bn] = g->nodes[bn + 1];
    g->nodes[bn + 1] = tmp;
    g->values[i].producer = bn;
    g->values[y].producer = bn + 1;
    g->outputs[0] = r;
    g->values[y].is_output = false;
    g->values[r].is_output = true;
    assert_int_equal(osp__passes_load(g, NULL), 0);
    assert_int_equal(g->n_nodes, 1);
    const osp_node_t *cv = producer(g, "r");
    assert_int_equal(cv->op, OSP_OP_CONV);
    assert_int_equal(cv->n_post, 1);
    assert_int_equal(cv->post[0].act, OSP_ACT_RELU);
    assert_int_equal(cv->n_in, 3);
    osp_graph_destroy(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_identity_inner),
        cmocka_unit_test(test_identity_output_name_kept),
        cmocka_unit_test(test_identity_kept),
        cmocka_unit_test(test_identity_used_mask_kept),
        cmocka_unit_test(test_bn_fold_numbers),
        cmocka_unit_test(test_bn_fold_no_bias_borrowed),
        cmocka_unit_test(test_bn_fold_shared_weights),
        cmocka_unit_test(test_bn_not_folded),
        cmocka_unit_test(test_act_kinds),
        cmocka_unit_test(test_act_clip),
        cmocka_unit_test(test_act_not_fused),
        cmocka_unit_test(test_act_chain),
        cmocka_unit_test(test_residual_later_conv_chosen),
        cmocka_unit_test(test_residual_output_name),
        cmocka_unit_test(test_residual_input_operand),
        cmocka_unit_test(test_residual_not_fused),
        cmocka_unit_test(test_residual_order_respected),
        cmocka_unit_test(test_dead_chain),
        cmocka_unit_test(test_load_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
