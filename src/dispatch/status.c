/* status.c — what the live status page (/ui/status) shows, computed by the
 * dispatcher from its own counters: a ring of the last 60 one-second
 * samples of proxied requests (count, 4xx, 5xx, a log-spaced latency
 * histogram), from which GET /ui/status.json derives req/s, p50/p95/p99 and
 * the error rate over the last minute plus the per-second series the page
 * charts; the backends with their state, in-flight requests, latency EWMA
 * and req/s; and the autoscaler's last /status (autoscaler.c) when
 * --autoscaler-url is set. Why a ring of our own rather than the Prometheus
 * histogram: quantiles over a sliding minute need per-second buckets, and
 * the page must work with no Prometheus running. docs/ui.md shows the JSON. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dispatch/dispatch_int.h"

void osp__dsp_stats_init(osp__dsp_stats_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
}

void osp__dsp_stats_fini(osp__dsp_stats_t *s) {
    pthread_mutex_destroy(&s->mu);
}

/* Bucket k holds latencies in [lo·2^(k/8), lo·2^((k+1)/8)) ms; the first
 * also holds everything faster, the last everything slower. */
static int bucket_of(double ms) {
    if (!(ms > DSP_STATS_LO_MS))
        return 0;
    int k = (int)floor(log2(ms / DSP_STATS_LO_MS) * DSP_STATS_PER_OCTAVE);
    return k < 0 ? 0 : k >= DSP_STATS_BUCKETS ? DSP_STATS_BUCKETS - 1 : k;
}

/* A bucket's representative latency: its geometric middle. */
static double bucket_ms(int k) {
    return DSP_STATS_LO_MS * exp2((k + 0.5) / DSP_STATS_PER_OCTAVE);
}

/* The slot for second sec, cleared when it last held an older second. */
static osp__dsp_sec_t *slot(osp__dsp_stats_t *s, int64_t sec) {
    osp__dsp_sec_t *x = &s->ring[(uint64_t)sec % DSP_STATS_SECONDS];
    if (x->sec != sec) {
        memset(x, 0, sizeof *x);
        x->sec = sec;
    }
    return x;
}

void osp__dsp_stats_record(osp__dsp_stats_t *s, int64_t sec, double ms,
                           int status) {
    if (!(ms >= 0) || !isfinite(ms))
        ms = 0; /* (a clock step): keep the sums finite */
    pthread_mutex_lock(&s->mu);
    osp__dsp_sec_t *x = slot(s, sec);
    x->n++;
    x->err4 += status >= 400 && status < 500;
    x->err5 += status >= 500;
    x->sum_ms += ms;
    x->hist[bucket_of(ms)]++;
    pthread_mutex_unlock(&s->mu);
}

/* The q-quantile (0..1) of a histogram holding n samples; 0 when empty. */
static double quantile(const uint32_t *hist, uint64_t n, double q) {
    if (n == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(q * (double)n), seen = 0;
    if (rank < 1)
        rank = 1;
    for (int k = 0; k < DSP_STATS_BUCKETS; k++) {
        seen += hist[k];
        if (seen >= rank)
            return bucket_ms(k);
    }
    return bucket_ms(DSP_STATS_BUCKETS - 1);
}

static double round3(double v) { return round(v * 1000) / 1000; }

json_t *osp__dsp_stats_json(osp__dsp_stats_t *s, int64_t now_sec) {
    /* The window: the 60 seconds before the current one (complete
     * seconds; the current one is still filling). */
    uint32_t hist[DSP_STATS_BUCKETS] = {0};
    uint64_t n = 0, e4 = 0, e5 = 0;
    double sum_ms = 0;
    json_t *series = json_array();
    pthread_mutex_lock(&s->mu);
    for (int64_t sec = now_sec - DSP_STATS_SECONDS; sec < now_sec; sec++) {
        const osp__dsp_sec_t *x = &s->ring[(uint64_t)sec % DSP_STATS_SECONDS];
        osp__dsp_sec_t empty = {0};
        if (x->sec != sec)
            x = &empty;
        n += x->n;
        e4 += x->err4;
        e5 += x->err5;
        sum_ms += x->sum_ms;
        for (int k = 0; k < DSP_STATS_BUCKETS; k++)
            hist[k] += x->hist[k];
        json_array_append_new(
            series,
            json_pack("{s:I,s:i,s:i,s:f,s:f}", "t", (json_int_t)sec, "requests",
                      (int)x->n, "errors", (int)x->err5, "p50_ms",
                      round3(quantile(x->hist, x->n, 0.50)), "p99_ms",
                      round3(quantile(x->hist, x->n, 0.99))));
    }
    const osp__dsp_sec_t *last =
        &s->ring[(uint64_t)(now_sec - 1) % DSP_STATS_SECONDS];
    uint32_t last_n = last->sec == now_sec - 1 ? last->n : 0;
    pthread_mutex_unlock(&s->mu);
    return json_pack(
        "{s:i,s:i,s:f,s:I,s:f,s:f,s:f,s:f,s:I,s:I,s:f,s:o}", "window_s",
        DSP_STATS_SECONDS, "rps", (int)last_n, "rps_1m",
        round3((double)n / DSP_STATS_SECONDS), "requests_1m", (json_int_t)n,
        "mean_ms", round3(n ? sum_ms / (double)n : 0), "p50_ms",
        round3(quantile(hist, n, 0.50)), "p95_ms",
        round3(quantile(hist, n, 0.95)), "p99_ms",
        round3(quantile(hist, n, 0.99)), "errors_4xx_1m", (json_int_t)e4,
        "errors_5xx_1m", (json_int_t)e5, "error_rate",
        round3(n ? (double)e5 / (double)n : 0), "series", series);
}

/* The autoscaler's state of worker addr ("draining", ...) from its last
 * /status, or NULL. Under d->as_mu. */
static const char *as_worker_state(const json_t *st, const char *addr) {
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(st, "workers"), i, w) {
        const char *a = json_string_value(json_object_get(w, "address"));
        if (a && !strcmp(a, addr))
            return json_string_value(json_object_get(w, "state"));
    }
    return NULL;
}

void osp__dsp_backend_rate(osp__dsp_backend_t *b, uint64_t now) {
    double dt = (double)(now - b->ui_ns) * 1e-9;
    if (b->ui_ns == 0) {
        b->ui_ns = now;
        b->ui_sent = b->sent;
    } else if (dt >= 1.0) {
        b->ui_rps = (double)(b->sent - b->ui_sent) / dt;
        b->ui_ns = now;
        b->ui_sent = b->sent;
    }
}

/* GET /ui/status.json */
static void h_status_json(osp_http_req_t *req, void *ud) {
    osp_dispatch_t *d = ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *totals = osp__dsp_stats_json(&d->stats, (int64_t)ts.tv_sec);
    json_t *as = osp__dsp_autoscaler_json(d);
    json_t *backends = json_array();
    uint64_t now = osp_now_ns();
    int inflight = 0, n_ready = 0;
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < d->n_b; i++) {
        osp__dsp_backend_t *b = d->b[i];
        osp__dsp_backend_rate(b, now);
        const char *state = osp__dsp_state_name(b->state);
        const char *as_state = as ? as_worker_state(json_object_get(as, "status"),
                                                    b->addr)
                                  : NULL;
        if (as_state && !strcmp(as_state, "draining"))
            state = "draining";
        json_t *models = json_array();
        for (int k = 0; k < b->n_models; k++)
            json_array_append_new(models, json_string(b->models[k]));
        json_array_append_new(
            backends,
            json_pack("{s:s,s:s,s:i,s:f,s:f,s:I,s:i,s:o}", "address", b->addr,
                      "state", state, "inflight", b->inflight, "ewma_ms",
                      round3(b->ewma_ms), "rps", round3(b->ui_rps), "sent",
                      (json_int_t)b->sent, "failures", b->failures, "models",
                      models));
        inflight += b->inflight;
        n_ready += b->state == DSP_READY;
    }
    json_t *models = json_array();
    for (int m = 0; m < d->n_models; m++)
        json_array_append_new(models, json_string(d->models[m].name));
    int queued = d->waiting;
    pthread_mutex_unlock(&d->mu);
    json_object_set_new(totals, "inflight", json_integer(inflight));
    json_object_set_new(totals, "queued", json_integer(queued));
    json_object_set_new(totals, "backends_ready", json_integer(n_ready));
    osp_http_add_header(req, "Cache-Control", "no-store");
    osp_http_respond_json(
        req, 200,
        json_pack("{s:I,s:s,s:o,s:o,s:o,s:o}", "time", (json_int_t)ts.tv_sec,
                  "version", OSP_VERSION, "totals", totals, "backends",
                  backends, "models", models, "autoscaler",
                  as ? as : json_null()));
}

/* GET /openapi.json */
static void h_openapi(osp_http_req_t *req, void *ud) {
    osp_dispatch_t *d = ud;
    osp_http_respond(req, 200, "application/json", d->openapi,
                     d->openapi_len);
}

int osp__dsp_ui_routes(osp_dispatch_t *d, osp_http_server_t *s) {
    /* Exact paths before the /ui/{asset} pattern: the first match wins. */
    if (osp_http_route(s, "GET", "/", osp_ui_handler, (void *)"index.html") < 0 ||
        osp_http_route(s, "GET", "/ui/status", osp_ui_handler,
                       (void *)"status.html") < 0 ||
        osp_http_route(s, "GET", "/docs", osp_ui_handler,
                       (void *)"docs.html") < 0 ||
        osp_http_route(s, "GET", "/ui/status.json", h_status_json, d) < 0 ||
        osp_http_route(s, "GET", "/openapi.json", h_openapi, d) < 0 ||
        osp_http_route(s, "GET", "/ui/{asset}", osp_ui_handler, NULL) < 0)
        return OSP_EINTERNAL;
    return 0;
}
