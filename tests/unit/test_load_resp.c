/* test_load_resp.c — the load client's incremental HTTP/1.1 response
 * parser (src/load/resp.c): Content-Length, chunked (extensions, trailers),
 * close-delimited bodies, 1xx skipping, 204, keep-alive rules for 1.0/1.1,
 * every response fed whole and split at every byte boundary; malformed
 * responses (bad status line, bad or conflicting lengths, oversized header,
 * bad chunk framing) are errors, never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "load/load_int.h"

typedef struct {
    int rc, status, keep_alive;
    uint64_t body;
    size_t used;
} out_t;

/* Feeds text in pieces of `step` bytes (0 = at once). */
static out_t feed(const char *text, size_t step) {
    static osp__resp_t r;
    osp__resp_init(&r);
    size_t n = strlen(text), off = 0;
    out_t o = {0};
    while (off < n) {
        size_t k = step ? OSP_MIN(step, n - off) : n - off;
        size_t used = 0;
        osp_err_t err = {0};
        int rc = osp__resp_feed(&r, (const uint8_t *)text + off, k, &used,
                                &err);
        assert_true(used <= k);
        off += used;
        if (rc != 0) {
            o.rc = rc;
            if (rc < 0)
                assert_true(strlen(err.msg) > 0);
            break;
        }
        assert_int_equal(used, k); /* need more: everything consumed */
    }
    o.status = r.status;
    o.keep_alive = r.keep_alive;
    o.body = r.body_bytes;
    o.used = off;
    return o;
}

/* The same answer whatever the split. */
static out_t feed_all_splits(const char *text) {
    out_t whole = feed(text, 0);
    for (size_t step = 1; step <= 7; step++) {
        out_t o = feed(text, step);
        assert_int_equal(o.rc, whole.rc);
        assert_int_equal(o.status, whole.status);
        assert_int_equal(o.body, whole.body);
        assert_int_equal(o.used, whole.used);
    }
    return whole;
}

static void test_content_length(void **state) {
    (void)state;
    const char *t = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "content-length: 11\r\n\r\n{\"ok\":true}";
    out_t o = feed_all_splits(t);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.status, 200);
    assert_int_equal(o.keep_alive, 1);
    assert_int_equal(o.body, 11);
    assert_int_equal(o.used, strlen(t));
    /* bytes after the response are not consumed */
    char two[256];
    snprintf(two, sizeof two, "%sHTTP/1.1 200", t);
    o = feed(two, 0);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.used, strlen(t));
    /* zero length, no reason phrase, bare LF line ends */
    o = feed_all_splits("HTTP/1.1 503\nContent-Length: 0\n\n");
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.status, 503);
}

static void test_chunked(void **state) {
    (void)state;
    const char *t = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n"
                    "Content-Length: 999\r\n\r\n"
                    "5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n"
                    "0\r\nX-Checksum: 1\r\n\r\n";
    out_t o = feed_all_splits(t);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.body, 31);
    assert_int_equal(o.used, strlen(t));
    assert_int_equal(o.keep_alive, 1);
}

static void test_close_delimited_and_keepalive(void **state) {
    (void)state;
    osp__resp_t r;
    osp__resp_init(&r);
    const char *t = "HTTP/1.0 200 OK\r\n\r\nsome body";
    size_t used;
    assert_int_equal(osp__resp_feed(&r, (const uint8_t *)t, strlen(t), &used,
                                    NULL), 0);
    assert_int_equal(r.body_bytes, 9);
    assert_int_equal(osp__resp_eof(&r), 1); /* close ends it */
    assert_int_equal(r.keep_alive, 0);
    /* a 1.1 body cut short by a close is incomplete */
    osp__resp_init(&r);
    t = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    osp__resp_feed(&r, (const uint8_t *)t, strlen(t), &used, NULL);
    assert_int_equal(osp__resp_eof(&r), 0);
    assert_int_equal(osp__resp_started(&r), 1);
    osp__resp_init(&r);
    assert_int_equal(osp__resp_started(&r), 0);
    /* keep-alive rules */
    out_t o = feed("HTTP/1.1 200 OK\r\nConnection: close\r\n"
                   "Content-Length: 0\r\n\r\n", 0);
    assert_int_equal(o.keep_alive, 0);
    o = feed("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
             "Content-Length: 0\r\n\r\n", 0);
    assert_int_equal(o.keep_alive, 1);
    o = feed("HTTP/1.1 200 OK\r\nConnection: Upgrade, close\r\n"
             "Content-Length: 0\r\n\r\n", 0);
    assert_int_equal(o.keep_alive, 0);
}

static void test_interim_and_no_body(void **state) {
    (void)state;
    out_t o = feed_all_splits("HTTP/1.1 100 Continue\r\n\r\n"
                              "HTTP/1.1 413 Too Large\r\nContent-Length: 2\r\n"
                              "\r\n{}");
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.status, 413);
    assert_int_equal(o.body, 2);
    o = feed_all_splits("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n");
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.body, 0);
}

static void test_malformed(void **state) {
    (void)state;
    const char *bad[] = {
        "HTCPCP/1.0 418 teapot\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "fffffffffffffffffff\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out_t o = feed(bad[i], 0);
        if (o.rc >= 0)
            fail_msg("accepted: %s", bad[i]);
        o = feed(bad[i], 3);
        assert_true(o.rc < 0);
    }
    /* An endless header is cut off at the limit. */
    size_t n = OSP__RESP_MAX_HEADER + 100;
    char *big = malloc(n + 1);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', n - 20);
    big[n] = 0;
    out_t o = feed(big, 1000);
    assert_true(o.rc < 0);
    free(big);
    /* An endless chunk line too. */
    char line[600] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;";
    memset(line + strlen(line), 'e', 400);
    o = feed(line, 0);
    assert_true(o.rc < 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_close_delimited_and_keepalive),
        cmocka_unit_test(test_interim_and_no_body),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
