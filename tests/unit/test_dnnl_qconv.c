/* test_dnnl_qconv.c — quantized CONV / depthwise / FULLY_CONNECTED nodes on
 * oneDNN's int8 primitives (dnnl_q8conv.c).
 *
 * 1. The premise of the exact path, checked on oneDNN itself: an int8
 *    convolution with a source zero point and an s32 NHWC destination (no
 *    scales, bias or post-ops) returns exactly Σ (x − zx)·w — compared with
 *    a plain C loop for u8 and s8 sources, 3x3 strided with padding,
 *    depthwise, 1x1 and strided 1x1, including accumulators within 1.2% of
 *    the 2^24 admission bound.
 * 2. Whole nodes on small hand-built graphs with non-zero input and output
 *    zero points, padding, strides, per-channel weights and fused RELU6
 *    clamps: the default path (oneDNN int8 with s32 accumulators, then the
 *    exact fixed-point requantization) must be bit-identical to the integer
 *    reference kernels (ref_q8conv.c, TFLite's arithmetic); the older
 *    oneDNN-float requantization (tuning int8_requant onednn) within ±1
 *    step. --verbose's plan must show which path ran. Depthwise nodes
 *    (multiplier 1) run osprey's own kernel (q8_dwconv.c: f32 FMAs, exact
 *    under the same bound, requantized in registers), also bit-identical,
 *    and with q8_dw off the tiled oneDNN path again; so do 1x1
 *    convolutions with stride 1 on osprey's VNNI kernel (q8_pwconv.c,
 *    int32 sums; q8_pw off). A node whose weights
 *    break the bound must leave the oneDNN path (to the exact fp32-carrier
 *    path). On CPUs without AVX512-VNNI the oneDNN path is not taken (it
 *    would not be exact), which is checked too. */
#include <stdlib.h>

#include "engine_testutil.h"
#include "engine/engine_int.h"

/* oneDNN's int8 convolutions (and osprey's own int8 kernels, which run on
 * their path) are taken only where they are exact: VNNI (dnnl_q8conv.c), as
 * the engine sees the CPU under the ceiling. */
static bool vnni(void) { return osp__cpu_caps()->avx512_vnni; }

/* ---- 1. oneDNN's s32 accumulators against a C loop ---------------------- */

typedef struct acase_s {
    const char *name;
    bool x_u8;
    int64_t n, c, h, w, o, k, stride, pad, group;
    int32_t zx;
    bool extreme; /* weights ±127 and inputs at the range ends */
} acase_t;

static int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t p) {
    return (in + 2 * p - k) / s + 1;
}

static void check_acc(const acase_t *a) {
    uint32_t seed = 31337;
    int64_t oh = out_dim(a->h, a->k, a->stride, a->pad);
    int64_t ow = out_dim(a->w, a->k, a->stride, a->pad);
    int64_t cg = a->c / a->group, og = a->o / a->group;
    size_t nx = (size_t)(a->n * a->h * a->w * a->c);
    size_t nw = (size_t)(a->o * cg * a->k * a->k);
    size_t ny = (size_t)(a->n * oh * ow * a->o);
    uint8_t *x = malloc(nx);   /* NHWC, u8 or s8 bytes */
    int8_t *w = malloc(nw);    /* [o][cg][kh][kw] */
    int32_t *got = malloc(sizeof(int32_t) * ny), *want = malloc(sizeof(int32_t) * ny);
    assert_true(x && w && got && want);
    int32_t lo = a->x_u8 ? 0 : -128, hi = a->x_u8 ? 255 : 127;
    for (size_t i = 0; i < nx; i++) {
        float r = (tu_rand(&seed) + 1.f) / 2.f;
        int32_t v = a->extreme ? (r < 0.5f ? lo : hi)
                               : lo + (int32_t)(r * (float)(hi - lo));
        /* extreme: every 7th pixel all at the top of the range, so that
         * channels of all +127 / all −127 weights reach the bound */
        if (a->extreme && (i / (size_t)a->c) % 7 == 0)
            v = hi;
        x[i] = (uint8_t)v;
    }
    for (size_t i = 0; i < nw; i++) {
        size_t o = i / (size_t)(cg * a->k * a->k);
        if (a->extreme && o < 2)
            w[i] = o == 0 ? 127 : -127;
        else if (a->extreme)
            w[i] = tu_rand(&seed) < 0 ? -127 : 127;
        else
            w[i] = (int8_t)(int)(tu_rand(&seed) * 127.f);
    }
    /* the C loop: padding contributes 0 (pads with zx) */
    int32_t maxabs = 0;
    for (int64_t b = 0; b < a->n; b++)
        for (int64_t yy = 0; yy < oh; yy++)
            for (int64_t xx = 0; xx < ow; xx++)
                for (int64_t o = 0; o < a->o; o++) {
                    int64_t grp = o / og;
                    int64_t acc = 0;
                    for (int64_t ci = 0; ci < cg; ci++)
                        for (int64_t ky = 0; ky < a->k; ky++)
                            for (int64_t kx = 0; kx < a->k; kx++) {
                                int64_t iy = yy * a->stride - a->pad + ky;
                                int64_t ix = xx * a->stride - a->pad + kx;
                                if (iy < 0 || iy >= a->h || ix < 0 || ix >= a->w)
                                    continue;
                                size_t xi = (size_t)(((b * a->h + iy) * a->w + ix) *
                                                     a->c + grp * cg + ci);
                                int32_t xv = a->x_u8 ? (int32_t)x[xi]
                                                     : (int32_t)(int8_t)x[xi];
                                size_t wi = (size_t)(((o * cg + ci) * a->k + ky) *
                                                     a->k + kx);
                                acc += (int64_t)(xv - a->zx) * w[wi];
                            }
                    size_t yi = (size_t)(((b * oh + yy) * ow + xx) * a->o + o);
                    want[yi] = (int32_t)acc;
                    int32_t m = (int32_t)(acc < 0 ? -acc : acc);
                    maxabs = m > maxabs ? m : maxabs;
                }

    /* oneDNN, configured as dnnl_q8conv.c configures the exact path */
    dnnl_engine_t eng;
    dnnl_stream_t st;
    assert_int_equal(dnnl_engine_create(&eng, dnnl_cpu, 0), dnnl_success);
    assert_int_equal(dnnl_stream_create(&st, eng, dnnl_stream_default_flags),
                     dnnl_success);
    dnnl_memory_desc_t xmd, wmd_plain, wmd_any, ymd;
    dnnl_dims_t xd = {a->n, a->c, a->h, a->w}, yd = {a->n, a->o, oh, ow};
    dnnl_dims_t wd5 = {a->group, og, cg, a->k, a->k}, wd4 = {a->o, cg, a->k, a->k};
    int wr = a->group > 1 ? 5 : 4;
    dnnl_dims_t s2 = {a->stride, a->stride}, d2 = {0, 0}, p2 = {a->pad, a->pad};
    dnnl_memory_desc_init_by_tag(&xmd, 4, xd, a->x_u8 ? dnnl_u8 : dnnl_s8,
                                 dnnl_acdb);
    dnnl_memory_desc_init_by_tag(&ymd, 4, yd, dnnl_s32, dnnl_acdb);
    dnnl_memory_desc_init_by_tag(&wmd_plain, wr, wr == 5 ? wd5 : wd4, dnnl_s8,
                                 wr == 5 ? dnnl_abcde : dnnl_abcd);
    dnnl_memory_desc_init_by_tag(&wmd_any, wr, wr == 5 ? wd5 : wd4, dnnl_s8,
                                 dnnl_format_tag_any);
    /* right pad so that oneDNN's output size formula gives oh, ow */
    dnnl_dims_t pr = {(oh - 1) * a->stride + a->k - a->h - a->pad,
                      (ow - 1) * a->stride + a->k - a->w - a->pad};
    dnnl_convolution_desc_t cd;
    assert_int_equal(dnnl_dilated_convolution_forward_desc_init(
                         &cd, dnnl_forward_inference, dnnl_convolution_direct,
                         &xmd, &wmd_any, NULL, &ymd, s2, d2, p2, pr),
                     dnnl_success);
    dnnl_primitive_attr_t attr;
    assert_int_equal(dnnl_primitive_attr_create(&attr), dnnl_success);
    if (a->zx)
        assert_int_equal(dnnl_primitive_attr_set_zero_points(
                             attr, DNNL_ARG_SRC, 1, 0, &a->zx), dnnl_success);
    dnnl_primitive_desc_t pd;
    assert_int_equal(dnnl_primitive_desc_create(&pd, &cd, attr, eng, NULL),
                     dnnl_success);
    dnnl_primitive_attr_destroy(attr);
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(
        pd, dnnl_query_weights_md, 0);
    dnnl_memory_t mx, mwp, mw, my;
    assert_int_equal(dnnl_memory_create(&mx, &xmd, eng, x), dnnl_success);
    assert_int_equal(dnnl_memory_create(&mwp, &wmd_plain, eng, w), dnnl_success);
    assert_int_equal(dnnl_memory_create(&mw, wmd, eng, DNNL_MEMORY_ALLOCATE),
                     dnnl_success);
    assert_int_equal(dnnl_memory_create(&my, &ymd, eng, got), dnnl_success);
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t rp, cp;
    assert_int_equal(dnnl_reorder_primitive_desc_create(&rpd, &wmd_plain, eng,
                                                        wmd, eng, NULL),
                     dnnl_success);
    assert_int_equal(dnnl_primitive_create(&rp, rpd), dnnl_success);
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, mwp}, {DNNL_ARG_TO, mw}};
    assert_int_equal(dnnl_primitive_execute(rp, st, 2, ra), dnnl_success);
    assert_int_equal(dnnl_primitive_create(&cp, pd), dnnl_success);
    dnnl_exec_arg_t ca[3] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw},
                             {DNNL_ARG_DST, my}};
    assert_int_equal(dnnl_primitive_execute(cp, st, 3, ca), dnnl_success);
    assert_int_equal(dnnl_stream_wait(st), dnnl_success);
    size_t ndiff = 0;
    for (size_t i = 0; i < ny; i++)
        ndiff += got[i] != want[i];
    printf("%s (%s): %zu accumulators, max |acc| %d (2^24 = %d), %zu differ\n",
           a->name, impl, ny, maxabs, 1 << 24, ndiff);
    assert_int_equal(ndiff, 0);
    dnnl_primitive_destroy(cp);
    dnnl_primitive_destroy(rp);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(mx);
    dnnl_memory_destroy(mwp);
    dnnl_memory_destroy(mw);
    dnnl_memory_destroy(my);
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
    free(x);
    free(w);
    free(got);
    free(want);
}

static void test_acc_conv_u8(void **state) {
    (void)state;
    if (!vnni())
        skip();
    acase_t a = {"acc u8 3x3 s2 pad 1, zx 131", true, 2, 19, 15, 13, 24, 3, 2, 1,
                 1, 131, false};
    check_acc(&a);
}

static void test_acc_conv_s8(void **state) {
    (void)state;
    if (!vnni())
        skip();
    acase_t a = {"acc s8 3x3 s1 pad 1, zx -7", false, 2, 16, 9, 9, 32, 3, 1, 1, 1,
                 -7, false};
    check_acc(&a);
}

static void test_acc_dw(void **state) {
    (void)state;
    if (!vnni())
        skip();
    acase_t a = {"acc s8 depthwise 3x3 s2 pad 1, zx -128", false, 2, 48, 14, 14,
                 48, 3, 2, 1, 48, -128, true};
    check_acc(&a);
    acase_t b = {"acc u8 depthwise 3x3 s1 pad 1, zx 3", true, 1, 32, 10, 10, 32, 3,
                 1, 1, 32, 3, false};
    check_acc(&b);
}

static void test_acc_1x1_near_bound(void **state) {
    (void)state;
    if (!vnni())
        skip();
    /* Σ|w| = 512·127: |acc| reaches 512·127·255 = 16,581,120 = 2^24 − 1.2% */
    acase_t a = {"acc u8 1x1 512 ch, zx 0, ±127", true, 2, 512, 7, 7, 64, 1, 1, 0,
                 1, 0, true};
    check_acc(&a);
    acase_t b = {"acc s8 1x1 s2 512 ch, zx -128, ±127", false, 1, 512, 8, 8, 48,
                 1, 2, 0, 1, -128, true};
    check_acc(&b);
}

/* ---- 2. whole nodes through the engine ---------------------------------- */

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
    int wmag;             /* weights in [-wmag, wmag]; 0 = 127 */
} qcase_t;

static osp_graph_t *build(const qcase_t *q) {
    osp_graph_t *g = osp_graph_create();
    assert_non_null(g);
    g->quantized = true;
    uint32_t seed = 12345;
    int64_t xd[4] = {-1, q->c, q->h, q->w};
    int x = tu_value_q(g, "x", q->xdt, q->gemm ? 2 : 4, xd, q->sx, q->zx);
    g->values[x].is_input = true;
    g->inputs = malloc(sizeof(int));
    g->inputs[g->n_inputs++] = x;
    int64_t ci = q->c / q->group;
    int64_t wd[4] = {q->o, ci, q->k, q->k};
    int wr = q->gemm ? 2 : 4;
    size_t wn = q->gemm ? (size_t)(q->o * q->c) : tu_numel(4, wd);
    int w = osp_graph_add_value(g, "w", OSP_DT_S8, wr, wd);
    int8_t *wdata = malloc(wn);
    float mag = q->wmag ? (float)q->wmag : 127.f;
    for (size_t i = 0; i < wn; i++)
        wdata[i] = (int8_t)(tu_rand(&seed) * mag);
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
    int y = tu_value_q(g, "y", q->xdt, -1, NULL, q->sy, q->zy);
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

typedef enum qmode_e {
    MODE_REF,     /* integer reference kernels (no oneDNN int8, no
                     fp32-carrier) */
    MODE_EXACT,   /* the default paths: convs tiled with the requantization,
                     osprey's own kernels where they apply (fixed on: by
                     default the engine times them against oneDNN's int8
                     and may keep either, tune.c) */
    MODE_BANDS,   /* the same with 1 KiB tiles: one output row per band, so
                     first / middle / last band shapes all occur */
    MODE_UNTILED, /* q8_tile off: s32 for the whole batch, then the
                     requantization */
    MODE_ONEDNN,  /* oneDNN's own float requantization */
    MODE_NO_OWN,  /* q8_dw and q8_pw off: depthwise and 1x1 on the tiled
                     oneDNN path */
} qmode_t;

/* The engine tuning of each mode. */
static const osp_engine_tuning_t mode_tuning[] = {
    [MODE_REF] = {.int8_dnnl = OSP_TUNE_OFF, .fcq = OSP_TUNE_OFF},
    [MODE_EXACT] = {.q8_dw = OSP_TUNE_ON, .q8_pw = OSP_TUNE_ON},
    [MODE_BANDS] = {.q8_tile_kb = 1, .q8_dw = OSP_TUNE_ON, .q8_pw = OSP_TUNE_ON},
    [MODE_UNTILED] = {.q8_tile = OSP_TUNE_OFF, .q8_dw = OSP_TUNE_OFF,
                      .q8_pw = OSP_TUNE_OFF},
    [MODE_ONEDNN] = {.int8_requant = OSP_REQUANT_ONEDNN},
    [MODE_NO_OWN] = {.q8_dw = OSP_TUNE_OFF, .q8_pw = OSP_TUNE_OFF},
};

/* Runs the case in a mode; returns the output bytes (malloc'd) and the plan
 * description. */
static uint8_t *run(const qcase_t *q, qmode_t mode, const uint8_t *xin,
                    size_t *ny, char **desc) {
    osp_engine_opts_t o;
    osp_engine_opts_init(&o);
    o.threads = 2;
    o.tuning = mode_tuning[mode];
    osp_err_t err = {0};
    osp_engine_t *e = osp__engine_from_graph(build(q), &o, &err);
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
    return r;
}

/* Max |difference| in steps between two outputs; *ndiff counts them. */
static int steps(const qcase_t *q, const uint8_t *a, const uint8_t *b,
                 size_t n, size_t *ndiff) {
    int maxd = 0;
    *ndiff = 0;
    for (size_t i = 0; i < n; i++) {
        int u = q->xdt == OSP_DT_S8 ? (int8_t)a[i] : a[i];
        int v = q->xdt == OSP_DT_S8 ? (int8_t)b[i] : b[i];
        int d = abs(u - v);
        maxd = d > maxd ? d : maxd;
        *ndiff += d != 0;
    }
    return maxd;
}

/* on_dnnl: whether the case should run on oneDNN int8 (false: its weights
 * break the exact path's bound, so it must go to the fp32-carrier path). */
static void check_on(const qcase_t *q, bool on_dnnl) {
    size_t nx = (size_t)(q->n * q->c * (q->gemm ? 1 : q->h * q->w));
    uint8_t *xin = malloc(nx);
    uint32_t seed = 777;
    for (size_t i = 0; i < nx; i++)
        xin[i] = (uint8_t)(int)((tu_rand(&seed) + 1.f) * 127.9f);
    size_t n1, n2, n3, n4, n5, n6;
    char *d1, *d2, *d3, *d4, *d5, *d6;
    uint8_t *ref = run(q, MODE_REF, xin, &n1, &d1);
    uint8_t *got = run(q, MODE_EXACT, xin, &n2, &d2);
    uint8_t *flt = run(q, MODE_ONEDNN, xin, &n3, &d3);
    uint8_t *bands = run(q, MODE_BANDS, xin, &n4, &d4);
    uint8_t *untiled = run(q, MODE_UNTILED, xin, &n5, &d5);
    uint8_t *no_own = run(q, MODE_NO_OWN, xin, &n6, &d6);
    assert_int_equal(n1, n2);
    assert_int_equal(n1, n3);
    assert_int_equal(n1, n4);
    assert_int_equal(n1, n5);
    assert_int_equal(n1, n6);
    /* On the exact path: 1x1 convs (stride 1, no padding) run osprey's
     * int32 kernel whatever the bound; depthwise convs (multiplier 1)
     * osprey's f32 kernel, other convs oneDNN tiled — both only under the
     * 2^24 bound (bound_ok), else the exact fp32-carrier path. Told not to
     * use its own kernels (d6) or tiles (d5), the path falls back in the
     * same order. */
    bool bound_ok = on_dnnl;
    bool dw = !q->gemm && q->group == q->c && q->o == q->c;
    bool pw = !q->gemm && q->k == 1 && q->group == 1 &&
              q->win.stride[0] == 1 && q->win.stride[1] == 1;
    bool own = pw || (dw && bound_ok);
    if (vnni() && !q->gemm) {
        const char *want = pw   ? "osprey:q8-1x1("
                           : dw && bound_ok ? "osprey:q8-dw("
                           : bound_ok ? "osprey:q8-tiled("
                                      : "osprey:fcq-requant";
        assert_non_null(strstr(d2, want));
        assert_non_null(strstr(d4, want));
        assert_null(strstr(d6, "osprey:q8-dw("));
        assert_null(strstr(d6, "osprey:q8-1x1("));
        assert_non_null(strstr(d6, bound_ok ? "osprey:q8-tiled(" : "osprey:fcq-requant"));
        if (own)
            assert_non_null(strstr(d2, pw ? "osprey int8 1 ops (0 depthwise, 1 1x1)"
                                          : "osprey int8 1 ops (1 depthwise, 0 1x1)"));
        assert_null(strstr(d5, "osprey:q8-tiled("));
        if (bound_ok) {
            assert_non_null(strstr(d5, "osprey:q8-requant"));
            assert_non_null(strstr(d5, "exact requant 1)"));
        } else {
            assert_non_null(strstr(d5, "exact fp32-carrier 1 ops"));
        }
    }
    assert_non_null(strstr(d1, "int8 path: oneDNN int8 0 "));
    assert_non_null(strstr(d1, "exact reference 1 ops"));
    if (vnni()) { /* the float requantization has no bound */
        assert_non_null(strstr(d3, "int8 path: oneDNN int8 1 "));
        assert_non_null(strstr(d3, "exact requant 0)"));
    } else {
        assert_null(strstr(d3, "int8 path: oneDNN int8 1 "));
    }
    if (vnni() && own) {
        assert_non_null(strstr(d2, "int8 path: oneDNN int8 0 "));
    } else if (vnni() && bound_ok) {
        assert_non_null(strstr(d2, "int8 path: oneDNN int8 1 "));
        assert_non_null(strstr(d2, "exact requant 1)"));
    } else {
        assert_null(strstr(d2, "int8 path: oneDNN int8 1 "));
    }
    if (vnni() && !bound_ok && !own)
        assert_non_null(strstr(d2, "exact fp32-carrier 1 ops"));
    size_t nd_exact, nd_flt;
    int md_exact = steps(q, ref, got, n1, &nd_exact);
    int md_flt = steps(q, ref, flt, n1, &nd_flt);
    printf("%s: %zu outputs; default path: %zu differ (max %d steps); oneDNN "
           "float requant: %zu differ (max %d)\n",
           q->name, n1, nd_exact, md_exact, nd_flt, md_flt);
    assert_int_equal(nd_exact, 0);
    assert_true(md_flt <= 1);
    assert_memory_equal(ref, bands, n1);
    assert_memory_equal(ref, untiled, n1);
    assert_memory_equal(ref, no_own, n1);
    free(xin);
    free(no_own);
    free(d6);
    free(ref);
    free(got);
    free(flt);
    free(bands);
    free(untiled);
    free(d1);
    free(d2);
    free(d3);
    free(d4);
    free(d5);
}

static void check(const qcase_t *q) { check_on(q, true); }

static void test_conv_s8(void **state) {
    (void)state;
    qcase_t q = {"conv s8 3x3 s2 SAME relu6", OSP_DT_S8, 2, 3, 17, 17, 32, 3, 1,
                 tu_win2(3, 2, 1, 0, 0, 0, 0), true, true, false,
                 0.02f, 0.03f, -7, -20, 0};
    q.win.auto_pad = OSP_PAD_SAME_UPPER;
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

static void test_dw_s8(void **state) {
    (void)state;
    qcase_t q = {"depthwise s8 3x3 s1 pad 1 relu6", OSP_DT_S8, 2, 32, 9, 9, 32, 3, 32,
                 tu_win2(3, 1, 1, 1, 1, 1, 1), true, true, false,
                 0.05f, 0.04f, 11, -128, 0};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

static void test_dw_s8_stride2(void **state) {
    (void)state;
    qcase_t q = {"depthwise s8 3x3 s2 SAME", OSP_DT_S8, 3, 48, 15, 15, 48, 3, 48,
                 tu_win2(3, 2, 1, 0, 0, 0, 0), false, true, false,
                 0.05f, 0.01f, -128, 5, 0};
    q.win.auto_pad = OSP_PAD_SAME_UPPER;
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

/* osprey's depthwise kernel (q8_dwconv.c): 5x5 (its other register
 * specialisation), channels not a multiple of 16 (a masked block), a width
 * that leaves 1 pixel after the 4-pixel blocks, u8 in and out. */
static void test_dw_u8_5x5_tail(void **state) {
    (void)state;
    qcase_t q = {"depthwise u8 5x5 s1 pad 2, 40 ch, relu6", OSP_DT_U8, 2, 40, 13,
                 13, 40, 5, 40, tu_win2(5, 1, 1, 2, 2, 2, 2), true, true, false,
                 0.03f, 0.05f, 121, 7, 0};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

/* Any other kernel size (read per tap), dilation 2, 7 channels (one masked
 * block), per-tensor weights. */
static void test_dw_s8_7x7_dilated(void **state) {
    (void)state;
    qcase_t q = {"depthwise s8 7x7 dilation 2 pad 6, 7 ch", OSP_DT_S8, 2, 7, 11,
                 11, 7, 7, 7, tu_win2(7, 1, 2, 6, 6, 6, 6), false, false, false,
                 0.02f, 0.06f, -3, 9, 0};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

/* Stride 2 without padding (VALID), and MobileNetV2's widest depthwise
 * (960 channels at 7x7) with its clamps. */
static void test_dw_s8_valid_and_wide(void **state) {
    (void)state;
    qcase_t a = {"depthwise s8 3x3 s2 VALID, 96 ch", OSP_DT_S8, 2, 96, 16, 16, 96,
                 3, 96, tu_win2(3, 2, 1, 0, 0, 0, 0), false, true, false,
                 0.04f, 0.02f, 17, -60, 0};
    a.win.kernel[0] = a.win.kernel[1] = 0;
    check(&a);
    qcase_t b = {"depthwise s8 3x3 s1 pad 1, 960 ch", OSP_DT_S8, 3, 960, 7, 7, 960,
                 3, 960, tu_win2(3, 1, 1, 1, 1, 1, 1), true, true, false,
                 0.05f, 0.03f, -128, -128, 0};
    b.win.kernel[0] = b.win.kernel[1] = 0;
    check(&b);
}

static void test_pw_u8(void **state) {
    (void)state;
    qcase_t q = {"1x1 u8 per-tensor", OSP_DT_U8, 3, 32, 7, 7, 48, 1, 1,
                 tu_win2(1, 1, 1, 0, 0, 0, 0), false, false, false,
                 0.03f, 0.2f, 128, 120, 0};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

static void test_pw_s8_stride2(void **state) {
    (void)state;
    qcase_t q = {"1x1 s8 s2 per-channel", OSP_DT_S8, 2, 40, 9, 9, 24, 1, 1,
                 tu_win2(1, 2, 1, 0, 0, 0, 0), false, true, false,
                 0.03f, 0.1f, 3, -9, 0};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

/* osprey's 1x1 kernel (q8_pwconv.c): input channels not a multiple of 4
 * (a zero-padded last group), output channels not a multiple of 16 (a
 * masked block), a pixel count that leaves a tail after the 8-pixel
 * blocks, and a fused clamp; u8 in and out with a per-tensor scale. */
static void test_pw_tails(void **state) {
    (void)state;
    qcase_t a = {"1x1 s8 13 -> 40 ch, relu6", OSP_DT_S8, 3, 13, 5, 7, 40, 1, 1,
                 tu_win2(1, 1, 1, 0, 0, 0, 0), true, true, false,
                 0.04f, 0.05f, -100, -128, 0};
    a.win.kernel[0] = a.win.kernel[1] = 0;
    check(&a);
    qcase_t b = {"1x1 u8 6 -> 17 ch per-tensor", OSP_DT_U8, 1, 6, 3, 3, 17, 1, 1,
                 tu_win2(1, 1, 1, 0, 0, 0, 0), false, false, false,
                 0.02f, 0.01f, 255, 0, 0};
    b.win.kernel[0] = b.win.kernel[1] = 0;
    check(&b);
}

/* 1x1 over 960 channels (MobileNetV2's widest): large accumulators, output
 * scale small so the full range of the requantization is exercised. */
static void test_pw_s8_wide(void **state) {
    (void)state;
    qcase_t q = {"1x1 s8 960 ch per-channel", OSP_DT_S8, 2, 960, 5, 5, 40, 1, 1,
                 tu_win2(1, 1, 1, 0, 0, 0, 0), false, true, false,
                 0.05f, 0.9f, -128, -3, 60};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check(&q);
}

/* 255·Σ|w| ≥ 2^24: oneDNN's f32 epilogue might round such accumulators,
 * so a 3x3 conv must leave the oneDNN path; the fp32-carrier bound
 * (max|x − zx| = 128 for u8 with zx 127) still holds, so it runs there,
 * exactly. A 1x1 conv over the bound (1100 channels of ±~120 weights)
 * stays on osprey's 1x1 kernel, whose int32 sums need no bound. */
static void test_bound_fails(void **state) {
    (void)state;
    qcase_t q = {"1x1 u8 over the s32 bound", OSP_DT_U8, 1, 1100, 3, 3, 8, 1, 1,
                 tu_win2(1, 1, 1, 0, 0, 0, 0), false, true, false,
                 0.03f, 20.f, 127, 100, 0};
    q.win.kernel[0] = q.win.kernel[1] = 0;
    check_on(&q, false);
    qcase_t r = {"3x3 u8 over the s32 bound", OSP_DT_U8, 1, 160, 5, 5, 8, 3, 1,
                 tu_win2(3, 1, 1, 1, 1, 1, 1), false, true, false,
                 0.03f, 20.f, 127, 100, 0};
    r.win.kernel[0] = r.win.kernel[1] = 0;
    check_on(&r, false);
}

static void test_fc_s8(void **state) {
    (void)state;
    qcase_t q = {"fully connected s8", OSP_DT_S8, 4, 64, 1, 1, 40, 1, 1,
                 tu_win2(1, 1, 1, 0, 0, 0, 0), false, true, true,
                 0.03f, 0.1f, -5, 3, 0};
    check(&q);
}

static void test_fc_u8_per_tensor(void **state) {
    (void)state;
    qcase_t q = {"fully connected u8 per-tensor", OSP_DT_U8, 3, 300, 1, 1, 17, 1,
                 1, tu_win2(1, 1, 1, 0, 0, 0, 0), false, false, true,
                 0.02f, 0.5f, 120, 128, 0};
    check(&q);
}

int main(int argc, char **argv) {
    tu_args(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acc_conv_u8),
        cmocka_unit_test(test_acc_conv_s8),
        cmocka_unit_test(test_acc_dw),
        cmocka_unit_test(test_acc_1x1_near_bound),
        cmocka_unit_test(test_conv_s8),
        cmocka_unit_test(test_dw_s8),
        cmocka_unit_test(test_dw_s8_stride2),
        cmocka_unit_test(test_dw_u8_5x5_tail),
        cmocka_unit_test(test_dw_s8_7x7_dilated),
        cmocka_unit_test(test_dw_s8_valid_and_wide),
        cmocka_unit_test(test_pw_u8),
        cmocka_unit_test(test_pw_s8_stride2),
        cmocka_unit_test(test_pw_tails),
        cmocka_unit_test(test_pw_s8_wide),
        cmocka_unit_test(test_bound_fails),
        cmocka_unit_test(test_fc_s8),
        cmocka_unit_test(test_fc_u8_per_tensor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
