/* profile.c — request-rate profiles for the open-loop load generator:
 * segments with a linearly changing rate, built from --rate/--duration,
 * --profile steps ("10:60s,50:60s"), --ramp ("FROM:TO:DURATION") or a trace
 * file (one number per line = requests in that second, the seed design's
 * workload list).
 *
 * Parsing is strict — a typo in a load profile silently turning into a
 * different load would invalidate a benchmark — so every malformed piece is
 * an error naming the piece (and the trace line). The profile also answers
 * "how many requests are due by time t" (the integral of the rate) and its
 * inverse, which the arrival schedule (arrivals.c) is built on. */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "osprey/load.h"

typedef struct seg_s {
    double from, to;   /* requests per second at the start / end */
    double dur;        /* seconds */
    double t0;         /* start time */
    double c0;         /* expected requests before t0 */
} seg_t;

struct osp_load_profile_s {
    seg_t *segs;
    int n, cap;
    double total_s;
};

osp_load_profile_t *osp_load_profile_create(void) {
    return calloc(1, sizeof(osp_load_profile_t));
}

void osp_load_profile_destroy(osp_load_profile_t *p) {
    if (!p)
        return;
    free(p->segs);
    free(p);
}

int osp_load_profile_segments(const osp_load_profile_t *p) { return p->n; }
double osp_load_profile_duration_s(const osp_load_profile_t *p) { return p->total_s; }

static double seg_count(const seg_t *s) {
    return 0.5 * (s->from + s->to) * s->dur;
}

int osp_load_profile_add(osp_load_profile_t *p, double from, double to, double dur,
                    osp_err_t *err) {
    if (!isfinite(from) || !isfinite(to) || from < 0 || to < 0 ||
        from > OSP_LOAD_PROFILE_MAX_RATE_PER_S || to > OSP_LOAD_PROFILE_MAX_RATE_PER_S)
        return osp_err_set(err, OSP_EINVAL,
                           "rate must be between 0 and %g requests/s",
                           OSP_LOAD_PROFILE_MAX_RATE_PER_S);
    if (!isfinite(dur) || !(dur > 0))
        return osp_err_set(err, OSP_EINVAL, "duration must be positive");
    if (p->total_s + dur > OSP_LOAD_PROFILE_MAX_DURATION_S)
        return osp_err_set(err, OSP_ELIMIT,
                           "profile longer than %g s", OSP_LOAD_PROFILE_MAX_DURATION_S);
    if (p->n >= OSP_LOAD_PROFILE_MAX_SEGMENTS)
        return osp_err_set(err, OSP_ELIMIT, "more than %d profile segments",
                           OSP_LOAD_PROFILE_MAX_SEGMENTS);
    seg_t *segs = osp_grow(p->segs, &p->cap, p->n, sizeof *segs, 16);
    if (!segs)
        return osp_err_set(err, OSP_ENOMEM, "out of memory");
    p->segs = segs;
    seg_t *s = &segs[p->n];
    s->from = from;
    s->to = to;
    s->dur = dur;
    s->t0 = p->total_s;
    s->c0 = p->n ? segs[p->n - 1].c0 + seg_count(&segs[p->n - 1]) : 0;
    p->n++;
    p->total_s += dur;
    return 0;
}

/* The segment holding time t (the last one for t past the end). */
static int seg_at(const osp_load_profile_t *p, double t) {
    int lo = 0, hi = p->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (p->segs[mid].t0 <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

double osp_load_profile_rate_at(const osp_load_profile_t *p, double t) {
    if (!p->n || !(t >= 0) || t >= p->total_s)
        return 0;
    const seg_t *s = &p->segs[seg_at(p, t)];
    return s->from + (s->to - s->from) * (t - s->t0) / s->dur;
}

double osp_load_profile_count(const osp_load_profile_t *p, double t) {
    if (!p->n || !(t > 0))
        return 0;
    if (t >= p->total_s)
        return p->segs[p->n - 1].c0 + seg_count(&p->segs[p->n - 1]);
    const seg_t *s = &p->segs[seg_at(p, t)];
    double tau = t - s->t0;
    return s->c0 + s->from * tau + (s->to - s->from) * tau * tau /
                                       (2 * s->dur);
}

/* Within segment s, the tau with from*tau + k*tau^2 = m, k = slope/2. The
 * form 2m / (from + sqrt(from^2 + 4km)) is the stable root of the quadratic
 * (no cancellation when k is tiny, and it covers from = 0). */
static double seg_solve(const seg_t *s, double m) {
    if (m <= 0)
        return 0;
    double k = (s->to - s->from) / (2 * s->dur);
    double disc = s->from * s->from + 4 * k * m;
    if (disc < 0)
        disc = 0;
    double den = s->from + sqrt(disc);
    if (!(den > 0))
        return s->dur;
    double tau = 2 * m / den;
    return tau > s->dur ? s->dur : tau;
}

double osp_load_profile_time_of(const osp_load_profile_t *p, double n) {
    if (!p->n)
        return INFINITY;
    if (n <= 0)
        return 0;
    const seg_t *last = &p->segs[p->n - 1];
    if (n > last->c0 + seg_count(last))
        return INFINITY;
    /* The last segment whose start count is below n (segments with zero
     * rate have the same c0 as their successor and are skipped over). */
    int lo = 0, hi = p->n - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (p->segs[mid].c0 < n)
            lo = mid;
        else
            hi = mid - 1;
    }
    const seg_t *s = &p->segs[lo];
    return s->t0 + seg_solve(s, n - s->c0);
}

/* A strict non-negative decimal number filling [s, end). */
static int parse_number(const char *s, size_t len, double *out) {
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    /* strtod also takes "inf", "nan", hex and leading spaces: refuse them. */
    for (size_t i = 0; i < len; i++)
        if (!isdigit((unsigned char)buf[i]) && buf[i] != '.' && buf[i] != 'e' &&
            buf[i] != 'E' && buf[i] != '+' && buf[i] != '-')
            return -1;
    if (!isdigit((unsigned char)buf[0]) && buf[0] != '.')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || *end || !isfinite(v) || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_duration_n(const char *s, size_t len, double *out) {
    size_t num = len;
    double mul = 1;
    if (len >= 2 && !strncmp(s + len - 2, "ms", 2))
        num = len - 2, mul = 1e-3;
    else if (len >= 1 && s[len - 1] == 's')
        num = len - 1;
    else if (len >= 1 && s[len - 1] == 'm')
        num = len - 1, mul = 60;
    else if (len >= 1 && s[len - 1] == 'h')
        num = len - 1, mul = 3600;
    double v;
    if (parse_number(s, num, &v) < 0 || !(v > 0))
        return -1;
    *out = v * mul;
    return 0;
}

int osp_load_parse_duration_s(const char *s, double *out, osp_err_t *err) {
    if (!s || parse_duration_n(s, strlen(s), out) < 0)
        return osp_err_set(err, OSP_EINVAL,
                           "bad duration '%s' (a positive number with an "
                           "optional unit ms, s, m or h: 60s, 2m, 1.5)",
                           s ? s : "");
    if (*out > OSP_LOAD_PROFILE_MAX_DURATION_S)
        return osp_err_set(err, OSP_ELIMIT, "duration '%s' is longer than %g s",
                           s, OSP_LOAD_PROFILE_MAX_DURATION_S);
    return 0;
}

/* Splits [s, s+len) at ':' into at most max fields; returns the count or -1
 * when there are more. */
static int split_colon(const char *s, size_t len, const char **f, size_t *fl,
                       int max) {
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ':') {
            if (n == max)
                return -1;
            f[n] = s + start;
            fl[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    return n;
}

int osp_load_profile_parse_steps(osp_load_profile_t *p, const char *spec,
                            osp_err_t *err) {
    if (!spec || !*spec)
        return osp_err_set(err, OSP_EINVAL, "empty --profile (expected "
                           "RATE:DURATION[,RATE:DURATION...], e.g. 10:60s,50:60s)");
    const char *s = spec;
    for (int step = 1;; step++) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        const char *f[2];
        size_t fl[2];
        double rate, dur;
        if (split_colon(s, len, f, fl, 2) != 2 ||
            parse_number(f[0], fl[0], &rate) < 0 ||
            parse_duration_n(f[1], fl[1], &dur) < 0)
            return osp_err_set(err, OSP_EINVAL,
                               "--profile step %d '%.*s' is not RATE:DURATION "
                               "(e.g. 50:60s)", step, (int)len, s);
        int rc = osp_load_profile_add(p, rate, rate, dur, err);
        if (rc < 0)
            return osp_err_prefix(err, "--profile step %d '%.*s': ", step,
                                  (int)len, s);
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

int osp_load_profile_parse_ramp(osp_load_profile_t *p, const char *spec,
                           osp_err_t *err) {
    const char *f[3];
    size_t fl[3];
    double from, to, dur;
    if (!spec || split_colon(spec, strlen(spec), f, fl, 3) != 3 ||
        parse_number(f[0], fl[0], &from) < 0 ||
        parse_number(f[1], fl[1], &to) < 0 ||
        parse_duration_n(f[2], fl[2], &dur) < 0)
        return osp_err_set(err, OSP_EINVAL,
                           "--ramp '%s' is not FROM:TO:DURATION (e.g. "
                           "10:200:2m)", spec ? spec : "");
    int rc = osp_load_profile_add(p, from, to, dur, err);
    return rc < 0 ? osp_err_prefix(err, "--ramp '%s': ", spec) : 0;
}

/* One line of a trace: [a, b) trimmed, its number, and where the next
 * starts. Returns 0 at the end of the text. */
typedef struct line_s {
    size_t a, b, next;
    int no;
} line_t;

static int next_line(const char *text, size_t len, line_t *l) {
    size_t i = l->next;
    if (i >= len)
        return 0;
    size_t e = i;
    while (e < len && text[e] != '\n')
        e++;
    l->no++;
    l->a = i;
    l->b = e;
    while (l->b > l->a && (text[l->b - 1] == '\r' || text[l->b - 1] == ' ' ||
                           text[l->b - 1] == '\t'))
        l->b--;
    while (l->a < l->b && (text[l->a] == ' ' || text[l->a] == '\t'))
        l->a++;
    l->next = e + 1;
    return 1;
}

static bool line_is_comment(const char *text, const line_t *l) {
    return l->a < l->b && text[l->a] == '#';
}

/* Field k (0-based, comma-separated) of a line; false when absent. */
static bool csv_field(const char *text, const line_t *l, int k, size_t *fa,
                      size_t *fb) {
    size_t a = l->a;
    for (int i = 0; i < k; i++) {
        const char *c = memchr(text + a, ',', l->b - a);
        if (!c)
            return false;
        a = (size_t)(c - text) + 1;
    }
    const char *c = memchr(text + a, ',', l->b - a);
    *fa = a;
    *fb = c ? (size_t)(c - text) : l->b;
    while (*fa < *fb && text[*fa] == ' ')
        (*fa)++;
    while (*fb > *fa && text[*fb - 1] == ' ')
        (*fb)--;
    return true;
}

static int csv_column(const char *text, const line_t *hdr, const char *name) {
    size_t fa, fb;
    for (int k = 0; csv_field(text, hdr, k, &fa, &fb); k++)
        if (fb - fa == strlen(name) && !memcmp(text + fa, name, fb - fa))
            return k;
    return -1;
}

static int csv_number(const char *text, const line_t *l, int col,
                      const char *name, const char *what, double *v,
                      osp_err_t *err) {
    size_t fa, fb;
    if (!csv_field(text, l, col, &fa, &fb) ||
        memchr(text + fa, 0, fb - fa) || parse_number(text + fa, fb - fa, v))
        return osp_err_set(err, OSP_EFORMAT,
                           "%s:%d: %s is not a non-negative number", name,
                           l->no, what);
    return 0;
}

/* CSV traces: `t_s,rps` rows (the rate from t_s until the next row's t_s;
 * the last row lasts one second), or `osprey load`'s timeseries.csv
 * (`second,...,sent,...`: one second per row, the rate is what was sent). */
static int parse_csv(osp_load_profile_t *p, const char *text, size_t len,
                     const char *name, line_t l, osp_err_t *err) {
    int c_t = csv_column(text, &l, "t_s"), c_r = csv_column(text, &l, "rps");
    int c_sent = csv_column(text, &l, "sent");
    bool rows = c_t >= 0 && c_r >= 0;
    if (!rows && (csv_column(text, &l, "second") != 0 || c_sent < 0))
        return osp_err_set(err, OSP_EFORMAT,
                           "%s:%d: a CSV trace needs the columns t_s,rps (or "
                           "is osprey load's timeseries.csv)", name, l.no);
    double prev_t = 0, prev_r = 0;
    int n = 0, rc;
    while (next_line(text, len, &l)) {
        if (line_is_comment(text, &l) || l.a == l.b)
            continue;
        double t, r;
        if (!rows) {
            if ((rc = csv_number(text, &l, c_sent, name, "sent", &r, err)))
                return rc;
            if ((rc = osp_load_profile_add(p, r, r, 1.0, err)) < 0)
                return osp_err_prefix(err, "%s:%d: ", name, l.no);
            n++;
            continue;
        }
        if ((rc = csv_number(text, &l, c_t, name, "t_s", &t, err)) ||
            (rc = csv_number(text, &l, c_r, name, "rps", &r, err)))
            return rc;
        if (n == 0 && t != 0)
            return osp_err_set(err, OSP_EFORMAT,
                               "%s:%d: the first row must be at t_s 0", name,
                               l.no);
        if (n > 0 && !(t > prev_t))
            return osp_err_set(err, OSP_EFORMAT,
                               "%s:%d: t_s %g does not follow %g", name, l.no,
                               t, prev_t);
        if (n > 0 && (rc = osp_load_profile_add(p, prev_r, prev_r, t - prev_t,
                                           err)) < 0)
            return osp_err_prefix(err, "%s:%d: ", name, l.no);
        prev_t = t;
        prev_r = r;
        n++;
    }
    if (rows && n && (rc = osp_load_profile_add(p, prev_r, prev_r, 1.0, err)) < 0)
        return osp_err_prefix(err, "%s: last row: ", name);
    if (!n)
        return osp_err_set(err, OSP_EFORMAT, "%s: no rows in the trace", name);
    return 0;
}

int osp_load_profile_parse_trace(osp_load_profile_t *p, const char *text, size_t len,
                            const char *name, osp_err_t *err) {
    if (!name)
        name = "trace";
    int seconds = 0;
    line_t l = {0};
    while (next_line(text, len, &l)) {
        if (line_is_comment(text, &l))
            continue;
        if (l.a == l.b)
            return osp_err_set(err, OSP_EFORMAT,
                               "%s:%d: empty line (write 0 for a second "
                               "without requests)", name, l.no);
        if (!seconds && isalpha((unsigned char)text[l.a]))
            return parse_csv(p, text, len, name, l, err);
        double v;
        if (memchr(text + l.a, 0, l.b - l.a) ||
            parse_number(text + l.a, l.b - l.a, &v) < 0)
            return osp_err_set(err, OSP_EFORMAT,
                               "%s:%d: '%.*s' is not a non-negative number of "
                               "requests", name, l.no,
                               (int)OSP_MIN(l.b - l.a, (size_t)40),
                               text + l.a);
        int rc = osp_load_profile_add(p, v, v, 1.0, err);
        if (rc < 0)
            return osp_err_prefix(err, "%s:%d: ", name, l.no);
        seconds++;
    }
    if (!seconds)
        return osp_err_set(err, OSP_EFORMAT,
                           "%s: no seconds in the trace (one number per "
                           "line = requests in that second)", name);
    return 0;
}

int osp_load_profile_load_trace(osp_load_profile_t *p, const char *path,
                           osp_err_t *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = osp_read_file(path, OSP_LOAD_PROFILE_MAX_TRACE_BYTES, &buf, &len, err);
    if (rc < 0)
        return rc;
    rc = osp_load_profile_parse_trace(p, (const char *)buf, len, path, err);
    free(buf);
    return rc;
}
