/* source.c — the autoscaler's metric values from /metrics pages (the
 * embedded source) and the PromQL that asks Prometheus for the same
 * values (the Prometheus source).
 *
 * Why both compute alike: with no Prometheus the autoscaler must still
 * work (one machine, `osprey up`), and with one its decisions must not
 * change — so the embedded source does what PromQL's rate() and
 * histogram_quantile() do, over the interval between two of its own
 * scrapes, and tests check both against the same pages. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/autoscale.h"
#include "osprey/metrics.h"

void osp_autoscale_reading_init(osp_autoscale_reading_t *r, double t_s) {
    memset(r, 0, sizeof *r);
    r->t_s = t_s;
}

static int add_bucket(osp_autoscale_reading_t *r,
                      const osp_metrics_sample_t *s) {
    char le_s[48];
    if (!osp_metrics_sample_label(s, "le", le_s, sizeof le_s))
        return 0;
    double le = !strcmp(le_s, "+Inf") ? INFINITY : strtod(le_s, NULL);
    int i = 0;
    while (i < r->n_buckets && r->le[i] < le)
        i++;
    if (i < r->n_buckets && r->le[i] == le) {
        r->bucket[i] += s->value;
        return 0;
    }
    if (r->n_buckets == OSP_AUTOSCALE_MAX_BUCKETS)
        return OSP_ELIMIT;
    memmove(r->le + i + 1, r->le + i, (size_t)(r->n_buckets - i) * sizeof *r->le);
    memmove(r->bucket + i + 1, r->bucket + i,
            (size_t)(r->n_buckets - i) * sizeof *r->bucket);
    r->le[i] = le;
    r->bucket[i] = s->value;
    r->n_buckets++;
    return 0;
}

static int on_dispatcher(const osp_metrics_sample_t *s, void *ud) {
    osp_autoscale_reading_t *r = ud;
    if (!isfinite(s->value))
        return 0;
    if (osp_metrics_sample_is(s, "osprey_dispatch_inflight"))
        r->inflight += s->value;
    else if (osp_metrics_sample_is(s, "osprey_dispatch_queue_depth"))
        r->queued += s->value;
    else if (osp_metrics_sample_is(s, "osprey_dispatch_requests_total"))
        r->requests += s->value;
    else if (osp_metrics_sample_is(
                 s, "osprey_dispatch_request_duration_seconds_bucket"))
        return add_bucket(r, s);
    return 0;
}

int osp_autoscale_read_dispatcher(osp_autoscale_reading_t *r, const char *text,
                                  size_t len, osp_err_t *err) {
    int rc = osp_metrics_parse_text(text, len, on_dispatcher, r, err);
    if (rc == OSP_ELIMIT)
        return osp_err_set(err, rc, "dispatcher metrics: more than %d "
                           "latency buckets", OSP_AUTOSCALE_MAX_BUCKETS);
    if (!rc)
        r->dispatcher_ok = true;
    return rc;
}

static int on_worker(const osp_metrics_sample_t *s, void *ud) {
    osp_autoscale_reading_t *r = ud;
    if (osp_metrics_sample_is(s, "osprey_queue_depth") && isfinite(s->value))
        r->worker_queue += s->value;
    return 0;
}

int osp_autoscale_read_worker(osp_autoscale_reading_t *r, const char *text,
                              size_t len, osp_err_t *err) {
    int rc = osp_metrics_parse_text(text, len, on_worker, r, err);
    if (!rc)
        r->workers_read++;
    return rc;
}

/* Prometheus's increase() between two samples of a counter: a drop means
 * the process restarted and counted up from 0. */
static double increase(double prev, double cur) {
    return cur >= prev ? cur - prev : cur;
}

double osp_autoscale_quantile(double q, const double *le, const double *cum,
                              int n) {
    /* promql/quantile.go's bucketQuantile: rank q × total in the
     * cumulative counts, linear inside the bucket that holds it, the
     * highest finite bound when it falls in +Inf. */
    if (n < 2 || !isinf(le[n - 1]) || !(cum[n - 1] > 0))
        return NAN;
    double rank = q * cum[n - 1];
    int b = 0;
    while (b < n - 1 && cum[b] < rank)
        b++;
    if (b == n - 1)
        return le[n - 2];
    if (b == 0 && le[0] <= 0)
        return le[0];
    double start = b ? le[b - 1] : 0, end = le[b];
    double below = b ? cum[b - 1] : 0, in = cum[b] - below;
    return in > 0 ? start + (end - start) * ((rank - below) / in) : end;
}

static double p95_ms(const osp_autoscale_reading_t *prev,
                     const osp_autoscale_reading_t *cur) {
    double cum[OSP_AUTOSCALE_MAX_BUCKETS];
    int n = cur->n_buckets;
    for (int i = 0; i < n; i++) {
        double before = 0;
        for (int k = 0; k < prev->n_buckets; k++)
            if (prev->le[k] == cur->le[i])
                before = prev->bucket[k];
        cum[i] = increase(before, cur->bucket[i]);
    }
    return osp_autoscale_quantile(0.95, cur->le, cum, n) * 1000;
}

double osp_autoscale_value(osp_autoscale_metric_t m,
                           const osp_autoscale_reading_t *prev,
                           const osp_autoscale_reading_t *cur) {
    bool pair = prev && prev->dispatcher_ok && cur->dispatcher_ok &&
                cur->t_s > prev->t_s;
    switch (m) {
    case OSP_AUTOSCALE_METRIC_CONCURRENCY:
        return cur->dispatcher_ok ? cur->inflight + cur->queued : NAN;
    case OSP_AUTOSCALE_METRIC_RPS:
        return pair ? increase(prev->requests, cur->requests) /
                          (cur->t_s - prev->t_s)
                    : NAN;
    case OSP_AUTOSCALE_METRIC_LATENCY_P95:
        return pair ? p95_ms(prev, cur) : NAN;
    case OSP_AUTOSCALE_METRIC_QUEUE:
        return cur->workers_read ? cur->worker_queue : NAN;
    default:
        return NAN;
    }
}

const char *osp_autoscale_promql(osp_autoscale_metric_t m, int window_s,
                                 char *buf, size_t n) {
    switch (m) {
    case OSP_AUTOSCALE_METRIC_CONCURRENCY:
        /* `or vector(0)`: no queue series yet must not empty the sum. */
        snprintf(buf, n, "sum(osprey_dispatch_inflight) + "
                         "(sum(osprey_dispatch_queue_depth) or vector(0))");
        return buf;
    case OSP_AUTOSCALE_METRIC_RPS:
        snprintf(buf, n, "sum(rate(osprey_dispatch_requests_total[%ds]))",
                 window_s);
        return buf;
    case OSP_AUTOSCALE_METRIC_LATENCY_P95:
        snprintf(buf, n, "1000 * histogram_quantile(0.95, sum by (le) "
                         "(rate(osprey_dispatch_request_duration_seconds_"
                         "bucket[%ds])))", window_s);
        return buf;
    case OSP_AUTOSCALE_METRIC_QUEUE:
        snprintf(buf, n, "sum(osprey_queue_depth)");
        return buf;
    default:
        return NULL;
    }
}
