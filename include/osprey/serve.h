/* serve.h — the osprey worker: an HTTP server that classifies images with
 * one model, over a REST endpoint (POST /v1/models/{model}/classify,
 * POST /classify) and the KServe V2 / Open Inference Protocol (health,
 * metadata, JSON infer), with Prometheus metrics at GET /metrics.
 *
 * Request path: HTTP thread (epoll loop) → body limits → decode + preprocess
 * (image module) → per-model scheduler (queue, dynamic batcher, engine
 * instances) → softmax/top-k → JSON. Lifecycle: create (listening at once,
 * /v2/health/live 200, ready 503) → load (engines, warm-up of every batch
 * size; then ready 200) → drain (ready 503, no new connections, in-flight
 * and queued requests finish) → destroy. Endpoint reference and metric names:
 * docs/serve.md. */
#ifndef OSPREY_SERVE_H
#define OSPREY_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "osprey/common.h"
#include "osprey/engine.h"
#include "osprey/log.h"

typedef struct osp_serve_opts_s {
    const char *model_path;     /* the model served as the default model */
    const char *model_repository; /* DIR/<name>/<version>/model.{onnx,tflite}
                                     (+ config.json): latest version of each */
    const char *labels_path;    /* NULL: from the model's config / defaults */
    const char *model_config;   /* NULL: searched beside the model */
    const char *host;           /* bind address; NULL = 0.0.0.0 */
    int port;                   /* 0 = ephemeral (logged, osp_serve_port) */
    int threads;                /* CPU budget; 0 = osp_cpus_available() */
    int instances;              /* engine instances; 0 = 1 */
    osp_precision_t precision;  /* AUTO = the model config's */
    /* int8 on a float --model: calibration images (overrides the model
     * config's "calibration"; not applied to repository models) */
    const char *calibration;
    int calibration_count;      /* 0 = the config's, default 32 */
    size_t max_body_bytes;      /* larger bodies → 413 */
    uint64_t max_pixels;        /* larger images → 413 */
    uint64_t max_inflight_bytes; /* memory budget for request bodies,
                                    decoded images and input tensors of
                                    requests in progress (osp_http_budget_t);
                                    beyond → 503 + Retry-After; 0 = none
                                    (the CLI sizes it from the cgroup memory
                                    limit) */
    int max_batch;              /* capped by the model's own limit */
    int64_t max_queue_delay_us;
    const char *batch_wait;     /* "incoming" (NULL): a batch waits to fill
                                   only while more requests are being
                                   decoded; "delay": always up to
                                   max_queue_delay_us (Triton's rule) */
    const char *preferred_batch_sizes; /* "4,8": batches the batcher prefers
                                          when more is queued; NULL = none */
    int max_queue_size;         /* per model; beyond → 503 + Retry-After */
    /* Queue-delay load shedding (src/serve/shed.c, docs/serve.md "Overload
     * and load shedding"): when the time images wait in a model's queue
     * stays above the target for an interval, new requests for it get 503
     * + Retry-After before their body is decoded, as long as the queue
     * holds more than the target's worth of work. 0 = off. */
    int64_t queue_delay_target_ms;
    int64_t queue_delay_interval_ms; /* > 0 */
    int64_t default_timeout_ms; /* deadline without X-Request-Timeout-Ms */
    int conn_timeout_s;         /* slow / idle clients */
    int max_connections;        /* 0 = 256 (threads mode), 2048 (epoll);
                                   the CLI sizes it from RLIMIT_NOFILE */
    int header_timeout_s;       /* request head deadline (osp_http_opts_t);
                                   0 = 10 s, < 0 = off */
    double min_body_rate;       /* bytes/s; 0 = 1024, < 0 = off */
    const char *http_mode;      /* "epoll" | "threads"; NULL = epoll
                                   (docs/decisions.md "HTTP threading") */
    int http_threads;           /* epoll mode's event-loop threads; 0 = one
                                   per CPU, 1..16 */
    int decode_threads;         /* threads that parse, decode and submit
                                   admitted inference requests, off the
                                   event loops; 0 = one per CPU of the
                                   budget, 1..16 */
    int64_t debug_delay_ms;     /* test/debug: every inference request waits
                                   this long after inference before
                                   answering (a timer; no thread blocks);
                                   0 = off */
    int64_t debug_batch_delay_ms; /* test/debug: an engine instance waits
                                     this long after each batch before it
                                     takes the next (a slower model: fewer
                                     images per second, no CPU spent);
                                     0 = off */
    osp_engine_tuning_t tuning; /* every engine's tuning knobs (all AUTO by
                                   default; docs/engine.md) */
    FILE *log;                  /* JSON log lines; NULL = stderr */
} osp_serve_opts_t;
#define OSP_SERVE_DEFAULT_PORT 8080
#define OSP_SERVE_DEFAULT_TIMEOUT_MS 30000
/* A fifth of the latency SLO (p99 ≤ 500 ms, docs/operations.md), leaving
 * the rest for the batch's own run, decoding and a retry elsewhere. */
#define OSP_SERVE_DEFAULT_QUEUE_DELAY_TARGET_MS 100
/* CoDel's interval: a queue that drains within it is a burst, not
 * overload. */
#define OSP_SERVE_DEFAULT_QUEUE_DELAY_INTERVAL_MS 100
void osp_serve_opts_init(osp_serve_opts_t *o);

typedef struct osp_serve_s osp_serve_t;

/* Creates the server and starts listening (live, not ready). The options'
 * strings must outlive the server. NULL + err on failure. Caller destroys. */
osp_serve_t *osp_serve_create(const osp_serve_opts_t *o, osp_err_t *err);
/* Loads the model(s) (engines, scheduler each) and warms up every batch
 * size; on success /v2/health/ready turns 200. Models become servable one by
 * one as they finish. The default model (/classify) is --model's, else the
 * repository's first by name. */
int osp_serve_load(osp_serve_t *s, osp_err_t *err);
/* The bound port. */
int osp_serve_port(const osp_serve_t *s);
/* Drain: ready → 503 at once, stop accepting connections, wait until no
 * request is in flight (bounded by timeout_s). 0 when drained, OSP_ETIMEDOUT
 * otherwise. The same pair as osp_dispatch_drain/_destroy. */
int osp_serve_drain(osp_serve_t *s, double timeout_s);
/* Stops everything and frees; NULL is fine. Call after a successful drain
 * (or before any request) — with requests still in flight it waits for
 * them. */
void osp_serve_destroy(osp_serve_t *s);

/* Writes one JSON log line {"ts":..., "level":..., "msg":..., ...fields}
 * to the server's log (osp_log_write's format; fields: string key, value
 * pairs ending with NULL). Thread-safe; one write per line. */
void osp_serve_log(osp_serve_t *s, const char *level, const char *msg, ...)
    OSP_LOG_FIELDS;

/* The worker's OpenAPI 3 document (what GET /openapi.json answers), as
 * malloc'd JSON text; NULL when out of memory. The dispatcher builds its own
 * from it (it proxies most of these operations). */
char *osp_serve_openapi_json(size_t *len);

#endif
