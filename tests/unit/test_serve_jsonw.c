/* test_serve_jsonw.c — the worker's arena JSON writer (src/serve/jsonw.c):
 * escaping of quotes, backslashes and control characters, UTF-8 passed
 * through, numbers (significant digits, no NaN/Inf), growth past the
 * initial capacity; every output parses back with jansson. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "serve/serve_int.h"

static json_t *parse(const osp__serve_jw_t *w) {
    json_error_t je;
    json_t *j = json_loadb(w->buf, w->len, 0, &je);
    if (!j)
        fail_msg("not JSON (%s): %s", je.text, w->buf);
    return j;
}

static void test_strings(void **state) {
    (void)state;
    osp_arena_t *a = osp_arena_create(0);
    osp__serve_jw_t w;
    osp__serve_jw_init(&w, a, 8); /* tiny: forces growth */
    static const char *const cases[] = {
        "plain", "quote \" and backslash \\", "ctl \x01\x1f\n\t\r end",
        "caf\xc3\xa9 \xe2\x9c\x93", "", "jack-o'-lantern"};
    osp__serve_jw_lit(&w, "[");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (i)
            osp__serve_jw_lit(&w, ",");
        osp__serve_jw_str(&w, cases[i]);
    }
    osp__serve_jw_lit(&w, "]");
    assert_false(w.oom);
    json_t *j = parse(&w);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(json_string_value(json_array_get(j, i)),
                            cases[i]);
    json_decref(j);
    osp_arena_destroy(a);
}

static void test_numbers_and_growth(void **state) {
    (void)state;
    osp_arena_t *a = osp_arena_create(0);
    osp__serve_jw_t w;
    osp__serve_jw_init(&w, a, 16);
    osp__serve_jw_lit(&w, "{\"x\":");
    osp__serve_jw_num(&w, 0.8100000238418579, 6);
    osp__serve_jw_lit(&w, ",\"nan\":");
    osp__serve_jw_num(&w, NAN, 6);
    osp__serve_jw_lit(&w, ",\"inf\":");
    osp__serve_jw_num(&w, -INFINITY, 6);
    osp__serve_jw_lit(&w, ",\"tiny\":");
    osp__serve_jw_num(&w, 1.5e-9, 9);
    osp__serve_jw_lit(&w, ",\"i\":");
    osp__serve_jw_int(&w, -1234567890123LL);
    osp__serve_jw_lit(&w, ",\"big\":[");
    for (int i = 0; i < 5000; i++) {
        if (i)
            osp__serve_jw_raw(&w, ",", 1);
        osp__serve_jw_num(&w, (float)i / 7.0f, 9);
    }
    osp__serve_jw_lit(&w, "]}");
    assert_false(w.oom);
    assert_int_equal(strlen(w.buf), w.len);
    json_t *j = parse(&w);
    assert_true(strncmp(strstr(w.buf, "\"x\":") + 4, "0.81,", 5) == 0);
    assert_true(json_number_value(json_object_get(j, "nan")) == 0);
    assert_true(json_number_value(json_object_get(j, "inf")) == 0);
    assert_true(fabs(json_number_value(json_object_get(j, "tiny")) - 1.5e-9) <
                1e-18);
    assert_int_equal(json_integer_value(json_object_get(j, "i")),
                     -1234567890123LL);
    json_t *big = json_object_get(j, "big");
    assert_int_equal(json_array_size(big), 5000);
    for (int i = 0; i < 5000; i += 499)
        assert_true((float)json_number_value(json_array_get(big, (size_t)i)) ==
                    (float)i / 7.0f); /* 9 digits: floats round-trip */
    json_decref(j);
    osp_arena_destroy(a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_numbers_and_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
