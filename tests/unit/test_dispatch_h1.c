/* test_dispatch_h1.c — the event path's HTTP/1.1 answer parser
 * (src/dispatch/h1.c): Content-Length, chunked (extensions, trailers),
 * close-delimited and empty bodies, interim 1xx answers, keep-alive rules,
 * the forwarded headers; every answer also fed one byte at a time; and the
 * failures: garbage, truncated input (EOF mid-head, mid-body, mid-chunk),
 * oversized head, body over the limit (declared and streamed), chunk-size
 * overflow, conflicting lengths, unknown transfer codings, bytes past the
 * answer left unconsumed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch_int.h"

/* Feeds s in pieces of step bytes the way loop.c does (unconsumed bytes
 * are passed again with more appended); then EOF when eof is set. Returns
 * the final code (1 done, 0 incomplete, < 0 error); *rest = bytes left
 * unconsumed after a complete answer. */
static int feed(dsp_h1_t *p, const char *s, size_t n, size_t step, bool eof,
                size_t max_body, size_t *rest) {
    osp__dsp_h1_init(p, max_body);
    uint8_t *buf = malloc(n + 1);
    assert_non_null(buf);
    size_t have = 0, off = 0;
    int rc = 0;
    *rest = 0;
    while (off < n || have) {
        size_t k = n - off < step ? n - off : step;
        memcpy(buf + have, s + off, k);
        have += k;
        off += k;
        size_t used = 0;
        rc = osp__dsp_h1_feed(p, buf, have, &used);
        assert_true(used <= have);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (rc != 0)
            break;
        if (k == 0)
            break; /* nothing new and nothing consumed: needs more */
    }
    if (rc == 1)
        *rest = have + (n - off);
    if (rc == 0 && eof)
        rc = osp__dsp_h1_eof(p) == 1 ? 1 : OSP_EFORMAT;
    free(buf);
    return rc;
}

/* Both whole and byte-by-byte. */
static void expect_ok(const char *s, bool eof, int status, const char *body,
                      bool keep) {
    size_t steps[] = {strlen(s) + 1, 1, 7};
    for (size_t i = 0; i < OSP_ARRAY_LEN(steps); i++) {
        dsp_h1_t p = {0};
        size_t rest;
        int rc = feed(&p, s, strlen(s), steps[i], eof, 0, &rest);
        if (rc != 1)
            fail_msg("step %zu: rc %d (%s) for %s", steps[i], rc,
                     p.err ? p.err : "-", s);
        assert_int_equal(p.status, status);
        assert_int_equal(p.len, strlen(body));
        if (p.len)
            assert_memory_equal(p.body, body, p.len);
        assert_int_equal(p.keep_alive, keep);
        size_t len;
        uint8_t *b = osp__dsp_h1_take_body(&p, &len);
        assert_non_null(b);
        assert_int_equal(len, strlen(body));
        free(b);
        osp__dsp_h1_fini(&p);
    }
}

static int expect_err(const char *s, size_t n, bool eof, size_t max_body) {
    size_t steps[] = {n + 1, 1};
    int first = 0;
    for (size_t i = 0; i < OSP_ARRAY_LEN(steps); i++) {
        dsp_h1_t p = {0};
        size_t rest;
        int rc = feed(&p, s, n, steps[i], eof, max_body, &rest);
        if (rc >= 0)
            fail_msg("step %zu: accepted (rc %d): %.80s", steps[i], rc, s);
        assert_non_null(p.err);
        if (i == 0)
            first = rc;
        osp__dsp_h1_fini(&p);
    }
    return first;
}

static void test_content_length(void **st) {
    (void)st;
    expect_ok("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              "Content-Length: 5\r\n\r\nhello",
              false, 200, "hello", true);
    expect_ok("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false,
              404, "", true);
    expect_ok("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n"
              "\r\nhi",
              false, 200, "hi", false);
    /* HTTP/1.0: keep-alive only when asked for. */
    expect_ok("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi", false, 200,
              "hi", false);
    expect_ok("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
              "Content-Length: 2\r\n\r\nhi",
              false, 200, "hi", true);
    /* Bare LF line ends and a status line without a reason. */
    expect_ok("HTTP/1.1 503\nRetry-After: 3\nContent-Length: 1\n\nx", false,
              503, "x", true);
    /* Equal duplicate lengths are fine. */
    expect_ok("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n"
              "\r\nz",
              false, 200, "z", true);
}

static void test_headers_kept(void **st) {
    (void)st;
    const char *s = "HTTP/1.1 200 OK\r\ncontent-type:  application/octet-stream "
                    "\r\nInference-Header-Content-Length: 42\r\n"
                    "Retry-After: 1\r\nX-Other: y\r\nContent-Length: 3\r\n\r\n"
                    "abc";
    dsp_h1_t p = {0};
    size_t rest;
    assert_int_equal(feed(&p, s, strlen(s), 1000, false, 0, &rest), 1);
    assert_string_equal(p.content_type, "application/octet-stream");
    assert_string_equal(p.ihcl, "42");
    assert_string_equal(p.retry_after, "1");
    osp__dsp_h1_fini(&p);
}

static void test_chunked(void **st) {
    (void)st;
    expect_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
              "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n",
              false, 200, "hello 0123456789", true);
    /* Trailers are read and dropped. */
    expect_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
              "3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
              false, 200, "abc", true);
    /* Chunked wins over a Content-Length, but the connection is not
     * trusted again. */
    expect_ok("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
              "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
              false, 200, "ok", false);
}

static void test_eof_body_and_no_body(void **st) {
    (void)st;
    expect_ok("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
              true, 200, "until close", false);
    expect_ok("HTTP/1.1 204 No Content\r\n\r\n", false, 204, "", true);
    expect_ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false,
              304, "", true);
}

static void test_interim(void **st) {
    (void)st;
    expect_ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
              "Link: </x>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n"
              "\r\nok",
              false, 201, "ok", true);
    expect_err("HTTP/1.1 101 Switching Protocols\r\n\r\n", 36, false, 0);
}

static void test_rest_unconsumed(void **st) {
    (void)st;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
    dsp_h1_t p = {0};
    size_t rest;
    assert_int_equal(feed(&p, s, strlen(s), 1000, false, 0, &rest), 1);
    assert_int_equal(rest, 5);
    osp__dsp_h1_fini(&p);
    /* Reuse for a second answer keeps working (buffer handed over). */
    s = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(feed(&p, s, strlen(s), 1000, false, 0, &rest), 1);
    assert_int_equal(p.len, 3);
    osp__dsp_h1_fini(&p);
}

static void test_garbage(void **st) {
    (void)st;
    const char *bad[] = {
        "garbage\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 200OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "1\r\nabc\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "fffffffffffffffffff\r\n",
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(bad); i++)
        expect_err(bad[i], strlen(bad[i]), false, 0);
}

static void test_truncated(void **st) {
    (void)st;
    const char *full[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "4\r\nabcd\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < OSP_ARRAY_LEN(full); i++) {
        size_t n = strlen(full[i]);
        /* Every proper prefix followed by EOF is an error, never an
         * answer. */
        for (size_t k = 0; k < n; k++) {
            int rc = expect_err(full[i], k, true, 0);
            assert_int_equal(rc, OSP_EFORMAT);
        }
    }
    /* Nothing at all: "closed before a response". */
    dsp_h1_t p = {0};
    osp__dsp_h1_init(&p, 0);
    assert_false(osp__dsp_h1_started(&p));
    assert_int_equal(osp__dsp_h1_eof(&p), 0);
    assert_non_null(p.err);
    osp__dsp_h1_fini(&p);
}

static void test_limits(void **st) {
    (void)st;
    /* Head over DSP_H1_MAX_HEAD, with and without a line end in sight. */
    size_t n = DSP_H1_MAX_HEAD + 100;
    char *s = malloc(n + 64);
    assert_non_null(s);
    int k = snprintf(s, n + 64, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(s + k, 'a', n - (size_t)k);
    s[n] = 0;
    dsp_h1_t p = {0};
    size_t rest;
    assert_int_equal(feed(&p, s, n, n, false, 0, &rest), OSP_ELIMIT);
    osp__dsp_h1_fini(&p);
    /* Many small header lines adding up past the limit. */
    size_t off = (size_t)snprintf(s, n + 64, "HTTP/1.1 200 OK\r\n");
    while (off < n - 8)
        off += (size_t)snprintf(s + off, n + 64 - off, "A: b\r\n");
    assert_int_equal(feed(&p, s, off, 4096, false, 0, &rest), OSP_ELIMIT);
    assert_false(p.too_big);
    osp__dsp_h1_fini(&p);
    free(s);
    /* Declared body over max_body: refused before reading it. */
    const char *big = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
    assert_int_equal(expect_err(big, strlen(big), false, 10), OSP_ELIMIT);
    memset(&p, 0, sizeof p);
    assert_int_equal(feed(&p, big, strlen(big), 1000, false, 10, &rest),
                     OSP_ELIMIT);
    assert_true(p.too_big);
    osp__dsp_h1_fini(&p);
    /* Exactly at the limit is fine. */
    const char *at = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    memset(&p, 0, sizeof p);
    assert_int_equal(feed(&p, at, strlen(at), 3, false, 10, &rest), 1);
    osp__dsp_h1_fini(&p);
    /* Streamed bodies (chunked, until close) over the limit. */
    const char *ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n";
    assert_int_equal(expect_err(ch, strlen(ch), false, 10), OSP_ELIMIT);
    const char *eof = "HTTP/1.1 200 OK\r\n\r\n0123456789AB";
    assert_int_equal(expect_err(eof, strlen(eof), true, 10), OSP_ELIMIT);
    /* A chunk-size line that never ends. */
    char line[600];
    k = snprintf(line, sizeof line,
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1");
    memset(line + k, '0', sizeof line - (size_t)k - 1);
    line[sizeof line - 1] = 0;
    expect_err(line, strlen(line), false, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_headers_kept),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_eof_body_and_no_body),
        cmocka_unit_test(test_interim),
        cmocka_unit_test(test_rest_unconsumed),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
