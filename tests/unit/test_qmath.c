/* test_qmath.c — TFLite-style requantization helpers (src/engine/int8/q8_math.h)
 * and the integer kernels' rounding rules, against hand-computed cases:
 * multiplier decomposition, saturation of the doubling high multiply and of
 * the activation range, rounding ties (the high multiply rounds half up, the
 * final shift away from zero, or half up in the optimized-kernel variant), and AVERAGE_POOL_2D's integer
 * average for uint8 and int8. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "engine/int8/q8_math.h"
#include "engine/ops/kernels.h"
#include "engine/ops/ref.h"

static void test_quantize_multiplier(void **state) {
    (void)state;
    int32_t m;
    int s;
    osp__q8_quantize_multiplier(0.5, &m, &s); /* 0.5 = 2^30·2^(0−31) */
    assert_int_equal(m, 1 << 30);
    assert_int_equal(s, 0);
    osp__q8_quantize_multiplier(1.0, &m, &s);
    assert_int_equal(m, 1 << 30);
    assert_int_equal(s, 1);
    osp__q8_quantize_multiplier(0.75, &m, &s);
    assert_int_equal(m, 1610612736); /* 0.75·2^31 */
    assert_int_equal(s, 0);
    osp__q8_quantize_multiplier(0.1, &m, &s); /* 0.8·2^-3; 0.8·2^31 = ...917.6 */
    assert_int_equal(m, 1717986918);
    assert_int_equal(s, -3);
    /* significand rounding up to 2^31 is halved, exponent bumped */
    osp__q8_quantize_multiplier(1.0 - 1.0 / 1099511627776.0, &m, &s);
    assert_int_equal(m, 1 << 30);
    assert_int_equal(s, 1);
    /* too small: zero; zero/negative: zero */
    osp__q8_quantize_multiplier(1.5e-10, &m, &s);
    assert_int_equal(m, 0);
    assert_int_equal(s, 0);
    osp__q8_quantize_multiplier(0.0, &m, &s);
    assert_int_equal(m, 0);
    /* too large: saturated */
    osp__q8_quantize_multiplier(1099511627776.0, &m, &s);
    assert_int_equal(m, INT32_MAX);
    assert_int_equal(s, 30);
}

static void test_srdhm(void **state) {
    (void)state;
    assert_int_equal(osp__q8_srdhm(INT32_MIN, INT32_MIN), INT32_MAX);
    assert_int_equal(osp__q8_srdhm(1 << 30, 1 << 30), 1 << 29);
    assert_int_equal(osp__q8_srdhm(1, 1 << 30), 1);   /* 0.5 → 1 */
    assert_int_equal(osp__q8_srdhm(-1, 1 << 30), 0);  /* −0.5 → 0 (up) */
    assert_int_equal(osp__q8_srdhm(-3, 1 << 30), -1); /* −1.5 → −1 */
    assert_int_equal(osp__q8_srdhm(3, 1 << 29), 1);   /* 0.75 */
    assert_int_equal(osp__q8_srdhm(1, 1 << 29), 0);   /* 0.25 */
    assert_int_equal(osp__q8_srdhm(INT32_MIN, INT32_MAX), -INT32_MAX);
}

static void test_rdbpot(void **state) {
    (void)state;
    assert_int_equal(osp__q8_rdbpot(5, 1), 3);   /* 2.5 → 3 */
    assert_int_equal(osp__q8_rdbpot(-5, 1), -3); /* −2.5 → −3 */
    assert_int_equal(osp__q8_rdbpot(4, 1), 2);
    assert_int_equal(osp__q8_rdbpot(-3, 2), -1); /* −0.75 */
    assert_int_equal(osp__q8_rdbpot(6, 2), 2);   /* 1.5 */
    assert_int_equal(osp__q8_rdbpot(-6, 2), -2); /* −1.5 */
    assert_int_equal(osp__q8_rdbpot(-7, 0), -7);
    assert_int_equal(osp__q8_rdbpot(INT32_MIN, 31), -1);
    assert_int_equal(osp__q8_rdbpot(INT32_MAX, 31), 1);
}

static void test_mul_by_multiplier(void **state) {
    (void)state;
    assert_int_equal(osp__q8_mul_by_multiplier(100, 1 << 30, 0), 50);
    /* 5 · 0.25 = 1.25, but double rounding gives 2 (2.5 → 3 → 1.5 → 2):
     * TFLite's documented behaviour, kept on purpose */
    assert_int_equal(osp__q8_mul_by_multiplier(5, 1 << 30, -1), 2);
    /* −1.25: −2.5 → −2 (high multiply rounds up) → −1 */
    assert_int_equal(osp__q8_mul_by_multiplier(-5, 1 << 30, -1), -1);
    /* tie at the final shift: −0.5 → −1 (away) vs 0 (half up) */
    assert_int_equal(osp__q8_mul_by_multiplier(-2, 1 << 30, -1), -1);
    assert_int_equal(osp__q8_mul_by_multiplier_up(-2, 1 << 30, -1), 0);
    assert_int_equal(osp__q8_mul_by_multiplier(2, 1 << 30, -1), 1);
    assert_int_equal(osp__q8_mul_by_multiplier_up(2, 1 << 30, -1), 1);
    assert_int_equal(osp__q8_mul_by_multiplier_up(-5, 1 << 30, -1), -1);
    /* left shift: 3 · 2 */
    assert_int_equal(osp__q8_mul_by_multiplier(3, 1 << 30, 2), 6);
    /* left shift saturates to INT32_MAX before the multiply */
    assert_int_equal(osp__q8_mul_by_multiplier(1 << 30, 1 << 30, 3), 1 << 30);
    assert_int_equal(osp__q8_mul_by_multiplier(-(1 << 30), 1 << 30, 3),
                     -(1 << 30));
    /* a real multiplier round trip: 1000 · 0.1 = 100 */
    int32_t m;
    int s;
    osp__q8_quantize_multiplier(0.1, &m, &s);
    assert_int_equal(osp__q8_mul_by_multiplier(1000, m, s), 100);
    assert_int_equal(osp__q8_mul_by_multiplier(-1000, m, s), -100);
}

static void test_act_range(void **state) {
    (void)state;
    int32_t lo, hi;
    /* RELU6 on scale 6/255, zp 0: the full uint8 range */
    osp__q8_act_range(0.f, 6.f, 6.f / 255.f, 0, 0, 255, &lo, &hi);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, 255);
    osp__q8_act_range(0.f, 6.f, 0.05f, 10, 0, 255, &lo, &hi);
    assert_int_equal(lo, 10);
    assert_int_equal(hi, 130);
    /* RELU on int8 with zp −128: nothing to clamp */
    osp__q8_act_range(0.f, INFINITY, 0.1f, -128, -128, 127, &lo, &hi);
    assert_int_equal(lo, -128);
    assert_int_equal(hi, 127);
    osp__q8_act_range(-1.f, 1.f, 0.1f, 0, -128, 127, &lo, &hi);
    assert_int_equal(lo, -10);
    assert_int_equal(hi, 10);
    /* bound on a tie rounds away from zero: 0.25 / 0.5 = 0.5 → 1 */
    osp__q8_act_range(0.25f, INFINITY, 0.5f, 3, 0, 255, &lo, &hi);
    assert_int_equal(lo, 4);
    /* bounds beyond the type saturate */
    osp__q8_act_range(-1000.f, 1000.f, 0.01f, 0, -128, 127, &lo, &hi);
    assert_int_equal(lo, -128);
    assert_int_equal(hi, 127);
}

/* One 2x2 average pool over a [1,1,2,2] quantized tensor. */
static int avg4(osp_dtype_t dt, const int32_t *v) {
    osp_graph_t *g = osp_graph_create();
    int64_t d[4] = {1, 1, 2, 2}, od[4] = {1, 1, 1, 1};
    int x = osp_graph_add_value(g, "x", dt, 4, d);
    int y = osp_graph_add_value(g, "y", dt, 4, od);
    osp_graph_set_quant(g, x, -1, 1, (float[]){0.5f}, (int32_t[]){0});
    osp_graph_set_quant(g, y, -1, 1, (float[]){0.5f}, (int32_t[]){0});
    int ni = osp_graph_add_node(g, OSP_OP_AVGPOOL, "p", &x, 1, &y, 1);
    osp_pool_params_t *p = &g->nodes[ni].p.pool;
    p->win.n_spatial = 2;
    p->win.kernel[0] = p->win.kernel[1] = 2;
    p->win.stride[0] = p->win.stride[1] = 1;
    p->win.dilation[0] = p->win.dilation[1] = 1;
    uint8_t xb[4], yb[1] = {0};
    for (int i = 0; i < 4; i++)
        xb[i] = (uint8_t)v[i];
    osp_tensor_t in = osp_value_tensor(&g->values[x]);
    osp_tensor_t out = osp_value_tensor(&g->values[y]);
    in.data = xb;
    out.data = yb;
    assert_int_equal(osp_ref_scratch_bytes(g, &g->nodes[ni], &in, &out), 0);
    osp_err_t err = {0};
    assert_int_equal(osp_ref_run_node(g, &g->nodes[ni], &in, &out, &err), 0);
    osp_graph_destroy(g);
    return dt == OSP_DT_U8 ? yb[0] : (int8_t)yb[0];
}

static void test_avgpool_rounding(void **state) {
    (void)state;
    assert_int_equal(avg4(OSP_DT_U8, (int32_t[]){1, 2, 2, 2}), 2); /* 1.75 */
    assert_int_equal(avg4(OSP_DT_U8, (int32_t[]){1, 1, 1, 2}), 1); /* 1.25 */
    assert_int_equal(avg4(OSP_DT_U8, (int32_t[]){1, 1, 2, 2}), 2); /* 1.5 */
    assert_int_equal(avg4(OSP_DT_U8, (int32_t[]){255, 255, 255, 254}), 255);
    /* int8 rounds ties away from zero */
    assert_int_equal(avg4(OSP_DT_S8, (int32_t[]){-1, -1, -2, -2}), -2);
    assert_int_equal(avg4(OSP_DT_S8, (int32_t[]){-1, -1, -1, -2}), -1);
    assert_int_equal(avg4(OSP_DT_S8, (int32_t[]){1, 1, 2, 2}), 2);
    assert_int_equal(avg4(OSP_DT_S8, (int32_t[]){-128, -128, -128, -128}),
                     -128);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_multiplier),
        cmocka_unit_test(test_srdhm),
        cmocka_unit_test(test_rdbpot),
        cmocka_unit_test(test_mul_by_multiplier),
        cmocka_unit_test(test_act_range),
        cmocka_unit_test(test_avgpool_rounding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
