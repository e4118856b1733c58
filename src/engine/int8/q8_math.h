/* q8_math.h — fixed-point requantization helpers with TFLite's published
 * integer semantics (private to src/engine).
 *
 * A quantized kernel accumulates in int32 and must turn the accumulator back
 * into 8 bits: y = zp_out + round(acc · real_multiplier). TFLite does not do
 * that in floating point; it represents real_multiplier as a Q31 fixed-point
 * significand and a power-of-two exponent (osp__q8_quantize_multiplier) and
 * multiplies with two integer roundings (osp__q8_mul_by_multiplier). Matching
 * its output bit for bit needs the same two roundings, so they live here, in
 * one place, written from the documented semantics:
 *   - saturating rounding doubling high multiply: round(a·b / 2^31) by a
 *     nudge of 2^30 (1 − 2^30 for a negative product) and truncating
 *     division, so ties round up (toward +inf); the single overflow case
 *     INT32_MIN·INT32_MIN saturates;
 *   - rounding divide by a power of two: x / 2^e rounded to nearest, ties
 *     away from zero.
 * Used by ref_q8conv.c and ref_q8arith.c; unit-tested in tests/unit/
 * test_qmath.c against hand-computed cases. */
#ifndef OSPREY_ENGINE_Q8_MATH_H
#define OSPREY_ENGINE_Q8_MATH_H

#include <math.h>
#include <stdint.h>

/* real = mult · 2^(shift − 31), mult in [2^30, 2^31) (or 0 for real = 0).
 * shift > 0 means a left shift of the accumulator before the high multiply.
 * Rounding of the significand is half away from zero (C round()), as in
 * TFLite; a significand that rounds up to 2^31 is halved and the exponent
 * bumped. Multipliers below 2^-31 become 0; above 2^30 saturate. */
static inline void osp__q8_quantize_multiplier(double real, int32_t *mult,
                                             int *shift) {
    if (!(real > 0.0)) { /* zero, negative or NaN: no contribution */
        *mult = 0;
        *shift = 0;
        return;
    }
    int e;
    double q = frexp(real, &e); /* real = q · 2^e, q in [0.5, 1) */
    int64_t f = (int64_t)round(q * 2147483648.0);
    if (f == ((int64_t)1 << 31)) {
        f /= 2;
        e++;
    }
    if (e < -31) {
        f = 0;
        e = 0;
    }
    if (e > 30) {
        e = 30;
        f = INT32_MAX;
    }
    *mult = (int32_t)f;
    *shift = e;
}

/* round(a·b / 2^31), ties up (−0.5 → 0, 0.5 → 1);
 * INT32_MIN·INT32_MIN → INT32_MAX. */
static inline int32_t osp__q8_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    int64_t ab = (int64_t)a * (int64_t)b;
    int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* C division truncates toward zero; with the nudge above that is
     * round-half-up of ab / 2^31 */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

/* x / 2^e rounded to nearest, ties away from zero (0 <= e <= 31). */
static inline int32_t osp__q8_rdbpot(int32_t x, int e) {
    if (e <= 0)
        return x;
    int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    int32_t rem = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    /* arithmetic shift of a negative value: implementation-defined in C17,
     * arithmetic on every compiler osprey supports (GCC, Clang) */
    return (x >> e) + (rem > threshold ? 1 : 0);
}

/* x · mult · 2^(shift − 31) with TFLite's two roundings: the left part of
 * the shift is applied before the high multiply (saturating to int32 here,
 * where TFLite's int32 multiply would overflow), the right part after. */
static inline int32_t osp__q8_mul_by_multiplier(int32_t x, int32_t mult,
                                              int shift) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t xs = (int64_t)x * ((int64_t)1 << left);
    if (xs > INT32_MAX)
        xs = INT32_MAX;
    if (xs < INT32_MIN)
        xs = INT32_MIN;
    return osp__q8_rdbpot(osp__q8_srdhm((int32_t)xs, mult), right);
}

/* The same product with the final right shift rounding half up (toward
 * +inf) instead of away from zero: what TFLite's optimized x86 kernels for
 * CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED and the spatial MEAN compute
 * (measured against the LiteRT interpreter: the two differ only when the
 * high product lands exactly on a negative half). */
static inline int32_t osp__q8_mul_by_multiplier_up(int32_t x, int32_t mult,
                                                 int shift) {
    int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t xs = (int64_t)x * ((int64_t)1 << left);
    if (xs > INT32_MAX)
        xs = INT32_MAX;
    if (xs < INT32_MIN)
        xs = INT32_MIN;
    int64_t h = osp__q8_srdhm((int32_t)xs, mult);
    if (right <= 0)
        return (int32_t)h;
    if (right > 62)
        right = 62;
    /* arithmetic shift: floor((h + 2^(right-1)) / 2^right) */
    return (int32_t)((h + ((int64_t)1 << (right - 1))) >> right);
}

/* TfLiteRound: float rounding half away from zero. */
static inline int32_t osp__q8_round_f(float f) { return (int32_t)roundf(f); }

/* Clamp range of a quantized output with a fused activation, as TFLite's
 * CalculateActivationRangeQuantized computes it: the real bounds lo/hi
 * (-inf/+inf = none) quantized with zp + round(bound / scale) in float,
 * intersected with [tmin, tmax] of the output type. */
static inline void osp__q8_act_range(float lo, float hi, float scale,
                                   int32_t zp, int32_t tmin, int32_t tmax,
                                   int32_t *qmin, int32_t *qmax) {
    *qmin = tmin;
    *qmax = tmax;
    if (lo > -INFINITY && isfinite(lo / scale)) {
        float r = lo / scale;
        if (r > -4e9f) {
            int64_t q = (int64_t)zp + (int64_t)roundf(r);
            if (q > *qmin)
                *qmin = q > tmax ? tmax : (int32_t)q;
        }
    }
    if (hi < INFINITY && isfinite(hi / scale)) {
        float r = hi / scale;
        if (r < 4e9f) {
            int64_t q = (int64_t)zp + (int64_t)roundf(r);
            if (q < *qmax)
                *qmax = q < tmin ? tmin : (int32_t)q;
        }
    }
}

#endif
