/* q8_dwconv.c — osprey's own exact int8 depthwise convolution (AVX-512).
 *
 * Why: on the exact int8 path (dnnl_q8conv.c) a depthwise layer was oneDNN's
 * int8 kernel writing s32 accumulators to a tile buffer, then osprey's
 * requantization reading them back (q8_f32conv.c, osp__q8_tiled_conv). For
 * MobileNetV2 int8 at batch 8 those layers took 10.4 of 31 ms per batch on
 * one thread (docs/performance.md): a depthwise output costs only 9 MACs,
 * so writing and re-reading 4 bytes of accumulator per output is a large
 * part of it. Here the accumulators never leave registers: each output
 * vector of 16 channels is summed and requantized in place, and the u8/s8
 * result is the only store.
 *
 * Exactness: the sum runs in f32 FMAs over (x − zx) and w. Both are
 * integers (|x − zx| ≤ 255, |w| ≤ 127), every product is exact, and every
 * partial sum of an output's terms is bounded by 255·Σ|w| of its channel,
 * which the caller has checked is below 2^24 (the exact path's admission
 * bound): so every f32 partial sum is an exactly represented integer and
 * the result equals the int32 accumulator whatever the order. The
 * requantization is q8_x16.h's, shared with the tiled path, so the output
 * is bit-identical to the integer reference kernels (tests/unit/
 * test_dnnl_qconv.c).
 *
 * How: a step runs tiles (an image × a band of output rows) over the
 * engine's OpenMP threads. For a tile it widens the input rows the band
 * reads to f32 (x − zx) in a per-thread scratch buffer (the plan's shared
 * tile pool, q8_f32conv.c), with the padding materialised as zero rows and
 * columns — padding contributes 0 in TFLite, which pads with zx — so the
 * inner loop has no bounds checks. Then, per block of 16 channels, the
 * block's KH·KW weight vectors and requantization constants stay in
 * registers while 4 output pixels at a time are summed (4 independent FMA
 * chains hide the FMA latency). 3×3 and 5×5 kernels are specialised; other
 * sizes read the weights from L1 per tap.
 *
 * Depth multiplier 1 only (MobileNet-style models); other depthwise
 * shapes keep the tiled oneDNN path. tuning.q8_dw off turns the kernel
 * off (for measurement). */
#include <stdlib.h>
#include <string.h>

#include "engine/plan/plan_int.h"
#include "engine/int8/q8_x16.h"
#include "engine/int8/q8_int.h"

#if OSP_Q8X16

typedef struct q8dw_s {
    osp__q8_req_t *req;
    float *wf;         /* [KH·KW][Cp]: w as f32, channels padded with 0 */
    float *acc0;       /* [Cp]: bias − zx·Σw, each accumulator's start */
    int64_t C, Cp;     /* channels, rounded up to 16 */
    int64_t H, W, OH, OW, KH, KW, sh, sw, dh, dw, pt, pl;
    int64_t Wp;        /* scratch row width in pixels: column j is x = j − pl */
    int64_t hb;        /* output rows per band */
    int n_bands;
    int64_t n;         /* images */
    int32_t zx;
    bool x_u8;
    int n_thr;
    osp__q8_pool_t *pool; /* the per-thread scratch (shared with the plan) */
} q8dw_t;

static void q8dw_free(void *ctx) {
    q8dw_t *k = ctx;
    if (!k)
        return;
    osp__q8_pool_release(k->pool);
    free(k->req);
    free(k->wf);
    free(k->acc0);
    free(k);
}

/* Scratch rows a band of `out_rows` output rows reads. */
static int64_t band_rows(const q8dw_t *k, int64_t out_rows) {
    return (out_rows - 1) * k->sh + (k->KH - 1) * k->dh + 1;
}

#define DW_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

/* Scratch row r of the band starting at output row oy0: input row
 * oy0·sh − pt + r as f32, zx where TFLite pads (outside the image), laid
 * out channel block by channel block ([Cp/16][Wp][16]): the pixels of one
 * block are then 64 bytes apart, so the kernel's loads use constant
 * displacements from one pointer per kernel row. */
DW_TARGET static void widen_row(const q8dw_t *k, const uint8_t *x_img,
                                int64_t oy0, int64_t r, float *dst) {
    const int64_t C = k->C, Cp = k->Cp;
    const __m512 zx = _mm512_set1_ps((float)k->zx);
    int64_t iy = oy0 * k->sh - k->pt + r;
    if (iy < 0 || iy >= k->H) {
        for (int64_t i = 0; i < k->Wp * Cp; i += 16)
            _mm512_store_ps(dst + i, zx);
        return;
    }
    const __mmask16 tail = (__mmask16)((1u << (C % 16)) - 1);
    const int64_t Cf = C & ~(int64_t)15; /* channels in full blocks */
    const uint8_t *row = x_img + (size_t)(iy * k->W * C);
    const int64_t blk = k->Wp * 16; /* floats per channel block of a row */
    for (int64_t j = 0; j < k->Wp; j++) {
        float *d = dst + j * 16;
        int64_t ix = j - k->pl;
        if (ix < 0 || ix >= k->W) {
            for (int64_t c = 0; c < Cp; c += 16)
                _mm512_store_ps(d + c * k->Wp, zx);
            continue;
        }
        const uint8_t *s = row + ix * C;
        int64_t c = 0;
        if (k->x_u8)
            for (; c < Cf; c += 16, d += blk)
                _mm512_store_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                                       _mm_loadu_si128((const __m128i *)(s + c)))));
        else
            for (; c < Cf; c += 16, d += blk)
                _mm512_store_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                       _mm_loadu_si128((const __m128i *)(s + c)))));
        if (c < Cp) { /* the masked last block (its padding lanes: 0) */
            __m128i b = _mm_maskz_loadu_epi8(tail, s + c);
            __m512i v = k->x_u8 ? _mm512_cvtepu8_epi32(b) : _mm512_cvtepi8_epi32(b);
            _mm512_store_ps(d, _mm512_cvtepi32_ps(v));
        }
    }
}

/* Requantizes one accumulator vector (it already holds the bias) and
 * stores its 16 (or tail) bytes. The clamp runs on the 16 narrowed bytes
 * (xmm ops, cheap) after a saturating narrowing, which gives the same
 * bytes as clamping the int32 values because [qmin, qmax] lies inside the
 * output type's range. */
#define DW_STORE(ACC, YP)                                                     \
    do {                                                                      \
        __m512i q_ = osp__q8x16_apply(&q, _mm512_cvtps_epi32(ACC), hi_dwords); \
        __m128i b_ = y_u8 ? _mm_min_epu8(_mm_max_epu8(_mm512_cvtusepi32_epi8(  \
                                  _mm512_max_epi32(q_, zero)), lo8), hi8)      \
                          : _mm_min_epi8(_mm_max_epi8(                         \
                                  _mm512_cvtsepi32_epi8(q_), lo8), hi8);       \
        if (full)                                                             \
            _mm_storeu_si128((__m128i *)(YP), b_);                            \
        else                                                                  \
            _mm_mask_storeu_epi8((YP), msk, b_);                              \
    } while (0)

/* The band [oy0, oy1) of one image from its widened rows scr. WT(t) is the
 * weight vector of tap t (ky·KW + kx) of the current channel block. The
 * accumulators start at bias − zx·Σw (exact: the caller's bound), so the
 * sum over the taps of x·w is the whole int32 accumulator of TFLite's
 * bias + Σ (x − zx)·w, padding included. */
#define DW_BAND_BODY(KH_, KW_, SW_, DW_, WT)                                  \
    const int64_t Cp = k->Cp, C = k->C, OW = k->OW;                           \
    const int64_t row_f = k->Wp * Cp;     /* floats per scratch row */        \
    const int64_t sx = (SW_) * 16, dx = (DW_) * 16, dy = k->dh * row_f;       \
    const bool y_u8 = k->req->y_u8;                                           \
    const __m128i lo8 = _mm_set1_epi8((char)k->req->qmin);                    \
    const __m128i hi8 = _mm_set1_epi8((char)k->req->qmax);                    \
    const __m512i zero = _mm512_setzero_si512();                              \
    const __m512i hi_dwords = osp__q8x16_hi_dwords();                         \
    const __mmask16 tail = (__mmask16)((1u << (C % 16)) - 1);                 \
    for (int64_t cb = 0; cb < Cp; cb += 16) {                                 \
        const bool full = cb + 16 <= C;                                       \
        const __mmask16 msk = full ? (__mmask16)0xFFFF : tail;                \
        const float *wcb = k->wf + cb;                                        \
        DW_LOAD_WEIGHTS(KH_, KW_)                                             \
        osp__q8x16_t q = osp__q8x16_load(k->req, cb);                          \
        q.bias = zero; /* in acc0 */                                          \
        const __m512 a_init = _mm512_load_ps(k->acc0 + cb);                   \
        for (int64_t oy = oy0; oy < oy1; oy++) {                              \
            const float *r0 = scr + (oy - oy0) * k->sh * row_f + cb * k->Wp;  \
            uint8_t *yrow = y_img + (size_t)(oy * OW * C + cb);               \
            int64_t ox = 0;                                                   \
            for (; ox + 4 <= OW; ox += 4) {                                   \
                __m512 a0 = a_init, a1 = a_init, a2 = a_init, a3 = a_init;    \
                const float *p = r0 + ox * sx;                                \
                _Pragma("GCC unroll 8")                                       \
                for (int64_t ky = 0; ky < (KH_); ky++) {                      \
                    const float *pr = p + ky * dy;                            \
                    _Pragma("GCC unroll 8")                                   \
                    for (int64_t kx = 0; kx < (KW_); kx++) {                  \
                        const __m512 w = WT(ky * (KW_) + kx);                 \
                        const float *pc = pr + kx * dx;                       \
                        a0 = _mm512_fmadd_ps(_mm512_load_ps(pc), w, a0);      \
                        a1 = _mm512_fmadd_ps(_mm512_load_ps(pc + sx), w, a1); \
                        a2 = _mm512_fmadd_ps(_mm512_load_ps(pc + 2 * sx), w, a2); \
                        a3 = _mm512_fmadd_ps(_mm512_load_ps(pc + 3 * sx), w, a3); \
                    }                                                         \
                }                                                             \
                uint8_t *yp = yrow + ox * C;                                  \
                DW_STORE(a0, yp);                                             \
                DW_STORE(a1, yp + C);                                         \
                DW_STORE(a2, yp + 2 * C);                                     \
                DW_STORE(a3, yp + 3 * C);                                     \
            }                                                                 \
            for (; ox < OW; ox++) {                                           \
                __m512 a0 = a_init;                                           \
                const float *p = r0 + ox * sx;                                \
                for (int64_t ky = 0; ky < (KH_); ky++)                        \
                    for (int64_t kx = 0; kx < (KW_); kx++)                    \
                        a0 = _mm512_fmadd_ps(                                 \
                            _mm512_load_ps(p + ky * dy + kx * dx),            \
                            WT(ky * (KW_) + kx), a0);                         \
                DW_STORE(a0, yrow + ox * C);                                  \
            }                                                                 \
        }                                                                     \
    }

/* Fixed kernel sizes: the weight vectors in registers. */
#define DW_LOAD_WEIGHTS(KH_, KW_)                                             \
    __m512 wv[(KH_) * (KW_)];                                                 \
    _Pragma("GCC unroll 25")                                                  \
    for (int t = 0; t < (KH_) * (KW_); t++)                                   \
        wv[t] = _mm512_load_ps(wcb + t * Cp);
#define DW_WT_REG(t) wv[t]

DW_TARGET static void band_3x3(const q8dw_t *k, const float *scr,
                               uint8_t *y_img, int64_t oy0, int64_t oy1) {
    DW_BAND_BODY(3, 3, 1, 1, DW_WT_REG)
}

DW_TARGET static void band_3x3_s2(const q8dw_t *k, const float *scr,
                                  uint8_t *y_img, int64_t oy0, int64_t oy1) {
    DW_BAND_BODY(3, 3, 2, 1, DW_WT_REG)
}

DW_TARGET static void band_5x5(const q8dw_t *k, const float *scr,
                               uint8_t *y_img, int64_t oy0, int64_t oy1) {
    DW_BAND_BODY(5, 5, k->sw, k->dw, DW_WT_REG)
}

/* Any size: the weights read per tap (they stay in L1). */
#undef DW_LOAD_WEIGHTS
#define DW_LOAD_WEIGHTS(KH_, KW_)
#define DW_WT_MEM(t) _mm512_load_ps(wcb + (t) * Cp)

DW_TARGET static void band_any(const q8dw_t *k, const float *scr,
                               uint8_t *y_img, int64_t oy0, int64_t oy1) {
    DW_BAND_BODY(k->KH, k->KW, k->sw, k->dw, DW_WT_MEM)
}

static void run_dw(const osp__plan_step_t *s) {
    const q8dw_t *k = s->fn_ctx;
    const uint8_t *x = s->tin[0].data; /* 1 byte per element (u8/s8) */
    uint8_t *y = s->tout[0].data;
    int tiles = (int)k->n * k->n_bands;
    int nt = osp__q8_tile_threads(k->n_thr, tiles);
    const size_t x_img = (size_t)(k->H * k->W * k->C);
    const size_t y_img = (size_t)(k->OH * k->OW * k->C);
    /* dynamic, as the tiled oneDNN path: a thread that loses its core
     * leaves its tiles to the others */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int t = 0; t < tiles; t++) {
        int tid = osp__q8_tid();
        int64_t img = t / k->n_bands, b = t % k->n_bands;
        int64_t oy0 = b * k->hb;
        int64_t oy1 = oy0 + k->hb < k->OH ? oy0 + k->hb : k->OH;
        float *scr = osp__q8_pool_acc(k->pool, tid);
        int64_t rows = band_rows(k, oy1 - oy0);
        for (int64_t r = 0; r < rows; r++)
            widen_row(k, x + (size_t)img * x_img, oy0, r,
                      scr + r * k->Wp * k->Cp);
        uint8_t *yi = y + (size_t)img * y_img;
        bool k3 = k->KH == 3 && k->KW == 3 && k->dw == 1;
        if (k3 && k->sw == 1)
            band_3x3(k, scr, yi, oy0, oy1);
        else if (k3 && k->sw == 2)
            band_3x3_s2(k, scr, yi, oy0, oy1);
        else if (k->KH == 5 && k->KW == 5)
            band_5x5(k, scr, yi, oy0, oy1);
        else
            band_any(k, scr, yi, oy0, oy1);
    }
}

int osp__q8_dwconv(osp__plan_ctx_t *c, int ni, const osp__plan_conv_geom_t *cg,
                   int32_t zx, osp__q8_req_t *req, int64_t bound) {
    if (c->e->opts.tuning.q8_dw == OSP_TUNE_OFF || !req->off_eo ||
        !osp__cpu_caps()->avx512 || bound >= OSP_Q8_EXACT_LIMIT)
        return OSP_EUNSUPPORTED;
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    int x = n->in[0], w = n->in[1], y = n->out[0];
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    const int64_t *xd = X->dims, *yd = Y->dims;
    int64_t C = xd[1];
    if (n->p.conv.group != C || W->dims[0] != C || W->dims[1] != 1 ||
        yd[1] != C || W->dtype != OSP_DT_S8 ||
        (X->dtype != OSP_DT_U8 && X->dtype != OSP_DT_S8))
        return OSP_EUNSUPPORTED; /* depth multiplier 1 only */
    int nthr = osp__q8_threads();
    q8dw_t *k = calloc(1, sizeof *k);
    if (!k)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    k->C = C;
    k->Cp = (C + 15) & ~(int64_t)15;
    k->H = xd[2];
    k->W = xd[3];
    k->OH = yd[2];
    k->OW = yd[3];
    k->KH = W->dims[2];
    k->KW = W->dims[3];
    k->sh = cg->strides[0];
    k->sw = cg->strides[1];
    k->dh = cg->dil[0] + 1; /* oneDNN counts dilation from 0 */
    k->dw = cg->dil[1] + 1;
    k->pt = cg->pl[0];
    k->pl = cg->pl[1];
    k->Wp = (k->OW - 1) * k->sw + (k->KW - 1) * k->dw + 1;
    k->n = yd[0];
    k->zx = zx;
    k->x_u8 = X->dtype == OSP_DT_U8;
    k->n_thr = nthr;
    /* band height: the widened rows within the tile budget, and at least
     * as many tiles as threads when the output has the rows for it */
    size_t row_bytes = sizeof(float) * (size_t)(k->Wp * k->Cp);
    int64_t hb = k->OH;
    while (hb > 1 && (size_t)band_rows(k, hb) * row_bytes > osp__q8_tile_bytes(c->e))
        hb--;
    int64_t per_img = (nthr + k->n - 1) / k->n;
    if (per_img > 1 && (k->OH + per_img - 1) / per_img < hb)
        hb = (k->OH + per_img - 1) / per_img;
    int64_t nb = (k->OH + hb - 1) / hb; /* equal bands */
    k->hb = (k->OH + nb - 1) / nb;
    k->n_bands = (int)((k->OH + k->hb - 1) / k->hb);
    size_t taps = (size_t)(k->KH * k->KW);
    k->wf = aligned_alloc(64, sizeof(float) * taps * (size_t)k->Cp);
    k->acc0 = aligned_alloc(64, sizeof(float) * (size_t)k->Cp);
    if (!k->wf || !k->acc0) {
        q8dw_free(k);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }
    /* IR weights [C][1][KH][KW] → [tap][Cp]; each accumulator starts at
     * bias − zx·Σw, where every partial sum stays exact when
     * |bias − zx·Σw| + 255·Σ|w| < 2^24 (|x| ≤ 255 for u8 and s8 alike) */
    const int8_t *wd = W->data;
    for (int64_t ch = 0; ch < k->Cp; ch++) {
        int64_t sum = 0, sum_abs = 0;
        for (size_t t = 0; t < taps; t++) {
            int32_t v = ch < C ? wd[(size_t)ch * taps + t] : 0;
            k->wf[t * (size_t)k->Cp + (size_t)ch] = (float)v;
            sum += v;
            sum_abs += v < 0 ? -v : v;
        }
        int64_t a0 = (int64_t)req->bias[ch] - (int64_t)zx * sum;
        if ((a0 < 0 ? -a0 : a0) + 255 * sum_abs >= OSP_Q8_EXACT_LIMIT) {
            q8dw_free(k);
            return OSP_EUNSUPPORTED;
        }
        k->acc0[ch] = (float)a0;
    }
    k->pool = osp__q8_pool_get(c->p, nthr,
                               (size_t)band_rows(k, k->hb) * row_bytes, 0);
    if (!k->pool) {
        q8dw_free(k);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }

    char note[96];
    snprintf(note, sizeof note,
             "%d bands x %lld images, exact f32 FMA, 255*sum|w| %lld",
             k->n_bands, (long long)k->n, (long long)bound);
    int rc = osp__q8_nhwc_step(c, ni, run_dw, k, q8dw_free, "osprey:q8-dw(avx512)+requant", note);
    if (rc == 0)
        k->req = req; /* the step's from here on */
    return rc;
}

#else /* no x86-64 AVX-512 intrinsics: the tiled oneDNN path */

int osp__q8_dwconv(osp__plan_ctx_t *c, int ni, const osp__plan_conv_geom_t *cg,
                   int32_t zx, osp__q8_req_t *req, int64_t bound) {
    (void)c, (void)ni, (void)cg, (void)zx, (void)req, (void)bound;
    return OSP_EUNSUPPORTED;
}

#endif
