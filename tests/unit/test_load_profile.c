/* test_load_profile.c — rate-profile parsing for `osprey load`: durations,
 * steps, ramps and trace files (comments, CRLF, no final newline) give the
 * right segments, rates and counts; every kind of bad input (missing parts,
 * negative or non-numeric values, inf/nan/hex, blank trace lines, limits) is
 * an error whose message names the piece or trace line at fault. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "osprey/load.h"

static void test_durations(void **state) {
    (void)state;
    const struct { const char *s; double v; } ok[] = {
        {"60s", 60}, {"2m", 120}, {"1.5", 1.5}, {"250ms", 0.25}, {"1h", 3600},
        {"0.5m", 30}, {"10", 10}, {"1e1s", 10},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        double v = -1;
        osp_err_t err = {0};
        assert_int_equal(osp_load_parse_duration_s(ok[i].s, &v, &err), 0);
        assert_true(fabs(v - ok[i].v) < 1e-9);
    }
    const char *bad[] = {"", "s", "-1s", "0", "0s", "1x", "inf", "nan",
                         "1e999", " 1", "1 ", "0x10", "1s2", "ms", "+1",
                         "8d", "200h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        double v = -1;
        osp_err_t err = {0};
        if (osp_load_parse_duration_s(bad[i], &v, &err) >= 0)
            fail_msg("duration '%s' accepted as %g", bad[i], v);
        assert_non_null(strstr(err.msg, bad[i]));
    }
    osp_err_t err = {0};
    double v;
    assert_true(osp_load_parse_duration_s(NULL, &v, &err) < 0);
}

static void test_steps(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_load_profile_t *p = osp_load_profile_create();
    assert_int_equal(osp_load_profile_parse_steps(p, "10:60s,50:1m,0:5,2.5:500ms",
                                             &err), 0);
    assert_int_equal(osp_load_profile_segments(p), 4);
    assert_true(fabs(osp_load_profile_duration_s(p) - 125.5) < 1e-9);
    assert_true(osp_load_profile_rate_at(p, 0) == 10);
    assert_true(osp_load_profile_rate_at(p, 59.9) == 10);
    assert_true(osp_load_profile_rate_at(p, 60) == 50);
    assert_true(osp_load_profile_rate_at(p, 121) == 0);
    assert_true(osp_load_profile_rate_at(p, 125.2) == 2.5);
    assert_true(osp_load_profile_rate_at(p, 125.5) == 0); /* past the end */
    assert_true(osp_load_profile_rate_at(p, -1) == 0);
    assert_true(fabs(osp_load_profile_count(p, 60) - 600) < 1e-9);
    assert_true(fabs(osp_load_profile_count(p, 120) - 3600) < 1e-9);
    assert_true(fabs(osp_load_profile_count(p, 125) - 3600) < 1e-9);
    assert_true(fabs(osp_load_profile_count(p, 1000) - 3601.25) < 1e-9);
    /* the inverse skips the idle segment */
    assert_true(fabs(osp_load_profile_time_of(p, 600) - 60) < 1e-9);
    assert_true(fabs(osp_load_profile_time_of(p, 3600.5) - 125.2) < 1e-9);
    assert_true(isinf(osp_load_profile_time_of(p, 3602)));
    osp_load_profile_destroy(p);

    const char *bad[] = {"", "10", "10:", ":60s", "10:60s,", ",10:60s",
                         "a:1s", "10:60s;50:1s", "-5:1s", "10:0s", "10:1s:3",
                         "10 :1s", "1e9:1s", "nan:1s", "inf:1s", "10:-1s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        osp_load_profile_t *q = osp_load_profile_create();
        osp_err_t e = {0};
        if (osp_load_profile_parse_steps(q, bad[i], &e) >= 0)
            fail_msg("steps '%s' accepted", bad[i]);
        assert_true(strlen(e.msg) > 10);
        osp_load_profile_destroy(q);
    }
    /* The message names the step at fault. */
    osp_load_profile_t *q = osp_load_profile_create();
    assert_true(osp_load_profile_parse_steps(q, "10:60s,5x:2s", &err) < 0);
    assert_non_null(strstr(err.msg, "step 2"));
    assert_non_null(strstr(err.msg, "5x:2s"));
    osp_load_profile_destroy(q);
}

static void test_ramp(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_load_profile_t *p = osp_load_profile_create();
    assert_int_equal(osp_load_profile_parse_ramp(p, "0:100:10s", &err), 0);
    assert_true(fabs(osp_load_profile_rate_at(p, 5) - 50) < 1e-9);
    assert_true(fabs(osp_load_profile_count(p, 10) - 500) < 1e-9);
    assert_true(fabs(osp_load_profile_count(p, 5) - 125) < 1e-9);
    assert_true(fabs(osp_load_profile_time_of(p, 125) - 5) < 1e-9);
    /* a descending ramp inverts too */
    assert_int_equal(osp_load_profile_parse_ramp(p, "100:0:10s", &err), 0);
    assert_true(fabs(osp_load_profile_count(p, 20) - 1000) < 1e-9);
    assert_true(fabs(osp_load_profile_time_of(p, 500 + 375) - 15) < 1e-9);
    osp_load_profile_destroy(p);
    const char *bad[] = {"1:2", "1:2:3:4", "x:1:1s", "1:y:1s", "1:2:zz", "",
                         "1:2:0", "-1:2:1s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        osp_load_profile_t *q = osp_load_profile_create();
        osp_err_t e = {0};
        if (osp_load_profile_parse_ramp(q, bad[i], &e) >= 0)
            fail_msg("ramp '%s' accepted", bad[i]);
        assert_non_null(strstr(e.msg, "--ramp"));
        osp_load_profile_destroy(q);
    }
}

static int trace_err(const char *text, const char *want_in_msg) {
    osp_load_profile_t *p = osp_load_profile_create();
    osp_err_t err = {0};
    int rc = osp_load_profile_parse_trace(p, text, strlen(text), "t.txt", &err);
    osp_load_profile_destroy(p);
    if (rc >= 0)
        fail_msg("trace '%s' accepted", text);
    if (!strstr(err.msg, want_in_msg))
        fail_msg("message '%s' lacks '%s'", err.msg, want_in_msg);
    return rc;
}

static void test_trace(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_load_profile_t *p = osp_load_profile_create();
    const char *t = "# requests per second\n5\n0\r\n 10 \n# idle\n2.5";
    assert_int_equal(osp_load_profile_parse_trace(p, t, strlen(t), "t", &err), 0);
    assert_int_equal(osp_load_profile_segments(p), 4);
    assert_true(osp_load_profile_duration_s(p) == 4);
    assert_true(osp_load_profile_rate_at(p, 0.5) == 5);
    assert_true(osp_load_profile_rate_at(p, 1.5) == 0);
    assert_true(osp_load_profile_rate_at(p, 2.5) == 10);
    assert_true(fabs(osp_load_profile_count(p, 4) - 17.5) < 1e-9);
    osp_load_profile_destroy(p);

    trace_err("5\n\n6\n", "t.txt:2: empty line");
    trace_err("5\nabc\n", "t.txt:2");
    trace_err("5\n-1\n", "t.txt:2");
    trace_err("1\n2\n1 2\n", "t.txt:3");
    trace_err("nan\n", "t.txt:1");
    trace_err("0x10\n", "t.txt:1");
    trace_err("", "no seconds");
    trace_err("# only a comment\n", "no seconds");
    trace_err("99999999\n", "t.txt:1");
    char nul[] = {'5', '\n', '1', 0, '2', '\n'};
    osp_load_profile_t *q = osp_load_profile_create();
    assert_true(osp_load_profile_parse_trace(q, nul, sizeof nul, "n", &err) < 0);
    assert_non_null(strstr(err.msg, "n:2"));
    osp_load_profile_destroy(q);
}

static void test_trace_file(void **state) {
    (void)state;
    char path[] = "/tmp/osp_trace_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *t = "3\n4\n";
    assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
    close(fd);
    osp_err_t err = {0};
    osp_load_profile_t *p = osp_load_profile_create();
    assert_int_equal(osp_load_profile_load_trace(p, path, &err), 0);
    assert_true(fabs(osp_load_profile_count(p, 2) - 7) < 1e-9);
    unlink(path);
    assert_true(osp_load_profile_load_trace(p, path, &err) < 0);
    assert_non_null(strstr(err.msg, path));
    osp_load_profile_destroy(p);
}

static void test_limits(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_load_profile_t *p = osp_load_profile_create();
    assert_true(osp_load_profile_add(p, 1e8, 1e8, 1, &err) < 0);
    assert_true(osp_load_profile_add(p, 1, 1, 8 * 86400.0, &err) < 0);
    assert_true(osp_load_profile_add(p, 1, NAN, 1, &err) < 0);
    assert_true(osp_load_profile_add(p, 1, 1, INFINITY, &err) < 0);
    assert_int_equal(osp_load_profile_add(p, 1, 1, 6 * 86400.0, &err), 0);
    assert_true(osp_load_profile_add(p, 1, 1, 2 * 86400.0, &err) < 0);
    assert_non_null(strstr(err.msg, "longer"));
    osp_load_profile_destroy(p);
    /* An empty profile has no time and no requests. */
    p = osp_load_profile_create();
    assert_true(osp_load_profile_duration_s(p) == 0);
    assert_true(osp_load_profile_count(p, 5) == 0);
    assert_true(isinf(osp_load_profile_time_of(p, 1)));
    osp_load_profile_destroy(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_ramp),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_trace_file),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
