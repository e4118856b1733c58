/* openapi.c — the worker's OpenAPI 3 document (GET /openapi.json), built from
 * the same route table that registers the handlers (endpoints.c), so every
 * route is in the spec by construction. The /docs page that renders it is
 * the shared one of src/ui (include/osprey/ui.h). */
#include <stdlib.h>
#include <string.h>

#include "serve/serve_int.h"

static json_t *ref(const char *name) {
    char buf[128];
    snprintf(buf, sizeof buf, "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", buf);
}

/* Examples the reference page shows (an answer of the quantized
 * MobileNetV2 for a cat photo). */
static json_t *example_classify(void) {
    return json_pack(
        "{s:s,s:s,s:[{s:[{s:i,s:s,s:f},{s:i,s:s,s:f}]}],s:{s:f,s:f,s:f}}",
        "model", "mobilenet_v2_1.0_224_quant", "version", "1", "results",
        "predictions", "index", 286, "label", "Egyptian cat", "score", 0.8047,
        "index", 282, "label", "tabby, tabby cat", "score", 0.1016,
        "timings_ms", "decode", 1.5, "queue", 0.1, "infer", 16.3);
}

static json_t *with_example(json_t *schema, json_t *ex) {
    json_object_set_new(schema, "example", ex);
    return schema;
}

static json_t *schemas(void) {
    json_t *tensor_meta = json_pack(
        "{s:s,s:[s,s,s],s:{s:{s:s},s:{s:s},s:{s:s,s:{s:s}}}}", "type", "object",
        "required", "name", "datatype", "shape", "properties", "name", "type",
        "string", "datatype", "type", "string", "shape", "type", "array",
        "items", "type", "integer");
    json_t *pred = json_pack(
        "{s:s,s:[s,s,s],s:{s:{s:s},s:{s:s},s:{s:s,s:i,s:i}}}", "type", "object",
        "required", "index", "label", "score", "properties", "index", "type",
        "integer", "label", "type", "string", "score", "type", "number",
        "minimum", 0, "maximum", 1);
    json_t *classify = json_pack(
        "{s:s,s:[s,s,s,s],s:{s:{s:s},s:{s:s},"
        "s:{s:s,s:{s:s,s:[s],s:{s:{s:s,s:o}}}},"
        "s:{s:s,s:[s,s,s],s:{s:{s:s},s:{s:s},s:{s:s}}}}}",
        "type", "object", "required", "model", "version", "results",
        "timings_ms", "properties", "model", "type", "string", "version",
        "type", "string", "results", "type", "array", "items", "type",
        "object", "required", "predictions", "properties", "predictions",
        "type", "array", "items", pred, "timings_ms", "type", "object",
        "required", "decode", "queue", "infer", "properties", "decode", "type",
        "number", "queue", "type", "number", "infer", "type", "number");
    json_t *infer_tensor = json_pack(
        "{s:s,s:[s,s,s],s:{s:{s:s},s:{s:s,s:{s:s}},s:{s:s,s:[s,s,s]},"
        "s:{s:s},s:{}}}",
        "type", "object", "required", "name", "shape", "datatype",
        "properties", "name", "type", "string", "shape", "type", "array",
        "items", "type", "integer", "datatype", "type", "string", "enum",
        "FP32", "UINT8", "BYTES", "parameters", "type", "object", "data");
    json_t *infer_req = json_pack(
        "{s:s,s:[s],s:{s:{s:s},s:{s:s},s:{s:s,s:i,s:i,s:o},s:{s:s,s:{s:s,"
        "s:[s],s:{s:{s:s},s:{s:s}}}}}}",
        "type", "object", "required", "inputs", "properties", "id", "type",
        "string", "parameters", "type", "object", "inputs", "type", "array",
        "minItems", 1, "maxItems", 1, "items", infer_tensor, "outputs", "type",
        "array", "items", "type", "object", "required", "name", "properties",
        "name", "type", "string", "parameters", "type", "object");
    json_t *infer_resp = json_pack(
        "{s:s,s:[s,s,s],s:{s:{s:s},s:{s:s},s:{s:s},s:{s:s,s:{s:s,s:[s,s,s],"
        "s:{s:{s:s},s:{s:s},s:{s:s,s:{s:s}},s:{s:s,s:{s:s}},s:{s:s}}}}}}",
        "type", "object", "required", "model_name", "model_version", "outputs",
        "properties", "model_name", "type", "string", "model_version", "type",
        "string", "id", "type", "string", "outputs", "type", "array", "items",
        "type", "object", "required", "name", "datatype", "shape",
        "properties", "name", "type", "string", "datatype", "type", "string",
        "shape", "type", "array", "items", "type", "integer", "data", "type",
        "array", "items", "type", "number", "parameters", "type", "object");
    return json_pack(
        "{s:{s:s,s:[s],s:{s:{s:s}}},"
        "s:{s:s,s:[s],s:{s:{s:s}}},"
        "s:{s:s,s:[s],s:{s:{s:s}}},"
        "s:{s:s,s:[s,s,s],s:{s:{s:s},s:{s:s},s:{s:s,s:{s:s}}}},"
        "s:{s:s,s:[s,s,s,s,s],s:{s:{s:s},s:{s:s,s:{s:s}},s:{s:s},"
        "s:{s:s,s:o},s:{s:s,s:o}}},"
        "s:{s:s,s:[s,s],s:{s:{s:s},s:{s:s}}},"
        "s:{s:s,s:{s:s,s:[s,s,s],s:{s:{s:s},s:{s:s},s:{s:s,s:[s,s,s,s]},"
        "s:{s:s}}}},"
        "s:{s:s,s:[s,s],s:{s:{s:s},s:{s:s}}},"
        "s:o,s:o,s:o}",
        "Error", "type", "object", "required", "error", "properties", "error",
        "type", "string",
        "Live", "type", "object", "required", "live", "properties", "live",
        "type", "boolean",
        "Ready", "type", "object", "required", "ready", "properties", "ready",
        "type", "boolean",
        "ServerMetadata", "type", "object", "required", "name", "version",
        "extensions", "properties", "name", "type", "string", "version",
        "type", "string", "extensions", "type", "array", "items", "type",
        "string",
        "ModelMetadata", "type", "object", "required", "name", "versions",
        "platform", "inputs", "outputs", "properties", "name", "type",
        "string", "versions", "type", "array", "items", "type", "string",
        "platform", "type", "string", "inputs", "type", "array", "items",
        json_deep_copy(tensor_meta), "outputs", "type", "array", "items",
        tensor_meta,
        "ModelReady", "type", "object", "required", "name", "ready",
        "properties", "name", "type", "string", "ready", "type", "boolean",
        "RepositoryIndex", "type", "array", "items", "type", "object",
        "required", "name", "version", "state", "properties", "name", "type",
        "string", "version", "type", "string", "state", "type", "string",
        "enum", "LOADING", "READY", "UNLOADING", "UNAVAILABLE", "reason",
        "type", "string",
        "RepositoryState", "type", "object", "required", "name", "state",
        "properties", "name", "type", "string", "state", "type", "string",
        "ClassifyResponse", with_example(classify, example_classify()),
        "InferRequest", infer_req,
        "InferResponse", infer_resp);
}

static json_t *param(const char *name, const char *in, bool required,
                     json_t *schema, const char *desc) {
    return json_pack("{s:s,s:s,s:b,s:o,s:s}", "name", name, "in", in,
                     "required", required, "schema", schema, "description",
                     desc);
}

static json_t *operation(const osp__serve_route_t *rt, int idx) {
    json_t *params = json_array();
    for (const char *p = strchr(rt->pattern, '{'); p; p = strchr(p + 1, '{')) {
        const char *e = strchr(p, '}');
        if (!e)
            break;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
        json_array_append_new(params,
                              param(name, "path", true,
                                    json_pack("{s:s}", "type", "string"),
                                    !strcmp(name, "model")     ? "model name"
                                    : !strcmp(name, "version") ? "model version (\"1\")"
                                    : "file name (app.css, docs.js, ...)"));
    }
    bool inference = rt->body != SERVE_BODY_NONE;
    if (rt->body == SERVE_BODY_IMAGE)
        json_array_append_new(
            params, param("top_k", "query", false,
                          json_pack("{s:s,s:i,s:i,s:i}", "type", "integer",
                                    "minimum", 1, "maximum", SERVE_MAX_TOP_K,
                                    "default", 5),
                          "predictions per image"));
    if (inference)
        json_array_append_new(
            params, param("X-Request-Timeout-Ms", "header", false,
                          json_pack("{s:s,s:i,s:i}", "type", "integer",
                                    "minimum", 1, "maximum",
                                    SERVE_MAX_TIMEOUT_MS),
                          "deadline; past it while queued the answer is 504"));
    json_array_append_new(
        params, param("X-Request-Id", "header", false,
                      json_pack("{s:s,s:i}", "type", "string", "maxLength",
                                128),
                      "echoed in the response and the logs"));
    char opid[64];
    snprintf(opid, sizeof opid, "op%02d", idx);
    json_t *op = json_pack("{s:s,s:s,s:o,s:{}}", "summary", rt->summary,
                           "operationId", opid, "parameters", params,
                           "responses");
    json_t *resps = json_object_get(op, "responses");
    char codes[64];
    snprintf(codes, sizeof codes, "%s", rt->codes);
    char *save = NULL;
    for (char *c = strtok_r(codes, " ", &save); c;
         c = strtok_r(NULL, " ", &save)) {
        int code = atoi(c);
        json_t *content;
        if (code == 200 && rt->schema)
            content = json_pack("{s:{s:o}}", "application/json", "schema",
                                ref(rt->schema));
        else if (code == 200)
            content = json_pack("{s:{s:{s:s}}}",
                                rt->ctype ? rt->ctype : "application/json",
                                "schema", "type", "string");
        else if (!strcmp(rt->pattern, "/v2/health/ready") ||
                 !strcmp(rt->pattern, "/ready"))
            content = json_pack("{s:{s:o}}", "application/json", "schema",
                                ref("Ready"));
        else if (code == 503 && strstr(rt->pattern, "/ready"))
            content = json_pack("{s:{s:{s:[o,o]}}}", "application/json",
                                "schema", "oneOf", ref("ModelReady"),
                                ref("Error"));
        else
            content = json_pack("{s:{s:o}}", "application/json", "schema",
                                ref("Error"));
        json_t *resp = json_pack("{s:s,s:o}", "description",
                                 osp_http_reason(code), "content", content);
        if (code == 503 && inference)
            json_object_set_new(
                resp, "headers",
                json_pack("{s:{s:s,s:{s:s}}}", "Retry-After", "description",
                          "seconds before retrying", "schema", "type",
                          "integer"));
        json_object_set_new(resps, c, resp);
    }
    if (rt->body == SERVE_BODY_IMAGE) {
        json_t *bin = json_pack("{s:s,s:s}", "type", "string", "format",
                                "binary");
        json_object_set_new(
            op, "requestBody",
            json_pack("{s:b,s:{s:{s:{s:s,s:[s],s:{s:{s:s,s:o}}}},"
                      "s:{s:o},s:{s:o},s:{s:o},s:{s:o},s:{s:o}}}",
                      "required", 1, "content", "multipart/form-data",
                      "schema", "type", "object", "required", "file",
                      "properties", "file", "type", "array", "items",
                      json_deep_copy(bin), "image/jpeg", "schema",
                      json_deep_copy(bin), "image/png", "schema",
                      json_deep_copy(bin), "image/webp", "schema",
                      json_deep_copy(bin), "image/bmp", "schema",
                      json_deep_copy(bin), "application/octet-stream",
                      "schema", bin));
    } else if (rt->body == SERVE_BODY_V2) {
        json_object_set_new(
            op, "requestBody",
            json_pack("{s:b,s:{s:{s:o},s:{s:{s:s,s:s}}}}", "required", 1,
                      "content", "application/json", "schema",
                      ref("InferRequest"), "application/octet-stream",
                      "schema", "type", "string", "format", "binary"));
    }
    return op;
}

char *osp__serve_openapi(const osp__serve_route_t *routes, int n, size_t *len) {
    json_t *paths = json_object();
    for (int i = 0; i < n; i++) {
        json_t *item = json_object_get(paths, routes[i].pattern);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, routes[i].pattern, item);
        }
        char m[16];
        size_t k = 0;
        for (; routes[i].method[k] && k + 1 < sizeof m; k++)
            m[k] = (char)(routes[i].method[k] | 0x20); /* lower case */
        m[k] = 0;
        json_object_set_new(item, m, operation(&routes[i], i));
    }
    json_t *doc = json_pack(
        "{s:s,s:{s:s,s:s,s:s},s:o,s:{s:o}}", "openapi", "3.0.3", "info",
        "title", "osprey worker", "version", OSP_VERSION, "description",
        "Image classification: REST classify endpoints and the KServe V2 "
        "inference protocol. Errors are {\"error\": \"...\"}.",
        "paths", paths, "components", "schemas", schemas());
    char *s = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
    json_decref(doc);
    if (s && len)
        *len = strlen(s);
    return s;
}
