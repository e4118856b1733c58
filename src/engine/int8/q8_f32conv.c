/* q8_f32conv.c — exact quantized CONV (CONV_2D, DEPTHWISE_CONV_2D, grouped)
 * on oneDNN f32 convolutions with integer-valued float carriers.
 *
 * Why: oneDNN 2.6's int8 convolutions have no weight zero points, so TF1
 * uint8 models (per-tensor weights with zw != 0) ran every conv on the
 * single-threaded integer reference kernel. TFLite's accumulator is
 *   acc[o] = Σ (x − zx)(w − zw)
 * with |x − zx| ≤ 255 and |w − zw| ≤ 255: every product is an integer below
 * 2^16, exact in fp32, and every partial sum of any subset of the terms is
 * bounded by Σ|terms|. If that bound is below 2^24 for every output channel
 * (checked here at plan time from the actual weights and the input's
 * quantized range), every fp32 partial sum is an exactly representable
 * integer, so the fp32 result equals the int32 accumulator whatever order
 * or blocking oneDNN sums in (FMA or not). Only the direct algorithm is
 * allowed (Winograd's transforms are not exact), and no bias, scales or
 * post-ops run inside oneDNN.
 *
 * A node becomes three steps, all over NHWC data so that the channel of an
 * element is its index modulo C:
 *   1. fcq-in:  u8/s8 x (NHWC) → f32 (x − zx)             (plan-made loop)
 *   2. oneDNN f32 convolution, weights (w − zw) as f32, no bias
 *   3. fcq-requant: acc = (int32)f + bias; y = clamp(zy +
 *      MultiplyByQuantizedMultiplier(acc)) — ref_q8conv.c's arithmetic
 *      (q8_math.h; rewritten as one 64-bit multiply-add-shift per element so
 *      it vectorises, see osp__q8_req_prepare), so the result is
 *      bit-identical to the reference kernel (and so 0 steps from LiteRT's
 *      builtin kernels).
 * Layers whose bound fails, or where oneDNN offers only its reference f32
 * convolution, stay on the reference kernel. tuning.fcq off turns the
 * path off (for measurement). The two loops split over the engine's OpenMP
 * threads (the runtime libdnnl uses; built with -fopenmp under GCC). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/plan/plan_int.h"
#include "engine/int8/q8_int.h"
#include "engine/int8/q8_x16.h"
#include "engine/int8/q8_math.h"
#include "engine/ops/ref_q8.h"

/* ---- the two loops (also used by the unit test) ------------------------ */

void osp__q8_widen_f32(const void *x, bool is_u8, int32_t zx, size_t n,
                    float *dst) {
    if (is_u8) {
        const uint8_t *a = x;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((int32_t)a[i] - zx);
    } else {
        const int8_t *a = x;
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((int32_t)a[i] - zx);
    }
}

/* TFLite's MultiplyByQuantizedMultiplier with the rounding right shift
 * rounding half up (q8_math.h, osp__q8_mul_by_multiplier_up) for shift = −k ≤ 0
 * and M > 0:
 *   h = srdhm(v, M)       = floor((v·M + 2^30) / 2^31)   (its nudge and
 *                           truncating division are exactly this floor)
 *   r = floor((h + 2^(k−1)) / 2^k)                          (k ≥ 1)
 * and floor((floor(z) + n) / d) = floor((z + n) / d) for integers n, d > 0:
 *   r = (v·M + 2^30 + 2^(30+k)) >> (31 + k)                 (k ≥ 1)
 * A left shift s > 0 is exact as M·2^s when |v|·2^s fits int32 (TFLite
 * would saturate otherwise): one 64-bit multiply-add-shift per element
 * either way, no branches, which vectorises. */
void osp__q8_req_prepare(osp__q8_req_t *r, int64_t vmax, int64_t *m64,
                          int64_t *off64, int64_t *sh64) {
    r->m64 = r->off64 = r->sh64 = NULL;
    for (int64_t o = 0; o < r->channels; o++) {
        int s = r->shift[o];
        int64_t b = r->bias[o] < 0 ? -(int64_t)r->bias[o] : r->bias[o];
        if (r->mult[o] <= 0 || s > 30 || s < -30)
            return;
        if (s > 0 && ((vmax + b) << s) > INT32_MAX)
            return;
        int k = s > 0 ? 0 : -s;
        m64[o] = (int64_t)r->mult[o] << (s > 0 ? s : 0);
        off64[o] = ((int64_t)1 << 30) + (k > 0 ? (int64_t)1 << (30 + k) : 0);
        sh64[o] = 31 + k;
    }
    r->m64 = m64;
    r->off64 = off64;
    r->sh64 = sh64;
}

/* One element of an accumulator array as int32: f32 carriers hold exact
 * integers (the bound), so the conversion is exact; s32 is read as is. */
#define FCQ_LOAD_F32(a, i) ((int32_t)(a)[i])
#define FCQ_LOAD_S32(a, i) ((a)[i])

/* TFLite's arithmetic element by element (q8_math.h): for requantizations
 * osp__q8_req_prepare cannot rewrite (TFLite's saturating left shift). */
#define FCQ_REQUANT_SCALAR_BODY(LOAD)                                         \
    const int64_t C = r->channels;                                            \
    for (size_t p = 0; p < pixels; p++) {                                     \
        size_t base = p * (size_t)C;                                          \
        for (int64_t o = 0; o < C; o++) {                                     \
            int32_t v = LOAD(acc + base, o) + r->bias[o];                     \
            int32_t q =                                                       \
                osp__q8_mul_by_multiplier_up(v, r->mult[o], r->shift[o]);       \
            int64_t t = (int64_t)q + r->zy;                                   \
            t = t < r->qmin ? r->qmin : t > r->qmax ? r->qmax : t;            \
            if (r->y_u8)                                                      \
                ((uint8_t *)y)[base + (size_t)o] = (uint8_t)t;                \
            else                                                              \
                ((int8_t *)y)[base + (size_t)o] = (int8_t)t;                  \
        }                                                                     \
    }

/* The prepared form; the channel loop is a straight multiply-add-shift-clamp
 * that the compiler vectorises (with AVX-512's 64-bit multiply and
 * arithmetic shifts in the variant below). LOAD reads one accumulator. */
#define FCQ_REQUANT_BODY(ACC_T, LOAD)                                              \
    const int64_t C = r->channels;                                            \
    const int64_t *m = r->m64, *off = r->off64, *sh = r->sh64;                \
    const int32_t *bias = r->bias;                                            \
    const int64_t zy = r->zy, lo = r->qmin, hi = r->qmax;                     \
    for (size_t p = 0; p < pixels; p++) {                                     \
        const ACC_T *a = acc + p * (size_t)C;                                 \
        if (r->y_u8) {                                                        \
            uint8_t *yo = (uint8_t *)y + p * (size_t)C;                       \
            for (int64_t o = 0; o < C; o++) {                                 \
                int64_t v = (int64_t)(LOAD(a, o) + bias[o]);                  \
                int64_t t = ((v * m[o] + off[o]) >> sh[o]) + zy;              \
                t = t < lo ? lo : t;                                          \
                t = t > hi ? hi : t;                                          \
                yo[o] = (uint8_t)t;                                           \
            }                                                                 \
        } else {                                                              \
            int8_t *yo = (int8_t *)y + p * (size_t)C;                         \
            for (int64_t o = 0; o < C; o++) {                                 \
                int64_t v = (int64_t)(LOAD(a, o) + bias[o]);                  \
                int64_t t = ((v * m[o] + off[o]) >> sh[o]) + zy;              \
                t = t < lo ? lo : t;                                          \
                t = t > hi ? hi : t;                                          \
                yo[o] = (int8_t)t;                                            \
            }                                                                 \
        }                                                                     \
    }

/* GCC vectorises these loops only at -O3 (Release builds use -O2); clang has
 * no per-function optimize attribute and vectorises them at -O2 anyway. */
#if defined(__clang__)
#define FCQ_O3
#define FCQ_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw")))
#else
#define FCQ_O3 __attribute__((optimize("O3")))
#define FCQ_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw"), \
                                  optimize("O3")))
#endif

/* Each accumulator type gets the scalar loop, the portable prepared loop
 * and (x86-64) its AVX-512 build, all from the bodies above, plus the
 * dispatcher that picks one. */
#if defined(__x86_64__) && defined(__GNUC__)
#define FCQ_HAVE_AVX512 1
#define FCQ_AVX512_VARIANT(NAME, ACC_T, LOAD)                                 \
    FCQ_AVX512 static void NAME##_avx512(const osp__q8_req_t *r,              \
                                         const ACC_T *acc, size_t pixels,     \
                                         void *y) {                           \
        FCQ_REQUANT_BODY(ACC_T, LOAD)                                            \
    }
#else
#define FCQ_HAVE_AVX512 0
#define FCQ_AVX512_VARIANT(NAME, ACC_T, LOAD)
#endif

static bool fcq_avx512(void) {
#if FCQ_HAVE_AVX512
    return osp__cpu_caps()->avx512;
#else
    return false;
#endif
}

#define FCQ_REQUANT_FNS(LINKAGE, NAME, ACC_T, LOAD)                           \
    static void NAME##_scalar(const osp__q8_req_t *r, const ACC_T *acc,       \
                              size_t pixels, void *y) {                       \
        FCQ_REQUANT_SCALAR_BODY(LOAD)                                         \
    }                                                                         \
    FCQ_O3 static void NAME##_fast(const osp__q8_req_t *r, const ACC_T *acc,  \
                                   size_t pixels, void *y) {                  \
        FCQ_REQUANT_BODY(ACC_T, LOAD)                                            \
    }                                                                         \
    FCQ_AVX512_VARIANT(NAME, ACC_T, LOAD)                                     \
    LINKAGE void NAME(const osp__q8_req_t *r, const ACC_T *acc,               \
                      size_t pixels, void *y) {                               \
        if (!r->m64)                                                          \
            NAME##_scalar(r, acc, pixels, y);                                 \
        else if (FCQ_HAVE_AVX512 && fcq_avx512())                             \
            FCQ_CALL_AVX512(NAME, r, acc, pixels, y);                         \
        else                                                                  \
            NAME##_fast(r, acc, pixels, y);                                   \
    }

#if FCQ_HAVE_AVX512
#define FCQ_CALL_AVX512(NAME, ...) NAME##_avx512(__VA_ARGS__)
#else
#define FCQ_CALL_AVX512(NAME, ...) NAME##_fast(__VA_ARGS__)
#endif

FCQ_REQUANT_FNS(, osp__q8_requant_f32, float, FCQ_LOAD_F32)
FCQ_REQUANT_FNS(static, requant_s32_generic, int32_t, FCQ_LOAD_S32)

/* s32 accumulators, 16 channels per vector (the exact path's hot loop: it
 * runs over every convolution output): q8_x16.h's arithmetic, ~15
 * instructions per 16 outputs where the portable 64-bit loop needs twice as
 * many. Bit-identical to it (tests/unit/test_qconv_f32.c). */
#if FCQ_HAVE_AVX512 && OSP_Q8X16

/* Channel block by channel block (16 channels, the last one masked), the
 * pixels inner: the block's constants stay in registers, so a block of 16
 * outputs costs one load, one store and ~13 register ops (with the
 * constants reloaded per pixel it was load-bound: 6 zmm loads per block).
 * NARROW(q) clamps / narrows q to 16 bytes. */
#define FCQ_X16_LOOP(NARROW)                                                  \
    for (int64_t o = 0; o < C; o += 16) {                                     \
        const __mmask16 msk = o + 16 <= C ? (__mmask16)0xFFFF : tail;         \
        const osp__q8x16_t k = osp__q8x16_load(r, o);                          \
        const int32_t *ap = acc + o;                                          \
        uint8_t *yp = (uint8_t *)y + o; /* u8 or s8 bytes */                  \
        for (size_t p = 0; p < pixels; p++, ap += C, yp += C) {               \
            __m512i q = osp__q8x16_apply(                                     \
                &k, _mm512_maskz_loadu_epi32(msk, ap), hi_dwords);            \
            if (msk == 0xFFFF) /* the register form: vpmov* to memory     \
                                  with a mask is slow on Zen4 */              \
                _mm_storeu_si128((__m128i *)yp, NARROW(q));                   \
            else                                                              \
                _mm512_mask_storeu_epi8(yp, (__mmask64)msk,                   \
                                        _mm512_castsi128_si512(NARROW(q)));   \
        }                                                                     \
    }

__attribute__((target("avx512f,avx512bw"))) static void
requant_s32_x16(const osp__q8_req_t *r, const int32_t *acc, size_t pixels,
                void *y) {
    const int64_t C = r->channels;
    const __mmask16 tail = (__mmask16)((1u << (C % 16)) - 1);
    const __m512i lo = _mm512_set1_epi32(r->qmin), hi = _mm512_set1_epi32(r->qmax);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i hi_dwords = osp__q8x16_hi_dwords();
    /* a fused activation needs the clamp; the full type range is what the
     * saturating narrowing does anyway (u8: after max(q, 0)) */
#define FCQ_NARROW_CLAMP(q) osp__q8x16_narrow(q, lo, hi)
#define FCQ_NARROW_U8(q) _mm512_cvtusepi32_epi8(_mm512_max_epi32(q, zero))
#define FCQ_NARROW_S8(q) _mm512_cvtsepi32_epi8(q)
    if (r->y_u8 ? r->qmin > 0 || r->qmax < 255 : r->qmin > -128 || r->qmax < 127)
        FCQ_X16_LOOP(FCQ_NARROW_CLAMP)
    else if (r->y_u8)
        FCQ_X16_LOOP(FCQ_NARROW_U8)
    else
        FCQ_X16_LOOP(FCQ_NARROW_S8)
}
#endif

void osp__q8_requant_s32(const osp__q8_req_t *r, const int32_t *acc,
                          size_t pixels, void *y) {
#if FCQ_HAVE_AVX512 && OSP_Q8X16
    if (r->off_eo && fcq_avx512()) {
        requant_s32_x16(r, acc, pixels, y);
        return;
    }
#endif
    requant_s32_generic(r, acc, pixels, y);
}

/* Fills r->off_eo / r->sh32 (arrays of r->channels, caller-provided) when
 * the 16-lane form applies to the prepared r; else leaves them NULL. */
static void req_prepare_x16(osp__q8_req_t *r, int64_t *off_eo, int32_t *sh32) {
    r->off_eo = NULL;
    r->sh32 = NULL;
    if (!r->m64)
        return;
    for (int64_t o = 0; o < r->channels; o++)
        if (r->shift[o] >= 0) /* needs S = 31 + k ≥ 32 and M unshifted */
            return;
    for (int64_t b = 0; b < r->channels; b += 16)
        for (int i = 0; i < 16 && b + i < r->channels; i++) {
            int64_t o = b + i;
            /* lane i of the block: even lanes first, then odd */
            int64_t slot = b + (i % 2 ? 8 + i / 2 : i / 2);
            off_eo[slot] = r->off64[o] + (int64_t)r->zy * ((int64_t)1 << r->sh64[o]);
            sh32[o] = (int32_t)(r->sh64[o] - 32);
        }
    r->off_eo = off_eo;
    r->sh32 = sh32;
}

int64_t osp__q8_bound(const void *w, bool w_u8, int64_t channels,
                       int64_t per_channel, const int32_t *w_zp, int zp_count,
                       int32_t x_maxabs) {
    int64_t worst = 0;
    for (int64_t o = 0; o < channels; o++) {
        int32_t z = w_zp[zp_count == 1 ? 0 : o];
        int64_t s = 0;
        for (int64_t k = 0; k < per_channel; k++) {
            size_t i = (size_t)(o * per_channel + k);
            int32_t v = w_u8 ? (int32_t)((const uint8_t *)w)[i]
                             : (int32_t)((const int8_t *)w)[i];
            s += v > z ? v - z : z - v;
        }
        if (s > worst)
            worst = s;
    }
    return worst * x_maxabs;
}

/* ---- plan steps --------------------------------------------------------- */

typedef struct fcq_in_s {
    int32_t zx;
    bool is_u8;
    size_t count;
} fcq_in_t;

/* Threads for a loop over n elements: the engine's OpenMP budget (lanes
 * and callers set it) for big tensors, 1 for small ones or without OpenMP. */
static int loop_threads(size_t n) {
#ifdef _OPENMP
    int t = omp_get_max_threads();
    return n >= ((size_t)1 << 16) && t > 1 ? t : 1;
#else
    (void)n;
    return 1;
#endif
}

static void run_in(const osp__plan_step_t *s) {
    const fcq_in_t *k = s->fn_ctx;
    const uint8_t *x = s->tin[0].data; /* 1 byte per element (u8/s8) */
    float *f = s->tout[0].data;
    int nt = loop_threads(k->count);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        size_t a = k->count * (size_t)t / (size_t)nt;
        size_t b = k->count * (size_t)(t + 1) / (size_t)nt;
        osp__q8_widen_f32(x + a, k->is_u8, k->zx, b - a, f + a);
    }
}

void osp__q8_lut_run(const uint8_t *lut, const uint8_t *a, const uint8_t *b,
                     uint8_t *y, size_t n) {
    int nt = loop_threads(n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        size_t i0 = n * (size_t)t / (size_t)nt, i1 = n * (size_t)(t + 1) / (size_t)nt;
        if (!b)
            for (size_t i = i0; i < i1; i++)
                y[i] = lut[a[i]];
        else
            for (size_t i = i0; i < i1; i++)
                y[i] = lut[(size_t)a[i] << 8 | b[i]];
    }
}

/* The requantization step: the accumulators split by pixels over the
 * engine's OpenMP threads. */
static void run_requant(const osp__plan_step_t *s) {
    const osp__q8_req_t *r = s->fn_ctx;
    uint8_t *y = s->tout[0].data; /* 1 byte per element (u8/s8) */
    size_t C = (size_t)r->channels;
    int nt = loop_threads(r->pixels * C);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        size_t a = r->pixels * (size_t)t / (size_t)nt;
        size_t b = r->pixels * (size_t)(t + 1) / (size_t)nt;
        if (r->acc_s32)
            osp__q8_requant_s32(r, (const int32_t *)s->tin[0].data + a * C,
                                 b - a, y + a * C);
        else
            osp__q8_requant_f32(r, (const float *)s->tin[0].data + a * C, b - a,
                             y + a * C);
    }
}

osp__q8_req_t *osp__q8_req_create(const osp_quant_t *xq,
                                   const osp_quant_t *wq,
                                   const osp_quant_t *yq, int64_t C,
                                   bool f32_product, const int32_t *bias,
                                   int32_t qmin, int32_t qmax, bool y_u8,
                                   size_t pixels, int64_t acc_max) {
    /* the struct, then the int64 arrays (8-byte aligned), then the int32
     * ones: one block, so the step owns it with one free() */
    /* the 16-lane loop reads whole blocks of 16 channels: the arrays it
     * reads are padded (with zeros) to a multiple of 16 */
    int64_t Cp = (C + 15) & ~(int64_t)15;
    size_t sz = sizeof(osp__q8_req_t) + sizeof(int64_t) * (3 * (size_t)C + (size_t)Cp) +
                sizeof(int32_t) * ((size_t)C + 3 * (size_t)Cp);
    osp__q8_req_t *r = calloc(1, sz);
    if (!r)
        return NULL;
    r->channels = C;
    int64_t *m64 = (int64_t *)(r + 1), *off64 = m64 + C, *sh64 = off64 + C;
    int64_t *off_eo = sh64 + C;
    r->bias = (int32_t *)(off_eo + Cp);
    r->mult = r->bias + Cp;
    int32_t *sh32 = r->mult + Cp;
    r->shift = (int *)(sh32 + Cp);
    for (int64_t o = 0; o < C; o++) {
        float ws = wq->scale[wq->count == 1 ? 0 : o];
        double prod = f32_product ? (double)(float)(xq->scale[0] * ws)
                                  : (double)xq->scale[0] * (double)ws;
        osp__q8_quantize_multiplier(prod / (double)yq->scale[0], &r->mult[o],
                                  &r->shift[o]);
        r->bias[o] = bias ? bias[o] : 0;
    }
    r->zy = yq->zero_point[0];
    r->qmin = qmin;
    r->qmax = qmax;
    r->y_u8 = y_u8;
    r->pixels = pixels;
    osp__q8_req_prepare(r, acc_max, m64, off64, sh64);
    req_prepare_x16(r, off_eo, sh32);
    return r;
}

int osp__q8_step_requant(osp__plan_ctx_t *c, int ni, int acc_buf, int y_buf,
                          osp__q8_req_t *req, bool acc_s32, const char *impl,
                          const char *note) {
    req->acc_s32 = acc_s32;
    return osp__step_fn(c, ni, 1, &acc_buf, y_buf, run_requant, req, impl,
                        note);
}

/* Reorders plain f32 weights (malloc'd `src`, consumed) into md once, at
 * build, and hands them to the plan as a constant buffer. */
static int const_weights(osp__plan_ctx_t *c, float *src,
                         const dnnl_memory_desc_t *plain,
                         const dnnl_memory_desc_t *md) {
    if (dnnl_memory_desc_equal(*plain, *md))
        return osp__const_raw(c, src, plain);
    size_t bytes = dnnl_memory_desc_get_size(*md);
    void *dst = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    dnnl_memory_t ms = NULL, md_mem = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    bool ok = dst &&
              dnnl_memory_create(&ms, *plain, c->e->dnnl_eng, src) ==
                  dnnl_success &&
              dnnl_memory_create(&md_mem, *md, c->e->dnnl_eng, dst) ==
                  dnnl_success &&
              dnnl_reorder_primitive_desc_create(&rpd, *plain, c->e->dnnl_eng,
                                                 *md, c->e->dnnl_eng, NULL) ==
                  dnnl_success &&
              dnnl_primitive_create(&r, rpd) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md_mem}};
        ok = dnnl_primitive_execute(r, c->e->stream, 2, args) ==
                 dnnl_success &&
             dnnl_stream_wait(c->e->stream) == dnnl_success;
    }
    dnnl_primitive_destroy(r);
    dnnl_primitive_desc_destroy(rpd);
    dnnl_memory_destroy(ms);
    dnnl_memory_destroy(md_mem);
    free(src);
    if (!ok) {
        free(dst);
        return osp_err_set(c->err, OSP_EINTERNAL,
                           "plan: fp32-carrier weight reorder failed");
    }
    return osp__const_raw(c, dst, md);
}

/* What osp__q8_f32conv learns about its node before it builds anything. */
typedef struct fcq_node_s {
    int x, w, bias, y;
    const osp_value_t *X, *W, *Y;
    const osp_quant_t *xq, *wq, *yq;
    int64_t G, O, per_o, bound;
    int32_t qmin, qmax, zx;
} fcq_node_t;

/* The descriptors of the path: f32 carriers in and out (NHWC), the weights
 * plain and as the primitive chooses, the 8-bit x and y (NHWC). */
typedef struct fcq_mds_s {
    dnnl_memory_desc_t src, dst, w_any, w_plain, xq, yq;
} fcq_mds_t;

/* Fills k when node ni is a quantized 2-D CONV this path can take and the
 * bound from its weights and x's quantized range proves the f32
 * accumulation exact; else OSP_EUNSUPPORTED. */
static int fcq_check(osp__plan_ctx_t *c, int ni, fcq_node_t *k) {
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    if (c->e->opts.tuning.fcq == OSP_TUNE_OFF || n->n_in < 2 || n->n_in > 3 || n->n_out != 1)
        return OSP_EUNSUPPORTED;
    int x = n->in[0], w = n->in[1], bias = n->n_in > 2 ? n->in[2] : -1;
    int y = n->out[0];
    if (x < 0 || w < 0 || y < 0)
        return OSP_EUNSUPPORTED;
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    osp_tensor_t tx = {.dtype = X->dtype}, ty = {.dtype = Y->dtype};
    const osp_quant_t *xq = osp__q8_tensor(g, x, &tx);
    const osp_quant_t *yq = osp__q8_tensor(g, y, &ty);
    if (!xq || !yq || X->rank != 4 || W->rank != 4 || Y->rank != 4 ||
        n->p.conv.win.n_spatial != 2 || !osp_value_is_const(W) ||
        (W->dtype != OSP_DT_U8 && W->dtype != OSP_DT_S8) || !W->quant)
        return OSP_EUNSUPPORTED;
    int64_t G = n->p.conv.group > 0 ? n->p.conv.group : 1;
    int64_t O = W->dims[0], IG = W->dims[1], C = X->dims[1];
    if (O % G || IG * G != C || Y->dims[1] != O || Y->dims[0] != X->dims[0])
        return OSP_EUNSUPPORTED;
    const osp_quant_t *wq = W->quant;
    if (wq->count != 1 && (wq->axis != 0 || wq->count != O))
        return OSP_EUNSUPPORTED;
    if (bias >= 0 && (!osp_value_is_const(&g->values[bias]) ||
                      g->values[bias].dtype != OSP_DT_S32 ||
                      osp_value_numel(&g->values[bias]) != (size_t)O))
        return OSP_EUNSUPPORTED;
    int32_t qmin, qmax;
    if (!osp__q8_post_range(n, yq, Y->dtype, &qmin, &qmax))
        return OSP_EUNSUPPORTED;

    /* The exactness bound, from the weights and x's quantized range. */
    int32_t tmin, tmax, zx = xq->zero_point[0];
    osp__q8_type_range(X->dtype, &tmin, &tmax);
    int32_t xmax = zx - tmin > tmax - zx ? zx - tmin : tmax - zx;
    int64_t per_o = W->dims[1] * W->dims[2] * W->dims[3];
    int64_t bound = osp__q8_bound(W->data, W->dtype == OSP_DT_U8, O, per_o,
                                   wq->zero_point, wq->count, xmax);
    if (bound >= OSP_Q8_EXACT_LIMIT)
        return OSP_EUNSUPPORTED;
    *k = (fcq_node_t){.x = x, .w = w, .bias = bias, .y = y, .X = X, .W = W,
                      .Y = Y, .xq = xq, .wq = wq, .yq = yq, .G = G, .O = O,
                      .per_o = per_o, .bound = bound, .qmin = qmin,
                      .qmax = qmax, .zx = zx};
    return 0;
}

/* The f32 convolution's primitive descriptor over the carriers (m filled
 * on the way); OSP_EUNSUPPORTED when oneDNN has no fast kernel for it. */
static int fcq_pd(osp__plan_ctx_t *c, const fcq_node_t *k,
                  const osp__plan_conv_geom_t *cg, fcq_mds_t *m,
                  dnnl_primitive_desc_t *pd) {
    const int64_t *xd = k->X->dims, *yd = k->Y->dims;
    osp__md_tag(c, &m->src, 4, xd, dnnl_f32, dnnl_acdb);
    osp__md_tag(c, &m->dst, 4, yd, dnnl_f32, dnnl_acdb);
    osp__md_tag(c, &m->xq, 4, xd, osp__dnnl_dt(k->X->dtype), dnnl_acdb);
    osp__md_tag(c, &m->yq, 4, yd, osp__dnnl_dt(k->Y->dtype), dnnl_acdb);
    osp__md_any(c, &m->w_any, cg->wr, cg->wd, dnnl_f32);
    osp__md_plain(c, &m->w_plain, cg->wr, cg->wd, dnnl_f32);
    dnnl_primitive_attr_t attr = osp__attr_new();
    if (!attr)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    return osp__pd_fast(dnnl_convolution_forward_primitive_desc_create(
                            pd, c->e->dnnl_eng, dnnl_forward_inference,
                            dnnl_convolution_direct, m->src, m->w_any, NULL,
                            m->dst, cg->strides, cg->dil, cg->pl, cg->pr, attr),
                        attr, pd);
}

/* The constants: (w − zw) as f32 in plain layout (*wf), the
 * requantization (*req) and the widening step's context (*fin), all
 * malloc'd; OSP_ENOMEM (nothing left allocated) when one fails. */
static int fcq_consts(osp__plan_ctx_t *c, const fcq_node_t *k, float **wf,
                      osp__q8_req_t **req, fcq_in_t **fin) {
    const osp_graph_t *g = c->g;
    const osp_value_t *X = k->X, *W = k->W, *Y = k->Y;
    const osp_quant_t *wq = k->wq;
    int64_t O = k->O, per_o = k->per_o;
    size_t wn = osp_value_numel(W);
    *wf = aligned_alloc(64, (sizeof(float) * wn + 63) & ~(size_t)63);
    *req = osp__q8_req_create(
        k->xq, wq, k->yq, O, X->dtype == OSP_DT_U8,
        k->bias >= 0 ? (const int32_t *)g->values[k->bias].data : NULL,
        k->qmin, k->qmax, Y->dtype == OSP_DT_U8,
        (size_t)(Y->dims[0] * Y->dims[2] * Y->dims[3]), k->bound);
    *fin = malloc(sizeof **fin);
    if (!*wf || !*req || !*fin) {
        free(*wf);
        free(*req);
        free(*fin);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }
    for (int64_t o = 0; o < O; o++) {
        int32_t z = wq->zero_point[wq->count == 1 ? 0 : o];
        float *dst = *wf + (size_t)(o * per_o);
        if (W->dtype == OSP_DT_U8)
            osp__q8_widen_f32((const uint8_t *)W->data + o * per_o, true, z,
                           (size_t)per_o, dst);
        else
            osp__q8_widen_f32((const int8_t *)W->data + o * per_o, false, z,
                           (size_t)per_o, dst);
    }
    (*fin)->zx = k->zx;
    (*fin)->is_u8 = X->dtype == OSP_DT_U8;
    (*fin)->count = osp_value_numel(X);
    return 0;
}

/* Appends the three steps (widen x, accumulate, requantize) and binds y;
 * consumes pd, wf, req and fin whatever happens. */
static int fcq_steps(osp__plan_ctx_t *c, int ni, const fcq_node_t *k,
                     const fcq_mds_t *m, dnnl_primitive_desc_t pd, float *wf,
                     osp__q8_req_t *req, fcq_in_t *fin) {
    dnnl_memory_desc_t wmd = osp__md_query(c, pd, dnnl_query_weights_md);
    char note[96];
    int xb = -1, fb = -1, wb = -1, ab = -1, yb = -1;
    int rc = const_weights(c, wf, &m->w_plain, &wmd);
    wb = rc;
    if (rc >= 0)
        rc = xb = osp__buf_as(c, k->x, &m->xq);
    if (rc >= 0)
        rc = fb = osp__buf_new(c, &m->src, -1);
    if (rc >= 0)
        rc = ab = osp__buf_new(c, &m->dst, -1);
    if (rc >= 0)
        rc = yb = osp__buf_new(c, &m->yq, k->y);
    if (rc < 0) {
        dnnl_primitive_desc_destroy(pd);
        free(req);
        free(fin);
        return rc;
    }
    snprintf(note, sizeof note, "x-%d as f32", (int)k->zx);
    rc = osp__step_fn(c, ni, 1, &xb, fb, run_in, fin, "osprey:fcq-in", note);
    if (rc < 0) {
        dnnl_primitive_desc_destroy(pd);
        free(req);
        return rc;
    }
    int kinds[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
    int bufs[3] = {fb, wb, ab};
    snprintf(note, sizeof note, "fp32-carrier accumulate, bound %lld < 2^24",
             (long long)k->bound);
    rc = osp__step_dnnl(c, ni, pd, 3, kinds, bufs, note);
    if (rc < 0) {
        free(req);
        return rc;
    }
    snprintf(note, sizeof note, "fixed-point requant [%d,%d]", (int)k->qmin,
             (int)k->qmax);
    rc = osp__q8_step_requant(c, ni, ab, yb, req, false,
                               "osprey:fcq-requant", note);
    if (rc < 0)
        return rc;
    osp__bind_value(c, k->y, yb);
    return 0;
}

int osp__q8_f32conv(osp__plan_ctx_t *c, int ni) {
    fcq_node_t k;
    int rc = fcq_check(c, ni, &k);
    if (rc < 0)
        return rc;
    osp__plan_conv_geom_t cg;
    rc = osp__conv_geom(c, &c->g->nodes[ni], k.X, k.W, k.Y, k.G, &cg);
    if (rc < 0)
        return rc;
    fcq_mds_t m;
    dnnl_primitive_desc_t pd = NULL;
    if ((rc = fcq_pd(c, &k, &cg, &m, &pd)) < 0)
        return rc;
    float *wf;
    osp__q8_req_t *req;
    fcq_in_t *fin;
    if ((rc = fcq_consts(c, &k, &wf, &req, &fin)) < 0) {
        dnnl_primitive_desc_destroy(pd);
        return rc;
    }
    /* Committed from here on (pd, wf, req, fin are consumed). */
    return fcq_steps(c, ni, &k, &m, pd, wf, req, fin);
}

/* ---- oneDNN int8 convolution tiled with its exact requantization ---------
 *
 * The exact int8 path (dnnl_q8conv.c) needs the int32 accumulators in
 * memory: 4 bytes per output element where an s8 destination needs 1. Run
 * over a whole batch, those buffers are tens of MB (MobileNetV2 at batch 8:
 * 38 MB for one 112×112×96 layer), so the convolution's stores and the
 * requantization's loads go to DRAM, and the exact path ran at half the
 * speed of oneDNN's own (inexact) requantization. Here a node is one step
 * that cuts its output into tiles — one image × a band of output rows — of
 * at most tuning.q8_tile_kb (default 384) KiB of s32, runs the oneDNN
 * convolution of each tile into a per-thread s32 buffer that stays in L2,
 * and requantizes it straight into the u8/s8 output (NHWC, so a band of
 * rows is one contiguous run of the input and of the output). The tiles are
 * split over the engine's OpenMP threads; oneDNN runs single-threaded
 * inside the parallel region, each thread with its own memory objects,
 * stream and scratchpad. A band's input is the rows its outputs read
 * (strides, dilation, kernel height), with the convolution's top/bottom
 * padding only on the bands that touch the border, so each band's
 * primitive computes exactly the rows of the whole convolution: a handful
 * of distinct band shapes (first, middle, last) get one primitive each, all
 * sharing the weights in one layout. */

#define Q8T_MAX_VAR 6 /* distinct band shapes; more → not tiled */

typedef struct q8t_var_s {
    dnnl_primitive_t prim;
    dnnl_memory_desc_t src_md, dst_md, scr_md;
    size_t scr_bytes;
    int64_t in_rows, out_rows, pad_t, pad_b;
} q8t_var_t;

typedef struct q8t_band_s {
    int var;
    int64_t in_row, out_row; /* first input / output row */
} q8t_band_t;

/* The per-thread tile buffers of one plan, shared by all its tiled
 * convolutions (steps of a plan run one after another, and a plan runs on
 * one thread at a time), grown to the largest need while the plan is
 * built. Found by plan in a small registry (plans of several engines and
 * lanes are built concurrently); freed with the last step that uses it.
 * One set per convolution cost ~25 MB for MobileNetV2 at batch 8. */
struct osp__q8_pool_s {
    const void *plan; /* the owning plan (registry key) */
    int refs;
    int n_thr;
    size_t acc_bytes, scr_bytes; /* per thread */
    void **acc, **scr;           /* n_thr each, 64-byte aligned */
    struct osp__q8_pool_s *next;
};

void *osp__q8_pool_acc(const osp__q8_pool_t *pl, int tid) { return pl->acc[tid]; }

int osp__q8_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int osp__q8_tid(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int osp__q8_tile_threads(int n_thr, int tiles) {
    int nt = osp__q8_threads();
    nt = nt > n_thr ? n_thr : nt;
    return nt > tiles ? tiles : nt;
}

size_t osp__q8_tile_bytes(const osp_engine_t *e) {
    int kb = e->opts.tuning.q8_tile_kb;
    return (size_t)(kb > 0 ? kb : OSP_Q8_TILE_KB_DEFAULT) * 1024;
}

int osp__q8_nhwc_step(osp__plan_ctx_t *c, int ni, void (*run)(const osp__plan_step_t *),
                      void *ctx, void (*ctx_free)(void *), const char *impl,
                      const char *note) {
    const osp_node_t *n = &c->g->nodes[ni];
    int x = n->in[0], y = n->out[0];
    const int64_t *xd = c->g->values[x].dims, *yd = c->g->values[y].dims;
    dnnl_memory_desc_t xq_md, yq_md;
    osp__md_tag(c, &xq_md, 4, xd, osp__dnnl_dt(c->g->values[x].dtype), dnnl_acdb);
    osp__md_tag(c, &yq_md, 4, yd, osp__dnnl_dt(c->g->values[y].dtype), dnnl_acdb);
    int xb = osp__buf_as(c, x, &xq_md);
    int yb = xb < 0 ? xb : osp__buf_new(c, &yq_md, y);
    void **box = yb < 0 ? NULL : malloc(sizeof *box);
    if (!box) {
        ctx_free(ctx);
        return yb < 0 ? yb : osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }
    /* osp__step_fn frees its context with free() on failure: hand it a
     * box, keep ownership of ctx until the step exists */
    *box = ctx;
    int si = osp__step_fn(c, ni, 1, &xb, yb, run, box, impl, note);
    if (si < 0) {
        ctx_free(ctx); /* the box was freed by osp__step_fn */
        return si;
    }
    free(box);
    c->p->steps[si].fn_ctx = ctx;
    c->p->steps[si].fn_free = ctx_free;
    osp__bind_value(c, y, yb);
    return 0;
}

static pthread_mutex_t q8t_pools_mu = PTHREAD_MUTEX_INITIALIZER;
static osp__q8_pool_t *q8t_pools;

static void q8t_pool_free_locked(osp__q8_pool_t *pl) {
    for (osp__q8_pool_t **pp = &q8t_pools; *pp; pp = &(*pp)->next)
        if (*pp == pl) {
            *pp = pl->next;
            break;
        }
    for (int t = 0; t < pl->n_thr; t++) {
        free(pl->acc[t]);
        free(pl->scr[t]);
    }
    free(pl->acc);
    free(pl->scr);
    free(pl);
}

void osp__q8_pool_release(osp__q8_pool_t *pl) {
    if (!pl)
        return;
    pthread_mutex_lock(&q8t_pools_mu);
    if (--pl->refs == 0)
        q8t_pool_free_locked(pl);
    pthread_mutex_unlock(&q8t_pools_mu);
}

/* Grows buffers to n bytes (contents need not survive). */
static bool q8t_grow(void **bufs, int n_thr, size_t *have, size_t n) {
    if (n <= *have)
        return true;
    size_t sz = (n + 63) & ~(size_t)63;
    for (int t = 0; t < n_thr; t++) {
        free(bufs[t]);
        bufs[t] = aligned_alloc(64, sz);
        if (!bufs[t])
            return false;
    }
    *have = n;
    return true;
}

osp__q8_pool_t *osp__q8_pool_get(const void *p, int n_thr, size_t acc,
                             size_t scr) {
    pthread_mutex_lock(&q8t_pools_mu);
    osp__q8_pool_t *pl = q8t_pools;
    while (pl && pl->plan != p)
        pl = pl->next;
    if (!pl && (pl = calloc(1, sizeof *pl)) != NULL) {
        pl->plan = p;
        pl->n_thr = n_thr;
        pl->acc = calloc((size_t)n_thr, sizeof *pl->acc);
        pl->scr = calloc((size_t)n_thr, sizeof *pl->scr);
        pl->next = q8t_pools;
        q8t_pools = pl;
        if (!pl->acc || !pl->scr) {
            q8t_pool_free_locked(pl);
            pl = NULL;
        }
    }
    bool ok = pl && pl->n_thr >= n_thr &&
              q8t_grow(pl->acc, pl->n_thr, &pl->acc_bytes, acc) &&
              q8t_grow(pl->scr, pl->n_thr, &pl->scr_bytes, scr);
    if (pl && !ok) {
        /* a failed grow leaves NULL buffers: the plan build fails anyway */
        if (pl->refs == 0)
            q8t_pool_free_locked(pl);
        pl = NULL;
    } else if (pl) {
        pl->refs++;
    }
    pthread_mutex_unlock(&q8t_pools_mu);
    return pl;
}

typedef struct q8t_thr_s {
    dnnl_stream_t stream;
    dnnl_memory_t zp; /* the source zero point (oneDNN 3: a runtime argument) */
    dnnl_memory_t src[Q8T_MAX_VAR], wei[Q8T_MAX_VAR], dst[Q8T_MAX_VAR],
        scr[Q8T_MAX_VAR];
} q8t_thr_t;

typedef struct q8t_s {
    osp__q8_req_t *req;
    int n_var;
    q8t_var_t var[Q8T_MAX_VAR];
    int n_bands;
    q8t_band_t *bands;
    int64_t n, ow;
    size_t x_img, y_img, x_row, y_row; /* bytes per image / row */
    int n_thr;
    q8t_thr_t *thr;
    osp__q8_pool_t *pool; /* the tile buffers (shared with the plan's others) */
    int32_t zx;           /* the source zero point, read through thr[].zp */
} q8t_t;

/* The step context: a box, so that osp__step_fn freeing it on failure
 * leaves the oneDNN objects to us. */
typedef struct q8t_box_s {
    q8t_t *k;
} q8t_box_t;

static void q8t_free(q8t_t *k) {
    if (!k)
        return;
    for (int t = 0; k->thr && t < k->n_thr; t++) {
        q8t_thr_t *th = &k->thr[t];
        for (int v = 0; v < Q8T_MAX_VAR; v++) {
            dnnl_memory_destroy(th->src[v]);
            dnnl_memory_destroy(th->wei[v]);
            dnnl_memory_destroy(th->dst[v]);
            dnnl_memory_destroy(th->scr[v]);
        }
        dnnl_memory_destroy(th->zp);
        dnnl_stream_destroy(th->stream);
    }
    osp__q8_pool_release(k->pool);
    for (int v = 0; v < k->n_var; v++)
        dnnl_primitive_destroy(k->var[v].prim);
    free(k->thr);
    free(k->bands);
    free(k->req);
    free(k);
}

static void q8t_box_free(void *ctx) {
    q8t_box_t *b = ctx;
    if (b)
        q8t_free(b->k);
    free(b);
}

static void run_q8t(const osp__plan_step_t *s) {
    const q8t_t *k = ((const q8t_box_t *)s->fn_ctx)->k;
    const uint8_t *x = s->tin[0].data; /* 1 byte per element (u8/s8) */
    void *w = s->tin[1].data;
    uint8_t *y = s->tout[0].data;
    int tiles = (int)k->n * k->n_bands;
    int nt = osp__q8_tile_threads(k->n_thr, tiles);
    /* dynamic: on a shared machine a thread that loses its core for a
     * while leaves its tiles to the others instead of stalling the step */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int t = 0; t < tiles; t++) {
        int tid = osp__q8_tid();
        const q8t_thr_t *th = &k->thr[tid];
        int img = t / k->n_bands;
        const q8t_band_t *b = &k->bands[t % k->n_bands];
        const q8t_var_t *v = &k->var[b->var];
        dnnl_memory_set_data_handle(
            th->src[b->var],
            (void *)(x + (size_t)img * k->x_img + (size_t)b->in_row * k->x_row));
        void *cur = NULL;
        dnnl_memory_get_data_handle(th->wei[b->var], &cur);
        if (cur != w) /* first run, or the weights moved */
            dnnl_memory_set_data_handle(th->wei[b->var], w);
        /* the pool's buffers may have grown after this step was built */
        void *acc = k->pool->acc[tid];
        dnnl_memory_set_data_handle(th->dst[b->var], acc);
        if (th->scr[b->var])
            dnnl_memory_set_data_handle(th->scr[b->var], k->pool->scr[tid]);
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, th->src[b->var]},
                                   {DNNL_ARG_WEIGHTS, th->wei[b->var]},
                                   {DNNL_ARG_DST, th->dst[b->var]}};
        int na = 3;
        if (th->scr[b->var])
            args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, th->scr[b->var]};
        if (th->zp)
            args[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC,
                                           th->zp};
        dnnl_status_t st = dnnl_primitive_execute(v->prim, th->stream, na, args);
        OSP_ASSERT(st == dnnl_success); /* valid descriptors, no allocation */
        dnnl_stream_wait(th->stream);
        osp__q8_requant_s32(k->req, acc, (size_t)(v->out_rows * k->ow),
                             y + (size_t)img * k->y_img +
                                 (size_t)b->out_row * k->y_row);
    }
}

/* The primitive of one band shape; weights in *wmd (format any for the
 * first shape, then the layout the first one chose). */
static int q8t_var_new(osp__plan_ctx_t *c, q8t_var_t *v, const int64_t *xd,
                       const int64_t *yd, dnnl_data_type_t xdt,
                       const osp__plan_conv_geom_t *cg, int32_t zx,
                       dnnl_memory_desc_t *wmd, bool first) {
    int64_t sd[4] = {1, xd[1], v->in_rows, xd[3]};
    int64_t dd[4] = {1, yd[1], v->out_rows, yd[3]};
    osp__md_tag(c, &v->src_md, 4, sd, xdt, dnnl_acdb);
    osp__md_tag(c, &v->dst_md, 4, dd, dnnl_s32, dnnl_acdb);
    dnnl_dims_t pl = {v->pad_t, cg->pl[1]}, pr = {v->pad_b, cg->pr[1]};
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = osp__q8_s32_attr(zx);
    if (!attr || osp__pd_fast(dnnl_convolution_forward_primitive_desc_create(
                                  &pd, c->e->dnnl_eng, dnnl_forward_inference,
                                  dnnl_convolution_direct, v->src_md, *wmd,
                                  NULL, v->dst_md, cg->strides, cg->dil, pl,
                                  pr, attr),
                              attr, &pd) < 0)
        return OSP_EUNSUPPORTED;
    if (first)
        *wmd = osp__md_query(c, pd, dnnl_query_weights_md);
    v->scr_md = osp__md_query(c, pd, dnnl_query_scratchpad_md);
    v->scr_bytes = v->scr_md ? dnnl_memory_desc_get_size(v->scr_md) : 0;
    dnnl_status_t st = dnnl_primitive_create(&v->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success)
        return osp_err_set(c->err, OSP_EINTERNAL,
                           "plan: oneDNN int8 primitive creation failed: %s",
                           osp__dnnl_status(st));
    return 0;
}

/* The band layout: bands of at most hb output rows per image. */
static int q8t_plan_bands(osp__plan_ctx_t *c, q8t_t *k, const int64_t *xd,
                          const int64_t *yd, int64_t kh,
                          const osp__plan_conv_geom_t *cg, dnnl_data_type_t xdt,
                          int32_t zx, dnnl_memory_desc_t *wmd, int64_t hb) {
    int64_t H = xd[2], OH = yd[2], sh = cg->strides[0], pt = cg->pl[0];
    int64_t keff = (kh - 1) * (cg->dil[0] + 1) + 1;
    k->n_bands = (int)((OH + hb - 1) / hb);
    k->bands = calloc((size_t)k->n_bands, sizeof *k->bands);
    if (!k->bands)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    for (int b = 0; b < k->n_bands; b++) {
        int64_t r0 = b * hb, r1 = r0 + hb < OH ? r0 + hb : OH;
        int64_t ih0 = r0 * sh - pt, ih1 = (r1 - 1) * sh - pt + keff;
        q8t_var_t want = {0};
        want.pad_t = ih0 < 0 ? -ih0 : 0;
        want.pad_b = ih1 > H ? ih1 - H : 0;
        int64_t start = ih0 < 0 ? 0 : ih0, end = ih1 > H ? H : ih1;
        want.in_rows = end - start;
        want.out_rows = r1 - r0;
        if (want.in_rows <= 0)
            return OSP_EUNSUPPORTED; /* a band all in padding */
        int v = 0;
        while (v < k->n_var &&
               (k->var[v].in_rows != want.in_rows ||
                k->var[v].out_rows != want.out_rows ||
                k->var[v].pad_t != want.pad_t || k->var[v].pad_b != want.pad_b))
            v++;
        if (v == k->n_var) {
            if (v == Q8T_MAX_VAR)
                return OSP_EUNSUPPORTED;
            k->var[v] = want;
            int rc = q8t_var_new(c, &k->var[v], xd, yd, xdt, cg, zx, wmd,
                                 v == 0);
            if (rc < 0)
                return rc;
            k->n_var++;
        }
        k->bands[b] = (q8t_band_t){v, start, r0};
    }
    return 0;
}

/* Per-thread buffers and memory objects. */
static int q8t_threads(osp__plan_ctx_t *c, q8t_t *k, const dnnl_memory_desc_t *wmd,
                       size_t acc_bytes) {
    size_t scr = 0;
    for (int v = 0; v < k->n_var; v++)
        scr = k->var[v].scr_bytes > scr ? k->var[v].scr_bytes : scr;
    k->thr = calloc((size_t)k->n_thr, sizeof *k->thr);
    if (!k->thr)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    k->pool = osp__q8_pool_get(c->p, k->n_thr, acc_bytes, scr);
    if (!k->pool)
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    for (int t = 0; t < k->n_thr; t++) {
        q8t_thr_t *th = &k->thr[t];
        bool ok = dnnl_stream_create(&th->stream, c->e->dnnl_eng,
                                     dnnl_stream_default_flags) == dnnl_success;
        if (ok && k->zx) {
            int64_t one = 1;
            dnnl_memory_desc_t zmd;
            ok = osp__md_plain(c, &zmd, 1, &one, dnnl_s32) &&
                 dnnl_memory_create(&th->zp, zmd, c->e->dnnl_eng, &k->zx) ==
                     dnnl_success;
        }
        for (int v = 0; ok && v < k->n_var; v++) {
            const q8t_var_t *var = &k->var[v];
            ok = dnnl_memory_create(&th->src[v], var->src_md, c->e->dnnl_eng,
                                    DNNL_MEMORY_NONE) == dnnl_success &&
                 dnnl_memory_create(&th->wei[v], *wmd, c->e->dnnl_eng,
                                    DNNL_MEMORY_NONE) == dnnl_success &&
                 dnnl_memory_create(&th->dst[v], var->dst_md, c->e->dnnl_eng,
                                    DNNL_MEMORY_NONE) == dnnl_success &&
                 (!var->scr_bytes ||
                  dnnl_memory_create(&th->scr[v], var->scr_md, c->e->dnnl_eng,
                                     DNNL_MEMORY_NONE) == dnnl_success);
        }
        if (!ok)
            return osp_err_set(c->err, OSP_EINTERNAL,
                               "plan: oneDNN stream/memory creation failed");
    }
    return 0;
}

int osp__q8_tiled_conv(osp__plan_ctx_t *c, int ni, const osp__plan_conv_geom_t *cg,
                       int32_t zx, osp__q8_req_t *req, int64_t bound) {
    if (c->e->opts.tuning.q8_tile == OSP_TUNE_OFF)
        return OSP_EUNSUPPORTED;
    const osp_node_t *n = &c->g->nodes[ni];
    const osp_graph_t *g = c->g;
    int x = n->in[0], w = n->in[1], y = n->out[0];
    const osp_value_t *X = &g->values[x], *W = &g->values[w], *Y = &g->values[y];
    if (n->p.conv.group > 1 && n->p.conv.group != X->dims[1])
        return OSP_EUNSUPPORTED; /* grouped, not depthwise: untested here */
    const int64_t *xd = X->dims, *yd = Y->dims;
    int nthr = osp__q8_threads();
    /* band height: the s32 tile within the budget, and at least as many
     * tiles as threads when the output has the rows for it */
    size_t row_bytes = sizeof(int32_t) * (size_t)(yd[3] * yd[1]);
    int64_t hb = (int64_t)(osp__q8_tile_bytes(c->e) / row_bytes);
    hb = hb < 1 ? 1 : hb > yd[2] ? yd[2] : hb;
    int64_t per_img = (nthr + yd[0] - 1) / yd[0];
    if (per_img > 1 && (yd[2] + per_img - 1) / per_img < hb)
        hb = (yd[2] + per_img - 1) / per_img;
    /* equal bands (14 rows in 12 + 2 would be two shapes and a thin one) */
    int64_t nb = (yd[2] + hb - 1) / hb;
    hb = (yd[2] + nb - 1) / nb;
    q8t_t *k = calloc(1, sizeof *k);
    q8t_box_t *box = malloc(sizeof *box);
    if (!k || !box) {
        free(k);
        free(box);
        return osp_err_set(c->err, OSP_ENOMEM, "plan: out of memory");
    }
    k->n = yd[0];
    k->ow = yd[3];
    k->x_row = (size_t)(xd[3] * xd[1]);
    k->y_row = (size_t)(yd[3] * yd[1]);
    k->x_img = k->x_row * (size_t)xd[2];
    k->y_img = k->y_row * (size_t)yd[2];
    k->n_thr = nthr;
    k->zx = zx;
    dnnl_memory_desc_t wmd, w_plain, xq_md, yq_md;
    osp__md_any(c, &wmd, cg->wr, cg->wd, dnnl_s8);
    osp__md_plain(c, &w_plain, cg->wr, cg->wd, dnnl_s8);
    int rc = q8t_plan_bands(c, k, xd, yd, W->dims[2], cg,
                            osp__dnnl_dt(X->dtype), zx, &wmd, hb);
    if (rc == 0)
        rc = q8t_threads(c, k, &wmd, row_bytes * (size_t)hb);
    if (rc < 0) {
        free(box);
        q8t_free(k); /* req stays with the caller */
        return rc;
    }
    /* From here on k and box are ours to free; req is taken on success. */
    k->req = req;
    box->k = k;
    osp__md_tag(c, &xq_md, 4, xd, osp__dnnl_dt(X->dtype), dnnl_acdb);
    osp__md_tag(c, &yq_md, 4, yd, osp__dnnl_dt(Y->dtype), dnnl_acdb);
    int in[2];
    in[0] = osp__buf_as(c, x, &xq_md);
    in[1] = in[0] < 0 ? in[0] : osp__const_as(c, w, &w_plain, &wmd);
    int yb = in[1] < 0 ? in[1] : osp__buf_new(c, &yq_md, y);
    if (yb < 0) {
        k->req = NULL; /* stays with the caller */
        q8t_box_free(box);
        return yb;
    }
    const char *impl = NULL;
    char note[96], name[96];
    snprintf(note, sizeof note, "%d bands x %lld images, s32 tiles, 255*sum|w| %lld",
             k->n_bands, (long long)k->n, (long long)bound);
    const_dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_get_primitive_desc(k->var[0].prim, &pd);
    impl = NULL;
    if (pd)
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(name, sizeof name, "osprey:q8-tiled(%s)+requant",
             impl ? impl : "oneDNN int8");
    int si = osp__step_fn(c, ni, 2, in, yb, run_q8t, box, name, note);
    if (si < 0) {
        k->req = NULL; /* stays with the caller */
        q8t_free(k);   /* the box was freed by osp__step_fn */
        return si;
    }
    c->p->steps[si].fn_free = q8t_box_free;
    osp__bind_value(c, y, yb);
    return 0;
}
