/* openapi.c — the dispatcher's OpenAPI 3 document (GET /openapi.json, what
 * its /docs page renders): the worker's document (osp_serve_openapi_json,
 * itself generated from the worker's route table) cut down to the
 * operations the dispatcher proxies or answers the same way, each proxied
 * answer gaining the X-Osprey-Backend header, plus the dispatcher's own
 * pages and /ui/status.json. One source for both documents, so they cannot
 * disagree about the proxied API. */
#include <stdlib.h>
#include <string.h>

#include "dispatch/dispatch_int.h"
#include "osprey/serve.h"

/* Worker paths the dispatcher does not serve (repository control is per
 * worker: the dispatcher's index is the union of theirs). */
static const char *const dropped[] = {
    "/v2/repository/models/{model}/load",
    "/v2/repository/models/{model}/unload",
};

/* Paths the dispatcher answers itself (everything else left is proxied). */
static const char *const own[] = {
    "/v2/health/live", "/v2/health/ready", "/ready", "/v2",
    "/v2/repository/index", "/metrics", "/openapi.json", "/docs",
    "/ui/{asset}",
};

static bool is_own(const char *path) {
    for (size_t i = 0; i < OSP_ARRAY_LEN(own); i++)
        if (!strcmp(own[i], path))
            return true;
    return false;
}

static json_t *page(const char *summary, const char *ctype) {
    return json_pack("{s:{s:s,s:[],s:{s:{s:s,s:{s:{s:{s:s}}}}}}}", "get",
                     "summary", summary, "parameters", "responses", "200",
                     "description", "OK", "content", ctype, "schema", "type",
                     "string");
}

char *osp__dsp_openapi(size_t *len) {
    size_t wlen;
    char *wtext = osp_serve_openapi_json(&wlen);
    if (!wtext)
        return NULL;
    json_error_t je;
    json_t *doc = json_loadb(wtext, wlen, 0, &je);
    free(wtext);
    if (!doc)
        return NULL;
    json_t *info = json_object_get(doc, "info");
    json_object_set_new(info, "title", json_string("osprey dispatcher"));
    json_object_set_new(
        info, "description",
        json_string("The front of an osprey system: proxies the worker API "
                    "(REST /classify and the KServe V2 inference protocol) "
                    "to its backends, balancing and retrying, and serves "
                    "the web UI. Proxied answers name the worker in "
                    "X-Osprey-Backend. Errors are {\"error\": \"...\"}."));
    json_t *paths = json_object_get(doc, "paths");
    for (size_t i = 0; i < OSP_ARRAY_LEN(dropped); i++)
        json_object_del(paths, dropped[i]);
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item) {
        if (is_own(path))
            continue;
        const char *method;
        json_t *op;
        json_object_foreach(item, method, op) {
            json_t *ok = json_object_get(json_object_get(op, "responses"),
                                         "200");
            if (!ok)
                continue;
            json_t *hs = json_object_get(ok, "headers");
            if (!hs) {
                hs = json_object();
                json_object_set_new(ok, "headers", hs);
            }
            json_object_set_new(
                hs, "X-Osprey-Backend",
                json_pack("{s:s,s:{s:s}}", "description",
                          "the worker that answered (host:port)", "schema",
                          "type", "string"));
            char summary[512];
            snprintf(summary, sizeof summary, "%s (proxied to a worker)",
                     json_string_value(json_object_get(op, "summary")));
            json_object_set_new(op, "summary", json_string(summary));
        }
    }
    json_object_set_new(paths, "/", page("Try-it page: classify an image",
                                         "text/html"));
    json_object_set_new(paths, "/ui/status",
                        page("Live status page (backends, latency, "
                             "autoscaler)", "text/html"));
    json_t *st = page("The status page's data: totals and per-second series "
                      "over the last minute, backends, autoscaler",
                      "application/json");
    json_object_set_new(
        json_object_get(json_object_get(paths, "/v2/repository/index"),
                        "get"),
        "description",
        json_string("The union of the ready backends' models, each with the "
                    "number of ready backends serving it."));
    json_object_set_new(paths, "/ui/status.json", st);
    char *s = json_dumps(doc, JSON_INDENT(1));
    json_decref(doc);
    if (s && len)
        *len = strlen(s);
    return s;
}
