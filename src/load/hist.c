/* hist.c — the load generator's latency histogram: HdrHistogram-style
 * log-linear buckets over microseconds, 3 significant digits, O(1) record,
 * mergeable by adding counts.
 *
 * Layout: values 0..2047 have one bucket each (exact). A value v >= 2048
 * with highest set bit b falls in "half-range" e = b - 10 >= 1, where the
 * top 11 bits (v >> e, in 1024..2047) select one of 1024 buckets of width
 * 2^e. So a bucket is never wider than 1/1024 of the values it holds: any
 * reported percentile is within 0.1% of a value that was recorded. Why not
 * fixed-width buckets: latencies span 50 us (a health check) to 30 s (a
 * timeout); log-linear keeps constant relative precision over that range in
 * ~220 KiB. */
#include <stdlib.h>
#include <string.h>

#include "osprey/load.h"

#define SUB_BITS 11                        /* 2048 exact values */
#define SUB_COUNT (1u << SUB_BITS)
#define HALF_COUNT (SUB_COUNT / 2)         /* buckets per power of two */
#define MAX_BIT 35                         /* OSP_LOAD_HIST_MAX_US < 2^36 */
#define N_BUCKETS (SUB_COUNT + (MAX_BIT - SUB_BITS + 1) * HALF_COUNT)

struct osp_load_hist_s {
    uint64_t total;
    uint64_t min, max;
    long double sum;     /* exact enough: 2^64 us sums fit its mantissa */
    uint64_t counts[N_BUCKETS];
};

static unsigned bucket_of(uint64_t v) {
    if (v < SUB_COUNT)
        return (unsigned)v;
    int b = 63 - __builtin_clzll(v);
    int e = b - (SUB_BITS - 1);
    return SUB_COUNT + (unsigned)(e - 1) * HALF_COUNT +
           (unsigned)((v >> e) - HALF_COUNT);
}

/* The smallest and largest values of bucket i. */
static void bucket_bounds(unsigned i, uint64_t *lo, uint64_t *hi) {
    if (i < SUB_COUNT) {
        *lo = *hi = i;
        return;
    }
    unsigned e = (i - SUB_COUNT) / HALF_COUNT + 1;
    uint64_t top = (i - SUB_COUNT) % HALF_COUNT + HALF_COUNT;
    *lo = top << e;
    *hi = *lo + ((uint64_t)1 << e) - 1;
}

void osp_load_hist_bucket_range(uint64_t v, uint64_t *lo, uint64_t *hi) {
    if (v > OSP_LOAD_HIST_MAX_US)
        v = OSP_LOAD_HIST_MAX_US;
    bucket_bounds(bucket_of(v), lo, hi);
}

osp_load_hist_t *osp_load_hist_create(void) {
    return calloc(1, sizeof(osp_load_hist_t));
}

void osp_load_hist_destroy(osp_load_hist_t *h) { free(h); }

void osp_load_hist_reset(osp_load_hist_t *h) { memset(h, 0, sizeof *h); }

void osp_load_hist_record_n(osp_load_hist_t *h, uint64_t v, uint64_t n) {
    if (!n)
        return;
    if (v > OSP_LOAD_HIST_MAX_US)
        v = OSP_LOAD_HIST_MAX_US;
    h->counts[bucket_of(v)] += n;
    if (!h->total || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->total += n;
    h->sum += (long double)v * n;
}

void osp_load_hist_record(osp_load_hist_t *h, uint64_t v) { osp_load_hist_record_n(h, v, 1); }

void osp_load_hist_merge(osp_load_hist_t *dst, const osp_load_hist_t *src) {
    if (!src->total)
        return;
    for (unsigned i = 0; i < N_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    if (!dst->total || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->total += src->total;
    dst->sum += src->sum;
}

uint64_t osp_load_hist_count(const osp_load_hist_t *h) { return h->total; }
uint64_t osp_load_hist_min(const osp_load_hist_t *h) { return h->total ? h->min : 0; }
uint64_t osp_load_hist_max(const osp_load_hist_t *h) { return h->max; }

double osp_load_hist_mean(const osp_load_hist_t *h) {
    return h->total ? (double)(h->sum / h->total) : 0.0;
}

uint64_t osp_load_hist_percentile(const osp_load_hist_t *h, double pct) {
    if (!h->total)
        return 0;
    if (!(pct > 0))
        pct = 0;
    if (pct > 100)
        pct = 100;
    /* Nearest rank: the ceil(p * n)-th smallest value, at least the 1st.
     * The tiny slack keeps 99.9 (not exactly representable) of 1000 at
     * rank 999 rather than 1000. */
    long double want_f = (long double)pct / 100.0L * (long double)h->total;
    want_f -= want_f * 1e-12L + 1e-9L;
    uint64_t want = (uint64_t)want_f;
    if ((long double)want < want_f)
        want++;
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < N_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t lo, hi;
            bucket_bounds(i, &lo, &hi);
            if (hi > h->max)
                hi = h->max;
            if (hi < h->min)
                hi = h->min;
            return hi;
        }
    }
    return h->max; /* unreachable while total == sum of counts */
}
