/* test_dnnl_qconv.c — quantized CONV / depthwise / FULLY_CONNECTED nodes on
 * oneDNN's int8 primitives (dnnl_qconv.c) against the exact integer
 * reference kernels (ref_qconv.c) on small hand-built graphs with non-zero
 * input and output zero points, padding, strides, per-channel weights and
 * fused RELU6 clamps: every output element within ±1 quantization step, and
 * --verbose's plan must show which path ran. On CPUs without AVX512-VNNI the
 * oneDNN path is not taken (it would not be exact), which is checked too. */
#include <stdlib.h>

#include "engine_testutil.h"
#include "engine/engine_int.h"

typedef struct qcase_s {
    const char *name;
    osp_dtype_t xdt;      /* activations: S8 or U8 */
    int64_t n, c, h, w;   /* input */
    int64_t o, k, group;  /* output channels, kernel, groups */
    osp_window_t win;
    bool relu6;
    bool per_channel;
    bool gemm;            /* FULLY_CONNECTED: x [n, c], w [o, c] */
    float sx, sy;
    int32_t zx, zy;
} qcase_t;

static int add_q(osp_graph_t *g, const char *name, osp_dtype_t dt, int rank,
                 const int64_t *dims, float scale, int32_t zp) {
    int v = osp_graph_add_value(g, name, dt, rank, dims);
    assert_true(v >= 0);
    assert_int_equal(osp_graph_set_quant(g, v, -1, 1, &scale, &zp), 0);
    return v;
}

static osp_graph_t *build(const qcase_t *q) {
    osp_graph_t *g = osp_graph_create();
    assert_non_null(g);
    g->quantized = true;
    uint32_t seed = 12345;
    int64_t xd[4] = {-1, q->c, q->h, q->w};
    int x = add_q(g, "x", q->xdt, q->gemm ? 2 : 4, xd, q->sx, q->zx);
    g->values[x].is_input = true;
    g->inputs = malloc(sizeof(int));
    g->inputs[g->n_inputs++] = x;
    int64_t ci = q->c / q->group;
    int64_t wd[4] = {q->o, ci, q->k, q->k};
    int wr = q->gemm ? 2 : 4;
    size_t wn = q->gemm ? (size_t)(q->o * q->c) : tu_numel(4, wd);
    int w = osp_graph_add_value(g, "w", OSP_DT_S8, wr, wd);
    int8_t *wdata = malloc(wn);
    for (size_t i = 0; i < wn; i++)
        wdata[i] = (int8_t)(tu_rand(&seed) * 127.f);
    osp_graph_set_const(g, w, wdata, wn);
    int nch = q->per_channel ? (int)q->o : 1;
    float *ws = malloc(sizeof(float) * (size_t)nch);
    int32_t *wz = calloc((size_t)nch, sizeof(int32_t));
    for (int i = 0; i < nch; i++)
        ws[i] = 0.004f + 0.003f * (tu_rand(&seed) + 1.f);
    assert_int_equal(osp_graph_set_quant(g, w, q->per_channel ? 0 : -1, nch, ws, wz), 0);
    int b = osp_graph_add_value(g, "b", OSP_DT_S32, 1, D(q->o));
    int32_t *bd = malloc(sizeof(int32_t) * (size_t)q->o);
    for (int64_t i = 0; i < q->o; i++)
        bd[i] = (int32_t)(tu_rand(&seed) * 3000.f);
    osp_graph_set_const(g, b, bd, sizeof(int32_t) * (size_t)q->o);
    int y = add_q(g, "y", q->xdt, -1, NULL, q->sy, q->zy);
    int in[3] = {x, w, b};
    int ni = osp_graph_add_node(g, q->gemm ? OSP_OP_GEMM : OSP_OP_CONV, "q", in,
                                3, &y, 1);
    assert_true(ni >= 0);
    osp_node_t *n = &g->nodes[ni];
    if (q->gemm) {
        n->p.gemm = (osp_gemm_params_t){1.f, 1.f, false, true};
    } else {
        n->p.conv.win = q->win;
        n->p.conv.group = q->group;
    }
    if (q->relu6) {
        n->n_post = 1;
        n->post[0] = (osp_post_op_t){OSP_POST_ACT, OSP_ACT_CLIP, 0.f, 6.f, 0};
    }
    tu_output(g, y);
    free(ws);
    free(wz);
    return g;
}

/* Runs the case with the oneDNN int8 path on or off; returns the output
 * bytes (malloc'd) and the plan description. */
static uint8_t *run(const qcase_t *q, bool dnnl, const uint8_t *xin,
                    size_t *ny, char **desc) {
    setenv("OSP_ENGINE_INT8_DNNL", dnnl ? "1" : "0", 1);
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 2;
    osp_err_t err = {0};
    osp_engine_t *e = osp_engine_from_graph(build(q), &o, &err);
    assert_non_null(e);
    osp_tensor_t x = {.dtype = q->xdt, .rank = q->gemm ? 2 : 4,
                      .data = (void *)xin};
    x.dims[0] = q->n;
    x.dims[1] = q->c;
    x.dims[2] = q->h;
    x.dims[3] = q->w;
    osp_tensor_t out;
    int rc = osp_engine_run(e, &x, 1, &out, 1, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", q->name, err.msg);
    assert_int_equal(rc, 0);
    *ny = osp_tensor_numel(&out);
    uint8_t *r = malloc(*ny);
    memcpy(r, out.data, *ny);
    *desc = strdup(osp_engine_describe(e));
    osp_engine_destroy(e);
    unsetenv("OSP_ENGINE_INT8_DNNL");
    return r;
}

static bool vnni(void) {
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_vnni) == dnnl_cpu_isa_avx512_core_vnni;
}

static void check(const qcase_t *q) {
    size_t nx = (size_t)(q->n * q->c * (q->gemm ? 1 : q->h * q->w));
    uint8_t *xin = malloc(nx);
    uint32_t seed = 777;
    for (size_t i = 0; i < nx; i++)
        xin[i] = (uint8_t)(int)((tu_rand(&seed) + 1.f) * 127.9f);
    size_t n1, n2;
    char *d1, *d2;
    uint8_t *ref = run(q, false, xin, &n1, &d1);
    uint8_t *got = run(q, true, xin, &n2, &d2);
    assert_int_equal(n1, n2);
    assert_null(strstr(d1, "avx512_core_vnni"));
    if (vnni())
        assert_non_null(strstr(d2, "int8 path: oneDNN int8 1 "));
    else
        assert_null(strstr(d2, "int8 path: oneDNN int8 1 "));
    int maxd = 0;
    size_t ndiff = 0;
    for (size_t i = 0; i < n1; i++) {
        int a = q->xdt == OSP_DT_S8 ? (int8_t)ref[i] : ref[i];
        int b = q->xdt == OSP_DT_S8 ? (int8_t)got[i] : got[i];
        int d = abs(a - b);
        maxd = d > maxd ? d : maxd;
        ndiff += d != 0;
    }
    printf("%s: %zu outputs, %zu differ, max %d steps\n", q->name, n1, ndiff,
           maxd);
    assert_true(maxd <= 1);
    free(xin);
    free(ref);
    free(got);
    free(d1);
    free(d2);
}

static void test_conv_s8(void **state) {
    (void)state;
    qcase_t q = {"conv s8 3x3 s2 SAME relu6", OSP_DT_S8, 2, 3, 17, 17, 32, 3, 1,
                 tu_win2(3, 2, 1, 0, 0, 0, 0), true, true, false,
                 0.02f, 0.03f, -7, -20};
    q.win.auto_pad = OSP_PAD_SAME_UPPER;
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

static void test_dw_s8(void **state) {
    (void)state;
    qcase_t q = {"depthwise s8 3x3 s1 pad 1 relu6", OSP_DT_S8, 2, 32, 9, 9, 32, 3, 32,
                 tu_win2(3, 1, 1, 1, 1, 1, 1), true, true, false,
                 0.05f, 0.04f, 11, -128};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

static void test_pw_u8(void **state) {
    (void)state;
    qcase_t q = {"1x1 u8 per-tensor", OSP_DT_U8, 3, 32, 7, 7, 48, 1, 1,
                 tu_win2(1, 1, 1, 0, 0, 0, 0), false, false, false,
                 0.03f, 0.2f, 128, 120};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

static void test_fc_s8(void **state) {
    (void)state;
    qcase_t q = {"fully connected s8", OSP_DT_S8, 4, 64, 1, 1, 40, 1, 1,
                 tu_win2(1, 1, 1, 0, 0, 0, 0), false, true, true,
                 0.03f, 0.1f, -5, 3};
    check(&q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_s8),
        cmocka_unit_test(test_dw_s8),
        cmocka_unit_test(test_pw_u8),
        cmocka_unit_test(test_fc_s8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
