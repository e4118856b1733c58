/* serve.c — the worker's lifecycle: HTTP server and metrics registry at
 * create, model + engine instances + scheduler + warm-up at load, drain and
 * destroy; plus the JSON log and the per-request metrics hook.
 *
 * CPU budget: `threads` CPUs (default: what the cgroup quota and affinity
 * allow, probed once at create and logged; src/common/cpu_budget.c) are
 * split between `instances` engines, each with threads / instances oneDNN
 * threads (at least 1), so instances × engine threads never exceeds the
 * budget. HTTP threads decode and preprocess — in epoll mode a pool of one
 * per CPU, which never waits on the queue (requests are suspended while
 * their batch runs; endpoints.c). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log_int.h"
#include "serve/serve_int.h"

void osp_serve_opts_init(osp_serve_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->port = OSP_SERVE_DEFAULT_PORT;
    o->max_body_bytes = OSP_HTTP_DEFAULT_MAX_BODY_BYTES;
    o->max_pixels = OSP_IMAGE_DEFAULT_MAX_PIXELS;
    o->max_batch = OSP_SCHED_DEFAULT_MAX_BATCH;
    o->max_queue_delay_us = OSP_SCHED_DEFAULT_DELAY_US;
    o->max_queue_size = OSP_SCHED_DEFAULT_QUEUE;
    o->queue_delay_target_ms = OSP_SERVE_DEFAULT_QUEUE_DELAY_TARGET_MS;
    o->queue_delay_interval_ms = OSP_SERVE_DEFAULT_QUEUE_DELAY_INTERVAL_MS;
    o->default_timeout_ms = OSP_SERVE_DEFAULT_TIMEOUT_MS;
    o->conn_timeout_s = OSP_HTTP_DEFAULT_CONN_TIMEOUT_S;
    o->max_connections = 0; /* by mode: 256 threads, 2048 epoll */
}

void osp__serve_log(osp_serve_t *s, const char *level, const char *msg,
                    json_t *fields) {
    osp__log_json(s ? s->o.log : NULL, s ? &s->log_mu : NULL, level, msg,
                  fields);
}

void osp_serve_log(osp_serve_t *s, const char *level, const char *msg, ...) {
    va_list ap;
    va_start(ap, msg);
    osp_log_vwrite(s ? s->o.log : NULL, s ? &s->log_mu : NULL, level, msg, ap);
    va_end(ap);
}

/* Request metrics and the access log, after every response. */
static void on_done(osp_http_req_t *r, int status, double seconds, void *ud) {
    osp_serve_t *s = ud;
    size_t rx;
    osp_http_req_body(r, &rx);
    osp_series_add(s->s_rx, (double)rx);
    osp_series_add(s->s_tx, (double)osp_http_req_response_bytes(r));
    void *user = osp_http_req_user(r);
    const char *model = NULL;
    osp__serve_model_t *sm = NULL;
    if (user == &s->unknown_model) {
        model = "";
    } else if (user) {
        sm = user;
        model = sm->name;
    }
    if (model) {
        char code[8];
        snprintf(code, sizeof code, "%d", status);
        osp_series_inc(osp_metric_series(s->m_requests,
                                         (const char *[]){model, code}));
        if (sm)
            osp_series_observe(sm->h_request, seconds);
    }
    /* Health checks and scrapes are not worth a log line each. */
    const char *route = osp_http_req_route(r);
    if (status < 400 && (!strcmp(route, "/metrics") ||
                         !strncmp(route, "/v2/health/", 11)))
        return;
    json_t *f = json_pack("{s:s,s:s,s:s,s:i,s:f}", "request_id",
                          osp_http_req_id(r), "method",
                          osp_http_req_method(r), "path", osp_http_req_path(r),
                          "status", status, "duration_ms", seconds * 1e3);
    if (f && model)
        json_object_set_new(f, "model", json_string(model));
    osp__serve_log(s, status >= 500 ? "error" : "info", "request", f);
}

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                        0.05,  0.1,    0.25,  0.5,  1.0,
                                        2.5,   5.0,    10.0,  30.0};
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128};

static int add_metrics(osp_serve_t *s, osp_err_t *err) {
    const char *mc[] = {"model", "code"};
    const char *m1[] = {"model"};
    const char *mv[] = {"model", "version"};
    const char *ver[] = {"version"};
    int nb = (int)OSP_ARRAY_LEN(latency_bounds);
    osp_metrics_t *r = s->metrics;
    if (!(s->m_requests = osp_metrics_add(r, OSP_METRIC_COUNTER,
            "osprey_requests_total",
            "Inference requests answered, by model and HTTP status code.",
            2, mc, NULL, 0, 0, err)) ||
        !(s->m_duration = osp_metrics_add(r, OSP_METRIC_HISTOGRAM,
            "osprey_request_duration_seconds",
            "Inference request latency from request line to response, seconds.",
            1, m1, latency_bounds, nb, 0, err)) ||
        !(s->m_queue = osp_metrics_add(r, OSP_METRIC_HISTOGRAM,
            "osprey_queue_duration_seconds",
            "Time an image waited in the model's queue before its batch ran, "
            "seconds.", 1, m1, latency_bounds, nb, 0, err)) ||
        !(s->m_infer = osp_metrics_add(r, OSP_METRIC_HISTOGRAM,
            "osprey_inference_duration_seconds",
            "Engine run time per batch, seconds.", 1, m1, latency_bounds, nb,
            0, err)) ||
        !(s->m_decode = osp_metrics_add(r, OSP_METRIC_HISTOGRAM,
            "osprey_decode_duration_seconds",
            "Image decode + preprocess time per image, seconds.", 1, m1,
            latency_bounds, nb, 0, err)) ||
        !(s->m_batch = osp_metrics_add(r, OSP_METRIC_HISTOGRAM,
            "osprey_batch_size", "Images per engine run.", 1, m1, batch_bounds,
            (int)OSP_ARRAY_LEN(batch_bounds), 0, err)) ||
        !(s->m_depth = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_queue_depth", "Images waiting in the model's queue.", 1,
            m1, NULL, 0, 0, err)) ||
        !(s->m_inflight = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_inflight_requests",
            "HTTP requests being handled right now, plus, while a model "
            "sheds load, the requests it refused since the previous scrape "
            "counted as in flight as long as an admitted one (the demand "
            "the autoscaler sizes for).", 0, NULL, NULL, 0, 0, err)) ||
        !(s->m_shed = osp_metrics_add(r, OSP_METRIC_COUNTER,
            "osprey_requests_shed_total",
            "Requests refused with 503 by queue-delay load shedding, before "
            "their body was decoded.", 1, m1, NULL, 0, 0, err)) ||
        !(s->m_qdelay = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_queue_delay_seconds",
            "Wait of the model's latest image from its admission to the "
            "start of its batch (decode included), the delay the "
            "load-shedding controller keeps under its target, seconds.", 1,
            m1, NULL, 0, 0, err)) ||
        !(s->m_shedding = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_shedding",
            "1 while the model sheds load (its queue delay stayed above "
            "--queue-delay-target-ms for an interval), else 0.", 1, m1, NULL,
            0, 0, err)) ||
        !(s->m_ready = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_model_ready", "1 when the model version serves requests.",
            2, mv, NULL, 0, 0, err)) ||
        !(s->m_build = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_build_info", "Build information; the value is always 1.",
            1, ver, NULL, 0, 0, err)) ||
        !(s->m_capacity = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_queue_capacity",
            "Images the model's queue holds before it refuses (503).", 1, m1,
            NULL, 0, 0, err)) ||
        !(s->m_instances = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_model_instances",
            "Engine instances running the model's batches.", 1, m1, NULL, 0,
            0, err)) ||
        osp_metrics_add_http_bytes(r, &s->s_rx, &s->s_tx, err) < 0)
        return err ? err->code : OSP_EINTERNAL;
    osp_series_set(osp_metric_series(s->m_build, (const char *[]){OSP_VERSION}),
                   1);
    return 0;
}

/* Sets s->cpus, the budget every engine is sized from (osp_serve_load), from
 * one probe or --threads, and logs where it came from: a budget that is too big shows up only as CFS
 * throttling and slow requests, so the log is where one looks first. */
static void set_cpu_budget(osp_serve_t *s) {
    osp_cpu_budget_t b;
    osp_cpu_budget(&b);
    char src[256], given[320];
    osp_cpu_budget_source(&b, src, sizeof src);
    s->cpus = b.cpus;
    if (s->o.threads > 0) {
        s->cpus = s->o.threads;
        snprintf(given, sizeof given, "--threads (%d available: %s)", b.cpus,
                 src);
    }
    osp__serve_log(s, s->cpus > b.cpus ? "warn" : "info", "cpu budget",
                  json_pack("{s:i,s:s,s:s?,s:i}", "cpus", s->cpus, "source",
                            s->o.threads > 0 ? given : src, "cgroup",
                            b.cgroup_dir[0] ? b.cgroup_dir : NULL,
                            "affinity_cpus", b.affinity_cpus));
}

osp_serve_t *osp_serve_create(const osp_serve_opts_t *o, osp_err_t *err) {
    osp_serve_t *s = calloc(1, sizeof *s);
    if (!s) {
        osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->scrape_mu, NULL);
    pthread_mutex_init(&s->models_mu, NULL);
    pthread_mutex_init(&s->repo_mu, NULL);
    pthread_cond_init(&s->models_cv, NULL);
    s->o = *o;
    if (!(s->metrics = osp_metrics_create(1))) {
        osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
        goto fail;
    }
    if (add_metrics(s, err) < 0)
        goto fail;
    set_cpu_budget(s);
    osp_http_opts_t ho;
    osp_http_opts_init(&ho);
    ho.host = o->host;
    ho.port = o->port;
    if (o->max_body_bytes)
        ho.max_body_bytes = o->max_body_bytes;
    if (o->conn_timeout_s > 0)
        ho.conn_timeout_s = o->conn_timeout_s;
    if (o->header_timeout_s)
        ho.header_timeout_s = o->header_timeout_s;
    if (o->min_body_rate != 0)
        ho.min_body_rate = o->min_body_rate;
    if (osp_http_slow_metric(s->metrics, ho.slow_closes, err) < 0)
        goto fail;
    if (o->max_inflight_bytes &&
        (!(s->budget = osp_http_budget_create(o->max_inflight_bytes)) ||
         osp_http_budget_metric(s->budget, s->metrics, err) < 0)) {
        if (!s->budget)
            osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
        goto fail;
    }
    ho.budget = s->budget;
    ho.mode = OSP_HTTP_EPOLL;
    if (o->http_mode && osp_http_mode_parse(o->http_mode, &ho.mode) < 0) {
        osp_err_set(err, OSP_EINVAL, "serve: --http-mode '%s': use epoll or "
                    "threads", o->http_mode);
        goto fail;
    }
    s->http_mode = ho.mode;
    if (o->batch_wait && strcmp(o->batch_wait, "incoming") &&
        strcmp(o->batch_wait, "delay")) {
        osp_err_set(err, OSP_EINVAL, "serve: --batch-wait '%s': use incoming "
                    "or delay", o->batch_wait);
        goto fail;
    }
    s->batch_wait_delay = o->batch_wait && !strcmp(o->batch_wait, "delay");
    if (o->queue_delay_target_ms < 0 || o->queue_delay_interval_ms <= 0) {
        osp_err_set(err, OSP_EINVAL, "serve: --queue-delay-target-ms must be "
                    ">= 0 (0 = off) and --queue-delay-interval-ms > 0");
        goto fail;
    }
    ho.pool_threads = o->http_threads;
    /* The engines keep every CPU busy under load; an event loop that waits
     * for a CPU delays every request it reads, refusals included. */
    ho.short_slice = true;
    if (ho.mode == OSP_HTTP_EPOLL)
        ho.max_connections = SERVE_EPOLL_MAX_CONNECTIONS;
    if (o->max_connections > 0)
        ho.max_connections = o->max_connections;
    int decode_threads = o->decode_threads > 0
                             ? o->decode_threads
                             : OSP_MAX(1, OSP_MIN(s->cpus,
                                                  SERVE_MAX_DECODE_THREADS));
    if (o->decode_threads < 0 || decode_threads > SERVE_MAX_DECODE_THREADS) {
        osp_err_set(err, OSP_EINVAL, "serve: --decode-threads must be 1..%d",
                    SERVE_MAX_DECODE_THREADS);
        goto fail;
    }
    if (!(s->pool = osp__serve_pool_create(decode_threads))) {
        osp_err_set(err, OSP_ENOMEM, "serve: cannot start %d decode threads",
                    decode_threads);
        goto fail;
    }
    if (o->debug_delay_ms > 0 && !(s->timer = osp__serve_timer_create())) {
        osp_err_set(err, OSP_ENOMEM, "serve: cannot start the delay timer");
        goto fail;
    }
    if (!(s->http = osp_http_server_create(&ho, err)))
        goto fail;
    osp_http_on_done(s->http, on_done, s);
    if (osp__serve_routes(s) < 0) {
        osp_err_set(err, OSP_EINTERNAL, "serve: cannot register routes");
        goto fail;
    }
    if (osp_http_server_start(s->http, err) < 0)
        goto fail;
    osp__serve_log(s, "info", "listening",
                  json_pack("{s:s,s:i,s:s,s:i,s:i}", "host",
                            o->host ? o->host : "0.0.0.0", "port",
                            osp_http_server_port(s->http), "http_mode",
                            osp_http_mode_name(ho.mode), "http_threads",
                            ho.mode == OSP_HTTP_EPOLL
                                ? (ho.pool_threads > 0
                                       ? ho.pool_threads
                                       : osp_http_default_pool_threads())
                                : 0,
                            "decode_threads", decode_threads));
    if (o->debug_delay_ms > 0)
        osp__serve_log(s, "warn", "debug delay on: every inference request "
                                 "sleeps before answering",
                      json_pack("{s:I}", "debug_delay_ms",
                                (json_int_t)o->debug_delay_ms));
    return s;
fail:
    osp_serve_destroy(s);
    return NULL;
}

const char *osp__serve_state_name(osp__serve_state_t st) {
    static const char *const names[] = {"LOADING", "READY", "UNLOADING"};
    return (unsigned)st < SERVE_STATE_COUNT ? names[st] : "UNAVAILABLE";
}

static void on_batch(int n, double infer_s, void *ud) {
    osp__serve_model_t *sm = ud;
    osp_series_observe(sm->h_batch, n);
    osp_series_observe(sm->h_infer, infer_s);
    /* The drain rate for load shedding; before the debug delay below, so
     * that the delay is part of the time between two batches. */
    osp__serve_shed_batch(&sm->shed, n,
                          osp_sched_queue_depth(sm->sched) +
                                  atomic_load(&sm->preparing) > 0,
                          osp_now_ns());
    /* --debug-batch-delay-ms: the instance thread itself waits, so the
     * model serves fewer images per second without using more CPU — an
     * overload that a busy test machine cannot blur. */
    if (sm->debug_batch_delay_ms > 0) {
        struct timespec ts = {
            .tv_sec = (time_t)(sm->debug_batch_delay_ms / 1000),
            .tv_nsec = (long)(sm->debug_batch_delay_ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
}

static void model_free(osp__serve_model_t *sm) {
    if (!sm)
        return;
    osp_sched_destroy(sm->sched);
    osp__serve_shed_fini(&sm->shed);
    for (int i = 0; i < sm->n_engines; i++)
        osp_engine_destroy(sm->engines[i]);
    osp_model_close(sm->m);
    free(sm->name);
    free(sm->version);
    free(sm);
}

/* A READY version of the model called name (NULL: the default model):
 * `version`, or the highest one when version is NULL. Caller holds
 * models_mu. */
static osp__serve_model_t *find_locked(osp_serve_t *s, const char *name,
                                       const char *version) {
    if (!name)
        name = s->default_name;
    if (!name)
        return NULL;
    osp__serve_model_t *best = NULL;
    for (int i = 0; i < s->n_models; i++) {
        osp__serve_model_t *m = s->models[i];
        if (strcmp(name, m->name) || atomic_load(&m->state) != SERVE_READY)
            continue;
        if (version) {
            if (!strcmp(version, m->version))
                return m;
        } else if (!best || m->vnum > best->vnum) {
            best = m;
        }
    }
    return best;
}

osp__serve_model_t *osp__serve_acquire(osp_serve_t *s, const char *name,
                                       const char *version) {
    pthread_mutex_lock(&s->models_mu);
    osp__serve_model_t *sm = find_locked(s, name, version);
    if (sm)
        sm->refs++;
    pthread_mutex_unlock(&s->models_mu);
    return sm;
}

void osp__serve_release(osp_serve_t *s, osp__serve_model_t *sm) {
    pthread_mutex_lock(&s->models_mu);
    if (--sm->refs == 0)
        pthread_cond_broadcast(&s->models_cv);
    pthread_mutex_unlock(&s->models_mu);
}

/* Takes sm out of the table; caller holds models_mu. */
static void table_remove_locked(osp_serve_t *s, osp__serve_model_t *sm) {
    for (int i = 0; i < s->n_models; i++)
        if (s->models[i] == sm) {
            memmove(&s->models[i], &s->models[i + 1],
                    sizeof(s->models[0]) * (size_t)(s->n_models - i - 1));
            s->n_models--;
            return;
        }
}

/* Remembers (or, reason NULL, forgets) a failed load for the index. */
static void note_failed(osp_serve_t *s, const char *name, const char *version,
                        const char *reason) {
    pthread_mutex_lock(&s->models_mu);
    int at = -1;
    for (int i = 0; i < s->n_failed; i++)
        if (!strcmp(s->failed[i].name, name) &&
            !strcmp(s->failed[i].version, version))
            at = i;
    if (!reason) {
        if (at >= 0) {
            s->failed[at] = s->failed[s->n_failed - 1];
            s->n_failed--;
        }
    } else {
        if (at < 0 && s->n_failed < SERVE_MAX_FAILED)
            at = s->n_failed++;
        if (at >= 0) {
            snprintf(s->failed[at].name, sizeof s->failed[at].name, "%s",
                     name);
            snprintf(s->failed[at].version, sizeof s->failed[at].version,
                     "%s", version);
            snprintf(s->failed[at].reason, sizeof s->failed[at].reason, "%s",
                     reason);
        }
    }
    pthread_mutex_unlock(&s->models_mu);
}

/* load_one_here, step 1: opens the model file and names the version.
 * name NULL = the model's own name (config or file name). */
static int open_version(osp_serve_t *s, osp__serve_model_t *sm,
                        const char *path, const char *labels,
                        const char *config, const char *name,
                        const char *version, long long vnum, bool repo,
                        osp_err_t *err) {
    const osp_serve_opts_t *o = &s->o;
    int rc;
    sm->m = osp_model_open(path, labels, config, err);
    if (!sm->m)
        return err ? err->code : OSP_EINVAL;
    if (!repo && (o->calibration || o->calibration_count) &&
        (rc = osp_model_set_calibration(sm->m, o->calibration,
                                        o->calibration_count, err)) < 0)
        return rc;
    sm->name = strdup(name ? name : osp_model_name(sm->m));
    sm->version = strdup(version);
    sm->vnum = vnum;
    if (!sm->name || !sm->version)
        return osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
    /* The policy chooses among versions, so a version cannot carry one. */
    if (repo && osp_model_serving(sm->m)->has_version_policy &&
        (!config || strcmp(config, osp_model_config_path(sm->m))))
        return osp_err_set(err, OSP_EINVAL,
                           "%s: version_policy belongs in the model "
                           "directory's config.json, not a version's",
                           osp_model_config_path(sm->m));
    return 0;
}

/* Step 2: enters sm in the table as LOADING (visible in the index, taking
 * no traffic); OSP_EBUSY when that version is served already. */
static int table_add(osp_serve_t *s, osp__serve_model_t *sm, osp_err_t *err) {
    int rc = 0;
    pthread_mutex_lock(&s->models_mu);
    bool dup = false;
    for (int i = 0; i < s->n_models; i++)
        dup |= !strcmp(s->models[i]->name, sm->name) &&
               !strcmp(s->models[i]->version, sm->version);
    if (dup)
        rc = osp_err_set(err, OSP_EBUSY,
                         "serve: model '%s' version %s is already served",
                         sm->name, sm->version);
    else if (s->n_models >= SERVE_MAX_MODELS)
        rc = osp_err_set(err, OSP_ELIMIT, "serve: more than %d model versions",
                         SERVE_MAX_MODELS);
    if (rc == 0) {
        atomic_store(&sm->state, SERVE_LOADING);
        s->models[s->n_models++] = sm;
    }
    pthread_mutex_unlock(&s->models_mu);
    return rc;
}

/* Step 3: the engine instances within share CPUs (instances x engine
 * threads, *per each); *max_batch = the batch they are built for. */
static int load_engines(osp_serve_t *s, osp__serve_model_t *sm, int share,
                        int *per, int *max_batch, osp_err_t *err) {
    const osp_serve_opts_t *o = &s->o;
    const osp_model_serving_t *sv = osp_model_serving(sm->m);
    /* Per-model config keys win over the server-wide settings, which are
     * the defaults for models that do not set them (docs/model-config.md
     * "Serving"). */
    int inst = sv->instances > 0 ? sv->instances
                                 : (o->instances > 0 ? o->instances : 1);
    inst = OSP_MIN(OSP_MIN(inst, share), SERVE_MAX_INSTANCES);
    inst = OSP_MAX(inst, 1);
    *per = OSP_MAX(1, share / inst);
    sm->threads = inst * *per;
    int fixed = osp_model_max_batch(sm->m);
    *max_batch = fixed > 0 ? fixed : OSP_MAX(o->max_batch, 1);
    osp_engine_opts_t eo;
    osp_engine_opts_init(&eo);
    eo.threads = *per;
    eo.precision = o->precision;
    eo.max_batch = *max_batch;
    eo.tuning = o->tuning;
    for (int i = 0; i < inst; i++) {
        sm->engines[i] = osp_model_load_engine(sm->m, &eo, err);
        if (!sm->engines[i])
            return err ? err->code : OSP_EINVAL;
        sm->n_engines = i + 1;
    }
    /* The model file may declare a smaller fixed batch than asked. */
    fixed = osp_model_max_batch(sm->m);
    if (fixed > 0 && fixed < *max_batch)
        *max_batch = fixed;
    sm->pp = osp_model_preprocess(sm->m);
    sm->num_classes = osp_model_num_classes(sm->m);
    return 0;
}

/* Step 4: the model's metric series (labels: name, and version). */
static void bind_metrics(osp_serve_t *s, osp__serve_model_t *sm) {
    const char *m1[] = {sm->name};
    sm->h_request = osp_metric_series(s->m_duration, m1);
    sm->h_queue = osp_metric_series(s->m_queue, m1);
    sm->h_infer = osp_metric_series(s->m_infer, m1);
    sm->h_decode = osp_metric_series(s->m_decode, m1);
    sm->h_batch = osp_metric_series(s->m_batch, m1);
    sm->queue_depth = osp_metric_series(s->m_depth, m1);
    sm->shed_total = osp_metric_series(s->m_shed, m1);
    sm->queue_delay = osp_metric_series(s->m_qdelay, m1);
    sm->shedding = osp_metric_series(s->m_shedding, m1);
    sm->model_ready = osp_metric_series(
        s->m_ready, (const char *[]){sm->name, sm->version});
    osp_series_set(sm->model_ready, 0);
}

/* Step 5: the scheduler's options — the model's config over the server's
 * settings; preferred sizes above max_batch do not apply to it. */
static int sched_opts(osp_serve_t *s, osp__serve_model_t *sm, int max_batch,
                      osp_sched_opts_t *so, osp_err_t *err) {
    const osp_serve_opts_t *o = &s->o;
    const osp_model_serving_t *sv = osp_model_serving(sm->m);
    osp_sched_opts_init(so);
    so->max_batch = max_batch;
    so->max_queue_delay_us = sv->max_queue_delay_us >= 0
                                 ? sv->max_queue_delay_us
                                 : o->max_queue_delay_us;
    so->max_queue_size = sv->max_queue_size > 0
                             ? sv->max_queue_size
                             : (o->max_queue_size > 0 ? o->max_queue_size : 1);
    /* Requests announce themselves while they decode (endpoints.c): the
     * batcher waits for those, not for a fixed delay with none coming
     * (docs/decisions.md, "Batching: wait only for requests on their way"). */
    so->wait_for_expected = !s->batch_wait_delay;
    so->on_batch = on_batch;
    so->on_batch_ud = sm;
    if (sv->n_preferred > 0) {
        for (int i = 0; i < sv->n_preferred; i++)
            if (sv->preferred[i] <= max_batch &&
                so->n_preferred < OSP_SCHED_MAX_PREFERRED)
                so->preferred[so->n_preferred++] = sv->preferred[i];
        return 0;
    }
    for (const char *p = o->preferred_batch_sizes; p && *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || (*end && *end != ','))
            return osp_err_set(err, OSP_EINVAL,
                               "serve: preferred batch sizes '%s': expected "
                               "positive integers separated by commas",
                               o->preferred_batch_sizes);
        if (v <= max_batch && so->n_preferred < OSP_SCHED_MAX_PREFERRED)
            so->preferred[so->n_preferred++] = (int)v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* Step 6: the scheduler over the engines, checked against the
 * preprocessing's sample size. */
static int start_sched(osp__serve_model_t *sm, const osp_sched_opts_t *so,
                       osp_err_t *err) {
    sm->max_queue = so->max_queue_size;
    sm->sched = osp_sched_create(sm->engines, sm->n_engines, so, err);
    if (!sm->sched)
        return err ? err->code : OSP_EINVAL;
    sm->sample_bytes = osp_sched_sample_bytes(sm->sched);
    if (sm->sample_bytes != osp_preprocess_bytes(sm->pp))
        return osp_err_set(err, OSP_EINVAL,
                           "serve: model input sample is %zu bytes but the "
                           "preprocessing makes %zu", sm->sample_bytes,
                           osp_preprocess_bytes(sm->pp));
    return 0;
}

/* Step 7 (after warm-up): the "model ready" log line; t0 = start, t1 =
 * warm-up start, t2 = end (osp_now_ns). */
static void log_ready(osp_serve_t *s, const osp__serve_model_t *sm,
                      const osp_sched_opts_t *so, int per, uint64_t t0,
                      uint64_t t1, uint64_t t2) {
    json_t *pref = json_array();
    for (int i = 0; i < so->n_preferred; i++)
        json_array_append_new(pref, json_integer(so->preferred[i]));
    osp__serve_log(s, "info", "model ready",
                  json_pack("{s:s,s:s,s:s,s:s?,s:i,s:i,s:i,s:I,s:s,s:i,s:o,"
                            "s:s,s:s,s:s,s:f,s:f}",
                            "model", sm->name, "version", sm->version, "path",
                            osp_model_path(sm->m), "config",
                            osp_model_config_path(sm->m), "instances",
                            sm->n_engines, "engine_threads", per, "max_batch",
                            osp_sched_max_batch(sm->sched),
                            "max_queue_delay_us",
                            (json_int_t)so->max_queue_delay_us,
                            "batch_wait",
                            so->wait_for_expected ? "incoming" : "delay",
                            "max_queue_size", so->max_queue_size,
                            "preferred_batch_sizes", pref, "precision",
                            osp_precision_name(
                                osp_engine_precision(sm->engines[0])),
                            "choices", osp_engine_choices(sm->engines[0]),
                            "isa", osp_isa_name(osp_engine_isa(sm->engines[0])),
                            "load_ms", (double)(t1 - t0) * 1e-6, "warmup_ms",
                            (double)(t2 - t1) * 1e-6));
}

/* Loads one model version and makes it READY: it enters the table as
 * LOADING (visible in the index, taking no traffic), gets its engines,
 * scheduler and warm-up, and only then serves. name NULL = the model's own
 * name (config or file name). share: CPUs this version may use (instances x
 * engine threads). repo: loaded from a repository (the version_policy
 * belongs to the model directory; no --calibration). */
static int load_one_here(osp_serve_t *s, const char *path, const char *labels,
                         const char *config, const char *name, long long vnum,
                         int share, bool repo, osp_err_t *err) {
    osp__serve_model_t *sm = calloc(1, sizeof *sm);
    if (!sm)
        return osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
    osp__serve_shed_init(&sm->shed, s->o.queue_delay_target_ms,
                         s->o.queue_delay_interval_ms);
    sm->debug_batch_delay_ms = s->o.debug_batch_delay_ms;
    bool in_table = false;
    char version[24];
    snprintf(version, sizeof version, "%lld", vnum);
    uint64_t t0 = osp_now_ns(), t1, t2;
    int per = 1, max_batch = 1;
    osp_sched_opts_t so;
    int rc = open_version(s, sm, path, labels, config, name, version, vnum,
                          repo, err);
    if (rc < 0 || (rc = table_add(s, sm, err)) < 0)
        goto fail;
    in_table = true;
    if ((rc = load_engines(s, sm, share, &per, &max_batch, err)) < 0)
        goto fail;
    bind_metrics(s, sm);
    if ((rc = sched_opts(s, sm, max_batch, &so, err)) < 0 ||
        (rc = start_sched(sm, &so, err)) < 0)
        goto fail;
    t1 = osp_now_ns();
    if ((rc = osp_sched_warmup(sm->sched, err)) < 0)
        goto fail;
    t2 = osp_now_ns();
    /* Warm: from here on it takes traffic (a request without a version goes
     * to the highest READY one). */
    atomic_store(&sm->state, SERVE_READY);
    osp_series_set(sm->model_ready, 1);
    /* Per model name: the version loaded last sets them (the queue-full
     * alert and the saturation rule divide by these). */
    osp_series_set(osp_metric_series(s->m_capacity, (const char *[]){sm->name}),
                   so.max_queue_size);
    osp_series_set(osp_metric_series(s->m_instances, (const char *[]){sm->name}),
                   sm->n_engines);
    note_failed(s, sm->name, sm->version, NULL);
    log_ready(s, sm, &so, per, t0, t1, t2);
    return 0;
fail:
    if (in_table) {
        pthread_mutex_lock(&s->models_mu);
        table_remove_locked(s, sm);
        pthread_mutex_unlock(&s->models_mu);
    }
    /* (A duplicate is served already: not a failure of that version.) */
    if ((sm->name || name) && rc != OSP_EBUSY)
        note_failed(s, sm->name ? sm->name : name, version,
                    err ? err->msg : "load failed");
    model_free(sm);
    return rc < 0 ? rc : OSP_EINTERNAL;
}

/* Stops serving sm: no new requests (UNLOADING), waits for the ones holding
 * it (its queue drains with them), then frees it. */
static void retire(osp_serve_t *s, osp__serve_model_t *sm) {
    pthread_mutex_lock(&s->models_mu);
    atomic_store(&sm->state, SERVE_UNLOADING);
    osp_series_set(sm->model_ready, 0);
    while (sm->refs > 0)
        pthread_cond_wait(&s->models_cv, &s->models_mu);
    table_remove_locked(s, sm);
    pthread_mutex_unlock(&s->models_mu);
    osp_series_set(sm->queue_depth, 0);
    osp__serve_log(s, "info", "model unloaded",
                  json_pack("{s:s,s:s}", "model", sm->name, "version",
                            sm->version));
    model_free(sm);
}

/* Model names in URLs: [A-Za-z0-9._-], not starting with '.' or '-'. */
static bool good_name(const char *n) {
    size_t l = strlen(n);
    if (l == 0 || l > OSP_MODEL_NAME_MAX || n[0] == '.' || n[0] == '-')
        return false;
    for (size_t i = 0; i < l; i++)
        if (!isalnum((unsigned char)n[i]) && !strchr("._-", n[i]))
            return false;
    return true;
}

typedef struct load_job_s {
    osp_serve_t *s;
    const char *path, *labels, *config, *name;
    long long vnum;
    int share;
    bool repo;
    osp_err_t *err;
    int rc;
} load_job_t;

static void *load_job_main(void *arg) {
    load_job_t *j = arg;
    j->rc = load_one_here(j->s, j->path, j->labels, j->config, j->name,
                          j->vnum, j->share, j->repo, j->err);
    return NULL;
}

/* load_one_here on a thread of its own that ends with it. Why: loading
 * (calibration, plan building, warm-up) runs OpenMP regions, and libgomp
 * keeps a team's worker threads alive as long as the thread that led it.
 * Left on the main thread, that idle worker makes libgomp count more
 * managed threads than CPUs, and then it throttles every barrier's spin
 * to 100 iterations: each of a run's ~60 parallel regions ends in a futex
 * sleep (75 context switches per ResNet50 request vs ~2), +2.6 ms per
 * run (ResNet50 int8 13.5 vs 10.8 ms; docs/decisions.md, "One OpenMP
 * team per CPU set"). The thread's exit frees its team. */
static int load_one(osp_serve_t *s, const char *path, const char *labels,
                    const char *config, const char *name, long long vnum,
                    int share, bool repo, osp_err_t *err) {
    load_job_t j = {s, path, labels, config, name, vnum, share, repo, err, 0};
    pthread_t th;
    if (pthread_create(&th, NULL, load_job_main, &j) != 0)
        return load_one_here(s, path, labels, config, name, vnum, share,
                             repo, err);
    pthread_join(th, NULL);
    return j.rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

#define SERVE_PATH_MAX 4096

/* DIR/name/<v>/model.onnx (or .tflite) into path; 0 when one exists. */
static int model_file(const char *dir, const char *name, long long v,
                      char *path) {
    static const char *files[] = {"model.onnx", "model.tflite"};
    for (size_t f = 0; f < OSP_ARRAY_LEN(files); f++) {
        struct stat st;
        int w = snprintf(path, SERVE_PATH_MAX, "%s/%s/%lld/%s", dir, name, v,
                         files[f]);
        if (w > 0 && w < SERVE_PATH_MAX && stat(path, &st) == 0 &&
            S_ISREG(st.st_mode))
            return 0;
    }
    return OSP_ENOENT;
}

/* The numeric version directories of DIR/name that hold a model file,
 * ascending (at most SERVE_MAX_MODELS). */
static int list_versions(const char *dir, const char *name, long long *vs,
                         int *n_out, osp_err_t *err) {
    char md[SERVE_PATH_MAX], path[SERVE_PATH_MAX];
    *n_out = 0;
    int w = snprintf(md, sizeof md, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= sizeof md)
        return osp_err_set(err, OSP_ELIMIT, "serve: path too long");
    DIR *vd = opendir(md);
    if (!vd)
        return osp_err_set(err, OSP_ENOENT, "no model '%s' in %s", name, dir);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(vd)) && n < SERVE_MAX_MODELS) {
        char *end;
        errno = 0;
        long long v = strtoll(de->d_name, &end, 10);
        if (errno || end == de->d_name || *end || v < 0 ||
            !isdigit((unsigned char)de->d_name[0]))
            continue;
        if (model_file(dir, name, v, path) == 0)
            vs[n++] = v;
    }
    closedir(vd);
    qsort(vs, (size_t)n, sizeof *vs, cmp_ll);
    *n_out = n;
    return 0;
}

/* One version to load. */
typedef struct plan_s {
    char name[OSP_MODEL_NAME_MAX + 1];
    long long v;
    char path[SERVE_PATH_MAX];
    char cfg[SERVE_PATH_MAX]; /* model-level config.json; "" = none/own */
} plan_t;

/* Appends to plan[*n] the versions of DIR/name that its version_policy
 * selects (DIR/name/config.json; default: the latest one). */
static int plan_model(const char *dir, const char *name, plan_t *plan, int *n,
                      int cap, osp_err_t *err) {
    long long vs[SERVE_MAX_MODELS];
    int nv = 0;
    int rc = list_versions(dir, name, vs, &nv, err);
    if (rc < 0)
        return rc;
    if (nv == 0)
        return osp_err_set(err, OSP_ENOENT,
                           "serve: %s/%s: no <version>/model.onnx or "
                           "model.tflite", dir, name);
    char cfg[SERVE_PATH_MAX];
    struct stat st;
    osp_model_serving_t sv;
    memset(&sv, 0, sizeof sv);
    sv.policy = OSP_VERSIONS_LATEST;
    sv.latest_n = 1;
    int w = snprintf(cfg, sizeof cfg, "%s/%s/config.json", dir, name);
    bool has_cfg = w > 0 && (size_t)w < sizeof cfg && stat(cfg, &st) == 0;
    if (has_cfg && (rc = osp_model_config_serving(cfg, &sv, NULL, err)) < 0)
        return rc;
    long long sel[SERVE_MAX_MODELS];
    int ns = 0;
    switch (sv.policy) {
    case OSP_VERSIONS_LATEST:
        for (int i = OSP_MAX(0, nv - sv.latest_n); i < nv; i++)
            sel[ns++] = vs[i];
        break;
    case OSP_VERSIONS_ALL:
        for (int i = 0; i < nv; i++)
            sel[ns++] = vs[i];
        break;
    case OSP_VERSIONS_SPECIFIC:
        for (int k = 0; k < sv.n_versions; k++) {
            bool found = false;
            for (int i = 0; i < nv; i++)
                found |= vs[i] == sv.versions[k];
            if (!found)
                return osp_err_set(err, OSP_ENOENT,
                                   "serve: %s: version_policy lists version "
                                   "%lld but %s/%s/%lld has no model.onnx or "
                                   "model.tflite", cfg,
                                   (long long)sv.versions[k], dir, name,
                                   (long long)sv.versions[k]);
            sel[ns++] = sv.versions[k];
        }
        break;
    default:
        return osp_err_set(err, OSP_EINTERNAL, "serve: bad version policy");
    }
    for (int i = 0; i < ns; i++) {
        if (*n >= cap)
            return osp_err_set(err, OSP_ELIMIT,
                               "serve: more than %d model versions", cap);
        plan_t *p = &plan[(*n)++];
        snprintf(p->name, sizeof p->name, "%s", name);
        p->v = sel[i];
        if (model_file(dir, name, sel[i], p->path) < 0)
            return osp_err_set(err, OSP_ENOENT, "serve: %s/%s/%lld vanished",
                               dir, name, sel[i]);
        /* A version's own config (model.json / config.json beside the
         * file) wins; else the model-level one applies to every version. */
        char own[SERVE_PATH_MAX];
        snprintf(own, sizeof own, "%s/%s/%lld/config.json", dir, name, sel[i]);
        bool has_own = stat(own, &st) == 0;
        snprintf(own, sizeof own, "%s/%s/%lld/model.json", dir, name, sel[i]);
        has_own |= stat(own, &st) == 0;
        snprintf(p->cfg, sizeof p->cfg, "%s", has_cfg && !has_own ? cfg : "");
    }
    return 0;
}

/* The model names of a repository (sorted), at most SERVE_MAX_MODELS. */
static int repo_names(const char *dir, char ***out, int *n_out, bool strict,
                      osp_err_t *err) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return osp_err_set(err, OSP_ENOENT, "serve: model repository %s: %s",
                           dir, strerror(errno));
    char **names = calloc(SERVE_MAX_MODELS, sizeof *names);
    int nn = 0, rc = names ? 0 : osp_err_set(err, OSP_ENOMEM, "out of memory");
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[SERVE_PATH_MAX];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &st) || !S_ISDIR(st.st_mode))
            continue;
        if (!good_name(de->d_name)) {
            if (strict)
                rc = osp_err_set(err, OSP_EINVAL,
                                 "serve: %s: model directory name '%s' is "
                                 "not [A-Za-z0-9._-]", dir, de->d_name);
            continue;
        }
        if (nn == SERVE_MAX_MODELS) {
            rc = osp_err_set(err, OSP_ELIMIT, "serve: %s: more than %d models",
                             dir, SERVE_MAX_MODELS);
            break;
        }
        if (!(names[nn] = strdup(de->d_name)))
            rc = osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
        else
            nn++;
    }
    closedir(d);
    if (rc < 0) {
        for (int i = 0; i < nn; i++)
            free(names[i]);
        free(names);
        return rc;
    }
    qsort(names, (size_t)nn, sizeof *names, cmp_str);
    *out = names;
    *n_out = nn;
    return 0;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int osp_serve_load(osp_serve_t *s, osp_err_t *err) {
    const osp_serve_opts_t *o = &s->o;
    if (!o->model_path && !o->model_repository)
        return osp_err_set(err, OSP_EINVAL,
                           "serve: no model (give --model PATH or "
                           "--model-repository DIR)");
    pthread_mutex_lock(&s->repo_mu);
    char **names = NULL;
    int nn = 0, np = 0, rc = 0;
    plan_t *plan = calloc(SERVE_MAX_MODELS, sizeof *plan);
    if (!plan) {
        rc = osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
        goto out;
    }
    if (o->model_repository) {
        if ((rc = repo_names(o->model_repository, &names, &nn, true, err)) < 0)
            goto out;
        if (nn == 0) {
            rc = osp_err_set(err, OSP_ENOENT, "serve: %s holds no models",
                             o->model_repository);
            goto out;
        }
        for (int i = 0; i < nn && rc == 0; i++)
            rc = plan_model(o->model_repository, names[i], plan, &np,
                            SERVE_MAX_MODELS - 1, err);
        if (rc < 0)
            goto out;
    }
    /* Every version gets an equal share of the CPUs, so instances x engine
     * threads summed over all of them stays within the budget — unless
     * there are more versions than CPUs (then one thread each). */
    int total = np + (o->model_path ? 1 : 0);
    int share = OSP_MAX(1, s->cpus / total);
    if (total > s->cpus)
        osp__serve_log(s, "warn", "more model versions than CPUs: one engine "
                                 "thread each, the CPUs are oversubscribed",
                      json_pack("{s:i,s:i}", "versions", total, "cpus",
                                s->cpus));
    if (o->model_path) {
        rc = load_one(s, o->model_path, o->labels_path, o->model_config, NULL,
                      1, share, false, err);
        if (rc < 0)
            goto out;
        pthread_mutex_lock(&s->models_mu);
        s->default_name = strdup(s->models[0]->name);
        pthread_mutex_unlock(&s->models_mu);
    } else {
        s->default_name = strdup(names[0]);
    }
    if (!s->default_name) {
        rc = osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
        goto out;
    }
    for (int i = 0; i < np && rc == 0; i++) {
        rc = load_one(s, plan[i].path, NULL, plan[i].cfg[0] ? plan[i].cfg : NULL,
                      plan[i].name, plan[i].v, share, true, err);
        if (rc < 0)
            osp_err_prefix(err, "%s version %lld: ", plan[i].name, plan[i].v);
    }
out:
    pthread_mutex_unlock(&s->repo_mu);
    free_names(names, nn);
    free(plan);
    if (rc == 0)
        atomic_store(&s->ready, 1);
    atomic_store(&s->loaded, 1);
    return rc;
}

int osp__serve_load_named(osp_serve_t *s, const char *name, osp_err_t *err) {
    if (!s->o.model_repository)
        return osp_err_set(err, OSP_EINVAL,
                           "no --model-repository to load '%s' from", name);
    if (!good_name(name))
        return osp_err_set(err, OSP_EINVAL, "bad model name '%s'", name);
    plan_t *plan = calloc(SERVE_MAX_MODELS, sizeof *plan);
    if (!plan)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    pthread_mutex_lock(&s->repo_mu);
    int np = 0, rc = 0, n_load = 0, n_retire = 0;
    osp__serve_model_t *retiring[SERVE_MAX_MODELS];
    if (atomic_load(&s->draining)) {
        rc = osp_err_set(err, OSP_EBUSY, "shutting down");
        goto out;
    }
    rc = plan_model(s->o.model_repository, name, plan, &np, SERVE_MAX_MODELS,
                    err);
    if (rc < 0)
        goto out;
    /* What changes: versions selected but not served are loaded; served
     * versions no longer selected are retired once the new ones are READY.
     * Repository operations are serialised (repo_mu), so the table holds no
     * LOADING or UNLOADING entry of ours here. */
    bool load[SERVE_MAX_MODELS];
    int used = 0;
    pthread_mutex_lock(&s->models_mu);
    for (int i = 0; i < np; i++) {
        load[i] = true;
        for (int k = 0; k < s->n_models; k++)
            if (!strcmp(s->models[k]->name, name) &&
                s->models[k]->vnum == plan[i].v)
                load[i] = false;
        n_load += load[i];
    }
    for (int k = 0; k < s->n_models; k++) {
        osp__serve_model_t *m = s->models[k];
        bool keep = strcmp(m->name, name) != 0;
        for (int i = 0; i < np && !keep; i++)
            keep = m->vnum == plan[i].v;
        if (keep)
            used += m->threads;
        else
            retiring[n_retire++] = m;
    }
    int after = s->n_models - n_retire + n_load;
    pthread_mutex_unlock(&s->models_mu);
    /* A new version gets an equal share of the CPUs (as at start), bounded
     * by what the versions that stay leave free. */
    int share = OSP_MAX(1, s->cpus / OSP_MAX(after, 1));
    if (n_load > 0 && (s->cpus - used) / n_load < share)
        share = OSP_MAX(1, (s->cpus - used) / n_load);
    for (int i = 0; i < np && rc == 0; i++) {
        if (!load[i])
            continue;
        rc = load_one(s, plan[i].path, NULL, plan[i].cfg[0] ? plan[i].cfg : NULL,
                      name, plan[i].v, share, true, err);
        if (rc < 0)
            osp_err_prefix(err, "%s version %lld: ", name, plan[i].v);
        else
            osp__serve_log(s, "info", "model loaded",
                          json_pack("{s:s,s:I}", "model", name, "version",
                                    (json_int_t)plan[i].v));
    }
    /* Only once every new version serves do the old ones stop: a request
     * always finds a READY version, and the ones holding an old version
     * finish on it. On a failed load the old versions stay. */
    for (int i = 0; i < n_retire && rc == 0; i++)
        retire(s, retiring[i]);
out:
    pthread_mutex_unlock(&s->repo_mu);
    free(plan);
    return rc;
}

int osp__serve_unload(osp_serve_t *s, const char *name, osp_err_t *err) {
    pthread_mutex_lock(&s->repo_mu);
    osp__serve_model_t *victims[SERVE_MAX_MODELS];
    int n = 0;
    pthread_mutex_lock(&s->models_mu);
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i]->name, name))
            victims[n++] = s->models[i];
    /* No new request may pick any of them while the first drains. */
    for (int i = 0; i < n; i++)
        atomic_store(&victims[i]->state, SERVE_UNLOADING);
    pthread_mutex_unlock(&s->models_mu);
    for (int i = 0; i < n; i++)
        retire(s, victims[i]);
    pthread_mutex_unlock(&s->repo_mu);
    if (n == 0)
        return osp_err_set(err, OSP_ENOENT, "model '%s' is not loaded", name);
    return 0;
}

/* Index entries, sorted by name then numeric version. */
static int cmp_entry(const void *a, const void *b) {
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(json_string_value(json_object_get(x, "name")),
                   json_string_value(json_object_get(y, "name")));
    if (c)
        return c;
    long long vx = strtoll(json_string_value(json_object_get(x, "version")),
                           NULL, 10),
              vy = strtoll(json_string_value(json_object_get(y, "version")),
                           NULL, 10);
    return (vx > vy) - (vx < vy);
}

static bool index_has(json_t **e, int n, const char *name,
                      const char *version) {
    for (int i = 0; i < n; i++)
        if (!strcmp(json_string_value(json_object_get(e[i], "name")), name) &&
            !strcmp(json_string_value(json_object_get(e[i], "version")),
                    version))
            return true;
    return false;
}

json_t *osp__serve_index(osp_serve_t *s, bool ready_only) {
    enum { CAP = SERVE_MAX_MODELS * 2 + SERVE_MAX_FAILED };
    json_t **e = calloc(CAP, sizeof *e);
    json_t *a = json_array();
    if (!e || !a) {
        free(e);
        json_decref(a);
        return NULL;
    }
    int n = 0;
    pthread_mutex_lock(&s->models_mu);
    for (int i = 0; i < s->n_models && n < CAP; i++)
        e[n++] = json_pack("{s:s,s:s,s:s}", "name", s->models[i]->name,
                           "version", s->models[i]->version, "state",
                           osp__serve_state_name(
                               atomic_load(&s->models[i]->state)));
    for (int i = 0; i < s->n_failed && n < CAP; i++)
        if (!index_has(e, n, s->failed[i].name, s->failed[i].version))
            e[n++] = json_pack("{s:s,s:s,s:s,s:s}", "name", s->failed[i].name,
                               "version", s->failed[i].version, "state",
                               "UNAVAILABLE", "reason", s->failed[i].reason);
    pthread_mutex_unlock(&s->models_mu);
    /* Versions on disk that are not served: unloaded, or left out by the
     * version policy. Best effort: an unreadable directory is skipped. */
    char **names = NULL;
    int nn = 0;
    if (s->o.model_repository &&
        repo_names(s->o.model_repository, &names, &nn, false, NULL) == 0) {
        for (int i = 0; i < nn; i++) {
            long long vs[SERVE_MAX_MODELS];
            int nv = 0;
            if (list_versions(s->o.model_repository, names[i], vs, &nv,
                              NULL) < 0)
                continue;
            for (int k = 0; k < nv && n < CAP; k++) {
                char v[24];
                snprintf(v, sizeof v, "%lld", vs[k]);
                if (!index_has(e, n, names[i], v))
                    e[n++] = json_pack("{s:s,s:s,s:s,s:s}", "name", names[i],
                                       "version", v, "state", "UNAVAILABLE",
                                       "reason", "not loaded (unloaded, or "
                                       "not selected by the version "
                                       "policy)");
            }
        }
        free_names(names, nn);
    }
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (e[i])
            e[kept++] = e[i];
    qsort(e, (size_t)kept, sizeof *e, cmp_entry);
    for (int i = 0; i < kept; i++) {
        if (!ready_only || !strcmp(json_string_value(json_object_get(
                                       e[i], "state")), "READY"))
            json_array_append(a, e[i]);
        json_decref(e[i]);
    }
    free(e);
    return a;
}


int osp_serve_port(const osp_serve_t *s) {
    return osp_http_server_port(s->http);
}

int osp_serve_drain(osp_serve_t *s, double timeout_s) {
    atomic_store(&s->draining, 1);
    atomic_store(&s->ready, 0);
    osp_http_server_quiesce(s->http);
    uint64_t until = osp_now_ns() + (uint64_t)(timeout_s * 1e9);
    osp__serve_log(s, "info", "draining",
                  json_pack("{s:i,s:f}", "inflight",
                            osp_http_server_inflight(s->http), "timeout_s",
                            timeout_s));
    while (osp_http_server_inflight(s->http) > 0) {
        if (osp_now_ns() >= until) {
            osp__serve_log(s, "error", "drain timed out",
                          json_pack("{s:i}", "inflight",
                                    osp_http_server_inflight(s->http)));
            return OSP_ETIMEDOUT;
        }
        usleep(5000);
    }
    osp__serve_log(s, "info", "drained", NULL);
    return 0;
}

void osp_serve_destroy(osp_serve_t *s) {
    if (!s)
        return;
    /* HTTP first: its handlers may be waiting on the scheduler, which keeps
     * running until they are answered. */
    osp_http_server_destroy(s->http);
    /* After HTTP: its destroy waits for requests the decode threads and
     * the timer resume. */
    osp__serve_pool_destroy(s->pool);
    osp__serve_timer_destroy(s->timer);
    osp_http_budget_destroy(s->budget); /* after its server */
    for (int i = 0; i < s->n_models; i++)
        model_free(s->models[i]);
    osp_metrics_destroy(s->metrics);
    free(s->openapi);
    free(s->default_name);
    pthread_cond_destroy(&s->models_cv);
    pthread_mutex_destroy(&s->repo_mu);
    pthread_mutex_destroy(&s->models_mu);
    pthread_mutex_destroy(&s->log_mu);
    pthread_mutex_destroy(&s->scrape_mu);
    free(s);
}
