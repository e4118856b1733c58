/* backend.c — the backend set: addresses from every discovery source,
 * reference-counted backend objects, their states (ready / not ready /
 * ejected), consecutive-failure accounting for passive ejection, the model
 * table (one admission queue per routed model) and the backend gauges.
 *
 * A backend leaves the set when its last source drops it; requests already
 * holding it finish normally (they hold a reference), which is how a backend
 * removed by the admin API or a scale-down drains. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch_int.h"

static const char *const state_names[DSP_STATE_COUNT] = {"ready", "not_ready",
                                                         "ejected"};

const char *osp__dsp_state_name(osp__dsp_state_t s) {
    return (unsigned)s < DSP_STATE_COUNT ? state_names[s] : "unknown";
}

int osp__dsp_addr_parse(const char *in, char *out, size_t cap) {
    if (!in || !*in)
        return OSP_EINVAL;
    const char *colon = strrchr(in, ':');
    if (!colon || colon == in)
        return OSP_EINVAL;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || port < 1 || port > 65535)
        return OSP_EINVAL;
    size_t hl = (size_t)(colon - in);
    char host[256];
    if (hl >= sizeof host)
        return OSP_EINVAL;
    memcpy(host, in, hl);
    host[hl] = 0;
    bool bracketed = host[0] == '[';
    if (bracketed) {
        if (hl < 3 || host[hl - 1] != ']')
            return OSP_EINVAL;
        host[hl - 1] = 0;
        memmove(host, host + 1, hl - 1);
    }
    struct in6_addr a6;
    bool v6 = inet_pton(AF_INET6, host, &a6) == 1;
    if (bracketed && !v6)
        return OSP_EINVAL;
    if (!v6)
        for (const char *p = host; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' &&
                *p != '_')
                return OSP_EINVAL;
    int n = v6 ? snprintf(out, cap, "[%s]:%ld", host, port)
               : snprintf(out, cap, "%s:%ld", host, port);
    return n > 0 && (size_t)n < cap ? 0 : OSP_EINVAL;
}

void osp__dsp_backend_ref(osp__dsp_backend_t *b) {
    atomic_fetch_add(&b->refs, 1);
}

void osp__dsp_backend_unref(osp__dsp_backend_t *b) {
    if (!b || atomic_fetch_sub(&b->refs, 1) != 1)
        return;
    for (int i = 0; i < b->n_idle; i++)
        curl_easy_cleanup(b->idle[i]);
    for (int i = 0; i < b->n_models; i++)
        free(b->models[i]);
    pthread_mutex_destroy(&b->pool_mu);
    free(b);
}

bool osp__dsp_backend_serves(const osp__dsp_backend_t *b, const char *model) {
    if (!model)
        return true; /* the worker's default model */
    for (int i = 0; i < b->n_models; i++)
        if (!strcmp(b->models[i], model))
            return true;
    return false;
}

static int find_locked(osp_dispatch_t *d, const char *addr) {
    for (int i = 0; i < d->n_b; i++)
        if (!strcmp(d->b[i]->addr, addr))
            return i;
    return -1;
}

void osp__dsp_addr_resolve(const char *addr, struct sockaddr_storage *sa,
                           socklen_t *len) {
    *len = 0;
    const char *colon = strrchr(addr, ':');
    if (!colon)
        return;
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return;
    memcpy(host, addr, hl);
    host[hl] = 0;
    if (host[0] == '[' && hl >= 2) { /* "[v6]" */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = 0;
    }
    /* A name's IPv4 address first: workers listen on IPv4 unless given an
     * IPv6 literal (which resolves to itself), and "localhost" may list
     * ::1 first where nothing listens. IPv6 when there is no IPv4. */
    struct addrinfo hints = {.ai_family = AF_INET,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res) {
        hints.ai_family = AF_UNSPEC;
        res = NULL;
        if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
            return;
    }
    if (res->ai_addrlen <= sizeof *sa) {
        memcpy(sa, res->ai_addr, res->ai_addrlen);
        *len = res->ai_addrlen;
    }
    freeaddrinfo(res);
}

/* Adds under d->mu; *added tells whether a new backend was created (with
 * the resolved address sa/sa_len). */
static int add_locked(osp_dispatch_t *d, const char *norm, unsigned source,
                      const struct sockaddr_storage *sa, socklen_t sa_len,
                      bool *added) {
    *added = false;
    int i = find_locked(d, norm);
    if (i >= 0) {
        d->b[i]->sources |= source;
        return 0;
    }
    if (d->n_b >= OSP_DISPATCH_MAX_BACKENDS)
        return OSP_ELIMIT;
    osp__dsp_backend_t **nb = osp_grow(d->b, &d->cap_b, d->n_b, sizeof *nb, 16);
    if (!nb)
        return OSP_ENOMEM;
    d->b = nb;
    osp__dsp_backend_t *b = calloc(1, sizeof *b);
    if (!b)
        return OSP_ENOMEM;
    strcpy(b->addr, norm);
    snprintf(b->url, sizeof b->url, "http://%s", norm);
    atomic_init(&b->refs, 1);
    pthread_mutex_init(&b->pool_mu, NULL);
    b->sources = source;
    b->state = DSP_NOT_READY;
    b->sa = *sa;
    b->sa_len = sa_len;
    b->s_inflight = osp_metric_series(d->m_inflight, (const char *[]){norm});
    osp_series_set(b->s_inflight, 0);
    d->b[d->n_b++] = b;
    *added = true;
    return 0;
}

int osp__dsp_backend_add(osp_dispatch_t *d, const char *addr,
                         unsigned source) {
    char norm[DSP_ADDR_MAX];
    if (osp__dsp_addr_parse(addr, norm, sizeof norm) < 0)
        return OSP_EINVAL;
    bool added;
    /* Resolved before the lock (a name may need a DNS round trip); the
     * event path connects to this address without resolving again. */
    struct sockaddr_storage sa;
    socklen_t sa_len;
    osp__dsp_addr_resolve(norm, &sa, &sa_len);
    pthread_mutex_lock(&d->mu);
    int rc = add_locked(d, norm, source, &sa, sa_len, &added);
    pthread_mutex_unlock(&d->mu);
    if (added) {
        osp__dsp_log(d, "info", "backend added",
                         json_pack("{s:s}", "backend", norm));
        osp__dsp_health_kick(d);
    }
    return rc;
}

/* Drops source from d->b[i]; removes the backend when no source is left.
 * Under d->mu. Returns whether it left the set. */
static bool drop_locked(osp_dispatch_t *d, int i, unsigned source) {
    osp__dsp_backend_t *b = d->b[i];
    b->sources &= ~source;
    if (b->sources)
        return false;
    b->removed = true;
    osp_series_set(b->s_inflight, 0);
    d->b[i] = d->b[--d->n_b];
    osp__dsp_backend_unref(b); /* the set's reference */
    osp__dsp_wake_locked(d);
    return true;
}

int osp__dsp_backend_remove(osp_dispatch_t *d, const char *addr,
                            unsigned source) {
    char norm[DSP_ADDR_MAX];
    if (osp__dsp_addr_parse(addr, norm, sizeof norm) < 0)
        return OSP_EINVAL;
    pthread_mutex_lock(&d->mu);
    int i = find_locked(d, norm);
    bool had = i >= 0 && (d->b[i]->sources & source);
    bool gone = had && drop_locked(d, i, source);
    int rc = had ? 0 : OSP_ENOENT;
    pthread_mutex_unlock(&d->mu);
    if (gone)
        osp__dsp_log(d, "info", "backend removed",
                         json_pack("{s:s}", "backend", norm));
    return rc;
}

int osp__dsp_backend_sync(osp_dispatch_t *d, unsigned source,
                          char *const *addrs, int n) {
    int rc = 0;
    for (int k = 0; k < n; k++) {
        int r = osp__dsp_backend_add(d, addrs[k], source);
        if (r < 0 && !rc)
            rc = r;
    }
    /* Drop the backends of this source that are no longer listed. */
    for (;;) {
        char gone[DSP_ADDR_MAX] = "";
        pthread_mutex_lock(&d->mu);
        for (int i = 0; i < d->n_b && !gone[0]; i++) {
            if (!(d->b[i]->sources & source))
                continue;
            bool listed = false;
            for (int k = 0; k < n && !listed; k++) {
                char norm[DSP_ADDR_MAX];
                listed = osp__dsp_addr_parse(addrs[k], norm, sizeof norm) ==
                             0 && !strcmp(norm, d->b[i]->addr);
            }
            if (!listed)
                strcpy(gone, d->b[i]->addr);
        }
        pthread_mutex_unlock(&d->mu);
        if (!gone[0])
            break;
        osp__dsp_backend_remove(d, gone, source);
    }
    return rc;
}

int osp__dsp_backend_snapshot(osp_dispatch_t *d, osp__dsp_backend_t ***out,
                              int *n) {
    pthread_mutex_lock(&d->mu);
    osp__dsp_backend_t **a = malloc(sizeof *a * (size_t)(d->n_b ? d->n_b : 1));
    if (!a) {
        pthread_mutex_unlock(&d->mu);
        return OSP_ENOMEM;
    }
    for (int i = 0; i < d->n_b; i++) {
        a[i] = d->b[i];
        osp__dsp_backend_ref(a[i]);
    }
    *n = d->n_b;
    pthread_mutex_unlock(&d->mu);
    *out = a;
    return 0;
}

void osp__dsp_backend_result_locked(osp_dispatch_t *d, osp__dsp_backend_t *b,
                                    bool ok) {
    if (ok) {
        b->failures = 0;
        return;
    }
    b->failures++;
    if (b->state == DSP_EJECTED || b->failures < d->o.eject_after)
        return;
    b->eject_level++;
    int64_t ms = osp__dsp_backoff_ms(d->o.eject_base_ms, d->o.eject_max_ms,
                                     b->eject_level);
    b->state = DSP_EJECTED;
    b->eject_until_ns = osp_now_ns() + (uint64_t)ms * 1000000u;
    osp_series_inc(d->s_ejections);
    /* Logged without the lock held would need a copy; the log mutex is a
     * leaf lock, so logging here is safe. */
    osp__dsp_log(d, "warn", "backend ejected",
                     json_pack("{s:s,s:i,s:I}", "backend", b->addr,
                               "failures", b->failures, "for_ms",
                               (json_int_t)ms));
}

osp__dsp_model_t *osp__dsp_model_locked(osp_dispatch_t *d, const char *name,
                                        bool create) {
    if (!name)
        return &d->default_model;
    for (int i = 0; i < d->n_models; i++)
        if (!strcmp(d->models[i].name, name))
            return &d->models[i];
    if (!create || d->n_models >= DSP_MAX_MODELS ||
        strlen(name) >= DSP_MODEL_NAME_MAX)
        return NULL;
    osp__dsp_model_t *m = &d->models[d->n_models++];
    strcpy(m->name, name);
    m->waiting = 0;
    m->s_depth = osp_metric_series(d->m_depth, (const char *[]){name});
    m->s_ok = osp_metric_series(d->m_requests, (const char *[]){name, "200"});
    osp_series_set(m->s_depth, 0);
    return m;
}

void osp__dsp_backend_gauges(osp_dispatch_t *d) {
    pthread_mutex_lock(&d->mu);
    for (int m = 0; m < d->n_models; m++) {
        int count[DSP_STATE_COUNT] = {0};
        for (int i = 0; i < d->n_b; i++)
            if (osp__dsp_backend_serves(d->b[i], d->models[m].name))
                count[d->b[i]->state]++;
        for (int s = 0; s < DSP_STATE_COUNT; s++)
            osp_series_set(osp_metric_series(d->m_backends,
                               (const char *[]){d->models[m].name,
                                                state_names[s]}),
                           count[s]);
    }
    pthread_mutex_unlock(&d->mu);
}
