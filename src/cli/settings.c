/* settings.c — flags, PREFIX* environment and a JSON config file applied to
 * one settings table (see settings.h for the precedence and why it is
 * shared). Sources are applied lowest first, so a later write simply wins. */
#include "cli/settings.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "osprey/common.h"

enum { SRC_NONE, SRC_FILE, SRC_ENV, SRC_FLAGS };

typedef struct load_s {
    osp_settings_t *s;
    unsigned char *list_src; /* per entry: the source that owns its list */
} load_t;

/* Copies a string so it outlives the file or environment it came from. */
static const char *keep(osp_settings_t *s, const char *v, size_t len) {
    if (s->n_keep == s->cap_keep) {
        size_t cap = s->cap_keep ? 2 * s->cap_keep : 16;
        char **k = realloc(s->keep, cap * sizeof *k);
        if (!k)
            return NULL;
        s->keep = k;
        s->cap_keep = cap;
    }
    char *c = strndup(v, len);
    if (c)
        s->keep[s->n_keep++] = c;
    return c;
}

static int set(load_t *l, const osp_setting_t *op, const char *v,
               const char *from, int src) {
    osp_settings_t *s = l->s;
    char *p = (char *)s->base + op->off;
    char *end = NULL;
    errno = 0;
    if (op->reset) {
        size_t i = (size_t)(op - s->tab);
        if (l->list_src[i] != src) {
            op->reset(s->base);
            l->list_src[i] = (unsigned char)src;
        }
    }
    switch (op->kind) {
    case OSP_SET_STR:
        *(const char **)p = v;
        return 0;
    case OSP_SET_FN:
        if (op->parse(s->base, v) < 0)
            goto bad;
        return 0;
    case OSP_SET_FIELD:
        if (op->parse_field(p, v) < 0)
            goto bad;
        return 0;
    case OSP_SET_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < op->min || x > 1000000000)
            goto bad;
        *(int *)p = (int)x;
        return 0;
    }
    case OSP_SET_I64: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < op->min)
            goto bad;
        *(int64_t *)p = x;
        return 0;
    }
    case OSP_SET_SIZE:
    case OSP_SET_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-')
            goto bad;
        if (op->kind == OSP_SET_SIZE)
            *(size_t *)p = (size_t)x;
        else
            *(uint64_t *)p = x;
        return 0;
    }
    case OSP_SET_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !(x >= 0))
            goto bad;
        *(double *)p = x;
        return 0;
    }
    }
bad:
    fprintf(stderr, "%s: %s: bad value '%s' for %s\n", s->cmd, from, v,
            op->name);
    return -1;
}

/* Finds an entry by name; '_' matches '-' so file keys may use either. */
static const osp_setting_t *find(const osp_settings_t *s, const char *name,
                                 size_t len) {
    for (size_t i = 0; i < s->n; i++) {
        const char *n = s->tab[i].name;
        if (strlen(n) != len)
            continue;
        size_t k = 0;
        while (k < len && (name[k] == n[k] || (name[k] == '_' && n[k] == '-')))
            k++;
        if (k == len)
            return &s->tab[i];
    }
    return NULL;
}

static int set_json(load_t *l, const osp_setting_t *op, json_t *v,
                    const char *path) {
    osp_settings_t *s = l->s;
    char num[64];
    const char *str;
    if (json_is_array(v) && op->reset) {
        size_t i;
        json_t *e;
        if (json_array_size(v) == 0) { /* an empty list is a value too */
            op->reset(s->base);
            l->list_src[op - s->tab] = SRC_FILE;
        }
        json_array_foreach(v, i, e) {
            if (json_is_array(e)) {
                fprintf(stderr, "%s: %s: '%s' takes a flat array\n", s->cmd,
                        path, op->name);
                return -1;
            }
            if (set_json(l, op, e, path) < 0)
                return -1;
        }
        return 0;
    }
    if (json_is_string(v))
        str = json_string_value(v);
    else if (json_is_integer(v))
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)),
            str = num;
    else if (json_is_real(v))
        snprintf(num, sizeof num, "%.17g", json_real_value(v)), str = num;
    else {
        fprintf(stderr, "%s: %s: '%s' must be a string or a number%s\n",
                s->cmd, path, op->name, op->reset ? " (or an array)" : "");
        return -1;
    }
    const char *k = keep(s, str, strlen(str));
    return k ? set(l, op, k, path, SRC_FILE) : -1;
}

static int load_file(load_t *l, const char *path) {
    osp_settings_t *s = l->s;
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "%s: %s:%d:%d: %s\n", s->cmd, path, je.line,
                je.column, j ? "the top level must be an object" : je.text);
        json_decref(j);
        return -1;
    }
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(j, key, v) {
        const osp_setting_t *op = find(s, key, strlen(key));
        if (!op || !strcmp(op->name, "config")) {
            fprintf(stderr, "%s: %s: unknown key '%s'\n", s->cmd, path, key);
            rc = -1;
            break;
        }
        if ((rc = set_json(l, op, v, path)) < 0)
            break;
    }
    json_decref(j);
    return rc;
}

static void env_name(const osp_settings_t *s, const char *opt, char *out,
                     size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "%s", s->env_prefix);
    for (const char *p = opt; *p && n + 1 < cap; p++)
        out[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z'
                                                ? *p - 'a' + 'A' : *p);
    out[n < cap ? n : cap - 1] = 0;
}

static int load_env(load_t *l) {
    osp_settings_t *s = l->s;
    for (size_t i = 0; i < s->n; i++) {
        const osp_setting_t *op = &s->tab[i];
        char name[96];
        env_name(s, op->name, name, sizeof name);
        const char *v = getenv(name);
        if (!v && op->env_alias && (v = getenv(op->env_alias)))
            snprintf(name, sizeof name, "%s", op->env_alias);
        if (!v || !strcmp(op->name, "config")) /* config: already used */
            continue;
        if (!op->reset) {
            if (set(l, op, v, name, SRC_ENV) < 0)
                return -1;
            continue;
        }
        /* A list: comma-separated items. */
        op->reset(s->base);
        l->list_src[i] = SRC_ENV;
        for (const char *t = v; *t;) {
            const char *comma = strchr(t, ',');
            size_t len = comma ? (size_t)(comma - t) : strlen(t);
            if (len > 0) {
                const char *k = keep(s, t, len);
                if (!k || set(l, op, k, name, SRC_ENV) < 0)
                    return -1;
            }
            t += len + (comma != NULL);
        }
    }
    return 0;
}

int osp_settings_load(osp_settings_t *s, int argc, char **argv) {
    load_t l = {s, calloc(s->n ? s->n : 1, 1)};
    int rc = -1;
    if (!l.list_src) {
        fprintf(stderr, "%s: out of memory\n", s->cmd);
        return -1;
    }
    /* Pass 1: --help, and the config file, which is applied first. */
    char cfg_env[96];
    env_name(s, "config", cfg_env, sizeof cfg_env);
    const char *config = getenv(cfg_env);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            s->usage(stdout);
            rc = 1;
            goto out;
        }
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
    }
    if ((config && load_file(&l, config) < 0) || load_env(&l) < 0)
        goto out;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2)) {
            fprintf(stderr, "%s: unexpected argument '%s'\n", s->cmd, a);
            s->usage(stderr);
            goto out;
        }
        a += 2;
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const osp_setting_t *op = find(s, a, nl);
        if (!op) {
            fprintf(stderr, "%s: unknown option '%s'\n", s->cmd, argv[i]);
            s->usage(stderr);
            goto out;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            fprintf(stderr, "%s: %s needs a value\n", s->cmd, argv[i]);
            goto out;
        }
        if (set(&l, op, v, "command line", SRC_FLAGS) < 0)
            goto out;
    }
    rc = 0;
out:
    free(l.list_src);
    return rc;
}

int osp_settings_load_env(osp_settings_t *s) {
    load_t l = {s, calloc(s->n ? s->n : 1, 1)};
    if (!l.list_src) {
        fprintf(stderr, "%s: out of memory\n", s->cmd);
        return -1;
    }
    int rc = load_env(&l);
    free(l.list_src);
    return rc;
}

int osp_settings_set(osp_settings_t *s, const osp_setting_t *op, const char *v,
                     const char *from) {
    /* one value at a time cannot accumulate a list */
    OSP_ASSERT(!op->reset);
    load_t l = {s, NULL};
    return set(&l, op, v, from, SRC_FLAGS);
}

void osp_settings_print_rows(const osp_setting_t *tab, size_t n, FILE *f) {
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  --%-20s %s\n", tab[i].name, tab[i].help);
}

void osp_settings_print(const osp_settings_t *s, FILE *f) {
    osp_settings_print_rows(s->tab, s->n, f);
    fprintf(f, "  --%-20s %s\n", "help", "this text");
}

void osp_settings_free(osp_settings_t *s) {
    for (size_t i = 0; i < s->n_keep; i++)
        free(s->keep[i]);
    free(s->keep);
    s->keep = NULL;
    s->n_keep = s->cap_keep = 0;
}
