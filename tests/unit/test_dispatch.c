/* test_dispatch.c — the dispatcher's pure parts: balancing policies
 * (deterministic generator: P2C never picks the more loaded of its two
 * draws, steers most picks away from a loaded backend, RR cycles, random
 * is uniform), the latency-weighted cost and its peak-EWMA, ejection
 * backoff, address normalisation, and parsing of a
 * worker's /v2/repository/index. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch_int.h"

static void test_policy_names(void **st) {
    (void)st;
    osp_balance_t p;
    for (int i = 0; i < OSP_BALANCE_COUNT; i++) {
        assert_int_equal(osp_balance_parse(osp_balance_name((osp_balance_t)i),
                                           &p), 0);
        assert_int_equal(p, i);
    }
    assert_int_equal(osp_balance_parse("leastconn", &p), OSP_EINVAL);
    assert_int_equal(osp_balance_parse(NULL, &p), OSP_EINVAL);
    assert_string_equal(osp_balance_name(OSP_BALANCE_COUNT), "unknown");
}

static void test_rr_cycles(void **st) {
    (void)st;
    double load[4] = {9, 0, 5, 1};
    uint64_t rng = 1;
    unsigned rr = 0;
    for (int i = 0; i < 12; i++)
        assert_int_equal(osp__dsp_balance_pick(OSP_BALANCE_RR, load, 4, &rng,
                                               &rr), i % 4);
}

static void test_random_uniform(void **st) {
    (void)st;
    double load[5] = {0};
    int count[5] = {0};
    uint64_t rng = 42;
    unsigned rr = 0;
    for (int i = 0; i < 50000; i++)
        count[osp__dsp_balance_pick(OSP_BALANCE_RANDOM, load, 5, &rng, &rr)]++;
    for (int i = 0; i < 5; i++) /* 10000 each; 5 sigma is ~450 */
        assert_in_range(count[i], 9500, 10500);
}

/* P2C with one backend far more loaded: it is picked only when it is drawn
 * against... never, since the other draw always has fewer in flight. With
 * n = 3 and one busy backend, the busy one can never win a comparison. */
static void test_p2c_avoids_loaded(void **st) {
    (void)st;
    double load[3] = {2, 50, 3};
    int count[3] = {0};
    uint64_t rng = 7;
    unsigned rr = 0;
    for (int i = 0; i < 30000; i++)
        count[osp__dsp_balance_pick(OSP_BALANCE_P2C, load, 3, &rng, &rr)]++;
    assert_int_equal(count[1], 0);
    /* Backend 0 (2 in flight) wins against both others: pairs {0,1}, {0,2}
     * → 2/3 of picks; backend 2 wins only {1,2} → 1/3. */
    assert_in_range(count[0], 19000, 21000);
    assert_in_range(count[2], 9000, 11000);
}

/* Equal loads: P2C keeps the first draw, which is uniform; the two draws
 * are always distinct. */
static void test_p2c_equal_uniform(void **st) {
    (void)st;
    double load[4] = {1, 1, 1, 1};
    int count[4] = {0};
    uint64_t rng = 99;
    unsigned rr = 0;
    for (int i = 0; i < 40000; i++)
        count[osp__dsp_balance_pick(OSP_BALANCE_P2C, load, 4, &rng, &rr)]++;
    for (int i = 0; i < 4; i++)
        assert_in_range(count[i], 9500, 10500);
    /* Two candidates: the less loaded always wins. */
    double two[2] = {4, 3};
    for (int i = 0; i < 100; i++)
        assert_int_equal(osp__dsp_balance_pick(OSP_BALANCE_P2C, two, 2, &rng,
                                               &rr), 1);
    double one[1] = {100};
    assert_int_equal(osp__dsp_balance_pick(OSP_BALANCE_P2C, one, 1, &rng,
                                           &rr), 0);
}

/* The P2C cost: in-flight count for p2c-lor; expected wait for p2c. */
static void test_cost(void **st) {
    (void)st;
    assert_true(osp__dsp_cost(OSP_BALANCE_P2C_LOR, 3, 500, 0, 1) == 3);
    assert_true(osp__dsp_cost(OSP_BALANCE_P2C, 3, 100, 0, 1) == 400);
    /* A slow idle backend (300 ms, nothing in flight) costs more than a
     * fast one (50 ms) with 3 in flight... */
    assert_true(osp__dsp_cost(OSP_BALANCE_P2C, 0, 300, 0, 1) >
                osp__dsp_cost(OSP_BALANCE_P2C, 3, 50, 0, 1));
    /* ...until its estimate has decayed while idle. */
    assert_true(osp__dsp_cost(OSP_BALANCE_P2C, 0, 300, 200, 1) <
                osp__dsp_cost(OSP_BALANCE_P2C, 3, 50, 0, 1));
    /* Decay is monotonic; the floor stands in for "no sample yet". */
    assert_true(osp__dsp_cost(OSP_BALANCE_P2C, 0, 300, 20, 1) <
                osp__dsp_cost(OSP_BALANCE_P2C, 0, 300, 10, 1));
    assert_true(osp__dsp_cost(OSP_BALANCE_P2C, 2, 0, 0, 1) == 3);
    /* Equal latencies: the order is least-outstanding's. */
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 5; b++)
            assert_int_equal(osp__dsp_cost(OSP_BALANCE_P2C, a, 80, 0, 1) <
                                 osp__dsp_cost(OSP_BALANCE_P2C, b, 80, 0, 1),
                             a < b);
}

static void test_ewma(void **st) {
    (void)st;
    assert_true(osp__dsp_ewma(0, 42, 0) == 42);       /* first sample */
    assert_true(osp__dsp_ewma(40, 300, 10) == 300);   /* peak: at once */
    double e = osp__dsp_ewma(300, 40, 10);            /* down: slowly */
    assert_true(e > 290 && e < 300);
    e = 300;
    for (int i = 0; i < 100; i++)                     /* 5 s of 50 ms */
        e = osp__dsp_ewma(e, 40, 50);
    assert_true(e > 40 && e < 45);
}

/* Same seed → same sequence (tests elsewhere rely on determinism). */
static void test_rand_deterministic(void **st) {
    (void)st;
    uint64_t a = 5, b = 5;
    for (int i = 0; i < 100; i++)
        assert_true(osp__dsp_rand(&a) == osp__dsp_rand(&b));
    uint64_t c = 6;
    assert_true(osp__dsp_rand(&a) != osp__dsp_rand(&c));
}

static void test_backoff(void **st) {
    (void)st;
    assert_int_equal(osp__dsp_backoff_ms(2000, 60000, 1), 2000);
    assert_int_equal(osp__dsp_backoff_ms(2000, 60000, 2), 4000);
    assert_int_equal(osp__dsp_backoff_ms(2000, 60000, 3), 8000);
    assert_int_equal(osp__dsp_backoff_ms(2000, 60000, 5), 32000);
    assert_int_equal(osp__dsp_backoff_ms(2000, 60000, 6), 60000);
    assert_int_equal(osp__dsp_backoff_ms(2000, 60000, 1000), 60000);
    assert_int_equal(osp__dsp_backoff_ms(2000, 60000, 0), 2000);
    assert_int_equal(osp__dsp_backoff_ms(100, 250, 3), 250);
}

static void test_addr_parse(void **st) {
    (void)st;
    char out[DSP_ADDR_MAX];
    assert_int_equal(osp__dsp_addr_parse("127.0.0.1:8080", out, sizeof out),
                     0);
    assert_string_equal(out, "127.0.0.1:8080");
    assert_int_equal(osp__dsp_addr_parse("worker-1.svc:80", out, sizeof out),
                     0);
    assert_string_equal(out, "worker-1.svc:80");
    assert_int_equal(osp__dsp_addr_parse("[::1]:9000", out, sizeof out), 0);
    assert_string_equal(out, "[::1]:9000");
    /* A bare IPv6 literal with a port is read as addr + last group. */
    assert_int_equal(osp__dsp_addr_parse("::1:9000", out, sizeof out), 0);
    assert_string_equal(out, "[::1]:9000");
    const char *bad[] = {"", "host", "host:", ":80", "host:0", "host:65536",
                         "host:8x", "[nothostv6]:80", "a b:80", "h/x:1",
                         "[::1:80"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad); i++)
        assert_int_equal(osp__dsp_addr_parse(bad[i], out, sizeof out),
                         OSP_EINVAL);
    assert_int_equal(osp__dsp_addr_parse("127.0.0.1:8080", out, 8),
                     OSP_EINVAL);
}

static void test_parse_index(void **st) {
    (void)st;
    char *names[4];
    const char *ok = "[{\"name\":\"a\",\"version\":\"1\",\"state\":\"READY\"},"
                     "{\"name\":\"b\",\"state\":\"UNAVAILABLE\"},"
                     "{\"name\":\"c\"},{\"name\":\"a\",\"state\":\"READY\"},"
                     "{\"version\":\"1\"},{\"name\":7},\"junk\"]";
    int n = osp__dsp_parse_index(ok, strlen(ok), names, 4);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "a");
    assert_string_equal(names[1], "c");
    for (int i = 0; i < n; i++)
        free(names[i]);
    assert_int_equal(osp__dsp_parse_index("{}", 2, names, 4), OSP_EFORMAT);
    assert_int_equal(osp__dsp_parse_index("[", 1, names, 4), OSP_EFORMAT);
    assert_int_equal(osp__dsp_parse_index("[]", 2, names, 4), 0);
    /* More names than room: the first max are kept. */
    const char *many = "[{\"name\":\"m1\"},{\"name\":\"m2\"},{\"name\":\"m3\"}]";
    n = osp__dsp_parse_index(many, strlen(many), names, 2);
    assert_int_equal(n, 2);
    free(names[0]);
    free(names[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_names),
        cmocka_unit_test(test_rr_cycles),
        cmocka_unit_test(test_random_uniform),
        cmocka_unit_test(test_p2c_avoids_loaded),
        cmocka_unit_test(test_p2c_equal_uniform),
        cmocka_unit_test(test_rand_deterministic),
        cmocka_unit_test(test_cost),
        cmocka_unit_test(test_ewma),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_addr_parse),
        cmocka_unit_test(test_parse_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
