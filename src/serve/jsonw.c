/* jsonw.c — a small JSON text writer into a request's arena, for the hot
 * responses (classify results, V2 output tensors): no tree of jansson
 * objects to build and free per score, one buffer that the arena releases
 * with the request. Strings are escaped for JSON (quotes, backslashes,
 * control characters); numbers are printed with a fixed number of
 * significant digits and never as NaN/Inf (not JSON). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "serve/serve_int.h"

void osp__serve_jw_init(osp__serve_jw_t *w, osp_arena_t *a, size_t cap) {
    w->a = a;
    w->len = 0;
    w->oom = false;
    w->cap = cap < 64 ? 64 : cap;
    w->buf = osp_arena_alloc(a, w->cap);
    if (!w->buf)
        w->oom = true;
}

/* Room for `more` bytes plus a NUL; grows by doubling into a new arena
 * block (the old one stays in the arena until the request ends: at most
 * as much again as the final text). */
static bool reserve(osp__serve_jw_t *w, size_t more) {
    if (w->oom)
        return false;
    if (w->len + more + 1 <= w->cap)
        return true;
    size_t cap = w->cap;
    while (cap < w->len + more + 1) {
        if (cap > SIZE_MAX / 2) {
            w->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *nb = osp_arena_alloc(w->a, cap);
    if (!nb) {
        w->oom = true;
        return false;
    }
    memcpy(nb, w->buf, w->len);
    w->buf = nb;
    w->cap = cap;
    return true;
}

void osp__serve_jw_raw(osp__serve_jw_t *w, const char *s, size_t n) {
    if (!reserve(w, n))
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = 0;
}

void osp__serve_jw_lit(osp__serve_jw_t *w, const char *s) {
    osp__serve_jw_raw(w, s, strlen(s));
}

void osp__serve_jw_str(osp__serve_jw_t *w, const char *s) {
    size_t n = strlen(s);
    if (!reserve(w, n * 6 + 2))
        return;
    char *o = w->buf + w->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            o += snprintf(o, 7, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = 0;
    w->len = (size_t)(o - w->buf);
}

void osp__serve_jw_num(osp__serve_jw_t *w, double v, int digits) {
    if (!isfinite(v))
        v = 0; /* JSON has no NaN/Inf; scores never are after softmax */
    if (!reserve(w, 32))
        return;
    int k = snprintf(w->buf + w->len, 32, "%.*g", digits, v);
    if (k > 0 && k < 32)
        w->len += (size_t)k;
}

void osp__serve_jw_int(osp__serve_jw_t *w, long long v) {
    if (!reserve(w, 24))
        return;
    int k = snprintf(w->buf + w->len, 24, "%lld", v);
    if (k > 0 && k < 24)
        w->len += (size_t)k;
}
