/* serve_int.h — private structures of the worker shared by serve.c
 * (lifecycle, model loading, metrics, logging) and endpoints.c (the HTTP
 * handlers). */
#ifndef OSPREY_SERVE_SERVE_INT_H
#define OSPREY_SERVE_SERVE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "osprey/http.h"
#include "osprey/metrics.h"
#include "osprey/model.h"
#include "osprey/sched.h"
#include "osprey/serve.h"

#define SERVE_MAX_INSTANCES 16 /* engine instances per model */
#define SERVE_MAX_IMAGES 64    /* images per classify request */
#define SERVE_MAX_TOP_K 1000   /* top_k query parameter */
#define SERVE_MAX_TIMEOUT_MS 3600000 /* X-Request-Timeout-Ms upper bound */
#define SERVE_MAX_MODELS 128   /* model versions per worker */
#define SERVE_MAX_FAILED 32    /* failed loads remembered for the index */
#define SERVE_MAX_DECODE_THREADS 16 /* --decode-threads (as --http-threads) */
/* Connections in epoll mode (idle keep-alive ones cost a few KiB each, no
 * thread); thread-per-connection keeps http.h's 256. */
#define SERVE_EPOLL_MAX_CONNECTIONS 2048

/* Where a model version is in its life (repository index "state"). */
typedef enum osp__serve_state_e {
    SERVE_LOADING = 0, /* engines loading / warming up: takes no traffic */
    SERVE_READY,       /* serves requests */
    SERVE_UNLOADING,   /* no new requests; waits for the ones in flight */
    SERVE_STATE_COUNT
} osp__serve_state_t;
const char *osp__serve_state_name(osp__serve_state_t st); /* "READY", ... */

/* A timer resuming suspended requests (timer.c; --debug-delay-ms). */
typedef struct osp__serve_timer_s osp__serve_timer_t;
/* One entry; lives in the request's arena. */
typedef struct osp__serve_tnode_s {
    struct osp__serve_tnode_s *next;
    uint64_t due_ns;            /* osp_now_ns() time */
    osp_http_req_t *r;
} osp__serve_tnode_t;
/* Starts the timer thread; NULL when out of memory / threads. */
osp__serve_timer_t *osp__serve_timer_create(void);
/* Resumes r (suspended) at due_ns. Any thread. */
void osp__serve_timer_add(osp__serve_timer_t *t, osp__serve_tnode_t *n,
                          uint64_t due_ns, osp_http_req_t *r);
/* Resumes what is pending when due, then stops and frees. */
void osp__serve_timer_destroy(osp__serve_timer_t *t);

/* The decode threads (pool.c): admitted inference requests are parsed,
 * decoded and submitted there, off the HTTP event loops. */
typedef struct osp__serve_pool_s osp__serve_pool_t;
/* One job; lives in the request's arena (a suspended request lives). */
typedef struct osp__serve_job_s {
    struct osp__serve_job_s *next;
    void (*fn)(struct osp__serve_job_s *j); /* on a decode thread */
} osp__serve_job_t;
/* Starts n_threads (1..SERVE_MAX_DECODE_THREADS); NULL on failure. */
osp__serve_pool_t *osp__serve_pool_create(int n_threads);
/* Runs j->fn(j) on a decode thread, first in first out. Any thread. */
void osp__serve_pool_post(osp__serve_pool_t *p, osp__serve_job_t *j);
/* Runs what is queued, then stops the threads and frees. */
void osp__serve_pool_destroy(osp__serve_pool_t *p);

/* Queue-delay load shedding for one model (shed.c). */
typedef struct osp__serve_shed_s {
    pthread_mutex_t mu;
    uint64_t target_ns;       /* 0 = off: everything is admitted */
    uint64_t interval_ns;
    uint64_t above_since_ns;  /* first of a run of samples above the
                                 target (osp_now_ns time); 0 = none */
    uint64_t last_shed_ns;    /* last refusal (or the start of shedding) */
    bool shedding;
    double delay_s;           /* the latest image's wait (admission to
                                 batch start) */
    uint64_t last_sample_ns;  /* when it was measured */
    double rate_per_s;        /* images the engines serve per second while
                                 busy: the lower of batch_avg / gap_avg_s
                                 and batch_fast / gap_fast_s; 0 = not yet */
    double batch_avg;         /* images per batch (EWMA over busy gaps) */
    double gap_avg_s;         /* time from one batch's end to the next's,
                                 when the engines had work waiting (EWMA) */
    double batch_fast, gap_fast_s; /* the same over the last batch or two:
                                 the rate follows a slowdown at once */
    uint64_t last_batch_ns;   /* the latest batch's end */
    bool busy;                /* it ended with more work waiting */
    double latency_s;         /* admission → batch done (EWMA) */
    uint64_t shed_wait_ns;    /* Σ latency_s over refusals: the in-flight
                                 time the shed requests stand for */
} osp__serve_shed_t;
void osp__serve_shed_init(osp__serve_shed_t *c, int64_t target_ms,
                          int64_t interval_ms);
void osp__serve_shed_fini(osp__serve_shed_t *c);
/* Admission of a request for a model with `depth` admitted and not yet
 * running (images queued + requests being prepared on decode threads):
 * true = admit, false = shed (answer 503 now). *change: +1 when shedding
 * started, -1 when it stopped, 0 otherwise (for the log); *limit: the
 * depth it admits below while shedding. */
bool osp__serve_shed_admit(osp__serve_shed_t *c, int depth, uint64_t now,
                           int *change, double *limit);
/* One admitted image's outcome: how long it waited from its admission to
 * the start of its batch (decode included), its batch's run time and what
 * was ahead of it when it was admitted (0: nothing, for the idle check).
 * Returns +1 / -1 / 0 as *change above. */
int osp__serve_shed_observe(osp__serve_shed_t *c, double wait_s,
                            double infer_s, int ahead, uint64_t now);
/* A batch of n images ended at `now` (any instance); more: work was
 * waiting for the engines then (they go straight on). The drain rate. */
void osp__serve_shed_batch(osp__serve_shed_t *c, int n, bool more,
                           uint64_t now);
/* A consistent copy of the state, for /metrics and the log, after ending
 * shedding if it is over (the queue holds `depth` images; depth < 0: do
 * not check). Returns -1 when it ended here, else 0. */
int osp__serve_shed_read(osp__serve_shed_t *c, int depth, uint64_t now,
                         bool *shedding, double *delay_s, double *rate_per_s,
                         uint64_t *shed_wait_ns);

/* One served model: one version of one name. */
typedef struct osp__serve_model_s {
    char *name;                        /* owned */
    char *version;                     /* owned ("1" for --model) */
    long long vnum;                    /* version as a number */
    int threads;                       /* CPUs it holds: instances x engine
                                          threads (the budget's accounting) */
    atomic_int state;                  /* osp__serve_state_t */
    osp_model_t *m;
    osp_engine_t *engines[SERVE_MAX_INSTANCES];
    int n_engines;
    osp_sched_t *sched;
    const osp_preprocess_t *pp;
    size_t sample_bytes;
    int num_classes;
    int refs;                          /* handlers using it (models_mu) */
    osp__serve_shed_t shed;            /* load shedding (shed.c) */
    atomic_int preparing;              /* requests admitted and not yet in
                                          the queue (being decoded, or
                                          waiting for a decode thread):
                                          admission counts them as queued */
    int max_queue;                     /* the scheduler's max_queue_size:
                                          admission holds queued plus
                                          preparing requests under it */
    int64_t debug_batch_delay_ms;      /* --debug-batch-delay-ms */
    /* metric series for this model */
    osp_series_t *queue_depth, *model_ready, *h_request, *h_queue, *h_infer,
        *h_decode, *h_batch, *shed_total, *queue_delay, *shedding;
} osp__serve_model_t;

struct osp_serve_s {
    osp_serve_opts_t o;
    osp_http_server_t *http;
    osp_http_budget_t *budget;  /* NULL: no --max-inflight-bytes */
    osp_http_mode_t http_mode;
    bool batch_wait_delay;             /* --batch-wait delay */
    osp__serve_timer_t *timer;              /* with --debug-delay-ms only */
    osp__serve_pool_t *pool;           /* decode threads (pool.c) */
    osp_metrics_t *metrics;
    osp_metric_t *m_requests, *m_duration, *m_queue, *m_infer, *m_decode,
        *m_batch, *m_depth, *m_inflight, *m_ready, *m_build, *m_capacity,
        *m_instances, *m_shed, *m_qdelay, *m_shedding;
    /* Shed demand in osprey_inflight_requests (Little's law between two
     * scrapes, endpoints.c h_metrics), under log_mu's sibling scrape_mu. */
    pthread_mutex_t scrape_mu;
    uint64_t scrape_ns, scrape_shed_wait_ns;
    osp_series_t *s_rx, *s_tx; /* HTTP body bytes received / sent */
    /* Model versions (loading, ready, unloading), under models_mu.
     * Handlers hold a reference (acquire/release) while they use one;
     * unloading marks it SERVE_UNLOADING (no new references) and waits on
     * models_cv for the references to drop before freeing it. */
    pthread_mutex_t models_mu;
    pthread_cond_t models_cv;
    osp__serve_model_t *models[SERVE_MAX_MODELS];
    int n_models;
    char *default_name;                /* /classify's model (latest version) */
    int cpus;                          /* the CPU budget of every engine */
    /* Repository operations (load, reload, unload) one at a time. */
    pthread_mutex_t repo_mu;
    /* Versions whose last load failed, for the index (models_mu). */
    struct {
        char name[OSP_MODEL_NAME_MAX + 1], version[24], reason[256];
    } failed[SERVE_MAX_FAILED];
    int n_failed;
    atomic_int loaded;                 /* the initial load finished */
    atomic_int ready;                  /* 1 after warm-up, 0 while draining */
    atomic_int draining;
    int unknown_model;                 /* marker: a request for a missing model */
    pthread_mutex_t log_mu;
    char *openapi;                     /* the spec, rendered once at create */
    size_t openapi_len;
};

/* A JSON text writer into a request arena (jsonw.c). On out-of-memory it
 * sets oom and ignores further writes: check once at the end. */
typedef struct osp__serve_jw_s {
    osp_arena_t *a;
    char *buf;          /* NUL-terminated text so far */
    size_t len, cap;
    bool oom;
} osp__serve_jw_t;
void osp__serve_jw_init(osp__serve_jw_t *w, osp_arena_t *a, size_t cap);
void osp__serve_jw_raw(osp__serve_jw_t *w, const char *s, size_t n);
/* raw, NUL-terminated */
void osp__serve_jw_lit(osp__serve_jw_t *w, const char *s);
/* quoted + escaped */
void osp__serve_jw_str(osp__serve_jw_t *w, const char *s);
/* %.{digits}g */
void osp__serve_jw_num(osp__serve_jw_t *w, double v, int digits);
void osp__serve_jw_int(osp__serve_jw_t *w, long long v);

/* What a route takes as its body, for the OpenAPI spec. */
typedef enum osp__serve_body_e {
    SERVE_BODY_NONE = 0,
    SERVE_BODY_IMAGE,   /* multipart file parts or a raw image */
    SERVE_BODY_V2,      /* KServe V2 inference request */
    SERVE_BODY_COUNT
} osp__serve_body_t;

/* One endpoint: routing and its description in /openapi.json come from the
 * same table, so the spec cannot miss a route. */
typedef struct osp__serve_route_s {
    const char *method, *pattern;
    osp_http_handler_fn fn;
    const char *summary;
    osp__serve_body_t body;
    const char *codes;    /* statuses it answers, e.g. "200 400 404" */
    const char *schema;   /* components/schemas name of the 200 body */
    const char *ctype;    /* 200 content type; NULL = application/json */
} osp__serve_route_t;

/* Renders the OpenAPI 3 document for these routes (malloc'd JSON text). */
char *osp__serve_openapi(const osp__serve_route_t *routes, int n, size_t *len);

/* Registers every route on s->http (endpoints.c). */
int osp__serve_routes(osp_serve_t *s);
/* The log line with jansson fields (a reference taken; may be NULL), for the
 * module's own lines with numbers; osp_serve_log is the public, string-field
 * form of the same line (serve.c). */
void osp__serve_log(osp_serve_t *s, const char *level, const char *msg,
                    json_t *fields);
/* Takes a reference on a READY version of the model called `name` (NULL =
 * the default model): `version`, or NULL for the highest ready version.
 * NULL if there is none. Release with osp__serve_release. */
osp__serve_model_t *osp__serve_acquire(osp_serve_t *s, const char *name,
                                       const char *version);
void osp__serve_release(osp_serve_t *s, osp__serve_model_t *sm);
/* Repository extension: (re)loads `name` from --model-repository so that
 * the versions its version_policy selects on disk are served (new ones
 * loaded and warmed before they take traffic, dropped ones drained and
 * unloaded), or unloads every version (waiting for their requests). */
int osp__serve_load_named(osp_serve_t *s, const char *name, osp_err_t *err);
int osp__serve_unload(osp_serve_t *s, const char *name, osp_err_t *err);
/* The repository index: every version loaded, loading, unloading or failed
 * and every version on disk, [{"name", "version", "state", "reason"?}],
 * sorted by name then version; ready_only: READY ones only. */
json_t *osp__serve_index(osp_serve_t *s, bool ready_only);

#endif
