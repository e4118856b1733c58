/* slow.c — slow-client deadlines for the HTTP server wrapper: a whole-head
 * deadline (as HAProxy's `timeout http-request`, nginx's
 * client_header_timeout) and a minimum body rate (as Apache's
 * mod_reqtimeout MinRate), which libmicrohttpd 0.9.75 does not have: its
 * only timeout is reset by every byte received, so a client sending a
 * header byte every few seconds keeps its connection, and its slot of the
 * connection limit, for as long as it likes (issue 17: 600 such clients made
 * the dispatcher unavailable). Design and alternatives:
 * docs/adr/0045-slow-clients.md.
 *
 * server.c reports each connection's phase from libmicrohttpd's callbacks
 * (accepted, request line, head complete, body bytes, handled, answered,
 * closed); a sweep, every OSP__HTTP_SLOW_TICK_MS, shuts down the socket of a
 * connection past its deadline (shutdown(2), not close: the descriptor stays
 * libmicrohttpd's, which reads the end of stream and closes the connection
 * through its usual path). The sweep runs on the owner's event loop
 * (EXTERNAL mode, from osp_http_server_run) or on a thread of its own
 * (EPOLL and THREADS modes, where libmicrohttpd's threads own the
 * connections). The sweep and the "closed" report hold the same lock, and
 * libmicrohttpd reports a connection closed before it closes its socket, so
 * the sweep never shuts down a descriptor that was reused meanwhile. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "http/http_int.h"
#include "osprey/metrics.h"

typedef enum conn_phase_e {
    PHASE_HEAD = 0, /* waiting for a request head: deadline */
    PHASE_BODY,     /* receiving a body: minimum rate */
    PHASE_BUSY,     /* being handled or answered: none of ours */
    PHASE_IDLE      /* keep-alive between requests: deadline */
} conn_phase_t;

struct osp__http_conn_s {
    osp__http_conn_t *prev, *next;
    int fd;
    conn_phase_t phase;
    bool shut;             /* shut down by a sweep already */
    uint64_t deadline_ns;  /* HEAD, IDLE; 0 = none */
    uint64_t body_ns;      /* BODY: when the head was complete */
    uint64_t body_bytes;   /* BODY: received so far */
};

struct osp__http_slow_s {
    osp__http_slow_opts_t o;
    uint64_t header_ns, idle_ns, grace_ns;
    pthread_mutex_t mu;
    osp__http_conn_t *conns; /* under mu */
    int n_conns;
    uint64_t next_sweep_ns;
    atomic_ullong closes[OSP_HTTP_SLOW_COUNT];
    /* the sweeper thread (EPOLL, THREADS) */
    bool thread_on, stop;
    pthread_t thread;
    pthread_cond_t cv; /* CLOCK_MONOTONIC; signals stop */
};

const char *osp_http_slow_reason_name(osp_http_slow_reason_t why) {
    static const char *const names[] = {"header", "body"};
    return (unsigned)why < OSP_HTTP_SLOW_COUNT ? names[why] : "unknown";
}

osp__http_slow_t *osp__http_slow_create(const osp__http_slow_opts_t *o) {
    osp__http_slow_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->o = *o;
    t->header_ns = o->header_timeout_s > 0
                       ? (uint64_t)o->header_timeout_s * 1000000000ull
                       : 0;
    t->idle_ns = (uint64_t)(o->idle_timeout_s > 0 ? o->idle_timeout_s : 0) *
                     1000000000ull + t->header_ns;
    /* A body gets the head's allowance before its rate counts (a client
     * may pause between head and body, e.g. for 100 Continue). */
    t->grace_ns = (uint64_t)(o->header_timeout_s > 0
                                 ? o->header_timeout_s
                                 : OSP_HTTP_DEFAULT_HEADER_TIMEOUT_S) *
                  1000000000ull;
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    return t;
}

bool osp__http_slow_enabled(const osp__http_slow_t *t) {
    return t && (t->header_ns > 0 || t->o.min_body_rate > 0);
}

static void *sweeper(void *arg) {
    osp__http_slow_t *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += OSP__HTTP_SLOW_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        if (t->stop)
            break;
        pthread_mutex_unlock(&t->mu);
        osp__http_slow_sweep(t, osp_now_ns());
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int osp__http_slow_thread_start(osp__http_slow_t *t) {
    if (pthread_create(&t->thread, NULL, sweeper, t) != 0)
        return OSP_EIO;
    t->thread_on = true;
    return 0;
}

void osp__http_slow_destroy(osp__http_slow_t *t) {
    if (!t)
        return;
    if (t->thread_on) {
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    while (t->conns) {
        osp__http_conn_t *c = t->conns;
        t->conns = c->next;
        free(c);
    }
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

osp__http_conn_t *osp__http_slow_add(osp__http_slow_t *t, int fd) {
    osp__http_conn_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    c->phase = PHASE_HEAD;
    /* A new connection's first head counts from the accept (as nginx's
     * client_header_timeout): a connection that sends nothing, or its
     * request line slowly, is as costly as one slow in its headers. */
    c->deadline_ns = t->header_ns ? osp_now_ns() + t->header_ns : 0;
    pthread_mutex_lock(&t->mu);
    c->next = t->conns;
    if (t->conns)
        t->conns->prev = c;
    t->conns = c;
    t->n_conns++;
    pthread_mutex_unlock(&t->mu);
    return c;
}

void osp__http_slow_remove(osp__http_slow_t *t, osp__http_conn_t *c) {
    if (!c)
        return;
    pthread_mutex_lock(&t->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    t->n_conns--;
    pthread_mutex_unlock(&t->mu);
    free(c);
}

void osp__http_slow_line(osp__http_slow_t *t, osp__http_conn_t *c) {
    if (!c)
        return;
    pthread_mutex_lock(&t->mu);
    if (c->phase == PHASE_IDLE) {
        /* The next request on a keep-alive connection: its head within the
         * header timeout of its first line, and never later than the idle
         * deadline already set. */
        uint64_t d = t->header_ns ? osp_now_ns() + t->header_ns : 0;
        if (d && (!c->deadline_ns || d < c->deadline_ns))
            c->deadline_ns = d;
        c->phase = PHASE_HEAD;
    }
    pthread_mutex_unlock(&t->mu);
}

void osp__http_slow_head(osp__http_slow_t *t, osp__http_conn_t *c) {
    if (!c)
        return;
    pthread_mutex_lock(&t->mu);
    c->phase = PHASE_BODY;
    c->deadline_ns = 0;
    c->body_ns = osp_now_ns();
    c->body_bytes = 0;
    pthread_mutex_unlock(&t->mu);
}

/* BODY: the time by which body_bytes would have to have arrived at the
 * minimum rate, after the grace; under mu. */
static uint64_t body_deadline(const osp__http_slow_t *t,
                              const osp__http_conn_t *c) {
    return c->body_ns + t->grace_ns +
           (uint64_t)((double)c->body_bytes / t->o.min_body_rate * 1e9);
}

static void count(osp__http_slow_t *t, osp_http_slow_reason_t why, int n) {
    atomic_fetch_add(&t->closes[why], (unsigned long long)n);
    osp_series_add(t->o.closes[why], n);
}

bool osp__http_slow_body(osp__http_slow_t *t, osp__http_conn_t *c,
                         size_t n) {
    if (!c)
        return true;
    bool ok = true;
    pthread_mutex_lock(&t->mu);
    if (c->phase == PHASE_BODY) {
        c->body_bytes += n;
        if (t->o.min_body_rate > 0 && osp_now_ns() > body_deadline(t, c)) {
            ok = false;
            c->phase = PHASE_BUSY; /* answered (408) by the caller */
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (!ok)
        count(t, OSP_HTTP_SLOW_BODY, 1);
    return ok;
}

void osp__http_slow_busy(osp__http_slow_t *t, osp__http_conn_t *c) {
    if (!c)
        return;
    pthread_mutex_lock(&t->mu);
    c->phase = PHASE_BUSY;
    c->deadline_ns = 0;
    pthread_mutex_unlock(&t->mu);
}

void osp__http_slow_idle(osp__http_slow_t *t, osp__http_conn_t *c) {
    if (!c)
        return;
    pthread_mutex_lock(&t->mu);
    c->phase = PHASE_IDLE;
    /* libmicrohttpd's idle timeout (idle_timeout_s) closes a connection
     * that sends nothing; this later deadline catches only one that
     * dribbles bytes without ever completing a request line. */
    c->deadline_ns = t->header_ns ? osp_now_ns() + t->idle_ns : 0;
    pthread_mutex_unlock(&t->mu);
}

int64_t osp__http_slow_sweep(osp__http_slow_t *t, uint64_t now) {
    int n_closed[OSP_HTTP_SLOW_COUNT] = {0};
    int64_t ms;
    pthread_mutex_lock(&t->mu);
    if (!t->conns) {
        pthread_mutex_unlock(&t->mu);
        return -1;
    }
    if (now >= t->next_sweep_ns) {
        for (osp__http_conn_t *c = t->conns; c; c = c->next) {
            int why = -1;
            if (c->shut)
                continue;
            if ((c->phase == PHASE_HEAD || c->phase == PHASE_IDLE) &&
                c->deadline_ns && now >= c->deadline_ns)
                why = OSP_HTTP_SLOW_HEADER;
            else if (c->phase == PHASE_BODY && t->o.min_body_rate > 0 &&
                     now >= body_deadline(t, c))
                why = OSP_HTTP_SLOW_BODY;
            if (why < 0)
                continue;
            /* Both directions: the client sees the end of stream at once
             * (no answer: it never completed a request), and
             * libmicrohttpd's next read sees it too. */
            shutdown(c->fd, SHUT_RDWR);
            c->shut = true;
            n_closed[why]++;
        }
        t->next_sweep_ns = now + OSP__HTTP_SLOW_TICK_MS * 1000000ull;
    }
    ms = (int64_t)((t->next_sweep_ns - now + 999999) / 1000000);
    pthread_mutex_unlock(&t->mu);
    for (int w = 0; w < OSP_HTTP_SLOW_COUNT; w++)
        if (n_closed[w])
            count(t, (osp_http_slow_reason_t)w, n_closed[w]);
    return ms;
}

uint64_t osp__http_slow_closes(const osp__http_slow_t *t,
                               osp_http_slow_reason_t why) {
    if (!t || (unsigned)why >= OSP_HTTP_SLOW_COUNT)
        return 0;
    return atomic_load(&((osp__http_slow_t *)t)->closes[why]);
}
