/* config.c — reads the autoscaler's options from an HPA-style JSON
 * document, so that a user can copy a HorizontalPodAutoscaler's
 * `minReplicas`, `maxReplicas` and `behavior` block (or the whole manifest)
 * and get the same decisions. Field names and bounds are the autoscaling/v2
 * API's; osprey adds `metrics` (name + target) and `panic`.
 *
 * Strict: an unknown field or a value of the wrong type is an error naming
 * its path ("behavior.scaleUp.policies[0].type: \"pods\" is not Pods or
 * Percent") — a typo in a scaling policy must not silently become the
 * default. */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "osprey/autoscale.h"

/* Fails on keys of obj not in the NULL-terminated list. */
static int only_keys(json_t *obj, const char *path, const char *const *keys,
                     osp_err_t *err) {
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v) {
        int ok = 0;
        for (int i = 0; keys[i] && !ok; i++)
            ok = !strcmp(k, keys[i]);
        if (!ok)
            return osp_err_set(err, OSP_EINVAL, "%s%s%s: unknown field", path,
                               *path ? "." : "", k);
    }
    (void)v;
    return 0;
}

static int get_int(json_t *obj, const char *key, const char *path, int lo,
                   int hi, int *out, osp_err_t *err) {
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return osp_err_set(err, OSP_EINVAL, "%s.%s: not an integer", path,
                           key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return osp_err_set(err, OSP_EINVAL, "%s.%s: %lld is not in %d..%d",
                           path, key, (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

static int get_num(json_t *obj, const char *key, const char *path,
                   double *out, osp_err_t *err) {
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return osp_err_set(err, OSP_EINVAL, "%s.%s: not a number", path, key);
    *out = json_number_value(v);
    return 0;
}

static int parse_policy(json_t *p, const char *path, osp_autoscale_rate_t *r,
                        osp_err_t *err) {
    static const char *const keys[] = {"type", "value", "periodSeconds", NULL};
    if (!json_is_object(p))
        return osp_err_set(err, OSP_EINVAL, "%s: not an object", path);
    int rc = only_keys(p, path, keys, err);
    if (rc)
        return rc;
    json_t *t = json_object_get(p, "type");
    if (!json_is_string(t) ||
        osp_autoscale_rate_type_parse(json_string_value(t), &r->type))
        return osp_err_set(err, OSP_EINVAL, "%s.type: %s%s%s is not Pods or "
                           "Percent", path, t ? "\"" : "",
                           json_is_string(t) ? json_string_value(t) : "missing",
                           t ? "\"" : "");
    if (!json_object_get(p, "value") || !json_object_get(p, "periodSeconds"))
        return osp_err_set(err, OSP_EINVAL,
                           "%s: value and periodSeconds are required", path);
    rc = get_int(p, "value", path, 1, 1000000, &r->value, err);
    return rc ? rc : get_int(p, "periodSeconds", path, 1, 1800, &r->period_s,
                             err);
}

static int parse_rules(json_t *r, const char *path, osp_autoscale_rules_t *out,
                       osp_err_t *err) {
    static const char *const keys[] = {"stabilizationWindowSeconds",
                                       "selectPolicy", "policies", NULL};
    if (!json_is_object(r))
        return osp_err_set(err, OSP_EINVAL, "%s: not an object", path);
    int rc = only_keys(r, path, keys, err);
    if (!rc)
        rc = get_int(r, "stabilizationWindowSeconds", path, 0, 3600,
                     &out->stabilization_s, err);
    if (rc)
        return rc;
    json_t *sel = json_object_get(r, "selectPolicy");
    if (sel && (!json_is_string(sel) ||
                osp_autoscale_select_parse(json_string_value(sel),
                                           &out->select)))
        return osp_err_set(err, OSP_EINVAL,
                           "%s.selectPolicy: not Max, Min or Disabled", path);
    json_t *pols = json_object_get(r, "policies");
    if (!pols)
        return 0;
    if (!json_is_array(pols) || json_array_size(pols) < 1 ||
        json_array_size(pols) > OSP_AUTOSCALE_MAX_POLICIES)
        return osp_err_set(err, OSP_EINVAL,
                           "%s.policies: need a list of 1..%d policies", path,
                           OSP_AUTOSCALE_MAX_POLICIES);
    size_t i;
    json_t *p;
    json_array_foreach(pols, i, p) {
        char sub[96];
        snprintf(sub, sizeof sub, "%s.policies[%zu]", path, i);
        if ((rc = parse_policy(p, sub, &out->policies[i], err)))
            return rc;
    }
    out->n_policies = (int)json_array_size(pols);
    return 0;
}

static int parse_metrics(json_t *ms, osp_autoscale_opts_t *o, osp_err_t *err) {
    static const char *const keys[] = {"name", "target", NULL};
    if (!json_is_array(ms) || json_array_size(ms) < 1 ||
        json_array_size(ms) > OSP_AUTOSCALE_MAX_METRICS)
        return osp_err_set(err, OSP_EINVAL, "metrics: need a list of 1..%d",
                           OSP_AUTOSCALE_MAX_METRICS);
    size_t i;
    json_t *m;
    json_array_foreach(ms, i, m) {
        char path[32];
        snprintf(path, sizeof path, "metrics[%zu]", i);
        if (!json_is_object(m))
            return osp_err_set(err, OSP_EINVAL, "%s: not an object", path);
        int rc = only_keys(m, path, keys, err);
        if (rc)
            return rc;
        osp_autoscale_target_t *t = &o->targets[i];
        json_t *name = json_object_get(m, "name");
        if (!json_is_string(name) ||
            osp_autoscale_metric_parse(json_string_value(name), &t->metric))
            return osp_err_set(err, OSP_EINVAL,
                               "%s.name: not concurrency, rps, latency-p95, "
                               "queue or query", path);
        t->target = osp_autoscale_metric_default_target(t->metric);
        if ((rc = get_num(m, "target", path, &t->target, err)))
            return rc;
    }
    o->n_targets = (int)json_array_size(ms);
    return 0;
}

static int parse_panic(json_t *p, osp_autoscale_opts_t *o, osp_err_t *err) {
    static const char *const keys[] = {"enabled", "stableWindowSeconds",
                                       "panicWindowSeconds", "threshold",
                                       NULL};
    if (!json_is_object(p))
        return osp_err_set(err, OSP_EINVAL, "panic: not an object");
    int rc = only_keys(p, "panic", keys, err);
    if (rc)
        return rc;
    json_t *en = json_object_get(p, "enabled");
    if (en && !json_is_boolean(en))
        return osp_err_set(err, OSP_EINVAL, "panic.enabled: not true/false");
    if (en)
        o->panic = json_is_true(en);
    if ((rc = get_num(p, "stableWindowSeconds", "panic", &o->stable_window_s,
                      err)) ||
        (rc = get_num(p, "panicWindowSeconds", "panic", &o->panic_window_s,
                      err)))
        return rc;
    return get_num(p, "threshold", "panic", &o->panic_threshold, err);
}

/* The HPA spec's fields osprey reads; the ones it ignores (scaleTargetRef,
 * the HPA's own metrics list) are accepted so that a whole spec pastes in. */
static int parse_spec(json_t *spec, osp_autoscale_opts_t *o, osp_err_t *err) {
    static const char *const keys[] = {"minReplicas", "maxReplicas", "behavior",
                                       "metrics", "panic", "scaleTargetRef",
                                       "periodSeconds", "tolerance", NULL};
    int rc = only_keys(spec, "", keys, err);
    if (!rc)
        rc = get_int(spec, "minReplicas", "spec", 1, 1000000, &o->min_replicas,
                     err);
    if (!rc)
        rc = get_int(spec, "maxReplicas", "spec", 1, 1000000, &o->max_replicas,
                     err);
    if (!rc)
        rc = get_num(spec, "periodSeconds", "spec", &o->period_s, err);
    if (!rc)
        rc = get_num(spec, "tolerance", "spec", &o->tolerance, err);
    if (rc)
        return rc;
    json_t *b = json_object_get(spec, "behavior");
    if (b) {
        static const char *const bkeys[] = {"scaleUp", "scaleDown", NULL};
        if (!json_is_object(b))
            return osp_err_set(err, OSP_EINVAL, "behavior: not an object");
        if ((rc = only_keys(b, "behavior", bkeys, err)))
            return rc;
        json_t *up = json_object_get(b, "scaleUp");
        json_t *down = json_object_get(b, "scaleDown");
        if (up && (rc = parse_rules(up, "behavior.scaleUp", &o->up, err)))
            return rc;
        if (down &&
            (rc = parse_rules(down, "behavior.scaleDown", &o->down, err)))
            return rc;
    }
    json_t *ms = json_object_get(spec, "metrics");
    /* An HPA's own metrics list (objects with "type") is not osprey's. */
    if (ms && json_is_array(ms) && json_array_size(ms) &&
        json_object_get(json_array_get(ms, 0), "type"))
        ms = NULL;
    if (ms && (rc = parse_metrics(ms, o, err)))
        return rc;
    json_t *p = json_object_get(spec, "panic");
    return p ? parse_panic(p, o, err) : 0;
}

int osp_autoscale_opts_parse_json(osp_autoscale_opts_t *o, const char *text,
                                  osp_err_t *err) {
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return osp_err_set(err, OSP_EFORMAT, "line %d: %s", je.line, je.text);
    int rc;
    if (!json_is_object(root)) {
        rc = osp_err_set(err, OSP_EFORMAT, "not a JSON object");
    } else {
        /* A whole HorizontalPodAutoscaler manifest: read its spec. */
        json_t *spec = json_object_get(root, "spec");
        rc = parse_spec(json_is_object(spec) ? spec : root, o, err);
    }
    json_decref(root);
    return rc ? rc : osp_autoscale_opts_check(o, err);
}

int osp_autoscale_opts_load(osp_autoscale_opts_t *o, const char *path,
                            osp_err_t *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = osp_read_file(path, 1 << 20, &buf, &len, err);
    if (rc)
        return rc;
    const char *p = (const char *)buf;
    size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
                       p[i] == '\r'))
        i++;
    char *json = NULL;
    if (i < len && p[i] == '{') {
        json = malloc(len + 1);
        if (json) {
            memcpy(json, p, len);
            json[len] = 0;
        }
    } else {
        json = osp_yaml_to_json(p, len, "HorizontalPodAutoscaler", err);
        if (!json) {
            free(buf);
            return err ? err->code : OSP_EFORMAT;
        }
    }
    free(buf);
    if (!json)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    rc = osp_autoscale_opts_parse_json(o, json, err);
    free(json);
    return rc;
}
