/* dispatch_int.h — the dispatcher's private structures and the interfaces
 * between its files: backend set (backend.c), balancing (balance.c), health
 * and backoff (health.c), upstream HTTP (upstream.c), proxying and admission
 * (proxy.c), discovery (discover_*.c) and the admin API (admin.c).
 *
 * Locking: one mutex (d->mu) guards the backend set, every backend's state,
 * in-flight count and model list, the admission queues and the retry budget.
 * It is held only for short, allocation-free bookkeeping; all network I/O
 * runs outside it. Backends are reference counted so that a backend removed
 * by discovery while requests are in flight on it stays valid until they
 * finish. */
#ifndef OSPREY_DISPATCH_INT_H
#define OSPREY_DISPATCH_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "osprey/dispatch.h"
#include "osprey/http.h"
#include "osprey/metrics.h"
#include "osprey/ui.h"

#define DSP_ADDR_MAX 272        /* "host:port" incl. "[v6]" and NUL */
#define DSP_MODEL_NAME_MAX 128  /* model names we track */
#define DSP_MAX_MODELS 256      /* distinct model names (admission queues) */
#define DSP_MAX_MODELS_PER_BACKEND 64
#define DSP_POOL_MAX 256        /* idle upstream handles kept per backend */
#define DSP_MAX_ATTEMPTS 3      /* first try + retries per request */
#define DSP_MAX_LOOPS 64        /* event-loop threads (--loops) */
#define DSP_MAX_RESPONSE_BYTES ((size_t)64 << 20) /* upstream answer cap */
#define DSP_CONNECT_TIMEOUT_MS 1000 /* upstream TCP connect */
#define DSP_PROBE_TIMEOUT_MS 1000   /* one health check */
#define DSP_RETRY_TOKENS_MAX 20.0   /* retry budget bucket size */
#define DSP_DEFAULT_MODEL "_default" /* model label of /classify */
#define DSP_EWMA_TAU_MS 1000.0   /* latency average time constant */
/* Decay of an idle backend's latency estimate, in "fair shares": requests
 * dispatched since its last sample divided by the ready backends. Counting
 * requests rather than seconds bounds what re-trying a slow backend costs
 * to a fraction of traffic (~1 / (50 ln(slow/fast) n)), whatever the rate. */
#define DSP_EWMA_DECAY_SHARES 50.0
#define DSP_EWMA_FLOOR_MS 1.0    /* estimate of a backend with no sample */

/* Backend states. Append only. */
typedef enum osp__dsp_state_e {
    DSP_READY = 0,   /* routable */
    DSP_NOT_READY,   /* not yet probed, probe failed, or draining (503) */
    DSP_EJECTED,     /* outlier: consecutive failures; out until re-probed */
    DSP_STATE_COUNT
} osp__dsp_state_t;
/* "ready", "not_ready", "ejected"; never NULL. */
const char *osp__dsp_state_name(osp__dsp_state_t s);
/* The log line with jansson fields (a reference taken; may be NULL), for the
 * module's own lines with numbers; osp_dispatch_log is the public,
 * string-field form of the same line (dispatch.c). */
void osp__dsp_log(osp_dispatch_t *d, const char *level, const char *msg,
                  json_t *fields);

/* Where a backend came from (a backend may have several sources; it leaves
 * the set when the last one drops it). */
enum {
    DSP_SRC_STATIC = 1,
    DSP_SRC_DNS = 2,
    DSP_SRC_K8S = 4,
    DSP_SRC_ADMIN = 8,
};

typedef struct osp__dsp_backend_s {
    char addr[DSP_ADDR_MAX];  /* "host:port" (IPv6 as "[a::b]:port") */
    char url[DSP_ADDR_MAX + 8]; /* "http://" + addr */
    atomic_int refs;
    /* Guarded by d->mu. */
    unsigned sources;
    bool removed;
    osp__dsp_state_t state;
    int inflight;
    int failures;             /* consecutive failed attempts/probes */
    int eject_level;          /* ejections in a row (backoff exponent) */
    uint64_t eject_until_ns;  /* EJECTED: no probe before this */
    uint64_t ready_since_ns;
    char *models[DSP_MAX_MODELS_PER_BACKEND]; /* served, from the index */
    int n_models;
    bool models_known;
    unsigned long long sent;  /* attempts sent to it */
    unsigned long long ui_sent; /* status page: sent at ui_ns */
    uint64_t ui_ns;
    double ui_rps;            /* status page: attempts/s between its polls */
    double ewma_ms;           /* peak-EWMA of attempt latency (0 = none) */
    uint64_t ewma_ns;         /* when ewma_ms was last updated */
    uint64_t ewma_pick;       /* d->picks at that time */
    double start_sum_ms;      /* sum of in-flight attempts' start times */
    uint64_t overloaded_until_ns; /* answered 503 (shedding, queue full):
                                     picked only when no other candidate
                                     is free until then */
    osp_series_t *s_inflight;
    /* Idle upstream handles, each holding a keep-alive connection. */
    pthread_mutex_t pool_mu;
    CURL *idle[DSP_POOL_MAX];
    int n_idle;
    /* Event path (loop.c): the address resolved once when the backend was
     * added (sa_len 0 = unresolvable: connects fail), and each loop's idle
     * keep-alive connections, touched only by that loop's thread. */
    struct sockaddr_storage sa;
    socklen_t sa_len;
    struct conn_s *ev_idle[DSP_MAX_LOOPS];
} osp__dsp_backend_t;

/* A model the dispatcher routes: its admission queue. Never freed before
 * the dispatcher, so handlers may keep the pointer (metrics label). */
typedef struct osp__dsp_model_s {
    char name[DSP_MODEL_NAME_MAX];
    int waiting;              /* requests in the admission queue */
    osp_series_t *s_depth;
    osp_series_t *s_ok;       /* requests_total{model, code="200"} */
} osp__dsp_model_t;

/* The status page's ring of per-second samples (status.c). */
#define DSP_STATS_SECONDS 60
#define DSP_STATS_PER_OCTAVE 8   /* latency buckets per doubling (±4.4%) */
#define DSP_STATS_BUCKETS 200    /* 0.01 ms .. 5.6 min */
#define DSP_STATS_LO_MS 0.01
typedef struct osp__dsp_sec_s {
    int64_t sec;               /* the Unix second this slot holds */
    uint32_t n, err4, err5;    /* answered, of which 4xx and 5xx */
    double sum_ms;
    uint32_t hist[DSP_STATS_BUCKETS];
} osp__dsp_sec_t;
typedef struct osp__dsp_stats_s {
    pthread_mutex_t mu;
    osp__dsp_sec_t ring[DSP_STATS_SECONDS];
} osp__dsp_stats_t;

struct osp_dispatch_s {
    osp_dispatch_opts_t o;
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* a backend slot freed / the set changed */
    osp__dsp_backend_t **b;        /* the set (each holds one reference) */
    int n_b, cap_b;
    uint64_t rng;
    unsigned rr;
    uint64_t picks;           /* attempts dispatched (latency decay clock) */
    osp__dsp_model_t models[DSP_MAX_MODELS];
    int n_models;
    osp__dsp_model_t default_model; /* /classify without a model name */
    osp__dsp_model_t unknown_model; /* label "" for names no backend serves */
    int waiting;              /* sum over the queues */
    double retry_tokens;
    bool stop;

    /* Health thread (woken early when a backend is added). */
    pthread_t health_th;
    bool health_started, health_kick;
    pthread_cond_t health_cv;

    /* Event path (--io event): the loop threads, each with its own HTTP
     * front; d->http is then NULL. */
    struct loop_s **loops;
    int n_loops;

    pthread_t dns_th, k8s_th;
    bool dns_started, k8s_started;
    atomic_bool stop_flag;    /* read by discovery transfers (no lock) */

    osp_http_server_t *http, *admin;
    /* The admin API's bearer token (from o.admin_token_file; "" = none,
     * allowed on a loopback address only): admin.c checks it. */
    char admin_token[OSP_HTTP_BEARER_MAX + 1];
    osp_metrics_t *metrics;
    osp_metric_t *m_requests, *m_duration, *m_depth, *m_inflight,
        *m_backends, *m_retries, *m_ejections;
    osp_series_t *s_retries, *s_ejections, *s_duration;
    osp_series_t *s_rx, *s_tx; /* HTTP body bytes received / sent (front) */
    osp_series_t *s_slow[OSP_HTTP_SLOW_COUNT]; /* slow clients cut (front) */
    osp_http_budget_t *budget; /* request bodies, all fronts (NULL: none) */
    pthread_mutex_t log_mu;

    /* The web UI: request samples, the OpenAPI document (rendered once),
     * and the autoscaler's last /status (as_mu guards the as_* fields). */
    osp__dsp_stats_t stats;
    char *openapi;
    size_t openapi_len;
    pthread_t as_th;
    bool as_started;
    pthread_mutex_t as_mu;
    json_t *as_status;        /* last good answer, or NULL */
    uint64_t as_ok_ns;
    char as_error[256];       /* last failure; "" after a success */
};

/* ---- backend.c -------------------------------------------------------- */
/* Normalises "host:port" (host a name, IPv4 or [IPv6]; port 1..65535) into
 * out ("[v6]:port" for bare IPv6 with port given as host%port is not
 * accepted). 0 or OSP_EINVAL. */
int osp__dsp_addr_parse(const char *in, char *out, size_t cap);
/* Adds source to the backend at addr, creating it (not ready until its
 * first probe). 0, OSP_EINVAL (bad address) or OSP_ELIMIT/OSP_ENOMEM. */
int osp__dsp_backend_add(osp_dispatch_t *d, const char *addr,
                         unsigned source);
/* Drops source from addr's backend; the backend leaves the set when no
 * source is left. 0 or OSP_ENOENT. */
int osp__dsp_backend_remove(osp_dispatch_t *d, const char *addr,
                            unsigned source);
/* Makes source's backends exactly addrs[0..n): adds the new ones, drops
 * source from the others. */
int osp__dsp_backend_sync(osp_dispatch_t *d, unsigned source,
                          char *const *addrs, int n);
/* A referenced copy of the set (caller unrefs each and frees the array). */
int osp__dsp_backend_snapshot(osp_dispatch_t *d, osp__dsp_backend_t ***out,
                              int *n);
void osp__dsp_backend_ref(osp__dsp_backend_t *b);
void osp__dsp_backend_unref(osp__dsp_backend_t *b);
bool osp__dsp_backend_serves(const osp__dsp_backend_t *b, const char *model);
/* Outcome of an attempt or probe (ok = answered and not a server error).
 * Failures in a row reaching eject_after eject the backend. Under d->mu. */
void osp__dsp_backend_result_locked(osp_dispatch_t *d, osp__dsp_backend_t *b,
                                    bool ok);
/* The model table entry for name (NULL name = the default model), created
 * when create is set (only for names learned from a backend's index, so
 * that clients cannot fill the table); NULL when absent or full. Under
 * d->mu. */
osp__dsp_model_t *osp__dsp_model_locked(osp_dispatch_t *d, const char *name,
                                        bool create);
/* Refreshes osprey_dispatch_backends{model,state}. */
void osp__dsp_backend_gauges(osp_dispatch_t *d);

/* ---- balance.c -------------------------------------------------------- */
/* Next value of a splitmix64 generator (deterministic from *state). */
uint64_t osp__dsp_rand(uint64_t *state);
/* Picks one of n >= 1 candidates whose loads are cost[] (see _cost):
 * P2C / P2C_LOR = the lower cost of two distinct random ones (ties: the
 * first drawn), RR = (*rr)++ mod n, RANDOM = uniform. Returns the index. */
int osp__dsp_balance_pick(osp_balance_t p, const double *cost, int n,
                          uint64_t *rng, unsigned *rr);
/* A backend's load for policy p: P2C_LOR = in-flight requests; P2C =
 * (in-flight + 1) × its latency estimate, i.e. the expected wait of one
 * more request. The estimate is the peak-EWMA ewma_ms, decayed towards
 * zero while the backend gets no traffic (age_shares: requests dispatched
 * since its last sample / ready backends), so
 * that a backend avoided for being slow is tried again now and then and
 * can prove it recovered; floor_ms stands in for backends with no sample
 * yet. */
double osp__dsp_cost(osp_balance_t p, int inflight, double ewma_ms,
                     double age_shares, double floor_ms);
/* Folds one latency sample (ms, dt_ms after the previous one) into a
 * peak-EWMA: a sample above the average replaces it (slowness shows at
 * once), others are averaged in with time constant DSP_EWMA_TAU_MS. */
double osp__dsp_ewma(double ewma_ms, double sample_ms, double dt_ms);

/* ---- health.c --------------------------------------------------------- */
/* Ejection time for the level-th ejection in a row (1-based): base × 2^(l-1),
 * capped at max. */
int64_t osp__dsp_backoff_ms(int base_ms, int max_ms, int level);
int osp__dsp_health_start(osp_dispatch_t *d);
void osp__dsp_health_kick(osp_dispatch_t *d);
/* Parses a /v2/repository/index answer into READY model names (strdup'd;
 * caller frees). Returns the count or OSP_EFORMAT. */
int osp__dsp_parse_index(const char *body, size_t len, char **names,
                         int max);

/* ---- upstream.c ------------------------------------------------------- */
typedef struct osp__dsp_resp_s {
    long status;               /* 0 when no answer */
    char content_type[128];
    char ihcl[32];             /* Inference-Header-Content-Length */
    char retry_after[32];
    uint8_t *body;             /* malloc'd; caller frees */
    size_t len, cap, max;
} osp__dsp_resp_t;
/* An upstream handle for b (idle one with its connection, or new); NULL on
 * out-of-memory. Give it back with _put. */
CURL *osp__dsp_upstream_get(osp__dsp_backend_t *b);
void osp__dsp_upstream_put(osp__dsp_backend_t *b, CURL *h);
/* Sets the options every upstream handle keeps (no signals, TCP_NODELAY,
 * http only). */
void osp__dsp_upstream_init(CURL *h);
/* Performs one request on h (method "GET"/"POST"/...; body may be NULL).
 * Fills resp; returns the curl code. */
CURLcode osp__dsp_upstream_do(CURL *h, const char *method, const char *url,
                              struct curl_slist *headers, const void *body,
                              size_t len, long timeout_ms,
                              long connect_timeout_ms, osp__dsp_resp_t *resp);
/* Performs a transfer already configured on h (URL, headers, method),
 * collecting the answer into resp. Returns the curl code. */
CURLcode osp__dsp_upstream_perform(CURL *h, osp__dsp_resp_t *resp);
void osp__dsp_resp_free(osp__dsp_resp_t *r);

/* ---- upstream answers (event path) ------------------------------------ */
/* Read by osp_http_h1resp_* (include/osprey/http.h) in its keep mode. */
#define DSP_H1_MAX_HEAD 16384  /* status line + headers (+ trailers) */

/* ---- proxy.c ---------------------------------------------------------- */
/* Routes the proxied worker API (classify, V1/V2 model paths) to fn: the
 * blocking path's osp__dsp_h_proxy (stream_min 0: bodies buffered whole)
 * or an event loop's handler (POST bodies of stream_min bytes or more are
 * streamed: osp_http_route_stream). */
int osp__dsp_proxy_routes(osp_http_server_t *s, osp_http_handler_fn fn,
                          void *ud, size_t stream_min);
/* The blocking path's handler (thread-per-connection front). */
void osp__dsp_h_proxy(osp_http_req_t *req, void *ud);
typedef enum osp__dsp_pick_e {
    DSP_PICK_OK = 0,  /* *out: a referenced backend with an in-flight slot */
    DSP_PICK_NONE,    /* no ready candidate */
    DSP_PICK_UNKNOWN, /* every index known and none serves the model */
    DSP_PICK_BUSY,    /* candidates exist but all are at --max-inflight */
    DSP_PICK_FULL,    /* the admission queue is full */
    DSP_PICK_TIMEOUT, /* waited in the queue too long */
    DSP_PICK_STOP,    /* shutting down */
} osp__dsp_pick_t;
/* One balancing decision without waiting (OK, NONE, UNKNOWN, BUSY, STOP);
 * skips tried[]. On OK, *start_ns = now (the attempt's start). Under
 * d->mu. */
osp__dsp_pick_t osp__dsp_pick_locked(osp_dispatch_t *d, const char *model,
                                     osp__dsp_backend_t *const *tried,
                                     int n_tried, osp__dsp_backend_t **out,
                                     uint64_t *start_ns);
/* Admission-queue accounting (+1 entering, -1 leaving). Under d->mu. */
void osp__dsp_queue_locked(osp_dispatch_t *d, osp__dsp_model_t *q, int delta);
/* A slot freed or the set changed: wakes blocked pickers and, when
 * requests wait, the event loops. Under d->mu. */
void osp__dsp_wake_locked(osp_dispatch_t *d);
/* Gives back b's in-flight slot and the reference from the pick; outcome
 * > 0 success (latency sample), 0 failure (ejection accounting), < 0
 * neither; DSP_OUTCOME_OVERLOADED (a 503): neither, and b is picked last
 * for DSP_OVERLOAD_BACKOFF_MS, so a worker that sheds load is not sent
 * half the traffic only for the retry budget to run out on its refusals. */
#define DSP_OUTCOME_OVERLOADED (-2)
/* About a worker's --queue-delay-interval-ms: long enough for its queue
 * to drain and its shedding to end, short enough to use it again soon. */
#define DSP_OVERLOAD_BACKOFF_MS 100
void osp__dsp_release(osp_dispatch_t *d, osp__dsp_backend_t *b, int outcome,
                      uint64_t start_ns);
/* Takes one retry token if the budget has one. */
bool osp__dsp_retry_allowed(osp_dispatch_t *d);
/* What both paths work out before the first attempt. */
typedef struct osp__dsp_call_s {
    osp__dsp_model_t *q;
    const char *model;         /* NULL = the default model */
    uint64_t start, deadline, wait_until;
    char path[2048];           /* path + query string */
} osp__dsp_call_t;
/* Deadline, model, path; 0 = go on, 1 = already answered (bad timeout
 * header, unknown model, query too long). Sets the request's user slot. */
int osp__dsp_proxy_begin(osp_dispatch_t *d, osp_http_req_t *req,
                         osp__dsp_call_t *c);
/* Answers a first pick that found no backend (404 / 503 + Retry-After). */
void osp__dsp_proxy_refuse(osp_http_req_t *req, osp__dsp_pick_t p,
                           const osp__dsp_call_t *c);

/* ---- dispatch.c -------------------------------------------------------- */
/* The dispatcher's own endpoints (health, metadata, index, metrics). */
int osp__dsp_own_routes(osp_dispatch_t *d, osp_http_server_t *s);
/* The client-facing front's HTTP options from d->o (bind address, limits,
 * slow-client deadlines, their counters), for one of n_fronts fronts (the
 * event loops), which share the connection limit. */
void osp__dsp_front_opts(const osp_dispatch_t *d, int n_fronts,
                         osp_http_opts_t *ho);
/* Request metrics and the 5xx log line (the fronts' done hook; ud = d). */
void osp__dsp_on_done(osp_http_req_t *r, int status, double seconds,
                      void *ud);

/* ---- status.c, autoscaler.c, openapi.c: the web UI's data ---------- */
void osp__dsp_stats_init(osp__dsp_stats_t *s);
void osp__dsp_stats_fini(osp__dsp_stats_t *s);
/* One answered proxied request in Unix second sec, taking ms, with the
 * HTTP status. Thread-safe. */
void osp__dsp_stats_record(osp__dsp_stats_t *s, int64_t sec, double ms,
                           int status);
/* The minute before second now_sec: {window_s, rps (the last complete
 * second), rps_1m, requests_1m, mean_ms, p50_ms, p95_ms, p99_ms,
 * errors_4xx_1m, errors_5xx_1m, error_rate (5xx share), series: 60 ×
 * {t, requests, errors, p50_ms, p99_ms}}. Thread-safe. */
json_t *osp__dsp_stats_json(osp__dsp_stats_t *s, int64_t now_sec);
/* The status page's req/s of backend b: attempts sent since the last
 * sample, at least a second ago (the page's polls and the health loop
 * share it). Caller holds d->mu. */
void osp__dsp_backend_rate(osp__dsp_backend_t *b, uint64_t now);
/* GET /, /ui/status, /ui/status.json, /docs, /openapi.json, /ui/{asset}. */
int osp__dsp_ui_routes(osp_dispatch_t *d, osp_http_server_t *s);
/* Starts the --autoscaler-url poller (nothing without the flag). */
int osp__dsp_autoscaler_start(osp_dispatch_t *d, osp_err_t *err);
/* {url, ok, error, age_s, status: the last /status or null}; NULL without
 * --autoscaler-url. */
json_t *osp__dsp_autoscaler_json(osp_dispatch_t *d);
/* The dispatcher's OpenAPI document (its own endpoints and the proxied
 * worker API); malloc'd JSON text or NULL. */
char *osp__dsp_openapi(size_t *len);

/* ---- loop.c: the event path ------------------------------------------- */
/* Starts n loop threads, each with its own HTTP front (EXTERNAL mode, all
 * on the configured port) and upstream connections. 0 or < 0 + err. */
int osp__dsp_loops_start(osp_dispatch_t *d, int n, osp_err_t *err);
/* Drain (stop accepting, wait up to until_ns for answers), stop, join and
 * free the loops. 0, or OSP_ETIMEDOUT when requests were still in flight at
 * until_ns; 0 when there are no loops (already stopped, or blocking io). */
int osp__dsp_loops_stop(osp_dispatch_t *d, uint64_t until_ns);
/* The port the loops listen on. */
int osp__dsp_loops_port(const osp_dispatch_t *d);
/* Wakes every loop to retry its queued requests. Any thread. */
void osp__dsp_loops_kick(osp_dispatch_t *d);
/* Resolves a normalised "host:port" into sa (blocking getaddrinfo, first
 * TCP address); *len 0 when it cannot be resolved. */
void osp__dsp_addr_resolve(const char *addr, struct sockaddr_storage *sa,
                           socklen_t *len);

/* ---- discovery and admin ---------------------------------------------- */
int osp__dsp_discover_static(osp_dispatch_t *d, osp_err_t *err);
int osp__dsp_discover_dns_start(osp_dispatch_t *d, osp_err_t *err);
int osp__dsp_discover_k8s_start(osp_dispatch_t *d, osp_err_t *err);
int osp__dsp_admin_routes(osp_dispatch_t *d, osp_http_server_t *s);

/* EndpointSlice parsing (discover_k8s.c; pure, for tests). An endpoint set
 * is a list of "addr:port" strings of READY endpoints. */
typedef struct osp__dsp_k8s_slice_s {
    char name[256];
    char **addrs;   /* owned */
    int n_addrs;
} osp__dsp_k8s_slice_t;
void osp__dsp_k8s_slice_fini(osp__dsp_k8s_slice_t *s);
/* One EndpointSlice object → its ready endpoints on port (a number, or a
 * port name looked up in the slice's ports). 0 or OSP_EFORMAT. */
int osp__dsp_k8s_parse_slice(json_t *obj, const char *port,
                             osp__dsp_k8s_slice_t *out, osp_err_t *err);
/* A LIST answer (EndpointSliceList): slices (caller frees each + array) and
 * metadata.resourceVersion. */
int osp__dsp_k8s_parse_list(const char *body, size_t len, const char *port,
                            osp__dsp_k8s_slice_t **slices, int *n,
                            char *rv, size_t rv_cap, osp_err_t *err);
/* Watch event kinds. */
typedef enum osp__dsp_k8s_ev_e {
    DSP_K8S_ADDED = 0,
    DSP_K8S_MODIFIED,
    DSP_K8S_DELETED,
    DSP_K8S_BOOKMARK,
    DSP_K8S_GONE,     /* ERROR with code 410: relist */
    DSP_K8S_ERROR,    /* other ERROR */
    DSP_K8S_EV_COUNT
} osp__dsp_k8s_ev_t;
/* One watch line → kind, the slice (ADDED/MODIFIED/DELETED) and the
 * object's resourceVersion (when present). 0 or OSP_EFORMAT. */
int osp__dsp_k8s_parse_event(const char *line, size_t len, const char *port,
                             osp__dsp_k8s_ev_t *kind,
                             osp__dsp_k8s_slice_t *slice, char *rv,
                             size_t rv_cap, osp_err_t *err);

#endif
