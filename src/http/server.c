/* server.c — the HTTP server wrapper over libmicrohttpd: routing with path
 * parameters, body accumulation under a byte limit (early 413), request ids,
 * JSON responses and errors.
 *
 * Threading, two modes (docs/decisions.md "HTTP threading" has the
 * measurements): THREADS — thread-per-connection
 * (MHD_USE_THREAD_PER_CONNECTION), handlers may block (the dispatcher waits
 * in libcurl); EPOLL — MHD_USE_EPOLL_INTERNAL_THREAD with a small thread
 * pool and MHD_ALLOW_SUSPEND_RESUME, handlers must not block and answer
 * later through suspend/resume; EXTERNAL — MHD_USE_EPOLL without a thread
 * of its own: the owner's event loop (the dispatcher's) waits on MHD's
 * epoll fd with its own descriptors and calls MHD_run; suspend/resume as in
 * EPOLL.
 *
 * Suspend/resume state machine (per request, under the server's susp_mu):
 * the handler marks the request (resume_fn set); after it returns, on_access
 * either finds it already resumed (the completion was faster) and runs the
 * resume function at once, or — EPOLL — calls MHD_suspend_connection and
 * records mhd_suspended, or — THREADS — waits on the request's condition
 * variable. osp_http_req_resume sets `resumed` and, when MHD had suspended
 * the connection, calls MHD_resume_connection (outside the lock; MHD allows
 * it from any thread). MHD never closes a suspended connection, so the
 * request outlives the suspension; the resumer touches nothing of it after
 * MHD_resume_connection. MHD then calls on_access again for the connection,
 * which runs the resume function — responses are queued only from MHD
 * callbacks, as MHD requires. The server counts requests that suspended
 * until they are answered; destroy waits for them (MHD_stop_daemon must
 * not meet a suspended connection).
 *
 * Answers while suspended: MHD takes a response only from its own
 * callbacks, but a suspended request's work may run elsewhere (the
 * worker decodes on threads of its own). An answer given while the
 * request is suspended is built at once and held (`held`); it is queued to
 * MHD when the request is resumed, after its resume function ran.
 *
 * Memory budget (budget.c, docs/adr/0049-memory-budget.md): a request
 * reserves its declared Content-Length (a chunked body: each growth of its
 * buffer) before storing any of it, and handlers reserve what they
 * allocate; req_free gives it all back, on every ending. A body the
 * budget cannot hold is refused like one over max_body_bytes (early when
 * it can be, else read and dropped), with 503 instead of 413.
 *
 * Streamed bodies (osp_http_route_stream, docs/adr/0050-dispatch-body-
 * streaming.md): a request declaring a large enough body runs its handler
 * at the head; its upload chunks go to the handler's body function
 * (stream_access), which may take part of one — the connection is then
 * suspended (body_paused) until osp_http_req_body_resume — and END or,
 * when the connection closes first, ABORT (on_completed) end it.
 *
 * Slow clients (slow.c): every connection is tracked from MHD's connection
 * notifications, and its phase reported from the callbacks below (request
 * line: the URI log callback; head complete: on_access's first call; body
 * bytes; handler; answer sent: on_completed), so that a head or body past
 * its deadline is cut. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http/http_int.h"
#include "osprey/arena.h"
#include "osprey/http.h"

#define HTTP_MAX_ROUTES 64      /* routes per server */
#define HTTP_MAX_SEGMENTS 16    /* path segments per route pattern */
#define HTTP_MAX_PARAMS 8       /* {name} parameters per route */
#define HTTP_MAX_EXTRA_HEADERS 8 /* osp_http_add_header per response */
#define HTTP_REQ_ID_MAX 128     /* longest client X-Request-Id we keep */
#define HTTP_ARENA_CHUNK_BYTES ((size_t)32 << 10) /* first arena chunk */
/* Body bytes beyond max_body_bytes that are still read (and dropped) so
 * that a client which sends its whole body before reading gets the 413
 * rather than a connection reset. */
#define HTTP_DRAIN_MAX_BYTES ((size_t)8 << 20)
/* EXTERNAL mode: largest body buffer reserved from Content-Length alone. */
#define HTTP_PRESIZE_MAX ((size_t)4 << 20)

typedef struct route_s {
    char method[16];
    char *pattern;               /* owned copy (for osp_http_req_route) */
    char *segs[HTTP_MAX_SEGMENTS]; /* owned; "{x}" kept with braces */
    int n_segs;
    osp_http_handler_fn fn;
    void *ud;
    size_t stream_min;           /* osp_http_route_stream; 0: buffered */
} route_t;

struct osp_http_server_s {
    osp_http_opts_t opts;
    char host[64];
    route_t routes[HTTP_MAX_ROUTES];
    int n_routes;
    osp_http_done_fn done_fn;
    void *done_ud;
    struct MHD_Daemon *d;
    int port;
    atomic_int inflight;        /* handlers running + suspended requests
                                   not answered yet (the in-flight metric,
                                   what a drain waits for): MHD must not be
                                   stopped while any is */
    atomic_int unwritten;       /* from the handler's call until MHD reports
                                   the answer written (or the connection
                                   gone): destroy lets these finish */
    atomic_int suspended;       /* requests that suspended and are not
                                   answered yet */
    pthread_mutex_t susp_mu;    /* the suspend/resume state of requests */
    osp__http_slow_t *slow;     /* slow-client deadlines; NULL when off */
    atomic_ullong next_id;
    unsigned id_prefix;
};

struct osp_http_req_s {
    osp_http_server_t *srv;
    struct MHD_Connection *conn;
    osp__http_conn_t *track;    /* the connection's deadlines (or NULL) */
    const char *method, *path;
    const route_t *route;
    bool method_mismatch;
    osp_arena_t *arena; /* everything of this request; freed after the
                           response has been sent (on_completed) */
    char *params[HTTP_MAX_PARAMS][2]; /* name, value (in arena) */
    int n_params;
    uint8_t *body;
    size_t len, cap;
    bool too_large;
    bool over_budget; /* the budget could not hold the body: 503 */
    bool has_cl;      /* Content-Length declared (declared) */
    size_t declared;
    uint64_t reserved; /* bytes of the budget held until req_free */
    size_t dropped;   /* body bytes read and dropped after too_large */
    int status;       /* of the queued response; 0 = none yet */
    size_t resp_len;  /* body bytes of the queued response */
    uint64_t start_ns;
    char id[HTTP_REQ_ID_MAX + 1];
    char *hdr[HTTP_MAX_EXTRA_HEADERS][2]; /* in arena */
    int n_hdr;
    void *user;
    /* suspend/resume (see the top comment); under srv->susp_mu */
    osp_http_resume_fn resume_fn; /* set while suspended */
    void *resume_ud;
    bool resumed;       /* osp_http_req_resume was called */
    bool mhd_suspended; /* EPOLL: MHD_suspend_connection was called */
    bool in_flight;     /* counted in srv->inflight */
    bool in_unwritten;  /* counted in srv->unwritten */
    bool in_suspended;  /* counted in srv->suspended */
    bool cv_init;
    pthread_cond_t cv;  /* THREADS: the waiting connection thread */
    /* A streamed body (osp_http_route_stream): the handler ran at the
     * head; stream_fn takes the body until END, ABORT or the resume. */
    bool streaming;
    osp_http_body_fn stream_fn;
    void *stream_ud;
    bool body_paused;   /* MHD_suspend_connection for backpressure (under
                           susp_mu) */
    struct MHD_Response *held; /* answered while suspended: queued to MHD
                                  when resumed (after_handler) */
};

const char *osp_http_mode_name(osp_http_mode_t m) {
    static const char *const names[] = {"threads", "epoll", "external"};
    return (unsigned)m < OSP_HTTP_MODE_COUNT ? names[m] : "unknown";
}

int osp_http_mode_parse(const char *s, osp_http_mode_t *out) {
    for (int m = 0; m < OSP_HTTP_EXTERNAL; m++)
        if (s && !strcmp(s, osp_http_mode_name((osp_http_mode_t)m))) {
            *out = (osp_http_mode_t)m;
            return 0;
        }
    return OSP_EINVAL;
}

int osp_http_default_pool_threads(void) {
    /* Not at least 2: with a 1-CPU budget a second loop only time-slices
     * the decode work of the first, and competes with the engine thread. */
    int n = osp_cpus_available();
    return n > 16 ? 16 : n;
}

void osp_http_opts_init(osp_http_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->max_connections = OSP_HTTP_DEFAULT_MAX_CONNECTIONS;
    o->max_body_bytes = OSP_HTTP_DEFAULT_MAX_BODY_BYTES;
    o->conn_timeout_s = OSP_HTTP_DEFAULT_CONN_TIMEOUT_S;
    o->header_timeout_s = OSP_HTTP_DEFAULT_HEADER_TIMEOUT_S;
    o->min_body_rate = OSP_HTTP_DEFAULT_MIN_BODY_RATE;
}

int osp_http_auto_max_connections(long nofile, int fds_per_conn) {
    long n = (nofile - OSP_HTTP_RESERVED_FDS) / (fds_per_conn > 0
                                                     ? fds_per_conn
                                                     : 1);
    if (n > OSP_HTTP_MAX_AUTO_CONNECTIONS)
        n = OSP_HTTP_MAX_AUTO_CONNECTIONS;
    return n < OSP_HTTP_DEFAULT_MAX_CONNECTIONS
               ? OSP_HTTP_DEFAULT_MAX_CONNECTIONS
               : (int)n;
}

int osp_http_slow_metric(osp_metrics_t *m, osp_series_t **out,
                         osp_err_t *err) {
    osp_metric_t *f = osp_metrics_add(
        m, OSP_METRIC_COUNTER, "osprey_http_slow_client_closes_total",
        "Client connections closed because their request head was not "
        "complete within the header timeout (reason=header) or their body "
        "arrived below the minimum rate (reason=body)",
        1, (const char *[]){"reason"}, NULL, 0, 0, err);
    if (!f)
        return err ? err->code : OSP_EINVAL;
    for (int w = 0; w < OSP_HTTP_SLOW_COUNT; w++)
        out[w] = osp_metric_series(
            f, (const char *[]){
                   osp_http_slow_reason_name((osp_http_slow_reason_t)w)});
    return 0;
}

osp_http_server_t *osp_http_server_create(const osp_http_opts_t *o,
                                          osp_err_t *err) {
    osp_http_server_t *s = calloc(1, sizeof *s);
    if (!s) {
        osp_err_set(err, OSP_ENOMEM, "http: out of memory");
        return NULL;
    }
    if (o)
        s->opts = *o;
    else
        osp_http_opts_init(&s->opts);
    if (s->opts.host) {
        if (strlen(s->opts.host) >= sizeof s->host) {
            free(s);
            osp_err_set(err, OSP_EINVAL, "http: host '%s' too long",
                        o->host);
            return NULL;
        }
        strcpy(s->host, s->opts.host);
        s->opts.host = s->host;
    }
    if (s->opts.max_connections <= 0)
        s->opts.max_connections = OSP_HTTP_DEFAULT_MAX_CONNECTIONS;
    if (s->opts.conn_timeout_s <= 0)
        s->opts.conn_timeout_s = OSP_HTTP_DEFAULT_CONN_TIMEOUT_S;
    if (s->opts.max_body_bytes == 0)
        s->opts.max_body_bytes = OSP_HTTP_DEFAULT_MAX_BODY_BYTES;
    /* A body the whole budget cannot hold would be refused forever: 413,
     * not a 503 that invites retries. */
    if (s->opts.budget &&
        s->opts.max_body_bytes >= osp_http_budget_limit(s->opts.budget))
        s->opts.max_body_bytes =
            (size_t)osp_http_budget_limit(s->opts.budget) - 1;
    if ((unsigned)s->opts.mode >= OSP_HTTP_MODE_COUNT) {
        free(s);
        osp_err_set(err, OSP_EINVAL, "http: bad mode %d", (int)o->mode);
        return NULL;
    }
    if (s->opts.pool_threads <= 0)
        s->opts.pool_threads = osp_http_default_pool_threads();
    osp__http_slow_opts_t so = {
        .header_timeout_s = s->opts.header_timeout_s,
        .idle_timeout_s = s->opts.conn_timeout_s,
        .min_body_rate = s->opts.min_body_rate};
    for (int w = 0; w < OSP_HTTP_SLOW_COUNT; w++)
        so.closes[w] = s->opts.slow_closes[w];
    if ((so.header_timeout_s > 0 || so.min_body_rate > 0) &&
        !(s->slow = osp__http_slow_create(&so))) {
        free(s);
        osp_err_set(err, OSP_ENOMEM, "http: out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->susp_mu, NULL);
    if (getrandom(&s->id_prefix, sizeof s->id_prefix, 0) !=
        (ssize_t)sizeof s->id_prefix)
        s->id_prefix = (unsigned)getpid() ^ (unsigned)osp_now_ns();
    return s;
}

int osp_http_route(osp_http_server_t *s, const char *method,
                   const char *pattern, osp_http_handler_fn fn, void *ud) {
    if (!s || !method || !pattern || pattern[0] != '/' || !fn ||
        strlen(method) >= sizeof s->routes[0].method)
        return OSP_EINVAL;
    if (s->n_routes >= HTTP_MAX_ROUTES)
        return OSP_ELIMIT;
    route_t *r = &s->routes[s->n_routes];
    memset(r, 0, sizeof *r);
    strcpy(r->method, method);
    r->fn = fn;
    r->ud = ud;
    if (!(r->pattern = strdup(pattern)))
        return OSP_ENOMEM;
    int n_params = 0;
    const char *p = pattern;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (r->n_segs >= HTTP_MAX_SEGMENTS)
            goto fail;
        if (p[0] == '{' && (n < 3 || p[n - 1] != '}' ||
                            ++n_params > HTTP_MAX_PARAMS))
            goto fail;
        if (!(r->segs[r->n_segs] = strndup(p, n)))
            goto fail;
        r->n_segs++;
        p += n;
    }
    s->n_routes++;
    return 0;
fail:
    for (int i = 0; i < r->n_segs; i++)
        free(r->segs[i]);
    free(r->pattern);
    memset(r, 0, sizeof *r);
    return OSP_EINVAL;
}

int osp_http_route_stream(osp_http_server_t *s, const char *method,
                          const char *pattern, osp_http_handler_fn fn,
                          void *ud, size_t min_stream_bytes) {
    int rc = osp_http_route(s, method, pattern, fn, ud);
    if (rc == 0)
        s->routes[s->n_routes - 1].stream_min =
            min_stream_bytes ? min_stream_bytes : 1;
    return rc;
}

void osp_http_on_done(osp_http_server_t *s, osp_http_done_fn fn, void *ud) {
    s->done_fn = fn;
    s->done_ud = ud;
}

/* Matches path against route r; on success fills req's params. */
static bool route_match(const route_t *r, const char *path,
                        osp_http_req_t *req) {
    const char *segs[HTTP_MAX_SEGMENTS];
    size_t lens[HTTP_MAX_SEGMENTS];
    int n = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (n >= HTTP_MAX_SEGMENTS || n >= r->n_segs)
            return false;
        segs[n] = p;
        lens[n] = l;
        n++;
        p += l;
    }
    if (n != r->n_segs)
        return false;
    for (int i = 0; i < n; i++) {
        const char *rs = r->segs[i];
        if (rs[0] == '{')
            continue;
        if (strlen(rs) != lens[i] || memcmp(rs, segs[i], lens[i]))
            return false;
    }
    if (!req)
        return true;
    for (int i = 0; i < n; i++) {
        const char *rs = r->segs[i];
        if (rs[0] != '{' || req->n_params >= HTTP_MAX_PARAMS)
            continue;
        char *name = osp_arena_strndup(req->arena, rs + 1, strlen(rs) - 2);
        char *val = osp_arena_strndup(req->arena, segs[i], lens[i]);
        if (!name || !val)
            return false;
        req->params[req->n_params][0] = name;
        req->params[req->n_params][1] = val;
        req->n_params++;
    }
    return true;
}

static void req_free(osp_http_req_t *r) {
    if (!r)
        return;
    if (r->in_unwritten) /* answer sent, or connection closed mid-request */
        atomic_fetch_sub(&r->srv->unwritten, 1);
    if (r->in_flight)
        atomic_fetch_sub(&r->srv->inflight, 1);
    if (r->in_suspended)
        atomic_fetch_sub(&r->srv->suspended, 1);
    if (r->cv_init)
        pthread_cond_destroy(&r->cv);
    if (r->held) /* the connection went away before it was resumed */
        MHD_destroy_response(r->held);
    osp_arena_destroy(r->arena);
    free(r->body);
    if (r->reserved) /* after the frees: the memory is gone first */
        osp__http_budget_release(r->srv->opts.budget, r->reserved);
    free(r);
}

/* A client request id is kept when it is 1..128 printable ASCII characters
 * without spaces (it goes into logs and response headers verbatim). */
static bool good_req_id(const char *v) {
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > HTTP_REQ_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] <= 0x20 || v[i] > 0x7e)
            return false;
    return true;
}

static osp_http_req_t *req_new(osp_http_server_t *s,
                               struct MHD_Connection *c, const char *url,
                               const char *method) {
    osp_http_req_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    /* The first chunk (allocated on first use) holds a classify request's
     * small things; the tensor and the decoded image get chunks of their
     * own. */
    if (!(r->arena = osp_arena_create(HTTP_ARENA_CHUNK_BYTES))) {
        free(r);
        return NULL;
    }
    r->srv = s;
    r->conn = c;
    if (s->slow) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->track = ci ? ci->socket_context : NULL;
    }
    r->method = method;
    r->path = url;
    r->start_ns = osp_now_ns();
    const char *rid = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                  "X-Request-Id");
    if (good_req_id(rid))
        strcpy(r->id, rid);
    else
        snprintf(r->id, sizeof r->id, "%08x%08llx", s->id_prefix,
                 (unsigned long long)atomic_fetch_add(&s->next_id, 1) + 1);
    bool path_matched = false;
    for (int i = 0; i < s->n_routes; i++) {
        const route_t *rt = &s->routes[i];
        if (!route_match(rt, url, NULL))
            continue;
        path_matched = true;
        if (strcmp(rt->method, method))
            continue;
        if (!route_match(rt, url, r)) {
            req_free(r);
            return NULL;
        }
        r->route = rt;
        break;
    }
    r->method_mismatch = !r->route && path_matched;
    return r;
}

static int queue(osp_http_req_t *r, int status, const char *ctype,
                 struct MHD_Response *resp, size_t len) {
    if (!resp)
        return OSP_ENOMEM;
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "X-Request-Id", r->id);
    for (int i = 0; i < r->n_hdr; i++)
        MHD_add_response_header(resp, r->hdr[i][0], r->hdr[i][1]);
    pthread_mutex_lock(&r->srv->susp_mu);
    bool suspended = r->resume_fn != NULL;
    pthread_mutex_unlock(&r->srv->susp_mu);
    if (suspended) {
        /* Possibly not on an MHD thread: held until the resume. */
        r->held = resp;
    } else {
        enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)status,
                                                resp);
        MHD_destroy_response(resp);
        if (ok != MHD_YES)
            return OSP_EIO;
        if (r->srv->slow)
            osp__http_slow_busy(r->srv->slow, r->track);
    }
    r->status = status;
    r->resp_len = len;
    if (r->srv->done_fn)
        r->srv->done_fn(r, status, osp_http_req_elapsed_s(r),
                        r->srv->done_ud);
    return 0;
}

int osp_http_respond(osp_http_req_t *r, int status, const char *ctype,
                     const void *body, size_t len) {
    if (r->status)
        return OSP_EINVAL;
    return queue(r, status, ctype,
                 MHD_create_response_from_buffer(len, (void *)body,
                                                 MHD_RESPMEM_MUST_COPY),
                 len);
}

int osp_http_respond_owned(osp_http_req_t *r, int status, const char *ctype,
                           void *body, size_t len) {
    if (r->status) {
        free(body);
        return OSP_EINVAL;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        free(body);
    return queue(r, status, ctype, resp, len);
}

osp_arena_t *osp_http_req_arena(osp_http_req_t *r) { return r->arena; }

int osp_http_respond_arena(osp_http_req_t *r, int status, const char *ctype,
                           const void *body, size_t len) {
    if (r->status)
        return OSP_EINVAL;
    /* PERSISTENT: MHD sends straight from the arena, which lives until
     * on_completed — after the last byte went out. */
    return queue(r, status, ctype,
                 MHD_create_response_from_buffer(len, (void *)body,
                                                 MHD_RESPMEM_PERSISTENT),
                 len);
}

int osp_http_respond_json(osp_http_req_t *r, int status, json_t *json) {
    /* 9 significant digits: every float (scores, tensors) round-trips, and
     * values rounded on purpose print short. */
    char *s = json ? json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(9))
                   : NULL;
    json_decref(json);
    if (!s)
        return osp_http_respond(r, 500, "application/json",
                                "{\"error\":\"out of memory\"}", 25);
    size_t n = strlen(s);
    /* A trailing newline keeps curl output and line-based logs tidy. */
    char *t = realloc(s, n + 2);
    if (t) {
        s = t;
        s[n++] = '\n';
        s[n] = 0;
    }
    return osp_http_respond_owned(r, status, "application/json", s, n);
}

int osp_http_respond_error(osp_http_req_t *r, int status, const char *fmt,
                           ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return osp_http_respond_json(r, status, json_pack("{s:s}", "error", msg));
}

int osp_http_add_header(osp_http_req_t *r, const char *name,
                        const char *value) {
    if (r->n_hdr >= HTTP_MAX_EXTRA_HEADERS)
        return OSP_ELIMIT;
    char *n = osp_arena_strndup(r->arena, name, strlen(name));
    char *v = osp_arena_strndup(r->arena, value, strlen(value));
    if (!n || !v)
        return OSP_ENOMEM;
    r->hdr[r->n_hdr][0] = n;
    r->hdr[r->n_hdr][1] = v;
    r->n_hdr++;
    return 0;
}

int osp_http_status_for(int code) {
    switch (code) {
    case OSP_ELIMIT: return 413;
    case OSP_EFORMAT:
    case OSP_EINVAL:
    case OSP_ESHAPE: return 400;
    case OSP_EUNSUPPORTED: return 415;
    case OSP_ENOENT: return 404;
    case OSP_EBUSY: return 503;
    case OSP_ETIMEDOUT: return 504;
    default: return 500;
    }
}

const char *osp_http_reason(int status) {
    const char *s = MHD_get_reason_phrase_for((unsigned)status);
    return s && *s ? s : "Unknown";
}

json_t *osp_http_req_json(const osp_http_req_t *r, osp_err_t *err) {
    json_error_t je;
    json_t *j = json_loadb((const char *)r->body, r->len, 0, &je);
    if (!j) {
        osp_err_set(err, OSP_EFORMAT, "invalid JSON at line %d column %d: %s",
                    je.line, je.column, je.text);
        return NULL;
    }
    return j;
}

/* Appends upload bytes; flags too_large instead of growing past the limit. */
static void body_append(osp_http_req_t *r, const char *data, size_t n) {
    size_t max = r->srv->opts.max_body_bytes;
    if (r->too_large || r->over_budget)
        return;
    if (n > max - r->len) {
        r->too_large = true;
        return;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 16384;
        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > max + 1)
            cap = max + 1;
        /* A declared body needs no more; with a budget its size is
         * reserved already, so it is allocated once at that size (pages
         * become resident only as bytes arrive; no copy per doubling,
         * which would briefly hold the body twice). */
        if (r->has_cl && (cap > r->declared + 1 || r->srv->opts.budget))
            cap = r->declared + 1;
        /* A chunked body reserves as it grows. */
        if (r->srv->opts.budget && cap > r->reserved) {
            if (!osp__http_budget_reserve(r->srv->opts.budget,
                                          cap - r->reserved)) {
                r->over_budget = true;
                return;
            }
            r->reserved = cap;
        }
        uint8_t *nb = realloc(r->body, cap);
        if (!nb) {
            r->too_large = true; /* cannot hold it: same answer */
            return;
        }
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = 0;
}

static void respond_too_large(osp_http_req_t *r) {
    osp_http_respond_error(r, 413, "request body larger than %zu bytes",
                           r->srv->opts.max_body_bytes);
}

int osp_http_respond_over_budget(osp_http_req_t *r) {
    if (r->status)
        return OSP_EINVAL;
    if (r->srv->opts.budget)
        osp__http_budget_reject(r->srv->opts.budget);
    osp_http_add_header(r, "Retry-After", "1");
    return osp_http_respond_error(
        r, 503, "server memory budget for requests in progress is full "
                "(%llu bytes); retry later or elsewhere",
        (unsigned long long)osp_http_budget_limit(r->srv->opts.budget));
}

/* The refusal of a body that is not stored (too large, or over the
 * budget). */
static void respond_refused(osp_http_req_t *r) {
    if (r->too_large)
        respond_too_large(r);
    else
        osp_http_respond_over_budget(r);
}

int osp_http_req_reserve(osp_http_req_t *r, uint64_t n) {
    osp_http_budget_t *b = r->srv->opts.budget;
    if (!b || !n)
        return 0;
    if (!osp__http_budget_reserve(b, n))
        return OSP_EBUSY;
    r->reserved += n;
    return 0;
}

void osp_http_req_charge(osp_http_req_t *r, uint64_t n) {
    osp_http_budget_t *b = r->srv->opts.budget;
    if (!b || !n)
        return;
    osp__http_budget_charge(b, n);
    r->reserved += n;
}

uint64_t osp_http_req_budget_room(const osp_http_req_t *r) {
    return osp__http_budget_room(r->srv->opts.budget);
}

/* After a handler (or a resume function, `resumed`) returned: runs resume
 * functions of requests already resumed, suspends the others (EPOLL) or
 * waits for them (THREADS); once answered, the request leaves the in-flight
 * count. */
static enum MHD_Result after_handler(osp_http_server_t *s, osp_http_req_t *r,
                                     bool resumed) {
    for (;;) {
        if (resumed) {
            osp_http_resume_fn fn = r->resume_fn;
            void *ud = r->resume_ud;
            pthread_mutex_lock(&s->susp_mu);
            r->resume_fn = NULL;
            r->resume_ud = NULL;
            r->resumed = false;
            r->mhd_suspended = false;
            pthread_mutex_unlock(&s->susp_mu);
            fn(r, ud);
            resumed = false;
        }
        if (!r->resume_fn)
            break;
        pthread_mutex_lock(&s->susp_mu);
        if (s->opts.mode != OSP_HTTP_THREADS) {
            if (!r->resumed) {
                MHD_suspend_connection(r->conn);
                r->mhd_suspended = true;
                pthread_mutex_unlock(&s->susp_mu);
                return MHD_YES; /* on_access again after the resume */
            }
        } else {
            while (!r->resumed)
                pthread_cond_wait(&r->cv, &s->susp_mu);
        }
        pthread_mutex_unlock(&s->susp_mu);
        resumed = true;
    }
    bool lost = false;
    if (r->held) {
        /* Answered while suspended: MHD takes it now, from its callback. */
        lost = MHD_queue_response(r->conn, (unsigned)r->status, r->held) !=
               MHD_YES;
        MHD_destroy_response(r->held);
        r->held = NULL;
        if (!lost && s->slow)
            osp__http_slow_busy(s->slow, r->track);
    }
    /* Answered (queued): no longer in flight; unwritten until MHD has
     * written it (on_completed), so destroy does not cut it. */
    if (r->in_flight) {
        r->in_flight = false;
        atomic_fetch_sub(&s->inflight, 1);
    }
    if (!r->status)
        osp_http_respond_error(r, 500, "handler for %s sent no response",
                               r->route ? r->route->pattern : "?");
    /* Counted until answered (not merely resumed): a resume function may
     * suspend again, and destroy must not stop MHD in between. */
    if (r->in_suspended) {
        r->in_suspended = false;
        atomic_fetch_sub(&s->suspended, 1);
    }
    return r->status && !lost ? MHD_YES : MHD_NO;
}

int osp_http_req_suspend(osp_http_req_t *r, osp_http_resume_fn fn, void *ud) {
    if (!r || !fn || r->status || r->resume_fn)
        return OSP_EINVAL;
    osp_http_server_t *s = r->srv;
    if (s->opts.mode == OSP_HTTP_THREADS && !r->cv_init) {
        pthread_cond_init(&r->cv, NULL);
        r->cv_init = true;
    }
    pthread_mutex_lock(&s->susp_mu);
    r->resume_fn = fn;
    r->resume_ud = ud;
    r->resumed = false;
    pthread_mutex_unlock(&s->susp_mu);
    if (!r->in_suspended) {
        r->in_suspended = true;
        atomic_fetch_add(&s->suspended, 1);
    }
    return 0;
}

void osp_http_req_resume(osp_http_req_t *r) {
    osp_http_server_t *s = r->srv;
    struct MHD_Connection *c = r->conn;
    pthread_mutex_lock(&s->susp_mu);
    OSP_ASSERT(r->resume_fn && !r->resumed);
    r->resumed = true;
    bool mhd = r->mhd_suspended || r->body_paused;
    r->body_paused = false;
    if (r->cv_init)
        pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&s->susp_mu);
    /* A suspended connection is never closed by MHD, so c is valid here;
     * after this call the request may be answered and freed at any time. */
    if (mhd)
        MHD_resume_connection(c);
}

bool osp_http_req_streaming(const osp_http_req_t *r, size_t *declared) {
    if (declared)
        *declared = r->streaming ? r->declared : 0;
    return r->streaming;
}

int osp_http_req_stream(osp_http_req_t *r, osp_http_body_fn fn, void *ud) {
    if (!r->streaming || r->status || !fn)
        return OSP_EINVAL;
    r->stream_fn = fn;
    r->stream_ud = ud;
    return 0;
}

void osp_http_req_body_resume(osp_http_req_t *r) {
    osp_http_server_t *s = r->srv;
    pthread_mutex_lock(&s->susp_mu);
    bool paused = r->body_paused;
    r->body_paused = false;
    pthread_mutex_unlock(&s->susp_mu);
    if (paused)
        MHD_resume_connection(r->conn);
}

static bool req_resumed(osp_http_server_t *s, osp_http_req_t *r) {
    pthread_mutex_lock(&s->susp_mu);
    bool go = r->resumed;
    pthread_mutex_unlock(&s->susp_mu);
    return go;
}

/* A streaming request after its handler ran: body bytes go to its body
 * function; a partial take pauses the connection (MHD keeps the rest in
 * its read buffer and offers it again after the resume); END, then the
 * request is an ordinary suspended one. Resumed before that (an answer
 * came first): the rest of the body is read and dropped (at the minimum
 * rate; no memory) and the resume function answers after it — an answer
 * queued mid-upload makes libmicrohttpd stop reading, send it and close,
 * and a client still sending then sees a reset instead of the answer. */
static enum MHD_Result stream_access(osp_http_server_t *s, osp_http_req_t *r,
                                     const char *upload,
                                     size_t *upload_size) {
    if (*upload_size) {
        if (s->slow && !osp__http_slow_body(s->slow, r->track, *upload_size))
            return MHD_NO; /* on_completed tells the handler (ABORT) */
        if (req_resumed(s, r)) {
            *upload_size = 0;
            return MHD_YES;
        }
        size_t k = r->stream_fn(r, OSP_HTTP_BODY_DATA,
                                (const uint8_t *)upload, *upload_size,
                                r->stream_ud);
        *upload_size -= k < *upload_size ? k : *upload_size;
        if (*upload_size) {
            pthread_mutex_lock(&s->susp_mu);
            if (!r->resumed) {
                MHD_suspend_connection(r->conn);
                r->body_paused = true;
            }
            pthread_mutex_unlock(&s->susp_mu);
        }
        return MHD_YES;
    }
    osp_http_body_fn fn = r->stream_fn;
    r->stream_fn = NULL;
    if (req_resumed(s, r))
        return after_handler(s, r, true);
    /* The whole body arrived: the handler's answer is what remains. */
    fn(r, OSP_HTTP_BODY_END, NULL, 0, r->stream_ud);
    if (s->slow)
        osp__http_slow_busy(s->slow, r->track);
    return after_handler(s, r, req_resumed(s, r));
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c,
                                 const char *url, const char *method,
                                 const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls) {
    (void)version;
    osp_http_server_t *s = cls;
    osp_http_req_t *r = *con_cls;
    if (!r) {
        r = req_new(s, c, url, method);
        if (!r)
            return MHD_NO; /* out of memory: drop the connection */
        *con_cls = r;
        if (s->slow)
            osp__http_slow_head(s->slow, r->track);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     "Content-Length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            bool bad = errno || end == cl;
            if (bad || v > s->opts.max_body_bytes) {
                r->too_large = true;
            } else if (r->route && r->route->stream_min &&
                       v >= r->route->stream_min &&
                       s->opts.mode != OSP_HTTP_THREADS) {
                r->streaming = true; /* the handler reserves its window */
                r->has_cl = true;
                r->declared = (size_t)v;
            } else if (v > 0 && s->opts.budget &&
                       osp_http_req_reserve(r, v + 1) < 0) {
                r->over_budget = true;
            } else {
                r->has_cl = true;
                r->declared = (size_t)v;
            }
            if (r->too_large || r->over_budget) {
                /* Answer before the body is sent when the client waits
                 * for "100 Continue" (it then never sends it) or when the
                 * body is large; MHD closes the connection after the
                 * answer. A client that is already sending a body of at
                 * most HTTP_DRAIN_MAX_BYTES (over the limit) would get a
                 * reset instead of our answer if we closed on it, so that
                 * body is read and dropped (never stored) and the answer
                 * comes after it. */
                const char *expect = MHD_lookup_connection_value(
                    c, MHD_HEADER_KIND, "Expect");
                size_t excess = r->too_large && !bad
                                    ? (size_t)(v - s->opts.max_body_bytes)
                                    : (size_t)v;
                if (bad || (expect && !strcasecmp(expect, "100-continue")) ||
                    excess > HTTP_DRAIN_MAX_BYTES)
                    respond_refused(r);
            } else if (v > 0 && s->opts.mode == OSP_HTTP_EXTERNAL &&
                       !r->streaming) {
                /* EXTERNAL (the dispatcher's proxy front): the declared
                 * size at once, so that a forwarded body is copied once,
                 * not once per doubling (and a 100 KB one stays below
                 * malloc's mmap threshold); at most HTTP_PRESIZE_MAX
                 * before any byte has arrived. */
                size_t cap = (size_t)v + 1;
                if (cap > HTTP_PRESIZE_MAX)
                    cap = HTTP_PRESIZE_MAX;
                if ((r->body = malloc(cap))) {
                    r->cap = cap;
                    r->body[0] = 0;
                }
            }
        }
        if (r->streaming && !r->status) {
            /* The handler runs now, before the body. */
            if (!(r->body = calloc(1, 1)))
                return MHD_NO;
            atomic_fetch_add(&s->unwritten, 1);
            r->in_unwritten = true;
            atomic_fetch_add(&s->inflight, 1);
            r->in_flight = true;
            r->route->fn(r, r->route->ud);
            if (r->stream_fn && r->resume_fn)
                return MHD_YES; /* the body goes to stream_fn (or is
                                   dropped before the answer) */
            r->stream_fn = NULL;
            return after_handler(s, r, r->resume_fn && req_resumed(s, r));
        }
        return MHD_YES;
    }
    if (r->stream_fn)
        return stream_access(s, r, upload, upload_size);
    if (r->resume_fn) {
        /* EPOLL: MHD calls us again after MHD_resume_connection. */
        pthread_mutex_lock(&s->susp_mu);
        bool go = r->resumed;
        pthread_mutex_unlock(&s->susp_mu);
        *upload_size = 0;
        return go ? after_handler(s, r, true) : MHD_YES;
    }
    if (*upload_size) {
        /* Below the minimum body rate: close at once, without an answer.
         * (libmicrohttpd 0.9.75 sends an answer queued during an upload
         * only after reading the rest of the body, which this client
         * sends too slowly for the answer to matter.) */
        if (s->slow && !r->status &&
            !osp__http_slow_body(s->slow, r->track, *upload_size))
            return MHD_NO;
        if (!r->status) {
            body_append(r, upload, *upload_size);
            r->dropped += r->too_large || r->over_budget ? *upload_size : 0;
            /* Past the drain allowance: answer now and let MHD close. */
            if (r->dropped > HTTP_DRAIN_MAX_BYTES)
                respond_refused(r);
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->status)
        return MHD_YES;
    if (r->too_large || r->over_budget) {
        respond_refused(r);
        return MHD_YES;
    }
    if (!r->body) {
        /* Handlers may treat the body as a string even when empty. */
        r->body = calloc(1, 1);
        if (!r->body)
            return MHD_NO;
    }
    if (!r->route) {
        if (r->method_mismatch)
            osp_http_respond_error(r, 405, "method %s not allowed on %s",
                                   method, url);
        else
            osp_http_respond_error(r, 404, "no route for %s %s", method, url);
        return MHD_YES;
    }
    if (s->slow)
        osp__http_slow_busy(s->slow, r->track);
    atomic_fetch_add(&s->unwritten, 1);
    r->in_unwritten = true;
    atomic_fetch_add(&s->inflight, 1);
    r->in_flight = true;
    r->route->fn(r, r->route->ud);
    return after_handler(s, r, false);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    osp_http_server_t *s = cls;
    osp_http_req_t *r = *con_cls;
    if (r && r->stream_fn) /* the client left during its streamed body */
        r->stream_fn(r, OSP_HTTP_BODY_ABORT, NULL, 0, r->stream_ud);
    req_free(r);
    *con_cls = NULL;
    /* Answer sent: a keep-alive connection now waits for its next request
     * (MHD calls this also for a request that failed, whose connection it
     * closes: no deadline matters then). */
    if (s->slow && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci)
            osp__http_slow_idle(s->slow, ci->socket_context);
    }
}

/* MHD's connection notifications: tracked from the accept until MHD
 * closes the socket (it notifies before closing it: slow.c relies on
 * that). */
static void on_connection(void *cls, struct MHD_Connection *c,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    osp_http_server_t *s = cls;
    /* A connection is first seen on the thread that serves it: each
     * event loop asks once (MHD has no thread-start hook). */
    static _Thread_local bool asked;
    if (s->opts.short_slice && s->opts.mode == OSP_HTTP_EPOLL && !asked) {
        asked = true;
        osp_thread_short_slice();
    }
    if (!s->slow)
        return;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? osp__http_slow_add(s->slow, ci->connect_fd)
                             : NULL;
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        osp__http_slow_remove(s->slow, *socket_context);
        *socket_context = NULL;
    }
}

/* MHD's URI log callback, called once a request line has been read (the
 * earliest per-request hook MHD has): a keep-alive connection's next
 * request has begun. Its return value would become the request's con_cls:
 * NULL, on_access creates the request once the head is complete. */
static void *on_request_line(void *cls, const char *uri,
                             struct MHD_Connection *c) {
    osp_http_server_t *s = cls;
    (void)uri;
    if (s->slow) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci)
            osp__http_slow_line(s->slow, ci->socket_context);
    }
    return NULL;
}

int osp_http_server_start(osp_http_server_t *s, osp_err_t *err) {
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    bool epoll = s->opts.mode == OSP_HTTP_EPOLL;
    unsigned flags = epoll ? (MHD_USE_EPOLL_INTERNAL_THREAD |
                              MHD_ALLOW_SUSPEND_RESUME)
                           : (MHD_USE_THREAD_PER_CONNECTION |
                              MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                              MHD_USE_ITC);
    if (s->opts.mode == OSP_HTTP_EXTERNAL)
        flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (s->opts.port < 0 || s->opts.port > 65535)
        return osp_err_set(err, OSP_EINVAL, "http: bad port %d", s->opts.port);
    if (s->opts.host && strchr(s->opts.host, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)s->opts.port);
        if (inet_pton(AF_INET6, s->opts.host, &a6->sin6_addr) != 1)
            return osp_err_set(err, OSP_EINVAL, "http: bad IPv6 address '%s'",
                               s->opts.host);
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)s->opts.port);
        if (!s->opts.host)
            a4->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, s->opts.host, &a4->sin_addr) != 1)
            return osp_err_set(err, OSP_EINVAL,
                               "http: bad IPv4 address '%s' (a numeric address "
                               "is required)", s->opts.host);
    }
    s->d = MHD_start_daemon(
        flags, (uint16_t)s->opts.port, NULL, NULL, on_access, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->opts.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->opts.conn_timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
        MHD_OPTION_URI_LOG_CALLBACK, on_request_line, s,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        /* THREADS ignores a pool of 1 (MHD: 0/1 = no pool). */
        MHD_OPTION_THREAD_POOL_SIZE,
        epoll ? (unsigned)s->opts.pool_threads : 0u, MHD_OPTION_END);
    if (!s->d)
        return osp_err_set(err, OSP_EIO,
                           "http: cannot listen on %s:%d (in use or not "
                           "permitted)", s->opts.host ? s->opts.host : "0.0.0.0",
                           s->opts.port);
    /* EXTERNAL: the owner's loop sweeps, in osp_http_server_run. */
    if (s->slow && s->opts.mode != OSP_HTTP_EXTERNAL &&
        osp__http_slow_thread_start(s->slow) < 0) {
        MHD_stop_daemon(s->d);
        s->d = NULL;
        return osp_err_set(err, OSP_EIO,
                           "http: cannot start the slow-client sweeper");
    }
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_LISTEN_FD);
    s->port = s->opts.port;
    if (di) {
        struct sockaddr_storage bound;
        socklen_t bl = sizeof bound;
        if (getsockname(di->listen_fd, (struct sockaddr *)&bound, &bl) == 0)
            s->port = ntohs(bound.ss_family == AF_INET6
                                ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                : ((struct sockaddr_in *)&bound)->sin_port);
    }
    return 0;
}

int osp_http_server_port(const osp_http_server_t *s) { return s ? s->port : 0; }

int osp_http_server_fd(const osp_http_server_t *s) {
    if (!s || !s->d || s->opts.mode != OSP_HTTP_EXTERNAL)
        return -1;
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);
    return di ? di->epoll_fd : -1;
}

int64_t osp_http_server_run(osp_http_server_t *s) {
    if (!s || !s->d || s->opts.mode != OSP_HTTP_EXTERNAL)
        return OSP_EINVAL;
    MHD_run(s->d);
    int64_t sweep_ms = s->slow ? osp__http_slow_sweep(s->slow, osp_now_ns())
                               : -1;
    MHD_UNSIGNED_LONG_LONG t;
    int64_t ms = -1;
    if (MHD_get_timeout(s->d, &t) == MHD_YES && t <= INT64_MAX)
        ms = (int64_t)t;
    if (sweep_ms >= 0 && (ms < 0 || sweep_ms < ms))
        ms = sweep_ms;
    return ms;
}

uint64_t osp_http_server_slow_closes(const osp_http_server_t *s,
                                     osp_http_slow_reason_t why) {
    return s ? osp__http_slow_closes(s->slow, why) : 0;
}

void osp_http_server_quiesce(osp_http_server_t *s) {
    if (!s || !s->d)
        return;
    MHD_socket fd = MHD_quiesce_daemon(s->d);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
}

int osp_http_server_inflight(const osp_http_server_t *s) {
    return atomic_load(&((osp_http_server_t *)s)->inflight);
}

void osp_http_server_destroy(osp_http_server_t *s) {
    if (!s)
        return;
    /* MHD_stop_daemon must not find a suspended connection, nor a handler
     * about to suspend one (in flight from its call, before it
     * suspends): wait until completions (scheduler, timers) have resumed
     * and answered them all. */
    while (s->d && (atomic_load(&s->inflight) > 0 ||
                    atomic_load(&s->suspended) > 0))
        usleep(1000);
    /* Then give queued answers a moment to be written (MHD's own threads
     * do it; an EXTERNAL loop is not running while its owner destroys):
     * stopping closes every connection at once. */
    if (s->d && s->opts.mode != OSP_HTTP_EXTERNAL)
        for (int i = 0; i < 2000 && atomic_load(&s->unwritten) > 0; i++)
            usleep(1000);
    if (s->d)
        MHD_stop_daemon(s->d);
    osp__http_slow_destroy(s->slow);
    pthread_mutex_destroy(&s->susp_mu);
    for (int i = 0; i < s->n_routes; i++) {
        for (int j = 0; j < s->routes[i].n_segs; j++)
            free(s->routes[i].segs[j]);
        free(s->routes[i].pattern);
    }
    free(s);
}

/* ---- accessors -------------------------------------------------------- */

const char *osp_http_req_method(const osp_http_req_t *r) { return r->method; }
const char *osp_http_req_path(const osp_http_req_t *r) { return r->path; }
const char *osp_http_req_route(const osp_http_req_t *r) {
    return r->route ? r->route->pattern : "";
}
const char *osp_http_req_param(const osp_http_req_t *r, const char *name) {
    for (int i = 0; i < r->n_params; i++)
        if (!strcmp(r->params[i][0], name))
            return r->params[i][1];
    return NULL;
}
const char *osp_http_req_query(const osp_http_req_t *r, const char *key) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}
typedef struct query_buf_s {
    char *buf;
    size_t cap, len;
    bool over;
} query_buf_t;

static void qs_put(query_buf_t *q, const char *s, bool encode) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s && !q->over; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = !encode || (c >= 'a' && c <= 'z') ||
                     (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~';
        size_t need = plain ? 1 : 3;
        if (q->len + need >= q->cap) {
            q->over = true;
            return;
        }
        if (plain) {
            q->buf[q->len++] = (char)c;
        } else {
            q->buf[q->len++] = '%';
            q->buf[q->len++] = hex[c >> 4];
            q->buf[q->len++] = hex[c & 15];
        }
    }
    q->buf[q->len] = 0;
}

static enum MHD_Result qs_each(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *value) {
    (void)kind;
    query_buf_t *q = cls;
    qs_put(q, q->len ? "&" : "?", false);
    qs_put(q, key, true);
    if (value) {
        qs_put(q, "=", false);
        qs_put(q, value, true);
    }
    return q->over ? MHD_NO : MHD_YES;
}

int osp_http_req_query_string(const osp_http_req_t *r, char *buf,
                              size_t cap) {
    if (!cap)
        return OSP_ELIMIT;
    query_buf_t q = {buf, cap, 0, false};
    buf[0] = 0;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, qs_each, &q);
    return q.over ? OSP_ELIMIT : (int)q.len;
}

const char *osp_http_req_header(const osp_http_req_t *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}
const uint8_t *osp_http_req_body(const osp_http_req_t *r, size_t *len) {
    if (len)
        *len = r->len;
    return r->body;
}
size_t osp_http_req_response_bytes(const osp_http_req_t *r) {
    return r->resp_len;
}
const char *osp_http_req_id(const osp_http_req_t *r) { return r->id; }
int osp_http_req_peer(const osp_http_req_t *r, char *buf, size_t cap) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    char ip[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof ip);
        port = ntohs(a6->sin6_port);
    } else if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof ip);
        port = ntohs(a4->sin_port);
    }
    bool v6 = strchr(ip, ':') != NULL;
    int n = ip[0] ? snprintf(buf, cap, "%s%s%s:%d", v6 ? "[" : "", ip,
                             v6 ? "]" : "", port)
                  : snprintf(buf, cap, "unknown");
    return n >= 0 && (size_t)n < cap ? n : OSP_ELIMIT;
}
double osp_http_req_elapsed_s(const osp_http_req_t *r) {
    return (double)(osp_now_ns() - r->start_ns) * 1e-9;
}
int osp_http_req_status(const osp_http_req_t *r) { return r->status; }
void osp_http_req_set_user(osp_http_req_t *r, void *user) { r->user = user; }
void *osp_http_req_user(const osp_http_req_t *r) { return r->user; }
