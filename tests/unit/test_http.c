/* test_http.c — the http module: multipart parsing (well-formed bodies,
 * several file parts, and malformed input: every truncation, bad headers,
 * limits), and a live server on an ephemeral loopback port driven by libcurl
 * and raw sockets (routing with path parameters, 404/405, body limit 413
 * before the body is read, X-Request-Id in and out, JSON errors, handler
 * without a response → 500, slow clients cut off by the timeout). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>
#include <pthread.h>

#include "osprey/http.h"

/* ---- multipart ---- */

static const char BODY[] =
    "preamble\r\n"
    "--XyZ\r\n"
    "Content-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
    "Content-Type: image/jpeg\r\n"
    "\r\n"
    "AAAA\r\nBB\r\n"
    "--XyZ\r\n"
    "content-disposition: form-data; name=file; filename=\"b \\\"q\\\".png\"\r\n"
    "\r\n"
    "\r\n"
    "--XyZ  \r\n"
    "Content-Disposition: form-data; name=\"top_k\"\r\n"
    "\r\n"
    "3\r\n"
    "--XyZ--\r\n"
    "epilogue";

static void test_multipart_ok(void **state) {
    (void)state;
    osp_multipart_part_t parts[8];
    int n = -1;
    osp_err_t err = {0};
    int rc = osp_multipart_parse((const uint8_t *)BODY, sizeof BODY - 1, "XyZ",
                                 parts, 8, &n, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(n, 3);
    assert_string_equal(parts[0].name, "file");
    assert_string_equal(parts[0].filename, "a.jpg");
    assert_string_equal(parts[0].content_type, "image/jpeg");
    /* The CRLF before a delimiter belongs to the delimiter. */
    assert_int_equal(parts[0].len, 8);
    assert_memory_equal(parts[0].data, "AAAA\r\nBB", 8);
    assert_string_equal(parts[1].name, "file");
    assert_string_equal(parts[1].filename, "b \"q\".png");
    assert_int_equal(parts[1].len, 0); /* an empty part */
    assert_string_equal(parts[2].name, "top_k");
    assert_int_equal(parts[2].len, 1);

    char b[80];
    assert_int_equal(osp_multipart_boundary(
                         "multipart/form-data; boundary=----abc", b, sizeof b), 0);
    assert_string_equal(b, "----abc");
    assert_int_equal(osp_multipart_boundary(
                         "Multipart/Form-Data;charset=x; BOUNDARY=\"a b\"", b,
                         sizeof b), 0);
    assert_string_equal(b, "a b");
    assert_int_equal(osp_multipart_boundary("image/jpeg", b, sizeof b),
                     OSP_EFORMAT);
    assert_int_equal(osp_multipart_boundary("multipart/form-data", b, sizeof b),
                     OSP_EFORMAT);
    assert_int_equal(osp_multipart_boundary(
                         "multipart/form-data; boundary=\"unterminated", b,
                         sizeof b), OSP_EFORMAT);
    assert_int_equal(osp_multipart_boundary("multipart/form-data; boundary=", b,
                                            sizeof b), OSP_EFORMAT);
}

/* Every prefix of a valid body must parse to an error (the final delimiter
 * is missing) or to the full result, and never read out of bounds: each
 * prefix is copied into an exact-size heap block so ASan sees overreads. */
static void test_multipart_truncations(void **state) {
    (void)state;
    size_t len = sizeof BODY - 1;
    osp_multipart_part_t parts[8];
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *b = malloc(cut ? cut : 1);
        memcpy(b, BODY, cut);
        int n;
        osp_err_t err = {0};
        int rc = osp_multipart_parse(b, cut, "XyZ", parts, 8, &n, &err);
        /* The close delimiter ends at offset len - 10 ("--XyZ--" + CRLF +
         * epilogue follow); shorter prefixes cannot be complete. */
        if (cut < len - 10)
            assert_true(rc < 0);
        else
            assert_int_equal(rc, 0);
        if (rc < 0)
            assert_true(err.msg[0] != 0);
        free(b);
    }
}

static void expect_fail(const char *body, int max_parts, int code) {
    osp_multipart_part_t parts[4];
    int n;
    osp_err_t err = {0};
    size_t len = strlen(body);
    uint8_t *b = malloc(len ? len : 1);
    memcpy(b, body, len);
    int rc = osp_multipart_parse(b, len, "B", parts, max_parts, &n, &err);
    free(b);
    if (rc != code)
        fail_msg("expected %d got %d (%s) for: %s", code, rc, err.msg, body);
}

static void test_multipart_malformed(void **state) {
    (void)state;
    expect_fail("", 4, OSP_EFORMAT);
    expect_fail("no boundary here", 4, OSP_EFORMAT);
    expect_fail("--B", 4, OSP_EFORMAT);
    expect_fail("--Bx\r\n\r\ndata\r\n--B--", 4, OSP_EFORMAT);
    expect_fail("--B\r\nno colon line\r\n\r\nd\r\n--B--", 4, OSP_EFORMAT);
    expect_fail("--B\r\nContent-Disposition: attachment\r\n\r\nd\r\n--B--", 4,
                OSP_EFORMAT);
    expect_fail("--B\r\nContent-Disposition: form-data; name=\"x\r\n\r\nd\r\n--B--",
                4, OSP_EFORMAT);
    expect_fail("--B\r\nContent-Disposition: form-data\r\n\r\ndata without end", 4,
                OSP_EFORMAT);
    expect_fail("--B\r\n\r\na\r\n--B\r\n\r\nb\r\n--B\r\n\r\nc\r\n--B--", 2,
                OSP_ELIMIT);
    /* A header block larger than the limit. */
    size_t big = OSP_MULTIPART_MAX_HEADER_BYTES + 100;
    char *h = malloc(big + 64);
    strcpy(h, "--B\r\nX-Pad: ");
    size_t l = strlen(h);
    memset(h + l, 'a', big);
    h[l + big] = 0;
    expect_fail(h, 4, OSP_ELIMIT);
    /* A name longer than the field: an error, not a silent truncation. */
    char name[400];
    memset(name, 'n', 300);
    name[300] = 0;
    snprintf(h, big + 64,
             "--B\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\nd\r\n--B--",
             name);
    expect_fail(h, 4, OSP_ELIMIT);
    free(h);
    /* Empty part list is fine: just the close delimiter. */
    osp_multipart_part_t parts[2];
    int n = -1;
    assert_int_equal(osp_multipart_parse((const uint8_t *)"--B--", 5, "B", parts,
                                         2, &n, NULL), 0);
    assert_int_equal(n, 0);
}

/* Random byte flips and lengths over the sample body: never crashes. */
static void test_multipart_random(void **state) {
    (void)state;
    uint32_t seed = 12345;
    size_t len = sizeof BODY - 1;
    osp_multipart_part_t parts[4];
    for (int it = 0; it < 3000; it++) {
        uint8_t *b = malloc(len);
        memcpy(b, BODY, len);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1664525u + 1013904223u;
            size_t pos = (seed >> 8) % len;
            seed = seed * 1664525u + 1013904223u;
            b[pos] = (uint8_t)"-\r\n\"; =XyZ\\a"[(seed >> 8) % 13];
        }
        seed = seed * 1664525u + 1013904223u;
        size_t cut = (seed >> 8) % (len + 1);
        int n;
        int rc = osp_multipart_parse(b, cut, "XyZ", parts, 4, &n, NULL);
        assert_true(rc == 0 || rc == OSP_EFORMAT || rc == OSP_ELIMIT);
        if (rc == 0)
            for (int i = 0; i < n; i++)
                assert_true(parts[i].data >= b &&
                            parts[i].data + parts[i].len <= b + cut);
        free(b);
    }
}

/* ---- live server ---- */

static void h_model(osp_http_req_t *r, void *ud) {
    (void)ud;
    json_t *j = json_pack("{s:s,s:s,s:s}", "model",
                          osp_http_req_param(r, "model"), "version",
                          osp_http_req_param(r, "version") ?
                          osp_http_req_param(r, "version") : "",
                          "route", osp_http_req_route(r));
    osp_http_respond_json(r, 200, j);
}

static void h_echo(osp_http_req_t *r, void *ud) {
    (void)ud;
    size_t len;
    const uint8_t *b = osp_http_req_body(r, &len);
    const char *q = osp_http_req_query(r, "top_k");
    osp_http_add_header(r, "X-Echo", q ? q : "none");
    osp_http_respond(r, 200, "application/octet-stream", b, len);
}

static void h_json(osp_http_req_t *r, void *ud) {
    (void)ud;
    osp_err_t err = {0};
    json_t *j = osp_http_req_json(r, &err);
    if (!j) {
        osp_http_respond_error(r, 400, "%s", err.msg);
        return;
    }
    osp_http_respond_json(r, 200, j);
}

static void h_silent(osp_http_req_t *r, void *ud) {
    (void)r;
    (void)ud;
}

typedef struct {
    long status;
    char body[4096];
    size_t len;
    char rid[160];
    char echo[64];
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    resp_t *r = ud;
    size_t c = OSP_MIN(sz * n, sizeof r->body - 1 - r->len);
    memcpy(r->body + r->len, p, c);
    r->len += c;
    r->body[r->len] = 0;
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
    resp_t *r = ud;
    size_t l = sz * n;
    char line[256];
    if (l >= sizeof line)
        return l;
    memcpy(line, p, l);
    line[l] = 0;
    char *e = strpbrk(line, "\r\n");
    if (e)
        *e = 0;
    if (!strncasecmp(line, "X-Request-Id: ", 14))
        snprintf(r->rid, sizeof r->rid, "%.150s", line + 14);
    if (!strncasecmp(line, "X-Echo: ", 8))
        snprintf(r->echo, sizeof r->echo, "%.60s", line + 8);
    return l;
}

static resp_t *do_req(int port, const char *method, const char *path,
                      const char *body, size_t blen, const char *hdr) {
    resp_t *r = calloc(1, sizeof *r);
    CURL *c = curl_easy_init();
    char url[512];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    struct curl_slist *h = NULL;
    if (hdr)
        h = curl_slist_append(h, hdr);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK && cc != CURLE_SEND_ERROR && cc != CURLE_RECV_ERROR)
        fail_msg("curl %s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

static osp_http_server_t *start_server(size_t max_body, int timeout_s) {
    osp_http_opts_t o;
    osp_http_opts_init(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.max_body_bytes = max_body;
    o.conn_timeout_s = timeout_s;
    osp_err_t err = {0};
    osp_http_server_t *s = osp_http_server_create(&o, &err);
    assert_non_null(s);
    assert_int_equal(osp_http_route(s, "GET", "/v2/models/{model}", h_model, NULL), 0);
    assert_int_equal(osp_http_route(s, "GET", "/v2/models/{model}/versions/{version}",
                                    h_model, NULL), 0);
    assert_int_equal(osp_http_route(s, "POST", "/echo", h_echo, NULL), 0);
    assert_int_equal(osp_http_route(s, "POST", "/json", h_json, NULL), 0);
    assert_int_equal(osp_http_route(s, "GET", "/silent", h_silent, NULL), 0);
    assert_int_equal(osp_http_route(s, "GET", "no-slash", h_silent, NULL),
                     OSP_EINVAL);
    assert_int_equal(osp_http_route(s, "GET", "/a/{}", h_silent, NULL),
                     OSP_EINVAL);
    if (osp_http_server_start(s, &err))
        fail_msg("%s", err.msg);
    assert_true(osp_http_server_port(s) > 0);
    return s;
}

static void test_server_routes(void **state) {
    (void)state;
    osp_http_server_t *s = start_server(1000, 5);
    int port = osp_http_server_port(s);
    resp_t *r = do_req(port, "GET", "/v2/models/resnet", NULL, 0, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"model\":\"resnet\""));
    assert_non_null(strstr(r->body, "\"route\":\"/v2/models/{model}\""));
    assert_true(strlen(r->rid) > 0); /* generated */
    free(r);
    r = do_req(port, "GET", "/v2/models/m1/versions/7", NULL, 0,
               "X-Request-Id: abc-123");
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"version\":\"7\""));
    assert_string_equal(r->rid, "abc-123");
    free(r);
    r = do_req(port, "GET", "/v2/models/m1/versions/7/extra", NULL, 0, NULL);
    assert_int_equal(r->status, 404);
    assert_non_null(strstr(r->body, "\"error\""));
    free(r);
    r = do_req(port, "DELETE", "/v2/models/m1", NULL, 0, NULL);
    assert_int_equal(r->status, 405);
    free(r);
    r = do_req(port, "POST", "/echo?top_k=3", "hello", 5, NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "hello");
    assert_string_equal(r->echo, "3");
    free(r);
    r = do_req(port, "GET", "/silent", NULL, 0, NULL);
    assert_int_equal(r->status, 500);
    free(r);
    r = do_req(port, "POST", "/json", "{\"a\": [1, 2]}", 13, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->body, "\"a\":[1,2]"));
    free(r);
    r = do_req(port, "POST", "/json", "{\"a\": ", 6, NULL);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->body, "invalid JSON"));
    free(r);
    osp_http_server_destroy(s);
}

/* What the done callback saw of the last request: the body bytes each way
 * (the byte counters of serve and dispatch are fed from these). */
typedef struct done_bytes_s {
    size_t rx, tx;
    int status, calls;
} done_bytes_t;

static void on_done_bytes(osp_http_req_t *r, int status, double seconds,
                          void *ud) {
    (void)seconds;
    done_bytes_t *d = ud;
    osp_http_req_body(r, &d->rx);
    d->tx = osp_http_req_response_bytes(r);
    d->status = status;
    d->calls++;
}

static void test_server_done_bytes(void **state) {
    (void)state;
    osp_http_server_t *s = start_server(1000, 5);
    done_bytes_t d = {0};
    osp_http_on_done(s, on_done_bytes, &d);
    int port = osp_http_server_port(s);
    resp_t *r = do_req(port, "POST", "/echo", "hello world", 11, NULL);
    assert_int_equal(r->status, 200);
    assert_int_equal(d.calls, 1);
    assert_int_equal(d.rx, 11);
    assert_int_equal(d.tx, 11); /* the echo */
    free(r);
    r = do_req(port, "GET", "/v2/models/resnet", NULL, 0, NULL);
    assert_int_equal(d.calls, 2);
    assert_int_equal(d.rx, 0);
    assert_int_equal(d.tx, r->len); /* the JSON the client read */
    assert_true(d.tx > 10);
    free(r);
    r = do_req(port, "GET", "/nowhere", NULL, 0, NULL); /* the wrapper's 404 */
    assert_int_equal(d.status, 404);
    assert_int_equal(d.tx, r->len);
    free(r);
    osp_http_server_destroy(s);
}

/* Connects, writes hdr and then body in full (blocking), returns the fd. */
static int raw_send(int port, const char *hdr, const char *body, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(write(fd, hdr, strlen(hdr)), (ssize_t)strlen(hdr));
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, body + off, len - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    return fd;
}

/* Reads the start of the response (status line) within 10 s. */
static void raw_status(int fd, char *buf, size_t cap) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    ssize_t n = read(fd, buf, cap - 1);
    assert_true(n > 12);
    buf[n] = 0;
}

static void test_server_body_limit(void **state) {
    (void)state;
    osp_http_server_t *s = start_server(1000, 5);
    int port = osp_http_server_port(s);
    char *big = malloc(200000);
    memset(big, 'x', 200000);
    resp_t *r = do_req(port, "POST", "/echo", big, 1000, NULL);
    assert_int_equal(r->status, 200); /* exactly the limit is fine */
    free(r);
    r = do_req(port, "POST", "/echo", big, 1001, NULL);
    assert_int_equal(r->status, 413);
    assert_non_null(strstr(r->body, "larger than 1000"));
    free(r);
    r = do_req(port, "POST", "/echo", big, 200000, NULL);
    assert_int_equal(r->status, 413);
    free(r);
    /* Chunked upload (no Content-Length): counted as it arrives. */
    r = do_req(port, "POST", "/echo", big, 5000, "Transfer-Encoding: chunked");
    assert_int_equal(r->status, 413);
    free(r);
    free(big);

    /* The early 413 comes back without the client sending the body: send
     * only headers announcing 10 MB and wait for the answer. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *hdr = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n";
    assert_int_equal(write(fd, hdr, strlen(hdr)), (ssize_t)strlen(hdr));
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    assert_true(n > 12);
    buf[n] = 0;
    assert_non_null(strstr(buf, "HTTP/1.1 413"));
    close(fd);

    /* Expect: 100-continue: the 413 comes instead of "100 Continue". */
    char buf2[512];
    fd = raw_send(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
                        "Expect: 100-continue\r\n\r\n", NULL, 0);
    raw_status(fd, buf2, sizeof buf2);
    assert_non_null(strstr(buf2, "HTTP/1.1 413"));
    close(fd);
    /* A client that writes the whole (slightly too large) body before
     * reading still gets the 413, not a reset. */
    char *body = calloc(1, 300000);
    fd = raw_send(port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n",
                  body, 300000);
    raw_status(fd, buf2, sizeof buf2);
    assert_non_null(strstr(buf2, "HTTP/1.1 413"));
    close(fd);
    free(body);
    osp_http_server_destroy(s);
}

static void test_server_slow_client(void **state) {
    (void)state;
    osp_http_server_t *s = start_server(1000, 1);
    int port = osp_http_server_port(s);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *part = "GET /v2/models/x HTTP/1.1\r\nHost:";
    assert_int_equal(write(fd, part, strlen(part)), (ssize_t)strlen(part));
    /* Never finish the headers: the server must close within ~1 s. */
    uint64_t t0 = osp_now_ns();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    assert_true(n <= 0 || n > 0); /* closed (0/-1) or an error response */
    double waited = (double)(osp_now_ns() - t0) * 1e-9;
    assert_true(waited < 5.0);
    close(fd);
    osp_http_server_destroy(s);
}


/* ---- header value lists ---- */
static bool has(const char *v, const char *tok) {
    return osp_http_list_has(v, strlen(v), tok);
}

static void test_list_has(void **state) {
    (void)state;
    assert_true(has("close", "close"));
    assert_true(has("Keep-Alive, Close", "close"));
    assert_true(has(" ,\t, close\t ,", "close"));
    assert_true(has("gzip, chunked", "chunked"));
    assert_false(has("closed", "close"));
    assert_false(has("xclose", "close"));
    assert_false(has("", "close"));
    assert_false(has(",,,", "close"));
    assert_false(has("close", ""));
    /* n bounds the value: "close" cut to "clo" is not "close". */
    assert_false(osp_http_list_has("close", 3, "close"));
    assert_true(osp_http_list_has("a, close, b", 8, "close"));
}

/* ---- suspend / resume (both threading modes) ---- */
typedef struct later_s {
    osp_http_req_t *r;
    int ms;
    int rounds; /* resumes so far */
} later_t;

static void *resume_later(void *p) {
    later_t *l = p;
    usleep((useconds_t)l->ms * 1000);
    osp_http_req_resume(l->r);
    return NULL;
}

static void later_spawn(later_t *l) {
    pthread_t t;
    pthread_create(&t, NULL, resume_later, l);
    pthread_detach(t);
}

/* Resume function: suspends once more (a second delay), then answers. */
static void later_resumed(osp_http_req_t *r, void *ud) {
    later_t *l = ud;
    if (++l->rounds == 1) {
        assert_int_equal(osp_http_req_suspend(r, later_resumed, l), 0);
        later_spawn(l);
        return;
    }
    osp_http_respond(r, 200, "text/plain", "later", 5);
}

/* GET /later?ms=N: answered after two delays of N/2 ms, from other threads. */
static void h_later(osp_http_req_t *r, void *ud) {
    (void)ud;
    later_t *l = osp_arena_alloc(osp_http_req_arena(r), sizeof *l);
    l->r = r;
    l->ms = atoi(osp_http_req_query(r, "ms")) / 2;
    l->rounds = 0;
    /* pre=N: the handler works N ms before it suspends (a window in which
     * the request is running but not suspended yet). */
    const char *pre = osp_http_req_query(r, "pre");
    if (pre)
        usleep((useconds_t)atoi(pre) * 1000);
    assert_int_equal(osp_http_req_suspend(r, later_resumed, l), 0);
    assert_int_equal(osp_http_req_suspend(r, later_resumed, l), OSP_EINVAL);
    later_spawn(l);
}

static void early_resumed(osp_http_req_t *r, void *ud) {
    (void)ud;
    osp_http_respond(r, 201, "text/plain", "early", 5);
}

/* GET /early: resumed before the handler even returned. */
static void h_early(osp_http_req_t *r, void *ud) {
    (void)ud;
    assert_int_equal(osp_http_req_suspend(r, early_resumed, NULL), 0);
    osp_http_req_resume(r);
}

/* GET /held?ms=N: another thread answers while the request is suspended
 * (a header, then the answer: held), then resumes it; the resume function
 * finds it answered. ms=0: possibly before the handler has returned. */
typedef struct held_s {
    osp_http_req_t *r;
    int ms;
} held_t;

static void *answer_held(void *p) {
    held_t *h = p;
    usleep((useconds_t)h->ms * 1000);
    assert_int_equal(osp_http_add_header(h->r, "X-Echo", "from a thread"), 0);
    assert_int_equal(osp_http_respond(h->r, 202, "text/plain", "held", 4), 0);
    /* One answer: a second is refused, also while held. */
    assert_int_equal(osp_http_respond(h->r, 200, "text/plain", "x", 1),
                     OSP_EINVAL);
    osp_http_req_resume(h->r);
    return NULL;
}

static void held_resumed(osp_http_req_t *r, void *ud) {
    (void)ud;
    assert_int_equal(osp_http_req_status(r), 202);
}

static void h_held(osp_http_req_t *r, void *ud) {
    (void)ud;
    held_t *h = osp_arena_alloc(osp_http_req_arena(r), sizeof *h);
    h->r = r;
    h->ms = atoi(osp_http_req_query(r, "ms"));
    assert_int_equal(osp_http_req_suspend(r, held_resumed, h), 0);
    pthread_t t;
    pthread_create(&t, NULL, answer_held, h);
    pthread_detach(t);
}

typedef struct {
    int port;
    long status;
    const char *path; /* default /later?ms=400 */
} getter_t;

static void *get_later(void *p) {
    getter_t *g = p;
    resp_t *r = do_req(g->port, "GET", g->path ? g->path : "/later?ms=400",
                       NULL, 0, NULL);
    g->status = r->status;
    if (r->status == 200)
        assert_string_equal(r->body, "later");
    free(r);
    return NULL;
}

static void suspend_mode(osp_http_mode_t mode) {
    osp_http_opts_t o;
    osp_http_opts_init(&o);
    o.host = "127.0.0.1";
    o.mode = mode;
    o.pool_threads = 2;
    osp_err_t err = {0};
    osp_http_server_t *s = osp_http_server_create(&o, &err);
    assert_non_null(s);
    assert_int_equal(osp_http_route(s, "GET", "/later", h_later, NULL), 0);
    assert_int_equal(osp_http_route(s, "GET", "/early", h_early, NULL), 0);
    assert_int_equal(osp_http_route(s, "GET", "/held", h_held, NULL), 0);
    if (osp_http_server_start(s, &err))
        fail_msg("%s", err.msg);
    int port = osp_http_server_port(s);
    resp_t *r = do_req(port, "GET", "/early", NULL, 0, NULL);
    assert_int_equal(r->status, 201);
    assert_string_equal(r->body, "early");
    free(r);
    /* Answered off the server's threads while suspended: held, then sent
     * with its header once resumed — also when it all happens before the
     * handler returned. */
    for (int i = 0; i < 20; i++) {
        r = do_req(port, "GET", i % 2 ? "/held?ms=30" : "/held?ms=0", NULL,
                   0, NULL);
        assert_int_equal(r->status, 202);
        assert_string_equal(r->body, "held");
        assert_string_equal(r->echo, "from a thread");
        free(r);
    }
    assert_int_equal(osp_http_server_inflight(s), 0);
    /* 8 requests waiting 400 ms each at once on 2 pool threads: in epoll
     * mode they must overlap (no thread waits), so the lot takes ~400 ms,
     * not 8 x 400. Generous bound for a loaded machine / ASan. */
    enum { N = 8 };
    getter_t g[N];
    pthread_t t[N];
    uint64_t t0 = osp_now_ns();
    for (int i = 0; i < N; i++) {
        g[i] = (getter_t){port, 0, NULL};
        pthread_create(&t[i], NULL, get_later, &g[i]);
    }
    for (int k = 0; k < 400 && osp_http_server_inflight(s) < N; k++)
        usleep(5000);
    assert_int_equal(osp_http_server_inflight(s), N); /* suspended count */
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(g[i].status, 200);
    }
    double took = (double)(osp_now_ns() - t0) * 1e-9;
    if (took > 2.5)
        fail_msg("%s: 8 suspended requests took %.2f s", osp_http_mode_name(mode),
                 took);
    assert_int_equal(osp_http_server_inflight(s), 0);
    /* Destroy while a request is in its handler, about to suspend: waits
     * for its suspension, resumes and answer. */
    g[0] = (getter_t){port, 0, "/later?ms=400&pre=150"};
    pthread_create(&t[0], NULL, get_later, &g[0]);
    for (int k = 0; k < 400 && osp_http_server_inflight(s) < 1; k++)
        usleep(5000);
    osp_http_server_destroy(s);
    pthread_join(t[0], NULL);
    /* Destroy waited for the handler (even one not suspended yet when
     * destroy began) and for the answer to be written: nothing accepted
     * is cut. */
    assert_int_equal(g[0].status, 200);
    usleep(450000);           /* let the detached resumers finish */
}

static void test_server_suspend(void **state) {
    (void)state;
    osp_http_mode_t m;
    assert_int_equal(osp_http_mode_parse("epoll", &m), 0);
    assert_int_equal(m, OSP_HTTP_EPOLL);
    assert_int_equal(osp_http_mode_parse("fibers", &m), OSP_EINVAL);
    suspend_mode(OSP_HTTP_EPOLL);
    suspend_mode(OSP_HTTP_THREADS);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart_ok),
        cmocka_unit_test(test_multipart_truncations),
        cmocka_unit_test(test_multipart_malformed),
        cmocka_unit_test(test_multipart_random),
        cmocka_unit_test(test_server_routes),
        cmocka_unit_test(test_server_done_bytes),
        cmocka_unit_test(test_server_body_limit),
        cmocka_unit_test(test_server_slow_client),
        cmocka_unit_test(test_server_suspend),
        cmocka_unit_test(test_list_has),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
