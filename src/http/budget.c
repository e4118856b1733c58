/* budget.c — the process-wide memory budget for request bodies, decoded
 * images and input tensors (docs/adr/0049-memory-budget.md).
 *
 * Why: each request's memory was bounded only on its own (--max-body-bytes,
 * --max-pixels); many at once were not. 60 clients each declaring a 30 MB
 * body and sending 20 MB of it raised a worker's RSS from 41 MB to 1.3 GB,
 * and with 32 MiB × 2,048 connections a few hundred such clients could get
 * a worker in a 2 GiB pod OOM-killed, taking every request in it down. A
 * request now reserves what it will hold before it holds it (server.c: the
 * declared Content-Length before the body is read; serve: the decoded image
 * and the tensor before they are allocated); a reservation that does not
 * fit is refused (503) instead of allocated.
 *
 * One counter of bytes in use, under a mutex together with the update of
 * its gauge (a few operations per request; without the lock, two changes
 * could set the gauge out of order and leave it stale). A budget may be shared by several servers (the dispatcher's
 * event loops: the limit is the process's). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "http/http_int.h"
#include "osprey/http.h"
#include "osprey/metrics.h"

struct osp_http_budget_s {
    uint64_t limit;
    pthread_mutex_t mu;
    uint64_t used; /* under mu */
    atomic_uint_fast64_t rejections;
    osp_series_t *s_used, *s_limit, *s_rejections; /* NULL: not exported */
};

osp_http_budget_t *osp_http_budget_create(uint64_t limit_bytes) {
    if (!limit_bytes)
        return NULL;
    osp_http_budget_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->limit = limit_bytes;
    pthread_mutex_init(&b->mu, NULL);
    return b;
}

void osp_http_budget_destroy(osp_http_budget_t *b) {
    if (!b)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

int osp_http_budget_metric(osp_http_budget_t *b, osp_metrics_t *m,
                           osp_err_t *err) {
    osp_metric_t *used, *limit, *rej;
    if (!(used = osp_metrics_add(m, OSP_METRIC_GAUGE,
            "osprey_http_inflight_bytes",
            "Bytes reserved in the memory budget by requests in progress "
            "(bodies, decoded images, input tensors)", 0, NULL, NULL, 0, 0,
            err)) ||
        !(limit = osp_metrics_add(m, OSP_METRIC_GAUGE,
            "osprey_http_inflight_bytes_limit",
            "The memory budget for requests in progress "
            "(--max-inflight-bytes)", 0, NULL, NULL, 0, 0, err)) ||
        !(rej = osp_metrics_add(m, OSP_METRIC_COUNTER,
            "osprey_http_budget_rejections_total",
            "Requests refused (503) because the memory budget could not "
            "hold their body, image or tensor", 0, NULL, NULL, 0, 0, err)))
        return err ? err->code : OSP_EINVAL;
    b->s_used = osp_metric_series0(used);
    b->s_limit = osp_metric_series0(limit);
    b->s_rejections = osp_metric_series0(rej);
    osp_series_set(b->s_limit, (double)b->limit);
    pthread_mutex_lock(&b->mu);
    osp_series_set(b->s_used, (double)b->used);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

uint64_t osp_http_budget_limit(const osp_http_budget_t *b) {
    return b ? b->limit : 0;
}

uint64_t osp_http_budget_used(const osp_http_budget_t *b) {
    if (!b)
        return 0;
    osp_http_budget_t *m = (osp_http_budget_t *)b;
    pthread_mutex_lock(&m->mu);
    uint64_t u = m->used;
    pthread_mutex_unlock(&m->mu);
    return u;
}

uint64_t osp_http_budget_rejections(const osp_http_budget_t *b) {
    return b ? atomic_load(&((osp_http_budget_t *)b)->rejections) : 0;
}

uint64_t osp__http_budget_room(const osp_http_budget_t *b) {
    if (!b)
        return UINT64_MAX;
    uint64_t u = osp_http_budget_used(b);
    return u < b->limit ? b->limit - u : 0;
}

bool osp__http_budget_reserve(osp_http_budget_t *b, uint64_t n) {
    pthread_mutex_lock(&b->mu);
    bool ok = n <= b->limit && b->used <= b->limit - n;
    if (ok) {
        b->used += n;
        osp_series_set(b->s_used, (double)b->used);
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void osp__http_budget_charge(osp_http_budget_t *b, uint64_t n) {
    pthread_mutex_lock(&b->mu);
    b->used += n;
    osp_series_set(b->s_used, (double)b->used);
    pthread_mutex_unlock(&b->mu);
}

void osp__http_budget_release(osp_http_budget_t *b, uint64_t n) {
    pthread_mutex_lock(&b->mu);
    OSP_ASSERT(n <= b->used);
    b->used -= n;
    osp_series_set(b->s_used, (double)b->used);
    pthread_mutex_unlock(&b->mu);
}

uint64_t osp_http_auto_budget(int64_t limit_bytes) {
    uint64_t q = limit_bytes > 0 ? (uint64_t)limit_bytes / 4 : 0;
    return q < OSP_HTTP_MIN_AUTO_BUDGET ? OSP_HTTP_MIN_AUTO_BUDGET : q;
}

void osp__http_budget_reject(osp_http_budget_t *b) {
    atomic_fetch_add(&b->rejections, 1);
    osp_series_inc(b->s_rejections);
}
