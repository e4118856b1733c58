/* settings.c — flags, environment and a JSON config file applied to one
 * settings table, and --help generated from it (see settings.h for the
 * precedence and why it is shared). Sources are applied lowest first, so a
 * later write simply wins. */
#include "cli/settings.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jansson.h>

#include "cli/cli.h"
#include "osprey/common.h"
#include "osprey/http.h"

#define HELP_LEFT 26  /* columns of "--name ARG" in --help */
#define HELP_WIDTH 79 /* --help wraps its text before this column */
#define INT_MAX_DEFAULT 1000000000

enum { SRC_NONE, SRC_FILE, SRC_ENV, SRC_FLAGS };

typedef struct load_s {
    osp_settings_t *s;
    unsigned char *list_src; /* per entry: the source that owns its list */
} load_t;

static const char *config_flag(const osp_settings_t *s) {
    return s->config_flag ? s->config_flag : "config";
}

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

static int parse_bool(const char *v, bool *out) {
    static const char *const yes[] = {"1", "true", "on", "yes"};
    static const char *const no[] = {"0", "false", "off", "no"};
    for (size_t i = 0; i < OSP_ARRAY_LEN(yes); i++) {
        if (!strcmp(v, yes[i]))
            return *out = true, 0;
        if (!strcmp(v, no[i]))
            return *out = false, 0;
    }
    return -1;
}

/* Parses v into the field p by the entry's kind and range; < 0 when bad. */
static int parse_value(const osp_settings_t *s, const osp_setting_t *op,
                       char *p, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (op->kind) {
    case OSP_SET_STR:
        *(const char **)p = v;
        return 0;
    case OSP_SET_BOOL:
        return parse_bool(v, (bool *)p);
    case OSP_SET_FN:
        return op->parse(s->base, v) < 0 ? -1 : 0;
    case OSP_SET_FIELD:
        return op->parse_field(p, v) < 0 ? -1 : 0;
    case OSP_SET_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < op->min ||
            x > (op->max ? op->max : INT_MAX_DEFAULT))
            return -1;
        *(int *)p = (int)x;
        return 0;
    }
    case OSP_SET_I64: {
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < op->min ||
            x > (op->max ? op->max : LLONG_MAX))
            return -1;
        *(int64_t *)p = x;
        return 0;
    }
    case OSP_SET_SIZE:
    case OSP_SET_U64: {
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-')
            return -1;
        if (op->kind == OSP_SET_SIZE)
            *(size_t *)p = (size_t)x;
        else
            *(uint64_t *)p = x;
        return 0;
    }
    case OSP_SET_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x) ||
            !(x >= (double)op->min) || (op->max && x > (double)op->max))
            return -1;
        *(double *)p = x;
        return 0;
    }
    }
    return -1;
}

static int set(load_t *l, const osp_setting_t *op, const char *v,
               const char *from, int src) {
    osp_settings_t *s = l->s;
    if (op->reset) {
        size_t i = (size_t)(op - s->tab);
        if (l->list_src[i] != src) {
            op->reset(s->base);
            l->list_src[i] = (unsigned char)src;
        }
    }
    if (parse_value(s, op, (char *)s->base + op->off, v) == 0)
        return 0;
    /* The accepted values, when the entry says them: a range or a|b|c. */
    char want[64] = "";
    if (op->max)
        snprintf(want, sizeof want, " (%lld..%lld)", op->min, op->max);
    else if (op->arg && strchr(op->arg, '|'))
        snprintf(want, sizeof want, " (%s)", op->arg);
    fprintf(stderr, "%s: %s: bad value '%s' for --%s%s\n", s->cmd, from, v,
            op->name, want);
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

static const osp_setting_t *find_short(const osp_settings_t *s, char c) {
    for (size_t i = 0; i < s->n; i++)
        if (s->tab[i].short_name && s->tab[i].short_name == c)
            return &s->tab[i];
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
    else if (json_is_boolean(v))
        str = json_is_true(v) ? "true" : "false";
    else if (json_is_object(v) && op->kind == OSP_SET_FN) {
        /* A structured setting (the autoscaler's HPA `behavior` block): its
         * row parses the object's JSON text, as it would the flag's. */
        char *text = json_dumps(v, JSON_COMPACT);
        const char *k = text ? keep(s, text, strlen(text)) : NULL;
        free(text);
        return k ? set(l, op, k, path, SRC_FILE) : -1;
    } else {
        fprintf(stderr, "%s: %s: '%s' must be a string, a number or a "
                        "boolean%s\n",
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
        if (!op) {
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

static void env_name(const char *prefix, const char *opt, char *out,
                     size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "%s", prefix);
    for (const char *p = opt; *p && n + 1 < cap; p++)
        out[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z'
                                                ? *p - 'a' + 'A' : *p);
    out[n < cap ? n : cap - 1] = 0;
}

/* A list from the environment: comma-separated items. */
static int set_env_list(load_t *l, const osp_setting_t *op, const char *v,
                        const char *name) {
    op->reset(l->s->base);
    l->list_src[op - l->s->tab] = SRC_ENV;
    for (const char *t = v; *t;) {
        const char *comma = strchr(t, ',');
        size_t len = comma ? (size_t)(comma - t) : strlen(t);
        if (len > 0) {
            const char *k = keep(l->s, t, len);
            if (!k || set(l, op, k, name, SRC_ENV) < 0)
                return -1;
        }
        t += len + (comma != NULL);
    }
    return 0;
}

static int load_env(load_t *l) {
    osp_settings_t *s = l->s;
    for (size_t i = 0; i < s->n; i++) {
        const osp_setting_t *op = &s->tab[i];
        char name[96];
        env_name(op->env_prefix ? op->env_prefix : s->env_prefix, op->name,
                 name, sizeof name);
        const char *v = getenv(name);
        if (!v && op->env_alias && (v = getenv(op->env_alias)))
            snprintf(name, sizeof name, "%s", op->env_alias);
        if (!v)
            continue;
        if (op->reset ? set_env_list(l, op, v, name) < 0
                      : set(l, op, v, name, SRC_ENV) < 0)
            return -1;
    }
    return 0;
}

/* One long option at argv[*i]: "--name", "--name=v" or "--name v". */
static int load_long(load_t *l, int argc, char **argv, int *i) {
    osp_settings_t *s = l->s;
    const char *a = argv[*i] + 2, *eq = strchr(a, '=');
    const osp_setting_t *op = find(s, a, eq ? (size_t)(eq - a) : strlen(a));
    if (!op) {
        osp_settings_fail(s, "unknown option '%s'", argv[*i]);
        return -1;
    }
    const char *v = eq ? eq + 1 : op->kind == OSP_SET_BOOL ? "true" : NULL;
    if (!v && *i + 1 < argc)
        v = argv[++*i];
    if (!v) {
        osp_settings_fail(s, "%s needs a value", argv[*i]);
        return -1;
    }
    return set(l, op, v, "command line", SRC_FLAGS);
}

/* One-letter options at argv[*i], as getopt takes them: "-x v", "-xv", and
 * flags without a value bundled ("-jv"). */
static int load_short(load_t *l, int argc, char **argv, int *i) {
    osp_settings_t *s = l->s;
    for (const char *c = argv[*i] + 1; *c; c++) {
        const osp_setting_t *op = find_short(s, *c);
        if (!op) {
            osp_settings_fail(s, "unknown option '-%c'", *c);
            return -1;
        }
        if (op->kind == OSP_SET_BOOL) {
            if (set(l, op, "true", "command line", SRC_FLAGS) < 0)
                return -1;
            continue;
        }
        const char *v = c[1] ? c + 1 : *i + 1 < argc ? argv[++*i] : NULL;
        if (!v) {
            osp_settings_fail(s, "-%c needs a value", *c);
            return -1;
        }
        return set(l, op, v, "command line", SRC_FLAGS);
    }
    return 0;
}

static int add_arg(osp_settings_t *s, const char *a) {
    if (!s->args_name) {
        osp_settings_fail(s, "unexpected argument '%s'", a);
        return -1;
    }
    const char **args = realloc(s->args, (size_t)(s->n_args + 1) * sizeof *args);
    if (!args) {
        fprintf(stderr, "%s: out of memory\n", s->cmd);
        return -1;
    }
    s->args = args;
    s->args[s->n_args++] = a;
    return 0;
}

/* Pass 1: --help, and the config file's name (flag, else environment). */
static int scan(osp_settings_t *s, int argc, char **argv, const char **cfg) {
    char cfg_env[96], cfg_flag[64];
    env_name(s->env_prefix, config_flag(s), cfg_env, sizeof cfg_env);
    snprintf(cfg_flag, sizeof cfg_flag, "--%s", config_flag(s));
    size_t fl = strlen(cfg_flag);
    *cfg = getenv(cfg_env);
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
        if (!strcmp(argv[i], cfg_flag) && i + 1 < argc)
            *cfg = argv[++i];
        else if (!strncmp(argv[i], cfg_flag, fl) && argv[i][fl] == '=')
            *cfg = argv[i] + fl + 1;
    }
    return 0;
}

static int load_all(load_t *l, int argc, char **argv) {
    osp_settings_t *s = l->s;
    const char *config = NULL;
    if (scan(s, argc, argv, &config) > 0) {
        osp_settings_usage(s, stdout);
        return 1;
    }
    if ((config && load_file(l, config) < 0) || load_env(l) < 0)
        return -1;
    char cfg_flag[64];
    snprintf(cfg_flag, sizeof cfg_flag, "--%s", config_flag(s));
    size_t fl = strlen(cfg_flag);
    bool options = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && !strcmp(a, "--")) {
            options = false;
        } else if (!options || a[0] != '-' || !a[1]) {
            if (add_arg(s, a) < 0)
                return -1;
        } else if (!strcmp(a, cfg_flag) || (!strncmp(a, cfg_flag, fl) &&
                                            a[fl] == '=')) {
            if (!a[fl] && ++i == argc) { /* its value was read in pass 1 */
                osp_settings_fail(s, "%s needs a value", a);
                return -1;
            }
        } else if ((a[1] == '-' ? load_long(l, argc, argv, &i)
                                : load_short(l, argc, argv, &i)) < 0) {
            return -1;
        }
    }
    return 0;
}

bool osp_settings_load(osp_settings_t *s, int argc, char **argv,
                       int *exit_code) {
    load_t l = {s, calloc(s->n ? s->n : 1, 1)};
    int rc = -1;
    if (!l.list_src)
        fprintf(stderr, "%s: out of memory\n", s->cmd);
    else
        rc = load_all(&l, argc, argv);
    free(l.list_src);
    *exit_code = rc > 0 ? OSP_CLI_EXIT_OK : OSP_CLI_EXIT_USAGE;
    return rc == 0;
}

int osp_settings_set(osp_settings_t *s, const osp_setting_t *op, const char *v,
                     const char *from) {
    /* one value at a time cannot accumulate a list */
    OSP_ASSERT(!op->reset);
    load_t l = {s, NULL};
    return set(&l, op, v, from, SRC_FLAGS);
}

int osp_settings_fail(const osp_settings_t *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", s->cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(%s --help lists the options)\n", s->cmd);
    return OSP_CLI_EXIT_USAGE;
}

int osp_settings_token_file(const osp_settings_t *s, const char *flag,
                            const char *path, char *out, size_t cap) {
    osp_err_t err = {0};
    out[0] = 0;
    if (!path || osp_http_bearer_read_file(path, out, cap, &err) == 0)
        return 0;
    return osp_settings_fail(s, "--%s: %s", flag, err.msg);
}

/* ---- --help ----------------------------------------------------------- */

/* Prints text's words from column col on, wrapping before HELP_WIDTH with
 * the next lines indented to indent; runs of spaces and newlines are one
 * space. Ends the line. */
static void wrap(FILE *f, const char *text, int col, int indent) {
    for (const char *h = text; *h;) {
        h += strspn(h, " \n");
        size_t w = strcspn(h, " \n");
        if (!w)
            break;
        if (col + 1 + (int)w > HELP_WIDTH && col > indent) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        fprintf(f, "%s%.*s", col ? " " : "", (int)w, h);
        col += (col ? 1 : 0) + (int)w;
        h += w;
    }
    fputc('\n', f);
}

static const char *arg_name(const osp_setting_t *op) {
    if (op->kind == OSP_SET_BOOL)
        return NULL;
    if (op->arg)
        return op->arg;
    switch (op->kind) {
    case OSP_SET_INT: case OSP_SET_I64: case OSP_SET_SIZE: case OSP_SET_U64:
        return "N";
    case OSP_SET_DOUBLE:
        return "X";
    default:
        return "VALUE";
    }
}

static void print_line(FILE *f, char short_name, const char *name,
                       const char *arg, const char *help) {
    char left[128];
    snprintf(left, sizeof left, "%c%c%s--%s%s%s", short_name ? '-' : ' ',
             short_name ? short_name : ' ', short_name ? ", " : "  ", name,
             arg ? " " : "", arg ? arg : "");
    int col = 2 + HELP_LEFT;
    if ((int)strlen(left) >= HELP_LEFT) /* no room for a gap: own line */
        fprintf(f, "  %s\n%*s", left, col, "");
    else
        fprintf(f, "  %-*s", HELP_LEFT, left);
    wrap(f, help, col, col);
}

void osp_settings_print_rows(const osp_setting_t *tab, size_t n, FILE *f) {
    for (size_t i = 0; i < n; i++) {
        if (tab[i].section) {
            fputc('\n', f);
            wrap(f, tab[i].section, 0, 0);
        }
        print_line(f, tab[i].short_name, tab[i].name, arg_name(&tab[i]),
                   tab[i].help);
    }
}

void osp_settings_usage(const osp_settings_t *s, FILE *f) {
    fprintf(f, "usage: %s %s\n\n%s\noptions:\n", s->cmd, s->synopsis,
            s->about);
    size_t own = 0; /* the command's rows come before the first section */
    while (own < s->n && !s->tab[own].section)
        own++;
    bool lists = false;
    for (size_t i = 0; i < s->n; i++)
        lists = lists || s->tab[i].reset;
    osp_settings_print_rows(s->tab, own, f);
    print_line(f, 0, config_flag(s), "FILE",
               "a JSON object of any of these settings (keys as the option "
               "names, '-' or '_')");
    print_line(f, 'h', "help", NULL, "this text");
    osp_settings_print_rows(s->tab + own, s->n - own, f);
    char env[96], cfg[96], text[1024];
    env_name(s->env_prefix, s->n ? s->tab[0].name : "name", env, sizeof env);
    env_name(s->env_prefix, config_flag(s), cfg, sizeof cfg);
    snprintf(text, sizeof text,
             "Every option may also be set in the environment as %s<NAME> "
             "(%s for --%s)%s or in the --%s file (or %s); flags win over "
             "the environment, which wins over the file.%s",
             s->env_prefix, env, s->n ? s->tab[0].name : "name",
             own < s->n ? ", the engine tuning knobs as OSPREY_<NAME> in "
                          "every command," : "",
             config_flag(s), cfg,
             lists ? " A repeatable option is a comma-separated list in the "
                     "environment, an array in the file." : "");
    fputc('\n', f);
    wrap(f, text, 0, 0);
    if (s->notes) {
        fputc('\n', f);
        wrap(f, s->notes, 0, 0);
    }
    snprintf(text, sizeof text, "exit status: 0 ok, 1 runtime failure (a "
             "failed start included), 2 usage error%s",
             s->exit_notes ? s->exit_notes : "");
    fputc('\n', f);
    wrap(f, text, 0, 0);
}

long osp_settings_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t cur = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = cur;
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > LONG_MAX
               ? LONG_MAX
               : (long)rl.rlim_cur;
}

uint64_t osp_settings_auto_inflight_bytes(char *why, size_t cap) {
    osp_mem_limit_t m;
    osp_mem_limit(&m);
    uint64_t b = osp_http_auto_budget(m.bytes);
    if (m.cgroup_version && m.bytes == m.cgroup_bytes)
        snprintf(why, cap, "cgroup v%d %s %lld / 4", m.cgroup_version,
                 m.cgroup_version == 1 ? "memory.limit_in_bytes"
                                       : "memory.max",
                 (long long)m.cgroup_bytes);
    else if (m.bytes > 0)
        snprintf(why, cap, "physical memory %lld / 4 (no cgroup memory "
                 "limit)", (long long)m.bytes);
    else
        snprintf(why, cap, "fixed minimum (memory size unknown)");
    if (b == OSP_HTTP_MIN_AUTO_BUDGET && m.bytes / 4 < (int64_t)b)
        snprintf(why, cap, "minimum %llu bytes (a quarter of %lld is less)",
                 (unsigned long long)b, (long long)m.bytes);
    return b;
}

void osp_settings_free(osp_settings_t *s) {
    for (size_t i = 0; i < s->n_keep; i++)
        free(s->keep[i]);
    free(s->keep);
    free(s->args);
    s->keep = NULL;
    s->args = NULL;
    s->n_keep = s->cap_keep = 0;
    s->n_args = 0;
}
