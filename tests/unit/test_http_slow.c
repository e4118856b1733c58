/* test_http_slow.c — the HTTP server's slow-client deadlines
 * (src/http/slow.c) in each threading mode (THREADS, EPOLL, and EXTERNAL
 * driven by a loop of the test's own, as the dispatcher drives it), over
 * raw loopback sockets:
 *  - a head that keeps trickling (one header line every 200 ms, which
 *    libmicrohttpd's idle timeout never sees as idle) is closed, without an
 *    answer, after the header timeout (1 s) and not before;
 *  - a body at 50 bytes/s, below the minimum rate of 1000, is cut after the
 *    grace (the header timeout) — closed, no answer;
 *  - a keep-alive connection idle for longer than the header timeout
 *    still serves its next request (the idle allowance is the idle timeout);
 *  - the closes are counted by reason (osp_http_server_slow_closes).
 * Time bounds: a close is due 1 s after its start and the sweep runs every
 * 0.25 s; the lower bound 0.9 s shows it is the deadline that closed it,
 * the upper 4 s leaves room for a loaded machine or a sanitizer build. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "osprey/http.h"

static void h_ok(osp_http_req_t *r, void *ud) {
    (void)ud;
    osp_http_respond(r, 200, "text/plain", "ok", 2);
}

typedef struct srv_s {
    osp_http_server_t *s;
    pthread_t th;
    atomic_bool stop;
    bool external;
} srv_t;

/* EXTERNAL mode: the owner's loop, as src/dispatch/loop.c runs it. */
static void *drive(void *arg) {
    srv_t *v = arg;
    int ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, osp_http_server_fd(v->s), &e);
    int64_t ms = 0;
    while (!atomic_load(&v->stop)) {
        struct epoll_event ev;
        epoll_wait(ep, &ev, 1, ms < 0 || ms > 100 ? 100 : (int)ms);
        ms = osp_http_server_run(v->s);
    }
    close(ep);
    return NULL;
}

static void srv_start(srv_t *v, osp_http_mode_t mode) {
    osp_http_opts_t o;
    osp_http_opts_init(&o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.mode = mode;
    o.pool_threads = 1;
    o.conn_timeout_s = 30; /* libmicrohttpd's idle timeout stays out of it */
    o.header_timeout_s = 1;
    o.min_body_rate = 1000;
    osp_err_t err = {0};
    memset(v, 0, sizeof *v);
    v->s = osp_http_server_create(&o, &err);
    assert_non_null(v->s);
    assert_int_equal(osp_http_route(v->s, "GET", "/ok", h_ok, NULL), 0);
    assert_int_equal(osp_http_route(v->s, "POST", "/ok", h_ok, NULL), 0);
    if (osp_http_server_start(v->s, &err))
        fail_msg("%s", err.msg);
    v->external = mode == OSP_HTTP_EXTERNAL;
    if (v->external)
        assert_int_equal(pthread_create(&v->th, NULL, drive, v), 0);
}

static void srv_stop(srv_t *v) {
    if (v->external) {
        atomic_store(&v->stop, true);
        pthread_join(v->th, NULL);
    }
    osp_http_server_destroy(v->s);
}

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void put(int fd, const char *s) {
    /* MSG_NOSIGNAL: the server may have closed already. */
    (void)send(fd, s, strlen(s), MSG_NOSIGNAL);
}

/* Reads what is there; 1 when the peer has closed (end of stream or
 * reset), 0 when still open; *got counts the bytes received. */
static int closed(int fd, size_t *got) {
    char buf[512];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) != 1)
            return 0;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            return 1;
        *got += (size_t)n;
    }
}

/* Reads one small answer (up to its blank line and "ok"); its status. */
static int answer(int fd) {
    char buf[1024];
    size_t len = 0;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (len < sizeof buf - 1 && poll(&p, 1, 5000) == 1) {
        ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = 0;
        if (strstr(buf, "\r\n\r\nok"))
            break;
    }
    buf[len] = 0;
    int status = 0;
    sscanf(buf, "HTTP/1.1 %d", &status);
    return status;
}

static void run_mode(osp_http_mode_t mode) {
    srv_t v;
    srv_start(&v, mode);
    int port = osp_http_server_port(v.s);
    /* keep-alive: one request now, the next after 1.5 s of idle */
    int ka = dial(port);
    put(ka, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(answer(ka), 200);
    /* slow head and slow body, side by side */
    int head = dial(port), body = dial(port);
    put(head, "GET /ok HTTP/1.1\r\n");
    put(body, "POST /ok HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n");
    uint64_t t0 = osp_now_ns();
    double head_s = 0, body_s = 0;
    size_t head_got = 0, body_got = 0;
    for (int i = 0; i < 40 && (!head_s || !body_s); i++) { /* <= 8 s */
        usleep(200 * 1000);
        double t = (double)(osp_now_ns() - t0) * 1e-9;
        if (!head_s && closed(head, &head_got))
            head_s = t;
        if (!body_s && closed(body, &body_got))
            body_s = t;
        if (!head_s)
            put(head, "X-Slow: 1\r\n");
        if (!body_s)
            put(body, "0123456789");
    }
    print_message("%s: slow head closed after %.2f s, slow body after %.2f s\n",
                  osp_http_mode_name(mode), head_s, body_s);
    assert_true(head_s >= 0.9 && head_s <= 4.0);
    assert_true(body_s >= 0.9 && body_s <= 4.0);
    assert_int_equal(head_got, 0); /* no answer to a head that never ended */
    assert_int_equal(body_got, 0);
    assert_int_equal(osp_http_server_slow_closes(v.s, OSP_HTTP_SLOW_HEADER), 1);
    assert_int_equal(osp_http_server_slow_closes(v.s, OSP_HTTP_SLOW_BODY), 1);
    /* idle for longer than the header timeout: still served */
    put(ka, "GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(answer(ka), 200);
    close(ka);
    close(head);
    close(body);
    srv_stop(&v);
}

static void test_threads(void **state) { (void)state; run_mode(OSP_HTTP_THREADS); }
static void test_epoll(void **state) { (void)state; run_mode(OSP_HTTP_EPOLL); }
static void test_external(void **state) { (void)state; run_mode(OSP_HTTP_EXTERNAL); }

static void test_auto_max_connections(void **state) {
    (void)state;
    assert_int_equal(osp_http_auto_max_connections(1024, 1),
                     1024 - OSP_HTTP_RESERVED_FDS);
    assert_int_equal(osp_http_auto_max_connections(20000, 2),
                     (20000 - OSP_HTTP_RESERVED_FDS) / 2);
    assert_int_equal(osp_http_auto_max_connections(1L << 20, 1),
                     OSP_HTTP_MAX_AUTO_CONNECTIONS);
    assert_int_equal(osp_http_auto_max_connections(300, 2),
                     OSP_HTTP_DEFAULT_MAX_CONNECTIONS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auto_max_connections),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_epoll),
        cmocka_unit_test(test_external),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
