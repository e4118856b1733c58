/* test_ui_status.c — the status page's numbers (src/dispatch/status.c):
 * req/s, quantiles and error rate over the minute before "now" from the
 * ring of per-second samples, the window's edges, slot reuse after a
 * minute, the 60-point series; and the embedded asset table (src/ui). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "dispatch/dispatch_int.h"

static double num(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    assert_non_null(v);
    return json_number_value(v);
}

static void test_empty(void **st) {
    (void)st;
    osp__dsp_stats_t s;
    osp__dsp_stats_init(&s);
    json_t *j = osp__dsp_stats_json(&s, 5000);
    assert_int_equal((int)num(j, "requests_1m"), 0);
    assert_true(num(j, "p99_ms") == 0 && num(j, "error_rate") == 0);
    assert_int_equal((int)json_array_size(json_object_get(j, "series")), 60);
    json_decref(j);
    osp__dsp_stats_fini(&s);
}

static void test_minute(void **st) {
    (void)st;
    osp__dsp_stats_t s;
    osp__dsp_stats_init(&s);
    /* Second 1000: latencies 1..100 ms; 5 are 503s, 3 are 404s. */
    for (int i = 1; i <= 100; i++)
        osp__dsp_stats_record(&s, 1000, i, i <= 5 ? 503 : i <= 8 ? 404 : 200);
    /* Second 1030: 50 more at 10 ms. */
    for (int i = 0; i < 50; i++)
        osp__dsp_stats_record(&s, 1030, 10, 200);
    /* The current second (1031) is still filling: not counted. */
    osp__dsp_stats_record(&s, 1031, 5000, 500);

    json_t *j = osp__dsp_stats_json(&s, 1031);
    assert_int_equal((int)num(j, "requests_1m"), 150);
    assert_int_equal((int)num(j, "rps"), 50); /* the last complete second */
    assert_true(fabs(num(j, "rps_1m") - 2.5) < 1e-9);
    assert_int_equal((int)num(j, "errors_5xx_1m"), 5);
    assert_int_equal((int)num(j, "errors_4xx_1m"), 3);
    assert_true(fabs(num(j, "error_rate") - 5.0 / 150) < 1e-3);
    /* Sorted, the 150 samples are 50 × 10 ms then 1..100 ms, minus the
     * 10 ms one counted among the first: rank 75 (p50) is ~ 25 ms, rank
     * 143 (p95) ~ 93 ms, rank 149 (p99) ~ 99 ms; buckets are ±4.4%. */
    assert_true(fabs(num(j, "p50_ms") - 25) / 25 < 0.05);
    assert_true(fabs(num(j, "p95_ms") - 93) / 93 < 0.05);
    assert_true(fabs(num(j, "p99_ms") - 99) / 99 < 0.05);
    assert_true(fabs(num(j, "mean_ms") - (5050.0 + 500) / 150) < 1e-2);
    json_t *ser = json_object_get(j, "series");
    assert_int_equal((int)json_array_size(ser), 60);
    json_t *first = json_array_get(ser, 0), *last = json_array_get(ser, 59);
    assert_int_equal((int)num(first, "t"), 971);
    assert_int_equal((int)num(last, "t"), 1030);
    assert_int_equal((int)num(last, "requests"), 50);
    assert_true(fabs(num(last, "p99_ms") - 10) / 10 < 0.05);
    json_t *s1000 = json_array_get(ser, 29);
    assert_int_equal((int)num(s1000, "t"), 1000);
    assert_int_equal((int)num(s1000, "errors"), 5);
    json_decref(j);

    /* A minute later second 1000 has left the window; 1030 and 1031
     * remain. */
    j = osp__dsp_stats_json(&s, 1061);
    assert_int_equal((int)num(j, "requests_1m"), 51);
    assert_int_equal((int)num(j, "rps"), 0);
    json_decref(j);

    /* Second 1060 reuses 1000's slot: the old counts are gone. */
    osp__dsp_stats_record(&s, 1060, 1, 200);
    j = osp__dsp_stats_json(&s, 1061);
    assert_int_equal((int)num(j, "requests_1m"), 52);
    assert_int_equal((int)num(j, "errors_5xx_1m"), 1); /* 1031's 500 */
    assert_int_equal((int)num(j, "rps"), 1);
    json_decref(j);
    osp__dsp_stats_fini(&s);
}

static void test_extremes(void **st) {
    (void)st;
    osp__dsp_stats_t s;
    osp__dsp_stats_init(&s);
    osp__dsp_stats_record(&s, 10, 0, 200);      /* below the first bucket */
    osp__dsp_stats_record(&s, 10, 1e9, 200);    /* beyond the last */
    osp__dsp_stats_record(&s, 10, NAN, 200);
    json_t *j = osp__dsp_stats_json(&s, 11);
    assert_int_equal((int)num(j, "requests_1m"), 3);
    assert_true(num(j, "p50_ms") < 0.02);
    assert_true(num(j, "p99_ms") > 1e5 && isfinite(num(j, "p99_ms")));
    json_decref(j);
    osp__dsp_stats_fini(&s);
}

static void test_assets(void **st) {
    (void)st;
    const char *pages[] = {"index.html", "status.html", "docs.html"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(pages); i++) {
        const osp_ui_asset_t *a = osp_ui_asset_find(pages[i]);
        assert_non_null(a);
        assert_string_equal(a->content_type, "text/html; charset=utf-8");
        assert_true(a->len > 100 && a->etag[0] == '"');
        /* The asset is len bytes, not a C string. */
        assert_non_null(memmem(a->data, a->len, "</html>", 7));
        /* Self-contained: nothing from another origin. */
        assert_null(memmem(a->data, a->len, "http://", 7));
        assert_null(memmem(a->data, a->len, "https://", 8));
    }
    const osp_ui_asset_t *js = osp_ui_asset_find("status.js");
    assert_non_null(js);
    assert_string_equal(js->content_type, "text/javascript; charset=utf-8");
    assert_non_null(osp_ui_asset_find("app.css"));
    assert_null(osp_ui_asset_find("nope.js"));
    assert_null(osp_ui_asset_find("../CMakeLists.txt"));
    assert_null(osp_ui_asset_find(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_minute),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_assets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
