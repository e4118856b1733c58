/* metrics.h — osprey's metrics registry: counters, gauges and histograms with
 * labels, rendered in the Prometheus text exposition format 0.0.4, plus the
 * standard process_* metrics read from /proc at render time.
 *
 * Model: a registry holds families (one name, one type, one help text, a fixed
 * list of label names). A family holds series, one per distinct tuple of label
 * values, created on first use and never removed; the number of series per
 * family is bounded (a label fed from request data must not grow memory
 * without limit). Hot paths look a series up once and keep the pointer:
 * updates on a series are lock-free atomics; only series creation and
 * rendering take the family's mutex.
 *
 * Thread safety: every function may be called from any thread, except that
 * families must be registered before the registry is shared and
 * osp_metrics_destroy must not race anything. */
#ifndef OSPREY_METRICS_H
#define OSPREY_METRICS_H

#include <stddef.h>

#include "osprey/common.h"

typedef enum osp_metric_type_e {
    OSP_METRIC_COUNTER = 0,
    OSP_METRIC_GAUGE,
    OSP_METRIC_HISTOGRAM,
    OSP_METRIC_TYPE_COUNT
} osp_metric_type_t;
/* "counter", "gauge", "histogram"; never NULL. */
const char *osp_metric_type_name(osp_metric_type_t t);

#define OSP_METRICS_MAX_LABELS 8     /* label names per family */
#define OSP_METRICS_MAX_BUCKETS 32   /* finite histogram bounds per family */
#define OSP_METRICS_DEFAULT_MAX_SERIES 256 /* label tuples per family */

typedef struct osp_metrics_s osp_metrics_t;  /* the registry */
typedef struct osp_metric_s osp_metric_t;    /* one family (owned by registry) */
typedef struct osp_series_s osp_series_t;    /* one series (owned by family) */

/* Creates an empty registry; NULL on out-of-memory. Caller destroys. With
 * process_metrics set, rendering appends process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds and process_start_time_seconds. */
osp_metrics_t *osp_metrics_create(int process_metrics);
void osp_metrics_destroy(osp_metrics_t *r);

/* Registers a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* (not "__" prefixed; "le" is reserved for
 * histograms); names are copied. A family with no labels has its one series
 * from the start (renders 0 before any update). max_series 0 means
 * OSP_METRICS_DEFAULT_MAX_SERIES. Histogram bounds must be finite and strictly
 * increasing (the +Inf bucket is implicit); NULL bounds for a histogram means
 * the Prometheus default latency buckets (0.005 .. 10 s). Returns the family
 * (owned by the registry) or NULL with err filled (bad name, duplicate name,
 * too many labels/buckets, out of memory). */
osp_metric_t *osp_metrics_add(osp_metrics_t *r, osp_metric_type_t type,
                              const char *name, const char *help,
                              int n_labels, const char *const *label_names,
                              const double *bounds, int n_bounds,
                              int max_series, osp_err_t *err);

/* Looks up (creating on first use) the series for these label values (one per
 * label name, in order; any bytes, copied). Returns NULL when the family
 * already has max_series series or on out-of-memory; updates through a NULL
 * series are ignored and counted in osp_metric_dropped(), so callers need no
 * special case. The pointer stays valid until the registry is destroyed. */
osp_series_t *osp_metric_series(osp_metric_t *m, const char *const *values);
/* Shorthand for families without labels. */
osp_series_t *osp_metric_series0(osp_metric_t *m);
/* Series lookups refused because the family already had max_series series
 * (or memory ran out); the updates that followed them were dropped. */
unsigned long long osp_metric_dropped(const osp_metric_t *m);

/* Counter: adds v (v < 0 or NaN is ignored: counters never go down).
 * Gauge: adds v (may be negative). Histogram: not allowed (ignored). */
void osp_series_add(osp_series_t *s, double v);
static inline void osp_series_inc(osp_series_t *s) { osp_series_add(s, 1.0); }
/* Gauge only: sets the value. */
void osp_series_set(osp_series_t *s, double v);
/* Histogram only: records one observation (NaN ignored). */
void osp_series_observe(osp_series_t *s, double v);
/* Current value (counter/gauge) or observation count (histogram). */
double osp_series_value(const osp_series_t *s);

/* The HTTP body byte counters every osprey server exports (serve, dispatch;
 * one name for the dashboards' network panels): registers
 * osprey_http_received_bytes_total and osprey_http_sent_bytes_total (no
 * labels) and sets *rx / *tx to their series (owned by the registry); the
 * caller adds each answered request's body sizes (osp_http_req_body,
 * osp_http_req_response_bytes). 0, or the error of osp_metrics_add. */
int osp_metrics_add_http_bytes(osp_metrics_t *r, osp_series_t **rx,
                               osp_series_t **tx, osp_err_t *err);

/* Renders every family in registration order, then the process metrics, as
 * Prometheus text 0.0.4 into a malloc'd NUL-terminated string (*out, length
 * in *len; caller frees). Returns 0 or OSP_ENOMEM. */
int osp_metrics_render(osp_metrics_t *r, char **out, size_t *len);

/* The Content-Type to serve the rendered text with. */
#define OSP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ------------------------------------------------------------------------
 * Reading the text format (src/metrics/parse.c): what the autoscaler's
 * embedded source does with the dispatcher's and the workers' /metrics.
 * Accepts what osp_metrics_render writes and what any Prometheus 0.0.4
 * exporter writes: comments and # HELP / # TYPE lines are skipped, each
 * sample line is `name{labels} value [timestamp]`. */
typedef struct osp_metrics_sample_s {
    const char *name;       /* not NUL-terminated: name_len bytes */
    size_t name_len;
    const char *labels;     /* the text between { and } (may be empty) */
    size_t labels_len;
    double value;           /* NaN, +Inf, -Inf as the format spells them */
} osp_metrics_sample_t;

/* Called for each sample; a non-zero return stops the parse and is
 * returned. */
typedef int (*osp_metrics_sample_fn)(const osp_metrics_sample_t *s, void *ud);
/* Parses text; OSP_EFORMAT with err naming the line on a malformed one. */
int osp_metrics_parse_text(const char *text, size_t len,
                           osp_metrics_sample_fn fn, void *ud, osp_err_t *err);
/* True when the sample's name is exactly `name`. */
int osp_metrics_sample_is(const osp_metrics_sample_t *s, const char *name);
/* Copies the (unescaped) value of label `key` into buf (NUL-terminated,
 * truncated to n - 1); returns 1 when found, 0 when not. */
int osp_metrics_sample_label(const osp_metrics_sample_t *s, const char *key,
                             char *buf, size_t n);

#endif
