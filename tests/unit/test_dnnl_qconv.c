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

/* ---- 1. oneDNN's s32 accumulators against a C loop ---------------------- */

typedef struct acase_s {
    const char *name;
    bool x_u8;
    int64_t n, c, h, w, o, k, stride, pad, group;
    int32_t zx;
    bool extreme; /* weights ±127 and inputs at the range ends */
} acase_t;

/* The group fixture: one oneDNN engine and stream for every accumulator
 * test (the engine tests of part 2 make their own). */
typedef struct dnnl_fx_s {
    dnnl_engine_t eng;
    dnnl_stream_t st;
} dnnl_fx_t;

static int group_setup(void **state) {
    dnnl_fx_t *fx = calloc(1, sizeof *fx);
    if (!fx || dnnl_engine_create(&fx->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&fx->st, fx->eng, dnnl_stream_default_flags) !=
            dnnl_success)
        return -1;
    *state = fx;
    return 0;
}

static int group_teardown(void **state) {
    dnnl_fx_t *fx = *state;
    dnnl_stream_destroy(fx->st);
    dnnl_engine_destroy(fx->eng);
    free(fx);
    return 0;
}

static int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t p) {
    return (in + 2 * p - k) / s + 1;
}

/* The case's input x (NHWC, u8 or s8 bytes, nx of them) and weights w
 * ([o][cg][kh][kw], nw of them). */
static void acc_inputs(const acase_t *a, uint8_t *x, size_t nx, int8_t *w,
                       size_t nw) {
    uint32_t seed = 31337;
    int64_t cg = a->c / a->group;
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
}

/* One accumulator of the C loop: Σ (x − zx)·w over the window of output
 * channel o at (b, yy, xx); padding contributes 0 (pads with zx). */
static int64_t acc_at(const acase_t *a, const uint8_t *x, const int8_t *w,
                      int64_t b, int64_t yy, int64_t xx, int64_t o) {
    int64_t cg = a->c / a->group, og = a->o / a->group;
    int64_t grp = o / og;
    int64_t acc = 0;
    for (int64_t ci = 0; ci < cg; ci++)
        for (int64_t ky = 0; ky < a->k; ky++)
            for (int64_t kx = 0; kx < a->k; kx++) {
                int64_t iy = yy * a->stride - a->pad + ky;
                int64_t ix = xx * a->stride - a->pad + kx;
                if (iy < 0 || iy >= a->h || ix < 0 || ix >= a->w)
                    continue;
                size_t xi = (size_t)(((b * a->h + iy) * a->w + ix) * a->c +
                                     grp * cg + ci);
                int32_t xv = a->x_u8 ? (int32_t)x[xi] : (int32_t)(int8_t)x[xi];
                size_t wi = (size_t)(((o * cg + ci) * a->k + ky) * a->k + kx);
                acc += (int64_t)(xv - a->zx) * w[wi];
            }
    return acc;
}

/* The C loop's accumulators into want (NHWC); returns max |acc|. */
static int32_t acc_reference(const acase_t *a, const uint8_t *x,
                             const int8_t *w, int32_t *want) {
    int64_t oh = out_dim(a->h, a->k, a->stride, a->pad);
    int64_t ow = out_dim(a->w, a->k, a->stride, a->pad);
    int32_t maxabs = 0;
    for (int64_t b = 0; b < a->n; b++)
        for (int64_t yy = 0; yy < oh; yy++)
            for (int64_t xx = 0; xx < ow; xx++)
                for (int64_t o = 0; o < a->o; o++) {
                    int64_t acc = acc_at(a, x, w, b, yy, xx, o);
                    size_t yi = (size_t)(((b * oh + yy) * ow + xx) * a->o + o);
                    want[yi] = (int32_t)acc;
                    int32_t m = (int32_t)(acc < 0 ? -acc : acc);
                    maxabs = m > maxabs ? m : maxabs;
                }
    return maxabs;
}

/* The memory descriptors of the case: source, plain weights and s32
 * destination (NHWC; oneDNN 3 handles, destroyed by the caller), and the
 * convolution's primitive descriptor with the source zero point (a
 * runtime argument: acc_onednn passes a->zx at execute), as dnnl_q8conv.c
 * configures the exact path. */
static dnnl_primitive_desc_t acc_conv_pd(const acase_t *a, dnnl_engine_t eng,
                                         dnnl_memory_desc_t *xmd,
                                         dnnl_memory_desc_t *wmd_plain,
                                         dnnl_memory_desc_t *ymd) {
    int64_t oh = out_dim(a->h, a->k, a->stride, a->pad);
    int64_t ow = out_dim(a->w, a->k, a->stride, a->pad);
    int64_t cg = a->c / a->group, og = a->o / a->group;
    dnnl_memory_desc_t wmd_any;
    dnnl_dims_t xd = {a->n, a->c, a->h, a->w}, yd = {a->n, a->o, oh, ow};
    dnnl_dims_t wd5 = {a->group, og, cg, a->k, a->k}, wd4 = {a->o, cg, a->k, a->k};
    int wr = a->group > 1 ? 5 : 4;
    dnnl_dims_t s2 = {a->stride, a->stride}, d2 = {0, 0}, p2 = {a->pad, a->pad};
    assert_int_equal(dnnl_memory_desc_create_with_tag(
                         xmd, 4, xd, a->x_u8 ? dnnl_u8 : dnnl_s8, dnnl_acdb),
                     dnnl_success);
    assert_int_equal(dnnl_memory_desc_create_with_tag(ymd, 4, yd, dnnl_s32,
                                                      dnnl_acdb),
                     dnnl_success);
    assert_int_equal(dnnl_memory_desc_create_with_tag(
                         wmd_plain, wr, wr == 5 ? wd5 : wd4, dnnl_s8,
                         wr == 5 ? dnnl_abcde : dnnl_abcd),
                     dnnl_success);
    assert_int_equal(dnnl_memory_desc_create_with_tag(
                         &wmd_any, wr, wr == 5 ? wd5 : wd4, dnnl_s8,
                         dnnl_format_tag_any),
                     dnnl_success);
    /* right pad so that oneDNN's output size formula gives oh, ow */
    dnnl_dims_t pr = {(oh - 1) * a->stride + a->k - a->h - a->pad,
                      (ow - 1) * a->stride + a->k - a->w - a->pad};
    dnnl_primitive_attr_t attr;
    assert_int_equal(dnnl_primitive_attr_create(&attr), dnnl_success);
    if (a->zx)
        assert_int_equal(dnnl_primitive_attr_set_zero_points_mask(
                             attr, DNNL_ARG_SRC, 0), dnnl_success);
    dnnl_primitive_desc_t pd;
    assert_int_equal(dnnl_convolution_forward_primitive_desc_create(
                         &pd, eng, dnnl_forward_inference,
                         dnnl_convolution_direct, *xmd, wmd_any, NULL, *ymd,
                         s2, d2, p2, pr, attr),
                     dnnl_success);
    dnnl_primitive_attr_destroy(attr);
    dnnl_memory_desc_destroy(wmd_any);
    return pd;
}

/* oneDNN's accumulators into got: the weights reordered into the layout
 * the primitive chose, then the convolution. Its implementation's name is
 * copied into impl. */
static void acc_onednn(const acase_t *a, const dnnl_fx_t *fx, uint8_t *x,
                       int8_t *w, int32_t *got, char *impl, size_t impl_cap) {
    dnnl_memory_desc_t xmd, wmd_plain, ymd;
    dnnl_primitive_desc_t pd = acc_conv_pd(a, fx->eng, &xmd, &wmd_plain, &ymd);
    const char *name = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name);
    snprintf(impl, impl_cap, "%s", name ? name : "?");
    const_dnnl_memory_desc_t wmd = dnnl_primitive_desc_query_md(
        pd, dnnl_query_weights_md, 0);
    dnnl_memory_t mx, mwp, mw, my, mzp = NULL;
    assert_int_equal(dnnl_memory_create(&mx, xmd, fx->eng, x), dnnl_success);
    assert_int_equal(dnnl_memory_create(&mwp, wmd_plain, fx->eng, w),
                     dnnl_success);
    assert_int_equal(dnnl_memory_create(&mw, wmd, fx->eng, DNNL_MEMORY_ALLOCATE),
                     dnnl_success);
    assert_int_equal(dnnl_memory_create(&my, ymd, fx->eng, got), dnnl_success);
    dnnl_memory_desc_t zmd;
    dnnl_dims_t one = {1};
    int32_t zx = a->zx;
    assert_int_equal(dnnl_memory_desc_create_with_tag(&zmd, 1, one, dnnl_s32,
                                                      dnnl_a),
                     dnnl_success);
    assert_int_equal(dnnl_memory_create(&mzp, zmd, fx->eng, &zx), dnnl_success);
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_t rp, cp;
    assert_int_equal(dnnl_reorder_primitive_desc_create(&rpd, wmd_plain,
                                                        fx->eng, wmd, fx->eng,
                                                        NULL),
                     dnnl_success);
    assert_int_equal(dnnl_primitive_create(&rp, rpd), dnnl_success);
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, mwp}, {DNNL_ARG_TO, mw}};
    assert_int_equal(dnnl_primitive_execute(rp, fx->st, 2, ra), dnnl_success);
    assert_int_equal(dnnl_primitive_create(&cp, pd), dnnl_success);
    dnnl_exec_arg_t ca[4] = {{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw},
                             {DNNL_ARG_DST, my},
                             {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, mzp}};
    assert_int_equal(dnnl_primitive_execute(cp, fx->st, a->zx ? 4 : 3, ca),
                     dnnl_success);
    assert_int_equal(dnnl_stream_wait(fx->st), dnnl_success);
    dnnl_primitive_destroy(cp);
    dnnl_primitive_destroy(rp);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(mx);
    dnnl_memory_destroy(mwp);
    dnnl_memory_destroy(mw);
    dnnl_memory_destroy(my);
    dnnl_memory_destroy(mzp);
    dnnl_memory_desc_destroy(zmd);
    dnnl_memory_desc_destroy(xmd);
    dnnl_memory_desc_destroy(wmd_plain);
    dnnl_memory_desc_destroy(ymd);
}

/* Every accumulator of oneDNN must equal the C loop's. */
static void check_acc(const acase_t *a, const dnnl_fx_t *fx) {
    int64_t oh = out_dim(a->h, a->k, a->stride, a->pad);
    int64_t ow = out_dim(a->w, a->k, a->stride, a->pad);
    int64_t cg = a->c / a->group;
    size_t nx = (size_t)(a->n * a->h * a->w * a->c);
    size_t nw = (size_t)(a->o * cg * a->k * a->k);
    size_t ny = (size_t)(a->n * oh * ow * a->o);
    uint8_t *x = malloc(nx);   /* NHWC, u8 or s8 bytes */
    int8_t *w = malloc(nw);    /* [o][cg][kh][kw] */
    int32_t *got = malloc(sizeof(int32_t) * ny), *want = malloc(sizeof(int32_t) * ny);
    assert_true(x && w && got && want);
    acc_inputs(a, x, nx, w, nw);
    int32_t maxabs = acc_reference(a, x, w, want);
    char impl[128];
    acc_onednn(a, fx, x, w, got, impl, sizeof impl);
    size_t ndiff = 0;
    for (size_t i = 0; i < ny; i++)
        ndiff += got[i] != want[i];
    printf("%s (%s): %zu accumulators, max |acc| %d (2^24 = %d), %zu differ\n",
           a->name, impl, ny, maxabs, 1 << 24, ndiff);
    assert_int_equal(ndiff, 0);
    free(x);
    free(w);
    free(got);
    free(want);
}

static void test_acc_conv_u8(void **state) {
    if (!tu_vnni())
        skip();
    acase_t a = {"acc u8 3x3 s2 pad 1, zx 131", true, 2, 19, 15, 13, 24, 3, 2, 1,
                 1, 131, false};
    check_acc(&a, *state);
}

static void test_acc_conv_s8(void **state) {
    if (!tu_vnni())
        skip();
    acase_t a = {"acc s8 3x3 s1 pad 1, zx -7", false, 2, 16, 9, 9, 32, 3, 1, 1, 1,
                 -7, false};
    check_acc(&a, *state);
}

static void test_acc_dw(void **state) {
    if (!tu_vnni())
        skip();
    acase_t a = {"acc s8 depthwise 3x3 s2 pad 1, zx -128", false, 2, 48, 14, 14,
                 48, 3, 2, 1, 48, -128, true};
    check_acc(&a, *state);
    acase_t b = {"acc u8 depthwise 3x3 s1 pad 1, zx 3", true, 1, 32, 10, 10, 32, 3,
                 1, 1, 32, 3, false};
    check_acc(&b, *state);
}

static void test_acc_1x1_near_bound(void **state) {
    if (!tu_vnni())
        skip();
    /* Σ|w| = 512·127: |acc| reaches 512·127·255 = 16,581,120 = 2^24 − 1.2% */
    acase_t a = {"acc u8 1x1 512 ch, zx 0, ±127", true, 2, 512, 7, 7, 64, 1, 1, 0,
                 1, 0, true};
    check_acc(&a, *state);
    acase_t b = {"acc s8 1x1 s2 512 ch, zx -128, ±127", false, 1, 512, 8, 8, 48,
                 1, 2, 0, 1, -128, true};
    check_acc(&b, *state);
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
    int x = tu_input_q(g, "x", q->xdt, q->gemm ? 2 : 4, D(-1, q->c, q->h, q->w),
                       q->sx, q->zx);
    int64_t wd[4] = {q->o, q->c / q->group, q->k, q->k};
    size_t wn = q->gemm ? (size_t)(q->o * q->c) : tu_numel(4, wd);
    int w = osp_graph_add_value(g, "w", OSP_DT_S8, q->gemm ? 2 : 4, wd);
    int8_t *wdata = malloc(wn);
    float mag = q->wmag ? (float)q->wmag : 127.f;
    for (size_t i = 0; i < wn; i++)
        wdata[i] = (int8_t)(tu_rand(&seed) * mag);
    osp_graph_set_const(g, w, wdata, wn);
    tu_qnode_t p = {q->o, q->per_channel, 0, q->xdt, q->sy, q->zy, q->relu6};
    int ni = tu_qnode(g, q->gemm ? OSP_OP_GEMM : OSP_OP_CONV, x, w, &p, &seed);
    osp_node_t *n = &g->nodes[ni];
    if (q->gemm) {
        n->p.gemm = (osp_gemm_params_t){1.f, 1.f, false, true};
    } else {
        n->p.conv.win = q->win;
        n->p.conv.group = q->group;
    }
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
    MODE_COUNT
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

/* A case's outputs and plan descriptions in every mode (malloc'd). */
typedef struct qruns_s {
    uint8_t *out[MODE_COUNT];
    char *desc[MODE_COUNT];
    size_t n; /* output bytes, the same in every mode */
} qruns_t;

/* Runs the case in every mode on the same input. */
static void run_modes(const qcase_t *q, qruns_t *r) {
    size_t nx = (size_t)(q->n * q->c * (q->gemm ? 1 : q->h * q->w));
    uint8_t *xin = tu_bytes(nx, 777);
    for (int m = 0; m < MODE_COUNT; m++) {
        size_t n;
        r->out[m] = tu_run_bytes(build(q), &mode_tuning[m], q->xdt,
                                 q->gemm ? 2 : 4, D(q->n, q->c, q->h, q->w),
                                 xin, q->name, &n, &r->desc[m]);
        if (m == 0)
            r->n = n;
        assert_int_equal(n, r->n);
    }
    free(xin);
}

static void free_runs(qruns_t *r) {
    for (int m = 0; m < MODE_COUNT; m++) {
        free(r->out[m]);
        free(r->desc[m]);
    }
}

/* The path each mode's plan must show. On the exact path: 1x1 convs
 * (stride 1, no padding) run osprey's int32 kernel whatever the bound;
 * depthwise convs (multiplier 1) osprey's f32 kernel, other convs oneDNN
 * tiled — both only under the 2^24 bound (bound_ok), else the exact
 * fp32-carrier path. Told not to use its own kernels (no_own) or tiles
 * (untiled), the path falls back in the same order. */
static void check_plans(const qcase_t *q, const qruns_t *r, bool bound_ok) {
    const char *d_ref = r->desc[MODE_REF], *d_exact = r->desc[MODE_EXACT];
    const char *d_flt = r->desc[MODE_ONEDNN], *d_bands = r->desc[MODE_BANDS];
    const char *d_untiled = r->desc[MODE_UNTILED];
    const char *d_no_own = r->desc[MODE_NO_OWN];
    bool dw = !q->gemm && q->group == q->c && q->o == q->c;
    bool pw = !q->gemm && q->k == 1 && q->group == 1 &&
              q->win.stride[0] == 1 && q->win.stride[1] == 1;
    bool own = pw || (dw && bound_ok);
    if (tu_vnni() && !q->gemm) {
        const char *want = pw   ? "osprey:q8-1x1("
                           : dw && bound_ok ? "osprey:q8-dw("
                           : bound_ok ? "osprey:q8-tiled("
                                      : "osprey:fcq-requant";
        assert_non_null(strstr(d_exact, want));
        assert_non_null(strstr(d_bands, want));
        assert_null(strstr(d_no_own, "osprey:q8-dw("));
        assert_null(strstr(d_no_own, "osprey:q8-1x1("));
        assert_non_null(strstr(d_no_own, bound_ok ? "osprey:q8-tiled("
                                                  : "osprey:fcq-requant"));
        if (own)
            assert_non_null(strstr(d_exact, pw ? "osprey int8 1 ops (0 depthwise, 1 1x1)"
                                               : "osprey int8 1 ops (1 depthwise, 0 1x1)"));
        assert_null(strstr(d_untiled, "osprey:q8-tiled("));
        if (bound_ok) {
            assert_non_null(strstr(d_untiled, "osprey:q8-requant"));
            assert_non_null(strstr(d_untiled, "exact requant 1)"));
        } else {
            assert_non_null(strstr(d_untiled, "exact fp32-carrier 1 ops"));
        }
    }
    assert_non_null(strstr(d_ref, "int8 path: oneDNN int8 0 "));
    assert_non_null(strstr(d_ref, "exact reference 1 ops"));
    if (tu_vnni()) { /* the float requantization has no bound */
        assert_non_null(strstr(d_flt, "int8 path: oneDNN int8 1 "));
        assert_non_null(strstr(d_flt, "exact requant 0)"));
    } else {
        assert_null(strstr(d_flt, "int8 path: oneDNN int8 1 "));
    }
    if (tu_vnni() && own) {
        assert_non_null(strstr(d_exact, "int8 path: oneDNN int8 0 "));
    } else if (tu_vnni() && bound_ok) {
        assert_non_null(strstr(d_exact, "int8 path: oneDNN int8 1 "));
        assert_non_null(strstr(d_exact, "exact requant 1)"));
    } else {
        assert_null(strstr(d_exact, "int8 path: oneDNN int8 1 "));
    }
    if (tu_vnni() && !bound_ok && !own)
        assert_non_null(strstr(d_exact, "exact fp32-carrier 1 ops"));
}

/* on_dnnl: whether the case should run on oneDNN int8 (false: its weights
 * break the exact path's bound, so it must go to the fp32-carrier path).
 * Every mode but oneDNN's float requantization (within ±1 step) must be
 * bit-identical to the reference. */
static void check_on(const qcase_t *q, bool on_dnnl) {
    qruns_t r;
    run_modes(q, &r);
    check_plans(q, &r, on_dnnl);
    const uint8_t *ref = r.out[MODE_REF];
    size_t nd_exact, nd_flt;
    int md_exact = tu_q_steps(q->xdt, ref, r.out[MODE_EXACT], r.n, &nd_exact);
    int md_flt = tu_q_steps(q->xdt, ref, r.out[MODE_ONEDNN], r.n, &nd_flt);
    printf("%s: %zu outputs; default path: %zu differ (max %d steps); oneDNN "
           "float requant: %zu differ (max %d)\n",
           q->name, r.n, nd_exact, md_exact, nd_flt, md_flt);
    assert_int_equal(nd_exact, 0);
    assert_true(md_flt <= 1);
    assert_memory_equal(ref, r.out[MODE_BANDS], r.n);
    assert_memory_equal(ref, r.out[MODE_UNTILED], r.n);
    assert_memory_equal(ref, r.out[MODE_NO_OWN], r.n);
    free_runs(&r);
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
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
