/* dispatch.c — the dispatcher's lifecycle (create: metrics, HTTP front,
 * admin listener — refused on a non-loopback address without a token —,
 * discovery, health thread; drain: stop accepting, let
 * in-flight requests finish; destroy: stop and free), the
 * endpoints it answers itself (/v2/health/..., /v2, /v2/repository/index,
 * /metrics), request metrics and the JSON log. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log_int.h"
#include "dispatch/dispatch_int.h"

void osp_dispatch_opts_init(osp_dispatch_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->port = OSP_DISPATCH_DEFAULT_PORT;
    o->admin_port = OSP_DISPATCH_DEFAULT_ADMIN_PORT;
    o->policy = OSP_BALANCE_P2C;
    o->dns_interval_ms = OSP_DISPATCH_DEFAULT_DNS_MS;
    o->health_interval_ms = OSP_DISPATCH_DEFAULT_HEALTH_MS;
    o->eject_after = OSP_DISPATCH_DEFAULT_EJECT_AFTER;
    o->eject_base_ms = OSP_DISPATCH_DEFAULT_EJECT_BASE_MS;
    o->eject_max_ms = OSP_DISPATCH_DEFAULT_EJECT_MAX_MS;
    o->max_inflight = OSP_DISPATCH_DEFAULT_MAX_INFLIGHT;
    o->queue_size = OSP_DISPATCH_DEFAULT_QUEUE;
    o->queue_timeout_ms = OSP_DISPATCH_DEFAULT_QUEUE_TIMEOUT_MS;
    o->request_timeout_ms = OSP_DISPATCH_DEFAULT_TIMEOUT_MS;
    o->retry_ratio = OSP_DISPATCH_DEFAULT_RETRY_RATIO;
    o->max_body_bytes = OSP_HTTP_DEFAULT_MAX_BODY_BYTES;
    o->max_connections = OSP_HTTP_DEFAULT_MAX_CONNECTIONS;
    o->io = OSP_DISPATCH_IO_EVENT; /* measured better: performance.md */
    o->loops = 0;
}

const char *osp_dispatch_io_name(osp_dispatch_io_t io) {
    return io == OSP_DISPATCH_IO_EVENT ? "event" : "blocking";
}

int osp_dispatch_io_parse(const char *s, osp_dispatch_io_t *out) {
    if (s && !strcmp(s, "blocking"))
        *out = OSP_DISPATCH_IO_BLOCKING;
    else if (s && !strcmp(s, "event"))
        *out = OSP_DISPATCH_IO_EVENT;
    else
        return OSP_EINVAL;
    return 0;
}

void osp__dsp_log(osp_dispatch_t *d, const char *level, const char *msg,
                  json_t *fields) {
    osp__log_json(d ? d->o.log : NULL, d ? &d->log_mu : NULL, level, msg,
                  fields);
}

void osp_dispatch_log(osp_dispatch_t *d, const char *level, const char *msg,
                      ...) {
    va_list ap;
    va_start(ap, msg);
    osp_log_vwrite(d ? d->o.log : NULL, d ? &d->log_mu : NULL, level, msg, ap);
    va_end(ap);
}

/* Request metrics (proxied routes: their handler set the model) and a log
 * line for server-side failures. */
void osp__dsp_on_done(osp_http_req_t *r, int status, double seconds,
                      void *ud) {
    osp_dispatch_t *d = ud;
    size_t rx;
    osp_http_req_body(r, &rx);
    osp_series_add(d->s_rx, (double)rx);
    osp_series_add(d->s_tx, (double)osp_http_req_response_bytes(r));
    osp__dsp_model_t *m = osp_http_req_user(r);
    if (!m)
        return;
    osp__dsp_stats_record(&d->stats, (int64_t)time(NULL), seconds * 1e3,
                          status);
    if (status == 200 && m->s_ok) {
        osp_series_inc(m->s_ok); /* the common case: no lookup */
    } else {
        char code[8];
        snprintf(code, sizeof code, "%d", status);
        osp_series_inc(osp_metric_series(d->m_requests,
                                         (const char *[]){m->name, code}));
    }
    osp_series_observe(d->s_duration, seconds);
    if (status >= 500)
        osp__dsp_log(d, "error", "request",
                         json_pack("{s:s,s:s,s:s,s:i,s:f,s:s}", "request_id",
                                   osp_http_req_id(r), "method",
                                   osp_http_req_method(r), "path",
                                   osp_http_req_path(r), "status", status,
                                   "duration_ms", seconds * 1e3, "model",
                                   m->name));
}

static void h_live(osp_http_req_t *req, void *ud) {
    (void)ud;
    osp_http_respond_json(req, 200, json_pack("{s:b}", "live", 1));
}

/* Ready = at least one backend, and every model any backend serves has a
 * ready backend. */
static void h_ready(osp_http_req_t *req, void *ud) {
    osp_dispatch_t *d = ud;
    json_t *missing = json_array();
    bool ready = false;
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < d->n_b; i++)
        ready = ready || d->b[i]->state == DSP_READY;
    for (int m = 0; m < d->n_models; m++) {
        bool any = false, ok = false;
        for (int i = 0; i < d->n_b; i++) {
            if (!osp__dsp_backend_serves(d->b[i], d->models[m].name))
                continue;
            any = true;
            ok = ok || d->b[i]->state == DSP_READY;
        }
        if (any && !ok) {
            ready = false;
            json_array_append_new(missing, json_string(d->models[m].name));
        }
    }
    pthread_mutex_unlock(&d->mu);
    osp_http_respond_json(req, ready ? 200 : 503,
                          json_pack("{s:b,s:o}", "ready", ready,
                                    "models_without_backend", missing));
}

static void h_server(osp_http_req_t *req, void *ud) {
    (void)ud;
    osp_http_respond_json(
        req, 200,
        json_pack("{s:s,s:s,s:[s]}", "name", "osprey-dispatch", "version",
                  OSP_VERSION, "extensions", "model_repository"));
}

/* The union of the ready backends' models. */
static void h_index(osp_http_req_t *req, void *ud) {
    osp_dispatch_t *d = ud;
    json_t *a = json_array();
    pthread_mutex_lock(&d->mu);
    for (int m = 0; m < d->n_models; m++) {
        int n_ready = 0;
        for (int i = 0; i < d->n_b; i++)
            n_ready += d->b[i]->state == DSP_READY &&
                       osp__dsp_backend_serves(d->b[i], d->models[m].name);
        if (n_ready)
            json_array_append_new(
                a, json_pack("{s:s,s:s,s:i}", "name", d->models[m].name,
                             "state", "READY", "backends", n_ready));
    }
    pthread_mutex_unlock(&d->mu);
    osp_http_respond_json(req, 200, a);
}

static void h_metrics(osp_http_req_t *req, void *ud) {
    osp_dispatch_t *d = ud;
    osp__dsp_backend_gauges(d);
    char *text;
    size_t len;
    if (osp_metrics_render(d->metrics, &text, &len) < 0)
        return (void)osp_http_respond_error(req, 500, "out of memory");
    osp_http_respond_owned(req, 200, OSP_METRICS_CONTENT_TYPE, text, len);
}

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,  0.1,    0.25,  0.5,  1.0,
                                        2.5,   5.0,    10.0,  30.0};

static int add_metrics(osp_dispatch_t *d, osp_err_t *err) {
    const char *mc[] = {"model", "code"};
    const char *m1[] = {"model"};
    const char *b1[] = {"backend"};
    const char *ms[] = {"model", "state"};
    osp_metrics_t *r = d->metrics;
    osp_metric_t *cap;
    if (!(d->m_requests = osp_metrics_add(r, OSP_METRIC_COUNTER,
            "osprey_dispatch_requests_total",
            "Proxied requests answered, by model and HTTP status code.", 2,
            mc, NULL, 0, 0, err)) ||
        !(d->m_duration = osp_metrics_add(r, OSP_METRIC_HISTOGRAM,
            "osprey_dispatch_request_duration_seconds",
            "Proxied request latency at the dispatcher (queue, attempts, "
            "retries), seconds.", 0, NULL, latency_bounds,
            (int)OSP_ARRAY_LEN(latency_bounds), 0, err)) ||
        !(d->m_depth = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_dispatch_queue_depth",
            "Requests waiting for a backend slot, by model.", 1, m1, NULL, 0,
            0, err)) ||
        !(d->m_inflight = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_dispatch_inflight",
            "Requests in flight to each backend.", 1, b1, NULL, 0,
            OSP_DISPATCH_MAX_BACKENDS, err)) ||
        !(d->m_backends = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_dispatch_backends",
            "Backends serving each model, by state (ready, not_ready, "
            "ejected).", 2, ms, NULL, 0, DSP_MAX_MODELS * DSP_STATE_COUNT,
            err)) ||
        !(d->m_retries = osp_metrics_add(r, OSP_METRIC_COUNTER,
            "osprey_dispatch_retries_total",
            "Attempts retried on another backend.", 0, NULL, NULL, 0, 0,
            err)) ||
        !(d->m_ejections = osp_metrics_add(r, OSP_METRIC_COUNTER,
            "osprey_dispatch_ejections_total",
            "Backends ejected after consecutive failures.", 0, NULL, NULL,
            0, 0, err)) ||
        !(cap = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_dispatch_queue_capacity",
            "Requests each model's queue holds before it refuses (503).", 0,
            NULL, NULL, 0, 0, err)) ||
        osp_metrics_add_http_bytes(r, &d->s_rx, &d->s_tx, err) < 0 ||
        osp_http_slow_metric(r, d->s_slow, err) < 0)
        return err ? err->code : OSP_EINTERNAL;
    osp_series_set(osp_metric_series0(cap), d->o.queue_size);
    d->s_duration = osp_metric_series0(d->m_duration);
    d->s_retries = osp_metric_series0(d->m_retries);
    d->s_ejections = osp_metric_series0(d->m_ejections);
    return 0;
}

void osp__dsp_front_opts(const osp_dispatch_t *d, int n_fronts,
                         osp_http_opts_t *ho) {
    osp_http_opts_init(ho);
    ho->host = d->o.host;
    ho->port = d->o.port;
    if (d->o.max_body_bytes)
        ho->max_body_bytes = d->o.max_body_bytes;
    /* --max-connections is the process's: each event loop's front takes
     * its share (the kernel spreads accepts over them, SO_REUSEPORT). */
    if (d->o.max_connections > 0)
        ho->max_connections = (d->o.max_connections + n_fronts - 1) /
                              (n_fronts > 0 ? n_fronts : 1);
    if (d->o.conn_timeout_s > 0)
        ho->conn_timeout_s = d->o.conn_timeout_s;
    if (d->o.header_timeout_s)
        ho->header_timeout_s = d->o.header_timeout_s;
    if (d->o.min_body_rate != 0)
        ho->min_body_rate = d->o.min_body_rate;
    for (int w = 0; w < OSP_HTTP_SLOW_COUNT; w++)
        ho->slow_closes[w] = d->s_slow[w];
    ho->budget = d->budget;
}

int osp__dsp_own_routes(osp_dispatch_t *d, osp_http_server_t *s) {
    if (osp_http_route(s, "GET", "/v2/health/live", h_live, d) < 0 ||
        osp_http_route(s, "GET", "/v2/health/ready", h_ready, d) < 0 ||
        osp_http_route(s, "GET", "/ready", h_ready, d) < 0 ||
        osp_http_route(s, "GET", "/v2", h_server, d) < 0 ||
        osp_http_route(s, "GET", "/v2/repository/index", h_index, d) < 0 ||
        osp_http_route(s, "POST", "/v2/repository/index", h_index, d) < 0 ||
        osp_http_route(s, "GET", "/metrics", h_metrics, d) < 0 ||
        osp__dsp_ui_routes(d, s) < 0)
        return OSP_EINTERNAL;
    return 0;
}

/* Is host a loopback literal (127.0.0.0/8, ::1, ::ffff:127.x.y.z)? A
 * name or anything else is not: only a loopback address keeps the admin
 * API to this machine. */
static bool is_loopback(const char *host) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) != 1)
        return false;
    if (IN6_IS_ADDR_LOOPBACK(&a6))
        return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
}

/* The admin API's token, and the rule that a listener beyond loopback
 * needs one (docs/adr/0047-admin-token.md): checked before anything is
 * bound, so a refused start leaves nothing behind. */
static int admin_auth_setup(osp_dispatch_t *d, osp_err_t *err) {
    const osp_dispatch_opts_t *o = &d->o;
    if (o->admin_port < 0)
        return 0;
    int rc = o->admin_token_file
                 ? osp_http_bearer_read_file(o->admin_token_file,
                                             d->admin_token,
                                             sizeof d->admin_token, err)
                 : 0;
    if (rc < 0) {
        osp_err_prefix(err, "admin API");
        return rc;
    }
    const char *host = o->admin_host ? o->admin_host : "127.0.0.1";
    if (!d->admin_token[0] && !is_loopback(host))
        return osp_err_set(err, OSP_EINVAL,
                           "refusing to bind the admin API to %s (not "
                           "loopback) without a token: give "
                           "--admin-token-file FILE, or keep --admin-host "
                           "on 127.0.0.1", host);
    return 0;
}

osp_dispatch_t *osp_dispatch_create(const osp_dispatch_opts_t *o,
                                    osp_err_t *err) {
    osp_dispatch_t *d = calloc(1, sizeof *d);
    if (!d) {
        osp_err_set(err, OSP_ENOMEM, "dispatch: out of memory");
        return NULL;
    }
    d->o = *o;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    pthread_cond_init(&d->health_cv, NULL);
    pthread_mutex_init(&d->log_mu, NULL);
    pthread_mutex_init(&d->as_mu, NULL);
    osp__dsp_stats_init(&d->stats);
    if (!(d->openapi = osp__dsp_openapi(&d->openapi_len))) {
        osp_err_set(err, OSP_ENOMEM, "dispatch: cannot build openapi.json");
        goto fail;
    }
    d->rng = osp_now_ns() ^ ((uint64_t)getpid() << 32);
    d->retry_tokens = DSP_RETRY_TOKENS_MAX / 2;
    strcpy(d->default_model.name, DSP_DEFAULT_MODEL);
    d->unknown_model.name[0] = 0;
    if (d->o.health_interval_ms <= 0)
        d->o.health_interval_ms = OSP_DISPATCH_DEFAULT_HEALTH_MS;
    if (d->o.eject_after <= 0)
        d->o.eject_after = OSP_DISPATCH_DEFAULT_EJECT_AFTER;
    if (d->o.max_inflight <= 0)
        d->o.max_inflight = OSP_DISPATCH_DEFAULT_MAX_INFLIGHT;
    if (d->o.request_timeout_ms <= 0)
        d->o.request_timeout_ms = OSP_DISPATCH_DEFAULT_TIMEOUT_MS;
    if (d->o.dns_interval_ms <= 0)
        d->o.dns_interval_ms = OSP_DISPATCH_DEFAULT_DNS_MS;
    if (admin_auth_setup(d, err) < 0)
        goto fail;
    if ((unsigned)d->o.policy >= OSP_BALANCE_COUNT) {
        osp_err_set(err, OSP_EINVAL, "dispatch: bad policy %d", d->o.policy);
        goto fail;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        osp_err_set(err, OSP_EINTERNAL, "dispatch: libcurl init failed");
        goto fail;
    }
    if (!(d->metrics = osp_metrics_create(1))) {
        osp_err_set(err, OSP_ENOMEM, "dispatch: out of memory");
        goto fail;
    }
    if (add_metrics(d, err) < 0)
        goto fail;
    /* One memory budget for the bodies every front buffers (the limit is
     * the process's: docs/dispatch.md "Limits and slow clients"). */
    if (d->o.max_inflight_bytes &&
        (!(d->budget = osp_http_budget_create(d->o.max_inflight_bytes)) ||
         osp_http_budget_metric(d->budget, d->metrics, err) < 0)) {
        if (!d->budget)
            osp_err_set(err, OSP_ENOMEM, "dispatch: out of memory");
        goto fail;
    }
    d->default_model.s_depth = osp_metric_series(
        d->m_depth, (const char *[]){DSP_DEFAULT_MODEL});
    d->default_model.s_ok = osp_metric_series(
        d->m_requests, (const char *[]){DSP_DEFAULT_MODEL, "200"});
    if ((unsigned)d->o.io > OSP_DISPATCH_IO_EVENT) {
        osp_err_set(err, OSP_EINVAL, "dispatch: bad io mode %d", d->o.io);
        goto fail;
    }
    if (d->o.io == OSP_DISPATCH_IO_BLOCKING) {
        osp_http_opts_t ho;
        osp__dsp_front_opts(d, 1, &ho);
        if (!(d->http = osp_http_server_create(&ho, err)))
            goto fail;
        osp_http_on_done(d->http, osp__dsp_on_done, d);
        if (osp__dsp_own_routes(d, d->http) < 0 ||
            osp__dsp_proxy_routes(d->http, osp__dsp_h_proxy, d, 0) < 0) {
            osp_err_set(err, OSP_EINTERNAL,
                        "dispatch: cannot register routes");
            goto fail;
        }
    }
    if (o->admin_port >= 0) {
        osp_http_opts_t ao;
        osp_http_opts_init(&ao);
        ao.host = o->admin_host ? o->admin_host : "127.0.0.1";
        ao.port = o->admin_port;
        ao.max_connections = 16;
        ao.max_body_bytes = 1 << 16;
        if (!(d->admin = osp_http_server_create(&ao, err)))
            goto fail;
        /* The admin listener also serves /metrics: the local autoscaler
         * reads both from the one address it is given. /metrics needs no
         * token (admin.c says why). */
        if (osp__dsp_admin_routes(d, d->admin) < 0 ||
            osp_http_route(d->admin, "GET", "/metrics", h_metrics, d) < 0) {
            osp_err_set(err, OSP_EINTERNAL, "dispatch: cannot register "
                                            "admin routes");
            goto fail;
        }
    }
    if (osp__dsp_discover_static(d, err) < 0)
        goto fail;
    if (osp__dsp_health_start(d) < 0) {
        osp_err_set(err, OSP_EIO, "dispatch: cannot start health thread");
        goto fail;
    }
    if ((o->dns && osp__dsp_discover_dns_start(d, err) < 0) ||
        (o->k8s_service && osp__dsp_discover_k8s_start(d, err) < 0) ||
        osp__dsp_autoscaler_start(d, err) < 0)
        goto fail;
    if (d->http && osp_http_server_start(d->http, err) < 0)
        goto fail;
    if (d->o.io == OSP_DISPATCH_IO_EVENT &&
        osp__dsp_loops_start(d, d->o.loops > 0 ? d->o.loops
                                               : osp_cpus_available(),
                             err) < 0)
        goto fail;
    if (d->admin && osp_http_server_start(d->admin, err) < 0) {
        osp_err_prefix(err, "admin API");
        goto fail;
    }
    osp__dsp_log(d, "info", "listening",
                     json_pack("{s:s,s:i,s:s,s:i,s:s,s:s,s:s,s:i}", "host",
                               o->host ? o->host : "0.0.0.0", "port",
                               osp_dispatch_port(d), "admin_host",
                               d->admin ? (o->admin_host ? o->admin_host
                                                         : "127.0.0.1")
                                        : "",
                               "admin_port",
                               osp_http_server_port(d->admin), "admin_auth",
                               !d->admin         ? "off"
                               : d->admin_token[0] ? "token"
                                                   : "none (loopback)",
                               "policy",
                               osp_balance_name(d->o.policy), "io",
                               osp_dispatch_io_name(d->o.io), "loops",
                               d->n_loops));
    return d;
fail:
    osp_dispatch_destroy(d);
    return NULL;
}

int osp_dispatch_port(const osp_dispatch_t *d) {
    return d->http ? osp_http_server_port(d->http) : osp__dsp_loops_port(d);
}

int osp_dispatch_admin_port(const osp_dispatch_t *d) {
    return d->admin ? osp_http_server_port(d->admin) : 0;
}

/* Stops accepting and waits until no request is in flight or until_ns;
 * OSP_ETIMEDOUT when some still were. The event loops stop here too (their
 * fronts are their threads); a second call finds nothing left to wait for. */
static int stop_fronts(osp_dispatch_t *d, uint64_t until_ns) {
    int rc = osp__dsp_loops_stop(d, until_ns);
    if (d->http) {
        osp_http_server_quiesce(d->http);
        while (osp_http_server_inflight(d->http) > 0 && osp_now_ns() < until_ns)
            usleep(10000);
        if (osp_http_server_inflight(d->http) > 0)
            rc = OSP_ETIMEDOUT;
    }
    return rc;
}

int osp_dispatch_drain(osp_dispatch_t *d, double timeout_s) {
    osp__dsp_log(d, "info", "draining", json_pack("{s:f}", "timeout_s",
                                                  timeout_s));
    if (stop_fronts(d, osp_now_ns() + (uint64_t)(timeout_s * 1e9)) < 0) {
        osp__dsp_log(d, "error", "drain timed out", NULL);
        return OSP_ETIMEDOUT;
    }
    osp__dsp_log(d, "info", "drained", NULL);
    return 0;
}

void osp_dispatch_destroy(osp_dispatch_t *d) {
    if (!d)
        return;
    (void)stop_fronts(d, osp_now_ns()); /* after a drain: nothing to wait for */
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    atomic_store(&d->stop_flag, true);
    pthread_cond_broadcast(&d->cv);
    pthread_cond_broadcast(&d->health_cv);
    pthread_mutex_unlock(&d->mu);
    if (d->dns_started)
        pthread_join(d->dns_th, NULL);
    if (d->k8s_started)
        pthread_join(d->k8s_th, NULL);
    if (d->health_started)
        pthread_join(d->health_th, NULL);
    if (d->as_started)
        pthread_join(d->as_th, NULL);
    json_decref(d->as_status);
    free(d->openapi);
    osp_http_server_destroy(d->admin);
    osp_http_server_destroy(d->http);
    for (int i = 0; i < d->n_b; i++)
        osp__dsp_backend_unref(d->b[i]);
    free(d->b);
    osp_http_budget_destroy(d->budget); /* after every front */
    osp_metrics_destroy(d->metrics);
    pthread_cond_destroy(&d->cv);
    pthread_cond_destroy(&d->health_cv);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->log_mu);
    pthread_mutex_destroy(&d->as_mu);
    osp__dsp_stats_fini(&d->stats);
    free(d);
}
