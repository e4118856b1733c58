/* test_load_corpus.c — the requests `osprey load` prebuilds per image
 * (src/load/corpus.c), parsed back: request line and path per target and
 * model, Host, Content-Length equal to the body, the multipart part with the
 * image bytes, V2 JSON whose base64 decodes to the image, the V2 binary
 * layout (Inference-Header-Content-Length, 4-byte little-endian length,
 * bytes), media types by magic bytes, directory order, non-images skipped
 * in directories (but sent when named), and the errors
 * (V2 without a model, bad model names, missing or empty directories). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "osprey/load.h"

static char dir[64];
static const uint8_t jpeg[] = {0xFF, 0xD8, 0xFF, 0xE0, 'j', 'p', 'g', 0, 1, 2};
static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 9};

static void put(const char *name, const void *d, size_t n) {
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

static int setup(void **state) {
    (void)state;
    strcpy(dir, "/tmp/osp_load_corpus_XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    put("b.png", png, sizeof png);
    put("a.jpg", jpeg, sizeof jpeg);
    put(".hidden", "x", 1);
    put("README.md", "# not an image\n", 15);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    const char *names[] = {"a.jpg", "b.png", ".hidden", "README.md"};
    for (size_t i = 0; i < 4; i++) {
        char p[128];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

typedef struct req_s {
    char line[256];
    char headers[1024];
    const uint8_t *body;
    size_t body_len;
} req_t;

/* Splits a request into request line, header block and body, checking
 * Content-Length. */
static req_t split(const osp_load_corpus_t *c, int i) {
    req_t r;
    size_t len;
    const uint8_t *p = osp_load_corpus_request(c, i, &len);
    const char *end = memmem(p, len, "\r\n\r\n", 4);
    assert_non_null(end);
    const char *eol = memmem(p, len, "\r\n", 2);
    snprintf(r.line, sizeof r.line, "%.*s", (int)((const uint8_t *)eol - p), p);
    snprintf(r.headers, sizeof r.headers, "%.*s",
             (int)(end - eol), eol);
    r.body = (const uint8_t *)end + 4;
    r.body_len = len - (size_t)(r.body - p);
    const char *cl = strstr(r.headers, "\r\nContent-Length: ");
    if (cl)
        assert_int_equal(strtoull(cl + 18, NULL, 10), r.body_len);
    else
        assert_int_equal(r.body_len, 0);
    return r;
}

static osp_load_corpus_t *make(osp_load_target_t t, const char *model, const char *base,
                          osp_err_t *err) {
    osp_load_corpus_opts_t o = {.images = dir, .target = t, .model = model,
                           .host = "127.0.0.1:8080", .base_path = base};
    return osp_load_corpus_create(&o, err);
}

static void test_multipart(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_load_corpus_t *c = make(OSP_LOAD_TARGET_MULTIPART, NULL, "", &err);
    assert_non_null(c);
    assert_int_equal(osp_load_corpus_count(c), 2); /* hidden file skipped */
    assert_int_equal(osp_load_corpus_skipped(c), 1); /* README.md: no image */
    assert_string_equal(osp_load_corpus_name(c, 0), "a.jpg"); /* sorted */
    req_t r = split(c, 0);
    assert_string_equal(r.line, "POST /classify HTTP/1.1");
    assert_non_null(strstr(r.headers, "\r\nHost: 127.0.0.1:8080"));
    const char *ct = strstr(r.headers, "multipart/form-data; boundary=");
    assert_non_null(ct);
    char boundary[80];
    sscanf(ct + 30, "%79[^\r]", boundary);
    char open[128];
    snprintf(open, sizeof open, "--%s\r\n", boundary);
    assert_memory_equal(r.body, open, strlen(open));
    const char *hdr_end = memmem(r.body, r.body_len, "\r\n\r\n", 4);
    assert_non_null(hdr_end);
    char part_hdr[256];
    snprintf(part_hdr, sizeof part_hdr, "%.*s",
             (int)(hdr_end - (const char *)r.body), r.body);
    assert_non_null(strstr(part_hdr, "name=\"file\"; filename=\"a.jpg\""));
    assert_non_null(strstr(part_hdr, "Content-Type: image/jpeg"));
    assert_memory_equal(hdr_end + 4, jpeg, sizeof jpeg);
    char close_[128];
    snprintf(close_, sizeof close_, "\r\n--%s--\r\n", boundary);
    assert_memory_equal(hdr_end + 4 + sizeof jpeg, close_, strlen(close_));
    assert_int_equal(r.body_len, (size_t)(hdr_end + 4 - (const char *)r.body) +
                                     sizeof jpeg + strlen(close_));
    osp_load_corpus_destroy(c);
    /* with a model and a URL prefix */
    c = make(OSP_LOAD_TARGET_MULTIPART, "resnet50", "/api/", &err);
    assert_non_null(c);
    r = split(c, 1);
    assert_string_equal(r.line, "POST /api/v1/models/resnet50/classify HTTP/1.1");
    osp_load_corpus_destroy(c);
}

static void test_raw(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_load_corpus_t *c = make(OSP_LOAD_TARGET_RAW, NULL, NULL, &err);
    assert_non_null(c);
    req_t r = split(c, 1);
    assert_non_null(strstr(r.headers, "Content-Type: image/png"));
    assert_int_equal(r.body_len, sizeof png);
    assert_memory_equal(r.body, png, sizeof png);
    osp_load_corpus_destroy(c);
}

static int b64val(char ch) {
    const char *t =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = strchr(t, ch);
    return p && ch ? (int)(p - t) : -1;
}

static void test_v2_json(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_load_corpus_t *c = make(OSP_LOAD_TARGET_V2_JSON, "m1", "", &err);
    assert_non_null(c);
    req_t r = split(c, 0);
    assert_string_equal(r.line, "POST /v2/models/m1/infer HTTP/1.1");
    assert_non_null(strstr(r.headers, "Content-Type: application/json"));
    char body[512];
    snprintf(body, sizeof body, "%.*s", (int)r.body_len, r.body);
    assert_non_null(strstr(body, "\"datatype\":\"BYTES\""));
    assert_non_null(strstr(body, "\"shape\":[1]"));
    const char *d = strstr(body, "\"data\":[\"");
    assert_non_null(d);
    d += 9;
    /* decode the base64 string back */
    uint8_t out[64];
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *d && *d != '"'; d++) {
        if (*d == '=')
            continue;
        int v = b64val(*d);
        assert_true(v >= 0);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    assert_int_equal(n, sizeof jpeg);
    assert_memory_equal(out, jpeg, sizeof jpeg);
    osp_load_corpus_destroy(c);
}

static void test_v2_binary(void **state) {
    (void)state;
    osp_err_t err = {0};
    osp_load_corpus_t *c = make(OSP_LOAD_TARGET_V2_BINARY, "m1", "", &err);
    assert_non_null(c);
    req_t r = split(c, 1);
    const char *ih = strstr(r.headers, "Inference-Header-Content-Length: ");
    assert_non_null(ih);
    size_t hl = strtoull(ih + 33, NULL, 10);
    assert_true(hl > 0 && hl + 4 + sizeof png == r.body_len);
    char json[512];
    snprintf(json, sizeof json, "%.*s", (int)hl, r.body);
    assert_int_equal(json[0], '{');
    assert_int_equal(json[hl - 1], '}');
    char want[64];
    snprintf(want, sizeof want, "\"binary_data_size\":%zu", sizeof png + 4);
    assert_non_null(strstr(json, want));
    assert_non_null(strstr(json, "\"binary_data_output\":true"));
    const uint8_t *el = r.body + hl;
    assert_int_equal(el[0] | el[1] << 8 | el[2] << 16 | (uint32_t)el[3] << 24,
                     sizeof png);
    assert_memory_equal(el + 4, png, sizeof png);
    osp_load_corpus_destroy(c);
}

static void test_get_and_file(void **state) {
    (void)state;
    osp_err_t err = {0};
    char p[128];
    osp_load_corpus_opts_t o = {.target = OSP_LOAD_TARGET_GET, .host = "h:1",
                           .base_path = "/v2/health/live"};
    osp_load_corpus_t *c = osp_load_corpus_create(&o, &err);
    assert_non_null(c);
    req_t r = split(c, 0);
    assert_string_equal(r.line, "GET /v2/health/live HTTP/1.1");
    osp_load_corpus_destroy(c);
    o.base_path = "";
    c = osp_load_corpus_create(&o, &err);
    assert_non_null(c);
    r = split(c, 0);
    assert_string_equal(r.line, "GET / HTTP/1.1");
    osp_load_corpus_destroy(c);
    /* one file instead of a directory: sent whatever it holds */
    snprintf(p, sizeof p, "%s/README.md", dir);
    osp_load_corpus_opts_t rd = {.images = p, .target = OSP_LOAD_TARGET_RAW,
                            .host = "h"};
    c = osp_load_corpus_create(&rd, &err);
    assert_non_null(c);
    r = split(c, 0);
    assert_non_null(strstr(r.headers, "application/octet-stream"));
    osp_load_corpus_destroy(c);
    snprintf(p, sizeof p, "%s/b.png", dir);
    osp_load_corpus_opts_t f = {.images = p, .target = OSP_LOAD_TARGET_RAW, .host = "h"};
    c = osp_load_corpus_create(&f, &err);
    assert_non_null(c);
    assert_int_equal(osp_load_corpus_count(c), 1);
    assert_string_equal(osp_load_corpus_name(c, 0), "b.png");
    osp_load_corpus_destroy(c);
}

static void test_headers(void **state) {
    (void)state;
    osp_err_t err = {0};
    const char *h[] = {"X-Request-Timeout-Ms: 500", "X-Tenant: a b"};
    osp_load_corpus_opts_t o = {.images = dir, .target = OSP_LOAD_TARGET_RAW,
                           .host = "h", .headers = h, .n_headers = 2};
    osp_load_corpus_t *c = osp_load_corpus_create(&o, &err);
    assert_non_null(c);
    req_t r = split(c, 0);
    assert_non_null(strstr(r.headers, "\r\nX-Request-Timeout-Ms: 500"));
    assert_non_null(strstr(r.headers, "\r\nX-Tenant: a b"));
    osp_load_corpus_destroy(c);
    const char *bad[] = {"NoColon", ": empty name", "Bad Name: x",
                         "X: a\r\nInjected: 1", "X: a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.headers = &bad[i];
        o.n_headers = 1;
        assert_null(osp_load_corpus_create(&o, &err));
        assert_non_null(strstr(err.msg, "--header"));
    }
}

static void test_errors(void **state) {
    (void)state;
    osp_err_t err = {0};
    assert_null(make(OSP_LOAD_TARGET_V2_JSON, NULL, "", &err));
    assert_non_null(strstr(err.msg, "--model"));
    assert_null(make(OSP_LOAD_TARGET_RAW, "a/b", "", &err));
    assert_null(make(OSP_LOAD_TARGET_RAW, "a b", "", &err));
    assert_null(make(OSP_LOAD_TARGET_RAW, "", "", &err));
    assert_null(make(OSP_LOAD_TARGET_RAW, NULL, "noslash", &err));
    osp_load_corpus_opts_t o = {.images = "/nonexistent/dir", .target =
                           OSP_LOAD_TARGET_RAW, .host = "h"};
    assert_null(osp_load_corpus_create(&o, &err));
    assert_non_null(strstr(err.msg, "/nonexistent/dir"));
    o.images = NULL;
    assert_null(osp_load_corpus_create(&o, &err));
    assert_non_null(strstr(err.msg, "--images"));
    o.host = "bad host";
    o.target = OSP_LOAD_TARGET_GET;
    assert_null(osp_load_corpus_create(&o, &err));
    char empty[] = "/tmp/osp_load_corpus_empty_XXXXXX";
    assert_non_null(mkdtemp(empty));
    o.images = empty;
    o.host = "h";
    o.target = OSP_LOAD_TARGET_RAW;
    assert_null(osp_load_corpus_create(&o, &err));
    assert_non_null(strstr(err.msg, "no files"));
    rmdir(empty);
    osp_load_target_t t;
    assert_int_equal(osp_load_target_parse("v2-binary", &t), 0);
    assert_int_equal(t, OSP_LOAD_TARGET_V2_BINARY);
    assert_true(osp_load_target_parse("v3", &t) < 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_raw),
        cmocka_unit_test(test_v2_json),
        cmocka_unit_test(test_v2_binary),
        cmocka_unit_test(test_get_and_file),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
