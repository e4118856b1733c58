/* dispatch.h — the dispatcher (`osprey dispatch`): one HTTP front that
 * proxies the worker API (/classify, /v1/models/{m}/..., /v2/...) to a set of
 * `osprey serve` backends, routing by model (learned from each backend's
 * /v2/repository/index), balancing by power-of-two-choices least-outstanding
 * (or round-robin / random), with active health checks, passive ejection
 * with exponential backoff, retries within a budget, a bounded per-model
 * admission queue, and discovery of backends from flags, DNS, Kubernetes
 * EndpointSlices and an admin API. docs/dispatch.md describes the behaviour,
 * docs/decisions.md ("Dispatcher") the choices. */
#ifndef OSPREY_DISPATCH_H
#define OSPREY_DISPATCH_H

#include <stddef.h>
#include <stdio.h>

#include "osprey/common.h"
#include "osprey/log.h"

/* Balancing policies. Append only. */
typedef enum osp_balance_e {
    OSP_BALANCE_P2C = 0, /* two random candidates; the one with fewer
                            outstanding requests, each weighted by the
                            backend's recent latency, wins */
    OSP_BALANCE_RR,      /* round-robin over the candidates */
    OSP_BALANCE_RANDOM,  /* uniform random candidate */
    OSP_BALANCE_P2C_LOR, /* two random candidates; fewer in flight wins
                            (unweighted) */
    OSP_BALANCE_COUNT
} osp_balance_t;
/* "p2c", "rr", "random", "p2c-lor"; never NULL. */
const char *osp_balance_name(osp_balance_t p);
/* Parses a policy name; 0 or OSP_EINVAL. */
int osp_balance_parse(const char *s, osp_balance_t *out);

#define OSP_DISPATCH_DEFAULT_PORT 8000
#define OSP_DISPATCH_DEFAULT_ADMIN_PORT 8001
#define OSP_DISPATCH_DEFAULT_HEALTH_MS 2000      /* active check period */
#define OSP_DISPATCH_DEFAULT_EJECT_AFTER 3       /* consecutive failures */
#define OSP_DISPATCH_DEFAULT_EJECT_BASE_MS 2000  /* first ejection */
#define OSP_DISPATCH_DEFAULT_EJECT_MAX_MS 60000  /* backoff cap */
#define OSP_DISPATCH_DEFAULT_MAX_INFLIGHT 64     /* per backend */
#define OSP_DISPATCH_DEFAULT_QUEUE 256           /* waiting requests per model */
#define OSP_DISPATCH_DEFAULT_QUEUE_TIMEOUT_MS 5000 /* longest admission wait */
#define OSP_DISPATCH_DEFAULT_TIMEOUT_MS 30000    /* request deadline */
#define OSP_DISPATCH_DEFAULT_RETRY_RATIO 0.2     /* retries per request */
#define OSP_DISPATCH_DEFAULT_DNS_MS 5000         /* DNS re-resolve period */
#define OSP_DISPATCH_MAX_BACKENDS 1024

/* How requests are carried (docs/decisions.md "Dispatcher: event path").
 * Append only. */
typedef enum osp_dispatch_io_e {
    OSP_DISPATCH_IO_BLOCKING = 0, /* a thread per client connection, each
                                     blocking in libcurl upstream */
    OSP_DISPATCH_IO_EVENT,        /* --loops event-loop threads, each with
                                     its own front and upstream sockets */
} osp_dispatch_io_t;
/* "blocking", "event"; parse: 0 or OSP_EINVAL. */
const char *osp_dispatch_io_name(osp_dispatch_io_t io);
int osp_dispatch_io_parse(const char *s, osp_dispatch_io_t *out);

typedef struct osp_dispatch_opts_s {
    const char *host;          /* bind address; NULL = 0.0.0.0 */
    int port;                  /* 0 = ephemeral (logged) */
    const char *admin_host;    /* admin API bind; NULL = 127.0.0.1 */
    int admin_port;            /* 0 = ephemeral; < 0 = no admin API */
    const char *admin_token_file; /* the admin API's bearer token (first
                                  line; others may not access the file:
                                  osp_http_bearer_read_file), or NULL:
                                  none, which only a loopback admin_host
                                  allows (create fails otherwise) */
    osp_balance_t policy;
    const char *const *backends; /* static "host:port" list (not owned) */
    int n_backends;
    const char *dns;           /* "NAME:PORT" re-resolved, or NULL */
    int dns_interval_ms;
    const char *k8s_service;   /* "NS/NAME:PORT" (PORT number or name) */
    const char *k8s_api;       /* API server base URL (required with
                                  k8s_service; the CLI passes the in-cluster
                                  one: osp_kube_in_cluster_url) */
    const char *k8s_token_path; /* NULL = the service-account token */
    const char *k8s_ca_path;   /* NULL = the service-account CA */
    int health_interval_ms;
    int eject_after;           /* consecutive failures before ejection */
    int eject_base_ms, eject_max_ms;
    int max_inflight;          /* per backend; more waits in the queue */
    int queue_size;            /* waiting requests per model before 503 */
    int queue_timeout_ms;      /* longest wait for a free backend */
    int request_timeout_ms;    /* without X-Request-Timeout-Ms */
    double retry_ratio;        /* retry budget: retries / requests */
    size_t max_body_bytes;     /* request bodies; larger get 413 */
    uint64_t max_inflight_bytes; /* memory budget for the bodies of requests
                                    in progress, all loops together
                                    (osp_http_budget_t); beyond → 503;
                                    0 = none (the CLI sizes it from the
                                    cgroup memory limit) */
    int max_connections;       /* client connections, all loops together;
                                  the CLI sizes it from RLIMIT_NOFILE */
    int conn_timeout_s;        /* idle client connections; 0 = 30 s */
    int header_timeout_s;      /* request head deadline (osp_http_opts_t);
                                  0 = 10 s, < 0 = off */
    double min_body_rate;      /* bytes/s; 0 = 1024, < 0 = off */
    FILE *log;                 /* JSON log lines; NULL = stderr */
    osp_dispatch_io_t io;      /* see osp_dispatch_io_t */
    int loops;                 /* EVENT: loop threads; 0 = available CPUs */
    const char *autoscaler_url; /* the autoscaler's base URL (its GET
                                   /status feeds the status page), or NULL */
} osp_dispatch_opts_t;
void osp_dispatch_opts_init(osp_dispatch_opts_t *o);

typedef struct osp_dispatch_s osp_dispatch_t;

/* Creates the dispatcher, binds its ports and starts its threads (HTTP,
 * health, discovery). NULL + err on failure. The caller destroys it. */
osp_dispatch_t *osp_dispatch_create(const osp_dispatch_opts_t *o,
                                    osp_err_t *err);
/* Bound ports (useful with 0); admin 0 when disabled. */
int osp_dispatch_port(const osp_dispatch_t *d);
int osp_dispatch_admin_port(const osp_dispatch_t *d);
/* Drain: stop accepting connections, let in-flight requests finish
 * (bounded by timeout_s). 0 when drained, OSP_ETIMEDOUT otherwise. The same
 * pair as osp_serve_drain/_destroy. */
int osp_dispatch_drain(osp_dispatch_t *d, double timeout_s);
/* Stops the threads and frees everything; requests still in flight (no
 * drain, or one that timed out) are cut. NULL is fine. */
void osp_dispatch_destroy(osp_dispatch_t *d);

/* Writes one JSON log line to the dispatcher's log (osp_log_write's format;
 * fields: string key, value pairs ending with NULL). Thread-safe. */
void osp_dispatch_log(osp_dispatch_t *d, const char *level, const char *msg,
                      ...) OSP_LOG_FIELDS;

#endif
