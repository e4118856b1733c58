/* parse.c — reads the Prometheus text exposition format (0.0.4): the other
 * half of metrics.c's renderer, used where osprey reads another process's
 * /metrics (the autoscaler's embedded source scrapes the dispatcher and the
 * workers itself when no Prometheus is given).
 *
 * Streaming and allocation-free: each sample goes to a callback with
 * pointers into the text, so a caller sums what it needs without building
 * a model of the page. Strict about sample lines (a scrape that half
 * parses must not turn into a wrong replica count), lenient about what it
 * does not need (comments, HELP and TYPE lines, timestamps). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/metrics.h"

static bool name_char(char c, bool first) {
    return isalpha((unsigned char)c) || c == '_' || c == ':' ||
           (!first && isdigit((unsigned char)c));
}

/* The end of a {...} label set starting at p (just after '{'): quoted
 * values may hold '}' and escaped quotes. Returns NULL when unterminated. */
static const char *labels_end(const char *p, const char *e) {
    bool quoted = false;
    for (; p < e; p++) {
        if (quoted && *p == '\\') {
            p++;
            continue;
        }
        if (*p == '"')
            quoted = !quoted;
        else if (!quoted && *p == '}')
            return p;
    }
    return NULL;
}

static int parse_value(const char *p, const char *e, double *out) {
    char buf[64];
    size_t n = (size_t)(e - p);
    if (!n || n >= sizeof buf)
        return -1;
    memcpy(buf, p, n);
    buf[n] = 0;
    if (!strcmp(buf, "NaN")) {
        *out = NAN;
        return 0;
    }
    if (!strcmp(buf, "+Inf") || !strcmp(buf, "Inf")) {
        *out = INFINITY;
        return 0;
    }
    if (!strcmp(buf, "-Inf")) {
        *out = -INFINITY;
        return 0;
    }
    char *end;
    errno = 0;
    *out = strtod(buf, &end);
    return *end || errno == ERANGE ? -1 : 0;
}

static int parse_line(const char *p, const char *e, osp_metrics_sample_t *s) {
    const char *n0 = p;
    if (p == e || !name_char(*p, true))
        return -1;
    while (p < e && name_char(*p, false))
        p++;
    s->name = n0;
    s->name_len = (size_t)(p - n0);
    s->labels = p;
    s->labels_len = 0;
    if (p < e && *p == '{') {
        const char *end = labels_end(p + 1, e);
        if (!end)
            return -1;
        s->labels = p + 1;
        s->labels_len = (size_t)(end - p - 1);
        p = end + 1;
    }
    if (p == e || (*p != ' ' && *p != '\t'))
        return -1;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    const char *v0 = p;
    while (p < e && *p != ' ' && *p != '\t')
        p++;
    return parse_value(v0, p, &s->value); /* a timestamp may follow */
}

int osp_metrics_parse_text(const char *text, size_t len,
                           osp_metrics_sample_fn fn, void *ud, osp_err_t *err) {
    const char *p = text, *end = text + len;
    int line = 0;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e)
            e = end;
        line++;
        const char *a = p, *b = e;
        p = e + 1;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == '\r' || b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a == b || *a == '#')
            continue;
        osp_metrics_sample_t s;
        if (parse_line(a, b, &s))
            return osp_err_set(err, OSP_EFORMAT,
                               "metrics text line %d: not `name{labels} "
                               "value`: %.*s", line,
                               (int)OSP_MIN((size_t)(b - a), (size_t)80), a);
        int rc = fn(&s, ud);
        if (rc)
            return rc;
    }
    return 0;
}

int osp_metrics_sample_is(const osp_metrics_sample_t *s, const char *name) {
    size_t n = strlen(name);
    return s->name_len == n && !memcmp(s->name, name, n);
}

int osp_metrics_sample_label(const osp_metrics_sample_t *s, const char *key,
                             char *buf, size_t n) {
    const char *p = s->labels, *e = s->labels + s->labels_len;
    size_t klen = strlen(key);
    while (p < e) {
        while (p < e && (*p == ' ' || *p == ','))
            p++;
        const char *k0 = p;
        while (p < e && *p != '=')
            p++;
        size_t kl = (size_t)(p - k0);
        while (kl && k0[kl - 1] == ' ')
            kl--;
        if (p >= e || p + 1 >= e || p[1] != '"')
            return 0;
        p += 2;
        bool match = kl == klen && !memcmp(k0, key, klen);
        size_t o = 0;
        for (; p < e && *p != '"'; p++) {
            char c = *p;
            if (c == '\\' && p + 1 < e) {
                c = *++p;
                if (c == 'n')
                    c = '\n';
            }
            if (match && n && o + 1 < n)
                buf[o++] = c;
        }
        p++;
        if (match) {
            if (n)
                buf[o] = 0;
            return 1;
        }
    }
    return 0;
}
