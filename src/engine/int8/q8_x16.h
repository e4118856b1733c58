/* q8_x16.h — TFLite's exact requantization of 16 int32 accumulators in one
 * AVX-512 register (private to src/engine).
 *
 * One implementation for the two loops that need it in registers: the
 * requantization of s32 tiles written by oneDNN (q8_f32conv.c) and osprey's
 * own depthwise kernel, which requantizes its accumulators before they ever
 * reach memory (q8_dwconv.c). The arithmetic is osp__q8_req_prepare's
 * multiply-add-shift form r = (v·M + off) >> S with S = 31 + k ≥ 32 and zy
 * folded into off, computed as floor(floor(p / 2^32) / 2^(S−32)): vpmuldq
 * gives the 64-bit products of the even and of the odd lanes, their high
 * dwords are p >> 32 for free, one 32-bit variable shift finishes. Only
 * valid for a request whose 16-lane form was prepared (r->off_eo != NULL),
 * and only inside functions compiled for avx512f+avx512bw. */
#ifndef OSPREY_ENGINE_Q8_X16_H
#define OSPREY_ENGINE_Q8_X16_H

#if defined(__x86_64__) && defined(__GNUC__)
#define OSP_Q8X16 1
#include <immintrin.h>

#include "engine/int8/q8_int.h"

#define OSP_Q8X16_FN                                                          \
    static inline __attribute__((always_inline, target("avx512f,avx512bw")))

/* The constants of one block of 16 channels starting at channel o (the
 * request's arrays are padded to a multiple of 16). */
typedef struct osp__q8x16_s {
    __m512i bias, m, m_odd, off_e, off_o, sh;
} osp__q8x16_t;

OSP_Q8X16_FN osp__q8x16_t osp__q8x16_load(const osp__q8_req_t *r, int64_t o) {
    osp__q8x16_t k;
    k.bias = _mm512_loadu_si512(r->bias + o);
    k.m = _mm512_loadu_si512(r->mult + o);
    k.m_odd = _mm512_srli_epi64(k.m, 32);
    k.off_e = _mm512_loadu_si512(r->off_eo + o);
    k.off_o = _mm512_loadu_si512(r->off_eo + o + 8);
    k.sh = _mm512_loadu_si512(r->sh32 + o);
    return k;
}

/* The high dwords of the even lanes' and the odd lanes' products, in
 * channel order (the permutation osp__q8x16_apply takes). */
OSP_Q8X16_FN __m512i osp__q8x16_hi_dwords(void) {
    return _mm512_setr_epi32(1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13,
                             29, 15, 31);
}

/* zy + MBQM(acc + bias) for 16 channels, as int32 (not yet clamped). */
OSP_Q8X16_FN __m512i osp__q8x16_apply(const osp__q8x16_t *k, __m512i acc,
                                      __m512i hi_dwords) {
    __m512i v = _mm512_add_epi32(acc, k->bias);
    __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(v, k->m), k->off_e);
    __m512i po = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64(v, 32), k->m_odd), k->off_o);
    __m512i h = _mm512_permutex2var_epi32(pe, hi_dwords, po);
    return _mm512_srav_epi32(h, k->sh);
}

/* Clamps to [lo, hi] and narrows to 16 bytes (u8 or s8 alike: the clamp
 * keeps every value in the output type's range). */
OSP_Q8X16_FN __m128i osp__q8x16_narrow(__m512i q, __m512i lo, __m512i hi) {
    return _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi));
}

#else
#define OSP_Q8X16 0
#endif

#endif
