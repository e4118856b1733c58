/* autoscale.h — the autoscaler's decisions: the Kubernetes HPA algorithm
 * (autoscaling/v2: tolerance, min/max, `behavior` with stabilization windows
 * and rate policies) with a panic mode on top (as Knative's KPA), and a
 * simulator that runs those decisions against a queueing model of workers
 * driven by a load trace.
 *
 * The policy is a pure function of the samples it is fed and the times it is
 * given (no clock, no I/O): the CLI's control loop feeds it the metrics it
 * read (from Prometheus or by scraping /metrics itself) and acts on the
 * replica count it returns (a Deployment's scale subresource, or local
 * worker processes); the simulator feeds it simulated metrics in simulated
 * time. So one code decides everywhere, and tests replay recorded metric
 * sequences with exact expected counts. docs/autoscale.md explains the
 * algorithm with a worked example.
 *
 * Not thread-safe: one policy object per control loop. */
#ifndef OSPREY_AUTOSCALE_H
#define OSPREY_AUTOSCALE_H

#include <stdbool.h>
#include <stdint.h>

#include "osprey/common.h"
#include "osprey/kube.h"
#include "osprey/load.h"

/* ------------------------------------------------------------------------
 * Behavior: the HPA's autoscaling/v2 HPAScalingRules, one set for scale-up
 * and one for scale-down, with the same field meanings and defaults. */
#define OSP_AUTOSCALE_MAX_POLICIES 8
#define OSP_AUTOSCALE_MAX_METRICS 8

typedef enum osp_autoscale_rate_type_e {
    OSP_AUTOSCALE_RATE_PODS = 0,    /* "Pods": change by value replicas */
    OSP_AUTOSCALE_RATE_PERCENT,     /* "Percent": change by value % */
    OSP_AUTOSCALE_RATE_TYPE_COUNT
} osp_autoscale_rate_type_t;
/* "Pods", "Percent" (the HPA's spellings); never NULL. */
const char *osp_autoscale_rate_type_name(osp_autoscale_rate_type_t t);
int osp_autoscale_rate_type_parse(const char *s, osp_autoscale_rate_type_t *out);

typedef enum osp_autoscale_select_e {
    OSP_AUTOSCALE_SELECT_MAX = 0,   /* "Max": the policy allowing most change */
    OSP_AUTOSCALE_SELECT_MIN,       /* "Min": the policy allowing least */
    OSP_AUTOSCALE_SELECT_DISABLED,  /* "Disabled": no change this direction */
    OSP_AUTOSCALE_SELECT_COUNT
} osp_autoscale_select_t;
const char *osp_autoscale_select_name(osp_autoscale_select_t s);
int osp_autoscale_select_parse(const char *s, osp_autoscale_select_t *out);

typedef struct osp_autoscale_rate_s {
    osp_autoscale_rate_type_t type;
    int value;          /* replicas, or percent; > 0 */
    int period_s;       /* 1..1800 (the HPA's bounds) */
} osp_autoscale_rate_t;

typedef struct osp_autoscale_rules_s {
    int stabilization_s;            /* 0..3600 */
    osp_autoscale_select_t select;
    int n_policies;                 /* >= 1 unless select is Disabled */
    osp_autoscale_rate_t policies[OSP_AUTOSCALE_MAX_POLICIES];
} osp_autoscale_rules_t;

/* ------------------------------------------------------------------------
 * Metrics. A metric is either a total over the system with a target per
 * ready replica (concurrency, rps, queue, a PromQL query: the HPA's
 * AverageValue target, desired = ceil(total / target)) or a value with a
 * target for the whole service (latency-p95: the HPA's Value target,
 * desired = ceil(ready × value / target)). */
typedef enum osp_autoscale_metric_e {
    OSP_AUTOSCALE_METRIC_CONCURRENCY = 0, /* in-flight + queued requests */
    OSP_AUTOSCALE_METRIC_RPS,             /* requests per second */
    OSP_AUTOSCALE_METRIC_LATENCY_P95,     /* milliseconds */
    OSP_AUTOSCALE_METRIC_QUEUE,           /* queued requests at the workers */
    OSP_AUTOSCALE_METRIC_QUERY,           /* a user's PromQL (a total) */
    OSP_AUTOSCALE_METRIC_COUNT
} osp_autoscale_metric_t;
/* "concurrency", "rps", "latency-p95", "queue", "query"; never NULL. */
const char *osp_autoscale_metric_name(osp_autoscale_metric_t m);
int osp_autoscale_metric_parse(const char *s, osp_autoscale_metric_t *out);
/* The default target of a built-in metric (concurrency 4 per replica, rps
 * 10 per replica, latency-p95 500 ms, queue 2 per replica). */
double osp_autoscale_metric_default_target(osp_autoscale_metric_t m);
/* True for metrics compared as totals per ready replica (all but
 * latency-p95). */
bool osp_autoscale_metric_is_total(osp_autoscale_metric_t m);

typedef struct osp_autoscale_target_s {
    osp_autoscale_metric_t metric;
    double target;                  /* > 0, in the metric's unit */
} osp_autoscale_target_t;

/* ------------------------------------------------------------------------
 * Options. */
typedef struct osp_autoscale_opts_s {
    int min_replicas;               /* >= 1 */
    int max_replicas;               /* >= min_replicas */
    double tolerance;               /* HPA's 0.1: no change within ±10% */
    double period_s;                /* full decision every period (HPA sync 15 s) */
    double stale_s;                 /* a metric with no sample this long is
                                       missing (0, the default: 2 periods) */
    osp_autoscale_rules_t up, down;
    bool panic;                     /* the KPA-style panic mode */
    double stable_window_s;         /* 60: panic ends this long after the
                                       last over-threshold sample */
    double panic_window_s;          /* 6: the panic value is the average
                                       over this window */
    double panic_threshold;         /* 2.0: panic when the panic-window value
                                       is above this × what ready replicas take */
    int n_targets;
    osp_autoscale_target_t targets[OSP_AUTOSCALE_MAX_METRICS];
} osp_autoscale_opts_t;

/* osprey's defaults: 1..10 replicas, tolerance 0.1, period 15 s, the HPA's
 * default behavior (scale-up: stabilization 0, Max of {Pods 4, Percent 100}
 * per 15 s; scale-down: stabilization 300, Percent 100 per 15 s), panic on
 * (60 s / 6 s / 2.0), one metric: concurrency, target 4. */
void osp_autoscale_opts_init(osp_autoscale_opts_t *o);
/* The stock HPA: the same, panic off. */
void osp_autoscale_opts_init_hpa(osp_autoscale_opts_t *o);
/* Checks ranges (the HPA's bounds for behavior fields); on error names the
 * field ("behavior.scaleUp.policies[1].periodSeconds: 0 is not in 1..1800"). */
int osp_autoscale_opts_check(const osp_autoscale_opts_t *o, osp_err_t *err);
/* Reads an HPA-style configuration (JSON text) into o, over what o holds:
 * `minReplicas`, `maxReplicas`, `behavior` (scaleUp/scaleDown with
 * stabilizationWindowSeconds, selectPolicy, policies[{type,value,
 * periodSeconds}]) exactly as in a HorizontalPodAutoscaler spec — a spec
 * object or a whole HPA manifest (its `spec` is read) — plus osprey's own
 * `metrics` ([{"name":"concurrency","target":4}]) and `panic`
 * ({"enabled":true,"stableWindowSeconds":60,"panicWindowSeconds":6,
 * "threshold":2.0}). A field given sets only itself (the HPA's rule: an
 * unset scaleDown keeps its defaults). Unknown fields are errors. */
int osp_autoscale_opts_parse_json(osp_autoscale_opts_t *o, const char *text,
                                  osp_err_t *err);

/* Reads a file with osp_autoscale_opts_parse_json: JSON, or YAML (a
 * Kubernetes manifest as it is; with several documents, the
 * HorizontalPodAutoscaler). Errors name the file's problem. */
int osp_autoscale_opts_load(osp_autoscale_opts_t *o, const char *path,
                            osp_err_t *err);

/* ------------------------------------------------------------------------
 * The policy. */
typedef struct osp_autoscale_s osp_autoscale_t;

/* One observation, at time t_s (seconds on any monotonic clock; never
 * decreasing between calls). values[i] is the value of opts.targets[i], or
 * NaN when it could not be read (missing, stale, an error). */
typedef struct osp_autoscale_sample_s {
    double t_s;
    int current;        /* replicas asked for now (spec.replicas; local
                           workers started and not draining) */
    int ready;          /* of which ready to serve */
    double values[OSP_AUTOSCALE_MAX_METRICS];
} osp_autoscale_sample_t;

typedef struct osp_autoscale_metric_view_s {
    osp_autoscale_metric_t metric;
    double value;       /* average over the last period (NaN: missing) */
    double panic_value; /* average over the panic window (NaN: missing) */
    double target;
    int desired;        /* what this metric alone asks for (-1: missing) */
} osp_autoscale_metric_view_t;

typedef struct osp_autoscale_decision_s {
    double t_s;
    int current, ready;
    int desired;        /* act on this (== current: no change) */
    bool evaluated;     /* a full decision ran at this step (a period
                           boundary, or a panic) */
    bool panic;         /* in panic mode after this step */
    bool held;          /* missing data held the count */
    int n_metrics;
    osp_autoscale_metric_view_t metrics[OSP_AUTOSCALE_MAX_METRICS];
    char rule[192];     /* what bounded the result, for people:
                           "scale-up limited by policy Pods 4/15s",
                           "held: no data for 30 s", "panic: concurrency
                           19.2 > 2.0 × target 4 × 2 ready" */
} osp_autoscale_decision_t;

/* Creates a policy; opts are checked (osp_autoscale_opts_check) and copied.
 * NULL with err set on bad options or out-of-memory. Caller destroys. */
osp_autoscale_t *osp_autoscale_create(const osp_autoscale_opts_t *opts,
                                      osp_err_t *err);
void osp_autoscale_destroy(osp_autoscale_t *a);
/* Feeds one sample and decides. Call it every tick (e.g. each second): the
 * panic check runs on every call, the HPA decision once per period. The
 * caller is expected to act on d->desired; a change is recorded as a scale
 * event (the rate policies count them). Someone else's change of the count
 * (a human's `kubectl scale`) shows as a new `current` and is respected. */
void osp_autoscale_step(osp_autoscale_t *a, const osp_autoscale_sample_t *s,
                        osp_autoscale_decision_t *d);
/* The options in force (read-only). */
const osp_autoscale_opts_t *osp_autoscale_opts(const osp_autoscale_t *a);

/* ------------------------------------------------------------------------
 * Simulation: a queueing model of workers driven by a rate profile (a load
 * trace), deterministic for a seed, far faster than real time. Requests
 * arrive as a non-homogeneous Poisson process; the dispatcher sends each to
 * the ready worker with the fewest outstanding requests below max_inflight
 * (else it waits in the dispatcher's queue; with no ready worker it is
 * rejected); a worker serves one request at a time in 1/capacity s; a
 * new worker is ready startup_s after it is asked for; a removed worker
 * takes no new requests and leaves when its queue is empty. Every tick the
 * policy gets the metrics a real control loop would read. */
typedef enum osp_autoscale_policy_e {
    OSP_AUTOSCALE_POLICY_OSPREY = 0,  /* the options given (panic on) */
    OSP_AUTOSCALE_POLICY_HPA,         /* same options, panic off */
    OSP_AUTOSCALE_POLICY_THRESHOLD,   /* ±1 replica per period when the
                                         value per replica crosses target ×
                                         1.0 (up) or × 0.5 (down) */
    OSP_AUTOSCALE_POLICY_COUNT
} osp_autoscale_policy_t;
const char *osp_autoscale_policy_name(osp_autoscale_policy_t p);
int osp_autoscale_policy_parse(const char *s, osp_autoscale_policy_t *out);

#define OSP_AUTOSCALE_SIM_MAX_STEPS 64

typedef struct osp_autoscale_sim_opts_s {
    const osp_load_profile_t *trace;     /* offered rate over time (borrowed) */
    double capacity_rps;            /* per worker, > 0 */
    double startup_s;               /* asked for → ready (default 10) */
    double slo_ms;                  /* a request slower than this is a
                                       violation (default 1000) */
    double tick_s;                  /* control loop tick (default 1) */
    int max_inflight;               /* per worker (the dispatcher's
                                       --max-inflight, default 64) */
    int queue_size;                 /* the dispatcher's queue (default 256) */
    double queue_timeout_s;         /* longest wait in it (default 5) */
    uint64_t seed;                  /* arrivals (default 1) */
} osp_autoscale_sim_opts_t;
void osp_autoscale_sim_opts_init(osp_autoscale_sim_opts_t *o);

typedef struct osp_autoscale_sim_result_s {
    osp_autoscale_policy_t policy;
    uint64_t requests;              /* arrived */
    uint64_t slo_violations;        /* over the SLO or rejected */
    uint64_t rejected;
    double replica_seconds;         /* workers existing × time (cost:
                                       starting and draining ones count) */
    int scale_events;               /* changes of the asked-for count */
    int direction_changes;          /* up after down or down after up */
    int max_replicas;               /* most asked for at once */
    double p50_ms, p95_ms, p99_ms;  /* latency of served requests */
    int n_steps;                    /* upward steps found in the trace */
    double step_t_s[OSP_AUTOSCALE_SIM_MAX_STEPS];
    /* seconds from each step until ready × capacity covered the new rate;
     * -1 when it never did before the next step or the end */
    double time_to_capacity_s[OSP_AUTOSCALE_SIM_MAX_STEPS];
} osp_autoscale_sim_result_t;

/* Runs one policy over the trace. policy_opts: the osprey options (for
 * OSP_AUTOSCALE_POLICY_HPA their panic is turned off; for THRESHOLD only
 * min/max, period and the first target are used). */
int osp_autoscale_simulate(const osp_autoscale_sim_opts_t *so,
                           const osp_autoscale_opts_t *policy_opts,
                           osp_autoscale_policy_t policy,
                           osp_autoscale_sim_result_t *out, osp_err_t *err);

/* ------------------------------------------------------------------------
 * Metric sources. The embedded source reads the dispatcher's /metrics (and
 * the workers', for `queue`) every tick and turns two consecutive readings
 * into the metric values as Prometheus would: gauges as they are, rates
 * from counter deltas (a counter that went down restarted from 0), the p95
 * from the histogram buckets' deltas with histogram_quantile's linear
 * interpolation. The PromQL the Prometheus source sends computes the same
 * from Prometheus's own scrapes (osp_autoscale_promql). */
#define OSP_AUTOSCALE_MAX_BUCKETS 40

typedef struct osp_autoscale_reading_s {
    double t_s;
    bool dispatcher_ok;         /* the dispatcher's page was read */
    double inflight;            /* Σ osprey_dispatch_inflight */
    double queued;              /* Σ osprey_dispatch_queue_depth */
    double requests;            /* Σ osprey_dispatch_requests_total */
    int n_buckets;              /* Σ by le of ..._duration_seconds_bucket */
    double le[OSP_AUTOSCALE_MAX_BUCKETS];
    double bucket[OSP_AUTOSCALE_MAX_BUCKETS];
    int workers_read;           /* worker pages read */
    double worker_queue;        /* Σ osprey_queue_depth over them */
} osp_autoscale_reading_t;

/* Starts a reading at t_s (all zero). */
void osp_autoscale_reading_init(osp_autoscale_reading_t *r, double t_s);
/* Adds the dispatcher's /metrics page to r. OSP_EFORMAT on a bad page. */
int osp_autoscale_read_dispatcher(osp_autoscale_reading_t *r, const char *text,
                                  size_t len, osp_err_t *err);
/* Adds one worker's /metrics page (its osprey_queue_depth). */
int osp_autoscale_read_worker(osp_autoscale_reading_t *r, const char *text,
                              size_t len, osp_err_t *err);
/* The value of metric m between two readings (prev may be NULL: rates and
 * the p95 are then NaN). NaN too when the data is not there (no dispatcher
 * page, no request in the interval for the p95, no worker page for queue,
 * and always for `query`, which needs Prometheus). */
double osp_autoscale_value(osp_autoscale_metric_t m,
                           const osp_autoscale_reading_t *prev,
                           const osp_autoscale_reading_t *cur);
/* Prometheus's histogram_quantile over cumulative buckets (le ascending,
 * the last +Inf): NaN when empty. */
double osp_autoscale_quantile(double q, const double *le, const double *cum,
                              int n);
/* The PromQL that gives metric m's value from Prometheus, rates over
 * window_s; NULL for `query` (the user's own). Writes into buf. */
const char *osp_autoscale_promql(osp_autoscale_metric_t m, int window_s,
                                 char *buf, size_t n);

/* ------------------------------------------------------------------------
 * Actuators: what the control loop acts on. A struct of function pointers
 * (as h2o's handlers): the local one runs `osprey serve` workers itself
 * (src/autoscale/local.c), the Kubernetes one patches a Deployment's scale
 * subresource (src/autoscale/k8s.c). Called from the control loop's thread
 * only. */
typedef struct osp_autoscale_actuator_s osp_autoscale_actuator_t;
struct osp_autoscale_actuator_s {
    const char *name;           /* "local", "kubernetes" */
    /* The replica count asked for now (someone else may have changed it:
     * it is read, not remembered) and how many are ready. 0 or an error
     * (the loop holds and retries). */
    int (*observe)(osp_autoscale_actuator_t *a, int *current, int *ready,
                   osp_err_t *err);
    /* Asks for n replicas (the loop calls it only on a change). */
    int (*scale)(osp_autoscale_actuator_t *a, int n, osp_err_t *err);
    /* The actuator's part of GET /status as a JSON value (malloc'd text;
     * caller frees), e.g. the local workers; NULL when it has none. */
    char *(*status_json)(osp_autoscale_actuator_t *a);
    void (*destroy)(osp_autoscale_actuator_t *a);
};

/* The local actuator (src/autoscale/local.c): `osprey serve` workers as
 * children on free loopback ports, registered with the dispatcher's admin
 * API once ready, deregistered and drained before they stop, replaced when
 * they die. No child outlives the actuator (PR_SET_PDEATHSIG, a process
 * group each; destroy stops them all). */
typedef struct osp_autoscale_local_opts_s {
    const char *exe;            /* the osprey binary to run as `serve` */
    const char *dispatcher;     /* its admin API, "http://127.0.0.1:8001" */
    const char *dispatcher_token; /* its bearer token (borrowed), or NULL
                                   when the admin API has none */
    const char *host;           /* workers listen here ("127.0.0.1") */
    int worker_threads;         /* serve --threads N (0: serve's default) */
    const char *const *args;    /* more serve flags (borrowed) */
    int n_args;
    double ready_timeout_s;     /* a start not ready by then is killed and
                                   replaced (default 120) */
    double drain_timeout_s;     /* in-flight wait, then SIGTERM's drain
                                   (default 30 each) */
    bool observe_only;          /* a dry run: start no worker; observe the
                                   dispatcher's backends (current = listed,
                                   ready = state "ready"), as the Kubernetes
                                   actuator observes a Deployment it does
                                   not change */
} osp_autoscale_local_opts_t;
typedef struct osp_autoscale_local_stats_s {
    unsigned long long started;       /* processes started */
    unsigned long long died;          /* exited without being asked */
    unsigned long long failed_starts; /* not ready in time */
} osp_autoscale_local_stats_t;
osp_autoscale_actuator_t *
osp_autoscale_local_create(const osp_autoscale_local_opts_t *o,
                           osp_err_t *err);
/* The local actuator's counters; NULL for another actuator. */
const osp_autoscale_local_stats_t *
osp_autoscale_local_stats(const osp_autoscale_actuator_t *a);

/* ------------------------------------------------------------------------
 * The control loop (src/autoscale/loop.c): on its own thread, every tick:
 * the actuator's count and readiness, the metrics (Prometheus, or the
 * dispatcher's /metrics read directly), the policy's decision — logged —
 * and the action; it serves /metrics and GET /status (current, desired,
 * panic, last_decision, actuator, workers). */
typedef struct osp_autoscale_loop_s osp_autoscale_loop_t;
typedef struct osp_autoscale_loop_opts_s {
    osp_autoscale_opts_t policy;
    osp_autoscale_actuator_t *actuator; /* taken by a successful create */
    const char *dispatcher;     /* admin API base URL (its /metrics): the
                                   embedded source */
    const char *dispatcher_token; /* the admin API's bearer token
                                   (borrowed), or NULL: none */
    const char *prometheus;     /* base URL; NULL: the embedded source */
    const char *query;          /* PromQL of the `query` metric */
    int rate_window_s;          /* PromQL rate() window (default 30) */
    double tick_s;              /* default 1 */
    bool dry_run;               /* decide and log, do not act */
    bool json_log;              /* decisions as JSON lines (else text) */
    const char *host;           /* own HTTP listener (default 127.0.0.1) */
    int port;                   /* 0: any free port; < 0: none */
} osp_autoscale_loop_opts_t;
osp_autoscale_loop_t *osp_autoscale_loop_create(
    const osp_autoscale_loop_opts_t *o, osp_err_t *err);
/* Binds the listener and starts the loop's thread. */
int osp_autoscale_loop_start(osp_autoscale_loop_t *l, osp_err_t *err);
/* The listener's port (after start; 0 without one). */
int osp_autoscale_loop_port(const osp_autoscale_loop_t *l);
/* Stops deciding and stops what the actuator started (local workers are
 * deregistered and drained); returns when they are gone. */
void osp_autoscale_loop_drain(osp_autoscale_loop_t *l);
void osp_autoscale_loop_destroy(osp_autoscale_loop_t *l);

/* The Kubernetes actuator (src/autoscale/k8s.c): a Deployment's `apps/v1`
 * scale subresource. observe = GET .../deployments/NAME/scale (spec.replicas
 * is the current count, read each time: a human's `kubectl scale` is seen,
 * never overwritten from memory) and GET .../deployments/NAME
 * (status.readyReplicas); scale = PATCH of the scale subresource
 * (merge-patch {"spec":{"replicas":N}} carrying the resourceVersion that
 * observe read, so that a change made in between is a 409 Conflict: re-read
 * then, and retry once when only the version moved — if the replica count
 * itself changed, someone else scaled: OSP_EBUSY, the loop decides again
 * from the new count). The RBAC it needs, exactly: get and patch on
 * `deployments/scale` and get on `deployments` in group `apps`, with
 * resourceNames [NAME]; a 403 is an error naming the missing rule.
 * Errors: OSP_EINVAL (401, 403, 404: credentials, RBAC, no such
 * Deployment), OSP_EBUSY (someone else scaled, or conflicts twice),
 * OSP_EIO / OSP_ETIMEDOUT (5xx, transport): the loop holds and retries. */
typedef struct osp_autoscale_k8s_opts_s {
    const char *deployment;         /* "NAMESPACE/NAME" (--k8s-deployment) */
    const osp_kube_config_t *kube;  /* how to reach the API (copied) */
    long timeout_ms;                /* per request (default 10000) */
} osp_autoscale_k8s_opts_t;
/* NULL with err set on a bad NAMESPACE/NAME or ENOMEM; nothing is asked of
 * the API server until the first observe. Caller destroys (a->destroy). */
osp_autoscale_actuator_t *
osp_autoscale_k8s_create(const osp_autoscale_k8s_opts_t *o, osp_err_t *err);

#endif
