/* loop.c — the dispatcher's event path (`--io event`): N loop threads, each
 * owning one epoll set with (1) its own HTTP front (src/http in EXTERNAL
 * mode: a libmicrohttpd daemon without threads, all loops listening on the
 * same port through SO_REUSEPORT), (2) its upstream connections to the
 * backends (non-blocking sockets, HTTP/1.1 keep-alive, pooled per backend
 * and loop, answers read by the http module's osp_http_h1resp_*), and
 * (3) an eventfd other threads use to wake it (admission-queue slots,
 * shutdown).
 *
 * Why: with a thread per client connection and a blocking upstream call,
 * every proxied request slept and woke twice (docs/performance.md
 * "Dispatcher": 2 context switches and 41–47 µs of CPU per request against
 * HAProxy's 0.3 and 18–23 µs). Here a request never leaves the thread that
 * read it: the handler picks a backend and writes the request upstream at
 * once, suspends the client connection, and the loop resumes it when the
 * answer has been read — one wake-up serves every socket that is ready.
 *
 * A request (ereq_t) is in one of three places: waiting in the
 * admission queue (the loop's wait list; retried when another thread frees
 * a slot and kicks the eventfd), on an upstream connection (an attempt), or
 * answered (resumed; the front's resume function sends the answer and frees
 * it). A POST body over LOOP_WINDOW is streamed: the handler runs at the
 * head, and on_body copies the body into the request's buffer and sends
 * it on as the upstream socket takes it, pausing the client while the
 * buffer is full (see LOOP_WINDOW). Timers (admission wait, connect timeout, deadline) are checked by
 * scanning the loop's requests only when the earliest one is due. The
 * behaviours — retries, budget, ejection accounting, admission, metrics —
 * are proxy.c's, shared with the blocking path. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dispatch/dispatch_int.h"

#define LOOP_RBUF 32768         /* read buffer per upstream connection (the
                                   parser holds a line split across reads,
                                   so only bytes after an answer stay) */
#define LOOP_EVENTS 64          /* epoll events per wake-up */
#define LOOP_WAIT_POLL_MS 50    /* re-check queued requests at least this
                                   often (a missed kick costs no more) */
#define LOOP_HDRS_MAX 2048      /* forwarded request headers */
#define LOOP_HEAD_MAX (LOOP_HDRS_MAX + 2048 + DSP_ADDR_MAX + 256)
/* Streamed bodies (docs/adr/0050-dispatch-body-streaming.md): a POST body
 * over LOOP_WINDOW bytes goes upstream as it arrives; smaller bodies (and
 * chunked ones) are buffered whole by the front. The buffer a streamed
 * body passes through (charged to the memory budget) is also its retry
 * copy: a body of at most LOOP_RETRY_COPY bytes gets a buffer of its
 * whole size, so that any failed attempt is retried as before; a larger
 * one a LOOP_WINDOW window, and an attempt that fails once a body byte
 * had to leave it (after the first 64 KiB were sent) is not retried —
 * a connect error, the common failure, still is. */
#define LOOP_WINDOW ((size_t)64 << 10)
#define LOOP_RETRY_COPY ((size_t)1 << 20) /* as Envoy's default retry
                                             buffer limit */

enum { TAG_FRONT = 1, TAG_KICK, TAG_CONN };

/* How an attempt ended. */
typedef enum att_e {
    ATT_OK = 0,        /* an answer (status in e->status) */
    ATT_CONNECT,       /* connect failed or timed out */
    ATT_IO,            /* send/receive error, reset, closed early */
    ATT_BAD,           /* malformed answer */
    ATT_TOO_BIG,       /* answer over the size limit */
    ATT_DEADLINE,      /* the request's deadline passed */
} att_t;

/* Answers are kept (they become the client's answer) under the
 * dispatcher's limits. */
static const osp_http_h1resp_opts_t H1_OPTS = {
    .keep_body = true,
    .max_head_bytes = DSP_H1_MAX_HEAD,
    .max_body_bytes = DSP_MAX_RESPONSE_BYTES,
};

typedef struct loop_s loop_t;
typedef struct ereq_s ereq_t;

typedef struct conn_s {
    int tag;                   /* TAG_CONN (epoll data points here) */
    int fd;
    loop_t *L;
    osp__dsp_backend_t *b;          /* referenced while the connection lives */
    struct conn_s *iprev, *inext; /* b->ev_idle[L->idx] while idle */
    struct conn_s *aprev, *anext; /* L->conns: all of this loop's */
    ereq_t *e;             /* the attempt using it; NULL = idle */
    uint32_t ev;               /* registered epoll events */
    bool connecting, reused, got_bytes;
    int send_err;              /* the send failed (errno); an early answer
                                  may still be waiting to be read */
    struct iovec iov[2];
    int iov_i, iov_n;
    size_t rlen;
    osp_http_h1resp_t h1;
    uint8_t rbuf[LOOP_RBUF];
} conn_t;

enum { E_NEW = 0, E_WAIT, E_ATTEMPT, E_DONE };

struct ereq_s {
    loop_t *L;
    osp_http_req_t *req;
    osp__dsp_call_t call;
    int state;
    bool queued;               /* counted in the admission queue */
    bool stale_retry;          /* used the one retry of a reused
                                  connection the backend had closed */
    struct ereq_s *prev, *next;   /* L->reqs (waiting or attempting) */
    struct ereq_s *wprev, *wnext; /* L->wait (FIFO) */
    uint64_t timer;            /* next expiry (wait / connect / deadline) */
    const char *method;
    const uint8_t *body;
    size_t body_len;
    osp__dsp_backend_t *tried[DSP_MAX_ATTEMPTS];
    int n_tried;
    osp__dsp_backend_t *b;          /* current attempt's backend (referenced) */
    uint64_t t0;
    conn_t *c;
    size_t hdrs_len, head_len;
    /* The answer: the worker's (has_resp) or an error of our own. */
    bool has_resp;
    int status;
    char content_type[128], ihcl[32], retry_after[32];
    uint8_t *resp_body;
    size_t resp_len;
    att_t last;                /* how the last attempt ended */
    const char *fail_why;
    char fail_backend[DSP_ADDR_MAX];
    osp__dsp_pick_t refused;        /* first pick found nothing: why */
    /* A streamed body: win holds body bytes [win_base, win_base + wlen);
     * this attempt has sent win[0..woff). */
    bool streaming, body_end, body_paused;
    uint8_t *win;
    size_t win_cap, wlen, woff, win_base;
    /* Not cleared per request (written before use). */
    char hdrs[LOOP_HDRS_MAX];  /* forwarded header lines */
    char head[LOOP_HEAD_MAX];  /* this attempt's request head */
};

struct loop_s {
    osp_dispatch_t *d;
    int idx;
    int ep;                    /* epoll fd */
    int kick;                  /* eventfd */
    int tag_front, tag_kick;   /* epoll data targets */
    osp_http_server_t *http;
    pthread_t th;
    bool started;
    atomic_bool quiesce, quiesced, stop;
    bool need_front;           /* a request was resumed outside the front:
                                  run it */
    bool in_front;             /* inside osp_http_server_run */
    bool wake_waiters;         /* retry the wait list */
    ereq_t *reqs;          /* waiting or attempting */
    ereq_t *wait_head, *wait_tail;
    int n_wait;
    conn_t *conns;
    uint64_t next_timer;       /* earliest e->timer (UINT64_MAX: none) */
};

static __thread loop_t *tl_loop; /* the loop running on this thread */

static void attempt_start(ereq_t *e);
static void attempt_done(ereq_t *e, att_t how);
static void conn_read(conn_t *c);

/* ---- lists -------------------------------------------------------------- */

static void reqs_add(loop_t *L, ereq_t *e) {
    e->prev = NULL;
    e->next = L->reqs;
    if (L->reqs)
        L->reqs->prev = e;
    L->reqs = e;
}

static void reqs_del(loop_t *L, ereq_t *e) {
    if (e->prev)
        e->prev->next = e->next;
    else if (L->reqs == e)
        L->reqs = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
}

static void wait_add(loop_t *L, ereq_t *e) {
    e->wnext = NULL;
    e->wprev = L->wait_tail;
    if (L->wait_tail)
        L->wait_tail->wnext = e;
    else
        L->wait_head = e;
    L->wait_tail = e;
    L->n_wait++;
}

static void wait_del(loop_t *L, ereq_t *e) {
    if (e->wprev)
        e->wprev->wnext = e->wnext;
    else
        L->wait_head = e->wnext;
    if (e->wnext)
        e->wnext->wprev = e->wprev;
    else
        L->wait_tail = e->wprev;
    e->wprev = e->wnext = NULL;
    L->n_wait--;
}

static void set_timer(ereq_t *e, uint64_t t) {
    e->timer = t;
    if (t < e->L->next_timer)
        e->L->next_timer = t;
}

/* ---- upstream connections ---------------------------------------------- */

static void conn_events(conn_t *c, uint32_t ev) {
    if (c->ev == ev)
        return;
    struct epoll_event ee = {.events = ev, .data.ptr = c};
    epoll_ctl(c->L->ep, EPOLL_CTL_MOD, c->fd, &ee);
    c->ev = ev;
}

static void idle_del(conn_t *c) {
    osp__dsp_backend_t *b = c->b;
    int i = c->L->idx;
    if (c->iprev)
        c->iprev->inext = c->inext;
    else if (b->ev_idle[i] == c)
        b->ev_idle[i] = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    c->iprev = c->inext = NULL;
}

static void conn_close(conn_t *c) {
    loop_t *L = c->L;
    if (!c->e)
        idle_del(c);
    if (c->aprev)
        c->aprev->anext = c->anext;
    else
        L->conns = c->anext;
    if (c->anext)
        c->anext->aprev = c->aprev;
    close(c->fd); /* also leaves the epoll set */
    osp_http_h1resp_fini(&c->h1);
    osp__dsp_backend_unref(c->b);
    free(c);
}

/* A new non-blocking connection to b (connect started). NULL on failure
 * (errno set). */
static conn_t *conn_open(loop_t *L, osp__dsp_backend_t *b) {
    if (!b->sa_len) {
        errno = EHOSTUNREACH; /* the name did not resolve when added */
        return NULL;
    }
    int fd = socket(b->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bool connecting = false;
    if (connect(fd, (const struct sockaddr *)&b->sa, b->sa_len) < 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            errno = e;
            return NULL;
        }
        connecting = true;
    }
    conn_t *c = malloc(sizeof *c);
    if (!c) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    memset(c, 0, offsetof(conn_t, rbuf));
    c->tag = TAG_CONN;
    c->fd = fd;
    c->L = L;
    c->b = b;
    osp__dsp_backend_ref(b);
    c->connecting = connecting;
    c->ev = EPOLLIN | EPOLLRDHUP | (connecting ? EPOLLOUT : 0);
    struct epoll_event ee = {.events = c->ev, .data.ptr = c};
    if (epoll_ctl(L->ep, EPOLL_CTL_ADD, fd, &ee) < 0) {
        int e = errno;
        osp__dsp_backend_unref(b);
        close(fd);
        free(c);
        errno = e;
        return NULL;
    }
    c->anext = L->conns;
    if (L->conns)
        L->conns->aprev = c;
    L->conns = c;
    return c;
}

/* Detaches c from its attempt: back to the pool when it may carry another
 * request, else closed. */
static void conn_release(conn_t *c, bool reusable) {
    ereq_t *e = c->e;
    if (e)
        e->c = NULL;
    c->e = NULL;
    if (!reusable || c->rlen) {
        c->e = NULL;
        conn_close(c);
        return;
    }
    conn_events(c, EPOLLIN | EPOLLRDHUP);
    int i = c->L->idx;
    c->iprev = NULL;
    c->inext = c->b->ev_idle[i];
    if (c->inext)
        c->inext->iprev = c;
    c->b->ev_idle[i] = c;
}

/* Writes c's iovecs. 1 = all sent, 0 = waiting for EPOLLOUT (requested),
 * < 0 = failed. */
static int conn_send_iov(conn_t *c) {
    while (c->iov_i < c->iov_n) {
        /* sendmsg for MSG_NOSIGNAL: a backend that closed must be an
         * EPIPE here, not a SIGPIPE for the process. */
        struct msghdr m = {.msg_iov = c->iov + c->iov_i,
                           .msg_iovlen = (size_t)(c->iov_n - c->iov_i)};
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_events(c, EPOLLIN | EPOLLRDHUP | EPOLLOUT);
                return 0;
            }
            return -1;
        }
        size_t k = (size_t)n;
        while (c->iov_i < c->iov_n && k >= c->iov[c->iov_i].iov_len) {
            k -= c->iov[c->iov_i].iov_len;
            c->iov_i++;
        }
        if (c->iov_i < c->iov_n) {
            c->iov[c->iov_i].iov_base = (char *)c->iov[c->iov_i].iov_base + k;
            c->iov[c->iov_i].iov_len -= k;
        }
    }
    return 1;
}

/* Writes what is left of the request: the head and a buffered body, then
 * what a streamed body's window holds (as iov[1]). 0 = all sent or
 * waiting for EPOLLOUT; < 0 = failed. */
static int conn_send(conn_t *c) {
    ereq_t *e = c->e;
    /* Once the head is out, iov[1] is loaded from woff each time: on_body
     * may have moved the window's bytes since. */
    int rc = e && e->streaming && c->iov_i >= 1 ? 1 : conn_send_iov(c);
    while (rc == 1 && e && e->streaming && e->woff < e->wlen) {
        c->iov[1].iov_base = e->win + e->woff;
        c->iov[1].iov_len = e->wlen - e->woff;
        c->iov_i = 1;
        c->iov_n = 2;
        rc = conn_send_iov(c);
        e->woff = e->wlen - (c->iov_i < 2 ? c->iov[1].iov_len : 0);
    }
    if (rc <= 0)
        return rc;
    conn_events(c, EPOLLIN | EPOLLRDHUP);
    if (e && e->streaming && e->body_paused) {
        /* The window drained: read the client again. */
        e->body_paused = false;
        osp_http_req_body_resume(e->req);
        if (!e->L->in_front)
            e->L->need_front = true;
    }
    return 0;
}

/* The whole request went out on c. */
static bool conn_sent_all(const conn_t *c) {
    const ereq_t *e = c->e;
    return c->iov_i >= c->iov_n &&
           (!e || !e->streaming || (e->body_end && e->woff == e->wlen));
}

/* Whether a failed attempt of e may be sent again: a streamed body only
 * while every byte of it is still in the window. */
static bool body_resendable(const ereq_t *e) {
    return !e->streaming || e->win_base == 0;
}

/* Points c at e's request from its start: the head, then the buffered
 * body or the window. */
static void conn_load(conn_t *c, ereq_t *e) {
    c->iov[0].iov_base = e->head;
    c->iov[0].iov_len = e->head_len;
    c->iov[1].iov_base = (void *)e->body;
    c->iov[1].iov_len = e->body_len;
    c->iov_i = 0;
    c->iov_n = e->body_len && !e->streaming ? 2 : 1;
    e->woff = 0;
}

/* Sending failed (EPIPE, ECONNRESET): a backend that answered early (413,
 * 415) and closed may have left its answer in our receive buffer — read
 * it before calling the attempt failed. c may be freed on return. */
static void conn_send_failed(conn_t *c, int err) {
    c->send_err = err ? err : EIO;
    c->iov_i = c->iov_n;
    conn_events(c, EPOLLIN | EPOLLRDHUP);
    conn_read(c);
}

/* The answer on c is complete: hand it to the request. */
static void conn_answered(conn_t *c) {
    ereq_t *e = c->e;
    osp_http_h1resp_t *h = &c->h1;
    e->has_resp = true;
    e->status = h->status;
    memcpy(e->content_type, h->content_type, sizeof e->content_type);
    memcpy(e->ihcl, h->ihcl, sizeof e->ihcl);
    memcpy(e->retry_after, h->retry_after, sizeof e->retry_after);
    free(e->resp_body);
    e->resp_body = osp_http_h1resp_take_body(h, &e->resp_len);
    /* An answer that came before the whole request was sent (an early 413
     * or 415) leaves the connection mid-request: not reusable. */
    bool keep = h->keep_alive && conn_sent_all(c) && !c->send_err;
    conn_release(c, keep);
    attempt_done(e, e->resp_body ? ATT_OK : ATT_IO);
}

/* The attempt on c failed (c is closed). A reused connection that the
 * backend closed before answering anything (it timed the idle connection
 * out as we sent) is retried once on a fresh connection to the same
 * backend: that is not the backend failing. */
static void conn_failed(conn_t *c, att_t how, const char *why) {
    ereq_t *e = c->e;
    bool stale = c->reused && !c->got_bytes && how == ATT_IO &&
                 !e->stale_retry && body_resendable(e);
    c->e = NULL;
    e->c = NULL;
    conn_close(c);
    e->fail_why = why;
    if (stale) {
        e->stale_retry = true;
        conn_t *n = conn_open(e->L, e->b);
        if (n) {
            n->e = e;
            e->c = n;
            conn_load(n, e);
            osp_http_h1resp_init(&n->h1, &H1_OPTS);
            if (!n->connecting && conn_send(n) < 0) {
                conn_send_failed(n, errno);
                return;
            }
            if (n->connecting) {
                uint64_t ct = osp_now_ns() +
                              (uint64_t)DSP_CONNECT_TIMEOUT_MS * 1000000u;
                set_timer(e, ct < e->call.deadline ? ct : e->call.deadline);
            }
            return;
        }
        e->fail_why = strerror(errno);
        how = ATT_CONNECT;
    }
    attempt_done(e, how);
}

static void conn_read(conn_t *c) {
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, LOOP_RBUF - c->rlen, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return; /* (after a failed send: the close or answer
                           wakes us, the deadline bounds the wait) */
            if (c->e)
                conn_failed(c, ATT_IO,
                            strerror(c->send_err ? c->send_err : errno));
            else
                conn_close(c);
            return;
        }
        if (n == 0) {
            if (!c->e) {
                conn_close(c); /* an idle connection the backend closed */
                return;
            }
            if (osp_http_h1resp_eof(&c->h1) == 1)
                conn_answered(c);
            else
                conn_failed(c, ATT_IO, c->send_err ? strerror(c->send_err)
                                                   : c->h1.err);
            return;
        }
        if (!c->e) {
            conn_close(c); /* bytes nobody asked for */
            return;
        }
        c->got_bytes = true;
        c->rlen += (size_t)n;
        size_t used = 0;
        int rc = osp_http_h1resp_feed(&c->h1, c->rbuf, c->rlen, &used);
        if (used < c->rlen)
            memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
        if (rc == 1) {
            conn_answered(c);
            return;
        }
        if (rc < 0) {
            conn_failed(c, c->h1.too_big ? ATT_TOO_BIG : ATT_BAD, c->h1.err);
            return;
        }
    }
}

static void conn_event(conn_t *c, uint32_t ev) {
    if (c->connecting) {
        if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
            err = errno;
        if (err) {
            conn_failed(c, ATT_CONNECT, strerror(err));
            return;
        }
        c->connecting = false;
        ereq_t *e = c->e;
        set_timer(e, e->call.deadline);
        if (conn_send(c) < 0) {
            conn_send_failed(c, errno);
            return;
        }
        ev &= ~(uint32_t)EPOLLOUT;
    }
    if ((ev & EPOLLOUT) && c->e && !conn_sent_all(c)) {
        if (conn_send(c) < 0) {
            conn_send_failed(c, errno);
            return;
        }
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_read(c);
}

/* ---- requests ---------------------------------------------------------- */

/* Takes e off the loop's lists and the admission queue: it is done. */
static void req_done(ereq_t *e) {
    loop_t *L = e->L;
    if (e->state == E_WAIT)
        wait_del(L, e);
    if (e->queued) {
        pthread_mutex_lock(&L->d->mu);
        osp__dsp_queue_locked(L->d, e->call.q, -1);
        pthread_mutex_unlock(&L->d->mu);
        e->queued = false;
    }
    reqs_del(L, e);
    e->state = E_DONE;
}

/* Answers the client: the request is resumed and answered by the front
 * (on_resume) on this thread. */
static void finish(ereq_t *e) {
    loop_t *L = e->L;
    req_done(e);
    /* Resumed inside the front (an answer found in the handler): the
     * front runs on_resume itself; otherwise it must run again. */
    if (!L->in_front)
        L->need_front = true;
    osp_http_req_resume(e->req);
}

static void on_resume(osp_http_req_t *req, void *ud) {
    ereq_t *e = ud;
    osp_dispatch_t *d = e->L->d;
    uint64_t now = osp_now_ns();
    if (e->refused != DSP_PICK_OK) {
        osp__dsp_proxy_refuse(req, e->refused, &e->call);
    } else if (e->has_resp) {
        /* The worker's answer (also its last 503 after failed retries),
         * naming the worker (the try-it page shows it). */
        osp_http_add_header(req, "X-Osprey-Backend", e->fail_backend);
        if (e->ihcl[0])
            osp_http_add_header(req, "Inference-Header-Content-Length",
                                e->ihcl);
        if (e->retry_after[0])
            osp_http_add_header(req, "Retry-After", e->retry_after);
        else if (e->status == 503)
            osp_http_add_header(req, "Retry-After", "1");
        osp_http_respond_owned(req, e->status,
                               e->content_type[0] ? e->content_type : NULL,
                               e->resp_body, e->resp_len);
        e->resp_body = NULL;
    } else if (e->last == ATT_DEADLINE || now >= e->call.deadline) {
        osp_http_respond_error(req, 504, "deadline passed (last backend %s: %s)",
                               e->fail_backend,
                               e->fail_why ? e->fail_why : "-");
    } else if (e->last == ATT_BAD || e->last == ATT_TOO_BIG) {
        osp_http_respond_error(req, 502, "backend %s sent a bad answer: %s",
                               e->fail_backend,
                               e->fail_why ? e->fail_why : "-");
    } else {
        /* 503 rather than 502: the client may retry later, as with "no
         * ready backend", which is what this usually is. */
        osp_http_add_header(req, "Retry-After", "1");
        osp_http_respond_error(req, 503, "backend %s failed: %s",
                               e->fail_backend,
                               e->fail_why ? e->fail_why : "-");
    }
    (void)d;
    free(e->resp_body);
    free(e->win);
    free(e);
}

/* The client left while its body streamed: the request ends here, with
 * its attempt (the backend gets a cut request and closes). */
static void stream_abort(ereq_t *e) {
    loop_t *L = e->L;
    if (e->state != E_DONE) {
        if (e->c) {
            conn_t *c = e->c;
            c->e = NULL;
            e->c = NULL;
            conn_close(c);
        }
        if (e->b) {
            osp__dsp_backend_t *b = e->b;
            e->b = NULL;
            osp__dsp_release(L->d, b, -1, e->t0);
        }
        req_done(e);
    }
    free(e->resp_body);
    free(e->win);
    free(e);
}

/* Sends what the window holds when the attempt can take it. */
static void stream_push(ereq_t *e) {
    conn_t *c = e->c;
    if (e->state != E_ATTEMPT || !c || c->connecting || c->send_err)
        return;
    if (conn_send(c) < 0)
        conn_send_failed(c, errno);
}

/* The front's body function of a streamed request. */
static size_t on_body(osp_http_req_t *req, osp_http_body_ev_t ev,
                      const uint8_t *data, size_t len, void *ud) {
    ereq_t *e = ud;
    (void)req;
    if (ev == OSP_HTTP_BODY_ABORT) {
        stream_abort(e);
        return 0;
    }
    if (ev == OSP_HTTP_BODY_END) {
        e->body_end = true;
        stream_push(e);
        return 0;
    }
    size_t took = 0;
    while (took < len && e->state != E_DONE) {
        if (e->wlen == e->win_cap && e->woff > 0) {
            /* Sent bytes leave the window: from here a failed attempt
             * cannot be sent again. */
            memmove(e->win, e->win + e->woff, e->wlen - e->woff);
            e->win_base += e->woff;
            e->wlen -= e->woff;
            e->woff = 0;
        }
        size_t k = e->win_cap - e->wlen;
        if (k == 0)
            break;
        if (k > len - took)
            k = len - took;
        memcpy(e->win + e->wlen, data + took, k);
        e->wlen += k;
        took += k;
        size_t before = e->woff;
        stream_push(e);
        if (e->woff == before && e->wlen == e->win_cap)
            break; /* upstream is not taking more now */
    }
    /* The done hook counts buffered bodies (in
     * osprey_http_received_bytes_total); streamed ones count here. */
    osp_series_add(e->L->d->s_rx, (double)took);
    if (e->state == E_DONE)
        return len; /* answered: the rest is dropped */
    if (took < len)
        e->body_paused = true; /* the front pauses; conn_send resumes */
    return took;
}

/* Chooses the next backend and starts an attempt, or queues the request,
 * or answers it. */
static void next_attempt(ereq_t *e) {
    loop_t *L = e->L;
    osp_dispatch_t *d = L->d;
    osp__dsp_backend_t *b = NULL;
    uint64_t t0 = 0;
    pthread_mutex_lock(&d->mu);
    osp__dsp_pick_t p = osp__dsp_pick_locked(d, e->call.model, e->tried,
                                             e->n_tried, &b, &t0);
    if (p == DSP_PICK_BUSY) {
        if (osp_now_ns() >= e->call.wait_until)
            p = DSP_PICK_TIMEOUT;
        else if (!e->queued) {
            if (e->call.q->waiting >= d->o.queue_size) {
                p = DSP_PICK_FULL;
            } else {
                osp__dsp_queue_locked(d, e->call.q, 1);
                e->queued = true;
            }
        }
    }
    if (p != DSP_PICK_BUSY && e->queued) {
        osp__dsp_queue_locked(d, e->call.q, -1);
        e->queued = false;
    }
    pthread_mutex_unlock(&d->mu);
    if (p == DSP_PICK_BUSY) {
        if (e->state != E_WAIT) {
            e->state = E_WAIT;
            wait_add(L, e);
        }
        set_timer(e, e->call.wait_until);
        return;
    }
    if (e->state == E_WAIT)
        wait_del(L, e);
    e->state = E_ATTEMPT;
    if (p != DSP_PICK_OK) {
        if (e->n_tried == 0)
            e->refused = p; /* nothing tried: 404 / 503 */
        finish(e);
        return;
    }
    e->b = b;
    e->t0 = t0;
    e->tried[e->n_tried++] = b;
    attempt_start(e);
}

static void attempt_start(ereq_t *e) {
    osp__dsp_backend_t *b = e->b;
    uint64_t now = osp_now_ns();
    if (now >= e->call.deadline) {
        e->fail_why = "deadline passed";
        attempt_done(e, ATT_DEADLINE);
        return;
    }
    int64_t left_ms = (int64_t)(e->call.deadline - now) / 1000000;
    int n = snprintf(e->head, sizeof e->head,
                     "%s %s HTTP/1.1\r\nHost: %s\r\n%.*s"
                     "X-Request-Timeout-Ms: %lld\r\n\r\n",
                     e->method, e->call.path, b->addr, (int)e->hdrs_len,
                     e->hdrs, (long long)(left_ms > 0 ? left_ms : 1));
    if (n < 0 || (size_t)n >= sizeof e->head) {
        e->fail_why = "request head too long";
        attempt_done(e, ATT_BAD);
        return;
    }
    e->head_len = (size_t)n;
    /* An idle pooled connection (this loop's) first, else a new one. */
    conn_t *c = b->ev_idle[e->L->idx];
    if (c) {
        idle_del(c);
        c->reused = true;
    } else if (!(c = conn_open(e->L, b))) {
        e->fail_why = strerror(errno);
        attempt_done(e, ATT_CONNECT);
        return;
    } else {
        c->reused = false;
    }
    c->e = e;
    e->c = c;
    c->got_bytes = false;
    c->send_err = 0;
    conn_load(c, e);
    osp_http_h1resp_init(&c->h1, &H1_OPTS);
    if (c->connecting) {
        uint64_t ct = now + (uint64_t)DSP_CONNECT_TIMEOUT_MS * 1000000u;
        set_timer(e, ct < e->call.deadline ? ct : e->call.deadline);
        return;
    }
    set_timer(e, e->call.deadline);
    if (conn_send(c) < 0)
        conn_send_failed(c, errno);
}

static void attempt_done(ereq_t *e, att_t how) {
    loop_t *L = e->L;
    osp_dispatch_t *d = L->d;
    osp__dsp_backend_t *b = e->b;
    uint64_t now = osp_now_ns();
    bool retriable, counts_failure;
    int outcome;
    if (e->c) { /* a timeout: the connection is in an unknown state */
        conn_t *c = e->c;
        c->e = NULL;
        e->c = NULL;
        conn_close(c);
    }
    switch (how) {
    case ATT_OK:
        retriable = e->status == 503 && body_resendable(e);
        /* 503 is overload or draining (health handles draining); 504 is
         * the request's own deadline: neither says the backend is
         * broken. */
        counts_failure = e->status >= 500 && e->status != 503 &&
                         e->status != 504;
        outcome = counts_failure ? 0
                  : e->status == 503 ? DSP_OUTCOME_OVERLOADED : 1;
        break;
    case ATT_TOO_BIG: /* the same answer from any backend */
    case ATT_DEADLINE:
        retriable = counts_failure = false;
        outcome = -1;
        break;
    default: /* connect error, reset, early close, garbage */
        retriable = now < e->call.deadline && body_resendable(e);
        counts_failure = true;
        outcome = 0;
        break;
    }
    if (how != ATT_OK)
        e->has_resp = false; /* only the last attempt's 503 is answered */
    e->last = how;
    snprintf(e->fail_backend, sizeof e->fail_backend, "%s", b->addr);
    e->b = NULL;
    osp__dsp_release(d, b, outcome, e->t0);
    if (how == ATT_OK && !retriable) {
        finish(e);
        return;
    }
    if (how == ATT_OK)
        e->fail_why = "503";
    if (!retriable || e->n_tried >= DSP_MAX_ATTEMPTS ||
        osp_now_ns() >= e->call.deadline || !osp__dsp_retry_allowed(d)) {
        finish(e);
        return;
    }
    osp_series_inc(d->s_retries);
    next_attempt(e);
}

/* Expired timers of this loop's requests; recomputes next_timer. */
static void run_timers(loop_t *L, uint64_t now) {
    uint64_t next = UINT64_MAX;
    ereq_t *e = L->reqs, *nx;
    for (; e; e = nx) {
        nx = e->next;
        if (e->timer > now) {
            if (e->timer < next)
                next = e->timer;
            continue;
        }
        if (e->state == E_WAIT) {
            /* Admission wait over: one last try, then 503 (or, after a
             * failed attempt, that attempt's answer). */
            next_attempt(e);
            if (e->state == E_WAIT) {
                wait_del(L, e);
                e->state = E_ATTEMPT;
                if (e->n_tried == 0)
                    e->refused = DSP_PICK_TIMEOUT;
                finish(e);
            }
        } else if (e->c && e->c->connecting && now < e->call.deadline) {
            e->fail_why = "connect timeout";
            attempt_done(e, ATT_CONNECT);
        } else {
            e->fail_why = "deadline passed";
            attempt_done(e, ATT_DEADLINE);
        }
    }
    /* Requests started or re-armed by the handling above lowered
     * L->next_timer through set_timer; keep the lower of the two. */
    for (e = L->reqs; e; e = e->next)
        if (e->timer < next)
            next = e->timer;
    L->next_timer = next;
}

static void run_waiters(loop_t *L) {
    L->wake_waiters = false;
    ereq_t *e = L->wait_head, *nx;
    int n = L->n_wait;
    for (; e && n-- > 0; e = nx) {
        nx = e->wnext;
        next_attempt(e);
    }
}

/* The proxied routes on the event path. */
static void h_proxy_ev(osp_http_req_t *req, void *ud) {
    loop_t *L = ud;
    osp_dispatch_t *d = L->d;
    ereq_t *e = malloc(sizeof *e);
    if (!e) {
        osp_http_respond_error(req, 500, "out of memory");
        return;
    }
    memset(e, 0, offsetof(ereq_t, hdrs));
    e->refused = DSP_PICK_OK;
    e->last = ATT_OK;
    if (osp__dsp_proxy_begin(d, req, &e->call)) {
        free(e);
        return;
    }
    e->L = L;
    e->req = req;
    e->method = osp_http_req_method(req);
    e->body = osp_http_req_body(req, &e->body_len);
    size_t declared;
    if (osp_http_req_streaming(req, &declared)) {
        e->win_cap = declared <= LOOP_RETRY_COPY ? declared : LOOP_WINDOW;
        if (osp_http_req_reserve(req, e->win_cap) < 0) {
            free(e);
            osp_http_respond_over_budget(req);
            return;
        }
        if (!(e->win = malloc(e->win_cap))) {
            free(e);
            osp_http_respond_error(req, 500, "out of memory");
            return;
        }
        e->streaming = true;
        e->body = NULL;
        e->body_len = declared;
        osp_http_req_stream(req, on_body, e);
    }
    /* Forwarded headers, once for every attempt. */
    static const char *const fwd[] = {"Content-Type",
                                      "Inference-Header-Content-Length",
                                      "Accept"};
    size_t n = 0;
    for (size_t i = 0; i < OSP_ARRAY_LEN(fwd); i++) {
        const char *v = osp_http_req_header(req, fwd[i]);
        if (v && strlen(v) < 400) /* 3 × 440 + the two below fit */
            n += (size_t)snprintf(e->hdrs + n, sizeof e->hdrs - n,
                                  "%s: %s\r\n", fwd[i], v);
    }
    if (strcmp(e->method, "GET"))
        n += (size_t)snprintf(e->hdrs + n, sizeof e->hdrs - n,
                              "Content-Length: %zu\r\n", e->body_len);
    n += (size_t)snprintf(e->hdrs + n, sizeof e->hdrs - n,
                          "X-Request-Id: %s\r\n", osp_http_req_id(req));
    e->hdrs_len = n < sizeof e->hdrs ? n : sizeof e->hdrs - 1;
    osp_http_req_suspend(req, on_resume, e);
    reqs_add(L, e);
    e->timer = UINT64_MAX;
    next_attempt(e); /* may answer at once (then on_resume runs after us) */
}

/* ---- the loop ---------------------------------------------------------- */

/* Answers everything still open (shutdown). */
static void abort_all(loop_t *L) {
    while (L->reqs) {
        ereq_t *e = L->reqs;
        if (e->state == E_ATTEMPT && e->b) {
            e->fail_why = "shutting down";
            if (e->c) {
                conn_t *c = e->c;
                c->e = NULL;
                e->c = NULL;
                conn_close(c);
            }
            osp__dsp_backend_t *b = e->b;
            e->b = NULL;
            snprintf(e->fail_backend, sizeof e->fail_backend, "%s", b->addr);
            osp__dsp_release(L->d, b, -1, e->t0);
            e->last = ATT_IO;
        } else if (e->n_tried == 0) {
            e->refused = DSP_PICK_NONE;
        }
        finish(e);
    }
}

static void *loop_main(void *arg) {
    loop_t *L = arg;
    tl_loop = L;
    struct epoll_event evs[LOOP_EVENTS];
    int64_t front_ms = 0;
    bool run_front = true;
    for (;;) {
        if (atomic_load(&L->quiesce) && !atomic_load(&L->quiesced)) {
            osp_http_server_quiesce(L->http);
            atomic_store(&L->quiesced, true);
        }
        if (atomic_load(&L->stop))
            break;
        if (run_front || L->need_front) {
            L->need_front = false;
            L->in_front = true;
            front_ms = osp_http_server_run(L->http);
            /* "More to do at once" (libmicrohttpd reads edge-triggered
             * sockets until EAGAIN, one pass at a time): run it again
             * rather than paying an epoll_wait(0) for each pass. */
            for (int k = 0; k < 3 && front_ms == 0; k++)
                front_ms = osp_http_server_run(L->http);
            L->in_front = false;
            run_front = false;
        }
        uint64_t now = osp_now_ns();
        int64_t wait_ms = front_ms;
        if (L->next_timer != UINT64_MAX) {
            int64_t t = L->next_timer > now
                            ? (int64_t)((L->next_timer - now + 999999) /
                                        1000000)
                            : 0;
            if (wait_ms < 0 || t < wait_ms)
                wait_ms = t;
        }
        if (L->n_wait > 0 && (wait_ms < 0 || wait_ms > LOOP_WAIT_POLL_MS))
            wait_ms = LOOP_WAIT_POLL_MS;
        if (wait_ms > 1000 || wait_ms < 0)
            wait_ms = 1000; /* quiesce/stop flags are also checked here */
        int n = epoll_wait(L->ep, evs, LOOP_EVENTS, (int)wait_ms);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            int *tag = evs[i].data.ptr;
            if (*tag == TAG_FRONT) {
                run_front = true;
            } else if (*tag == TAG_KICK) {
                uint64_t v;
                ssize_t r = read(L->kick, &v, sizeof v);
                (void)r; /* EAGAIN: another wake-up already read it */
                L->wake_waiters = true;
            } else {
                conn_event((conn_t *)tag, evs[i].events);
            }
        }
        now = osp_now_ns();
        if (L->wake_waiters || (L->n_wait > 0 && n == 0))
            run_waiters(L);
        if (now >= L->next_timer)
            run_timers(L, now);
        if (n == 0)
            run_front = true; /* the front's own timeouts */
    }
    /* Shutdown: answer what is left, let the front send it. */
    abort_all(L);
    for (int i = 0; i < 2000 && osp_http_server_inflight(L->http) > 0; i++) {
        osp_http_server_run(L->http);
        if (osp_http_server_inflight(L->http) > 0)
            usleep(1000);
    }
    osp_http_server_run(L->http);
    while (L->conns)
        conn_close(L->conns);
    return NULL;
}

static void loop_free(loop_t *L) {
    if (!L)
        return;
    osp_http_server_destroy(L->http);
    if (L->ep >= 0)
        close(L->ep);
    if (L->kick >= 0)
        close(L->kick);
    free(L);
}

void osp__dsp_loops_kick(osp_dispatch_t *d) {
    for (int i = 0; i < d->n_loops; i++) {
        loop_t *L = d->loops[i];
        if (L == tl_loop) {
            L->wake_waiters = true; /* this thread: no syscall */
            continue;
        }
        uint64_t one = 1;
        ssize_t w = write(L->kick, &one, sizeof one);
        (void)w; /* a full counter still wakes the loop */
    }
}

int osp__dsp_loops_start(osp_dispatch_t *d, int n, osp_err_t *err) {
    if (n < 1)
        n = 1;
    if (n > DSP_MAX_LOOPS)
        n = DSP_MAX_LOOPS;
    if (!(d->loops = calloc((size_t)n, sizeof *d->loops)))
        return osp_err_set(err, OSP_ENOMEM, "dispatch: out of memory");
    int port = d->o.port;
    for (int i = 0; i < n; i++) {
        loop_t *L = calloc(1, sizeof *L);
        if (!L)
            return osp_err_set(err, OSP_ENOMEM, "dispatch: out of memory");
        L->d = d;
        L->idx = i;
        L->ep = L->kick = -1;
        L->tag_front = TAG_FRONT;
        L->tag_kick = TAG_KICK;
        L->next_timer = UINT64_MAX;
        d->loops[d->n_loops++] = L;
        osp_http_opts_t ho;
        osp__dsp_front_opts(d, n, &ho);
        ho.port = port; /* the first loop's port when 0 was asked */
        ho.mode = OSP_HTTP_EXTERNAL;
        if (!(L->http = osp_http_server_create(&ho, err)))
            return err ? err->code : OSP_EINTERNAL;
        osp_http_on_done(L->http, osp__dsp_on_done, d);
        if (osp__dsp_own_routes(d, L->http) < 0 || osp__dsp_proxy_routes(L->http, h_proxy_ev, L,
                                  LOOP_WINDOW + 1) < 0)
            return osp_err_set(err, OSP_EINTERNAL,
                               "dispatch: cannot register routes");
        if (osp_http_server_start(L->http, err) < 0)
            return err ? err->code : OSP_EIO;
        port = osp_http_server_port(L->http);
        if ((L->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
            (L->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
            return osp_err_set(err, OSP_EIO, "dispatch: epoll/eventfd: %s",
                               strerror(errno));
        struct epoll_event fe = {.events = EPOLLIN,
                                 .data.ptr = &L->tag_front};
        struct epoll_event ke = {.events = EPOLLIN, .data.ptr = &L->tag_kick};
        if (epoll_ctl(L->ep, EPOLL_CTL_ADD, osp_http_server_fd(L->http),
                      &fe) < 0 ||
            epoll_ctl(L->ep, EPOLL_CTL_ADD, L->kick, &ke) < 0)
            return osp_err_set(err, OSP_EIO, "dispatch: epoll_ctl: %s",
                               strerror(errno));
    }
    for (int i = 0; i < d->n_loops; i++) {
        if (pthread_create(&d->loops[i]->th, NULL, loop_main, d->loops[i]))
            return osp_err_set(err, OSP_EIO,
                               "dispatch: cannot start loop thread");
        d->loops[i]->started = true;
    }
    return 0;
}

int osp__dsp_loops_port(const osp_dispatch_t *d) {
    return d->n_loops ? osp_http_server_port(d->loops[0]->http) : 0;
}

int osp__dsp_loops_stop(osp_dispatch_t *d, uint64_t until_ns) {
    if (!d->loops)
        return 0;
    /* Stop accepting (each loop quiesces its own front), then wait for
     * in-flight requests. */
    for (int i = 0; i < d->n_loops; i++) {
        atomic_store(&d->loops[i]->quiesce, true);
        if (!d->loops[i]->started)
            atomic_store(&d->loops[i]->quiesced, true);
    }
    osp__dsp_loops_kick(d);
    int busy;
    for (;;) {
        busy = 0;
        for (int i = 0; i < d->n_loops; i++)
            busy += !atomic_load(&d->loops[i]->quiesced) ||
                    osp_http_server_inflight(d->loops[i]->http) > 0;
        if (!busy || osp_now_ns() >= until_ns)
            break;
        usleep(10000);
    }
    for (int i = 0; i < d->n_loops; i++)
        atomic_store(&d->loops[i]->stop, true);
    osp__dsp_loops_kick(d);
    for (int i = 0; i < d->n_loops; i++)
        if (d->loops[i]->started)
            pthread_join(d->loops[i]->th, NULL);
    /* Other threads kick loops under d->mu: no kick after this. */
    pthread_mutex_lock(&d->mu);
    int n = d->n_loops;
    d->n_loops = 0;
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < n; i++)
        loop_free(d->loops[i]);
    free(d->loops);
    d->loops = NULL;
    return busy ? OSP_ETIMEDOUT : 0;
}
