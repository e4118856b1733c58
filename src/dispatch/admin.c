/* admin.c — the admin API on its own listener (loopback by default, so only
 * local processes such as the local autoscaler can change the set):
 *   GET    /admin/backends            the set with states and loads
 *   POST   /admin/backends            {"address": "host:port"} → added
 *   DELETE /admin/backends            {"address": "host:port"} → removed
 *   DELETE /admin/backends/{address}  same, address in the path
 * A removed backend gets no new requests; requests in flight on it finish.
 * Only what this API added can be removed through it (a static or
 * discovered backend answers 404: its own source owns it).
 *
 * Whoever can add a backend can send user traffic anywhere, so with
 * --admin-token-file every route here needs `Authorization: Bearer
 * <token>` — GET too: the list names every worker, which is a map for an
 * attacker — and gets 401 + WWW-Authenticate otherwise. The listener's
 * /metrics (dispatch.c) stays open: it is the same page the main port
 * serves to anyone, and Prometheus scrapes it there. Without a token the
 * API is open, which dispatch.c allows on a loopback address only. Every
 * change (add, remove) and every refused request is a JSON log line naming
 * the caller: its address and whether it authenticated. */
#include <stdio.h>
#include <string.h>

#include "dispatch/dispatch_int.h"

#define ADMIN_REALM "osprey-admin"

/* Who asked: for the log lines. */
typedef struct caller_s {
    char peer[64];      /* "ip:port" */
    bool authenticated; /* showed the token (false: none is configured) */
} caller_t;

/* The gate in front of every route: true when the request may go on;
 * otherwise it has been answered 401 and logged. */
static bool admit(osp_dispatch_t *d, osp_http_req_t *req, caller_t *c) {
    if (osp_http_req_peer(req, c->peer, sizeof c->peer) < 0)
        snprintf(c->peer, sizeof c->peer, "unknown");
    c->authenticated = false;
    if (!d->admin_token[0])
        return true;
    osp_http_auth_t a = osp_http_req_bearer_check(req, d->admin_token);
    if (a == OSP_HTTP_AUTH_OK)
        return c->authenticated = true;
    osp__dsp_log(d, "warn", "admin refused",
                 json_pack("{s:s,s:s,s:s,s:b,s:s,s:i}", "method",
                           osp_http_req_method(req), "path",
                           osp_http_req_path(req), "peer", c->peer,
                           "authenticated", 0, "credentials",
                           osp_http_auth_name(a), "status", 401));
    osp_http_respond_unauthorized(req, ADMIN_REALM, a);
    return false;
}

/* One line per change asked for, whatever its outcome. */
static void log_change(osp_dispatch_t *d, const caller_t *c,
                       const char *action, const char *addr, int status) {
    osp__dsp_log(d, status / 100 == 2 ? "info" : "warn", "admin change",
                 json_pack("{s:s,s:s,s:i,s:s,s:b}", "action", action,
                           "address", addr, "status", status, "peer",
                           c->peer, "authenticated", c->authenticated));
}

static void h_list(osp_http_req_t *req, void *ud) {
    osp_dispatch_t *d = ud;
    caller_t c;
    if (!admit(d, req, &c))
        return;
    json_t *a = json_array();
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < d->n_b; i++) {
        osp__dsp_backend_t *b = d->b[i];
        json_t *models = json_array();
        for (int k = 0; k < b->n_models; k++)
            json_array_append_new(models, json_string(b->models[k]));
        json_t *src = json_array();
        static const char *const names[] = {"static", "dns", "k8s", "admin"};
        for (int k = 0; k < 4; k++)
            if (b->sources & (1u << k))
                json_array_append_new(src, json_string(names[k]));
        json_array_append_new(
            a, json_pack("{s:s,s:s,s:i,s:I,s:i,s:o,s:o}", "address", b->addr,
                         "state", osp__dsp_state_name(b->state), "inflight",
                         b->inflight, "sent", (json_int_t)b->sent,
                         "failures", b->failures, "models", models,
                         "sources", src));
    }
    pthread_mutex_unlock(&d->mu);
    osp_http_respond_json(req, 200, a);
}

/* The address from the path or the JSON body; NULL after answering 400. */
static const char *address_of(osp_http_req_t *req, json_t **keep) {
    const char *a = osp_http_req_param(req, "address");
    if (a)
        return a;
    osp_err_t err = {0};
    json_t *j = osp_http_req_json(req, &err);
    a = j ? json_string_value(json_object_get(j, "address")) : NULL;
    if (!a) {
        json_decref(j);
        osp_http_respond_error(req, 400, "want {\"address\": \"host:port\"}%s%s",
                               j ? "" : ": ", j ? "" : err.msg);
        return NULL;
    }
    *keep = j;
    return a;
}

static void h_add(osp_http_req_t *req, void *ud) {
    osp_dispatch_t *d = ud;
    caller_t c;
    json_t *j = NULL;
    const char *a = admit(d, req, &c) ? address_of(req, &j) : NULL;
    if (!a)
        return;
    int rc = osp__dsp_backend_add(d, a, DSP_SRC_ADMIN);
    if (rc == OSP_EINVAL)
        osp_http_respond_error(req, 400, "bad address '%s' (want host:port)",
                               a);
    else if (rc < 0)
        osp_http_respond_error(req, 507, "cannot add '%s': %s", a,
                               osp_strerror(rc));
    else
        osp_http_respond_json(req, 200, json_pack("{s:s}", "added", a));
    log_change(d, &c, "add", a, osp_http_req_status(req));
    json_decref(j);
}

static void h_del(osp_http_req_t *req, void *ud) {
    osp_dispatch_t *d = ud;
    caller_t c;
    json_t *j = NULL;
    const char *a = admit(d, req, &c) ? address_of(req, &j) : NULL;
    if (!a)
        return;
    int rc = osp__dsp_backend_remove(d, a, DSP_SRC_ADMIN);
    if (rc == OSP_EINVAL)
        osp_http_respond_error(req, 400, "bad address '%s' (want host:port)",
                               a);
    else if (rc == OSP_ENOENT)
        osp_http_respond_error(req, 404, "no backend '%s' added through the "
                               "admin API", a);
    else
        osp_http_respond_json(req, 200, json_pack("{s:s}", "removed", a));
    log_change(d, &c, "remove", a, osp_http_req_status(req));
    json_decref(j);
}

int osp__dsp_admin_routes(osp_dispatch_t *d, osp_http_server_t *s) {
    if (osp_http_route(s, "GET", "/admin/backends", h_list, d) < 0 ||
        osp_http_route(s, "POST", "/admin/backends", h_add, d) < 0 ||
        osp_http_route(s, "DELETE", "/admin/backends", h_del, d) < 0 ||
        osp_http_route(s, "DELETE", "/admin/backends/{address}", h_del, d) < 0)
        return OSP_EINTERNAL;
    return 0;
}
