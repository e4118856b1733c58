/* test_http_h1resp.c — the HTTP/1.1 response parser (src/http/h1resp.c)
 * in both of its modes. Keeping the body (the dispatcher's event loop):
 * Content-Length, chunked (extensions, trailers), close-delimited and empty
 * bodies, interim 1xx answers, keep-alive rules, the forwarded headers;
 * every answer also fed one byte at a time, unconsumed bytes passed again
 * as loop.c does; and the failures: garbage, truncated input (EOF mid-head,
 * mid-body, mid-chunk), oversized head, body over the limit (declared and
 * streamed), chunk-size overflow, conflicting lengths, unknown transfer
 * codings, bytes past the answer left unconsumed. Counting the body (the
 * load generator): the same framings with the body counted, every response
 * split at every byte boundary, codings before chunked, and malformed
 * responses (bad status line, bad or conflicting lengths, oversized header,
 * bad chunk framing) as errors, never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/http.h"

/* The callers' head limits (dispatch_int.h, load_int.h). */
#define KEEP_MAX_HEAD 16384
#define COUNT_MAX_HEAD 8192

static osp_http_h1resp_opts_t keep_opts(size_t max_body) {
    return (osp_http_h1resp_opts_t){.keep_body = true,
                                    .max_head_bytes = KEEP_MAX_HEAD,
                                    .max_body_bytes = max_body};
}

static const osp_http_h1resp_opts_t COUNT_OPTS = {
    .keep_body = false, .max_head_bytes = COUNT_MAX_HEAD};

/* ---- keeping the body ------------------------------------------------- */
/* Feeds s in pieces of step bytes the way loop.c does (unconsumed bytes
 * are passed again with more appended); then EOF when eof is set. Returns
 * the final code (1 done, 0 incomplete, < 0 error); *rest = bytes left
 * unconsumed after a complete answer. */
static int keep_feed(osp_http_h1resp_t *p, const char *s, size_t n, size_t step, bool eof,
                size_t max_body, size_t *rest) {
    osp_http_h1resp_opts_t o = keep_opts(max_body);
    osp_http_h1resp_init(p, &o);
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
        rc = osp_http_h1resp_feed(p, buf, have, &used);
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
        rc = osp_http_h1resp_eof(p) == 1 ? 1 : OSP_EFORMAT;
    free(buf);
    return rc;
}

/* Both whole and byte-by-byte. */
static void expect_ok(const char *s, bool eof, int status, const char *body,
                      bool keep) {
    size_t steps[] = {strlen(s) + 1, 1, 7};
    for (size_t i = 0; i < OSP_ARRAY_LEN(steps); i++) {
        osp_http_h1resp_t p = {0};
        size_t rest;
        int rc = keep_feed(&p, s, strlen(s), steps[i], eof, 0, &rest);
        if (rc != 1)
            fail_msg("step %zu: rc %d (%s) for %s", steps[i], rc,
                     p.err ? p.err : "-", s);
        assert_int_equal(p.status, status);
        assert_int_equal(p.body_bytes, strlen(body));
        if (p.body_bytes)
            assert_memory_equal(p.body, body, p.body_bytes);
        assert_int_equal(p.keep_alive, keep);
        size_t len;
        uint8_t *b = osp_http_h1resp_take_body(&p, &len);
        assert_non_null(b);
        assert_int_equal(len, strlen(body));
        free(b);
        osp_http_h1resp_fini(&p);
    }
}

static int expect_err(const char *s, size_t n, bool eof, size_t max_body) {
    size_t steps[] = {n + 1, 1};
    int first = 0;
    for (size_t i = 0; i < OSP_ARRAY_LEN(steps); i++) {
        osp_http_h1resp_t p = {0};
        size_t rest;
        int rc = keep_feed(&p, s, n, steps[i], eof, max_body, &rest);
        if (rc >= 0)
            fail_msg("step %zu: accepted (rc %d): %.80s", steps[i], rc, s);
        assert_non_null(p.err);
        if (i == 0)
            first = rc;
        osp_http_h1resp_fini(&p);
    }
    return first;
}

static void keep_test_content_length(void **st) {
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

static void keep_test_headers_kept(void **st) {
    (void)st;
    const char *s = "HTTP/1.1 200 OK\r\ncontent-type:  application/octet-stream "
                    "\r\nInference-Header-Content-Length: 42\r\n"
                    "Retry-After: 1\r\nX-Other: y\r\nContent-Length: 3\r\n\r\n"
                    "abc";
    osp_http_h1resp_t p = {0};
    size_t rest;
    assert_int_equal(keep_feed(&p, s, strlen(s), 1000, false, 0, &rest), 1);
    assert_string_equal(p.content_type, "application/octet-stream");
    assert_string_equal(p.ihcl, "42");
    assert_string_equal(p.retry_after, "1");
    osp_http_h1resp_fini(&p);
}

static void keep_test_chunked(void **st) {
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

static void keep_test_eof_body_and_no_body(void **st) {
    (void)st;
    expect_ok("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close",
              true, 200, "until close", false);
    expect_ok("HTTP/1.1 204 No Content\r\n\r\n", false, 204, "", true);
    expect_ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false,
              304, "", true);
}

static void keep_test_interim(void **st) {
    (void)st;
    expect_ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
              "Link: </x>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n"
              "\r\nok",
              false, 201, "ok", true);
    expect_err("HTTP/1.1 101 Switching Protocols\r\n\r\n", 36, false, 0);
}

static void keep_test_rest_unconsumed(void **st) {
    (void)st;
    const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
    osp_http_h1resp_t p = {0};
    size_t rest;
    assert_int_equal(keep_feed(&p, s, strlen(s), 1000, false, 0, &rest), 1);
    assert_int_equal(rest, 5);
    osp_http_h1resp_fini(&p);
    /* Reuse for a second answer keeps working (buffer handed over). */
    s = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    assert_int_equal(keep_feed(&p, s, strlen(s), 1000, false, 0, &rest), 1);
    assert_int_equal(p.body_bytes, 3);
    osp_http_h1resp_fini(&p);
}

static void keep_test_garbage(void **st) {
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

static void keep_test_truncated(void **st) {
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
    osp_http_h1resp_t p = {0};
    osp_http_h1resp_opts_t o = keep_opts(0);
    osp_http_h1resp_init(&p, &o);
    assert_false(osp_http_h1resp_started(&p));
    assert_int_equal(osp_http_h1resp_eof(&p), 0);
    assert_non_null(p.err);
    osp_http_h1resp_fini(&p);
}

static void keep_test_limits(void **st) {
    (void)st;
    /* Head over KEEP_MAX_HEAD, with and without a line end in sight. */
    size_t n = KEEP_MAX_HEAD + 100;
    char *s = malloc(n + 64);
    assert_non_null(s);
    int k = snprintf(s, n + 64, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(s + k, 'a', n - (size_t)k);
    s[n] = 0;
    osp_http_h1resp_t p = {0};
    size_t rest;
    assert_int_equal(keep_feed(&p, s, n, n, false, 0, &rest), OSP_ELIMIT);
    osp_http_h1resp_fini(&p);
    /* Many small header lines adding up past the limit. */
    size_t off = (size_t)snprintf(s, n + 64, "HTTP/1.1 200 OK\r\n");
    while (off < n - 8)
        off += (size_t)snprintf(s + off, n + 64 - off, "A: b\r\n");
    assert_int_equal(keep_feed(&p, s, off, 4096, false, 0, &rest), OSP_ELIMIT);
    assert_false(p.too_big);
    osp_http_h1resp_fini(&p);
    free(s);
    /* Declared body over max_body: refused before reading it. */
    const char *big = "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n";
    assert_int_equal(expect_err(big, strlen(big), false, 10), OSP_ELIMIT);
    memset(&p, 0, sizeof p);
    assert_int_equal(keep_feed(&p, big, strlen(big), 1000, false, 10, &rest),
                     OSP_ELIMIT);
    assert_true(p.too_big);
    osp_http_h1resp_fini(&p);
    /* Exactly at the limit is fine. */
    const char *at = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";
    memset(&p, 0, sizeof p);
    assert_int_equal(keep_feed(&p, at, strlen(at), 3, false, 10, &rest), 1);
    osp_http_h1resp_fini(&p);
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

/* ---- counting the body ------------------------------------------------ */
typedef struct {
    int rc, status, keep_alive;
    uint64_t body;
    size_t used;
} out_t;

/* Feeds text in pieces of `step` bytes (0 = at once). */
static out_t count_feed(const char *text, size_t step) {
    osp_http_h1resp_t r = {0};
    osp_http_h1resp_init(&r, &COUNT_OPTS);
    size_t n = strlen(text), off = 0;
    out_t o = {0};
    while (off < n) {
        size_t k = step ? OSP_MIN(step, n - off) : n - off;
        size_t used = 0;
        int rc = osp_http_h1resp_feed(&r, (const uint8_t *)text + off, k,
                                      &used);
        assert_true(used <= k);
        off += used;
        if (rc != 0) {
            o.rc = rc;
            if (rc < 0)
                assert_non_null(r.err);
            break;
        }
        assert_int_equal(used, k); /* need more: everything consumed */
    }
    o.status = r.status;
    o.keep_alive = r.keep_alive;
    o.body = r.body_bytes;
    o.used = off;
    osp_http_h1resp_fini(&r);
    return o;
}

/* The same answer whatever the split. */
static out_t feed_all_splits(const char *text) {
    out_t whole = count_feed(text, 0);
    for (size_t step = 1; step <= 7; step++) {
        out_t o = count_feed(text, step);
        assert_int_equal(o.rc, whole.rc);
        assert_int_equal(o.status, whole.status);
        assert_int_equal(o.body, whole.body);
        assert_int_equal(o.used, whole.used);
    }
    return whole;
}

static void count_test_content_length(void **state) {
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
    o = count_feed(two, 0);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.used, strlen(t));
    /* zero length, no reason phrase, bare LF line ends */
    o = feed_all_splits("HTTP/1.1 503\nContent-Length: 0\n\n");
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.status, 503);
}

static void count_test_chunked(void **state) {
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

static void count_test_close_delimited_and_keepalive(void **state) {
    (void)state;
    osp_http_h1resp_t r = {0};
    osp_http_h1resp_init(&r, &COUNT_OPTS);
    const char *t = "HTTP/1.0 200 OK\r\n\r\nsome body";
    size_t used;
    assert_int_equal(
        osp_http_h1resp_feed(&r, (const uint8_t *)t, strlen(t), &used), 0);
    assert_int_equal(r.body_bytes, 9);
    assert_int_equal(osp_http_h1resp_eof(&r), 1); /* close ends it */
    assert_int_equal(r.keep_alive, 0);
    /* a 1.1 body cut short by a close is incomplete */
    osp_http_h1resp_init(&r, &COUNT_OPTS);
    t = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
    osp_http_h1resp_feed(&r, (const uint8_t *)t, strlen(t), &used);
    assert_int_equal(osp_http_h1resp_eof(&r), 0);
    assert_int_equal(osp_http_h1resp_started(&r), 1);
    osp_http_h1resp_init(&r, &COUNT_OPTS);
    assert_int_equal(osp_http_h1resp_started(&r), 0);
    /* keep-alive rules */
    osp_http_h1resp_fini(&r);
    out_t o = count_feed("HTTP/1.1 200 OK\r\nConnection: close\r\n"
                         "Content-Length: 0\r\n\r\n", 0);
    assert_int_equal(o.keep_alive, 0);
    o = count_feed("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
                   "Content-Length: 0\r\n\r\n", 0);
    assert_int_equal(o.keep_alive, 1);
    o = count_feed("HTTP/1.1 200 OK\r\nConnection: Upgrade, close\r\n"
                   "Content-Length: 0\r\n\r\n", 0);
    assert_int_equal(o.keep_alive, 0);
}

static void count_test_interim_and_no_body(void **state) {
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

static void count_test_malformed(void **state) {
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
        out_t o = count_feed(bad[i], 0);
        if (o.rc >= 0)
            fail_msg("accepted: %s", bad[i]);
        o = count_feed(bad[i], 3);
        assert_true(o.rc < 0);
    }
    /* An endless header is cut off at the limit. */
    size_t n = COUNT_MAX_HEAD + 100;
    char *big = malloc(n + 1);
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', n - 20);
    big[n] = 0;
    out_t o = count_feed(big, 1000);
    assert_true(o.rc < 0);
    free(big);
    /* An endless chunk line too. */
    char line[600] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;";
    memset(line + strlen(line), 'e', 400);
    o = count_feed(line, 0);
    assert_true(o.rc < 0);
}

/* ---- what the two modes share and where they differ ------------------ */
static void test_modes(void **st) {
    (void)st;
    /* Status codes outside 100..599 are refused in both modes. */
    const char *s600 = "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(expect_err(s600, strlen(s600), false, 0), OSP_EFORMAT);
    assert_true(count_feed(s600, 0).rc < 0);
    /* A coding before chunked: a kept body cannot be handed on, a counted
     * one is framed by the chunks. */
    const char *gz = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n"
                     "\r\n2\r\nok\r\n0\r\n\r\n";
    assert_int_equal(expect_err(gz, strlen(gz), false, 0), OSP_EUNSUPPORTED);
    out_t o = count_feed(gz, 0);
    assert_int_equal(o.rc, 1);
    assert_int_equal(o.body, 2);
    /* A coding other than chunked last: counted to the close. */
    const char *gz2 = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
                      "Content-Length: 3\r\n\r\nabcdef";
    osp_http_h1resp_t r = {0};
    osp_http_h1resp_init(&r, &COUNT_OPTS);
    size_t used;
    assert_int_equal(osp_http_h1resp_feed(&r, (const uint8_t *)gz2,
                                          strlen(gz2), &used),
                     0);
    assert_int_equal(osp_http_h1resp_eof(&r), 1);
    assert_int_equal(r.body_bytes, 6);
    assert_false(r.keep_alive);
    /* A counted body is never stored. */
    size_t len;
    uint8_t *b = osp_http_h1resp_take_body(&r, &len);
    assert_non_null(b);
    free(b);
    osp_http_h1resp_fini(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keep_test_content_length),
        cmocka_unit_test(keep_test_headers_kept),
        cmocka_unit_test(keep_test_chunked),
        cmocka_unit_test(keep_test_eof_body_and_no_body),
        cmocka_unit_test(keep_test_interim),
        cmocka_unit_test(keep_test_rest_unconsumed),
        cmocka_unit_test(keep_test_garbage),
        cmocka_unit_test(keep_test_truncated),
        cmocka_unit_test(keep_test_limits),
        cmocka_unit_test(count_test_content_length),
        cmocka_unit_test(count_test_chunked),
        cmocka_unit_test(count_test_close_delimited_and_keepalive),
        cmocka_unit_test(count_test_interim_and_no_body),
        cmocka_unit_test(count_test_malformed),
        cmocka_unit_test(test_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
