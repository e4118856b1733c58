/* test_http_budget.c — the memory budget (src/http/budget.c): reservations
 * never pass the limit, a forced charge may, releases give back exactly
 * what was taken, and the three metrics follow; then a real server
 * (EPOLL) with a budget of 1 MiB: a declared body that fits is served and
 * released, one that does not gets 503 + Retry-After before it is stored,
 * a 100-continue client is refused without sending its body, a chunked
 * body is refused once it outgrows the room, and the budget is back at 0
 * after each request. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/http_int.h"
#include "osprey/http.h"
#include "osprey/metrics.h"

static void test_reserve_release(void **state) {
    (void)state;
    assert_null(osp_http_budget_create(0));
    osp_http_budget_t *b = osp_http_budget_create(1000);
    osp_metrics_t *m = osp_metrics_create(0);
    assert_int_equal(osp_http_budget_metric(b, m, NULL), 0);
    assert_true(osp__http_budget_reserve(b, 600));
    assert_false(osp__http_budget_reserve(b, 401)); /* 1001 > 1000 */
    assert_true(osp__http_budget_reserve(b, 400));  /* exactly full */
    assert_false(osp__http_budget_reserve(b, 1));
    assert_false(osp__http_budget_reserve(b, UINT64_MAX)); /* no overflow */
    assert_int_equal(osp_http_budget_used(b), 1000);
    assert_int_equal(osp__http_budget_room(b), 0);
    osp__http_budget_charge(b, 50); /* already allocated: past the limit */
    assert_int_equal(osp_http_budget_used(b), 1050);
    assert_int_equal(osp__http_budget_room(b), 0);
    osp__http_budget_release(b, 1050);
    assert_int_equal(osp__http_budget_room(b), 1000);
    osp__http_budget_reject(b);
    assert_int_equal(osp_http_budget_rejections(b), 1);
    assert_int_equal(osp__http_budget_room(NULL), UINT64_MAX);
    char *text;
    size_t len;
    assert_int_equal(osp_metrics_render(m, &text, &len), 0);
    assert_non_null(strstr(text, "osprey_http_inflight_bytes 0\n"));
    assert_non_null(strstr(text, "osprey_http_inflight_bytes_limit 1000\n"));
    assert_non_null(strstr(text, "osprey_http_budget_rejections_total 1\n"));
    free(text);
    osp_metrics_destroy(m);
    osp_http_budget_destroy(b);
}

static void h_echo_len(osp_http_req_t *r, void *ud) {
    (void)ud;
    size_t n;
    osp_http_req_body(r, &n);
    /* a handler's own reservation, released with the request */
    if (osp_http_req_reserve(r, 4096) < 0) {
        osp_http_respond_over_budget(r);
        return;
    }
    char buf[32];
    int k = snprintf(buf, sizeof buf, "%zu", n);
    osp_http_respond(r, 200, "text/plain", buf, (size_t)k);
}

/* Sends head (and body, when given, without waiting) on a new connection
 * to port and reads the whole answer into out (closed by the server or
 * after 5 s). */
static void exchange(int port, const char *head, const char *body,
                     size_t body_len, char *out, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL),
                     (ssize_t)strlen(head));
    if (body)
        (void)send(fd, body, body_len, MSG_NOSIGNAL);
    size_t got = 0;
    ssize_t k;
    while (got + 1 < cap && (k = recv(fd, out + got, cap - 1 - got, 0)) > 0)
        got += (size_t)k;
    out[got] = 0;
    close(fd);
}

static void test_server(void **state) {
    (void)state;
    osp_http_budget_t *b = osp_http_budget_create(1 << 20);
    osp_http_opts_t o;
    osp_http_opts_init(&o);
    o.host = "127.0.0.1";
    o.mode = OSP_HTTP_EPOLL;
    o.pool_threads = 1;
    o.budget = b;
    osp_err_t err = {0};
    osp_http_server_t *s = osp_http_server_create(&o, &err);
    assert_non_null(s);
    assert_int_equal(osp_http_route(s, "POST", "/x", h_echo_len, NULL), 0);
    assert_int_equal(osp_http_server_start(s, &err), 0);
    int port = osp_http_server_port(s);
    char out[4096], head[256];
    static char body[512 << 10];
    memset(body, 'a', sizeof body);

    /* fits: served; the budget is back at 0 once the answer is sent */
    snprintf(head, sizeof head, "POST /x HTTP/1.1\r\nHost: t\r\n"
             "Connection: close\r\nContent-Length: %zu\r\n\r\n", sizeof body);
    exchange(port, head, body, sizeof body, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "524288"));
    for (int i = 0; i < 200 && osp_http_budget_used(b); i++)
        usleep(10000);
    assert_int_equal(osp_http_budget_used(b), 0);

    /* hold half the budget elsewhere: a 600 KiB body no longer fits */
    assert_true(osp__http_budget_reserve(b, 512 << 10));
    snprintf(head, sizeof head, "POST /x HTTP/1.1\r\nHost: t\r\n"
             "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n",
             600 << 10);
    exchange(port, head, NULL, 0, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 503"));
    assert_non_null(strstr(out, "Retry-After: 1"));
    assert_non_null(strstr(out, "memory budget"));
    assert_null(strstr(out, "100 Continue")); /* no body asked for */
    /* without Expect, a body under 8 MiB is read, dropped, then refused */
    snprintf(head, sizeof head, "POST /x HTTP/1.1\r\nHost: t\r\n"
             "Connection: close\r\nContent-Length: %zu\r\n\r\n", sizeof body);
    exchange(port, head, body, sizeof body, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 503"));
    /* a chunked body reserves as it grows: 600 KiB in 64 KiB chunks
     * passes the room left, the rest is dropped and 503 follows */
    {
        static char chunked[700 << 10];
        size_t n = 0;
        for (int i = 0; i < 10; i++) {
            n += (size_t)sprintf(chunked + n, "10000\r\n");
            memset(chunked + n, 'b', 0x10000);
            n += 0x10000;
            n += (size_t)sprintf(chunked + n, "\r\n");
        }
        n += (size_t)sprintf(chunked + n, "0\r\n\r\n");
        exchange(port, "POST /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n",
                 chunked, n, out, sizeof out);
        assert_non_null(strstr(out, "HTTP/1.1 503"));
    }
    /* bigger than the whole budget: 413 (never fits, no retry) */
    snprintf(head, sizeof head, "POST /x HTTP/1.1\r\nHost: t\r\n"
             "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n", 2 << 20);
    exchange(port, head, NULL, 0, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 413"));
    /* the body fits, the handler's own 4 KiB reservation does not: 503 */
    snprintf(head, sizeof head, "POST /x HTTP/1.1\r\nHost: t\r\n"
             "Connection: close\r\nContent-Length: 522000\r\n\r\n");
    exchange(port, head, body, 522000, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 503"));
    osp__http_budget_release(b, 512 << 10);
    for (int i = 0; i < 200 && osp_http_budget_used(b); i++)
        usleep(10000);
    assert_int_equal(osp_http_budget_used(b), 0);
    assert_int_equal(osp_http_budget_rejections(b), 4);
    osp_http_server_destroy(s);
    osp_http_budget_destroy(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_release),
        cmocka_unit_test(test_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
