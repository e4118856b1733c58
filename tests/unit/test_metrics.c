/* test_metrics.c — the metrics registry: exposition text parsed back and its
 * numbers checked (counters, gauges, labelled series, histogram buckets, label
 * escaping), the series limit, concurrent updates from several threads, and
 * the process metrics read from /proc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "osprey/metrics.h"

/* Finds the sample line whose series part (name{labels}) equals `series`
 * exactly and returns its value; fails the test when absent. Also checks that
 * every non-comment line has the shape "series value". */
static double sample(const char *text, const char *series) {
    size_t sl = strlen(series);
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol); /* every line ends with \n */
        if (*p != '#') {
            /* The value starts after the last space on the line. */
            const char *sp = NULL;
            for (const char *q = p; q < eol; q++)
                if (*q == ' ')
                    sp = q;
            assert_non_null(sp);
            if ((size_t)(sp - p) == sl && !memcmp(p, series, sl)) {
                char *end;
                double v = strtod(sp + 1, &end);
                assert_ptr_equal(end, eol);
                return v;
            }
        }
        p = eol + 1;
    }
    fail_msg("series %s not found in:\n%s", series, text);
    return NAN;
}

static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static char *render(osp_metrics_t *r) {
    char *t = NULL;
    size_t len = 0;
    assert_int_equal(osp_metrics_render(r, &t, &len), 0);
    assert_int_equal(strlen(t), len);
    return t;
}

static void test_counter_gauge(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_metrics_t *r = osp_metrics_create(0);
    const char *lbl[] = {"model", "code"};
    osp_metric_t *c = osp_metrics_add(r, OSP_METRIC_COUNTER, "req_total",
                                      "Requests.", 2, lbl, NULL, 0, 0, &err);
    assert_non_null(c);
    osp_metric_t *g = osp_metrics_add(r, OSP_METRIC_GAUGE, "inflight",
                                      "In flight.", 0, NULL, NULL, 0, 0, &err);
    assert_non_null(g);
    char *t = render(r);
    /* An unlabelled family renders 0 before any update; a labelled one only
     * its HELP/TYPE. */
    assert_true(has_line(t, "# HELP req_total Requests."));
    assert_true(has_line(t, "# TYPE req_total counter"));
    assert_true(has_line(t, "# TYPE inflight gauge"));
    assert_true(has_line(t, "inflight 0"));
    assert_null(strstr(t, "req_total{"));
    free(t);

    osp_series_t *ok = osp_metric_series(c, (const char *[]){"m1", "200"});
    osp_series_t *ok2 = osp_metric_series(c, (const char *[]){"m1", "200"});
    assert_ptr_equal(ok, ok2);
    osp_series_inc(ok);
    osp_series_add(ok, 2.5);
    osp_series_add(ok, -7);   /* counters never go down */
    osp_series_add(ok, NAN);  /* ignored */
    osp_series_inc(osp_metric_series(c, (const char *[]){"m1", "503"}));
    osp_series_t *gs = osp_metric_series0(g);
    osp_series_set(gs, 5);
    osp_series_add(gs, -2);
    osp_series_set(ok, 100); /* set on a counter is ignored */
    t = render(r);
    assert_true(sample(t, "req_total{model=\"m1\",code=\"200\"}") == 3.5);
    assert_true(sample(t, "req_total{model=\"m1\",code=\"503\"}") == 1);
    assert_true(sample(t, "inflight") == 3);
    assert_true(osp_series_value(gs) == 3);
    free(t);
    osp_metrics_destroy(r);
}

/* The HTTP byte counters shared by serve and dispatch: both names, counter
 * type, 0 before traffic, the sums after. */
static void test_http_bytes(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_metrics_t *r = osp_metrics_create(0);
    osp_series_t *rx = NULL, *tx = NULL;
    assert_int_equal(osp_metrics_add_http_bytes(r, &rx, &tx, &err), 0);
    assert_non_null(rx);
    assert_non_null(tx);
    char *t = render(r);
    assert_true(has_line(t, "# TYPE osprey_http_received_bytes_total counter"));
    assert_true(has_line(t, "# TYPE osprey_http_sent_bytes_total counter"));
    assert_true(sample(t, "osprey_http_received_bytes_total") == 0);
    assert_true(sample(t, "osprey_http_sent_bytes_total") == 0);
    free(t);
    osp_series_add(rx, 11);
    osp_series_add(rx, 1048576);
    osp_series_add(tx, 240);
    t = render(r);
    assert_true(sample(t, "osprey_http_received_bytes_total") == 1048587);
    assert_true(sample(t, "osprey_http_sent_bytes_total") == 240);
    free(t);
    /* Twice in one registry: a duplicate name, an error (not a crash). */
    assert_true(osp_metrics_add_http_bytes(r, &rx, &tx, &err) < 0);
    assert_non_null(strstr(err.msg, "osprey_http_received_bytes_total"));
    osp_metrics_destroy(r);
}

static void test_histogram(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_metrics_t *r = osp_metrics_create(0);
    const double b[] = {0.1, 0.5, 1};
    const char *lbl[] = {"model"};
    osp_metric_t *h = osp_metrics_add(r, OSP_METRIC_HISTOGRAM, "lat_seconds",
                                      "Latency.", 1, lbl, b, 3, 0, &err);
    assert_non_null(h);
    osp_series_t *s = osp_metric_series(h, (const char *[]){"a"});
    const double obs[] = {0.05, 0.1, 0.3, 0.7, 1.0, 3.0, 0.2};
    for (size_t i = 0; i < OSP_ARRAY_LEN(obs); i++)
        osp_series_observe(s, obs[i]);
    osp_series_observe(s, NAN);
    char *t = render(r);
    assert_true(has_line(t, "# TYPE lat_seconds histogram"));
    /* le is inclusive: 0.1 falls in the 0.1 bucket; buckets cumulative. */
    assert_true(sample(t, "lat_seconds_bucket{model=\"a\",le=\"0.1\"}") == 2);
    assert_true(sample(t, "lat_seconds_bucket{model=\"a\",le=\"0.5\"}") == 4);
    assert_true(sample(t, "lat_seconds_bucket{model=\"a\",le=\"1\"}") == 6);
    assert_true(sample(t, "lat_seconds_bucket{model=\"a\",le=\"+Inf\"}") == 7);
    assert_true(sample(t, "lat_seconds_count{model=\"a\"}") == 7);
    assert_true(fabs(sample(t, "lat_seconds_sum{model=\"a\"}") - 5.35) < 1e-12);
    free(t);

    /* Default buckets, no labels. */
    osp_metric_t *d = osp_metrics_add(r, OSP_METRIC_HISTOGRAM, "d_seconds",
                                      "D.", 0, NULL, NULL, 0, 0, &err);
    assert_non_null(d);
    osp_series_observe(osp_metric_series0(d), 0.007);
    t = render(r);
    assert_true(sample(t, "d_seconds_bucket{le=\"0.005\"}") == 0);
    assert_true(sample(t, "d_seconds_bucket{le=\"0.01\"}") == 1);
    assert_true(sample(t, "d_seconds_bucket{le=\"10\"}") == 1);
    assert_true(sample(t, "d_seconds_count") == 1);
    free(t);
    osp_metrics_destroy(r);
}

static void test_escaping_and_names(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_metrics_t *r = osp_metrics_create(0);
    const char *lbl[] = {"path"};
    osp_metric_t *c = osp_metrics_add(r, OSP_METRIC_COUNTER, "x_total",
                                      "Help with \\ and\nnewline.", 1, lbl,
                                      NULL, 0, 0, &err);
    assert_non_null(c);
    osp_series_inc(osp_metric_series(c, (const char *[]){"a\"b\\c\nd"}));
    char *t = render(r);
    assert_true(has_line(t, "# HELP x_total Help with \\\\ and\\nnewline."));
    assert_true(sample(t, "x_total{path=\"a\\\"b\\\\c\\nd\"}") == 1);
    free(t);

    /* Invalid registrations are errors, not asserts. */
    assert_null(osp_metrics_add(r, OSP_METRIC_COUNTER, "9bad", "", 0, NULL,
                                NULL, 0, 0, &err));
    assert_int_equal(err.code, OSP_EINVAL);
    assert_null(osp_metrics_add(r, OSP_METRIC_COUNTER, "x_total", "", 0, NULL,
                                NULL, 0, 0, &err));
    const char *le[] = {"le"};
    assert_null(osp_metrics_add(r, OSP_METRIC_HISTOGRAM, "h", "", 1, le, NULL,
                                0, 0, &err));
    const char *dunder[] = {"__x"};
    assert_null(osp_metrics_add(r, OSP_METRIC_GAUGE, "g", "", 1, dunder, NULL,
                                0, 0, &err));
    const double bad[] = {1, 1};
    assert_null(osp_metrics_add(r, OSP_METRIC_HISTOGRAM, "h", "", 0, NULL, bad,
                                2, 0, &err));
    const double inf[] = {INFINITY};
    assert_null(osp_metrics_add(r, OSP_METRIC_HISTOGRAM, "h", "", 0, NULL, inf,
                                1, 0, &err));
    osp_metrics_destroy(r);
}

static void test_series_limit(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_metrics_t *r = osp_metrics_create(0);
    const char *lbl[] = {"k"};
    osp_metric_t *c = osp_metrics_add(r, OSP_METRIC_COUNTER, "lim_total", "L.",
                                      1, lbl, NULL, 0, 3, &err);
    char v[16];
    for (int i = 0; i < 10; i++) {
        snprintf(v, sizeof v, "v%d", i);
        osp_series_t *s = osp_metric_series(c, (const char *[]){v});
        if (i < 3)
            assert_non_null(s);
        else
            assert_null(s);
        osp_series_inc(s); /* NULL is a no-op */
    }
    assert_int_equal(osp_metric_dropped(c), 7);
    /* Existing series are still found at the limit. */
    assert_non_null(osp_metric_series(c, (const char *[]){"v1"}));
    char *t = render(r);
    assert_true(sample(t, "lim_total{k=\"v2\"}") == 1);
    assert_null(strstr(t, "v3"));
    free(t);
    osp_metrics_destroy(r);
}

typedef struct {
    osp_metric_t *c, *h;
    int n;
} thr_arg_t;

static void *hammer(void *p) {
    thr_arg_t *a = p;
    const char *vals[2][1] = {{"even"}, {"odd"}};
    for (int i = 0; i < a->n; i++) {
        osp_series_inc(osp_metric_series(a->c, vals[i & 1]));
        osp_series_observe(osp_metric_series0(a->h), 0.25);
    }
    return NULL;
}

static void test_concurrent(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_metrics_t *r = osp_metrics_create(0);
    const char *lbl[] = {"parity"};
    thr_arg_t a = {
        osp_metrics_add(r, OSP_METRIC_COUNTER, "c_total", "C.", 1, lbl, NULL,
                        0, 0, &err),
        osp_metrics_add(r, OSP_METRIC_HISTOGRAM, "h_seconds", "H.", 0, NULL,
                        NULL, 0, 0, &err),
        20000};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &a), 0);
    /* Render while the threads run: must never crash or tear lines. */
    for (int i = 0; i < 20; i++) {
        char *t = render(r);
        free(t);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    char *t = render(r);
    assert_true(sample(t, "c_total{parity=\"even\"}") == 40000);
    assert_true(sample(t, "c_total{parity=\"odd\"}") == 40000);
    assert_true(sample(t, "h_seconds_count") == 80000);
    assert_true(sample(t, "h_seconds_bucket{le=\"0.1\"}") == 0);
    assert_true(sample(t, "h_seconds_bucket{le=\"0.25\"}") == 80000);
    assert_true(sample(t, "h_seconds_sum") == 20000);
    free(t);
    osp_metrics_destroy(r);
}

static void test_process(void **state) {
    (void)state;
    osp_metrics_t *r = osp_metrics_create(1);
    /* Burn a little CPU so cpu seconds are measurable. */
    volatile double x = 0;
    for (int i = 0; i < 20000000; i++)
        x += i * 0.5;
    (void)x; /* clang: set but not used */
    char *t = render(r);
    assert_true(has_line(t, "# TYPE process_cpu_seconds_total counter"));
    assert_true(sample(t, "process_cpu_seconds_total") > 0);
    double rss = sample(t, "process_resident_memory_bytes");
    assert_true(rss > 1e5 && rss < 1e11);
    assert_true(sample(t, "process_virtual_memory_bytes") >= rss);
    double fds = sample(t, "process_open_fds");
    assert_true(fds >= 3 && fds < 10000);
    double start = sample(t, "process_start_time_seconds");
    double now = (double)time(NULL);
    assert_true(start <= now + 1 && start > now - 3600);
    assert_true(sample(t, "process_max_fds") >= fds);
    free(t);
    osp_metrics_destroy(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_gauge),
        cmocka_unit_test(test_http_bytes),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_escaping_and_names),
        cmocka_unit_test(test_series_limit),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
