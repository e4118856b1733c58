/* serve.c — the worker's lifecycle: HTTP server and metrics registry at
 * create, model + engine instances + scheduler + warm-up at load, drain and
 * destroy; plus the JSON log and the per-request metrics hook.
 *
 * CPU budget: `threads` CPUs (default: what the cgroup/affinity allows) are
 * split between `instances` engines, each with threads / instances oneDNN
 * threads (at least 1), so instances × engine threads never exceeds the
 * budget. HTTP connection threads decode and preprocess; they mostly wait on
 * the network and the queue. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "serve/serve_int.h"

void osp_serve_opts_init(osp_serve_opts_t *o) {
    memset(o, 0, sizeof *o);
    o->port = OSP_SERVE_DEFAULT_PORT;
    o->max_body_bytes = OSP_HTTP_DEFAULT_MAX_BODY_BYTES;
    o->max_pixels = OSP_IMAGE_DEFAULT_MAX_PIXELS;
    o->max_batch = OSP_SCHED_DEFAULT_MAX_BATCH;
    o->max_queue_delay_us = OSP_SCHED_DEFAULT_DELAY_US;
    o->max_queue_size = OSP_SCHED_DEFAULT_QUEUE;
    o->default_timeout_ms = OSP_SERVE_DEFAULT_TIMEOUT_MS;
    o->conn_timeout_s = OSP_HTTP_DEFAULT_CONN_TIMEOUT_S;
    o->max_connections = OSP_HTTP_DEFAULT_MAX_CONNECTIONS;
}

void osp_serve_log(osp_serve_t *s, const char *level, const char *msg,
                   json_t *fields) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    json_t *j = json_pack("{s:s,s:s,s:s}", "ts", when, "level", level, "msg",
                          msg);
    if (j && fields)
        json_object_update(j, fields);
    json_decref(fields);
    char *line = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(j);
    if (!line)
        return;
    FILE *f = s && s->o.log ? s->o.log : stderr;
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the NUL: written with an explicit length */
    if (s)
        pthread_mutex_lock(&s->log_mu);
    fwrite(line, 1, n + 1, f);
    fflush(f);
    if (s)
        pthread_mutex_unlock(&s->log_mu);
    free(line);
}

/* Request metrics and the access log, after every response. */
static void on_done(osp_http_req_t *r, int status, double seconds, void *ud) {
    osp_serve_t *s = ud;
    void *user = osp_http_req_user(r);
    const char *model = NULL;
    serve_model_t *sm = NULL;
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
    osp_serve_log(s, status >= 500 ? "error" : "info", "request", f);
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
            "HTTP requests being handled right now.", 0, NULL, NULL, 0, 0,
            err)) ||
        !(s->m_ready = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_model_ready", "1 when the model version serves requests.",
            2, mv, NULL, 0, 0, err)) ||
        !(s->m_build = osp_metrics_add(r, OSP_METRIC_GAUGE,
            "osprey_build_info", "Build information; the value is always 1.",
            1, ver, NULL, 0, 0, err)))
        return err ? err->code : OSP_EINTERNAL;
    osp_series_set(osp_metric_series(s->m_build, (const char *[]){OSP_VERSION}),
                   1);
    return 0;
}

osp_serve_t *osp_serve_create(const osp_serve_opts_t *o, osp_err_t *err) {
    osp_serve_t *s = calloc(1, sizeof *s);
    if (!s) {
        osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->log_mu, NULL);
    pthread_mutex_init(&s->models_mu, NULL);
    pthread_cond_init(&s->models_cv, NULL);
    s->o = *o;
    if (!(s->metrics = osp_metrics_create(1))) {
        osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
        goto fail;
    }
    if (add_metrics(s, err) < 0)
        goto fail;
    osp_http_opts_t ho;
    osp_http_opts_init(&ho);
    ho.host = o->host;
    ho.port = o->port;
    if (o->max_body_bytes)
        ho.max_body_bytes = o->max_body_bytes;
    if (o->conn_timeout_s > 0)
        ho.conn_timeout_s = o->conn_timeout_s;
    if (o->max_connections > 0)
        ho.max_connections = o->max_connections;
    if (!(s->http = osp_http_server_create(&ho, err)))
        goto fail;
    osp_http_on_done(s->http, on_done, s);
    if (osp__serve_routes(s) < 0) {
        osp_err_set(err, OSP_EINTERNAL, "serve: cannot register routes");
        goto fail;
    }
    if (osp_http_server_start(s->http, err) < 0)
        goto fail;
    osp_serve_log(s, "info", "listening",
                  json_pack("{s:s,s:i}", "host", o->host ? o->host : "0.0.0.0",
                            "port", osp_http_server_port(s->http)));
    if (o->debug_delay_ms > 0)
        osp_serve_log(s, "warn", "debug delay on: every inference request "
                                 "sleeps before answering",
                      json_pack("{s:I}", "debug_delay_ms",
                                (json_int_t)o->debug_delay_ms));
    return s;
fail:
    osp_serve_destroy(s);
    return NULL;
}

static void on_batch(int n, double infer_s, void *ud) {
    serve_model_t *sm = ud;
    osp_series_observe(sm->h_batch, n);
    osp_series_observe(sm->h_infer, infer_s);
}

static void model_free(serve_model_t *sm) {
    if (!sm)
        return;
    osp_sched_destroy(sm->sched);
    for (int i = 0; i < sm->n_engines; i++)
        osp_engine_destroy(sm->engines[i]);
    osp_model_close(sm->m);
    free(sm->name);
    free(sm->version);
    free(sm);
}

/* The served model called name (NULL: the default); caller holds
 * models_mu. */
static serve_model_t *find_locked(osp_serve_t *s, const char *name) {
    if (s->n_models == 0)
        return NULL;
    if (!name)
        return s->models[0];
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(name, s->models[i]->name))
            return s->models[i];
    return NULL;
}

serve_model_t *osp__serve_acquire(osp_serve_t *s, const char *name) {
    pthread_mutex_lock(&s->models_mu);
    serve_model_t *sm = find_locked(s, name);
    if (sm)
        sm->refs++;
    pthread_mutex_unlock(&s->models_mu);
    return sm;
}

void osp__serve_release(osp_serve_t *s, serve_model_t *sm) {
    pthread_mutex_lock(&s->models_mu);
    if (--sm->refs == 0)
        pthread_cond_broadcast(&s->models_cv);
    pthread_mutex_unlock(&s->models_mu);
}

/* Loads one model version and publishes it in s->models. name NULL = the
 * model's own name (config or file name). n_models: how many models share
 * the CPU budget. */
static int load_one(osp_serve_t *s, const char *path, const char *labels,
                    const char *config, const char *name, const char *version,
                    int n_models, osp_err_t *err) {
    const osp_serve_opts_t *o = &s->o;
    serve_model_t *sm = calloc(1, sizeof *sm);
    if (!sm)
        return osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
    int rc = 0;
    uint64_t t0 = osp_now_ns();
    sm->m = osp_model_open(path, labels, config, err);
    if (!sm->m) {
        rc = err ? err->code : OSP_EINVAL;
        goto fail;
    }
    sm->name = strdup(name ? name : osp_model_name(sm->m));
    sm->version = strdup(version);
    if (!sm->name || !sm->version) {
        rc = osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
        goto fail;
    }

    /* The CPU budget is shared by every instance of every model. */
    int cpus = o->threads > 0 ? o->threads : osp_cpus_available();
    int inst = o->instances > 0 ? o->instances : 1;
    if (inst > SERVE_MAX_INSTANCES)
        inst = SERVE_MAX_INSTANCES;
    if (inst * n_models > cpus)
        inst = OSP_MAX(1, cpus / n_models);
    int per = OSP_MAX(1, cpus / (inst * n_models));
    int max_batch = o->max_batch > 0 ? o->max_batch : 1;
    if (osp_model_max_batch(sm->m) > 0 && osp_model_max_batch(sm->m) < max_batch)
        max_batch = osp_model_max_batch(sm->m);
    osp_engine_opts_t eo;
    osp_engine_opts_init(&eo);
    eo.threads = per;
    eo.precision = o->precision;
    eo.max_batch = max_batch;
    for (int i = 0; i < inst; i++) {
        sm->engines[i] = osp_model_load_engine(sm->m, &eo, err);
        if (!sm->engines[i]) {
            rc = err ? err->code : OSP_EINVAL;
            goto fail;
        }
        sm->n_engines = i + 1;
    }
    sm->pp = osp_model_preprocess(sm->m);
    sm->num_classes = osp_model_num_classes(sm->m);
    const char *m1[] = {sm->name};
    sm->h_request = osp_metric_series(s->m_duration, m1);
    sm->h_queue = osp_metric_series(s->m_queue, m1);
    sm->h_infer = osp_metric_series(s->m_infer, m1);
    sm->h_decode = osp_metric_series(s->m_decode, m1);
    sm->h_batch = osp_metric_series(s->m_batch, m1);
    sm->queue_depth = osp_metric_series(s->m_depth, m1);
    sm->model_ready = osp_metric_series(s->m_ready,
                                        (const char *[]){sm->name, sm->version});
    osp_series_set(sm->model_ready, 0);
    osp_sched_opts_t so;
    osp_sched_opts_init(&so);
    so.max_batch = max_batch;
    so.max_queue_delay_us = o->max_queue_delay_us;
    so.max_queue_size = o->max_queue_size > 0 ? o->max_queue_size : 1;
    so.on_batch = on_batch;
    so.on_batch_ud = sm;
    /* Preferred sizes above this model's max batch do not apply to it. */
    for (const char *p = o->preferred_batch_sizes; p && *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || (*end && *end != ',')) {
            rc = osp_err_set(err, OSP_EINVAL,
                             "serve: preferred batch sizes '%s': expected "
                             "positive integers separated by commas",
                             o->preferred_batch_sizes);
            goto fail;
        }
        if (v <= max_batch && so.n_preferred < OSP_SCHED_MAX_PREFERRED)
            so.preferred[so.n_preferred++] = (int)v;
        p = *end ? end + 1 : end;
    }
    sm->sched = osp_sched_create(sm->engines, sm->n_engines, &so, err);
    if (!sm->sched) {
        rc = err ? err->code : OSP_EINVAL;
        goto fail;
    }
    sm->sample_bytes = osp_sched_sample_bytes(sm->sched);
    if (sm->sample_bytes != osp_preprocess_bytes(sm->pp)) {
        rc = osp_err_set(err, OSP_EINVAL,
                         "serve: model input sample is %zu bytes but the "
                         "preprocessing makes %zu", sm->sample_bytes,
                         osp_preprocess_bytes(sm->pp));
        goto fail;
    }
    uint64_t t1 = osp_now_ns();
    rc = osp_sched_warmup(sm->sched, err);
    if (rc < 0)
        goto fail;
    uint64_t t2 = osp_now_ns();
    pthread_mutex_lock(&s->models_mu);
    if (find_locked(s, sm->name) || s->n_models >= SERVE_MAX_MODELS) {
        bool dup = s->n_models < SERVE_MAX_MODELS;
        pthread_mutex_unlock(&s->models_mu);
        rc = dup ? osp_err_set(err, OSP_EBUSY,
                               "serve: a model named '%s' is already served",
                               sm->name)
                 : osp_err_set(err, OSP_ELIMIT, "serve: more than %d models",
                               SERVE_MAX_MODELS);
        goto fail;
    }
    atomic_store(&sm->ready, 1);
    s->models[s->n_models++] = sm;
    pthread_mutex_unlock(&s->models_mu);
    osp_series_set(sm->model_ready, 1);
    osp_serve_log(s, "info", "model ready",
                  json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:s,s:f,s:f}", "model",
                            sm->name, "version", sm->version, "path",
                            osp_model_path(sm->m), "instances", sm->n_engines,
                            "engine_threads", per, "max_batch",
                            osp_sched_max_batch(sm->sched), "precision",
                            osp_precision_name(
                                osp_engine_precision(sm->engines[0])),
                            "load_ms", (double)(t1 - t0) * 1e-6, "warmup_ms",
                            (double)(t2 - t1) * 1e-6));
    return 0;
fail:
    model_free(sm);
    return rc < 0 ? rc : OSP_EINTERNAL;
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

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One repository entry: DIR/<name>/<version>/model.{onnx,tflite}; the
 * highest numeric version with a model file is served. */
typedef struct repo_entry_s {
    char *name;
    char version[24];
    char path[4096];
} repo_entry_t;

/* The highest numeric version of DIR/name that holds model.onnx or
 * model.tflite: its number into version (24 bytes) and the file into path
 * (4096 bytes). */
static int latest_version(const char *dir, const char *name, char *version,
                          char *path, osp_err_t *err) {
    char md[4096];
    int w = snprintf(md, sizeof md, "%s/%s", dir, name);
    if (w < 0 || (size_t)w >= sizeof md)
        return osp_err_set(err, OSP_ELIMIT, "serve: path too long");
    DIR *vd = opendir(md);
    if (!vd)
        return osp_err_set(err, OSP_ENOENT, "serve: no model '%s' in %s",
                           name, dir);
    long best = -1;
    struct dirent *de;
    while ((de = readdir(vd))) {
        char *end;
        errno = 0;
        long v = strtol(de->d_name, &end, 10);
        if (errno || end == de->d_name || *end || v < 0 || v <= best)
            continue;
        static const char *files[] = {"model.onnx", "model.tflite"};
        for (size_t f = 0; f < OSP_ARRAY_LEN(files); f++) {
            char fp[4096];
            struct stat st;
            w = snprintf(fp, sizeof fp, "%s/%s/%s", md, de->d_name, files[f]);
            if (w < 0 || (size_t)w >= sizeof fp)
                continue; /* path too long to be ours */
            if (stat(fp, &st) == 0 && S_ISREG(st.st_mode)) {
                best = v;
                memcpy(path, fp, (size_t)w + 1);
                break;
            }
        }
    }
    closedir(vd);
    if (best < 0)
        return osp_err_set(err, OSP_ENOENT,
                           "serve: %s: no <version>/model.onnx or "
                           "model.tflite", md);
    snprintf(version, 24, "%ld", best);
    return 0;
}

static int scan_repository(const char *dir, repo_entry_t **out, int *n_out,
                           osp_err_t *err) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return osp_err_set(err, OSP_ENOENT, "serve: model repository %s: %s",
                           dir, strerror(errno));
    char *names[SERVE_MAX_MODELS + 1];
    int nn = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) && rc == 0) {
        if (de->d_name[0] == '.')
            continue;
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        if (stat(p, &st) || !S_ISDIR(st.st_mode))
            continue;
        if (!good_name(de->d_name)) {
            rc = osp_err_set(err, OSP_EINVAL,
                             "serve: %s: model directory name '%s' is not "
                             "[A-Za-z0-9._-]", dir, de->d_name);
            break;
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
    repo_entry_t *ents = rc == 0 ? calloc((size_t)nn + 1, sizeof *ents) : NULL;
    if (rc == 0 && !ents)
        rc = osp_err_set(err, OSP_ENOMEM, "serve: out of memory");
    if (rc == 0)
        qsort(names, (size_t)nn, sizeof *names, cmp_str);
    int ne = 0;
    for (int i = 0; i < nn && rc == 0; i++) {
        rc = latest_version(dir, names[i], ents[ne].version, ents[ne].path,
                            err);
        if (rc < 0)
            break;
        ents[ne].name = names[i];
        names[i] = NULL;
        ne++;
    }
    for (int i = 0; i < nn; i++)
        free(names[i]);
    if (rc < 0) {
        for (int i = 0; i < ne; i++)
            free(ents[i].name);
        free(ents);
        return rc;
    }
    if (ne == 0) {
        free(ents);
        return osp_err_set(err, OSP_ENOENT, "serve: %s holds no models", dir);
    }
    *out = ents;
    *n_out = ne;
    return 0;
}

int osp_serve_load(osp_serve_t *s, osp_err_t *err) {
    const osp_serve_opts_t *o = &s->o;
    if (!o->model_path && !o->model_repository)
        return osp_err_set(err, OSP_EINVAL,
                           "serve: no model (give --model PATH or "
                           "--model-repository DIR)");
    repo_entry_t *ents = NULL;
    int ne = 0, rc = 0;
    if (o->model_repository &&
        (rc = scan_repository(o->model_repository, &ents, &ne, err)) < 0)
        return rc;
    int total = ne + (o->model_path ? 1 : 0);
    if (o->model_path)
        rc = load_one(s, o->model_path, o->labels_path, o->model_config, NULL,
                      "1", total, err);
    for (int i = 0; i < ne && rc == 0; i++) {
        rc = load_one(s, ents[i].path, NULL, NULL, ents[i].name,
                      ents[i].version, total, err);
        if (rc < 0)
            osp_err_prefix(err, "%s version %s: ", ents[i].name,
                           ents[i].version);
    }
    for (int i = 0; i < ne; i++)
        free(ents[i].name);
    free(ents);
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
    if (atomic_load(&s->draining))
        return osp_err_set(err, OSP_EBUSY, "shutting down");
    serve_model_t *cur = osp__serve_acquire(s, name);
    if (cur) {
        osp__serve_release(s, cur);
        return 0; /* already served */
    }
    char version[24], path[4096];
    int rc = latest_version(s->o.model_repository, name, version, path, err);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&s->models_mu);
    int n = s->n_models + 1;
    pthread_mutex_unlock(&s->models_mu);
    rc = load_one(s, path, NULL, NULL, name, version, n, err);
    if (rc == OSP_EBUSY && !atomic_load(&s->draining))
        return 0; /* a concurrent load of the same name won */
    if (rc == 0)
        osp_serve_log(s, "info", "model loaded",
                      json_pack("{s:s,s:s}", "model", name, "version",
                                version));
    return rc;
}

int osp__serve_unload(osp_serve_t *s, const char *name, osp_err_t *err) {
    pthread_mutex_lock(&s->models_mu);
    int idx = -1;
    for (int i = 0; i < s->n_models; i++)
        if (!strcmp(s->models[i]->name, name))
            idx = i;
    if (idx < 0) {
        pthread_mutex_unlock(&s->models_mu);
        return osp_err_set(err, OSP_ENOENT, "model '%s' is not loaded", name);
    }
    serve_model_t *sm = s->models[idx];
    memmove(&s->models[idx], &s->models[idx + 1],
            sizeof(s->models[0]) * (size_t)(s->n_models - idx - 1));
    s->n_models--;
    atomic_store(&sm->ready, 0);
    while (sm->refs > 0)
        pthread_cond_wait(&s->models_cv, &s->models_mu);
    pthread_mutex_unlock(&s->models_mu);
    osp_series_set(sm->model_ready, 0);
    osp_series_set(sm->queue_depth, 0);
    osp_serve_log(s, "info", "model unloaded",
                  json_pack("{s:s,s:s}", "model", sm->name, "version",
                            sm->version));
    model_free(sm);
    return 0;
}


int osp_serve_port(const osp_serve_t *s) {
    return osp_http_server_port(s->http);
}

int osp_serve_drain(osp_serve_t *s, double timeout_s) {
    atomic_store(&s->draining, 1);
    atomic_store(&s->ready, 0);
    osp_http_server_quiesce(s->http);
    uint64_t until = osp_now_ns() + (uint64_t)(timeout_s * 1e9);
    osp_serve_log(s, "info", "draining",
                  json_pack("{s:i,s:f}", "inflight",
                            osp_http_server_inflight(s->http), "timeout_s",
                            timeout_s));
    while (osp_http_server_inflight(s->http) > 0) {
        if (osp_now_ns() >= until) {
            osp_serve_log(s, "error", "drain timed out",
                          json_pack("{s:i}", "inflight",
                                    osp_http_server_inflight(s->http)));
            return OSP_ETIMEDOUT;
        }
        usleep(5000);
    }
    osp_serve_log(s, "info", "drained", NULL);
    return 0;
}

void osp_serve_destroy(osp_serve_t *s) {
    if (!s)
        return;
    /* HTTP first: its handlers may be waiting on the scheduler, which keeps
     * running until they are answered. */
    osp_http_server_destroy(s->http);
    for (int i = 0; i < s->n_models; i++)
        model_free(s->models[i]);
    osp_metrics_destroy(s->metrics);
    free(s->openapi);
    pthread_cond_destroy(&s->models_cv);
    pthread_mutex_destroy(&s->models_mu);
    pthread_mutex_destroy(&s->log_mu);
    free(s);
}
