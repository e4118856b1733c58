/* resize.c — the separable antialiased bilinear resampler behind
 * osp_image_preprocess.
 *
 * It reproduces PIL's Image.resize(BILINEAR) (Pillow's Resample.c algorithm,
 * reimplemented from its published behaviour) so that a model trained with
 * torchvision's PIL pipeline sees the same pixels here:
 *   - per output sample, a triangle filter whose support widens by the
 *     downscale factor (antialiasing); weights normalised to sum 1 in double,
 *     then rounded to 22-bit fixed point;
 *   - horizontal pass first, rounded and clamped to 8 bits, then vertical;
 *   - accumulators start at 0.5 (rounding), results clamp to 0..255.
 * Only the output window is computed (resize-then-crop costs no more than the
 * crop), and only the source rows the window needs go through the horizontal
 * pass. Weights are computed once per call per axis. On x86-64 the
 * horizontal pass uses SSE2 madd with split weights (exact, see
 * axis_fill_pairs); the vertical pass is left to the compiler's vectoriser.
 * Two scratch allocations per call, none per pixel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/image_int.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#define RESIZE_SSE2 1
#endif

/* Fixed-point fraction bits: 8-bit samples times weights summing to 2^22
 * stay below 2^31 with room for the rounding term. */
#define PREC_BITS 22

/* Filter taps for every output sample of one axis. */
typedef struct axis_s {
    int ksize;    /* stride of w: the most taps any output sample uses */
    int *lo;      /* first input index per output sample (rectangle-relative) */
    int *n;       /* taps used per output sample */
    int32_t *w;   /* count * ksize weights, PREC_BITS fixed point */
    int npairs;   /* SSE2 horizontal pass: (ksize + 1) / 2 tap pairs */
    int16_t *wv;  /* SSE2: per output, per tap pair, two 8 x int16 vectors */
} axis_t;

/* The triangle ("bilinear") kernel, support 1. */
static double triangle(double x) {
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Taps needed when in_size samples are resized to out_size. */
static int axis_ksize(int in_size, int out_size) {
    double scale = (double)in_size / out_size;
    double support = scale > 1.0 ? scale : 1.0;
    return (int)ceil(support) * 2 + 1;
}

/* Fills taps for output samples first .. first+count-1 of an in_size →
 * out_size resize; tmp holds ksize doubles. The expression order follows
 * PIL's so that the rounded weights are identical. */
static void axis_fill(axis_t *a, int in_size, int out_size, int first,
                      int count, double *tmp) {
    const double scale = (double)in_size / out_size;
    const double filterscale = scale > 1.0 ? scale : 1.0;
    const double support = filterscale; /* triangle support 1 x scale */
    const double ss = 1.0 / filterscale;
    for (int i = 0; i < count; i++) {
        const double center = (first + i + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            double wt = triangle((x + xmin - center + 0.5) * ss);
            tmp[x] = wt;
            ww += wt;
        }
        int32_t *k = a->w + (size_t)i * (size_t)a->ksize;
        int x = 0;
        for (; x < xmax; x++) {
            double v = ww != 0.0 ? tmp[x] / ww : tmp[x];
            k[x] = (int32_t)(v < 0.0 ? -0.5 + v * (1 << PREC_BITS)
                                     : 0.5 + v * (1 << PREC_BITS));
        }
        for (; x < a->ksize; x++)
            k[x] = 0;
        a->lo[i] = xmin;
        a->n[i] = xmax;
    }
}

static inline uint8_t clip8(int32_t acc) {
    int32_t v = acc >> PREC_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

#ifdef RESIZE_SSE2
/* SSE2 weights for the horizontal pass. _mm_madd_epi16 multiplies 16-bit
 * values, but exactness needs the 22-bit weights, so each weight is split
 * into k = kh * 2^11 + kl (both < 2^12) and the two sums recombined:
 * sum(p * k) = (sum(p * kh) << 11) + sum(p * kl), exact in int32. Per pair
 * of taps (t, t+1) the vectors are [k_t, k_t+1] x 3 channels + [0, 0]. */
#define SPLIT_BITS 11
static void axis_fill_pairs(axis_t *a, int count) {
    for (int i = 0; i < count; i++) {
        const int32_t *k = a->w + (size_t)i * (size_t)a->ksize;
        int16_t *v = a->wv + (size_t)i * (size_t)a->npairs * 16;
        for (int j = 0; j < a->npairs; j++, v += 16) {
            int32_t k0 = k[2 * j];
            int32_t k1 = 2 * j + 1 < a->n[i] ? k[2 * j + 1] : 0;
            for (int c = 0; c < 3; c++) {
                v[2 * c] = (int16_t)(k0 & ((1 << SPLIT_BITS) - 1));
                v[2 * c + 1] = (int16_t)(k1 & ((1 << SPLIT_BITS) - 1));
                v[8 + 2 * c] = (int16_t)(k0 >> SPLIT_BITS);
                v[8 + 2 * c + 1] = (int16_t)(k1 >> SPLIT_BITS);
            }
            v[6] = v[7] = v[14] = v[15] = 0;
        }
    }
}

/* One output pixel from n taps at p, reading 8 bytes per tap pair: the
 * caller guarantees (2 * ceil(n / 2)) * 3 + 2 bytes are readable at p. */
static inline void hpixel_sse2(const uint8_t *p, int n, const int16_t *wv,
                               uint8_t *d) {
    const __m128i zero = _mm_setzero_si128();
    __m128i lo = zero, hi = zero;
    for (int j = 0, np = (n + 1) / 2; j < np; j++, p += 6, wv += 16) {
        /* [r0 g0 b0 r1 g1 b1 . .] → [r0 r1 g0 g1 b0 b1 . .] as int16 */
        __m128i x = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)p), zero);
        __m128i a = _mm_unpacklo_epi16(x, _mm_srli_si128(x, 6));
        lo = _mm_add_epi32(lo, _mm_madd_epi16(a, _mm_loadu_si128((const __m128i *)wv)));
        hi = _mm_add_epi32(hi, _mm_madd_epi16(a, _mm_loadu_si128((const __m128i *)(wv + 8))));
    }
    __m128i acc = _mm_add_epi32(_mm_slli_epi32(hi, SPLIT_BITS), lo);
    acc = _mm_add_epi32(acc, _mm_set1_epi32(1 << (PREC_BITS - 1)));
    acc = _mm_srai_epi32(acc, PREC_BITS);
    /* Saturating packs clamp to 0..255 exactly like clip8. */
    acc = _mm_packs_epi32(acc, acc);
    acc = _mm_packus_epi16(acc, acc);
    uint32_t v = (uint32_t)_mm_cvtsi128_si32(acc);
    d[0] = (uint8_t)v;
    d[1] = (uint8_t)(v >> 8);
    d[2] = (uint8_t)(v >> 16);
}
#endif

/* Horizontal pass: rows of src (stride in bytes, already offset to the
 * rectangle's first needed row and column; row_bytes of each row belong to
 * the rectangle) → rows of ow RGB8 samples. */
static void hpass(const uint8_t *src, size_t stride, size_t row_bytes,
                  int rows, const axis_t *ax, int ow, uint8_t *dst) {
    for (int r = 0; r < rows; r++) {
        const uint8_t *s = src + (size_t)r * stride;
        uint8_t *d = dst + (size_t)r * (size_t)ow * 3;
        for (int i = 0; i < ow; i++, d += 3) {
            const int n = ax->n[i];
            const uint8_t *p = s + (size_t)ax->lo[i] * 3;
#ifdef RESIZE_SSE2
            /* Near the right edge the 8-byte loads could leave the row
             * (and, on the last row, the buffer): scalar there. */
            if ((size_t)(ax->lo[i] + (n + 1) / 2 * 2) * 3 + 2 <= row_bytes) {
                hpixel_sse2(p, n, ax->wv + (size_t)i * (size_t)ax->npairs * 16,
                            d);
                continue;
            }
#endif
            const int32_t *k = ax->w + (size_t)i * (size_t)ax->ksize;
            int32_t a0 = 1 << (PREC_BITS - 1), a1 = a0, a2 = a0;
            for (int t = 0; t < n; t++, p += 3) {
                a0 += p[0] * k[t];
                a1 += p[1] * k[t];
                a2 += p[2] * k[t];
            }
            d[0] = clip8(a0);
            d[1] = clip8(a1);
            d[2] = clip8(a2);
        }
    }
}

/* Vertical pass: for each output row, accumulate whole input rows. The row
 * is walked in blocks of VBLOCK with a fixed trip count and restrict
 * pointers so that -O2's cheap vectoriser turns each block into a few SIMD
 * multiply-adds (integer sums: any order gives the same result). tmp row 0
 * is source row y_base. */
#define VBLOCK 16
static void vpass(const uint8_t *restrict tmp, size_t row_elems, int y_base,
                  const axis_t *ay, int oh, uint8_t *restrict dst,
                  int32_t *restrict acc) {
    const size_t blocked = row_elems / VBLOCK * VBLOCK;
    for (int j = 0; j < oh; j++) {
        const int32_t *k = ay->w + (size_t)j * (size_t)ay->ksize;
        const uint8_t *row = tmp + (size_t)(ay->lo[j] - y_base) * row_elems;
        for (size_t e = 0; e < row_elems; e++)
            acc[e] = 1 << (PREC_BITS - 1);
        for (int t = 0, n = ay->n[j]; t < n; t++, row += row_elems) {
            const int32_t kt = k[t];
            size_t e = 0;
            for (; e < blocked; e += VBLOCK)
                for (int b = 0; b < VBLOCK; b++)
                    acc[e + b] += row[e + b] * kt;
            for (; e < row_elems; e++)
                acc[e] += row[e] * kt;
        }
        uint8_t *d = dst + (size_t)j * row_elems;
        for (size_t e = 0; e < row_elems; e++)
            d[e] = clip8(acc[e]);
    }
}

int osp__resample_rgb8(const osp__resample_t *r, uint8_t *dst, osp_err_t *err) {
    if (!r->src || r->src_w < 1 || r->src_h < 1 || r->sx < 0 || r->sy < 0 ||
        r->sw < 1 || r->sh < 1 || r->sx > r->src_w - r->sw ||
        r->sy > r->src_h - r->sh || r->rw < 1 || r->rh < 1 || r->ox < 0 ||
        r->oy < 0 || r->ow < 1 || r->oh < 1 || r->ox > r->rw - r->ow ||
        r->oy > r->rh - r->oh)
        return osp_err_set(err, OSP_EINVAL,
                           "resize: bad geometry: %dx%d image, rect "
                           "%d,%d+%dx%d, resized %dx%d, window %d,%d+%dx%d",
                           r->src_w, r->src_h, r->sx, r->sy, r->sw, r->sh,
                           r->rw, r->rh, r->ox, r->oy, r->ow, r->oh);
    int rc = 0;
    uint8_t *tmp = NULL;
    axis_t ax, ay;
    ax.ksize = axis_ksize(r->sw, r->rw);
    ay.ksize = axis_ksize(r->sh, r->rh);
    /* Block 1: SSE2 pair weights (first, so malloc's alignment holds),
     * both axes' taps, and the double scratch for one sample. */
    ax.npairs = (ax.ksize + 1) / 2;
    ay.npairs = 0;
    ax.wv = ay.wv = NULL;
    size_t kmax = (size_t)OSP_MAX(ax.ksize, ay.ksize);
    size_t nx = (size_t)r->ow, ny = (size_t)r->oh;
#ifdef RESIZE_SSE2
    size_t pair_bytes = nx * (size_t)ax.npairs * 16 * sizeof(int16_t);
#else
    size_t pair_bytes = 0;
#endif
    size_t wbytes = ((size_t)ax.ksize * nx + (size_t)ay.ksize * ny) *
                    sizeof(int32_t);
    size_t ibytes = 2 * (nx + ny) * sizeof(int);
    size_t coef_bytes = pair_bytes + kmax * sizeof(double) + wbytes + ibytes;
    char *coef = osp__image_mem(coef_bytes);
    if (!coef)
        return osp_err_set(err, OSP_ENOMEM,
                           "resize: cannot allocate %zu bytes of filter "
                           "weights",
                           coef_bytes);
    double *dtmp = (double *)(coef + pair_bytes);
    ax.w = (int32_t *)(coef + pair_bytes + kmax * sizeof(double));
    ay.w = ax.w + (size_t)ax.ksize * nx;
    ax.lo = (int *)(ay.w + (size_t)ay.ksize * ny);
    ax.n = ax.lo + nx;
    ay.lo = ax.n + nx;
    ay.n = ay.lo + ny;
    axis_fill(&ax, r->sw, r->rw, r->ox, r->ow, dtmp);
    axis_fill(&ay, r->sh, r->rh, r->oy, r->oh, dtmp);
#ifdef RESIZE_SSE2
    ax.wv = (int16_t *)coef;
    axis_fill_pairs(&ax, r->ow);
#endif

    /* Source rows the window needs. */
    int y0 = ay.lo[0], y1 = ay.lo[0] + ay.n[0];
    for (int j = 1; j < r->oh; j++) {
        y0 = OSP_MIN(y0, ay.lo[j]);
        y1 = OSP_MAX(y1, ay.lo[j] + ay.n[j]);
    }
    /* Block 2: the horizontal pass output and one row of accumulators. */
    size_t row_elems = nx * 3;
    size_t tmp_bytes = (size_t)(y1 - y0) * row_elems;
    size_t acc_off = (tmp_bytes + 63) & ~(size_t)63;
    tmp = osp__image_mem(acc_off + row_elems * sizeof(int32_t));
    if (!tmp) {
        rc = osp_err_set(err, OSP_ENOMEM,
                         "resize: cannot allocate %zu bytes of scratch",
                         acc_off + row_elems * sizeof(int32_t));
        goto out;
    }
    size_t src_stride = (size_t)r->src_w * 3;
    const uint8_t *first =
        r->src + (size_t)(r->sy + y0) * src_stride + (size_t)r->sx * 3;
    hpass(first, src_stride, (size_t)r->sw * 3, y1 - y0, &ax, r->ow, tmp);
    vpass(tmp, row_elems, y0, &ay, r->oh, dst, (int32_t *)(tmp + acc_off));
out:
    osp__image_mem_free(tmp);
    osp__image_mem_free(coef);
    return rc;
}
