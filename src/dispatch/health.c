/* health.c — active health checks and ejection backoff. One thread probes
 * every backend's /v2/health/ready each interval (and at once when a
 * backend is added), and on a ready answer refreshes the backend's model
 * list from /v2/repository/index:
 *   200            → ready (an ejected backend returns only after its
 *                    backoff has passed and this probe succeeded)
 *   other status   → not ready (503 = loading or draining: no new requests,
 *                    in-flight ones finish) — not a failure
 *   no answer      → not ready and one consecutive failure; eject_after
 *                    failures in a row eject it (as passive failures do)
 * Ejection lasts base × 2^(n-1) ms for the n-th ejection in a row, capped;
 * the streak resets once the backend has stayed ready for the cap. */
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch_int.h"

int64_t osp__dsp_backoff_ms(int base_ms, int max_ms, int level) {
    if (level < 1)
        level = 1;
    int64_t ms = base_ms > 0 ? base_ms : 1;
    for (int i = 1; i < level && ms < max_ms; i++)
        ms *= 2;
    return ms < max_ms ? ms : (max_ms > 0 ? max_ms : ms);
}

int osp__dsp_parse_index(const char *body, size_t len, char **names,
                         int max) {
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    if (!j || !json_is_array(j)) {
        json_decref(j);
        return OSP_EFORMAT;
    }
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *state = json_string_value(json_object_get(e, "state"));
        if (!name || !*name || strlen(name) >= DSP_MODEL_NAME_MAX ||
            (state && strcmp(state, "READY")))
            continue;
        bool dup = false;
        for (int k = 0; k < n && !dup; k++)
            dup = !strcmp(names[k], name);
        if (dup || n >= max)
            continue;
        if (!(names[n] = strdup(name)))
            break;
        n++;
    }
    json_decref(j);
    return n;
}

/* Replaces b's model list (names are taken over) and registers the models
 * in the dispatcher's table. Under d->mu. */
static void set_models_locked(osp_dispatch_t *d, osp__dsp_backend_t *b,
                              char **names, int n) {
    for (int i = 0; i < b->n_models; i++)
        free(b->models[i]);
    for (int i = 0; i < n; i++) {
        b->models[i] = names[i];
        osp__dsp_model_locked(d, names[i], true);
    }
    b->n_models = n;
    b->models_known = true;
}

static void probe(osp_dispatch_t *d, osp__dsp_backend_t *b, CURL *h) {
    uint64_t now = osp_now_ns();
    pthread_mutex_lock(&d->mu);
    bool skip = b->removed ||
                (b->state == DSP_EJECTED && now < b->eject_until_ns);
    pthread_mutex_unlock(&d->mu);
    if (skip)
        return;
    char url[DSP_ADDR_MAX + 64];
    snprintf(url, sizeof url, "%s/v2/health/ready", b->url);
    osp__dsp_resp_t r = {.max = 1 << 16};
    CURLcode cc = osp__dsp_upstream_do(h, "GET", url, NULL, NULL, 0,
                                       DSP_PROBE_TIMEOUT_MS,
                                       DSP_CONNECT_TIMEOUT_MS, &r);
    long status = cc == CURLE_OK ? r.status : 0;
    char *names[DSP_MAX_MODELS_PER_BACKEND];
    int n_names = -1;
    if (status == 200) {
        snprintf(url, sizeof url, "%s/v2/repository/index", b->url);
        if (osp__dsp_upstream_do(h, "GET", url, NULL, NULL, 0,
                                 DSP_PROBE_TIMEOUT_MS, DSP_CONNECT_TIMEOUT_MS,
                                 &r) == CURLE_OK && r.status == 200)
            n_names = osp__dsp_parse_index((const char *)r.body, r.len, names,
                                           DSP_MAX_MODELS_PER_BACKEND);
    }
    osp__dsp_resp_free(&r);
    const char *from = NULL, *to = NULL;
    pthread_mutex_lock(&d->mu);
    osp__dsp_state_t old = b->state;
    if (n_names >= 0)
        set_models_locked(d, b, names, n_names);
    if (status == 200 && n_names >= 0) {
        b->failures = 0;
        if (b->state != DSP_READY) {
            b->state = DSP_READY;
            b->ready_since_ns = now;
        } else if (b->eject_level &&
                   now - b->ready_since_ns >
                       (uint64_t)d->o.eject_max_ms * 1000000u) {
            b->eject_level = 0;
        }
    } else if (status) {
        if (b->state == DSP_READY)
            b->state = DSP_NOT_READY;
        else if (b->state == DSP_EJECTED)
            b->state = DSP_NOT_READY; /* answers again, but not ready */
    } else {
        if (b->state == DSP_READY)
            b->state = DSP_NOT_READY;
        if (b->state == DSP_EJECTED) {
            /* Re-probe failed: eject again with a longer backoff. */
            b->state = DSP_NOT_READY;
            b->failures = d->o.eject_after - 1;
        }
        osp__dsp_backend_result_locked(d, b, false);
    }
    if (b->state != old) {
        from = osp__dsp_state_name(old);
        to = osp__dsp_state_name(b->state);
        osp__dsp_wake_locked(d);
    }
    char addr[DSP_ADDR_MAX];
    strcpy(addr, b->addr);
    pthread_mutex_unlock(&d->mu);
    if (from && strcmp(to, "ejected")) /* ejections log themselves */
        osp__dsp_log(d, "info", "backend state",
                         json_pack("{s:s,s:s,s:s,s:i}", "backend", addr,
                                   "from", from, "to", to, "probe_status",
                                   (int)status));
}

static void *health_main(void *arg) {
    osp_dispatch_t *d = arg;
    CURL *h = curl_easy_init();
    if (h)
        osp__dsp_upstream_init(h);
    for (;;) {
        osp__dsp_backend_t **a = NULL;
        int n = 0;
        if (h && osp__dsp_backend_snapshot(d, &a, &n) == 0) {
            for (int i = 0; i < n; i++) {
                if (!atomic_load(&d->stop_flag))
                    probe(d, a[i], h);
                osp__dsp_backend_unref(a[i]);
            }
            free(a);
        }
        osp__dsp_backend_gauges(d);
        pthread_mutex_lock(&d->mu);
        /* The status page's per-backend req/s, sampled here too so that a
         * page opened now shows a rate, not 0 until its second poll. */
        uint64_t now = osp_now_ns();
        for (int i = 0; i < d->n_b; i++)
            osp__dsp_backend_rate(d->b[i], now);
        if (!d->health_kick && !d->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + (int64_t)d->o.health_interval_ms *
                                          1000000;
            ts.tv_sec += (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&d->health_cv, &d->mu, &ts);
        }
        d->health_kick = false;
        bool stop = d->stop;
        pthread_mutex_unlock(&d->mu);
        if (stop)
            break;
    }
    if (h)
        curl_easy_cleanup(h);
    return NULL;
}

void osp__dsp_health_kick(osp_dispatch_t *d) {
    pthread_mutex_lock(&d->mu);
    d->health_kick = true;
    pthread_cond_signal(&d->health_cv);
    pthread_mutex_unlock(&d->mu);
}

int osp__dsp_health_start(osp_dispatch_t *d) {
    if (pthread_create(&d->health_th, NULL, health_main, d))
        return OSP_EIO;
    d->health_started = true;
    return 0;
}
