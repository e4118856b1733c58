/* run.c — one load-generator run: URL resolution, the open-loop schedule or
 * the closed-loop users, the queue of due requests, dispatch onto the
 * connection pool (client.c), and the accounting (histogram, per-second
 * series, error classes) that report.c prints.
 *
 * Open loop: requests fall due at the arrival times (arrivals.c) whether or
 * not earlier ones were answered. A due request waits in a FIFO until a
 * connection is free; its latency is measured from the time it fell due,
 * and its timeout too, so queueing in the client is charged to the run and
 * never hidden (no coordinated omission). Closed loop: `concurrency` users
 * each send, wait for the answer, think, and send again until the duration
 * is over. Both drain at the end: requests in flight get until their
 * deadline (timeout_ms after they fell due), so the run always ends.
 *
 * The summary leaves out requests that fell due during the warm-up (the
 * onset, before a server's controllers have reacted); the time series
 * keeps every request. Answers are also kept apart by status (< 400 and
 * >= 400), since under load shedding the latency of the admitted and that
 * of the refused are two different questions. */
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>

#include "load/load_int.h"

#define MAX_PENDING (1 << 22)          /* due requests waiting for a conn */
#define EXPIRE_EVERY_NS 5000000ull     /* timeout scan period */
#define CONNECT_BACKOFF_NS 10000000ull /* closed loop: after a failed connect */
#define STOP_GRACE_NS 5000000000ull    /* in-flight wait after a stop */

struct osp_load_s {
    osp_load_opts_t o;
    osp_load_corpus_t *corpus;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    osp__load_client_t *client;
    osp_load_arrivals_t *arrivals;
    volatile sig_atomic_t stop;

    /* the due-request FIFO (a ring; retries go to the front) */
    osp__load_req_t *q;
    size_t q_cap, q_head, q_len;

    uint64_t start_ns, end_ns;  /* end of scheduling */
    uint64_t rr;                /* round-robin cursor */
    uint64_t rng;               /* --order random */
    int closed;                 /* scheduling over (end or stop) */

    osp_load_hist_t *hist, *sec_hist;
    osp_load_hist_t *hist_ok, *hist_err; /* summary: by status class */
    uint64_t warm_ns;           /* requests due before it: series only */
    osp_load_second_t *series;
    int n_series, cap_series;
    int cur_sec;
    osp_load_summary_t sum;
    int oom;                    /* the series could not grow */
};

static const char *const mode_names[OSP_LOAD_MODE_COUNT] = {"open", "closed"};
static const char *const fail_names[OSP_LOAD_FAIL_COUNT] = {
    "connect", "timeout", "read", "parse", "dropped"};

const char *osp_load_mode_name(osp_load_mode_t m) {
    return (unsigned)m < OSP_LOAD_MODE_COUNT ? mode_names[m] : "?";
}

const char *osp_load_fail_name(osp_load_fail_t f) {
    return (unsigned)f < OSP_LOAD_FAIL_COUNT ? fail_names[f] : "?";
}

void osp_load_opts_init(osp_load_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->mode = OSP_LOAD_OPEN;
    o->arrival = OSP_LOAD_ARRIVAL_CONSTANT;
    o->seed = 1;
    o->concurrency = 10;
    o->duration_s = 10;
    o->target = OSP_LOAD_TARGET_MULTIPART;
    o->connections = 256;
    o->timeout_ms = 30000;
}

/* http://host[:port][/path] → address, Host header, path. */
static int parse_url(osp_load_t *l, const char *url, char *host_hdr,
                     size_t host_cap, const char **path, osp_err_t *err) {
    if (!url || strncmp(url, "http://", 7)) {
        if (url && !strncmp(url, "https://", 8))
            return osp_err_set(err, OSP_EUNSUPPORTED, "--url %s: https is not "
                               "supported (plain http only)", url);
        return osp_err_set(err, OSP_EINVAL, "--url '%s' must start with "
                           "http:// (e.g. http://127.0.0.1:8080)",
                           url ? url : "");
    }
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    *path = slash ? slash : "";
    if (!hl || hl >= host_cap || memchr(h, '@', hl) || strpbrk(*path, " \r\n?#"))
        return osp_err_set(err, OSP_EINVAL, "--url '%s': bad host or path "
                           "(no user info, query or fragment)", url);
    memcpy(host_hdr, h, hl);
    host_hdr[hl] = 0;
    char name[256], port[16] = "80";
    const char *pe;
    if (h[0] == '[') {
        const char *rb = memchr(h, ']', hl);
        if (!rb || (size_t)(rb - h - 1) >= sizeof name)
            return osp_err_set(err, OSP_EINVAL, "--url '%s': bad IPv6 host",
                               url);
        memcpy(name, h + 1, (size_t)(rb - h - 1));
        name[rb - h - 1] = 0;
        pe = rb + 1;
    } else {
        const char *colon = memchr(h, ':', hl);
        size_t nl = colon ? (size_t)(colon - h) : hl;
        if (!nl || nl >= sizeof name)
            return osp_err_set(err, OSP_EINVAL, "--url '%s': bad host", url);
        memcpy(name, h, nl);
        name[nl] = 0;
        pe = h + nl;
    }
    if (pe < h + hl) {
        size_t pl = (size_t)(h + hl - pe - 1);
        if (*pe != ':' || !pl || pl > 5 ||
            strspn(pe + 1, "0123456789") < pl)
            return osp_err_set(err, OSP_EINVAL, "--url '%s': bad port", url);
        memcpy(port, pe + 1, pl);
        port[pl] = 0;
        long pn = strtol(port, NULL, 10);
        if (pn < 1 || pn > 65535)
            return osp_err_set(err, OSP_EINVAL, "--url '%s': port out of "
                               "range", url);
    } else if (pe != h + hl) {
        return osp_err_set(err, OSP_EINVAL, "--url '%s': bad host", url);
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gr = getaddrinfo(name, port, &hints, &res);
    if (gr || !res)
        return osp_err_set(err, OSP_ENOENT, "--url '%s': cannot resolve "
                           "'%s': %s", url, name, gai_strerror(gr));
    memcpy(&l->addr, res->ai_addr, res->ai_addrlen);
    l->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void osp_load_destroy(osp_load_t *l) {
    if (!l)
        return;
    osp__load_client_destroy(l->client);
    osp_load_arrivals_destroy(l->arrivals);
    osp_load_corpus_destroy(l->corpus);
    osp_load_hist_destroy(l->hist);
    osp_load_hist_destroy(l->sec_hist);
    osp_load_hist_destroy(l->hist_ok);
    osp_load_hist_destroy(l->hist_err);
    free(l->q);
    free(l->series);
    free(l);
}

osp_load_t *osp_load_create(const osp_load_opts_t *o, osp_err_t *err) {
    osp_load_t *l = calloc(1, sizeof *l);
    if (!l) {
        osp_err_set(err, OSP_ENOMEM, "out of memory");
        return NULL;
    }
    l->o = *o;
    if ((unsigned)o->mode >= OSP_LOAD_MODE_COUNT) {
        osp_err_set(err, OSP_EINVAL, "unknown mode");
        goto fail;
    }
    if (o->mode == OSP_LOAD_OPEN &&
        (!o->profile || osp_load_profile_duration_s(o->profile) <= 0)) {
        osp_err_set(err, OSP_EINVAL, "open loop needs a rate profile");
        goto fail;
    }
    if (o->mode == OSP_LOAD_CLOSED &&
        (o->concurrency < 1 || o->concurrency > OSP_LOAD_MAX_CONNECTIONS ||
         !(o->duration_s > 0) || o->think_ms < 0)) {
        osp_err_set(err, OSP_EINVAL, "closed loop needs 1..%d users, a "
                    "positive duration and think time >= 0",
                    OSP_LOAD_MAX_CONNECTIONS);
        goto fail;
    }
    double len_s = o->mode == OSP_LOAD_CLOSED
                       ? o->duration_s
                       : osp_load_profile_duration_s(o->profile);
    if (!(o->warmup_s >= 0) || (o->warmup_s > 0 && o->warmup_s >= len_s)) {
        osp_err_set(err, OSP_EINVAL, "the warm-up (%g s) must be shorter "
                    "than the run (%g s)", o->warmup_s, len_s);
        goto fail;
    }
    if (o->connections < 1 || o->connections > OSP_LOAD_MAX_CONNECTIONS ||
        o->timeout_ms < 1) {
        osp_err_set(err, OSP_EINVAL, "connections must be 1..%d and the "
                    "timeout positive", OSP_LOAD_MAX_CONNECTIONS);
        goto fail;
    }
    char host[300];
    const char *path = "";
    if (parse_url(l, o->url, host, sizeof host, &path, err) < 0)
        goto fail;
    osp_load_corpus_opts_t co = {.images = o->images, .target = o->target,
                            .model = o->model, .host = host,
                            .base_path = path, .headers = o->headers,
                            .n_headers = o->n_headers};
    l->corpus = osp_load_corpus_create(&co, err);
    if (!l->corpus)
        goto fail;
    l->hist = osp_load_hist_create();
    l->sec_hist = osp_load_hist_create();
    l->hist_ok = osp_load_hist_create();
    l->hist_err = osp_load_hist_create();
    if (!l->hist || !l->sec_hist || !l->hist_ok || !l->hist_err) {
        osp_err_set(err, OSP_ENOMEM, "out of memory");
        goto fail;
    }
    return l;
fail:
    osp_load_destroy(l);
    return NULL;
}

void osp_load_stop(osp_load_t *l) { l->stop = 1; }

const osp_load_summary_t *osp_load_summary(const osp_load_t *l) {
    return &l->sum;
}

const osp_load_second_t *osp_load_series(const osp_load_t *l, int *n) {
    *n = l->n_series;
    return l->series;
}

const osp_load_hist_t *osp_load_hist(const osp_load_t *l) { return l->hist; }

const osp_load_corpus_t *osp_load_corpus(const osp_load_t *l) { return l->corpus; }

/* ---- the due-request FIFO ------------------------------------------------ */

static int q_grow(osp_load_t *l) {
    if (l->q_cap >= MAX_PENDING)
        return -1;
    size_t cap = l->q_cap ? l->q_cap * 2 : 1024;
    osp__load_req_t *q = malloc(cap * sizeof *q);
    if (!q)
        return -1;
    for (size_t i = 0; i < l->q_len; i++)
        q[i] = l->q[(l->q_head + i) % l->q_cap];
    free(l->q);
    l->q = q;
    l->q_cap = cap;
    l->q_head = 0;
    return 0;
}

static void fail_req(osp_load_t *l, const osp__load_req_t *req,
                     osp_load_fail_t f, uint64_t now);

static void q_push(osp_load_t *l, const osp__load_req_t *r, int front,
                   uint64_t now) {
    if (l->q_len == l->q_cap && q_grow(l) < 0) {
        fail_req(l, r, OSP_LOAD_FAIL_DROPPED, now);
        return;
    }
    if (front) {
        l->q_head = (l->q_head + l->q_cap - 1) % l->q_cap;
        l->q[l->q_head] = *r;
    } else {
        l->q[(l->q_head + l->q_len) % l->q_cap] = *r;
    }
    l->q_len++;
}

static osp__load_req_t *q_front(osp_load_t *l) {
    return l->q_len ? &l->q[l->q_head] : NULL;
}

static void q_pop(osp_load_t *l) {
    l->q_head = (l->q_head + 1) % l->q_cap;
    l->q_len--;
}

/* ---- accounting ----------------------------------------------------------- */

static osp_load_second_t *cur_row(osp_load_t *l) {
    return l->oom ? NULL : &l->series[l->cur_sec];
}

/* Fills the current second's row from its answers (p50/p99/max) and what
 * was in flight and queued at its end. */
static osp_load_second_t *close_second(osp_load_t *l) {
    osp_load_second_t *r = &l->series[l->cur_sec];
    r->p50_ms = osp_load_hist_percentile(l->sec_hist, 50) / 1e3;
    r->p99_ms = osp_load_hist_percentile(l->sec_hist, 99) / 1e3;
    r->max_ms = osp_load_hist_max(l->sec_hist) / 1e3;
    r->inflight = (uint64_t)osp__load_client_busy(l->client);
    r->backlog = l->q_len;
    return r;
}

/* Closes every second that ended before now and prints the progress
 * line. */
static void advance(osp_load_t *l, uint64_t now) {
    int sec = (int)((now - l->start_ns) / 1000000000ull);
    while (!l->oom && l->cur_sec < sec) {
        osp_load_second_t *r = close_second(l);
        osp_load_hist_reset(l->sec_hist);
        if (l->o.progress) {
            fprintf(l->o.progress,
                    "\r[%4ds] sent %6llu/s  done %6llu/s  errors %6llu  p50 "
                    "%8.2f ms  p99 %8.2f ms  in flight %5llu  queued %6llu ",
                    l->cur_sec + 1, (unsigned long long)r->sent,
                    (unsigned long long)r->completed,
                    (unsigned long long)l->sum.errors, r->p50_ms, r->p99_ms,
                    (unsigned long long)r->inflight,
                    (unsigned long long)r->backlog);
            fflush(l->o.progress);
        }
        osp_load_second_t *s = osp_grow(l->series, &l->cap_series,
                                        l->n_series, sizeof *s, 64);
        if (!s) {
            l->oom = 1;
            return;
        }
        l->series = s;
        memset(&s[l->n_series], 0, sizeof *s);
        l->n_series++;
        l->cur_sec++;
    }
}

/* Whether req counts in the summary (it fell due after the warm-up). */
static int counted(const osp_load_t *l, const osp__load_req_t *req) {
    return req->intended_ns >= l->warm_ns;
}

static void fail_req(osp_load_t *l, const osp__load_req_t *req,
                     osp_load_fail_t f, uint64_t now) {
    advance(l, now);
    osp_load_second_t *r = cur_row(l);
    if (r)
        r->errors++;
    if (!counted(l, req))
        return;
    l->sum.fail[f]++;
    l->sum.errors++;
}

/* Closed loop: the user of a finished request goes again after thinking. */
static void user_next(osp_load_t *l, int user, uint64_t now, int backoff) {
    if (l->o.mode != OSP_LOAD_CLOSED || l->closed)
        return;
    uint64_t at = now + (uint64_t)l->o.think_ms * 1000000ull;
    if (backoff && at < now + CONNECT_BACKOFF_NS)
        at = now + CONNECT_BACKOFF_NS;
    if (at >= l->end_ns)
        return;
    osp__load_req_t r = {.intended_ns = at,
                    .deadline_ns = at + (uint64_t)l->o.timeout_ms * 1000000ull,
                    .user = user};
    q_push(l, &r, 0, now);
}

static void on_done(void *ud, const osp__load_req_t *req,
                    const osp__load_result_t *res, uint64_t now) {
    osp_load_t *l = ud;
    advance(l, now);
    if (!res->status) {
        if (res->retryable && !req->retries && !l->stop) {
            osp__load_req_t again = *req;
            again.retries = 1;
            l->sum.retries++;
            q_push(l, &again, 1, now);
            return;
        }
        fail_req(l, req, res->fail, now);
        user_next(l, req->user, now, res->fail == OSP_LOAD_FAIL_CONNECT);
        return;
    }
    uint64_t us = now > req->intended_ns ? (now - req->intended_ns) / 1000 : 0;
    osp_load_hist_record(l->sec_hist, us);
    osp_load_second_t *r = cur_row(l);
    if (r) {
        r->completed++;
        r->errors += res->status >= 400;
    }
    if (counted(l, req)) {
        osp_load_hist_record(l->hist, us);
        osp_load_hist_record(res->status >= 400 ? l->hist_err : l->hist_ok,
                             us);
        l->sum.completed++;
        l->sum.status[res->status]++;
        if (res->status >= 400)
            l->sum.errors++;
        else
            l->sum.ok++;
    }
    user_next(l, req->user, now, 0);
}

/* Starts due requests while connections are free. */
static void dispatch(osp_load_t *l, uint64_t now) {
    int n = osp_load_corpus_count(l->corpus);
    osp__load_req_t *r;
    while ((r = q_front(l)) && r->intended_ns <= now) {
        if (r->deadline_ns <= now) {
            /* Its whole timeout passed while waiting for a connection. */
            osp__load_req_t late = *r;
            int user = r->user;
            q_pop(l);
            fail_req(l, &late, OSP_LOAD_FAIL_TIMEOUT, now);
            user_next(l, user, now, 0);
            continue;
        }
        if (!osp__load_client_can_start(l->client))
            return;
        osp__load_req_t req = *r;
        q_pop(l);
        if (l->o.order_random) {
            /* xorshift64*: cheap, seeded, reproducible */
            l->rng ^= l->rng >> 12;
            l->rng ^= l->rng << 25;
            l->rng ^= l->rng >> 27;
            req.idx = (int)((l->rng * 2685821657736338717ull >> 33) %
                            (uint64_t)n);
        } else {
            req.idx = (int)(l->rr++ % (uint64_t)n);
        }
        if (!req.retries) {
            advance(l, now);
            l->sum.sent += (uint64_t)counted(l, &req);
            osp_load_second_t *row = cur_row(l);
            if (row)
                row->sent++;
        }
        size_t len;
        const uint8_t *bytes = osp_load_corpus_request(l->corpus, req.idx, &len);
        osp__load_client_start(l->client, &req, bytes, len, now);
    }
}

static double cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Lets the process open as many sockets as the pool may need. */
static void raise_fd_limit(int need) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)need + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int osp_load_run(osp_load_t *l, osp_err_t *err) {
    const osp_load_opts_t *o = &l->o;
    if (l->client)
        return osp_err_set(err, OSP_EINVAL, "a load run object runs once");
    int closed_mode = o->mode == OSP_LOAD_CLOSED;
    int conns = closed_mode ? o->concurrency : o->connections;
    raise_fd_limit(conns);
    l->client = osp__load_client_create((const struct sockaddr *)&l->addr,
                                        l->addr_len, conns, on_done, l, err);
    if (!l->client)
        return err ? err->code : OSP_ENOMEM;
    if (!closed_mode) {
        l->arrivals = osp_load_arrivals_create(o->profile, o->arrival, o->seed);
        if (!l->arrivals)
            return osp_err_set(err, OSP_ENOMEM, "out of memory");
    }
    l->series = calloc(64, sizeof *l->series);
    if (!l->series)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    l->cap_series = 64;
    l->n_series = 1;
    l->rng = o->seed ? o->seed : 1;
    uint64_t timeout_ns = (uint64_t)o->timeout_ms * 1000000ull;
    /* Every latency is this thread's clock reading: on a machine whose
     * CPUs the server under test keeps busy (a benchmark on one host), a
     * generator waiting for a CPU would add its wait to every answer. */
    osp_thread_short_slice();
    double cpu0 = cpu_seconds();
    l->start_ns = osp_now_ns();
    l->warm_ns = l->start_ns + (uint64_t)(o->warmup_s * 1e9);
    double dur_s = closed_mode ? o->duration_s
                               : osp_load_profile_duration_s(o->profile);
    l->end_ns = l->start_ns + (uint64_t)(dur_s * 1e9);
    uint64_t next_due = 0;
    int have_next = 0;
    double t;
    if (!closed_mode && osp_load_arrivals_next(l->arrivals, &t)) {
        next_due = l->start_ns + (uint64_t)(t * 1e9);
        have_next = 1;
    }
    if (closed_mode)
        for (int u = 0; u < o->concurrency; u++) {
            osp__load_req_t r = {.intended_ns = l->start_ns,
                            .deadline_ns = l->start_ns + timeout_ns,
                            .user = u};
            q_push(l, &r, 0, l->start_ns);
        }
    uint64_t next_expire = l->start_ns + EXPIRE_EVERY_NS;
    uint64_t stop_ns = 0;
    int rc = 0;
    for (;;) {
        uint64_t now = osp_now_ns();
        advance(l, now);
        if (l->stop && !stop_ns) {
            /* Stop: nothing new; what is queued is dropped, what is in
             * flight gets a short grace. */
            stop_ns = now;
            l->closed = 1;
            have_next = 0;
            l->sum.unfinished += l->q_len;
            l->q_len = 0;
        }
        if (!l->closed && now >= l->end_ns && closed_mode)
            l->closed = 1;
        while (have_next && next_due <= now) {
            osp__load_req_t r = {.intended_ns = next_due,
                            .deadline_ns = next_due + timeout_ns};
            l->sum.scheduled += (uint64_t)counted(l, &r);
            q_push(l, &r, 0, now);
            if (osp_load_arrivals_next(l->arrivals, &t))
                next_due = l->start_ns + (uint64_t)(t * 1e9);
            else
                have_next = 0;
        }
        if (!have_next && !closed_mode)
            l->closed = 1;
        dispatch(l, now);
        if (now >= next_expire) {
            osp__load_client_expire(l->client, now);
            next_expire = now + EXPIRE_EVERY_NS;
            dispatch(l, now);
        }
        int busy = osp__load_client_busy(l->client);
        /* Done when nothing is left and the profile's time is over (a
         * profile ending in idle seconds still gets its rows). */
        if (l->closed && !l->q_len && !busy && (stop_ns || now >= l->end_ns))
            break;
        if (stop_ns && now - stop_ns > OSP_MIN(STOP_GRACE_NS, timeout_ns)) {
            l->sum.unfinished += (uint64_t)busy;
            break;
        }
        /* Sleep until the next thing to do: a due request, a queued one
         * coming due (closed-loop think time), a timeout scan, a second
         * boundary. */
        uint64_t wake = next_expire;
        if (now < l->end_ns && l->end_ns < wake)
            wake = l->end_ns;
        if (have_next && next_due < wake)
            wake = next_due;
        osp__load_req_t *head = q_front(l);
        if (head && head->intended_ns > now && head->intended_ns < wake)
            wake = head->intended_ns;
        if (head && head->intended_ns <= now &&
            osp__load_client_can_start(l->client))
            wake = now; /* cannot happen after dispatch; keep the loop safe */
        uint64_t sec_end = l->start_ns +
                           (uint64_t)(l->cur_sec + 1) * 1000000000ull;
        if (sec_end < wake)
            wake = sec_end;
        int pr = osp__load_client_poll(l->client, wake > now ? wake - now : 0);
        if (pr < 0) {
            rc = osp_err_set(err, pr, "epoll failed");
            break;
        }
    }
    uint64_t end = osp_now_ns();
    if (!l->oom) /* the last (partial) second */
        close_second(l);
    if (l->o.progress) {
        fputc('\n', l->o.progress);
        fflush(l->o.progress);
    }
    if (!closed_mode)
        for (int i = 0; i < l->n_series; i++)
            l->series[i].target = osp_load_profile_count(o->profile, i + 1.0) -
                                  osp_load_profile_count(o->profile, (double)i);
    osp_load_summary_t *s = &l->sum;
    s->mode = o->mode;
    s->target = o->target;
    if (!closed_mode)
        s->target_rps = osp_load_profile_count(o->profile, dur_s) / dur_s;
    if (closed_mode)
        s->scheduled = s->sent;
    s->client_cpu_s = cpu_seconds() - cpu0;
    s->warmup_s = o->warmup_s;
    s->duration_s = end > l->warm_ns ? (double)(end - l->warm_ns) / 1e9 : 0;
    if (s->duration_s > 0) {
        s->rps = (double)s->completed / s->duration_s;
        s->ok_rps = (double)s->ok / s->duration_s;
    }
    uint64_t failures = 0;
    for (int i = 0; i < OSP_LOAD_FAIL_COUNT; i++)
        failures += s->fail[i];
    if (s->completed + failures)
        s->error_rate = (double)s->errors / (double)(s->completed + failures);
    s->p50_ms = osp_load_hist_percentile(l->hist, 50) / 1e3;
    s->p90_ms = osp_load_hist_percentile(l->hist, 90) / 1e3;
    s->p99_ms = osp_load_hist_percentile(l->hist, 99) / 1e3;
    s->p999_ms = osp_load_hist_percentile(l->hist, 99.9) / 1e3;
    s->max_ms = osp_load_hist_max(l->hist) / 1e3;
    s->min_ms = osp_load_hist_min(l->hist) / 1e3;
    s->mean_ms = osp_load_hist_mean(l->hist) / 1e3;
    s->ok_p50_ms = osp_load_hist_percentile(l->hist_ok, 50) / 1e3;
    s->ok_p90_ms = osp_load_hist_percentile(l->hist_ok, 90) / 1e3;
    s->ok_p99_ms = osp_load_hist_percentile(l->hist_ok, 99) / 1e3;
    s->ok_max_ms = osp_load_hist_max(l->hist_ok) / 1e3;
    s->error_p50_ms = osp_load_hist_percentile(l->hist_err, 50) / 1e3;
    s->error_p90_ms = osp_load_hist_percentile(l->hist_err, 90) / 1e3;
    s->error_p99_ms = osp_load_hist_percentile(l->hist_err, 99) / 1e3;
    s->error_max_ms = osp_load_hist_max(l->hist_err) / 1e3;
    return rc;
}
