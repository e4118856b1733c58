/* test_report.c — `osprey report`'s statistics and pages on numbers
 * computed by hand: quantiles (type 7), Pearson's r, 1-2-5 ticks and axes,
 * load levels (detected from plateaus, and from profile steps), then a
 * whole report from a small time series and recorder file: every chart an
 * <svg> with a title and both axes, the Markdown's level table with one row
 * per level, and the errors for missing or garbage input. */
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

#include "report/report_int.h"

static void test_quantile(void **state) {
    (void)state;
    double v[] = {4, 1, NAN, 3, 2};
    assert_float_equal(osp__report_quantile(v, 5, 0.5), 2.5, 1e-12);
    assert_float_equal(osp__report_quantile(v, 5, 0.25), 1.75, 1e-12);
    assert_float_equal(osp__report_quantile(v, 5, 0.0), 1, 1e-12);
    assert_float_equal(osp__report_quantile(v, 5, 1.0), 4, 1e-12);
    assert_float_equal(osp__report_quantile(v, 5, 0.99), 3.97, 1e-12);
    assert_true(isnan(osp__report_quantile(v, 0, 0.5)));
    double one[] = {7};
    assert_float_equal(osp__report_quantile(one, 1, 0.9), 7, 1e-12);
    assert_float_equal(osp__report_mean(v, 5), 2.5, 1e-12);
    assert_float_equal(v[0], 4, 0); /* not sorted in place */
}

static void test_pearson(void **state) {
    (void)state;
    double x[] = {1, 2, 3, 4, 5}, up[] = {2, 4, 6, 8, 10}, down[] = {10, 8, 6, 4, 2};
    assert_float_equal(osp__report_pearson(x, up, 5), 1, 1e-12);
    assert_float_equal(osp__report_pearson(x, down, 5), -1, 1e-12);
    /* dx = -1,0,1; dy = -1,1,0: sxy 1, sxx 2, syy 2 → 0.5 */
    double a[] = {1, 2, 3}, b[] = {1, 3, 2};
    assert_float_equal(osp__report_pearson(a, b, 3), 0.5, 1e-12);
    /* NaN pairs are skipped: the same as above */
    double a2[] = {1, NAN, 2, 3, 9}, b2[] = {1, 5, 3, 2, NAN};
    assert_float_equal(osp__report_pearson(a2, b2, 5), 0.5, 1e-12);
    double c[] = {3, 3, 3};
    assert_true(isnan(osp__report_pearson(a, c, 3))); /* constant */
    assert_true(isnan(osp__report_pearson(a, b, 2)));  /* too few */
}

static void test_ticks(void **state) {
    (void)state;
    assert_float_equal(osp__report_tick_step(0, 10, 6), 2, 1e-12);
    assert_float_equal(osp__report_tick_step(0, 1, 7), 0.2, 1e-12);
    assert_float_equal(osp__report_tick_step(0, 730, 7), 200, 1e-12);
    assert_float_equal(osp__report_tick_step(0, 72, 13), 10, 1e-12);
    assert_float_equal(osp__report_tick_step(0, 0.004, 5), 0.001, 1e-15);
    osp__report_axis_t a;
    osp__report_axis(0, 730, 7, true, &a);
    assert_float_equal(a.step, 200, 1e-12);
    assert_float_equal(a.hi, 800, 1e-9);
    assert_int_equal(a.n_ticks, 5);
    /* 12..47 from zero: 0..50 by 10 */
    osp__report_axis(12, 47, 7, true, &a);
    assert_float_equal(a.lo, 0, 1e-12);
    assert_float_equal(a.hi, 50, 1e-9);
    assert_float_equal(a.step, 10, 1e-12);
    /* widening to ticks may need the next step: 0..61 with 7 → 0..80 by 20 */
    osp__report_axis(0, 61, 7, true, &a);
    assert_true(a.n_ticks <= 7);
    assert_true(a.hi >= 61);
    /* flat ranges */
    osp__report_axis(5, 5, 7, false, &a);
    assert_float_equal(a.lo, 4, 1e-12);
    assert_float_equal(a.hi, 6, 1e-12);
    osp__report_axis(0, 0, 7, true, &a);
    assert_float_equal(a.lo, 0, 1e-12);
    assert_float_equal(a.hi, 1, 1e-12);
    osp__report_axis(NAN, NAN, 7, true, &a);
    assert_float_equal(a.hi, 1, 1e-12);
    /* every tick is a 1-2-5 multiple of a power of ten */
    for (double hi = 0.3; hi < 1e6; hi *= 1.7) {
        osp__report_axis(0, hi, 7, true, &a);
        double m = a.step / pow(10, floor(log10(a.step) + 1e-9));
        assert_true(fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9);
        assert_true(a.n_ticks >= 2 && a.n_ticks <= 7);
    }
}

/* 5 req/s × 20 s, 20 × 20, 40 × 10, 5 × 20, then 2 s of drain. */
static int step_profile(double *v, double noise) {
    static const int rate[] = {5, 20, 40, 5}, dur[] = {20, 20, 10, 20};
    int n = 0;
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < dur[k]; i++, n++)
            v[n] = rate[k] * (1 + noise * ((n * 7919 % 13) / 6.0 - 1));
    v[n++] = 0;
    v[n++] = 0;
    return n;
}

static void test_levels_detected(void **state) {
    (void)state;
    double v[80];
    osp__report_level_t lv[8];
    int n = step_profile(v, 0);
    assert_int_equal(osp__report_detect_levels(v, n, lv, 8), 4);
    int want[][2] = {{0, 20}, {20, 40}, {40, 50}, {50, 70}};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(lv[k].start, want[k][0]);
        assert_int_equal(lv[k].end, want[k][1]);
    }
    assert_float_equal(lv[2].offered_rps, 40, 1e-12);
    /* ±10 % noise (Poisson-like arrivals) finds the same four */
    n = step_profile(v, 0.1);
    assert_int_equal(osp__report_detect_levels(v, n, lv, 8), 4);
    for (int k = 0; k < 4; k++)
        assert_true(abs(lv[k].start - want[k][0]) <= 1);
    /* one short blip does not make a level */
    double flat[30];
    for (int i = 0; i < 30; i++)
        flat[i] = i == 12 ? 50 : 10;
    assert_int_equal(osp__report_detect_levels(flat, 30, lv, 8), 1);
    /* nothing offered: no level */
    double zero[5] = {0};
    assert_int_equal(osp__report_detect_levels(zero, 5, lv, 8), 0);
}

static void test_levels_given(void **state) {
    (void)state;
    osp__report_level_t lv[8];
    int n = 0;
    osp_err_t err = {0};
    assert_int_equal(osp__report_parse_levels("5:20s,20:20s,40:10s,5:20", 72, lv,
                                              8, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(lv[1].start, 20);
    assert_int_equal(lv[2].end, 50);
    assert_int_equal(lv[3].end, 70);
    assert_float_equal(lv[2].offered_rps, 40, 1e-12);
    /* clipped to the time series */
    assert_int_equal(osp__report_parse_levels("5:1m", 30, lv, 8, &n, &err), 0);
    assert_int_equal(lv[0].end, 30);
    assert_true(osp__report_parse_levels("5:xx", 30, lv, 8, &n, &err) < 0);
    assert_non_null(strstr(err.msg, "--levels"));
    assert_true(osp__report_parse_levels("", 30, lv, 8, &n, &err) < 0);
}

static int count(const char *s, const char *what) {
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

static void test_svg_chart(void **state) {
    (void)state;
    double y[10] = {1, 2, 3, NAN, 5, 6, 7, 8, 9, 700};
    osp__report_line_t l[1] = {{"p99 <ms>", y}};
    bool bands[10] = {[9] = true};
    osp__report_level_t lv[2] = {{0, 5, 1}, {5, 10, 2}};
    int ms[1] = {4}, md[1] = {1};
    osp__report_chart_t c = {.title = "Latency & more", .y_label = "latency (ms)",
                             .lines = l, .n_lines = 1, .n = 10, .from_zero = true,
                             .hline = 500, .hline_label = "SLO", .bands = bands,
                             .levels = lv, .n_levels = 2, .mark_s = ms,
                             .mark_dir = md, .n_marks = 1};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    osp__report_svg_chart(f, &c);
    fclose(f);
    assert_int_equal(count(buf, "<svg"), 1);
    assert_int_equal(count(buf, "</svg>"), 1);
    assert_non_null(strstr(buf, "<title>Latency &amp; more</title>"));
    assert_non_null(strstr(buf, "class=\"axis x\""));
    assert_non_null(strstr(buf, "class=\"axis y\""));
    assert_non_null(strstr(buf, ">latency (ms)</text>"));
    assert_non_null(strstr(buf, "time since the load started (s)"));
    assert_non_null(strstr(buf, "p99 &lt;ms&gt;")); /* the legend, escaped */
    assert_int_equal(count(buf, "<polyline"), 2);  /* the NaN splits the line */
    assert_int_equal(count(buf, "class=\"violation\""), 1);
    assert_int_equal(count(buf, "class=\"level\""), 2);
    assert_int_equal(count(buf, "class=\"up\""), 2); /* line + arrow */
    assert_non_null(strstr(buf, "class=\"slo\""));
    /* y ticks 0..800 by 200 */
    assert_non_null(strstr(buf, ">800</text>"));
    assert_null(strstr(buf, ">700</text>"));
    free(buf);
}

static char tmpdir[64];

static void write_file(const char *name, const char *text) {
    char p[128];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static osp_report_t *report_from(const char *ts, osp_err_t *err, int *rc) {
    osp_report_opts_t o;
    osp_report_opts_init(&o);
    o.title = "unit <test>";
    /* the sample at 1000 + i closes the load's second i */
    o.load_start_unix_s = 999;
    osp_report_t *r = osp_report_create(&o, err);
    assert_non_null(r);
    char p[128];
    snprintf(p, sizeof p, "%s/%s", tmpdir, ts);
    *rc = osp_report_load_timeseries(r, p, err);
    return r;
}

static void test_whole_report(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/osp-test-report-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    /* 3 levels of 6 s: 2, 10, 2 req/s; p99 900 ms in second 8 */
    char *ts = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&ts, &len);
    fprintf(f, "second,target,sent,completed,errors,p50_ms,p99_ms,max_ms,inflight,queued\n");
    for (int i = 0; i < 19; i++) {
        int r = i < 6 ? 2 : i < 12 ? 10 : i < 18 ? 2 : 0;
        fprintf(f, "%d,%d,%d,%d,0,10,%d,30,0,0\n", i, r, r, r, i == 8 ? 900 : 20);
    }
    fclose(f);
    write_file("timeseries.csv", ts);
    free(ts);
    /* one worker's samples, its CPU following the load */
    char *js = NULL;
    f = open_memstream(&js, &len);
    double cpu = 0, t0 = 1000;
    for (int i = -1; i < 20; i++) {
        int r = i < 0 ? 0 : i < 6 ? 2 : i < 12 ? 10 : i < 18 ? 2 : 0;
        cpu += r * 0.01;
        fprintf(f, "{\"t\":%g,\"target\":\"http://127.0.0.1:8081/metrics\",\"up\":true,"
                   "\"samples\":{\"process_cpu_seconds_total\":%g,"
                   "\"process_resident_memory_bytes\":%g,\"osprey_requests_total\":%d}}\n",
                t0 + i, cpu, 1e8 + r * 1e6, i < 0 ? 0 : i + 1);
    }
    fprintf(f, "\n{\"t\":%g,\"target\":\"http://127.0.0.1:8082/metrics\",\"up\":false,"
               "\"error\":\"refused\"}\n", t0);
    fclose(f);
    write_file("samples.jsonl", js);
    free(js);

    osp_err_t err = {0};
    int rc;
    osp_report_t *r = report_from("", &err, &rc);
    assert_int_equal(rc, 0);
    char p[128];
    snprintf(p, sizeof p, "%s/samples.jsonl", tmpdir);
    assert_int_equal(osp_report_load_samples(r, p, &err), 0);
    assert_int_equal(osp_report_analyse(r, &err), 0);
    assert_int_equal(osp_report_levels(r), 3);
    char *html = NULL, *md = NULL;
    f = open_memstream(&html, &len);
    assert_int_equal(osp_report_write_html(r, f, &err), 0);
    fclose(f);
    f = open_memstream(&md, &len);
    assert_int_equal(osp_report_write_markdown(r, f, &err), 0);
    fclose(f);
    /* 7 charts, each titled and with both axes */
    assert_int_equal(count(html, "<svg"), 7);
    assert_int_equal(count(html, "</svg>"), 7);
    for (const char *s = strstr(html, "<svg"); s; s = strstr(s + 1, "<svg")) {
        const char *e = strstr(s, "</svg>");
        char *one = strndup(s, (size_t)(e - s));
        assert_non_null(strstr(one, "<title>"));
        assert_non_null(strstr(one, "class=\"title\""));
        assert_non_null(strstr(one, "class=\"axis x\""));
        assert_non_null(strstr(one, "class=\"axis y\""));
        free(one);
    }
    assert_non_null(strstr(html, "<title>unit &lt;test&gt;</title>"));
    assert_null(strstr(html, "<script"));
    /* Self-contained: no link, script or asset from anywhere. */
    assert_null(strstr(html, "href="));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "<script"));
    /* the SLO: one second (8) over 500 ms */
    assert_non_null(strstr(md, "1 of 19 seconds outside it"));
    assert_non_null(strstr(md, "| L3 |"));
    assert_null(strstr(md, "| L4 |"));
    /* CPU follows the load exactly: r = 1.00 */
    if (!strstr(md, "| worker CPU, all workers (cores) | 1.00 | strong |"))
        fail_msg("%s", md);
    free(html);
    free(md);
    osp_report_destroy(r);

    /* bad input: missing, garbage, a JSONL that is not the recorder's */
    r = report_from("nope.csv", &err, &rc);
    assert_int_equal(rc, OSP_ENOENT);
    osp_report_destroy(r);
    write_file("garbage.csv", "second,target,sent,completed,errors,p50_ms,p99_ms,"
                              "max_ms,inflight,queued\n0,1,1,1,0,x,1,1,0,0\n");
    r = report_from("garbage.csv", &err, &rc);
    assert_int_equal(rc, OSP_EFORMAT);
    assert_non_null(strstr(err.msg, "garbage.csv:2"));
    osp_report_destroy(r);
    write_file("other.csv", "a,b\n1,2\n");
    r = report_from("other.csv", &err, &rc);
    assert_int_equal(rc, OSP_EFORMAT);
    write_file("bad.jsonl", "{\"t\":1}\n");
    snprintf(p, sizeof p, "%s/bad.jsonl", tmpdir);
    assert_int_equal(osp_report_load_samples(r, p, &err), OSP_EFORMAT);
    assert_non_null(strstr(err.msg, "bad.jsonl:1"));
    assert_int_equal(osp_report_analyse(r, &err), OSP_EINVAL); /* no rows */
    osp_report_destroy(r);
    /* a bad --levels fails at create */
    osp_report_opts_t o;
    osp_report_opts_init(&o);
    o.levels = "1:2:3:4";
    assert_null(osp_report_create(&o, &err));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_pearson),
        cmocka_unit_test(test_ticks),
        cmocka_unit_test(test_levels_detected),
        cmocka_unit_test(test_levels_given),
        cmocka_unit_test(test_svg_chart),
        cmocka_unit_test(test_whole_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
