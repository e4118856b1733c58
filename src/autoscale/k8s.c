/* k8s.c — the Kubernetes actuator (include/osprey/autoscale.h,
 * osp_autoscale_k8s_create): the control loop's observe and scale as
 * requests on a Deployment's scale subresource, through the project's API
 * client (include/osprey/kube.h), which also re-reads a rotated token.
 *
 * Nothing about the replica count is remembered between ticks: observe
 * reads spec.replicas each time, so a human's `kubectl scale` is what the
 * loop sees next. The one thing kept is the resourceVersion observe read,
 * sent with the PATCH as an optimistic lock, so a change made between the
 * decision and the action is a 409 instead of being overwritten. Every
 * failure's message says what to do: a 403 names the RBAC rule that is
 * missing (docs/autoscale.md, "The Kubernetes actuator"). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/autoscale.h"

#define K8S_TIMEOUT_MS 10000L  /* one request, by default */
#define K8S_NAME_MAX 253       /* a DNS subdomain (Deployment names) */
#define K8S_NS_MAX 63          /* a DNS label (namespaces) */

typedef struct k8s_act_s {
    osp_autoscale_actuator_t base; /* first: the loop holds &base */
    osp_kube_t *kube;
    char server[512];
    char ns[K8S_NS_MAX + 1], name[K8S_NAME_MAX + 1];
    char deploy_path[400], scale_path[512];
    long timeout_ms;
    /* What the last observe read: the PATCH's precondition, and /status. */
    char rv[128];
    int current, ready;
    bool observed;
} k8s_act_t;

/* What each request needs from RBAC, for the 403 message. */
typedef enum { REQ_GET_SCALE, REQ_PATCH_SCALE, REQ_GET_DEPLOY } req_kind_t;
static const struct {
    const char *method, *verb, *resource;
} REQ[] = {
    [REQ_GET_SCALE] = {"GET", "get", "deployments/scale"},
    [REQ_PATCH_SCALE] = {"PATCH", "patch", "deployments/scale"},
    [REQ_GET_DEPLOY] = {"GET", "get", "deployments"},
};

/* The error of an answer that is not 2xx (or of no answer), naming what
 * was asked and what to do. */
static int answer_error(k8s_act_t *a, req_kind_t rk, int rc,
                        const osp_kube_resp_t *r, osp_err_t *err) {
    const char *what = REQ[rk].resource;
    if (rc < 0)
        return osp_err_prefix(err, "kubernetes: %s %s %s/%s at %s",
                              REQ[rk].method, what, a->ns, a->name, a->server);
    char msg[256];
    osp_kube_status_message(r, msg, sizeof msg);
    if (r->status == 403)
        return osp_err_set(err, OSP_EINVAL, "kubernetes: forbidden: %s %s "
                           "%s/%s; the credentials need the RBAC rule "
                           "{apiGroups: [apps], resources: [%s], verbs: [%s], "
                           "resourceNames: [%s]} in namespace %s (the "
                           "autoscaler's Role: get, patch on deployments/scale"
                           " and get on deployments, resourceNames [%s]) (%s)",
                           REQ[rk].method, what, a->ns, a->name, what,
                           REQ[rk].verb, a->name, a->ns, a->name, msg);
    if (r->status == 401)
        return osp_err_set(err, OSP_EINVAL, "kubernetes: unauthorized at %s: "
                           "the token or client certificate was not accepted "
                           "(%s)", a->server, msg);
    if (r->status == 404)
        return osp_err_set(err, OSP_EINVAL, "kubernetes: deployment %s/%s "
                           "not found at %s (%s)", a->ns, a->name, a->server,
                           msg);
    return osp_err_set(err, OSP_EIO, "kubernetes: %s %s %s/%s: HTTP %ld (%s)",
                       REQ[rk].method, what, a->ns, a->name, r->status, msg);
}

/* One request; the answer's JSON (caller decrefs) for 2xx, else NULL with
 * err set. *status gets the HTTP status (0 without an answer). */
static json_t *call(k8s_act_t *a, req_kind_t rk, const char *body,
                    long *status, osp_err_t *err) {
    osp_kube_req_t rq = {
        .method = REQ[rk].method,
        .path = rk == REQ_GET_DEPLOY ? a->deploy_path : a->scale_path,
        .body = body, .body_len = body ? strlen(body) : 0,
        .content_type = "application/merge-patch+json",
        .timeout_ms = a->timeout_ms};
    osp_kube_resp_t r;
    int rc = osp_kube_request(a->kube, &rq, &r, err);
    *status = r.status;
    json_t *j = NULL;
    if (rc == 0 && r.status >= 200 && r.status < 300) {
        json_error_t je;
        j = json_loadb(r.body ? r.body : "", r.len, 0, &je);
        if (!json_is_object(j)) {
            json_decref(j);
            j = NULL;
            osp_err_set(err, OSP_EFORMAT, "kubernetes: %s %s %s/%s: the "
                        "answer is not a JSON object (%s)", REQ[rk].method,
                        REQ[rk].resource, a->ns, a->name, je.text);
        }
    } else {
        answer_error(a, rk, rc, &r, err);
    }
    osp_kube_resp_free(&r);
    return j;
}

/* An integer field two levels down (absent = 0, as the API omits zeros);
 * -1 when it is there but not a non-negative integer. */
static int int_at(json_t *j, const char *outer, const char *inner) {
    json_t *v = json_object_get(json_object_get(j, outer), inner);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > 1000000)
        return -1;
    return (int)json_integer_value(v);
}

/* GET scale: spec.replicas and the resourceVersion into a. */
static int read_scale(k8s_act_t *a, osp_err_t *err) {
    long status;
    json_t *j = call(a, REQ_GET_SCALE, NULL, &status, err);
    if (!j)
        return err ? err->code : OSP_EIO;
    int n = int_at(j, "spec", "replicas");
    const char *rv = json_string_value(
        json_object_get(json_object_get(j, "metadata"), "resourceVersion"));
    int rc = 0;
    if (n < 0 || !rv || strlen(rv) >= sizeof a->rv)
        rc = osp_err_set(err, OSP_EFORMAT, "kubernetes: the scale of %s/%s "
                         "has no valid spec.replicas or resourceVersion",
                         a->ns, a->name);
    else {
        a->current = n;
        strcpy(a->rv, rv);
    }
    json_decref(j);
    return rc;
}

static int k8s_observe(osp_autoscale_actuator_t *base, int *current,
                       int *ready, osp_err_t *err) {
    k8s_act_t *a = (k8s_act_t *)base;
    int rc = read_scale(a, err);
    if (rc < 0)
        return rc;
    long status;
    json_t *d = call(a, REQ_GET_DEPLOY, NULL, &status, err);
    if (!d)
        return err ? err->code : OSP_EIO;
    int r = int_at(d, "status", "readyReplicas");
    json_decref(d);
    if (r < 0)
        return osp_err_set(err, OSP_EFORMAT, "kubernetes: deployment %s/%s: "
                           "status.readyReplicas is not a count", a->ns,
                           a->name);
    a->ready = r;
    a->observed = true;
    *current = a->current;
    *ready = r;
    return 0;
}

/* PATCH spec.replicas = n with a->rv as the precondition. 0, 409 (as a
 * positive return: conflict) or a negative error. */
static int patch_scale(k8s_act_t *a, int n, osp_err_t *err) {
    char body[256];
    snprintf(body, sizeof body,
             "{\"metadata\":{\"resourceVersion\":\"%s\"},"
             "\"spec\":{\"replicas\":%d}}", a->rv, n);
    long status;
    json_t *j = call(a, REQ_PATCH_SCALE, body, &status, err);
    if (j) {
        json_decref(j);
        a->current = n;
        return 0;
    }
    return status == 409 ? 409 : (err ? err->code : OSP_EIO);
}

static int k8s_scale(osp_autoscale_actuator_t *base, int n, osp_err_t *err) {
    k8s_act_t *a = (k8s_act_t *)base;
    if (n < 0)
        return osp_err_set(err, OSP_EINVAL, "kubernetes: %d replicas", n);
    int rc = a->observed ? 0 : read_scale(a, err);
    if (rc < 0)
        return rc;
    int seen = a->current;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = patch_scale(a, n, err);
        if (rc != 409)
            return rc;
        /* Conflict: the Deployment changed since we read it. */
        if ((rc = read_scale(a, err)) < 0)
            return rc;
        if (a->current != seen)
            return osp_err_set(err, OSP_EBUSY, "kubernetes: %s/%s was scaled "
                               "to %d by someone else meanwhile; not "
                               "overriding it (deciding again from %d)",
                               a->ns, a->name, a->current, a->current);
    }
    return osp_err_set(err, OSP_EBUSY, "kubernetes: %s/%s: conflict twice "
                       "(the Deployment keeps changing); next tick",
                       a->ns, a->name);
}

static char *k8s_status_json(osp_autoscale_actuator_t *base) {
    k8s_act_t *a = (k8s_act_t *)base;
    json_t *j = json_pack("{s:s,s:s++,s:s}", "kind", "kubernetes",
                          "deployment", a->ns, "/", a->name,
                          "api_server", a->server);
    if (j && a->observed) {
        json_object_set_new(j, "spec_replicas", json_integer(a->current));
        json_object_set_new(j, "ready_replicas", json_integer(a->ready));
    }
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

static void k8s_destroy(osp_autoscale_actuator_t *base) {
    k8s_act_t *a = (k8s_act_t *)base;
    if (!a)
        return;
    osp_kube_destroy(a->kube);
    free(a);
}

/* NAMESPACE/NAME, each a DNS name (lowercase letters, digits, '-', and '.'
 * in the name), into a. */
static int parse_target(k8s_act_t *a, const char *spec, osp_err_t *err) {
    const char *slash = spec ? strchr(spec, '/') : NULL;
    size_t nl = slash ? (size_t)(slash - spec) : 0;
    bool ok = slash && nl && nl <= K8S_NS_MAX && slash[1] &&
              strlen(slash + 1) <= K8S_NAME_MAX && !strchr(slash + 1, '/');
    for (const char *p = spec; ok && *p; p++)
        ok = *p == '/' || *p == '-' || (*p == '.' && p > slash) ||
             (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
    if (!ok)
        return osp_err_set(err, OSP_EINVAL, "--k8s-deployment '%s': want "
                           "NAMESPACE/NAME (lowercase DNS names)",
                           spec ? spec : "");
    memcpy(a->ns, spec, nl);
    strcpy(a->name, slash + 1);
    snprintf(a->deploy_path, sizeof a->deploy_path,
             "/apis/apps/v1/namespaces/%s/deployments/%s", a->ns, a->name);
    snprintf(a->scale_path, sizeof a->scale_path, "%s/scale", a->deploy_path);
    return 0;
}

osp_autoscale_actuator_t *
osp_autoscale_k8s_create(const osp_autoscale_k8s_opts_t *o, osp_err_t *err) {
    k8s_act_t *a = calloc(1, sizeof *a);
    if (!a) {
        osp_err_set(err, OSP_ENOMEM, "out of memory");
        return NULL;
    }
    a->base = (osp_autoscale_actuator_t){
        .name = "kubernetes", .observe = k8s_observe, .scale = k8s_scale,
        .status_json = k8s_status_json, .destroy = k8s_destroy};
    a->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : K8S_TIMEOUT_MS;
    if (parse_target(a, o->deployment, err) < 0 || !o->kube ||
        !(a->kube = osp_kube_create(o->kube, err))) {
        if (!o->kube && a->name[0])
            osp_err_set(err, OSP_EINVAL, "kubernetes: no API server config");
        free(a);
        return NULL;
    }
    snprintf(a->server, sizeof a->server, "%s", o->kube->server);
    return &a->base;
}
