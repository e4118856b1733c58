/* discover_k8s.c — Kubernetes EndpointSlice discovery for `--k8s-service
 * NS/NAME:PORT`: LIST
 *   /apis/discovery.k8s.io/v1/namespaces/NS/endpointslices
 *       ?labelSelector=kubernetes.io/service-name=NAME
 * then WATCH from the list's resourceVersion (resuming from the last seen
 * version when a watch ends), keeping one endpoint set per slice; the
 * backends of this source are the union of the slices' ready endpoints
 * (conditions.ready true or absent, as the API defines). An ERROR event
 * with code 410 (or an HTTP 410) means our version is too old: relist.
 *
 * PORT is the workers' port as the slices list it (the Service's
 * targetPort) or that port's name. The requests go through the project's
 * Kubernetes client (include/osprey/kube.h): the service-account token
 * (re-read when it rotates) and CA, paths overridable for tests and
 * out-of-cluster runs; the API server URL from the options (the CLI fills
 * in the in-cluster one). Everything the API sends is untrusted: sizes are
 * capped (by the client), types checked, bad objects skipped with a log
 * line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dispatch/dispatch_int.h"
#include "osprey/kube.h"

#define K8S_MAX_SLICES 1024
#define K8S_MAX_ADDRS_PER_SLICE 1000     /* the API's own cap */
#define K8S_WATCH_TIMEOUT_S 300          /* server-side watch timeout */
#define K8S_RETRY_MS 1000                /* after a failed LIST/WATCH */

static const char *const ev_names[] = {"ADDED", "MODIFIED", "DELETED",
                                       "BOOKMARK"};

void osp__dsp_k8s_slice_fini(osp__dsp_k8s_slice_t *s) {
    for (int i = 0; i < s->n_addrs; i++)
        free(s->addrs[i]);
    free(s->addrs);
    s->addrs = NULL;
    s->n_addrs = 0;
}

/* The port number of the slice for spec (a number or a port name); 0 when
 * the slice has no such port. */
static long slice_port(json_t *obj, const char *spec) {
    char *end;
    long n = strtol(spec, &end, 10);
    if (end != spec && !*end)
        return n >= 1 && n <= 65535 ? n : 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(obj, "ports"), i, p) {
        const char *name = json_string_value(json_object_get(p, "name"));
        json_t *num = json_object_get(p, "port");
        if (name && !strcmp(name, spec) && json_is_integer(num) &&
            json_integer_value(num) >= 1 && json_integer_value(num) <= 65535)
            return (long)json_integer_value(num);
    }
    return 0;
}

int osp__dsp_k8s_parse_slice(json_t *obj, const char *port,
                             osp__dsp_k8s_slice_t *out, osp_err_t *err) {
    memset(out, 0, sizeof *out);
    const char *name = json_string_value(
        json_object_get(json_object_get(obj, "metadata"), "name"));
    if (!json_is_object(obj) || !name || !*name ||
        strlen(name) >= sizeof out->name)
        return osp_err_set(err, OSP_EFORMAT, "k8s: EndpointSlice without a "
                           "valid metadata.name");
    strcpy(out->name, name);
    json_t *eps = json_object_get(obj, "endpoints");
    if (eps && !json_is_array(eps) && !json_is_null(eps))
        return osp_err_set(err, OSP_EFORMAT, "k8s: slice %s: endpoints is "
                           "not an array", name);
    long p = slice_port(obj, port);
    if (!p || !json_is_array(eps))
        return 0; /* no such port or no endpoints: an empty slice */
    const char *type = json_string_value(json_object_get(obj, "addressType"));
    bool v6 = type && !strcmp(type, "IPv6");
    size_t n_eps = json_array_size(eps);
    size_t cap = n_eps < K8S_MAX_ADDRS_PER_SLICE ? n_eps
                                                 : K8S_MAX_ADDRS_PER_SLICE;
    out->addrs = calloc(cap ? cap : 1, sizeof *out->addrs);
    if (!out->addrs)
        return osp_err_set(err, OSP_ENOMEM, "k8s: out of memory");
    size_t i;
    json_t *ep;
    json_array_foreach(eps, i, ep) {
        json_t *ready = json_object_get(json_object_get(ep, "conditions"),
                                        "ready");
        if (ready && !json_is_null(ready) && !json_is_true(ready))
            continue; /* not ready (absent/null means ready) */
        /* All addresses of one endpoint are the same pod (fungible): the
         * first is enough. */
        const char *a = json_string_value(
            json_array_get(json_object_get(ep, "addresses"), 0));
        if (!a || (size_t)out->n_addrs >= cap)
            continue;
        char buf[DSP_ADDR_MAX], norm[DSP_ADDR_MAX];
        snprintf(buf, sizeof buf, v6 ? "[%s]:%ld" : "%s:%ld", a, p);
        if (osp__dsp_addr_parse(buf, norm, sizeof norm) < 0)
            continue; /* not an address: skip it */
        if (!(out->addrs[out->n_addrs] = strdup(norm))) {
            osp__dsp_k8s_slice_fini(out);
            return osp_err_set(err, OSP_ENOMEM, "k8s: out of memory");
        }
        out->n_addrs++;
    }
    return 0;
}

static void copy_rv(json_t *obj, char *rv, size_t cap) {
    const char *v = json_string_value(
        json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (v && strlen(v) < cap)
        strcpy(rv, v);
}

int osp__dsp_k8s_parse_list(const char *body, size_t len, const char *port,
                            osp__dsp_k8s_slice_t **slices, int *n, char *rv,
                            size_t rv_cap, osp_err_t *err) {
    *slices = NULL;
    *n = 0;
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    json_t *items = j ? json_object_get(j, "items") : NULL;
    if (!j || !json_is_object(j) || (items && !json_is_array(items) &&
                                     !json_is_null(items))) {
        json_decref(j);
        return osp_err_set(err, OSP_EFORMAT, "k8s: list is not an "
                           "EndpointSliceList (%s)", j ? "bad items" : je.text);
    }
    rv[0] = 0;
    copy_rv(j, rv, rv_cap);
    size_t count = json_array_size(items);
    if (count > K8S_MAX_SLICES)
        count = K8S_MAX_SLICES;
    osp__dsp_k8s_slice_t *s = calloc(count ? count : 1, sizeof *s);
    if (!s) {
        json_decref(j);
        return osp_err_set(err, OSP_ENOMEM, "k8s: out of memory");
    }
    int k = 0;
    for (size_t i = 0; i < count; i++) {
        osp_err_t e = {0};
        if (osp__dsp_k8s_parse_slice(json_array_get(items, i), port, &s[k],
                                     &e) == 0)
            k++;
    }
    json_decref(j);
    *slices = s;
    *n = k;
    return 0;
}

int osp__dsp_k8s_parse_event(const char *line, size_t len, const char *port,
                             osp__dsp_k8s_ev_t *kind,
                             osp__dsp_k8s_slice_t *slice, char *rv,
                             size_t rv_cap, osp_err_t *err) {
    memset(slice, 0, sizeof *slice);
    json_error_t je;
    json_t *j = json_loadb(line, len, 0, &je);
    const char *type = j ? json_string_value(json_object_get(j, "type"))
                         : NULL;
    json_t *obj = j ? json_object_get(j, "object") : NULL;
    if (!type || !json_is_object(obj)) {
        json_decref(j);
        return osp_err_set(err, OSP_EFORMAT, "k8s: bad watch event (%s)",
                           j ? "no type or object" : je.text);
    }
    int rc = 0;
    if (!strcmp(type, "ERROR")) {
        json_t *code = json_object_get(obj, "code");
        *kind = json_is_integer(code) && json_integer_value(code) == 410
                    ? DSP_K8S_GONE
                    : DSP_K8S_ERROR;
        goto out;
    }
    int k = -1;
    for (int i = 0; i < (int)OSP_ARRAY_LEN(ev_names); i++)
        if (!strcmp(type, ev_names[i]))
            k = i;
    if (k < 0) {
        rc = osp_err_set(err, OSP_EFORMAT, "k8s: unknown watch event type "
                         "'%.40s'", type);
        goto out;
    }
    *kind = (osp__dsp_k8s_ev_t)k;
    copy_rv(obj, rv, rv_cap);
    if (*kind != DSP_K8S_BOOKMARK)
        rc = osp__dsp_k8s_parse_slice(obj, port, slice, err);
out:
    json_decref(j);
    return rc;
}

/* ---- the discovery thread --------------------------------------------- */

typedef struct k8s_s {
    osp_dispatch_t *d;
    osp_kube_t *kube;
    char api[512]; /* for the log */
    char ns[64], svc[64], port[64];
    osp__dsp_k8s_slice_t slices[K8S_MAX_SLICES];
    int n_slices;
    char rv[128];
    bool relist; /* the watch saw 410 Gone or an ERROR */
} k8s_t;

static void k8s_sync(k8s_t *k) {
    int total = 0;
    for (int i = 0; i < k->n_slices; i++)
        total += k->slices[i].n_addrs;
    char **all = calloc((size_t)(total ? total : 1), sizeof *all);
    if (!all)
        return;
    int n = 0;
    for (int i = 0; i < k->n_slices; i++)
        for (int a = 0; a < k->slices[i].n_addrs; a++)
            all[n++] = k->slices[i].addrs[a];
    osp__dsp_backend_sync(k->d, DSP_SRC_K8S, all, n);
    free(all);
}

static void clear_slices(k8s_t *k) {
    for (int i = 0; i < k->n_slices; i++)
        osp__dsp_k8s_slice_fini(&k->slices[i]);
    k->n_slices = 0;
}

/* Puts (takes over) or deletes a slice by name. */
static void apply(k8s_t *k, osp__dsp_k8s_ev_t kind, osp__dsp_k8s_slice_t *s) {
    int at = -1;
    for (int i = 0; i < k->n_slices; i++)
        if (!strcmp(k->slices[i].name, s->name))
            at = i;
    if (kind == DSP_K8S_DELETED) {
        if (at >= 0) {
            osp__dsp_k8s_slice_fini(&k->slices[at]);
            k->slices[at] = k->slices[--k->n_slices];
        }
        osp__dsp_k8s_slice_fini(s);
        return;
    }
    if (at >= 0) {
        osp__dsp_k8s_slice_fini(&k->slices[at]);
        k->slices[at] = *s;
    } else if (k->n_slices < K8S_MAX_SLICES) {
        k->slices[k->n_slices++] = *s;
    } else {
        osp__dsp_k8s_slice_fini(s);
    }
}

static bool stopping(void *ud) {
    k8s_t *k = ud;
    return atomic_load(&k->d->stop_flag);
}

static void handle_line(k8s_t *k, const char *line, size_t len) {
    if (len == 0)
        return;
    osp__dsp_k8s_ev_t kind;
    osp__dsp_k8s_slice_t s;
    osp_err_t err = {0};
    char rv[128] = "";
    if (osp__dsp_k8s_parse_event(line, len, k->port, &kind, &s, rv,
                                 sizeof rv, &err) < 0) {
        osp__dsp_log(k->d, "warn", "k8s watch event skipped",
                         json_pack("{s:s}", "error", err.msg));
        return;
    }
    if (kind == DSP_K8S_GONE || kind == DSP_K8S_ERROR) {
        osp__dsp_log(k->d, "info", "k8s watch expired; relisting",
                         json_pack("{s:s}", "event",
                                   kind == DSP_K8S_GONE ? "410 Gone"
                                                        : "ERROR"));
        k->relist = true;
        return;
    }
    if (rv[0])
        strcpy(k->rv, rv);
    if (kind == DSP_K8S_BOOKMARK)
        return;
    apply(k, kind, &s);
    k8s_sync(k);
}

/* A watch line; non-zero ends the stream (relist). */
static int on_watch_line(void *ud, const char *line, size_t len) {
    k8s_t *k = ud;
    handle_line(k, line, len);
    return k->relist;
}

static void k8s_path(k8s_t *k, char *path, size_t cap, bool watch) {
    int n = snprintf(path, cap,
                     "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices"
                     "?labelSelector=kubernetes.io%%2Fservice-name%%3D%s",
                     k->ns, k->svc);
    if (watch && n > 0 && (size_t)n < cap)
        snprintf(path + n, cap - (size_t)n,
                 "&watch=1&allowWatchBookmarks=true&timeoutSeconds=%d"
                 "&resourceVersion=%s", K8S_WATCH_TIMEOUT_S, k->rv);
}

/* LIST: replaces the slice table. 0 or a negative code (logged). */
static int k8s_list(k8s_t *k) {
    char path[512], url[1024];
    k8s_path(k, path, sizeof path, false);
    snprintf(url, sizeof url, "%s%s", k->api, path);
    osp_kube_req_t rq = {.path = path, .timeout_ms = 30000,
                         .cancelled = stopping, .ud = k};
    osp_kube_resp_t r;
    osp_err_t err = {0};
    int rc = osp_kube_request(k->kube, &rq, &r, &err);
    if (rc < 0 || r.status != 200) {
        osp__dsp_log(k->d, "warn", "k8s list failed",
                         json_pack("{s:s,s:i,s:s}", "url", url, "status",
                                   (int)r.status, "error",
                                   rc < 0 ? err.msg : "HTTP status"));
        rc = OSP_EIO;
        goto out;
    }
    osp__dsp_k8s_slice_t *s = NULL;
    int n = 0;
    if (osp__dsp_k8s_parse_list(r.body, r.len, k->port, &s, &n, k->rv,
                                sizeof k->rv, &err) < 0) {
        osp__dsp_log(k->d, "warn", "k8s list unreadable",
                         json_pack("{s:s}", "error", err.msg));
        rc = OSP_EFORMAT;
        goto out;
    }
    clear_slices(k);
    for (int i = 0; i < n; i++)
        k->slices[k->n_slices++] = s[i];
    free(s);
    k8s_sync(k);
    osp__dsp_log(k->d, "info", "k8s list",
                     json_pack("{s:i,s:s}", "slices", n, "resource_version",
                               k->rv));
out:
    osp_kube_resp_free(&r);
    return rc;
}

/* WATCH until the stream ends, a 410 or an error. Returns 0 when the watch
 * may resume from k->rv, OSP_ENOENT when a relist is needed, OSP_EIO on
 * transport errors. */
static int k8s_watch(k8s_t *k) {
    char path[700];
    k8s_path(k, path, sizeof path, true);
    k->relist = false;
    osp_kube_req_t rq = {.path = path,
                         .timeout_ms = (K8S_WATCH_TIMEOUT_S + 30) * 1000L,
                         .on_line = on_watch_line, .cancelled = stopping,
                         .ud = k};
    osp_kube_resp_t r;
    osp_err_t err = {0};
    int rc = osp_kube_request(k->kube, &rq, &r, &err);
    osp_kube_resp_free(&r);
    if (k->relist || r.status == 410)
        return OSP_ENOENT;
    if (rc == 0 && r.status == 200)
        return 0; /* the server ended the watch (timeoutSeconds) */
    if (!atomic_load(&k->d->stop_flag))
        osp__dsp_log(k->d, "warn", "k8s watch failed",
                         json_pack("{s:i,s:s}", "status", (int)r.status,
                                   "error", rc < 0 ? err.msg : "HTTP status"));
    return OSP_EIO;
}

static void sleep_ms(osp_dispatch_t *d, int ms) {
    for (int t = 0; t < ms && !atomic_load(&d->stop_flag); t += 50)
        usleep(50000);
}

static void k8s_free(k8s_t *k) {
    clear_slices(k);
    osp_kube_destroy(k->kube);
    free(k);
}

static void *k8s_main(void *arg) {
    k8s_t *k = arg;
    osp_dispatch_t *d = k->d;
    while (!atomic_load(&d->stop_flag)) {
        if (k8s_list(k) < 0) {
            sleep_ms(d, K8S_RETRY_MS);
            continue;
        }
        int failures = 0;
        while (!atomic_load(&d->stop_flag)) {
            int rc = k8s_watch(k);
            if (rc == OSP_ENOENT)
                break; /* relist */
            if (rc < 0) {
                if (++failures >= 3)
                    break; /* the API may have lost our version: relist */
                sleep_ms(d, K8S_RETRY_MS);
            } else {
                failures = 0;
            }
        }
    }
    k8s_free(k);
    return NULL;
}

/* The client for the options' API server and credentials. */
static int k8s_client(k8s_t *k, const osp_dispatch_opts_t *o, osp_err_t *err) {
    if (!o->k8s_api)
        return osp_err_set(err, OSP_EINVAL, "dispatch: --k8s-service "
                           "needs --k8s-api outside a cluster "
                           "(KUBERNETES_SERVICE_HOST is not set)");
    osp_kube_config_t c;
    int rc = osp_kube_config_in_cluster(&c, o->k8s_api, o->k8s_token_path,
                                        o->k8s_ca_path, err);
    if (rc < 0)
        return osp_err_prefix(err, "dispatch");
    k->kube = osp_kube_create(&c, err);
    osp_kube_config_fini(&c);
    return k->kube ? 0 : osp_err_prefix(err, "dispatch");
}

int osp__dsp_discover_k8s_start(osp_dispatch_t *d, osp_err_t *err) {
    const char *spec = d->o.k8s_service;
    const char *slash = strchr(spec, '/');
    const char *colon = strrchr(spec, ':');
    if (!slash || !colon || colon < slash || slash == spec ||
        colon == slash + 1 || !colon[1] || (size_t)(slash - spec) >= 64 ||
        (size_t)(colon - slash - 1) >= 64 || strlen(colon + 1) >= 64)
        return osp_err_set(err, OSP_EINVAL, "dispatch: --k8s-service '%s': "
                           "want NAMESPACE/SERVICE:PORT", spec);
    for (const char *p = spec; p < colon; p++)
        if (!(*p == '/' || *p == '-' || *p == '.' ||
              (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return osp_err_set(err, OSP_EINVAL, "dispatch: --k8s-service "
                               "'%s': names must be DNS labels", spec);
    k8s_t *k = calloc(1, sizeof *k);
    if (!k)
        return osp_err_set(err, OSP_ENOMEM, "dispatch: out of memory");
    k->d = d;
    memcpy(k->ns, spec, (size_t)(slash - spec));
    memcpy(k->svc, slash + 1, (size_t)(colon - slash - 1));
    strcpy(k->port, colon + 1);
    int rc = k8s_client(k, &d->o, err);
    if (rc < 0) {
        free(k);
        return rc;
    }
    snprintf(k->api, sizeof k->api, "%s", d->o.k8s_api);
    size_t al = strlen(k->api);
    while (al && k->api[al - 1] == '/')
        k->api[--al] = 0;
    if (pthread_create(&d->k8s_th, NULL, k8s_main, k)) {
        k8s_free(k);
        return osp_err_set(err, OSP_EIO, "dispatch: cannot start k8s thread");
    }
    d->k8s_started = true;
    return 0;
}
