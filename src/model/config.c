/* config.c — parses a model config file (JSON, docs/model-config.md) into an
 * osp_model_t. The file is untrusted: every key is checked for type and
 * range, unknown keys are errors (a typo such as "widht" must not silently
 * fall back to a default), and every message names the file and the key. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

#define OSP__IMAGE_DIM_MAX 16384   /* pixels; far above any classifier */
#define OSP__LABEL_OFFSET_MAX 1000000
#define OSP__MAX_BATCH_MAX 65536
#define OSP__QUEUE_DELAY_US_MAX 60000000LL /* 60 s: far beyond any batcher */
#define OSP__QUEUE_SIZE_MAX 1000000
#define OSP__INSTANCES_MAX 16              /* = the server's per-model cap */
#define OSP__VERSION_MAX 999999999999LL    /* version directory numbers */

typedef struct cfg_s {
    osp_model_t *m;
    const char *path;
    osp_err_t *err;
} cfg_t;

static const char *type_name(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static int bad_type(cfg_t *c, const char *key, const json_t *j,
                    const char *want) {
    return osp_err_set(c->err, OSP_EINVAL,
                       "%s: key '%s' must be %s, not %s", c->path, key, want,
                       type_name(j));
}

static int bad_value(cfg_t *c, const char *key, const char *want) {
    return osp_err_set(c->err, OSP_EINVAL, "%s: key '%s' must be %s", c->path,
                       key, want);
}

static int get_int(cfg_t *c, const char *key, const json_t *j, long long lo,
                   long long hi, int *out) {
    char want[96];
    snprintf(want, sizeof want, "an integer in %lld..%lld", lo, hi);
    if (!json_is_integer(j))
        return bad_type(c, key, j, want);
    long long v = json_integer_value(j);
    if (v < lo || v > hi)
        return bad_value(c, key, want);
    *out = (int)v;
    return 0;
}

/* A number (integer or real) in (lo, hi] or [lo, hi] depending on lo_open. */
static int get_num(cfg_t *c, const char *key, const json_t *j, double lo,
                   bool lo_open, double hi, const char *want, float *out) {
    if (!json_is_number(j))
        return bad_type(c, key, j, want);
    double v = json_number_value(j);
    if (!isfinite(v) || v > hi || v < lo || (lo_open && v == lo))
        return bad_value(c, key, want);
    *out = (float)v;
    return 0;
}

/* One of the strings in `names` (NULL-terminated); *out = its index. */
static int get_enum(cfg_t *c, const char *key, const json_t *j,
                    const char *const *names, int *out) {
    char want[160] = "one of";
    for (int i = 0; names[i]; i++) {
        size_t n = strlen(want);
        snprintf(want + n, sizeof want - n, "%s\"%s\"", i ? ", " : " ",
                 names[i]);
    }
    if (!json_is_string(j))
        return bad_type(c, key, j, want);
    const char *s = json_string_value(j);
    for (int i = 0; names[i]; i++) {
        if (!strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    }
    return osp_err_set(c->err, OSP_EINVAL, "%s: key '%s' must be %s, not \"%s\"",
                       c->path, key, want, s);
}

static int get_vec3(cfg_t *c, const char *key, const json_t *j, bool positive,
                    float out[3]) {
    const char *want = positive ? "an array of 3 positive numbers"
                                : "an array of 3 numbers";
    if (!json_is_array(j))
        return bad_type(c, key, j, want);
    if (json_array_size(j) != 3)
        return bad_value(c, key, want);
    for (size_t i = 0; i < 3; i++) {
        const json_t *e = json_array_get(j, i);
        if (!json_is_number(e))
            return bad_value(c, key, want);
        double v = json_number_value(e);
        if (!isfinite(v) || (positive && v <= 0))
            return bad_value(c, key, want);
        out[i] = (float)v;
    }
    return 0;
}

/* Model names appear in URLs and metric labels: keep them plain. */
static bool valid_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > OSP_MODEL_NAME_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int parse_preprocess(cfg_t *c, const json_t *obj) {
    static const char *const modes[] = {"short_crop", "exact",
                                        "central_fraction", NULL};
    static const osp_resize_mode_t mode_vals[] = {
        OSP_RESIZE_SHORT_CROP, OSP_RESIZE_EXACT, OSP_RESIZE_CENTRAL_FRACTION};
    static const char *const layouts[] = {"nchw", "nhwc", NULL};
    static const osp_layout_t layout_vals[] = {OSP_LAYOUT_NCHW,
                                               OSP_LAYOUT_NHWC};
    static const char *const dtypes[] = {"float32", "uint8", NULL};
    static const osp_dtype_t dtype_vals[] = {OSP_DT_F32, OSP_DT_U8};
    osp_model_t *m = c->m;
    osp_preprocess_t *p = &m->pre;
    const char *key;
    json_t *v;
    int rc = 0, i;
    if (!json_is_object(obj))
        return bad_type(c, "preprocess", obj, "an object");
    json_object_foreach((json_t *)obj, key, v) {
        if (!strcmp(key, "resize")) {
            if ((rc = get_enum(c, "preprocess.resize", v, modes, &i)) == 0) {
                p->mode = mode_vals[i];
                m->set |= OSP__SET_MODE;
            }
        } else if (!strcmp(key, "resize_short")) {
            rc = get_int(c, "preprocess.resize_short", v, 1,
                         OSP__IMAGE_DIM_MAX, &p->resize_short);
            m->set |= OSP__SET_RESIZE_SHORT;
        } else if (!strcmp(key, "central_fraction")) {
            rc = get_num(c, "preprocess.central_fraction", v, 0, true, 1,
                         "a number in (0, 1]", &p->central_fraction);
            m->set |= OSP__SET_FRACTION;
        } else if (!strcmp(key, "width")) {
            rc = get_int(c, "preprocess.width", v, 1, OSP__IMAGE_DIM_MAX,
                         &p->out_w);
            m->set |= OSP__SET_WIDTH;
        } else if (!strcmp(key, "height")) {
            rc = get_int(c, "preprocess.height", v, 1, OSP__IMAGE_DIM_MAX,
                         &p->out_h);
            m->set |= OSP__SET_HEIGHT;
        } else if (!strcmp(key, "layout")) {
            if ((rc = get_enum(c, "preprocess.layout", v, layouts, &i)) == 0) {
                p->layout = layout_vals[i];
                m->set |= OSP__SET_LAYOUT;
            }
        } else if (!strcmp(key, "dtype")) {
            if ((rc = get_enum(c, "preprocess.dtype", v, dtypes, &i)) == 0) {
                p->dtype = dtype_vals[i];
                m->set |= OSP__SET_DTYPE;
            }
        } else if (!strcmp(key, "scale")) {
            rc = get_num(c, "preprocess.scale", v, 0, true, 1e6,
                         "a positive number", &p->scale);
            m->set |= OSP__SET_SCALE;
        } else if (!strcmp(key, "mean")) {
            rc = get_vec3(c, "preprocess.mean", v, false, p->mean);
            m->set |= OSP__SET_MEAN;
        } else if (!strcmp(key, "std")) {
            rc = get_vec3(c, "preprocess.std", v, true, p->std);
            m->set |= OSP__SET_STD;
        } else {
            return osp_err_set(c->err, OSP_EINVAL,
                               "%s: unknown key 'preprocess.%s'", c->path,
                               key);
        }
        if (rc)
            return rc;
    }
    /* A mode-specific parameter implies its mode, and contradicts others. */
    if ((m->set & OSP__SET_FRACTION) && (m->set & OSP__SET_MODE) &&
        p->mode != OSP_RESIZE_CENTRAL_FRACTION)
        return osp_err_set(c->err, OSP_EINVAL,
                           "%s: key 'preprocess.central_fraction' needs "
                           "\"resize\": \"central_fraction\"",
                           c->path);
    if ((m->set & OSP__SET_RESIZE_SHORT) && (m->set & OSP__SET_MODE) &&
        p->mode != OSP_RESIZE_SHORT_CROP)
        return osp_err_set(c->err, OSP_EINVAL,
                           "%s: key 'preprocess.resize_short' needs "
                           "\"resize\": \"short_crop\"",
                           c->path);
    if ((m->set & OSP__SET_FRACTION) && (m->set & OSP__SET_RESIZE_SHORT))
        return osp_err_set(c->err, OSP_EINVAL,
                           "%s: 'preprocess.resize_short' and "
                           "'preprocess.central_fraction' exclude each other",
                           c->path);
    if (!(m->set & OSP__SET_MODE) && (m->set & OSP__SET_FRACTION)) {
        p->mode = OSP_RESIZE_CENTRAL_FRACTION;
        m->set |= OSP__SET_MODE;
    } else if (!(m->set & OSP__SET_MODE) && (m->set & OSP__SET_RESIZE_SHORT)) {
        p->mode = OSP_RESIZE_SHORT_CROP;
        m->set |= OSP__SET_MODE;
    }
    return 0;
}

char *osp__dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* A path from the config, relative to the config file's directory unless
 * absolute (malloc'd; NULL when out of memory). */
static char *resolve(const cfg_t *c, const char *rel) {
    if (rel[0] == '/')
        return strdup(rel);
    char *full = NULL, *dir = osp__dir_of(c->path);
    if (dir && asprintf(&full, "%s/%s", dir, rel) < 0)
        full = NULL;
    free(dir);
    return full;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* "preferred_batch_sizes": [4, 8] — stored ascending; duplicates are
 * errors (they would hide a typo). */
static int parse_preferred(cfg_t *c, const json_t *v) {
    osp_model_serving_t *sv = &c->m->serving;
    char want[96];
    snprintf(want, sizeof want, "an array of 1..%d distinct integers in 1..%d",
             OSP_MODEL_MAX_PREFERRED, OSP__MAX_BATCH_MAX);
    if (!json_is_array(v))
        return bad_type(c, "preferred_batch_sizes", v, want);
    size_t n = json_array_size(v);
    if (n < 1 || n > OSP_MODEL_MAX_PREFERRED)
        return bad_value(c, "preferred_batch_sizes", want);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 1 ||
            json_integer_value(e) > OSP__MAX_BATCH_MAX)
            return bad_value(c, "preferred_batch_sizes", want);
        sv->preferred[i] = (int)json_integer_value(e);
    }
    qsort(sv->preferred, n, sizeof sv->preferred[0], cmp_int);
    for (size_t i = 1; i < n; i++)
        if (sv->preferred[i] == sv->preferred[i - 1])
            return bad_value(c, "preferred_batch_sizes", want);
    sv->n_preferred = (int)n;
    return 0;
}

/* Triton's version_policy, in JSON: {"latest": {"num_versions": N}},
 * {"specific": {"versions": [1, 3]}} or {"all": {}}. */
static int parse_policy(cfg_t *c, const json_t *v) {
    osp_model_serving_t *sv = &c->m->serving;
    const char *want = "an object with one of \"latest\": {\"num_versions\": "
                       "N}, \"specific\": {\"versions\": [...]}, \"all\": {}";
    if (!json_is_object(v))
        return bad_type(c, "version_policy", v, want);
    if (json_object_size(v) != 1)
        return bad_value(c, "version_policy", want);
    const char *kind = json_object_iter_key(json_object_iter((json_t *)v));
    const json_t *body = json_object_get(v, kind);
    if (!json_is_object(body))
        return bad_value(c, "version_policy", want);
    const char *key;
    json_t *e;
    if (!strcmp(kind, "latest")) {
        sv->policy = OSP_VERSIONS_LATEST;
        json_object_foreach((json_t *)body, key, e) {
            if (strcmp(key, "num_versions"))
                return osp_err_set(c->err, OSP_EINVAL,
                                   "%s: unknown key 'version_policy.latest.%s'",
                                   c->path, key);
            int rc = get_int(c, "version_policy.latest.num_versions", e, 1,
                             OSP_MODEL_MAX_VERSIONS, &sv->latest_n);
            if (rc)
                return rc;
        }
    } else if (!strcmp(kind, "specific")) {
        sv->policy = OSP_VERSIONS_SPECIFIC;
        const char *vw = "a non-empty array of distinct version numbers "
                         "(integers >= 1)";
        json_object_foreach((json_t *)body, key, e) {
            if (strcmp(key, "versions"))
                return osp_err_set(c->err, OSP_EINVAL,
                                   "%s: unknown key "
                                   "'version_policy.specific.%s'",
                                   c->path, key);
            if (!json_is_array(e))
                return bad_type(c, "version_policy.specific.versions", e, vw);
            size_t n = json_array_size(e);
            if (n < 1 || n > OSP_MODEL_MAX_VERSIONS)
                return bad_value(c, "version_policy.specific.versions", vw);
            for (size_t i = 0; i < n; i++) {
                const json_t *x = json_array_get(e, i);
                if (!json_is_integer(x) || json_integer_value(x) < 1 ||
                    json_integer_value(x) > OSP__VERSION_MAX)
                    return bad_value(c, "version_policy.specific.versions",
                                     vw);
                sv->versions[i] = json_integer_value(x);
            }
            qsort(sv->versions, n, sizeof sv->versions[0], cmp_i64);
            for (size_t i = 1; i < n; i++)
                if (sv->versions[i] == sv->versions[i - 1])
                    return bad_value(c, "version_policy.specific.versions",
                                     vw);
            sv->n_versions = (int)n;
        }
        if (sv->n_versions == 0)
            return osp_err_set(c->err, OSP_EINVAL,
                               "%s: 'version_policy.specific' needs "
                               "'versions'", c->path);
    } else if (!strcmp(kind, "all")) {
        sv->policy = OSP_VERSIONS_ALL;
        if (json_object_size(body))
            return bad_value(c, "version_policy.all", "an empty object");
    } else {
        return bad_value(c, "version_policy", want);
    }
    sv->has_version_policy = true;
    return 0;
}

static int parse_root(cfg_t *c, const json_t *root, char **labels_out) {
    static const char *const precisions[] = {"auto", "fp32", "bf16", "int8",
                                             NULL};
    static const osp_precision_t prec_vals[] = {OSP_PREC_AUTO, OSP_PREC_FP32,
                                                OSP_PREC_BF16, OSP_PREC_INT8};
    static const char *const outputs[] = {"logits", "probabilities", NULL};
    osp_model_t *m = c->m;
    const char *key;
    json_t *v;
    int rc = 0, i;
    json_object_foreach((json_t *)root, key, v) {
        if (!strcmp(key, "name")) {
            if (!json_is_string(v))
                return bad_type(c, "name", v, "a string");
            if (!valid_name(json_string_value(v)) ||
                strlen(json_string_value(v)) != json_string_length(v))
                return bad_value(c, "name",
                                 "1..128 characters from [A-Za-z0-9._-], not "
                                 "starting with '.' or '-'");
            char *s = strdup(json_string_value(v));
            if (!s)
                return osp_err_set(c->err, OSP_ENOMEM, "%s", c->path);
            free(m->name);
            m->name = s;
        } else if (!strcmp(key, "labels")) {
            if (!json_is_string(v))
                return bad_type(c, "labels", v, "a string (a file path)");
            const char *rel = json_string_value(v);
            if (!*rel || strlen(rel) != json_string_length(v))
                return bad_value(c, "labels", "a non-empty file path");
            char *full = resolve(c, rel);
            if (!full)
                return osp_err_set(c->err, OSP_ENOMEM, "%s", c->path);
            free(*labels_out);
            *labels_out = full;
        } else if (!strcmp(key, "label_offset")) {
            rc = get_int(c, "label_offset", v, -OSP__LABEL_OFFSET_MAX,
                         OSP__LABEL_OFFSET_MAX, &m->label_offset);
            m->set |= OSP__SET_LABEL_OFFSET;
        } else if (!strcmp(key, "preprocess")) {
            rc = parse_preprocess(c, v);
        } else if (!strcmp(key, "precision")) {
            if ((rc = get_enum(c, "precision", v, precisions, &i)) == 0) {
                m->precision = prec_vals[i];
                m->set |= OSP__SET_PRECISION;
            }
        } else if (!strcmp(key, "calibration")) {
            /* {"images": DIR (relative to the config), "count": N} */
            if (!json_is_object(v))
                return bad_type(c, "calibration", v,
                                "an object {\"images\": DIR, \"count\": N}");
            const char *ck;
            json_t *cv;
            json_object_foreach(v, ck, cv) {
                if (!strcmp(ck, "images")) {
                    if (!json_is_string(cv) || !json_string_value(cv)[0])
                        return bad_type(c, "calibration.images", cv,
                                        "a directory path");
                    char *full = resolve(c, json_string_value(cv));
                    if (!full)
                        return osp_err_set(c->err, OSP_ENOMEM, "%s", c->path);
                    free(m->calib_dir);
                    m->calib_dir = full;
                } else if (!strcmp(ck, "count")) {
                    if ((rc = get_int(c, "calibration.count", cv, 1, 100000,
                                      &m->calib_count)) != 0)
                        return rc;
                } else {
                    return osp_err_set(c->err, OSP_EINVAL,
                                       "%s: unknown key 'calibration.%s'",
                                       c->path, ck);
                }
            }
        } else if (!strcmp(key, "max_batch_size")) {
            rc = get_int(c, "max_batch_size", v, 1, OSP__MAX_BATCH_MAX,
                         &m->max_batch);
            m->set |= OSP__SET_MAX_BATCH;
        } else if (!strcmp(key, "max_queue_delay_us")) {
            char want[64];
            snprintf(want, sizeof want, "an integer in 0..%lld",
                     OSP__QUEUE_DELAY_US_MAX);
            if (!json_is_integer(v))
                return bad_type(c, "max_queue_delay_us", v, want);
            if (json_integer_value(v) < 0 ||
                json_integer_value(v) > OSP__QUEUE_DELAY_US_MAX)
                return bad_value(c, "max_queue_delay_us", want);
            m->serving.max_queue_delay_us = json_integer_value(v);
        } else if (!strcmp(key, "max_queue_size")) {
            rc = get_int(c, "max_queue_size", v, 1, OSP__QUEUE_SIZE_MAX,
                         &m->serving.max_queue_size);
        } else if (!strcmp(key, "instances")) {
            rc = get_int(c, "instances", v, 1, OSP__INSTANCES_MAX,
                         &m->serving.instances);
        } else if (!strcmp(key, "preferred_batch_sizes")) {
            rc = parse_preferred(c, v);
        } else if (!strcmp(key, "version_policy")) {
            rc = parse_policy(c, v);
        } else if (!strcmp(key, "output")) {
            if ((rc = get_enum(c, "output", v, outputs, &i)) == 0) {
                m->output_kind = i ? OSP_OUTPUT_PROBABILITIES
                                   : OSP_OUTPUT_LOGITS;
                m->set |= OSP__SET_OUTPUT;
            }
        } else {
            return osp_err_set(c->err, OSP_EINVAL, "%s: unknown key '%s'",
                               c->path, key);
        }
        if (rc)
            return rc;
    }
    const osp_model_serving_t *sv = &m->serving;
    if ((m->set & OSP__SET_MAX_BATCH) && sv->n_preferred &&
        sv->preferred[sv->n_preferred - 1] > m->max_batch)
        return osp_err_set(c->err, OSP_EINVAL,
                           "%s: preferred_batch_sizes has %d, above "
                           "max_batch_size %d", c->path,
                           sv->preferred[sv->n_preferred - 1], m->max_batch);
    return 0;
}

void osp__model_serving_defaults(osp_model_serving_t *sv) {
    memset(sv, 0, sizeof *sv);
    sv->max_queue_delay_us = -1;
    sv->policy = OSP_VERSIONS_LATEST;
    sv->latest_n = 1;
}

const char *osp_version_policy_name(osp_version_policy_t p) {
    static const char *const names[] = {"latest", "specific", "all"};
    return (unsigned)p < OSP_VERSIONS_COUNT ? names[p] : "?";
}

int osp_model_config_serving(const char *config_path, osp_model_serving_t *out,
                             int *max_batch_out, osp_err_t *err) {
    /* A scratch model holds what the parser fills; only the serving keys
     * are kept. */
    osp_model_t m;
    memset(&m, 0, sizeof m);
    osp__model_serving_defaults(&m.serving);
    uint8_t *buf = NULL;
    size_t len = 0;
    char *labels = NULL;
    int rc = osp_read_file(config_path, OSP_MODEL_CONFIG_MAX_BYTES, &buf, &len,
                           err);
    if (rc)
        return osp_err_prefix(err, "model config");
    rc = osp__model_config_parse(&m, config_path, (const char *)buf, len,
                                 &labels, err);
    free(buf);
    free(labels);
    free(m.name);
    free(m.calib_dir);
    if (rc)
        return rc;
    *out = m.serving;
    if (max_batch_out)
        *max_batch_out = m.max_batch;
    return 0;
}

int osp__model_config_parse(osp_model_t *m, const char *path,
                            const char *text, size_t len, char **labels_out,
                            osp_err_t *err) {
    cfg_t c = {m, path, err};
    json_error_t jerr;
    *labels_out = NULL;
    /* Duplicate keys would make "which one wins" a guess: reject them. */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return osp_err_set(err, OSP_EFORMAT, "%s:%d:%d: invalid JSON: %s",
                           path, jerr.line, jerr.column, jerr.text);
    int rc;
    if (!json_is_object(root))
        rc = osp_err_set(err, OSP_EINVAL,
                         "%s: the top level must be a JSON object, not %s",
                         path, type_name(root));
    else
        rc = parse_root(&c, root, labels_out);
    json_decref(root);
    if (rc) {
        free(*labels_out);
        *labels_out = NULL;
    }
    return rc;
}
