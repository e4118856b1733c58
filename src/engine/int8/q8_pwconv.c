/* q8_pwconv.c — osprey's own exact int8 1x1 convolution (AVX-512 VNNI).
 *
 * Why: on the exact int8 path a 1x1 convolution was oneDNN's int8 kernel
 * writing s32 accumulators to a tile buffer, then osprey's requantization
 * reading them back (q8_f32conv.c, osp__q8_tiled_conv). For the expansion
 * layers of MobileNet-style models the reduction is short (16–32 input
 * channels) and the output wide (6× the input), so that round trip of
 * 4 bytes per output is most of the layer: MobileNetV2's 16→96 expansion at
 * 112x112 took 2.8 ms per batch of 8 (1 thread) exact, against 1.9 ms for
 * oneDNN with its own (inexact) float requantization (docs/performance.md).
 * Here the accumulators never leave registers: each vector of 16 output
 * channels is summed with vpdpbusd and requantized in place.
 *
 * Exactness: integer arithmetic throughout, so no bound is needed.
 * vpdpbusd multiplies unsigned bytes by signed bytes and adds groups of four
 * products into int32 lanes without saturation. An s8 source is shifted to
 * u8 (x + 128, one xor), a u8 source is used as is; with u = x + s (s = 128
 * or 0) TFLite's accumulator is
 *   bias + Σ (x − zx)·w = (bias − (zx + s)·Σw) + Σ u·w,
 * so each lane starts at the per-channel constant bias − (zx + s)·Σw
 * (checked to fit int32 at build) and the sum is exact whatever the order.
 * The requantization is q8_x16.h's (bit-identical to the integer reference,
 * tests/unit/test_dnnl_qconv.c).
 *
 * How: the step splits the batch's pixels (NHWC: a 1x1 convolution with
 * stride 1 and no padding is a matrix product over pixels) into tiles over
 * the engine's OpenMP threads. An s8 tile's sources are copied once into a
 * per-thread scratch (the plan's tile pool), shifted to u8 and zero padded
 * to a multiple of 4 channels; a u8 source is read in place. Per
 * block of 16 output channels, 8 pixels at a time: 8 accumulators, one
 * weight vector per group of 4 input channels, then the requantization and
 * one 16-byte store per pixel.
 *
 * 1x1, stride 1, no padding, group 1 only; others keep the tiled oneDNN
 * path. tuning.q8_pw off turns the kernel off (for measurement). */
#include <stdlib.h>
#include <string.h>

#include "engine/plan/plan_int.h"
#include "engine/int8/q8_x16.h"
#include "engine/int8/q8_int.h"

#if OSP_Q8X16

#define PW_PX 8 /* pixels per register block */

typedef struct q8pw_s {
    osp__q8_req_t *req;
    int32_t *wq;       /* [Np/16][K4][16]: groups of 4 s8 weights */
    int32_t *acc0;     /* [Np]: bias − (zx + s)·Σw */
    int64_t K, K4, N, Np; /* input channels, groups of 4, output channels */
    size_t pixels;     /* N·H·W of the whole batch */
    size_t tile;       /* pixels per tile (a multiple of PW_PX) */
    bool x_s8;         /* source s8: shifted to u8 by + 128 */
    int n_thr;
    osp__q8_pool_t *pool;
} q8pw_t;

static void q8pw_free(void *ctx) {
    q8pw_t *k = ctx;
    if (!k)
        return;
    osp__q8_pool_release(k->pool);
    free(k->req);
    free(k->wq);
    free(k->acc0);
    free(k);
}

#define PW_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

/* Sources of pixels [p0, p0 + n) as u8 rows of Kp = 4·K4 bytes (an s8
 * source flipped to u8, the channels padded with zeros to a multiple of
 * 4). A u8 source whose rows are already Kp bytes is used in place. */
PW_TARGET static const uint8_t *pw_gather(const q8pw_t *k, const uint8_t *x,
                                          size_t p0, size_t n, uint8_t *scr) {
    const size_t K = (size_t)k->K, Kp = 4 * (size_t)k->K4;
    if (!k->x_s8 && K == Kp)
        return x + p0 * K;
    const __m512i flip = _mm512_set1_epi8(k->x_s8 ? (char)0x80 : 0);
    if (K == Kp) { /* one contiguous run */
        const uint8_t *s = x + p0 * K;
        size_t len = n * K, i = 0;
        for (; i + 64 <= len; i += 64)
            _mm512_storeu_si512(scr + i, _mm512_xor_si512(
                                             _mm512_loadu_si512(s + i), flip));
        if (i < len) {
            __mmask64 m = ((__mmask64)1 << (len - i)) - 1;
            _mm512_mask_storeu_epi8(scr + i, m, _mm512_xor_si512(
                                        _mm512_maskz_loadu_epi8(m, s + i), flip));
        }
        return scr;
    }
    for (size_t j = 0; j < n; j++) { /* row by row, zero padded */
        const uint8_t *s = x + (p0 + j) * K;
        uint8_t *d = scr + j * Kp;
        for (size_t c = 0; c < Kp; c += 64) {
            size_t m_len = K - c < 64 ? K - c : 64;
            size_t z_len = Kp - c < 64 ? Kp - c : 64;
            __mmask64 m = m_len >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << m_len) - 1;
            __mmask64 z = z_len >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << z_len) - 1;
            /* flip only the real channels: the padding stays u = 0 */
            __m512i v = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, s + c),
                                         _mm512_maskz_mov_epi8(m, flip));
            _mm512_mask_storeu_epi8(d + c, z, v);
        }
    }
    return scr;
}

/* Requantizes one accumulator vector (it already holds the bias) and
 * stores its 16 (or tail) bytes: saturating narrowing, then the clamp on
 * the 16 bytes ([qmin, qmax] lies inside the output type's range). */
#define PW_STORE(ACC, YP)                                                     \
    do {                                                                      \
        __m512i q_ = osp__q8x16_apply(&q, (ACC), hi_dwords);                  \
        __m128i b_ = y_u8 ? _mm_min_epu8(_mm_max_epu8(_mm512_cvtusepi32_epi8(  \
                                  _mm512_max_epi32(q_, zero)), lo8), hi8)      \
                          : _mm_min_epi8(_mm_max_epi8(                         \
                                  _mm512_cvtsepi32_epi8(q_), lo8), hi8);       \
        if (full)                                                             \
            _mm_storeu_si128((__m128i *)(YP), b_);                            \
        else                                                                  \
            _mm_mask_storeu_epi8((YP), msk, b_);                              \
    } while (0)

static inline int32_t pw_dword(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Output pixels [p0, p0 + n) from their u8 sources src (rows of Kp). */
PW_TARGET static void pw_tile(const q8pw_t *k, const uint8_t *src,
                              size_t n, uint8_t *y) {
    const int64_t N = k->N, K4 = k->K4;
    const size_t Kp = 4 * (size_t)K4;
    const bool y_u8 = k->req->y_u8;
    const __m128i lo8 = _mm_set1_epi8((char)k->req->qmin);
    const __m128i hi8 = _mm_set1_epi8((char)k->req->qmax);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i hi_dwords = osp__q8x16_hi_dwords();
    const __mmask16 tail = (__mmask16)((1u << (N % 16)) - 1);
    for (int64_t nb = 0; nb < k->Np; nb += 16) {
        const bool full = nb + 16 <= N;
        const __mmask16 msk = full ? (__mmask16)0xFFFF : tail;
        const int32_t *wb = k->wq + nb * K4;
        osp__q8x16_t q = osp__q8x16_load(k->req, nb);
        q.bias = zero; /* in acc0 */
        const __m512i a_init = _mm512_loadu_si512(k->acc0 + nb);
        uint8_t *yb = y + nb;
        size_t j = 0;
        for (; j + PW_PX <= n; j += PW_PX) {
            __m512i a0 = a_init, a1 = a_init, a2 = a_init, a3 = a_init;
            __m512i a4 = a_init, a5 = a_init, a6 = a_init, a7 = a_init;
            const uint8_t *sp = src + j * Kp;
            const int32_t *wp = wb;
            for (int64_t g = 0; g < K4; g++, sp += 4, wp += 16) {
                const __m512i w = _mm512_load_si512(wp);
#define PW_DP(A, I)                                                           \
    A = _mm512_dpbusd_epi32(A, _mm512_set1_epi32(pw_dword(sp + (I) * Kp)), w)
                PW_DP(a0, 0);
                PW_DP(a1, 1);
                PW_DP(a2, 2);
                PW_DP(a3, 3);
                PW_DP(a4, 4);
                PW_DP(a5, 5);
                PW_DP(a6, 6);
                PW_DP(a7, 7);
            }
            uint8_t *yp = yb + j * (size_t)N;
            PW_STORE(a0, yp);
            PW_STORE(a1, yp + N);
            PW_STORE(a2, yp + 2 * N);
            PW_STORE(a3, yp + 3 * N);
            PW_STORE(a4, yp + 4 * N);
            PW_STORE(a5, yp + 5 * N);
            PW_STORE(a6, yp + 6 * N);
            PW_STORE(a7, yp + 7 * N);
        }
        for (; j < n; j++) {
            __m512i a0 = a_init;
            const uint8_t *sp = src + j * Kp;
            const int32_t *wp = wb;
            for (int64_t g = 0; g < K4; g++, sp += 4, wp += 16) {
                const __m512i w = _mm512_load_si512(wp);
                PW_DP(a0, 0);
            }
#undef PW_DP
            PW_STORE(a0, yb + j * (size_t)N);
        }
    }
}

static void run_pw(const osp__plan_step_t *s) {
    const q8pw_t *k = s->fn_ctx;
    const uint8_t *x = s->tin[0].data; /* 1 byte per element (u8/s8) */
    uint8_t *y = s->tout[0].data;
    int tiles = (int)((k->pixels + k->tile - 1) / k->tile);
    int nt = osp__q8_tile_threads(k->n_thr, tiles);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int t = 0; t < tiles; t++) {
        int tid = osp__q8_tid();
        size_t p0 = (size_t)t * k->tile;
        size_t n = p0 + k->tile <= k->pixels ? k->tile : k->pixels - p0;
        const uint8_t *src = pw_gather(k, x, p0, n, osp__q8_pool_acc(k->pool, tid));
        pw_tile(k, src, n, y + p0 * (size_t)k->N);
    }
}

int osp__q8_pwconv(osp__plan_ctx_t *c, int ni, const osp__plan_conv_geom_t *cg,
                   int32_t zx, osp__q8_req_t *req) {
    if (c->e->opts.tuning.q8_pw == OSP_TUNE_OFF || !req->off_eo ||
        !osp__cpu_caps()->avx512 || !osp__cpu_caps()->avx512_vnni)
        return OSP_EUNSUPPORTED;
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    int x = n->in[0], w = n->in[1], y = n->out[0];
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    const int64_t *xd = X->dims, *yd = Y->dims;
    int64_t group = n->p.conv.group > 0 ? n->p.conv.group : 1;
    if (group != 1 || W->dims[2] != 1 || W->dims[3] != 1 ||
        cg->strides[0] != 1 || cg->strides[1] != 1 || cg->pl[0] || cg->pl[1] ||
        cg->pr[0] || cg->pr[1] || xd[2] != yd[2] || xd[3] != yd[3] ||
        W->dtype != OSP_DT_S8 ||
        (X->dtype != OSP_DT_U8 && X->dtype != OSP_DT_S8))
        return OSP_EUNSUPPORTED;
    int nthr = osp__q8_threads();
    q8pw_t *k = calloc(1, sizeof *k);
    if (!k)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    k->K = xd[1];
    k->K4 = (k->K + 3) / 4;
    k->N = yd[1];
    k->Np = (k->N + 15) & ~(int64_t)15;
    k->pixels = (size_t)(yd[0] * yd[2] * yd[3]);
    k->x_s8 = X->dtype == OSP_DT_S8;
    k->n_thr = nthr;
    /* tile: the gathered sources within ~128 KiB (they are read once per
     * block of 16 output channels, so they should stay in L2), at least
     * one register block, and enough tiles for the threads */
    size_t t = (size_t)(128 * 1024) / (size_t)(4 * k->K4);
    t = t > 512 ? 512 : t < PW_PX ? PW_PX : t;
    size_t per_thr = (k->pixels + (size_t)nthr - 1) / (size_t)nthr;
    if (nthr > 1 && per_thr < t)
        t = per_thr;
    k->tile = (t + PW_PX - 1) / PW_PX * PW_PX;
    size_t wn = (size_t)(k->Np * k->K4 * 16);
    k->wq = aligned_alloc(64, sizeof(int32_t) * wn);
    k->acc0 = aligned_alloc(64, sizeof(int32_t) * (size_t)k->Np);
    if (!k->wq || !k->acc0) {
        q8pw_free(k);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }
    /* IR weights [N][K][1][1] → [Np/16][K4][16] groups of 4 bytes, and
     * each channel's start bias − (zx + s)·Σw (must fit int32) */
    const int8_t *wd = W->data;
    int64_t shift = zx + (k->x_s8 ? 128 : 0);
    for (int64_t o = 0; o < k->Np; o++) {
        int64_t sum = 0;
        for (int64_t gi = 0; gi < k->K4; gi++) {
            uint8_t b[4] = {0, 0, 0, 0};
            for (int64_t i = 0; i < 4; i++) {
                int64_t ch = gi * 4 + i;
                int8_t v = o < k->N && ch < k->K ? wd[o * k->K + ch] : 0;
                b[i] = (uint8_t)v;
                sum += v;
            }
            int32_t q4;
            memcpy(&q4, b, 4);
            k->wq[((o / 16) * k->K4 + gi) * 16 + o % 16] = q4;
        }
        int64_t a0 = (int64_t)req->bias[o] - shift * sum;
        if (a0 < INT32_MIN || a0 > INT32_MAX) {
            q8pw_free(k);
            return OSP_EUNSUPPORTED;
        }
        k->acc0[o] = (int32_t)a0;
    }
    k->pool = osp__q8_pool_get(c->p, nthr,
                               (size_t)(4 * k->K4) * k->tile, 0);
    if (!k->pool) {
        q8pw_free(k);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }

    char note[96];
    snprintf(note, sizeof note, "%zu-pixel tiles, K %lld, exact int32 vpdpbusd",
             k->tile, (long long)k->K);
    int rc = osp__q8_nhwc_step(c, ni, run_pw, k, q8pw_free, "osprey:q8-1x1(avx512_vnni)+requant", note);
    if (rc == 0)
        k->req = req; /* the step's from here on */
    return rc;
}

#else /* no x86-64 AVX-512 intrinsics: the tiled oneDNN path */

int osp__q8_pwconv(osp__plan_ctx_t *c, int ni, const osp__plan_conv_geom_t *cg,
                   int32_t zx, osp__q8_req_t *req) {
    (void)c, (void)ni, (void)cg, (void)zx, (void)req;
    return OSP_EUNSUPPORTED;
}

#endif
