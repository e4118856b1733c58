/* test_load_sched.c — the open-loop send schedule (arrivals.c), checked
 * deterministically (no clock): the intended send times, bucketed by
 * second, match the rate profile within 1% for constant, step, ramp and
 * trace profiles; Poisson arrivals with a fixed seed match it within 1% over
 * windows large enough for that to be meaningful, have exponential gaps
 * (coefficient of variation ~1), and repeat exactly for the same seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/load.h"

/* Runs the generator to the end, bucketing times into seconds. Returns the
 * total; checks that times are non-decreasing and inside the profile. */
static uint64_t collect(const osp_load_profile_t *p, osp_load_arrival_t kind,
                        uint64_t seed, uint64_t *per_sec, int n_sec) {
    osp_load_arrivals_t *a = osp_load_arrivals_create(p, kind, seed);
    assert_non_null(a);
    double t, last = 0;
    uint64_t n = 0;
    memset(per_sec, 0, sizeof *per_sec * (size_t)n_sec);
    while (osp_load_arrivals_next(a, &t)) {
        assert_true(t >= last);
        assert_true(t >= 0 && t < osp_load_profile_duration_s(p));
        last = t;
        int s = (int)t;
        assert_true(s < n_sec);
        per_sec[s]++;
        n++;
    }
    assert_int_equal(osp_load_arrivals_next(a, &t), 0); /* stays exhausted */
    osp_load_arrivals_destroy(a);
    return n;
}

/* Each second's count is within 1% (or 1 request, for small counts) of the
 * profile's integral over that second. */
static void check_seconds(const osp_load_profile_t *p, const uint64_t *per_sec,
                          int n_sec) {
    for (int s = 0; s < n_sec; s++) {
        double want = osp_load_profile_count(p, s + 1.0) - osp_load_profile_count(p, s);
        double tol = fmax(1.0, 0.01 * want);
        if (fabs((double)per_sec[s] - want) > tol)
            fail_msg("second %d: %llu sends, profile says %.2f", s,
                     (unsigned long long)per_sec[s], want);
    }
}

static void test_constant(void **state) {
    (void)state;
    osp_load_profile_t *p = osp_load_profile_create();
    osp_err_t err = {0};
    assert_int_equal(osp_load_profile_add(p, 100, 100, 10, &err), 0);
    uint64_t sec[10];
    assert_int_equal(collect(p, OSP_LOAD_ARRIVAL_CONSTANT, 0, sec, 10), 1000);
    for (int s = 0; s < 10; s++)
        assert_int_equal(sec[s], 100);
    /* evenly spaced: 5 ms, 15 ms, ... */
    osp_load_arrivals_t *a = osp_load_arrivals_create(p, OSP_LOAD_ARRIVAL_CONSTANT, 0);
    double t, prev = -1;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(osp_load_arrivals_next(a, &t), 1);
        assert_true(fabs(t - (i + 0.5) / 100.0) < 1e-9);
        if (prev >= 0)
            assert_true(fabs(t - prev - 0.01) < 1e-9);
        prev = t;
    }
    osp_load_arrivals_destroy(a);
    osp_load_profile_destroy(p);
}

static void test_steps(void **state) {
    (void)state;
    osp_load_profile_t *p = osp_load_profile_create();
    osp_err_t err = {0};
    assert_int_equal(osp_load_profile_parse_steps(p, "10:5s,50:5s,0:2s,200:5s,7.5:4s",
                                             &err), 0);
    uint64_t sec[21];
    uint64_t n = collect(p, OSP_LOAD_ARRIVAL_CONSTANT, 0, sec, 21);
    assert_int_equal(n, 50 + 250 + 0 + 1000 + 30);
    check_seconds(p, sec, 21);
    assert_int_equal(sec[10], 0);
    assert_int_equal(sec[11], 0);
    osp_load_profile_destroy(p);
}

static void test_ramp(void **state) {
    (void)state;
    osp_load_profile_t *p = osp_load_profile_create();
    osp_err_t err = {0};
    assert_int_equal(osp_load_profile_parse_ramp(p, "0:1000:20s", &err), 0);
    assert_int_equal(osp_load_profile_parse_ramp(p, "1000:100:10s", &err), 0);
    uint64_t sec[30];
    uint64_t n = collect(p, OSP_LOAD_ARRIVAL_CONSTANT, 0, sec, 30);
    assert_true(fabs((double)n - (10000 + 5500)) <= 1);
    check_seconds(p, sec, 30);
    osp_load_profile_destroy(p);
}

static void test_trace(void **state) {
    (void)state;
    const char *t = "1\n0\n3\n250\n0\n0\n17\n1000\n2\n";
    osp_load_profile_t *p = osp_load_profile_create();
    osp_err_t err = {0};
    assert_int_equal(osp_load_profile_parse_trace(p, t, strlen(t), "t", &err), 0);
    uint64_t sec[9];
    collect(p, OSP_LOAD_ARRIVAL_CONSTANT, 0, sec, 9);
    const uint64_t want[9] = {1, 0, 3, 250, 0, 0, 17, 1000, 2};
    for (int s = 0; s < 9; s++)
        assert_int_equal(sec[s], want[s]);
    osp_load_profile_destroy(p);
}

static void test_poisson(void **state) {
    (void)state;
    osp_load_profile_t *p = osp_load_profile_create();
    osp_err_t err = {0};
    /* 60 s at 5000/s: 300,000 sends, sd ~548 (0.18%), so 1% is 5 sd. */
    assert_int_equal(osp_load_profile_add(p, 5000, 5000, 60, &err), 0);
    uint64_t sec[60];
    uint64_t n = collect(p, OSP_LOAD_ARRIVAL_POISSON, 42, sec, 60);
    assert_true(fabs((double)n - 300000) < 3000);
    /* 10-second windows: 50,000 each, sd 224 (0.45%). */
    for (int w = 0; w < 6; w++) {
        uint64_t c = 0;
        for (int s = 0; s < 10; s++)
            c += sec[w * 10 + s];
        assert_true(fabs((double)c - 50000) < 500);
    }
    /* Gaps are exponential: mean 1/rate, coefficient of variation ~1. */
    osp_load_arrivals_t *a = osp_load_arrivals_create(p, OSP_LOAD_ARRIVAL_POISSON, 42);
    double t, prev = 0, sum = 0, sum2 = 0;
    int m = 0;
    while (osp_load_arrivals_next(a, &t) && m < 100000) {
        double g = t - prev;
        prev = t;
        sum += g;
        sum2 += g * g;
        m++;
    }
    osp_load_arrivals_destroy(a);
    double mean = sum / m, sd = sqrt(sum2 / m - mean * mean);
    assert_true(fabs(mean * 5000 - 1) < 0.01);
    assert_true(fabs(sd / mean - 1) < 0.02);
    osp_load_profile_destroy(p);
}

/* A Poisson process following a ramp: counts in 10-second windows within
 * 1% of the profile. */
static void test_poisson_ramp(void **state) {
    (void)state;
    osp_load_profile_t *p = osp_load_profile_create();
    osp_err_t err = {0};
    assert_int_equal(osp_load_profile_parse_ramp(p, "2000:10000:40s", &err), 0);
    uint64_t sec[40];
    collect(p, OSP_LOAD_ARRIVAL_POISSON, 7, sec, 40);
    for (int w = 0; w < 4; w++) {
        uint64_t c = 0;
        for (int s = 0; s < 10; s++)
            c += sec[w * 10 + s];
        double want = osp_load_profile_count(p, w * 10 + 10.0) -
                      osp_load_profile_count(p, w * 10.0);
        if (fabs((double)c - want) > 0.01 * want)
            fail_msg("window %d: %llu, want %.0f", w, (unsigned long long)c,
                     want);
    }
    osp_load_profile_destroy(p);
}

static void test_seed_repeatable(void **state) {
    (void)state;
    osp_load_profile_t *p = osp_load_profile_create();
    osp_err_t err = {0};
    assert_int_equal(osp_load_profile_add(p, 100, 100, 10, &err), 0);
    osp_load_arrivals_t *a = osp_load_arrivals_create(p, OSP_LOAD_ARRIVAL_POISSON, 9);
    osp_load_arrivals_t *b = osp_load_arrivals_create(p, OSP_LOAD_ARRIVAL_POISSON, 9);
    osp_load_arrivals_t *c = osp_load_arrivals_create(p, OSP_LOAD_ARRIVAL_POISSON, 10);
    double ta, tb, tc;
    int same_c = 1;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(osp_load_arrivals_next(a, &ta), 1);
        assert_int_equal(osp_load_arrivals_next(b, &tb), 1);
        assert_int_equal(osp_load_arrivals_next(c, &tc), 1);
        assert_true(ta == tb);
        same_c &= ta == tc;
    }
    assert_false(same_c);
    osp_load_arrivals_destroy(a);
    osp_load_arrivals_destroy(b);
    osp_load_arrivals_destroy(c);
    osp_load_profile_destroy(p);
    osp_load_arrival_t k;
    assert_int_equal(osp_load_arrival_parse("poisson", &k), 0);
    assert_int_equal(k, OSP_LOAD_ARRIVAL_POISSON);
    assert_true(osp_load_arrival_parse("uniform", &k) < 0);
    assert_string_equal(osp_load_arrival_name(OSP_LOAD_ARRIVAL_CONSTANT), "constant");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant),
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_ramp),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_poisson),
        cmocka_unit_test(test_poisson_ramp),
        cmocka_unit_test(test_seed_repeatable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
