/* test_load_hist.c — the load generator's latency histogram: known
 * distributions (uniform, exponential by inverse CDF, a two-point mix) give
 * their known percentiles within the histogram's stated precision (values
 * below 2048 us exact, above within 1/1024), exact min/max/mean, merging
 * equals recording everything in one, clamping and the empty case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>

#include "osprey/load.h"

/* |got - want| within the bucket width at want (at least 1 us). */
static void assert_close(uint64_t got, double want) {
    double tol = want < 2048 ? 1.0 : want / 1024.0 + 1.0;
    if (fabs((double)got - want) > tol)
        fail_msg("got %llu, want %.1f (tolerance %.1f)",
                 (unsigned long long)got, want, tol);
}

static void test_exact_small(void **state) {
    (void)state;
    osp_load_hist_t *h = osp_load_hist_create();
    assert_non_null(h);
    for (uint64_t v = 1; v <= 1000; v++)
        osp_load_hist_record(h, v);
    assert_int_equal(osp_load_hist_count(h), 1000);
    /* Nearest rank: the ceil(p*n)-th value, exact below 2048. */
    assert_int_equal(osp_load_hist_percentile(h, 50), 500);
    assert_int_equal(osp_load_hist_percentile(h, 90), 900);
    assert_int_equal(osp_load_hist_percentile(h, 99), 990);
    assert_int_equal(osp_load_hist_percentile(h, 99.9), 999);
    assert_int_equal(osp_load_hist_percentile(h, 100), 1000);
    assert_int_equal(osp_load_hist_percentile(h, 0), 1);
    assert_int_equal(osp_load_hist_min(h), 1);
    assert_int_equal(osp_load_hist_max(h), 1000);
    assert_true(fabs(osp_load_hist_mean(h) - 500.5) < 1e-9);
    osp_load_hist_destroy(h);
}

static void test_uniform_large(void **state) {
    (void)state;
    osp_load_hist_t *h = osp_load_hist_create();
    for (uint64_t v = 1; v <= 1000000; v++)
        osp_load_hist_record(h, v);
    assert_close(osp_load_hist_percentile(h, 50), 500000);
    assert_close(osp_load_hist_percentile(h, 90), 900000);
    assert_close(osp_load_hist_percentile(h, 99), 990000);
    assert_close(osp_load_hist_percentile(h, 99.9), 999000);
    /* max is exact, and no percentile exceeds it */
    assert_int_equal(osp_load_hist_percentile(h, 100), 1000000);
    assert_int_equal(osp_load_hist_max(h), 1000000);
    assert_true(fabs(osp_load_hist_mean(h) - 500000.5) < 1e-6);
    osp_load_hist_destroy(h);
}

/* Exponential latencies (mean 20 ms) by inverse CDF at evenly spaced
 * quantiles: the q-quantile is -mean * ln(1 - q). */
static void test_exponential(void **state) {
    (void)state;
    osp_load_hist_t *h = osp_load_hist_create();
    const int n = 200000;
    const double mean = 20000;
    for (int i = 0; i < n; i++) {
        double q = (i + 0.5) / n;
        osp_load_hist_record(h, (uint64_t)llround(-mean * log1p(-q)));
    }
    const double ps[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double want = -mean * log1p(-ps[i] / 100);
        assert_close(osp_load_hist_percentile(h, ps[i]), want);
    }
    assert_true(fabs(osp_load_hist_mean(h) - mean) / mean < 1e-3);
    osp_load_hist_destroy(h);
}

/* 98% fast (1 ms), 2% slow (250 ms): p50 and p90 fast, p99 slow. */
static void test_bimodal(void **state) {
    (void)state;
    osp_load_hist_t *h = osp_load_hist_create();
    osp_load_hist_record_n(h, 1000, 9800);
    osp_load_hist_record_n(h, 250000, 200);
    assert_int_equal(osp_load_hist_count(h), 10000);
    assert_int_equal(osp_load_hist_percentile(h, 50), 1000);
    assert_int_equal(osp_load_hist_percentile(h, 98), 1000);
    assert_close(osp_load_hist_percentile(h, 98.01), 250000);
    assert_close(osp_load_hist_percentile(h, 99), 250000);
    assert_int_equal(osp_load_hist_max(h), 250000);
    osp_load_hist_destroy(h);
}

/* Every bucket holds a value and is no wider than 1/1024 of it. */
static void test_bucket_precision(void **state) {
    (void)state;
    uint64_t s = 12345;
    for (int i = 0; i < 100000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t v = (s >> 20) % OSP_LOAD_HIST_MAX_US;
        uint64_t lo, hi;
        osp_load_hist_bucket_range(v, &lo, &hi);
        assert_true(lo <= v && v <= hi);
        if (v < 2048)
            assert_true(lo == v && hi == v);
        else
            assert_true((double)(hi - lo + 1) <= (double)lo / 1024.0);
    }
    /* Adjacent buckets tile the range without gaps. */
    uint64_t lo, hi, lo2, hi2;
    for (uint64_t v = 2000; v < 100000; v = hi + 1) {
        osp_load_hist_bucket_range(v, &lo, &hi);
        osp_load_hist_bucket_range(hi + 1, &lo2, &hi2);
        assert_int_equal(lo2, hi + 1);
    }
}

static void test_merge(void **state) {
    (void)state;
    osp_load_hist_t *a = osp_load_hist_create(), *b = osp_load_hist_create(),
               *all = osp_load_hist_create();
    for (uint64_t v = 1; v < 300000; v += 7) {
        osp_load_hist_record(v % 2 ? a : b, v);
        osp_load_hist_record(all, v);
    }
    osp_load_hist_merge(a, b);
    assert_int_equal(osp_load_hist_count(a), osp_load_hist_count(all));
    assert_int_equal(osp_load_hist_min(a), osp_load_hist_min(all));
    assert_int_equal(osp_load_hist_max(a), osp_load_hist_max(all));
    assert_true(fabs(osp_load_hist_mean(a) - osp_load_hist_mean(all)) < 1e-6);
    for (double p = 1; p <= 100; p += 0.5)
        assert_int_equal(osp_load_hist_percentile(a, p),
                         osp_load_hist_percentile(all, p));
    /* Merging an empty histogram changes nothing. */
    osp_load_hist_reset(b);
    osp_load_hist_merge(a, b);
    assert_int_equal(osp_load_hist_count(a), osp_load_hist_count(all));
    osp_load_hist_destroy(a);
    osp_load_hist_destroy(b);
    osp_load_hist_destroy(all);
}

static void test_empty_and_clamp(void **state) {
    (void)state;
    osp_load_hist_t *h = osp_load_hist_create();
    assert_int_equal(osp_load_hist_count(h), 0);
    assert_int_equal(osp_load_hist_percentile(h, 99), 0);
    assert_int_equal(osp_load_hist_min(h), 0);
    assert_int_equal(osp_load_hist_max(h), 0);
    assert_true(osp_load_hist_mean(h) == 0);
    osp_load_hist_record(h, UINT64_MAX);
    assert_int_equal(osp_load_hist_max(h), OSP_LOAD_HIST_MAX_US);
    assert_int_equal(osp_load_hist_percentile(h, 50), OSP_LOAD_HIST_MAX_US);
    osp_load_hist_record(h, 0);
    assert_int_equal(osp_load_hist_min(h), 0);
    assert_int_equal(osp_load_hist_percentile(h, 50), 0);
    /* out-of-range percentiles are clamped */
    assert_int_equal(osp_load_hist_percentile(h, -5), 0);
    assert_int_equal(osp_load_hist_percentile(h, 1000), OSP_LOAD_HIST_MAX_US);
    assert_int_equal(osp_load_hist_percentile(h, NAN), 0);
    osp_load_hist_reset(h);
    assert_int_equal(osp_load_hist_count(h), 0);
    osp_load_hist_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_small),
        cmocka_unit_test(test_uniform_large),
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_bimodal),
        cmocka_unit_test(test_bucket_precision),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_empty_and_clamp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
