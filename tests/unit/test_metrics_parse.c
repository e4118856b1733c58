/* test_metrics_parse.c — reading the Prometheus text format
 * (src/metrics/parse.c): what osprey's own renderer writes reads back to
 * the same numbers and labels; the format's other spellings (NaN, +Inf,
 * timestamps, escaped label values, comments) parse; malformed sample
 * lines are errors naming the line. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "osprey/metrics.h"

typedef struct seen_s {
    int n;
    char names[16][64];
    char labels[16][128];
    double values[16];
} seen_t;

static int collect(const osp_metrics_sample_t *s, void *ud) {
    seen_t *x = ud;
    if (x->n == 16)
        return 0;
    snprintf(x->names[x->n], 64, "%.*s", (int)s->name_len, s->name);
    snprintf(x->labels[x->n], 128, "%.*s", (int)s->labels_len, s->labels);
    x->values[x->n++] = s->value;
    return 0;
}

static void test_round_trip(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_metrics_t *r = osp_metrics_create(0);
    const char *ln[] = {"model", "code"};
    osp_metric_t *c = osp_metrics_add(r, OSP_METRIC_COUNTER, "req_total", "h",
                                      2, ln, NULL, 0, 0, &err);
    const double bounds[] = {0.1, 0.5};
    osp_metric_t *h = osp_metrics_add(r, OSP_METRIC_HISTOGRAM, "dur_seconds",
                                      "h", 0, NULL, bounds, 2, 0, &err);
    assert_non_null(c);
    assert_non_null(h);
    const char *v[] = {"res\"net", "200"};
    osp_series_add(osp_metric_series(c, v), 7);
    osp_series_observe(osp_metric_series0(h), 0.05);
    osp_series_observe(osp_metric_series0(h), 0.3);
    osp_series_observe(osp_metric_series0(h), 2);
    char *text;
    size_t len;
    assert_int_equal(osp_metrics_render(r, &text, &len), 0);
    seen_t x = {0};
    assert_int_equal(osp_metrics_parse_text(text, len, collect, &x, &err), 0);
    /* req_total, then 3 buckets, sum and count. */
    assert_int_equal(x.n, 6);
    assert_string_equal(x.names[0], "req_total");
    assert_true(x.values[0] == 7);
    assert_string_equal(x.names[1], "dur_seconds_bucket");
    assert_true(x.values[1] == 1 && x.values[2] == 2 && x.values[3] == 3);
    assert_string_equal(x.names[5], "dur_seconds_count");
    /* Labels read back unescaped. */
    osp_metrics_sample_t s = {.labels = x.labels[0],
                              .labels_len = strlen(x.labels[0])};
    char buf[32];
    assert_int_equal(osp_metrics_sample_label(&s, "model", buf, sizeof buf), 1);
    assert_string_equal(buf, "res\"net");
    assert_int_equal(osp_metrics_sample_label(&s, "code", buf, sizeof buf), 1);
    assert_string_equal(buf, "200");
    assert_int_equal(osp_metrics_sample_label(&s, "le", buf, sizeof buf), 0);
    free(text);
    osp_metrics_destroy(r);
}

static void test_spellings(void **state) {
    (void)state;
    const char *t = "# HELP a x\n# TYPE a gauge\n"
                    "a NaN\n"
                    "b{le=\"+Inf\"} +Inf 1700000000000\n"
                    "  c{x=\"a}b\",y=\"\\\\\"} -Inf\r\n"
                    "\n"
                    "d 1.5e3\n";
    seen_t x = {0};
    osp_err_t err = {0};
    assert_int_equal(osp_metrics_parse_text(t, strlen(t), collect, &x, &err), 0);
    assert_int_equal(x.n, 4);
    assert_true(isnan(x.values[0]));
    assert_true(isinf(x.values[1]) && x.values[1] > 0);
    assert_string_equal(x.labels[2], "x=\"a}b\",y=\"\\\\\"");
    assert_true(isinf(x.values[2]) && x.values[2] < 0);
    assert_true(x.values[3] == 1500);
}

static void test_malformed(void **state) {
    (void)state;
    static const char *const bad[] = {
        "a\n", "a{x=\"1\" 2\n", "1a 2\n", "a 2x\n", "a{x=\"1\"}2\n", "a  \n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        seen_t x = {0};
        osp_err_t err = {0};
        char text[64];
        snprintf(text, sizeof text, "ok 1\n%s", bad[i]);
        assert_int_equal(osp_metrics_parse_text(text, strlen(text), collect,
                                                &x, &err), OSP_EFORMAT);
        if (!strstr(err.msg, "line 2"))
            fail_msg("case %zu: %s", i, err.msg);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_spellings),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
