/* loop.c — the autoscaler's control loop: every tick it reads the replica
 * count and readiness from the actuator, the metrics from the source
 * (Prometheus's query API, or the dispatcher's /metrics read directly),
 * feeds the policy (policy.c), logs the decision and acts on it; and it
 * serves its own /metrics and GET /status.
 *
 * Failure rules: a metric that cannot be read is NaN for the policy, which
 * holds the count (never scales down on no data) and says why; every
 * failure is counted in osprey_autoscaler_errors_total{source}; a failing
 * source or actuator is retried with backoff (the tick doubles up to one
 * period while it fails). The loop's own thread does all the work, so the
 * actuator (and the processes it starts) belong to one thread. */
#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log_int.h"
#include "osprey/autoscale.h"
#include "osprey/http.h"
#include "osprey/metrics.h"

#define LOOP_FETCH_MS 2000 /* one source request */

enum { SRC_DISPATCHER, SRC_PROMETHEUS, SRC_ACTUATOR, SRC_COUNT };
static const char *const src_names[SRC_COUNT] = {"dispatcher", "prometheus",
                                                 "actuator"};
enum { DIR_UP, DIR_DOWN, DIR_NONE, DIR_COUNT };
static const char *const dir_names[DIR_COUNT] = {"up", "down", "none"};

struct osp_autoscale_loop_s {
    osp_autoscale_loop_opts_t o;
    osp_autoscale_t *policy;
    osp_autoscale_reading_t prev;   /* the embedded source's last reading */
    bool have_prev;
    pthread_t th;
    bool started;
    pthread_mutex_t mu;             /* stop flag, status */
    pthread_cond_t cv;
    bool stop;
    json_t *last_decision;          /* under mu */
    char *workers;                  /* under mu: the actuator's status
                                       (JSON text; parsed only by GET
                                       /status, not every tick) */
    const char *actuator_name;
    int current, desired, panic;    /* under mu */
    osp_metrics_t *reg;
    osp_series_t *s_current, *s_desired, *s_panic, *s_actuation;
    osp_series_t *s_value[OSP_AUTOSCALE_MAX_METRICS];
    osp_series_t *s_target[OSP_AUTOSCALE_MAX_METRICS];
    osp_series_t *s_dir[DIR_COUNT], *s_err[SRC_COUNT];
    osp_series_t *s_started, *s_died;
    osp_http_server_t *http;
    int errors_in_row;
};

/* ---- metrics ------------------------------------------------------- */

static int make_metrics(osp_autoscale_loop_t *l, osp_err_t *err) {
    osp_metrics_t *r = l->reg = osp_metrics_create(1);
    if (!r)
        return osp_err_set(err, OSP_ENOMEM, "autoscale: out of memory");
    const char *ml[] = {"metric"}, *dl[] = {"direction"}, *sl[] = {"source"};
    osp_metric_t *cur, *des, *val, *tgt, *pan, *dec, *errs, *act, *st, *died,
        *lo, *hi;
    if (!(cur = osp_metrics_add(r, OSP_METRIC_GAUGE,
              "osprey_autoscaler_current_replicas",
              "Replicas asked for now (read from the actuator).", 0, NULL,
              NULL, 0, 0, err)) ||
        !(des = osp_metrics_add(r, OSP_METRIC_GAUGE,
              "osprey_autoscaler_desired_replicas",
              "Replicas the last decision asked for.", 0, NULL, NULL, 0, 0,
              err)) ||
        !(val = osp_metrics_add(r, OSP_METRIC_GAUGE,
              "osprey_autoscaler_metric_value",
              "Each metric's value over the last period (NaN: no data).", 1,
              ml, NULL, 0, 0, err)) ||
        !(tgt = osp_metrics_add(r, OSP_METRIC_GAUGE,
              "osprey_autoscaler_metric_target",
              "Each metric's target (per ready replica for totals).", 1, ml,
              NULL, 0, 0, err)) ||
        !(pan = osp_metrics_add(r, OSP_METRIC_GAUGE, "osprey_autoscaler_panic",
              "1 while in panic mode.", 0, NULL, NULL, 0, 0, err)) ||
        !(dec = osp_metrics_add(r, OSP_METRIC_COUNTER,
              "osprey_autoscaler_decisions_total",
              "Full decisions by direction (up, down, none).", 1, dl, NULL, 0,
              0, err)) ||
        !(errs = osp_metrics_add(r, OSP_METRIC_COUNTER,
              "osprey_autoscaler_errors_total",
              "Failures to read a source or to act, by source.", 1, sl, NULL,
              0, 0, err)) ||
        !(act = osp_metrics_add(r, OSP_METRIC_HISTOGRAM,
              "osprey_autoscaler_actuation_duration_seconds",
              "Time to ask the actuator for a new count.", 0, NULL, NULL, 0,
              0, err)) ||
        !(st = osp_metrics_add(r, OSP_METRIC_COUNTER,
              "osprey_autoscaler_workers_started_total",
              "Local workers started.", 0, NULL, NULL, 0, 0, err)) ||
        !(died = osp_metrics_add(r, OSP_METRIC_COUNTER,
              "osprey_autoscaler_worker_deaths_total",
              "Local workers that exited without being asked (replaced).", 0,
              NULL, NULL, 0, 0, err)) ||
        /* The bounds, so an alert can say "at max" without knowing the
         * flags (osprey-autoscaler-at-max in deploy/monitoring). */
        !(lo = osp_metrics_add(r, OSP_METRIC_GAUGE,
              "osprey_autoscaler_min_replicas", "--min (minReplicas).", 0,
              NULL, NULL, 0, 0, err)) ||
        !(hi = osp_metrics_add(r, OSP_METRIC_GAUGE,
              "osprey_autoscaler_max_replicas", "--max (maxReplicas).", 0,
              NULL, NULL, 0, 0, err)))
        return err ? err->code : OSP_EINTERNAL;
    osp_series_set(osp_metric_series0(lo), l->o.policy.min_replicas);
    osp_series_set(osp_metric_series0(hi), l->o.policy.max_replicas);
    l->s_current = osp_metric_series0(cur);
    l->s_desired = osp_metric_series0(des);
    l->s_panic = osp_metric_series0(pan);
    l->s_actuation = osp_metric_series0(act);
    l->s_started = osp_metric_series0(st);
    l->s_died = osp_metric_series0(died);
    for (int i = 0; i < l->o.policy.n_targets; i++) {
        const char *v[] = {osp_autoscale_metric_name(
            l->o.policy.targets[i].metric)};
        l->s_value[i] = osp_metric_series(val, v);
        l->s_target[i] = osp_metric_series(tgt, v);
        osp_series_set(l->s_target[i], l->o.policy.targets[i].target);
    }
    for (int i = 0; i < DIR_COUNT; i++)
        l->s_dir[i] = osp_metric_series(dec, (const char *[]){dir_names[i]});
    for (int i = 0; i < SRC_COUNT; i++)
        l->s_err[i] = osp_metric_series(errs, (const char *[]){src_names[i]});
    return 0;
}

static void count_error(osp_autoscale_loop_t *l, int src, const char *msg) {
    osp_series_inc(l->s_err[src]);
    l->errors_in_row++;
    osp_log_write(NULL, NULL, "warn", "autoscale: cannot read or act",
                  "source", src_names[src], "error", msg, NULL);
}

/* ---- sources ------------------------------------------------------- */

static bool wants(const osp_autoscale_loop_t *l, osp_autoscale_metric_t m) {
    for (int i = 0; i < l->o.policy.n_targets; i++)
        if (l->o.policy.targets[i].metric == m)
            return true;
    return false;
}

/* The workers' queues (the `queue` metric): every backend the dispatcher
 * lists, read directly. */
static void read_workers(osp_autoscale_loop_t *l, osp_autoscale_reading_t *r) {
    char url[600];
    snprintf(url, sizeof url, "%s/admin/backends", l->o.dispatcher);
    long status = 0;
    char *body = NULL;
    osp_err_t err = {0};
    if (osp_http_fetch_bearer("GET", url, l->o.dispatcher_token, NULL,
                              LOOP_FETCH_MS, &status, &body, NULL, &err) ||
        status != 200) {
        count_error(l, SRC_DISPATCHER, err.msg[0] ? err.msg : "admin API");
        free(body);
        return;
    }
    json_t *list = json_loads(body, 0, NULL);
    free(body);
    size_t i;
    json_t *b;
    json_array_foreach(list, i, b) {
        const char *addr = json_string_value(json_object_get(b, "address"));
        const char *state = json_string_value(json_object_get(b, "state"));
        if (!addr || !state || strcmp(state, "ready"))
            continue;
        snprintf(url, sizeof url, "http://%s/metrics", addr);
        char *page = NULL;
        size_t len = 0;
        if (!osp_http_fetch("GET", url, NULL, LOOP_FETCH_MS, &status,
                                  &page, &len, &err) &&
            status == 200)
            osp_autoscale_read_worker(r, page, len, &err);
        free(page);
    }
    json_decref(list);
}

static void read_embedded(osp_autoscale_loop_t *l, double t, double *values) {
    osp_autoscale_reading_t cur;
    osp_autoscale_reading_init(&cur, t);
    char url[600];
    snprintf(url, sizeof url, "%s/metrics", l->o.dispatcher);
    long status = 0;
    char *body = NULL;
    size_t len = 0;
    osp_err_t err = {0};
    /* /metrics needs no token; it goes with every request to the admin
     * listener all the same (one rule for its clients) */
    if (osp_http_fetch_bearer("GET", url, l->o.dispatcher_token, NULL,
                              LOOP_FETCH_MS, &status, &body, &len, &err) ||
        status != 200 ||
        osp_autoscale_read_dispatcher(&cur, body, len, &err)) {
        if (!err.msg[0])
            osp_err_set(&err, OSP_EIO, "GET %s: HTTP %ld", url, status);
        count_error(l, SRC_DISPATCHER, err.msg);
    }
    free(body);
    if (wants(l, OSP_AUTOSCALE_METRIC_QUEUE))
        read_workers(l, &cur);
    for (int i = 0; i < l->o.policy.n_targets; i++)
        values[i] = osp_autoscale_value(l->o.policy.targets[i].metric,
                                        l->have_prev ? &l->prev : NULL, &cur);
    /* A failed read breaks the chain of rates: start again from the next. */
    l->prev = cur;
    l->have_prev = cur.dispatcher_ok;
}

/* Sums a Prometheus instant query's answer (a vector's samples, or a
 * scalar); NaN for an empty vector (no data). */
static int prom_value(const char *body, double *out, osp_err_t *err) {
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    const char *status = json_string_value(json_object_get(j, "status"));
    json_t *data = json_object_get(j, "data");
    const char *type = json_string_value(json_object_get(data, "resultType"));
    json_t *res = json_object_get(data, "result");
    int rc = 0;
    if (!status || strcmp(status, "success") || !type) {
        const char *e = json_string_value(json_object_get(j, "error"));
        rc = osp_err_set(err, OSP_EFORMAT, "Prometheus: %s",
                         e ? e : "not a query answer");
    } else if (!strcmp(type, "scalar")) {
        *out = strtod(json_string_value(json_array_get(res, 1)) ?: "nan", NULL);
    } else if (!strcmp(type, "vector")) {
        double sum = json_array_size(res) ? 0 : NAN;
        size_t i;
        json_t *s;
        json_array_foreach(res, i, s) {
            const char *v = json_string_value(
                json_array_get(json_object_get(s, "value"), 1));
            sum += v ? strtod(v, NULL) : NAN;
        }
        *out = sum;
    } else {
        rc = osp_err_set(err, OSP_EFORMAT, "Prometheus: a %s answer; the "
                         "query must give a vector or a scalar", type);
    }
    json_decref(j);
    return rc;
}

static double read_prometheus(osp_autoscale_loop_t *l, int i) {
    char q[512];
    const char *promql =
        l->o.policy.targets[i].metric == OSP_AUTOSCALE_METRIC_QUERY
            ? l->o.query
            : osp_autoscale_promql(l->o.policy.targets[i].metric,
                                   l->o.rate_window_s, q, sizeof q);
    char *enc = curl_easy_escape(NULL, promql ? promql : "", 0);
    size_t n = strlen(l->o.prometheus) + (enc ? strlen(enc) : 0) + 32;
    char *url = malloc(n);
    double v = NAN;
    osp_err_t err = {0};
    long status = 0;
    char *body = NULL;
    if (!enc || !url) {
        osp_err_set(&err, OSP_ENOMEM, "out of memory");
    } else {
        snprintf(url, n, "%s/api/v1/query?query=%s", l->o.prometheus, enc);
        if (!osp_http_fetch("GET", url, NULL, LOOP_FETCH_MS, &status,
                                  &body, NULL, &err) &&
            (status == 200 || status == 400 || status == 422) &&
            !prom_value(body, &v, &err))
            err.msg[0] = 0;
        else if (!err.msg[0])
            osp_err_set(&err, OSP_EIO, "Prometheus: HTTP %ld", status);
    }
    if (err.msg[0])
        count_error(l, SRC_PROMETHEUS, err.msg);
    free(body);
    free(url);
    curl_free(enc);
    return v;
}

/* ---- one tick ------------------------------------------------------ */

static json_t *decision_json(const osp_autoscale_loop_t *l,
                             const osp_autoscale_decision_t *d) {
    json_t *ms = json_array();
    for (int i = 0; i < d->n_metrics; i++) {
        const osp_autoscale_metric_view_t *m = &d->metrics[i];
        json_t *o = json_pack("{s:s, s:f}", "metric",
                              osp_autoscale_metric_name(m->metric), "target",
                              m->target);
        json_object_set_new(o, "value", isfinite(m->value)
                                            ? json_real(m->value)
                                            : json_null());
        json_object_set_new(o, "panic_value", isfinite(m->panic_value)
                                                  ? json_real(m->panic_value)
                                                  : json_null());
        if (m->desired >= 0)
            json_object_set_new(o, "desired", json_integer(m->desired));
        json_array_append_new(ms, o);
    }
    json_t *o = json_pack("{s:i, s:i, s:i, s:b, s:b, s:s, s:o}", "current",
                          d->current, "ready", d->ready, "desired", d->desired,
                          "panic", d->panic, "held", d->held, "rule", d->rule,
                          "metrics", ms);
    if (l->o.dry_run)
        json_object_set_new(o, "dry_run", json_true());
    return o;
}

static void log_decision(const osp_autoscale_loop_t *l,
                         const osp_autoscale_decision_t *d, json_t *j) {
    if (l->o.json_log) {
        osp__log_json(NULL, NULL, "info", "decision", json_incref(j));
        return;
    }
    char vals[256] = "";
    size_t n = 0;
    for (int i = 0; i < d->n_metrics && n < sizeof vals; i++)
        n += (size_t)snprintf(vals + n, sizeof vals - n, "%s%s %.3g/%g",
                              i ? ", " : "",
                              osp_autoscale_metric_name(d->metrics[i].metric),
                              d->metrics[i].value, d->metrics[i].target);
    fprintf(stderr, "autoscale: %d → %d%s%s (%s; %s)\n", d->current,
            d->desired, d->panic ? " [panic]" : "",
            l->o.dry_run ? " [dry run]" : "", d->rule, vals);
}

static void act(osp_autoscale_loop_t *l, const osp_autoscale_decision_t *d) {
    if (d->desired == d->current || l->o.dry_run)
        return;
    osp_err_t err = {0};
    uint64_t t0 = osp_now_ns();
    if (l->o.actuator->scale(l->o.actuator, d->desired, &err))
        count_error(l, SRC_ACTUATOR, err.msg);
    osp_series_observe(l->s_actuation, (osp_now_ns() - t0) / 1e9);
}

static void tick(osp_autoscale_loop_t *l, double t) {
    osp_autoscale_sample_t s = {.t_s = t};
    osp_err_t err = {0};
    int errors_before = l->errors_in_row;
    if (l->o.actuator->observe(l->o.actuator, &s.current, &s.ready, &err)) {
        count_error(l, SRC_ACTUATOR, err.msg);
        return; /* no count, no decision: hold */
    }
    if (l->o.prometheus) {
        for (int i = 0; i < l->o.policy.n_targets; i++)
            s.values[i] = read_prometheus(l, i);
    } else {
        read_embedded(l, t, s.values);
    }
    osp_autoscale_decision_t d;
    osp_autoscale_step(l->policy, &s, &d);
    if (l->errors_in_row == errors_before)
        l->errors_in_row = 0;
    if (d.evaluated) {
        int dir = d.desired > d.current   ? DIR_UP
                  : d.desired < d.current ? DIR_DOWN
                                          : DIR_NONE;
        osp_series_inc(l->s_dir[dir]);
    }
    json_t *j = decision_json(l, &d);
    if (d.evaluated && (d.desired != d.current || d.held || d.panic ||
                        !l->last_decision))
        log_decision(l, &d, j);
    act(l, &d);
    const osp_autoscale_local_stats_t *ls =
        osp_autoscale_local_stats(l->o.actuator);
    if (ls) { /* counters: add what is new since the last tick */
        osp_series_add(l->s_started,
                       (double)ls->started - osp_series_value(l->s_started));
        osp_series_add(l->s_died,
                       (double)ls->died - osp_series_value(l->s_died));
    }
    osp_series_set(l->s_current, s.current);
    osp_series_set(l->s_desired, d.desired);
    osp_series_set(l->s_panic, d.panic);
    for (int i = 0; i < d.n_metrics; i++)
        osp_series_set(l->s_value[i], d.metrics[i].value);
    char *ws = l->o.actuator->status_json
                   ? l->o.actuator->status_json(l->o.actuator)
                   : NULL;
    pthread_mutex_lock(&l->mu);
    free(l->workers);
    l->workers = ws;
    if (d.evaluated || !l->last_decision) {
        json_decref(l->last_decision);
        l->last_decision = json_incref(j);
    }
    l->current = s.current;
    l->desired = d.desired;
    l->panic = d.panic;
    pthread_mutex_unlock(&l->mu);
    json_decref(j);
}

static void *loop_main(void *arg) {
    osp_autoscale_loop_t *l = arg;
    uint64_t t0 = osp_now_ns();
    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        pthread_mutex_unlock(&l->mu);
        tick(l, (osp_now_ns() - t0) / 1e9);
        /* Backoff: while reads or actions fail, the tick doubles, up to one
         * period. */
        double wait = l->o.tick_s;
        for (int k = 0; k < l->errors_in_row && wait < l->o.policy.period_s;
             k++)
            wait *= 2;
        wait = OSP_MIN(wait, OSP_MAX(l->o.policy.period_s, l->o.tick_s));
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)(wait * 1e9);
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        pthread_mutex_lock(&l->mu);
        while (!l->stop &&
               pthread_cond_timedwait(&l->cv, &l->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&l->mu);
    /* The actuator's processes were started from this thread
     * (PR_SET_PDEATHSIG follows it): stop them before it ends. */
    l->o.actuator->destroy(l->o.actuator);
    l->o.actuator = NULL;
    return NULL;
}

/* ---- HTTP: /metrics and /status ------------------------------------- */

static void h_metrics(osp_http_req_t *r, void *ud) {
    osp_autoscale_loop_t *l = ud;
    char *text;
    size_t len;
    if (osp_metrics_render(l->reg, &text, &len))
        osp_http_respond_error(r, 500, "out of memory");
    else
        osp_http_respond_owned(r, 200, OSP_METRICS_CONTENT_TYPE, text, len);
}

static void h_status(osp_http_req_t *r, void *ud) {
    osp_autoscale_loop_t *l = ud;
    pthread_mutex_lock(&l->mu);
    json_t *o = json_pack("{s:i, s:i, s:b, s:s, s:O?, s:o?}", "current",
                          l->current, "desired", l->desired, "panic",
                          l->panic, "actuator", l->actuator_name,
                          "last_decision", l->last_decision, "workers",
                          l->workers ? json_loads(l->workers, 0, NULL)
                                     : NULL);
    pthread_mutex_unlock(&l->mu);
    if (!o)
        osp_http_respond_error(r, 500, "out of memory");
    else
        osp_http_respond_json(r, 200, o);
}

/* ---- lifecycle ----------------------------------------------------- */

osp_autoscale_loop_t *osp_autoscale_loop_create(
    const osp_autoscale_loop_opts_t *o, osp_err_t *err) {
    if (!o->actuator || (!o->prometheus && !o->dispatcher)) {
        osp_err_set(err, OSP_EINVAL, "autoscale: an actuator and a source "
                    "(the dispatcher or Prometheus) are required");
        return NULL;
    }
    for (int i = 0; i < o->policy.n_targets; i++)
        if (o->policy.targets[i].metric == OSP_AUTOSCALE_METRIC_QUERY &&
            (!o->prometheus || !o->query)) {
            osp_err_set(err, OSP_EINVAL, "autoscale: a PromQL query needs "
                        "--prometheus and --query");
            return NULL;
        }
    osp_autoscale_loop_t *l = calloc(1, sizeof *l);
    if (!l) {
        osp_err_set(err, OSP_ENOMEM, "autoscale: out of memory");
        return NULL;
    }
    l->o = *o;
    l->actuator_name = o->actuator->name;
    if (!(l->o.tick_s > 0))
        l->o.tick_s = 1;
    if (l->o.rate_window_s <= 0)
        l->o.rate_window_s = 30;
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!(l->policy = osp_autoscale_create(&o->policy, err)) ||
        make_metrics(l, err))
        goto fail;
    if (o->port >= 0) {
        osp_http_opts_t ho;
        osp_http_opts_init(&ho);
        ho.host = o->host ? o->host : "127.0.0.1";
        ho.port = o->port;
        ho.max_connections = 32;
        ho.max_body_bytes = 1024;
        if (!(l->http = osp_http_server_create(&ho, err)) ||
            osp_http_route(l->http, "GET", "/metrics", h_metrics, l) ||
            osp_http_route(l->http, "GET", "/status", h_status, l))
            goto fail;
    }
    return l;
fail:
    l->o.actuator = NULL; /* the caller still owns it on failure */
    osp_autoscale_loop_destroy(l);
    return NULL;
}

int osp_autoscale_loop_start(osp_autoscale_loop_t *l, osp_err_t *err) {
    if (l->http && osp_http_server_start(l->http, err))
        return err ? err->code : OSP_EIO;
    if (pthread_create(&l->th, NULL, loop_main, l))
        return osp_err_set(err, OSP_EIO, "autoscale: cannot start thread");
    l->started = true;
    if (l->http)
        osp__log_json(NULL, NULL, "info", "listening",
                      json_pack("{s:s, s:i}", "host",
                                l->o.host ? l->o.host : "127.0.0.1", "port",
                                osp_http_server_port(l->http)));
    return 0;
}

int osp_autoscale_loop_port(const osp_autoscale_loop_t *l) {
    return l->http ? osp_http_server_port(l->http) : 0;
}

void osp_autoscale_loop_drain(osp_autoscale_loop_t *l) {
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (l->started) {
        pthread_join(l->th, NULL);
        l->started = false;
    }
}

void osp_autoscale_loop_destroy(osp_autoscale_loop_t *l) {
    if (!l)
        return;
    osp_autoscale_loop_drain(l);
    if (l->o.actuator)
        l->o.actuator->destroy(l->o.actuator);
    osp_http_server_destroy(l->http);
    osp_autoscale_destroy(l->policy);
    osp_metrics_destroy(l->reg);
    json_decref(l->last_decision);
    free(l->workers);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
