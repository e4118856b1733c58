/* test_passes_ref.c — the passes do not change what a graph computes: small
 * graphs (conv+BN+activation chains, residual blocks, GEMM/MatMul with
 * activations) and, when the shared models are present, a real MobileNetV2
 * are run node by node with the reference kernels (osp_ref_run_node) before
 * and after the load- and plan-time pipelines, and the outputs compared.
 * Structure is tested in test_passes.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/ir/ir.h"
#include "engine/ops/kernels.h"
#include "engine/import/onnx_import.h"
#include "engine/passes/passes.h"
#include "engine/ops/ref.h"
#include "engine/import/tflite_import.h"

/* ---- a tiny interpreter over the reference kernels -------------------- */

/* Runs g (shapes inferred) on input data x (for graph input 0) and returns
 * a malloc'd copy of output 0 with its element count in *count (any dtype;
 * *dt receives it when non-NULL). */
static void *run_graph_any(osp_graph_t *g, const void *x, size_t *count,
                           osp_dtype_t *dt) {
    osp_err_t err = {0};
    void **buf = calloc((size_t)g->n_values, sizeof(void *));
    assert_non_null(buf);
    buf[g->inputs[0]] = (void *)x;
    for (int i = 0; i < g->n_nodes; i++) {
        const osp_node_t *n = &g->nodes[i];
        if (n->op == OSP_OP_NONE)
            continue;
        osp_tensor_t in[16], out[4];
        assert_true(n->n_in <= 16 && n->n_out <= 4);
        for (int j = 0; j < n->n_in; j++) {
            if (n->in[j] < 0) {
                memset(&in[j], 0, sizeof in[j]);
                continue;
            }
            const osp_value_t *v = &g->values[n->in[j]];
            in[j] = osp_value_tensor(v);
            if (!v->data)
                in[j].data = buf[n->in[j]];
            assert_true(in[j].data != NULL || osp_tensor_numel(&in[j]) == 0);
        }
        for (int j = 0; j < n->n_out; j++) {
            int v = n->out[j];
            out[j] = osp_value_tensor(&g->values[v]);
            size_t bytes = osp_tensor_numel(&out[j]) *
                           osp_dtype_size(out[j].dtype);
            buf[v] = calloc(bytes ? bytes : 1, 1);
            assert_non_null(buf[v]);
            out[j].data = buf[v];
        }
        int rc = osp_ref_run_node(g, n, in, out, &err);
        if (rc != 0)
            fail_msg("node %s: %s", n->name, err.msg);
    }
    int o = g->outputs[0];
    const osp_value_t *ov = &g->values[o];
    osp_tensor_t t = osp_value_tensor(ov);
    *count = osp_tensor_numel(&t);
    if (dt)
        *dt = ov->dtype;
    size_t bytes = *count * osp_dtype_size(ov->dtype);
    void *res = malloc(bytes ? bytes : 1);
    memcpy(res, ov->data ? ov->data : buf[o], bytes);
    for (int v = 0; v < g->n_values; v++)
        if (v != g->inputs[0])
            free(buf[v]);
    free(buf);
    return res;
}

static float *run_graph(osp_graph_t *g, const float *x, size_t *count) {
    osp_dtype_t dt;
    float *r = run_graph_any(g, x, count, &dt);
    assert_int_equal(dt, OSP_DT_F32);
    return r;
}

static void assert_close(const float *a, const float *b, size_t n,
                         float tol) {
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (d > tol * (1.f + fabsf(a[i])))
            fail_msg("element %zu: %g before the passes, %g after", i,
                     (double)a[i], (double)b[i]);
    }
}

static uint32_t g_seed = 12345;
static float rnd(float lo, float hi) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return lo + (hi - lo) * (float)(g_seed >> 8) / (float)(1u << 24);
}

/* ---- graph builders ---------------------------------------------------- */

static int val(osp_graph_t *g, const char *name, int rank, const int64_t *d) {
    int v = osp_graph_add_value(g, name, OSP_DT_F32, rank, d);
    assert_true(v >= 0);
    return v;
}

static int rconst(osp_graph_t *g, const char *name, int rank,
                  const int64_t *d, float lo, float hi) {
    int v = val(g, name, rank, d);
    size_t n = osp_value_numel(&g->values[v]);
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p[i] = rnd(lo, hi);
    osp_graph_set_const(g, v, p, n * sizeof(float));
    return v;
}

static int fconst(osp_graph_t *g, const char *name, float x) {
    int v = val(g, name, 0, NULL);
    float *p = malloc(sizeof(float));
    *p = x;
    osp_graph_set_const(g, v, p, sizeof(float));
    return v;
}

static int node(osp_graph_t *g, osp_op_t op, const int *in, int n_in,
                int out) {
    int n = osp_graph_add_node(g, op, NULL, in, n_in, &out, 1);
    assert_true(n >= 0);
    return n;
}

/* 3x3 "same" conv from c_in to c_out channels (optional bias). */
static int conv3(osp_graph_t *g, int x, int c_in, int c_out, bool bias) {
    int64_t wd[4] = {c_out, c_in, 3, 3}, bd[1] = {c_out};
    int w = rconst(g, NULL, 4, wd, -0.5f, 0.5f);
    int b = bias ? rconst(g, NULL, 1, bd, -0.5f, 0.5f) : -1;
    int y = val(g, NULL, -1, NULL);
    int n = node(g, OSP_OP_CONV, (int[]){x, w, b}, bias ? 3 : 2, y);
    osp_conv_params_t *p = &g->nodes[n].p.conv;
    p->win.n_spatial = 2;
    p->group = 1;
    for (int i = 0; i < 2; i++) {
        p->win.stride[i] = p->win.dilation[i] = 1;
        p->win.pad_begin[i] = p->win.pad_end[i] = 1;
    }
    return y;
}

static int bn(osp_graph_t *g, int x, int c) {
    int64_t d[1] = {c};
    int ga = rconst(g, NULL, 1, d, 0.5f, 2.f);
    int be = rconst(g, NULL, 1, d, -1.f, 1.f);
    int me = rconst(g, NULL, 1, d, -1.f, 1.f);
    int va = rconst(g, NULL, 1, d, 0.1f, 3.f);
    int y = val(g, NULL, -1, NULL);
    int n = node(g, OSP_OP_BATCHNORM, (int[]){x, ga, be, me, va}, 5, y);
    g->nodes[n].p.bn.epsilon = 1e-5f;
    return y;
}

static int act(osp_graph_t *g, osp_op_t op, int x, float alpha, float beta) {
    int y = val(g, NULL, -1, NULL);
    int n = node(g, op, &x, 1, y);
    g->nodes[n].p.act.alpha = alpha;
    g->nodes[n].p.act.beta = beta;
    return y;
}

static osp_graph_t *new_graph(int rank, const int64_t *dims, int *x) {
    osp_graph_t *g = osp_graph_create();
    g->opset = 13;
    *x = val(g, "x", rank, dims);
    g->values[*x].is_input = true;
    g->inputs = malloc(sizeof(int));
    g->inputs[0] = *x;
    g->n_inputs = 1;
    return g;
}

static void set_output(osp_graph_t *g, int y) {
    g->outputs = malloc(sizeof(int));
    g->outputs[0] = y;
    g->n_outputs = 1;
    g->values[y].is_output = true;
}

typedef osp_graph_t *(*builder_fn)(void);

/* Builds the graph twice (same seed): runs one as is, the other through the
 * load pipeline, shape inference and the plan pipeline; compares. Returns
 * the optimised graph's live node count. */
static int check_same(builder_fn build, const int64_t *in_dims, int in_rank,
                      int *n_post_total) {
    osp_err_t err = {0};
    g_seed = 777;
    osp_graph_t *ref = build();
    g_seed = 777;
    osp_graph_t *opt = build();
    size_t n_in = 1;
    for (int i = 0; i < in_rank; i++)
        n_in *= (size_t)in_dims[i];
    float *x = malloc(n_in * sizeof(float));
    for (size_t i = 0; i < n_in; i++)
        x[i] = rnd(-2.f, 2.f);

    if (osp_infer_shapes(ref, &err))
        fail_msg("infer (reference): %s", err.msg);
    if (osp__passes_load(opt, &err))
        fail_msg("load passes: %s", err.msg);
    if (osp_infer_shapes(opt, &err))
        fail_msg("infer (optimised): %s", err.msg);
    if (osp__passes_plan(opt, &err))
        fail_msg("plan passes: %s", err.msg);

    size_t na, nb;
    float *a = run_graph(ref, x, &na);
    float *b = run_graph(opt, x, &nb);
    assert_int_equal(na, nb);
    assert_close(a, b, na, 1e-4f);
    int live = opt->n_nodes, posts = 0;
    for (int i = 0; i < opt->n_nodes; i++)
        posts += opt->nodes[i].n_post;
    if (n_post_total)
        *n_post_total = posts;
    free(a);
    free(b);
    free(x);
    osp_graph_destroy(ref);
    osp_graph_destroy(opt);
    return live;
}

static const int64_t IMG[4] = {2, 3, 6, 5};

/* conv -> BN -> relu -> conv(no bias) -> identity -> BN -> clip(const) */
static osp_graph_t *build_conv_bn_chain(void) {
    int x;
    osp_graph_t *g = new_graph(4, IMG, &x);
    int y = act(g, OSP_OP_RELU, bn(g, conv3(g, x, 3, 4, true), 4), 0, 0);
    y = conv3(g, y, 4, 4, false);
    int id = val(g, NULL, -1, NULL);
    node(g, OSP_OP_IDENTITY, &y, 1, id);
    y = bn(g, id, 4);
    int lo = fconst(g, "lo", -0.25f), hi = fconst(g, "hi", 0.75f);
    int c = val(g, "y", -1, NULL);
    node(g, OSP_OP_CLIP, (int[]){y, lo, hi}, 3, c);
    set_output(g, c);
    return g;
}

static void test_conv_bn_chain(void **state) {
    (void)state;
    int posts;
    int live = check_same(build_conv_bn_chain, IMG, 4, &posts);
    assert_int_equal(live, 2); /* two convs */
    assert_int_equal(posts, 2); /* relu, clip */
}

/* ResNet basic block: y = relu(bn(conv(relu(bn(conv(x))))) + x'), where x'
 * is a conv of the input so that the sum also meets a conv on both sides;
 * plus the other activations on a second block. */
static osp_graph_t *build_residual(void) {
    int x;
    osp_graph_t *g = new_graph(4, IMG, &x);
    int s = act(g, OSP_OP_RELU, bn(g, conv3(g, x, 3, 4, false), 4), 0, 0);
    int a = act(g, OSP_OP_RELU, bn(g, conv3(g, s, 4, 4, false), 4), 0, 0);
    int b = bn(g, conv3(g, a, 4, 4, false), 4);
    int sum = val(g, NULL, -1, NULL);
    node(g, OSP_OP_ADD, (int[]){s, b}, 2, sum);
    int r = act(g, OSP_OP_RELU, sum, 0, 0);
    /* second block: both operands convs, then LeakyRelu */
    int c1 = conv3(g, r, 4, 4, true);
    int c2 = conv3(g, r, 4, 4, true);
    int sum2 = val(g, NULL, -1, NULL);
    node(g, OSP_OP_ADD, (int[]){c2, c1}, 2, sum2);
    int y = act(g, OSP_OP_LEAKY_RELU, sum2, 0.1f, 0);
    /* third: add(conv, r) followed by hardswish, hardsigmoid, sigmoid */
    int c3 = conv3(g, y, 4, 4, true);
    int sum3 = val(g, NULL, -1, NULL);
    node(g, OSP_OP_ADD, (int[]){y, c3}, 2, sum3);
    y = act(g, OSP_OP_HARD_SWISH, sum3, 0, 0);
    y = act(g, OSP_OP_HARD_SIGMOID, conv3(g, y, 4, 4, true), 0.2f, 0.5f);
    y = act(g, OSP_OP_SIGMOID, conv3(g, y, 4, 4, true), 0, 0);
    set_output(g, y);
    return g;
}

static void test_residual_blocks(void **state) {
    (void)state;
    int posts;
    int live = check_same(build_residual, IMG, 4, &posts);
    assert_int_equal(live, 8); /* only convs are left */
    /* relu, relu, (sum, relu), (sum, leaky), (sum, hswish), hsig, sig */
    assert_int_equal(posts, 10);
}

static const int64_t MAT[2] = {3, 5};

/* gemm -> leaky_relu -> matmul -> hardswish -> gemm(transB) -> sigmoid */
static osp_graph_t *build_linear(void) {
    int x;
    osp_graph_t *g = new_graph(2, MAT, &x);
    int64_t bd[2] = {5, 4}, cd[1] = {4}, md[2] = {4, 6}, td[2] = {2, 6};
    int b = rconst(g, NULL, 2, bd, -1, 1), c = rconst(g, NULL, 1, cd, -1, 1);
    int y = val(g, NULL, -1, NULL);
    int n = node(g, OSP_OP_GEMM, (int[]){x, b, c}, 3, y);
    g->nodes[n].p.gemm.alpha = 1.f;
    g->nodes[n].p.gemm.beta = 1.f;
    y = act(g, OSP_OP_LEAKY_RELU, y, 0.2f, 0);
    int m = rconst(g, NULL, 2, md, -1, 1);
    int z = val(g, NULL, -1, NULL);
    node(g, OSP_OP_MATMUL, (int[]){y, m}, 2, z);
    z = act(g, OSP_OP_HARD_SWISH, z, 0, 0);
    int t = rconst(g, NULL, 2, td, -1, 1);
    int o = val(g, NULL, -1, NULL);
    n = node(g, OSP_OP_GEMM, (int[]){z, t}, 2, o);
    g->nodes[n].p.gemm.alpha = 0.5f;
    g->nodes[n].p.gemm.beta = 1.f;
    g->nodes[n].p.gemm.trans_b = true;
    o = act(g, OSP_OP_SIGMOID, o, 0, 0);
    set_output(g, o);
    return g;
}

static void test_linear(void **state) {
    (void)state;
    int posts;
    int live = check_same(build_linear, MAT, 2, &posts);
    assert_int_equal(live, 3);
    assert_int_equal(posts, 3);
}

/* ---- a real model ------------------------------------------------------ */

static char *find_model(const char *name) {
    const char *env = getenv("OSPREY_MODELS");
    const char *src = getenv("OSP_SOURCE_DIR");
    char *p = NULL;
    if (env && *env && asprintf(&p, "%s/onnx/%s", env, name) >= 0) {
        if (access(p, R_OK) == 0)
            return p;
        free(p);
    }
    if (asprintf(&p, "%s/../shared/models/onnx/%s", src ? src : ".", name) >=
        0) {
        if (access(p, R_OK) == 0)
            return p;
        free(p);
    }
    return NULL;
}

static osp_graph_t *load_onnx(const char *path) {
    osp_err_t err = {0};
    uint8_t *buf;
    size_t len;
    if (osp_read_file(path, 1u << 30, &buf, &len, &err))
        fail_msg("%s", err.msg);
    osp_graph_t *g = osp_onnx_import(buf, len, &err);
    free(buf);
    if (!g)
        fail_msg("%s", err.msg);
    g->values[g->inputs[0]].dims[0] = 1; /* batch 1 */
    return g;
}

/* Runs a shared ONNX model before and after the passes; checks the
 * optimised graph's conv and post-op counts. */
static void check_model(const char *name, int want_convs, int want_posts,
                        int want_nodes) {
    char *path = find_model(name);
    if (!path) {
        fprintf(stderr, "skipping: %s not found in $OSPREY_MODELS/onnx or "
                        "../shared/models/onnx\n", name);
        skip();
        return;
    }
    osp_err_t err = {0};
    osp_graph_t *ref = load_onnx(path), *opt = load_onnx(path);
    free(path);
    if (osp_infer_shapes(ref, &err))
        fail_msg("%s", err.msg);
    if (osp__passes_load(opt, &err) || osp_infer_shapes(opt, &err) ||
        osp_fold_constants(opt, 0, &err) || osp__passes_plan(opt, &err))
        fail_msg("%s", err.msg);
    int convs = 0, posts = 0;
    for (int i = 0; i < opt->n_nodes; i++) {
        convs += opt->nodes[i].op == OSP_OP_CONV;
        posts += opt->nodes[i].n_post;
    }
    assert_int_equal(convs, want_convs);
    assert_int_equal(posts, want_posts);
    assert_int_equal(opt->n_nodes, want_nodes);
    size_t n_in = 3 * 224 * 224;
    float *x = malloc(n_in * sizeof(float));
    g_seed = 99;
    for (size_t i = 0; i < n_in; i++)
        x[i] = rnd(-2.f, 2.f);
    size_t na, nb;
    float *a = run_graph(ref, x, &na);
    float *b = run_graph(opt, x, &nb);
    assert_int_equal(na, 1000);
    assert_int_equal(nb, 1000);
    assert_close(a, b, na, 1e-3f);
    free(a);
    free(b);
    free(x);
    osp_graph_destroy(ref);
    osp_graph_destroy(opt);
}

/* 52 convs; 35 Clip(0,6) and 10 residual sums fused into them; left: the
 * convs, GlobalAveragePool, Flatten, Gemm. */
static void test_mobilenet_v2(void **state) {
    (void)state;
    check_model("mobilenet_v2.onnx", 52, 35 + 10, 52 + 3);
}

/* 26 convs each with its Relu; 8 Concat, 3 MaxPool, GAP, Flatten. */
static void test_squeezenet(void **state) {
    (void)state;
    check_model("squeezenet1_1.onnx", 26, 26, 26 + 8 + 3 + 2);
}

/* 53 convs; 49 Relu and 16 residual sums fused; MaxPool, GAP, Flatten, Gemm
 * left. */
static void test_resnet50(void **state) {
    (void)state;
    check_model("resnet50.onnx", 53, 49 + 16, 53 + 4);
}

/* A quantized TFLite model: the importer splits fused activations into
 * RELU/CLIP nodes, the activation pass folds them back as post-ops, which
 * the reference applies before requantizing (as TFLite does). Outputs are
 * uint8 probabilities; allow one quantization step of difference. */
static void test_tflite_quant(void **state) {
    (void)state;
    const char *env = getenv("OSPREY_MODELS");
    const char *src = getenv("OSP_SOURCE_DIR");
    char *path = NULL;
    const char *rel = "tflite/mobilenet_v1_0.25_128_quant.tflite";
    if (env && *env && asprintf(&path, "%s/%s", env, rel) >= 0 &&
        access(path, R_OK) != 0) {
        free(path);
        path = NULL;
    }
    if (!path && asprintf(&path, "%s/../shared/models/%s", src ? src : ".",
                          rel) >= 0 && access(path, R_OK) != 0) {
        free(path);
        path = NULL;
    }
    if (!path) {
        fprintf(stderr, "skipping: %s not found\n", rel);
        skip();
        return;
    }
    osp_err_t err = {0};
    uint8_t *buf;
    size_t len;
    if (osp_read_file(path, 1u << 30, &buf, &len, &err))
        fail_msg("%s", err.msg);
    free(path);
    osp_graph_t *ref = osp_tflite_import(buf, len, &err);
    osp_graph_t *opt = ref ? osp_tflite_import(buf, len, &err) : NULL;
    free(buf);
    if (!ref || !opt)
        fail_msg("%s", err.msg);
    ref->values[ref->inputs[0]].dims[0] = 1; /* batch 1 */
    opt->values[opt->inputs[0]].dims[0] = 1;
    int acts_before = 0;
    for (int i = 0; i < ref->n_nodes; i++)
        acts_before += ref->nodes[i].op == OSP_OP_CLIP ||
                       ref->nodes[i].op == OSP_OP_RELU;
    if (osp_infer_shapes(ref, &err))
        fail_msg("%s", err.msg);
    if (osp__passes_load(opt, &err) || osp_infer_shapes(opt, &err) ||
        osp_fold_constants(opt, 0, &err) || osp__passes_plan(opt, &err))
        fail_msg("%s", err.msg);
    int acts_after = 0, posts = 0;
    for (int i = 0; i < opt->n_nodes; i++) {
        acts_after += opt->nodes[i].op == OSP_OP_CLIP ||
                      opt->nodes[i].op == OSP_OP_RELU;
        posts += opt->nodes[i].n_post;
    }
    assert_true(acts_before > 0);
    assert_int_equal(acts_after, 0);
    assert_int_equal(posts, acts_before);
    const osp_value_t *iv = &ref->values[ref->inputs[0]];
    assert_int_equal(iv->dtype, OSP_DT_U8);
    size_t n_in = osp_value_numel(iv);
    uint8_t *x = malloc(n_in);
    g_seed = 5;
    for (size_t i = 0; i < n_in; i++)
        x[i] = (uint8_t)rnd(0.f, 255.99f);
    size_t na, nb;
    osp_dtype_t da, db;
    uint8_t *a = run_graph_any(ref, x, &na, &da);
    uint8_t *b = run_graph_any(opt, x, &nb, &db);
    /* The u8 softmax output is dequantized in the graph (scale 1/256):
     * compare in quantization steps. */
    assert_int_equal(da, OSP_DT_F32);
    assert_int_equal(db, OSP_DT_F32);
    assert_int_equal(na, nb);
    const float step = 1.f / 256.f;
    float worst = 0.f;
    for (size_t i = 0; i < na; i++)
        worst = OSP_MAX(worst, fabsf(((float *)a)[i] - ((float *)b)[i]) / step);
    assert_true(worst <= 1.001f);
    free(a);
    free(b);
    free(x);
    osp_graph_destroy(ref);
    osp_graph_destroy(opt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_bn_chain),
        cmocka_unit_test(test_residual_blocks),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_mobilenet_v2),
        cmocka_unit_test(test_squeezenet),
        cmocka_unit_test(test_resnet50),
        cmocka_unit_test(test_tflite_quant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
