/* f32_wino.c — osprey's own fp32 Winograd convolution F(4x4, 3x3) (AVX-512).
 *
 * Why: oneDNN 2.x had fp32 Winograd kernels on AVX-512 (jit_wino_4x3) and
 * the engine measured them against direct convolutions at load; oneDNN 3.x
 * has none on x64 (ADR 0048), which made ResNet50 fp32 13% slower on a CPU
 * without AMX. This is the same algorithm as an osprey step, measured by
 * the tuner as before as the "winograd" candidate (tune.c; docs/engine.md,
 * "Winograd"; ADR 0051).
 *
 * What: a 3x3 convolution with stride 1, dilation 1 and one group computes
 * each 4x4 output tile from a 6x6 input tile d as Y = Aᵀ [(G g Gᵀ) ⊙
 * (Bᵀ d B)] A (Lavin and Gray, 2015): per tile and channel pair 36 products
 * instead of 144 multiply-adds. Over channels the elementwise products are,
 * for each of the 36 positions, one matrix product M = V·U (tiles × input
 * channels times input channels × output channels).
 *
 * How:
 * - the weights are transformed once at plan build, U = G g Gᵀ in double
 *   precision, stored as [36][output panel][input channel][≤ 64 outputs]
 *   and shared through the engine's weight cache (plans of every batch
 *   size, lanes);
 * - activations are channel-blocked nChw16c, one AVX-512 vector per pixel
 *   (the engine's blocked layout; channel counts that are not multiples of
 *   16 use its zero-padded form). The producer's layout is reordered to it
 *   when it differs;
 * - a run splits the batch's tiles into blocks. Per block the inputs are
 *   transformed (V = Bᵀ d B, 16 channels at a time) into the scratch, the
 *   36 matrix products run with a 6 tiles × 64 channels register-blocked
 *   kernel (input channels in shares that keep their part of U in L1, the
 *   next part of U fetched into L2 meanwhile), and the products are
 *   transformed back (Y = Aᵀ M A) with the bias and the node's post-ops
 *   (activations; the residual sum read from the destination, as oneDNN's
 *   sum post-op) before the one store. The block size and whether each
 *   thread takes whole blocks or all threads share each block (then the
 *   products are split by position, so that each thread reads part of U)
 *   follow an estimate of the traffic beyond L2 (wino_blocks);
 * - the scratch is one arena buffer of the plan, live during this step only
 *   (memplan.c packs it with the activations).
 *
 * Accuracy: the transforms scale what each product rounds (rows of Bᵀ
 * sum to up to 10 in magnitude, of Aᵀ to up to 19), so fewer digits are
 * kept than by a direct sum: against the reference conv each output is
 * within 1e-5 of Σ|w||x| (measured ≤ 3e-6; tests/unit/test_f32_wino.c
 * explains the bound), ResNet50's logits within ~1e-6 of their scale. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/int8/q8_int.h" /* the engine's OpenMP helpers (osp__q8_tid...) */
#include "engine/ops/ref.h"
#include "engine/plan/plan_int.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define OSP_F32_WINO 1
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#define WINO_P 36    /* positions of a 6x6 transformed tile */
#define WINO_ROWS 6  /* tiles per call of the product kernel (register rows) */
#define WINO_NB 4    /* vectors of 16 outputs per U panel (register columns) */
#define WINO_PANEL (WINO_NB * 16)
/* Least rows per block when U does not stay in L2: the kernel then needs
 * 256 bytes of U per input channel and 24·(rows / ROWS) FMAs, ~3.6 bytes a
 * cycle at 36 rows, what one core streams from DRAM (measured here: ~13
 * GB/s from DRAM, ~25 from L3, at ~3.5 GHz; Xeon family 6 model 207). */
#define WINO_U_ROWS 36
/* Floats added to the distance between two positions' planes of V and M,
 * so that a tile's 36 entries do not all fall in the same cache set (the
 * planes are often multiples of 4 KiB apart). */
#define WINO_SKEW 16
/* Cache sizes assumed when the CPU does not report them. */
#define WINO_L1_DEFAULT (32 * 1024)
#define WINO_L2_DEFAULT (1024 * 1024)

/* The 3x3 stride-1 single-group fp32 conv this file computes. */
typedef struct osp__wino_s {
    int64_t n, c, cp, k, kp;    /* batch, channels (padded to 16) */
    int64_t h, w, oh, ow, pt, pl; /* input, output, top/left padding */
    int64_t th, tw, tiles;      /* 4x4 tiles per column / row / batch */
    int64_t tb, blocks;         /* tiles per block (a multiple of ROWS) */
    int64_t cc;                 /* input channels per call of the kernel */
    size_t v_pos, m_pos;        /* floats between two positions' planes */
    size_t thr_floats;          /* scratch per thread: V then M */
    bool shared;                /* all threads on each block */
    int n_thr;
    int n_post;
    osp_post_op_t post[OSP_MAX_POST_OPS];
    float bias[];               /* kp floats (zero padded) */
} osp__wino_t;

bool osp__f32_wino_ok(void) {
#ifdef OSP_F32_WINO
    return osp__cpu_caps()->avx512;
#else
    return false;
#endif
}

/* ---- weights: U = G g Gᵀ ------------------------------------------------ */

static const double wino_g[6][3] = {
    {1.0 / 4, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6},
    {1.0 / 24, -1.0 / 12, 1.0 / 6},
    {0, 0, 1},
};

typedef struct wino_wsrc_s {
    const float *w; /* [k][c][3][3] */
    int64_t c, cp, k, kp;
} wino_wsrc_t;

/* Fills dst (zeroed, [36][panel][cp][width] floats) from the weights,
 * 16 output channels at a time (the loops over them vectorise; ResNet50's
 * 13 layers take ~0.05 s). */
static int wino_make_u(void *dst, const void *ctx) {
    const wino_wsrc_t *s = ctx;
    float *u = dst;
    const size_t plane = (size_t)(s->cp * s->kp);
    for (int64_t o0 = 0; o0 < s->k; o0 += 16) {
        int64_t p = o0 / WINO_PANEL, col = o0 % WINO_PANEL;
        int64_t width = s->kp - p * WINO_PANEL;
        width = width > WINO_PANEL ? WINO_PANEL : width;
        int no = s->k - o0 < 16 ? (int)(s->k - o0) : 16;
        for (int64_t ci = 0; ci < s->c; ci++) {
            double g[9][16] = {{0}}, t[6][3][16];
            for (int o = 0; o < no; o++)
                for (int e = 0; e < 9; e++)
                    g[e][o] = s->w[((o0 + o) * s->c + ci) * 9 + e];
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 3; j++)
                    for (int o = 0; o < 16; o++)
                        t[i][j][o] = wino_g[i][0] * g[j][o] + wino_g[i][1] * g[3 + j][o] +
                                     wino_g[i][2] * g[6 + j][o];
            float *up = u + (size_t)(p * WINO_PANEL * s->cp + ci * width + col);
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++) {
                    float *d = up + (size_t)(i * 6 + j) * plane;
                    for (int o = 0; o < 16; o++)
                        d[o] = (float)(t[i][0][o] * wino_g[j][0] + t[i][1][o] * wino_g[j][1] +
                                       t[i][2][o] * wino_g[j][2]);
                }
        }
    }
    return 0;
}

#ifdef OSP_F32_WINO

#define WINO_FN static inline __attribute__((always_inline, target("avx512f")))
#define WINO_TARGET __attribute__((target("avx512f")))

/* ---- input transform: V = Bᵀ d B ---------------------------------------- */

/* Bᵀ applied to 6 vectors (one column or row of a tile). */
WINO_FN void wino_bt(const __m512 d[6], __m512 t[6]) {
    const __m512 four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f),
                 two = _mm512_set1_ps(2.f);
    __m512 a = _mm512_fnmadd_ps(four, d[2], d[4]); /* d4 − 4 d2 */
    __m512 b = _mm512_fnmadd_ps(four, d[1], d[3]); /* d3 − 4 d1 */
    __m512 e = _mm512_sub_ps(d[4], d[2]);
    __m512 f = _mm512_mul_ps(two, _mm512_sub_ps(d[3], d[1]));
    t[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    t[1] = _mm512_add_ps(a, b);
    t[2] = _mm512_sub_ps(a, b);
    t[3] = _mm512_add_ps(e, f);
    t[4] = _mm512_sub_ps(e, f);
    t[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

/* V of one tile and 16 channels from its 6x6 window (row i, pixel j at
 * src + i·rs + 16·j floats) into v, position a at v + a·v_pos. Rows first
 * (d B), then columns (Bᵀ (d B)). */
WINO_FN void wino_in16(const float *src, size_t rs, float *v, size_t v_pos) {
    __m512 t[6][6];
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++) {
        __m512 d[6];
#pragma GCC unroll 6
        for (int j = 0; j < 6; j++)
            d[j] = _mm512_loadu_ps(src + (size_t)i * rs + (size_t)j * 16);
        wino_bt(d, t[i]);
    }
#pragma GCC unroll 6
    for (int j = 0; j < 6; j++) {
        __m512 c[6], o[6];
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++)
            c[i] = t[i][j];
        wino_bt(c, o);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++)
            _mm512_storeu_ps(v + (size_t)(i * 6 + j) * v_pos, o[i]);
    }
}

/* Tile t's transform into row `row` of the block's V, every channel
 * block. A window that crosses the image's edge is first copied into a
 * zero-padded 6x6 one. */
WINO_FN void wino_in_tile(const osp__wino_t *k, const float *x, int64_t t,
                          float *v, int64_t row) {
    int64_t per_img = k->th * k->tw;
    int64_t n = t / per_img, r = t % per_img;
    int64_t iy0 = (r / k->tw) * 4 - k->pt, ix0 = (r % k->tw) * 4 - k->pl;
    bool inside = iy0 >= 0 && iy0 + 6 <= k->h && ix0 >= 0 && ix0 + 6 <= k->w;
    const int64_t cb_n = k->cp / 16;
    const size_t plane = (size_t)(k->h * k->w) * 16, rs = (size_t)k->w * 16;
    float *vp = v + (size_t)row * (size_t)k->cp;
    if (inside) {
        const float *xp = x + (size_t)(n * cb_n) * plane + (size_t)iy0 * rs +
                          (size_t)ix0 * 16;
        for (int64_t cb = 0; cb < cb_n; cb++)
            wino_in16(xp + (size_t)cb * plane, rs, vp + cb * 16, k->v_pos);
        return;
    }
    float win[6 * 6 * 16] __attribute__((aligned(64)));
    for (int64_t cb = 0; cb < cb_n; cb++) {
        const float *xp = x + (size_t)(n * cb_n + cb) * plane;
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++) {
                int64_t iy = iy0 + i, ix = ix0 + j;
                __m512 d = iy >= 0 && iy < k->h && ix >= 0 && ix < k->w
                               ? _mm512_loadu_ps(xp + (size_t)iy * rs + (size_t)ix * 16)
                               : _mm512_setzero_ps();
                _mm512_store_ps(win + (i * 6 + j) * 16, d);
            }
        wino_in16(win, 6 * 16, vp + cb * 16, k->v_pos);
    }
}

/* ---- the 36 products: M = V U -------------------------------------------- */

/* M[0..ROWS) × [0..16·nb) (+)= A[ROWS × n] · B[n × 16·nb] for one
 * position, one panel of U and n of its input channels; adds to M when
 * acc (a later share of the channels), else overwrites it. lda, ldm in
 * floats. Meanwhile fetches pf_lines cache lines from pf into L2, one per
 * input channel (a burst of them would stall on the memory). */
WINO_FN void wino_kernel(const float *a, size_t lda, const float *b, int64_t n,
                         bool acc, int nb, float *m, size_t ldm, const char *pf,
                         int64_t pf_lines) {
    __m512 c[WINO_ROWS][WINO_NB];
#pragma GCC unroll 8
    for (int i = 0; i < WINO_ROWS; i++)
#pragma GCC unroll 4
        for (int j = 0; j < WINO_NB; j++)
            if (j < nb)
                c[i][j] = acc ? _mm512_loadu_ps(m + (size_t)i * ldm + (size_t)j * 16)
                              : _mm512_setzero_ps();
    const size_t bw = (size_t)nb * 16;
    for (int64_t ci = 0; ci < n; ci++) {
        if (ci < pf_lines) /* one line of what the caller fetches ahead */
            _mm_prefetch(pf + ci * 64, _MM_HINT_T1);
        __m512 bv[WINO_NB];
#pragma GCC unroll 4
        for (int j = 0; j < WINO_NB; j++)
            if (j < nb)
                bv[j] = _mm512_loadu_ps(b + (size_t)ci * bw + (size_t)j * 16);
#pragma GCC unroll 8
        for (int i = 0; i < WINO_ROWS; i++) {
            __m512 av = _mm512_set1_ps(a[(size_t)i * lda + (size_t)ci]);
#pragma GCC unroll 4
            for (int j = 0; j < WINO_NB; j++)
                if (j < nb)
                    c[i][j] = _mm512_fmadd_ps(av, bv[j], c[i][j]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < WINO_ROWS; i++)
#pragma GCC unroll 4
        for (int j = 0; j < WINO_NB; j++)
            if (j < nb)
                _mm512_storeu_ps(m + (size_t)i * ldm + (size_t)j * 16, c[i][j]);
}

/* The kernel specialised per panel width, so that the accumulators are
 * registers. */
#define WINO_KERNEL(NB)                                                       \
    WINO_TARGET static void wino_kernel##NB(const float *a, size_t lda,      \
                                            const float *b, int64_t n,       \
                                            bool acc, float *m, size_t ldm,  \
                                            const char *pf, int64_t pf_lines) { \
        wino_kernel(a, lda, b, n, acc, NB, m, ldm, pf, pf_lines);             \
    }
WINO_KERNEL(1)
WINO_KERNEL(2)
WINO_KERNEL(3)
WINO_KERNEL(4)
#undef WINO_KERNEL

/* Items [i0, i1) of a block's products, item = (position, panel of U)
 * in position-major order, each over rows (a multiple of ROWS) rows. The
 * input channels go in shares of k->cc, so that the share of the panel
 * the rows run over stays in L1. */
WINO_TARGET static void wino_products(const osp__wino_t *k, const float *u,
                                      const float *v, float *m, int64_t rows,
                                      int64_t i0, int64_t i1) {
    static void (*const kern[WINO_NB + 1])(const float *, size_t, const float *,
                                            int64_t, bool, float *, size_t,
                                            const char *, int64_t) = {
        NULL, wino_kernel1, wino_kernel2, wino_kernel3, wino_kernel4};
    const size_t ucp = (size_t)(k->cp * k->kp);
    const int64_t panels = (k->kp + WINO_PANEL - 1) / WINO_PANEL;
    const int64_t groups = rows / WINO_ROWS;
    const int64_t shares = (k->cp + k->cc - 1) / k->cc;
    for (int64_t it = i0; it < i1; it++) {
        int64_t a = it / panels, p = it % panels;
        const float *va = v + (size_t)a * k->v_pos;
        float *ma = m + (size_t)a * k->m_pos + (size_t)(p * WINO_PANEL);
        int64_t width = k->kp - p * WINO_PANEL;
        int nb = (int)(width > WINO_PANEL ? WINO_NB : width / 16);
        const float *up = u + (size_t)a * ucp + (size_t)(p * WINO_PANEL * k->cp);
        /* the next item's panel of U is fetched into L2 while this one
         * runs, a share of its lines before each call: U comes from
         * memory, and without this the first rows of each panel wait for
         * it at a rate the memory does not have */
        const char *next = NULL;
        int64_t lines = 0, per_call = 0;
        if (it + 1 < i1) {
            int64_t na = (it + 1) / panels, np = (it + 1) % panels;
            int64_t nw = k->kp - np * WINO_PANEL;
            next = (const char *)(u + (size_t)na * ucp +
                                  (size_t)(np * WINO_PANEL * k->cp));
            lines = (k->cp * (nw > WINO_PANEL ? WINO_PANEL : nw) * 4 + 63) / 64;
            per_call = (lines + groups * shares - 1) / (groups * shares);
        }
        int64_t call = 0;
        for (int64_t c0 = 0; c0 < k->cp; c0 += k->cc) {
            int64_t n = k->cp - c0 < k->cc ? k->cp - c0 : k->cc;
            for (int64_t g = 0; g < groups; g++, call++) {
                int64_t l0 = call * per_call, nl = lines - l0;
                nl = nl < 0 ? 0 : nl > per_call ? per_call : nl;
                for (int64_t l = n; l < nl; l++) /* more lines than channels */
                    _mm_prefetch(next + (l0 + l) * 64, _MM_HINT_T1);
                kern[nb](va + (size_t)(g * WINO_ROWS * k->cp + c0), (size_t)k->cp,
                         up + (size_t)(c0 * nb * 16), n, c0 > 0,
                         ma + (size_t)(g * WINO_ROWS * k->kp), (size_t)k->kp,
                         next ? next + l0 * 64 : NULL, nl < n ? nl : n);
            }
        }
    }
}

/* ---- output transform: Y = Aᵀ M A, bias, post-ops ------------------------- */

/* Aᵀ applied to 6 vectors. */
WINO_FN void wino_at(const __m512 m[6], __m512 o[4]) {
    __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
    o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), d34, d12);
    o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), s34, s12);
    o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), d34, d12), m[5]);
}

/* The post-ops the output loop specialises (any other list runs the
 * general one). */
typedef enum wino_post_e {
    WINO_POST_NONE,
    WINO_POST_RELU,     /* relu */
    WINO_POST_SUM,      /* + residual */
    WINO_POST_SUM_RELU, /* relu(· + residual): a ResNet block's end */
    WINO_POST_ANY,
} wino_post_t;

static wino_post_t wino_post_kind(const osp__wino_t *k) {
    const osp_post_op_t *p = k->post;
    bool relu0 = k->n_post > 0 && p[0].kind == OSP_POST_ACT && p[0].act == OSP_ACT_RELU;
    bool sum0 = k->n_post > 0 && p[0].kind == OSP_POST_SUM;
    bool relu1 = k->n_post > 1 && p[1].kind == OSP_POST_ACT && p[1].act == OSP_ACT_RELU;
    if (k->n_post == 0)
        return WINO_POST_NONE;
    if (k->n_post == 1)
        return relu0 ? WINO_POST_RELU : sum0 ? WINO_POST_SUM : WINO_POST_ANY;
    return k->n_post == 2 && sum0 && relu1 ? WINO_POST_SUM_RELU : WINO_POST_ANY;
}

/* The node's post-ops on one vector, in their order; y is its
 * destination, whose current contents are a sum post-op's residual. */
WINO_FN __m512 wino_post(const osp__wino_t *k, wino_post_t kind, __m512 v,
                         const float *y) {
    switch (kind) {
    case WINO_POST_NONE: return v;
    case WINO_POST_RELU: return _mm512_max_ps(v, _mm512_setzero_ps());
    case WINO_POST_SUM: return _mm512_add_ps(v, _mm512_loadu_ps(y));
    case WINO_POST_SUM_RELU:
        return _mm512_max_ps(_mm512_add_ps(v, _mm512_loadu_ps(y)), _mm512_setzero_ps());
    case WINO_POST_ANY: break;
    }
    for (int i = 0; i < k->n_post; i++) {
        const osp_post_op_t *q = &k->post[i];
        if (q->kind == OSP_POST_SUM) {
            v = _mm512_add_ps(v, _mm512_loadu_ps(y));
        } else if (q->act == OSP_ACT_RELU) {
            v = _mm512_max_ps(v, _mm512_setzero_ps());
        } else if (q->act == OSP_ACT_CLIP) {
            /* as the reference: v < α ? α : v, then v > β ? β : v (NaN stays) */
            __m512 lo = _mm512_set1_ps(q->alpha), hi = _mm512_set1_ps(q->beta);
            v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ), lo);
            v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, hi, _CMP_GT_OQ), hi);
        } else if (q->act == OSP_ACT_LEAKY_RELU) {
            __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
            v = _mm512_mask_mul_ps(v, neg, v, _mm512_set1_ps(q->alpha));
        } else { /* the others, elementwise as the reference computes them */
            float f[16];
            _mm512_storeu_ps(f, v);
            osp_ref_act_f32(q->act, q->alpha, q->beta, f, 16);
            v = _mm512_loadu_ps(f);
        }
    }
    return v;
}

/* One tile's 16 output channels: Y = Aᵀ M A (position a of M at m +
 * a·m_pos) + bias, post-ops, stored to the ny x nx valid pixels at dst
 * (rows rs floats apart); lanes outside keep are stored as zeros. */
WINO_FN void wino_out16(const osp__wino_t *k, wino_post_t kind, const float *m,
                        size_t m_pos, __m512 bias, __mmask16 keep, float *dst,
                        size_t rs, int64_t ny, int64_t nx) {
    __m512 t[4][6];
#pragma GCC unroll 6
    for (int j = 0; j < 6; j++) {
        __m512 c[6], o[4];
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++)
            c[i] = _mm512_loadu_ps(m + (size_t)(i * 6 + j) * m_pos);
        wino_at(c, o);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++)
            t[i][j] = o[i];
    }
    if (ny == 4 && nx == 4 && keep == (__mmask16)0xFFFF) {
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m512 o[4];
            wino_at(t[i], o);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                float *y = dst + (size_t)i * rs + (size_t)j * 16;
                _mm512_storeu_ps(y, wino_post(k, kind, _mm512_add_ps(o[j], bias), y));
            }
        }
        return;
    }
    for (int i = 0; i < ny; i++) {
        __m512 o[4];
        wino_at(t[i], o);
        for (int j = 0; j < nx; j++) {
            float *y = dst + (size_t)i * rs + (size_t)j * 16;
            __m512 v = wino_post(k, kind, _mm512_add_ps(o[j], bias), y);
            _mm512_storeu_ps(y, _mm512_maskz_mov_ps(keep, v));
        }
    }
}

/* Tile t from row `row` of the block's M into y, every output block. */
WINO_FN void wino_out_tile(const osp__wino_t *k, wino_post_t kind, const float *m,
                           int64_t t, int64_t row, float *y) {
    int64_t per_img = k->th * k->tw;
    int64_t n = t / per_img, r = t % per_img;
    int64_t oy0 = (r / k->tw) * 4, ox0 = (r % k->tw) * 4;
    int64_t ny = k->oh - oy0 < 4 ? k->oh - oy0 : 4;
    int64_t nx = k->ow - ox0 < 4 ? k->ow - ox0 : 4;
    const int64_t kb_n = k->kp / 16;
    const size_t plane = (size_t)(k->oh * k->ow) * 16, rs = (size_t)k->ow * 16;
    float *yp = y + (size_t)(n * kb_n) * plane + (size_t)oy0 * rs + (size_t)ox0 * 16;
    const float *mp = m + (size_t)row * (size_t)k->kp;
    for (int64_t kb = 0; kb < kb_n; kb++) {
        /* lanes past the real channels stay zero, whatever the post-ops */
        int64_t live = k->k - kb * 16;
        __mmask16 keep = live >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << live) - 1);
        wino_out16(k, kind, mp + kb * 16, k->m_pos, _mm512_loadu_ps(k->bias + kb * 16),
                   keep, yp + (size_t)kb * plane, rs, ny, nx);
    }
}

/* ---- the step ------------------------------------------------------------ */

/* Rows [i0, i1) of block b's V: its tiles' transforms, zeros past its
 * last tile (defined values for the products to ignore). */
WINO_TARGET static void wino_inputs(const osp__wino_t *k, const float *x,
                                    float *v, int64_t b, int64_t i0, int64_t i1) {
    int64_t t0 = b * k->tb, nt = k->tiles - t0 < k->tb ? k->tiles - t0 : k->tb;
    for (int64_t i = i0; i < i1; i++) {
        if (i < nt) {
            wino_in_tile(k, x, t0 + i, v, i);
            continue;
        }
        for (int a = 0; a < WINO_P; a++)
            memset(v + (size_t)a * k->v_pos + (size_t)(i * k->cp), 0,
                   sizeof(float) * (size_t)k->cp);
    }
}

/* Rows [i0, i1) of block b's M (those that are tiles) into y. */
WINO_TARGET static void wino_outputs(const osp__wino_t *k, const float *m,
                                     float *y, int64_t b, int64_t i0, int64_t i1) {
    int64_t t0 = b * k->tb, nt = k->tiles - t0 < k->tb ? k->tiles - t0 : k->tb;
    i1 = i1 < nt ? i1 : nt;
    /* the loop once per common list of post-ops, inlined for it */
    switch (wino_post_kind(k)) {
#define WINO_OUT(KIND)                                                        \
    case KIND:                                                                \
        for (int64_t i = i0; i < i1; i++)                                     \
            wino_out_tile(k, KIND, m, t0 + i, i, y);                          \
        break;
        WINO_OUT(WINO_POST_NONE)
        WINO_OUT(WINO_POST_RELU)
        WINO_OUT(WINO_POST_SUM)
        WINO_OUT(WINO_POST_SUM_RELU)
        WINO_OUT(WINO_POST_ANY)
#undef WINO_OUT
    }
}

/* The rows of block b (its tiles rounded up to the register rows). */
static int64_t wino_rows(const osp__wino_t *k, int64_t b) {
    int64_t nt = k->tiles - b * k->tb < k->tb ? k->tiles - b * k->tb : k->tb;
    return (nt + WINO_ROWS - 1) / WINO_ROWS * WINO_ROWS;
}

/* The size of the calling thread's OpenMP team (1 without OpenMP). */
static int64_t wino_team(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

static void wino_run(const osp__plan_step_t *s) {
    const osp__wino_t *k = s->fn_ctx;
    const float *x = s->tin[0].data, *u = s->tin[1].data;
    float *scr = s->tin[2].data, *y = s->tout[0].data;
    const int64_t items = WINO_P * ((k->kp + WINO_PANEL - 1) / WINO_PANEL);
    if (k->shared) {
        /* every thread on each block, phase by phase: contiguous shares of
         * the rows, and of the products by position (each thread reads its
         * part of U, in order, fetching the next panel ahead). A block's
         * inputs may start while others still write the previous one's
         * outputs: those read M, not V. */
        float *v = scr, *m = scr + (size_t)WINO_P * k->v_pos;
        int nt = osp__q8_tile_threads(k->n_thr, k->n_thr);
#pragma omp parallel num_threads(nt)
        {
            int64_t t = osp__q8_tid(), n = wino_team();
            for (int64_t b = 0; b < k->blocks; b++) {
                const int64_t rows = wino_rows(k, b);
                wino_inputs(k, x, v, b, rows * t / n, rows * (t + 1) / n);
#pragma omp barrier
                wino_products(k, u, v, m, rows, items * t / n, items * (t + 1) / n);
#pragma omp barrier
                wino_outputs(k, m, y, b, rows * t / n, rows * (t + 1) / n);
            }
        }
        return;
    }
    int nt = osp__q8_tile_threads(k->n_thr, (int)k->blocks);
    /* dynamic: a thread that loses its core for a while on a shared
     * machine leaves its blocks to the others */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t b = 0; b < k->blocks; b++) {
        float *v = scr + (size_t)osp__q8_tid() * k->thr_floats;
        float *m = v + (size_t)WINO_P * k->v_pos;
        int64_t rows = wino_rows(k, b);
        wino_inputs(k, x, v, b, 0, rows);
        wino_products(k, u, v, m, rows, 0, items);
        wino_outputs(k, m, y, b, 0, rows);
    }
}

/* How the tiles are split: into blocks, each either a thread's (in its
 * own scratch) or shared by all threads phase by phase, the products split
 * by position. A block's V and M take 36·(cp + kp) floats per tile, and a
 * thread's part of them is kept within half the core's L2 (as the CPU
 * reports it; the rest holds U's panels) so as not to go through L3. U is
 * read once per block: when it does not fit in L2 beside them (ResNet50's
 * 256- and 512-channel layers: 9 and 38 MB) a thread's block needs at least
 * WINO_U_ROWS rows, so that the kernel consumes a panel of U slower than
 * memory delivers it, even if V and M then spill; and a block shared by
 * the threads, n times larger for the same part of V and M per thread,
 * has each thread read 1/n of U per block, at the cost of sending V and
 * M from core to core once: shared when that costs less than the U it
 * saves, or when the tiles are too few for a thread's block each
 * (ResNet50's 7x7 layers: 32 tiles at batch 8). Blocks per thread are
 * rounded up to a multiple of the threads, which share them evenly.
 * Measured on ResNet50's and SqueezeNet's layers (bench/wino_layers.c):
 * within a few percent of the best of the splits tried, where a fixed
 * block size is up to 1.6x off. */
static void wino_blocks(osp__wino_t *k) {
    long l2r = sysconf(_SC_LEVEL2_CACHE_SIZE);
    const size_t l2 = l2r > 0 ? (size_t)l2r : WINO_L2_DEFAULT;
    const size_t per_tile = sizeof(float) * WINO_P * (size_t)(k->cp + k->kp);
    const size_t u = sizeof(float) * WINO_P * (size_t)(k->cp * k->kp);
    const int64_t n = k->n_thr;
    int64_t tb = (int64_t)(l2 / 2 / per_tile);
    bool u_out = u > l2 / 2;
    if (u_out && tb < WINO_U_ROWS)
        tb = WINO_U_ROWS;
    tb = tb < WINO_ROWS ? WINO_ROWS : tb;
    k->shared = n > 1 && u_out &&
                ((size_t)tb * per_tile < u - u / (size_t)n || k->tiles < tb * n);
    int64_t blocks;
    if (k->shared) {
        blocks = (k->tiles + tb * n - 1) / (tb * n);
    } else {
        blocks = (k->tiles + tb - 1) / tb;
        blocks = (blocks + n - 1) / n * n;
    }
    tb = (k->tiles + blocks - 1) / blocks;
    k->tb = (tb + WINO_ROWS - 1) / WINO_ROWS * WINO_ROWS;
    k->blocks = (k->tiles + k->tb - 1) / k->tb;
    k->v_pos = (size_t)(k->tb * k->cp) + WINO_SKEW;
    k->m_pos = (size_t)(k->tb * k->kp) + WINO_SKEW;
    k->thr_floats = (size_t)WINO_P * (k->v_pos + k->m_pos);
}

int osp__f32_wino_conv(osp__plan_ctx_t *c, int ni) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (!osp__f32_wino_ok() || n->n_out != 1 || n->n_in < 2)
        return OSP_EUNSUPPORTED;
    int n_sum = 0;
    for (int i = 0; i < n->n_post; i++)
        n_sum += n->post[i].kind == OSP_POST_SUM;
    int n_real = n->n_in - n_sum;
    int x = n->in[0], w = n->in[1], y = n->out[0];
    int bias = n_real > 2 ? n->in[2] : -1;
    int sum = n_sum ? n->in[n->n_in - 1] : -1;
    if (n_sum > 1 || n_real > 3 || x < 0 || w < 0 || y < 0 ||
        !osp_value_is_const(&g->values[w]) ||
        (bias >= 0 && !osp_value_is_const(&g->values[bias])))
        return OSP_EUNSUPPORTED;
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    if (X->rank != 4 || W->rank != 4 || Y->rank != 4 || X->dtype != OSP_DT_F32 ||
        W->dtype != OSP_DT_F32 || Y->dtype != OSP_DT_F32 ||
        (n->p.conv.group > 1) || W->dims[2] != 3 || W->dims[3] != 3 ||
        W->dims[1] != X->dims[1] || Y->dims[1] != W->dims[0] ||
        Y->dims[0] != X->dims[0] || n->p.conv.win.n_spatial != 2)
        return OSP_EUNSUPPORTED;
    /* fewer than 16 channels in or out: the zero padding to a vector
     * would multiply the products by up to 16, more than Winograd saves */
    if (X->dims[1] < 16 || W->dims[0] < 16)
        return OSP_EUNSUPPORTED;
    if (bias >= 0 && (g->values[bias].dtype != OSP_DT_F32 ||
                      osp_value_numel(&g->values[bias]) != (size_t)W->dims[0]))
        return OSP_EUNSUPPORTED;
    osp__plan_conv_geom_t cg;
    int rc = osp__conv_geom(c, n, X, W, Y, 1, &cg);
    if (rc < 0)
        return rc;
    for (int i = 0; i < 2; i++)
        if (cg.strides[i] != 1 || cg.dil[i] != 0 || cg.pl[i] < 0)
            return OSP_EUNSUPPORTED;

    int64_t kp = (W->dims[0] + 15) / 16 * 16;
    osp__wino_t *k = calloc(1, sizeof *k + sizeof(float) * (size_t)kp);
    if (!k)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    k->n = X->dims[0];
    k->c = X->dims[1];
    k->cp = (k->c + 15) / 16 * 16;
    k->k = W->dims[0];
    k->kp = kp;
    k->h = X->dims[2];
    k->w = X->dims[3];
    k->oh = Y->dims[2];
    k->ow = Y->dims[3];
    k->pt = cg.pl[0];
    k->pl = cg.pl[1];
    k->th = (k->oh + 3) / 4;
    k->tw = (k->ow + 3) / 4;
    k->tiles = k->n * k->th * k->tw;
    k->n_thr = osp__q8_threads();
    k->n_post = n->n_post;
    memcpy(k->post, n->post, sizeof k->post);
    if (bias >= 0)
        memcpy(k->bias, g->values[bias].data, sizeof(float) * (size_t)k->k);
    if (k->tiles <= 0) {
        free(k);
        return OSP_EUNSUPPORTED;
    }
    wino_blocks(k);
    /* a call's share of a U panel (cc input channels × 64 outputs) within
     * half the L1 data cache the CPU reports */
    long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
    k->cc = (l1 > 0 ? l1 : WINO_L1_DEFAULT) / 2 / (WINO_PANEL * 4);
    k->cc = k->cc < 16 ? 16 : k->cc;

    /* Buffers: the input and output in nChw16c, U from the weight cache,
     * the scratch; a sum post-op's residual is the destination's content. */
    dnnl_memory_desc_t xmd, ymd, umd, smd;
    int64_t ud[3] = {WINO_P, k->cp, k->kp};
    int64_t sd[1] = {(int64_t)(k->thr_floats * (size_t)(k->shared ? 1 : k->n_thr))};
    osp__md_tag(c, &xmd, 4, X->dims, dnnl_f32, dnnl_aBcd16b);
    osp__md_tag(c, &ymd, 4, Y->dims, dnnl_f32, dnnl_aBcd16b);
    osp__md_plain(c, &umd, 3, ud, dnnl_f32);
    osp__md_plain(c, &smd, 1, sd, dnnl_f32);
    wino_wsrc_t ws = {W->data, k->c, k->cp, k->k, k->kp};
    int in[3];
    char note[96] = "";
    osp__post_note(n, note, sizeof note);
    if ((in[0] = osp__buf_as(c, x, &xmd)) < 0 ||
        (in[1] = osp__const_derived(c, W->data, &umd, wino_make_u, &ws)) < 0 ||
        (in[2] = osp__buf_new(c, &smd, -1)) < 0) {
        free(k);
        return in[0] < 0 ? in[0] : in[1] < 0 ? in[1] : in[2];
    }
    int yb = sum >= 0 ? osp__sum_dst(c, ni, sum, &ymd, y, note, sizeof note)
                      : osp__buf_new(c, &ymd, y);
    if (yb < 0) {
        free(k);
        return yb;
    }
    size_t used = strlen(note);
    snprintf(note + used, sizeof note - used,
             k->shared ? "%s%lld-tile blocks shared by the threads"
                       : "%s%lld-tile blocks",
             used ? "; " : "", (long long)k->tb);
    rc = osp__step_fn(c, ni, 3, in, yb, wino_run, k, "osprey:wino_4x3(avx512)", note);
    if (rc < 0)
        return rc;
    osp__bind_value(c, y, yb);
    return 0;
}

#else /* no x86-64 AVX-512 intrinsics: oneDNN's direct convolution */

int osp__f32_wino_conv(osp__plan_ctx_t *c, int ni) {
    (void)c, (void)ni, (void)wino_make_u;
    return OSP_EUNSUPPORTED;
}

#endif
