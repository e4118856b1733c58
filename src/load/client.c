/* client.c — the load generator's HTTP/1.1 client: a pool of non-blocking
 * keep-alive connections to one server, multiplexed by one epoll loop in
 * the calling thread.
 *
 * Why our own instead of libcurl multi: the work per request here is tiny
 * (write prebuilt bytes, parse a status line, count the body: the http
 * module's response parser in its counting mode), and a lean loop with no
 * per-request allocation keeps one core far ahead of the server
 * (docs/decisions.md "Load generator"). Connections open lazily up to
 * max_conns, are reused while the server keeps them alive, and are closed
 * on any doubt (error, early response, bytes after a response, timeout).
 *
 * Every started request ends in exactly one done() call. A request that
 * fails on a reused connection before any response byte arrived is marked
 * retryable: that is the keep-alive race (the server closed the idle
 * connection as we wrote), not a server failure; run.c resends it once. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "load/load_int.h"
#include "osprey/http.h"

enum { C_FREE = 0, C_IDLE, C_CONNECTING, C_WRITING, C_READING };

#define READ_BUF_BYTES 65536
#define MAX_EVENTS 256
#define READS_PER_EVENT 8 /* fairness between connections */
#define RESP_MAX_HEAD_BYTES 8192 /* a response's status line + headers (the
                                    usual server limit) */

/* Responses are counted, not kept: the body is only timed and dropped. */
static const osp_http_h1resp_opts_t RESP_OPTS = {
    .keep_body = false,
    .max_head_bytes = RESP_MAX_HEAD_BYTES,
};

typedef struct conn_s {
    int fd;
    int state;
    int want_out;       /* EPOLLOUT currently registered */
    uint32_t gen;       /* bumped on close: events for old fds are stale */
    int served;         /* responses completed on this connection */
    osp__load_req_t req;
    const uint8_t *out;
    size_t out_len, out_off;
    osp_http_h1resp_t resp;
} conn_t;

struct osp__load_client_s {
    int ep;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int max_conns;
    conn_t *conns;
    int *idle, n_idle;  /* stack of idle connection indices */
    int *free_, n_free; /* stack of closed slots */
    int busy;
    osp__load_client_done_fn done;
    void *ud;
    int no_pwait2;      /* the kernel lacks epoll_pwait2 */
    uint8_t buf[READ_BUF_BYTES];
};

osp__load_client_t *osp__load_client_create(const struct sockaddr *addr,
                                            socklen_t addr_len, int max_conns,
                                            osp__load_client_done_fn done,
                                            void *ud, osp_err_t *err) {
    osp__load_client_t *c = calloc(1, sizeof *c);
    if (!c || max_conns < 1 || addr_len > sizeof c->addr) {
        osp_err_set(err, c ? OSP_EINVAL : OSP_ENOMEM,
                    c ? "bad client options" : "out of memory");
        free(c);
        return NULL;
    }
    c->ep = -1;
    c->conns = calloc((size_t)max_conns, sizeof *c->conns);
    c->idle = calloc((size_t)max_conns, sizeof *c->idle);
    c->free_ = calloc((size_t)max_conns, sizeof *c->free_);
    if (!c->conns || !c->idle || !c->free_) {
        osp_err_set(err, OSP_ENOMEM, "out of memory for %d connections",
                    max_conns);
        goto fail;
    }
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    if (c->ep < 0) {
        osp_err_set(err, OSP_EIO, "epoll_create1: %s", strerror(errno));
        goto fail;
    }
    memcpy(&c->addr, addr, addr_len);
    c->addr_len = addr_len;
    c->max_conns = max_conns;
    c->done = done;
    c->ud = ud;
    /* Slots are handed out lowest index first. */
    for (int i = 0; i < max_conns; i++) {
        c->conns[i].fd = -1;
        c->free_[c->n_free++] = max_conns - 1 - i;
    }
    return c;
fail:
    osp__load_client_destroy(c);
    return NULL;
}

void osp__load_client_destroy(osp__load_client_t *c) {
    if (!c)
        return;
    for (int i = 0; c->conns && i < c->max_conns; i++) {
        if (c->conns[i].fd >= 0)
            close(c->conns[i].fd);
        osp_http_h1resp_fini(&c->conns[i].resp);
    }
    if (c->ep >= 0)
        close(c->ep);
    free(c->conns);
    free(c->idle);
    free(c->free_);
    free(c);
}

int osp__load_client_busy(const osp__load_client_t *c) { return c->busy; }

int osp__load_client_can_start(const osp__load_client_t *c) {
    return c->n_idle > 0 || c->n_free > 0;
}

static uint64_t ev_tag(const osp__load_client_t *c, const conn_t *k) {
    return (uint64_t)k->gen << 32 | (uint64_t)(k - c->conns);
}

static void conn_close(osp__load_client_t *c, conn_t *k) {
    if (k->fd >= 0) {
        close(k->fd); /* also removes it from the epoll set */
    }
    if (k->state == C_IDLE) {
        /* Remove from the idle stack (rare: idle closes by the server). */
        int idx = (int)(k - c->conns);
        for (int i = 0; i < c->n_idle; i++)
            if (c->idle[i] == idx) {
                c->idle[i] = c->idle[--c->n_idle];
                break;
            }
    }
    k->fd = -1;
    k->state = C_FREE;
    k->want_out = 0;
    k->gen++;
    k->served = 0;
    c->free_[c->n_free++] = (int)(k - c->conns);
}

/* Ends the connection's request with a result; the connection is kept
 * (idle) only when reuse is safe. */
static void finish(osp__load_client_t *c, conn_t *k, int status,
                   osp_load_fail_t fail, int reuse, uint64_t now) {
    osp__load_result_t res = {0};
    res.status = status;
    res.fail = fail;
    res.written = k->out_off == k->out_len;
    res.retryable = !status && k->served > 0 &&
                    !osp_http_h1resp_started(&k->resp) &&
                    fail == OSP_LOAD_FAIL_READ;
    osp__load_req_t req = k->req;
    c->busy--;
    if (status)
        k->served++;
    if (reuse && k->fd >= 0) {
        k->state = C_IDLE;
        k->out = NULL;
        c->idle[c->n_idle++] = (int)(k - c->conns);
    } else {
        conn_close(c, k);
    }
    c->done(c->ud, &req, &res, now);
}

static int set_out(osp__load_client_t *c, conn_t *k, int on) {
    if (k->want_out == on)
        return 0;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.u64 = ev_tag(c, k)};
    if (epoll_ctl(c->ep, EPOLL_CTL_MOD, k->fd, &ev) < 0)
        return -1;
    k->want_out = on;
    return 0;
}

/* Writes what the socket takes; on completion waits for the response. */
static void do_write(osp__load_client_t *c, conn_t *k, uint64_t now) {
    while (k->out_off < k->out_len) {
        ssize_t w = send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
                         MSG_NOSIGNAL);
        if (w > 0) {
            k->out_off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (set_out(c, k, 1) < 0)
                finish(c, k, 0, OSP_LOAD_FAIL_READ, 0, now);
            return;
        }
        finish(c, k, 0, OSP_LOAD_FAIL_READ, 0, now);
        return;
    }
    k->state = C_READING;
    if (set_out(c, k, 0) < 0)
        finish(c, k, 0, OSP_LOAD_FAIL_READ, 0, now);
}

int osp__load_client_start(osp__load_client_t *c, const osp__load_req_t *req,
                           const uint8_t *bytes, size_t len, uint64_t now) {
    conn_t *k;
    if (req->retries && !c->n_free && c->n_idle) {
        /* A retry must not meet another stale keep-alive connection: give
         * up an idle one for a fresh connection. */
        conn_close(c, &c->conns[c->idle[c->n_idle - 1]]);
    }
    if (c->n_idle && !(req->retries && c->n_free)) {
        k = &c->conns[c->idle[--c->n_idle]];
    } else if (c->n_free) {
        k = &c->conns[c->free_[--c->n_free]];
        k->state = C_CONNECTING;
        k->served = 0;
        k->fd = socket(c->addr.ss_family,
                       SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    } else {
        return OSP_EBUSY;
    }
    c->busy++;
    k->req = *req;
    k->out = bytes;
    k->out_len = len;
    k->out_off = 0;
    osp_http_h1resp_init(&k->resp, &RESP_OPTS);
    if (k->state == C_IDLE) {
        k->state = C_WRITING;
        do_write(c, k, now);
        return 0;
    }
    /* A new connection. */
    if (k->fd < 0) {
        finish(c, k, 0, OSP_LOAD_FAIL_CONNECT, 0, now);
        return 0;
    }
    int one = 1;
    setsockopt(k->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT,
                             .data.u64 = ev_tag(c, k)};
    k->want_out = 1;
    if (epoll_ctl(c->ep, EPOLL_CTL_ADD, k->fd, &ev) < 0) {
        finish(c, k, 0, OSP_LOAD_FAIL_CONNECT, 0, now);
        return 0;
    }
    int r = connect(k->fd, (const struct sockaddr *)&c->addr, c->addr_len);
    if (r == 0) {
        k->state = C_WRITING;
        do_write(c, k, now);
    } else if (errno != EINPROGRESS) {
        finish(c, k, 0, OSP_LOAD_FAIL_CONNECT, 0, now);
    }
    return 0;
}

/* Reads what is there and feeds the parser. */
static void do_read(osp__load_client_t *c, conn_t *k, uint64_t now) {
    for (int round = 0; round < READS_PER_EVENT; round++) {
        ssize_t r = recv(k->fd, c->buf, sizeof c->buf, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (k->state == C_IDLE) {
            /* The server closed (or spoke on) an idle connection. */
            conn_close(c, k);
            return;
        }
        if (r <= 0) {
            /* Closed or reset: complete only if the body ran to the close. */
            if (r == 0 && osp_http_h1resp_eof(&k->resp) == 1)
                finish(c, k, k->resp.status, OSP_LOAD_FAIL_COUNT, 0, now);
            else
                finish(c, k, 0, OSP_LOAD_FAIL_READ, 0, now);
            return;
        }
        size_t used = 0;
        int st = osp_http_h1resp_feed(&k->resp, c->buf, (size_t)r, &used);
        if (st < 0) {
            finish(c, k, 0, OSP_LOAD_FAIL_PARSE, 0, now);
            return;
        }
        if (st == 1) {
            /* Reuse only a cleanly finished exchange: whole request sent,
             * nothing extra received, server willing. */
            int reuse = k->resp.keep_alive && used == (size_t)r &&
                        k->state == C_READING;
            finish(c, k, k->resp.status, OSP_LOAD_FAIL_COUNT, reuse, now);
            return;
        }
    }
}

static void on_event(osp__load_client_t *c, struct epoll_event *ev,
                     uint64_t now) {
    uint32_t idx = (uint32_t)ev->data.u64;
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    if (idx >= (uint32_t)c->max_conns)
        return;
    conn_t *k = &c->conns[idx];
    if (k->gen != gen || k->state == C_FREE)
        return; /* an event for a connection closed earlier in this batch */
    if (k->state == C_CONNECTING) {
        if (!(ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int so = 0;
        socklen_t sl = sizeof so;
        if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0 || so) {
            finish(c, k, 0, OSP_LOAD_FAIL_CONNECT, 0, now);
            return;
        }
        k->state = C_WRITING;
        do_write(c, k, now);
        return;
    }
    if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        do_read(c, k, now);
        if (k->gen != gen)
            return; /* closed */
    }
    if (k->state == C_WRITING && (ev->events & EPOLLOUT))
        do_write(c, k, now);
}

int osp__load_client_poll(osp__load_client_t *c, uint64_t timeout_ns) {
    struct epoll_event evs[MAX_EVENTS];
    int n;
    if (!c->no_pwait2) {
        struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000u),
                              .tv_nsec = (long)(timeout_ns % 1000000000u)};
        n = epoll_pwait2(c->ep, evs, MAX_EVENTS, &ts, NULL);
        if (n < 0 && errno == ENOSYS) {
            c->no_pwait2 = 1;
            return 0;
        }
    } else {
        n = epoll_wait(c->ep, evs, MAX_EVENTS,
                       (int)((timeout_ns + 999999) / 1000000));
    }
    if (n < 0)
        return errno == EINTR ? 0 : OSP_EIO;
    uint64_t now = osp_now_ns();
    for (int i = 0; i < n; i++)
        on_event(c, &evs[i], now);
    return n;
}

void osp__load_client_expire(osp__load_client_t *c, uint64_t now) {
    for (int i = 0; i < c->max_conns && c->busy; i++) {
        conn_t *k = &c->conns[i];
        if (k->state >= C_CONNECTING && k->req.deadline_ns <= now)
            finish(c, k, 0, OSP_LOAD_FAIL_TIMEOUT, 0, now);
    }
}
