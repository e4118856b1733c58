/* yaml.c — YAML to JSON for the files Kubernetes users write as YAML: the
 * autoscaler's --config (a user copies an HPA's manifest as it is) and
 * kubeconfig files (src/kube). The document is converted to a jansson tree
 * (libyaml's document API) and read by the same code as a JSON file, so
 * both spellings mean the same. Plain scalars are typed as Kubernetes' YAML
 * reader types them: null, true/false, integers, floats; anything else (and
 * every quoted scalar) is a string. Several documents (`---`): the first
 * whose kind is the one the caller prefers, else the first. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "osprey/common.h"

#define YAML_MAX_DEPTH 64

static json_t *scalar(const yaml_node_t *n) {
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return json_stringn(v, len);
    if (!len || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
        !strcmp(v, "NULL"))
        return json_null();
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
        return json_true();
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
        return json_false();
    char *end;
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (!*end && !errno)
        return json_integer(i);
    double d = strtod(v, &end);
    if (!*end && isfinite(d) && strpbrk(v, "0123456789"))
        return json_real(d);
    return json_stringn(v, len);
}

static json_t *convert(yaml_document_t *doc, yaml_node_t *n, int depth) {
    if (!n || depth > YAML_MAX_DEPTH)
        return NULL;
    if (n->type == YAML_SCALAR_NODE)
        return scalar(n);
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *it = n->data.sequence.items.start;
             a && it < n->data.sequence.items.top; it++) {
            json_t *v = convert(doc, yaml_document_get_node(doc, *it), depth + 1);
            if (!v || json_array_append_new(a, v)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start;
         o && p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        json_t *v = convert(doc, yaml_document_get_node(doc, p->value), depth + 1);
        if (!k || k->type != YAML_SCALAR_NODE || !v ||
            json_object_setn_new(o, (const char *)k->data.scalar.value,
                                 k->data.scalar.length, v)) {
            json_decref(v);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static bool is_kind(json_t *j, const char *want) {
    const char *kind = json_string_value(json_object_get(j, "kind"));
    return want && kind && !strcmp(kind, want);
}

char *osp_yaml_to_json(const char *text, size_t len, const char *prefer_kind,
                       osp_err_t *err) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        osp_err_set(err, OSP_ENOMEM, "YAML: out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    json_t *pick = NULL;
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            osp_err_set(err, OSP_EFORMAT, "YAML line %zu: %s",
                        parser.problem_mark.line + 1,
                        parser.problem ? parser.problem : "malformed");
            json_decref(pick);
            pick = NULL;
            goto out;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) { /* the end of the stream */
            yaml_document_delete(&doc);
            break;
        }
        json_t *j = convert(&doc, root, 0);
        yaml_document_delete(&doc);
        if (!j) {
            osp_err_set(err, OSP_EFORMAT, "YAML: keys must be scalars, "
                        "nesting at most %d deep", YAML_MAX_DEPTH);
            json_decref(pick);
            pick = NULL;
            goto out;
        }
        if (!pick || (!is_kind(pick, prefer_kind) && is_kind(j, prefer_kind))) {
            json_decref(pick);
            pick = j;
        } else {
            json_decref(j);
        }
    }
    if (!pick)
        osp_err_set(err, OSP_EFORMAT, "YAML: no document");
out:
    yaml_parser_delete(&parser);
    char *s = pick ? json_dumps(pick, JSON_COMPACT) : NULL;
    json_decref(pick);
    return s;
}
