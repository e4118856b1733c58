/* test_qconv_f32.c — the exact fp32-carrier quantized convolution path
 * (qconv_f32.c): its exactness bound, its requantization loop against
 * qmath.h's scalar TFLite arithmetic, and whole CONV / depthwise nodes with
 * uint8 weights with a non-zero zero point (TF1 models) and int8 per-channel
 * weights against the integer reference kernels — bit-identical outputs, and
 * the plan description must show which path ran (or that a layer whose
 * bound fails stayed on the reference kernel). The requantization of s32
 * accumulators (the exact oneDNN int8 path's hot loop, 16 channels per
 * AVX-512 vector with a masked tail) is compared element by element with
 * qmath.h's scalar TFLite arithmetic for channel counts around 16, u8 and
 * s8 outputs, with and without a fused clamp. */
#include <stdlib.h>

#include "engine_testutil.h"
#include "engine/engine_int.h"
#include "engine/int8/qconv_f32.h"
#include "engine/int8/qmath.h"

static void test_bound(void **state) {
    (void)state;
    /* two channels, per-tensor zw 100: Σ|w − 100| = 100+155+0 and 1+1+1 */
    const uint8_t w[6] = {0, 255, 100, 99, 101, 101};
    const int32_t z = 100;
    assert_int_equal(osp__fcq_bound(w, true, 2, 3, &z, 1, 255), 255 * 255);
    /* per-channel zero points, s8 */
    const int8_t ws[4] = {-128, 127, 5, -5};
    const int32_t zs[2] = {0, 5};
    assert_int_equal(osp__fcq_bound(ws, false, 2, 2, zs, 2, 10),
                     (128 + 127) * 10);
}

static void test_requant(void **state) {
    (void)state;
    enum { C = 5, P = 301 };
    int32_t bias[C] = {0, 7, -300, 12345, -1}, mult[C];
    int shift[C];
    const double real[C] = {0.0123, 0.5, 1.7e-4, 0.9999, 2.5};
    for (int o = 0; o < C; o++)
        osp_q_quantize_multiplier(real[o], &mult[o], &shift[o]);
    osp_fcq_req_t r = {.channels = C, .pixels = P, .bias = bias, .mult = mult,
                       .shift = shift, .zy = 17, .qmin = 3, .qmax = 250,
                       .y_u8 = true};
    float *acc = malloc(sizeof(float) * C * P);
    int32_t *acci = malloc(sizeof(int32_t) * C * P); /* same, as s32 */
    uint8_t *y = malloc(C * P), *y32 = malloc(C * P);
    uint32_t seed = 99;
    for (int i = 0; i < C * P; i++) /* exact integers up to ±2^24 */
        acc[i] = (float)(int32_t)(tu_rand(&seed) * (float)(1 << 24));
    acc[0] = 16777216.f;
    acc[1] = -16777215.f;
    for (int i = 0; i < C * P; i++)
        acci[i] = (int32_t)acc[i];
    /* scalar loop (m64 NULL), then the prepared multiply-add-shift form */
    int64_t m64[C], off64[C], sh64[C];
    for (int prepared = 0; prepared < 2; prepared++) {
        r.y_u8 = true;
        r.zy = 17;
        r.qmin = 3;
        r.qmax = 250;
        if (prepared) {
            osp__fcq_req_prepare(&r, (int64_t)1 << 24, m64, off64, sh64);
            assert_non_null(r.m64);
        }
        osp__fcq_requant(&r, acc, P, y);
        osp__fcq_requant_s32(&r, acci, P, y32);
        for (int i = 0; i < C * P; i++) {
            int o = i % C;
            int32_t v = osp_q_mul_by_multiplier_up((int32_t)acc[i] + bias[o],
                                                   mult[o], shift[o]) + 17;
            v = v < 3 ? 3 : v > 250 ? 250 : v;
            assert_int_equal(y[i], v);
            assert_int_equal(y32[i], v);
        }
        /* s8 output, widening */
        r.y_u8 = false;
        r.zy = -3;
        r.qmin = -128;
        r.qmax = 127;
        osp__fcq_requant(&r, acc, P, y);
        osp__fcq_requant_s32(&r, acci, P, y32);
        for (int i = 0; i < C * P; i++) {
            int o = i % C;
            int32_t v = osp_q_mul_by_multiplier_up((int32_t)acc[i] + bias[o],
                                                   mult[o], shift[o]) - 3;
            v = v < -128 ? -128 : v > 127 ? 127 : v;
            assert_int_equal((int8_t)y[i], v);
            assert_int_equal((int8_t)y32[i], v);
        }
    }
    /* a left shift that TFLite would saturate: not prepared (scalar) */
    osp__fcq_req_prepare(&r, (int64_t)1 << 30, m64, off64, sh64);
    assert_null(r.m64);
    const uint8_t xs[3] = {0, 128, 255};
    float f[3];
    osp__fcq_widen(xs, true, 128, 3, f);
    assert_true(f[0] == -128.f && f[1] == 0.f && f[2] == 127.f);
    free(acc);
    free(acci);
    free(y);
    free(y32);
}

/* osp__fcq_req_create + osp__fcq_requant_s32 against the scalar TFLite
 * arithmetic: every output, several channel counts (tails), u8 and s8,
 * clamped and full-range outputs, accumulators up to ±2^24. */
static void test_requant_s32(void **state) {
    (void)state;
    const int64_t chans[] = {16, 5, 24, 40, 96, 1001};
    uint32_t seed = 2024;
    for (size_t ci = 0; ci < sizeof chans / sizeof chans[0]; ci++) {
        const int64_t C = chans[ci];
        enum { P = 37 };
        const size_t n = (size_t)C * P;
        float sx = 0.023f, sy = 0.11f, *ws = malloc(sizeof(float) * (size_t)C);
        int32_t zx = 3, *bias = malloc(sizeof(int32_t) * (size_t)C);
        int32_t *zw = calloc((size_t)C, sizeof(int32_t));
        for (int64_t o = 0; o < C; o++) {
            ws[o] = 0.0005f + 0.01f * (tu_rand(&seed) + 1.f);
            bias[o] = (int32_t)(tu_rand(&seed) * 40000.f);
        }
        int32_t *acc = malloc(sizeof(int32_t) * n);
        uint8_t *y = malloc(n);
        assert_true(acc && y);
        for (int64_t i = 0; i < C * P; i++)
            acc[i] = (int32_t)(tu_rand(&seed) * (float)(1 << 23)) >> (i % 9);
        acc[0] = (1 << 24) - 1;
        acc[C * P - 1] = -(1 << 24) + 1;
        for (int mode = 0; mode < 4; mode++) {
            bool u8 = mode & 1, clamp = mode & 2;
            int32_t zy = u8 ? 121 : -17;
            int32_t qmin = u8 ? (clamp ? 121 : 0) : (clamp ? -17 : -128);
            int32_t qmax = u8 ? (clamp ? 200 : 255) : (clamp ? 90 : 127);
            osp_quant_t xq = {-1, 1, &sx, &zx}, yq = {-1, 1, &sy, &zy};
            osp_quant_t wq = {0, (int)C, ws, zw};
            osp_fcq_req_t *r = osp__fcq_req_create(&xq, &wq, &yq, C, false,
                                                   bias, qmin, qmax, u8, P,
                                                   (int64_t)1 << 24);
            assert_non_null(r);
            assert_non_null(r->m64);
            assert_non_null(r->off_eo); /* all shifts are right shifts */
            memset(y, 0xAB, n);
            osp__fcq_requant_s32(r, acc, P, y);
            size_t bad = 0;
            for (int64_t i = 0; i < C * P; i++) {
                int64_t o = i % C;
                int32_t v = osp_q_mul_by_multiplier_up(acc[i] + bias[o],
                                                       r->mult[o],
                                                       r->shift[o]) + zy;
                v = v < qmin ? qmin : v > qmax ? qmax : v;
                int32_t got = u8 ? y[i] : (int8_t)y[i];
                bad += got != v;
            }
            if (bad)
                printf("C %lld mode %d: %zu of %lld differ\n", (long long)C,
                       mode, bad, (long long)(C * P));
            assert_int_equal(bad, 0);
            free(r);
        }
        free(ws);
        free(bias);
        free(zw);
        free(acc);
        free(y);
    }
}

typedef struct qcase_s {
    const char *name;
    osp_dtype_t xdt, wdt; /* activations / weights */
    int64_t n, c, h, w;
    int64_t o, k, group;
    osp_window_t win;
    bool relu6, per_channel;
    int32_t zw;           /* weight zero point (per tensor) */
    uint8_t wlo;          /* weights drawn from [wlo, 255] (u8) */
    float sx, sy;
    int32_t zx, zy;
} qcase_t;

static osp_graph_t *build(const qcase_t *q) {
    osp_graph_t *g = osp_graph_create();
    assert_non_null(g);
    g->quantized = true;
    uint32_t seed = 4242;
    int x = tu_input_q(g, "x", q->xdt, 4, D(-1, q->c, q->h, q->w), q->sx, q->zx);
    int64_t wd[4] = {q->o, q->c / q->group, q->k, q->k};
    size_t wn = tu_numel(4, wd);
    int w = osp_graph_add_value(g, "w", q->wdt, 4, wd);
    uint8_t *wdata = malloc(wn);
    for (size_t i = 0; i < wn; i++) {
        float r = (tu_rand(&seed) + 1.f) / 2.f; /* [0, 1] */
        if (q->wdt == OSP_DT_U8)
            wdata[i] = (uint8_t)(q->wlo + (int)(r * (float)(255 - q->wlo)));
        else
            wdata[i] = (uint8_t)(int8_t)(int)((r * 2.f - 1.f) * 127.f);
    }
    osp_graph_set_const(g, w, wdata, wn);
    tu_qnode_t p = {q->o, q->per_channel, q->zw, q->xdt, q->sy, q->zy, q->relu6};
    int ni = tu_qnode(g, OSP_OP_CONV, x, w, &p, &seed);
    osp_node_t *n = &g->nodes[ni];
    n->p.conv.win = q->win;
    n->p.conv.group = q->group;
    return g;
}

/* Runs the case (oneDNN int8 off) with the fp32-carrier path on or off. */
static uint8_t *run(const qcase_t *q, bool fcq, const uint8_t *xin,
                    size_t *ny, char **desc) {
    osp_engine_tuning_t t = {.int8_dnnl = OSP_TUNE_OFF,
                             .fcq = fcq ? OSP_TUNE_AUTO : OSP_TUNE_OFF};
    return tu_run_bytes(build(q), &t, q->xdt, 4, D(q->n, q->c, q->h, q->w),
                        xin, q->name, ny, desc);
}

/* fcq path bit-identical to the reference; `engaged` says whether the
 * bound should have admitted the layer. */
static void check(const qcase_t *q, bool engaged) {
    uint8_t *xin = tu_bytes((size_t)(q->n * q->c * q->h * q->w), 777);
    size_t n1, n2;
    char *d1, *d2;
    uint8_t *ref = run(q, false, xin, &n1, &d1);
    uint8_t *got = run(q, true, xin, &n2, &d2);
    assert_int_equal(n1, n2);
    assert_non_null(strstr(d1, "exact fp32-carrier 0 ops"));
    assert_non_null(strstr(d1, "exact reference 1 ops"));
    if (engaged) {
        assert_non_null(strstr(d2, "exact fp32-carrier 1 ops"));
        assert_non_null(strstr(d2, "exact reference 0 ops"));
    } else {
        assert_non_null(strstr(d2, "exact fp32-carrier 0 ops"));
    }
    size_t ndiff;
    tu_q_steps(q->xdt, ref, got, n1, &ndiff);
    printf("%s: %zu outputs, %zu differ from the reference\n", q->name, n1,
           ndiff);
    assert_int_equal(ndiff, 0);
    free(xin);
    free(ref);
    free(got);
    free(d1);
    free(d2);
}

static void test_conv_u8(void **state) {
    (void)state;
    qcase_t q = {"conv u8 zw 131 3x3 s2 SAME relu6", OSP_DT_U8, OSP_DT_U8,
                 2, 3, 17, 17, 32, 3, 1, tu_win2(3, 2, 1, 0, 0, 0, 0), true,
                 false, 131, 0, 0.02f, 0.03f, 120, 3};
    q.win.auto_pad = OSP_PAD_SAME_UPPER;
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q, true);
}

static void test_dw_u8(void **state) {
    (void)state;
    qcase_t q = {"depthwise u8 zw 90 3x3 pad 1", OSP_DT_U8, OSP_DT_U8,
                 2, 32, 9, 9, 32, 3, 32, tu_win2(3, 1, 1, 1, 1, 1, 1), true,
                 false, 90, 0, 0.05f, 0.04f, 11, 0};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q, true);
}

static void test_pw_s8_per_channel(void **state) {
    (void)state;
    qcase_t q = {"1x1 s8 per-channel", OSP_DT_S8, OSP_DT_S8, 3, 40, 7, 7, 48,
                 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), false, true, 0, 0,
                 0.03f, 0.2f, -5, 7};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q, true);
}

/* 1x1 over 300 channels with weights in [250, 255] and zw 0: Σ|w| ≥ 75000,
 * times 255 > 2^24 — the bound fails, the node stays on the reference. */
static void test_bound_fails(void **state) {
    (void)state;
    qcase_t q = {"1x1 u8 bound > 2^24", OSP_DT_U8, OSP_DT_U8, 1, 300, 4, 4, 8,
                 1, 1, tu_win2(1, 1, 1, 0, 0, 0, 0), false, false, 0, 250,
                 0.03f, 50.f, 0, 0};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q, false);
}

int main(int argc, char **argv) {
    tu_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound),
        cmocka_unit_test(test_requant),
        cmocka_unit_test(test_requant_s32),
        cmocka_unit_test(test_conv_u8),
        cmocka_unit_test(test_dw_u8),
        cmocka_unit_test(test_pw_s8_per_channel),
        cmocka_unit_test(test_bound_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
