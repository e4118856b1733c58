/* metrics.c — the metrics registry (counters, gauges, histograms with labels),
 * Prometheus text exposition 0.0.4 and process metrics from /proc.
 *
 * Why our own: the worker, dispatcher and autoscaler all export metrics whose
 * names are a contract (issue 4), and the C Prometheus clients are either
 * unmaintained or pull in a web server of their own. The format is small.
 *
 * Concurrency: series values are atomics (doubles stored as their bit pattern
 * and updated with compare-and-swap), so the request path never takes a lock
 * once it holds a series pointer. A family's mutex guards its series array
 * (creation and rendering). Histogram buckets are stored non-cumulative and
 * summed at render time; _count is the sum of the buckets, so the +Inf bucket
 * always equals _count even while observations race the render. */
#include "osprey/metrics.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct osp_series_s {
    osp_metric_t *fam;
    char **values;               /* n_labels copies */
    _Atomic uint64_t val_bits;   /* counter/gauge value (double bits) */
    _Atomic uint64_t sum_bits;   /* histogram sum (double bits) */
    _Atomic uint64_t *buckets;   /* histogram: n_bounds + 1 counts, the last
                                    one for +Inf; not cumulative */
};

struct osp_metric_s {
    osp_metric_type_t type;
    char *name, *help;
    int n_labels;
    char *labels[OSP_METRICS_MAX_LABELS];
    double bounds[OSP_METRICS_MAX_BUCKETS];
    int n_bounds;
    int max_series;
    pthread_mutex_t mu;          /* guards series / n_series / cap_series */
    osp_series_t **series;
    int n_series, cap_series;
    _Atomic unsigned long long dropped;
    osp_metric_t *next;          /* registration order */
};

struct osp_metrics_s {
    osp_metric_t *first, *last;
    int process_metrics;
};

/* The Prometheus client libraries' default latency buckets, seconds. */
static const double default_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                        0.5,   1.0,  2.5,   5.0,  10.0};

const char *osp_metric_type_name(osp_metric_type_t t) {
    switch (t) {
    case OSP_METRIC_COUNTER: return "counter";
    case OSP_METRIC_GAUGE: return "gauge";
    case OSP_METRIC_HISTOGRAM: return "histogram";
    default: return "untyped";
    }
}

static inline uint64_t d2u(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
static inline double u2d(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void atomic_add_double(_Atomic uint64_t *p, double v) {
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        p, &old, d2u(u2d(old) + v), memory_order_relaxed,
        memory_order_relaxed)) {
    }
}

osp_metrics_t *osp_metrics_create(int process_metrics) {
    osp_metrics_t *r = calloc(1, sizeof *r);
    if (r)
        r->process_metrics = process_metrics;
    return r;
}

static void series_free(osp_series_t *s, int n_labels) {
    if (!s)
        return;
    if (s->values)
        for (int i = 0; i < n_labels; i++)
            free(s->values[i]);
    free(s->values);
    free(s->buckets);
    free(s);
}

static void family_free(osp_metric_t *m) {
    for (int i = 0; i < m->n_series; i++)
        series_free(m->series[i], m->n_labels);
    free(m->series);
    for (int i = 0; i < m->n_labels; i++)
        free(m->labels[i]);
    free(m->name);
    free(m->help);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void osp_metrics_destroy(osp_metrics_t *r) {
    if (!r)
        return;
    osp_metric_t *m = r->first;
    while (m) {
        osp_metric_t *next = m->next;
        family_free(m);
        m = next;
    }
    free(r);
}

static bool valid_name(const char *s, bool colon) {
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '_' || (colon && c == ':') ||
                  (p != s && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

/* Creates a series (label values copied); caller holds m->mu or owns m. */
static osp_series_t *series_new(osp_metric_t *m, const char *const *values) {
    osp_series_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fam = m;
    if (m->n_labels) {
        s->values = calloc((size_t)m->n_labels, sizeof(char *));
        if (!s->values)
            goto fail;
        for (int i = 0; i < m->n_labels; i++)
            if (!(s->values[i] = strdup(values[i] ? values[i] : "")))
                goto fail;
    }
    if (m->type == OSP_METRIC_HISTOGRAM) {
        s->buckets = calloc((size_t)m->n_bounds + 1, sizeof *s->buckets);
        if (!s->buckets)
            goto fail;
    }
    if (m->n_series == m->cap_series) {
        int cap = m->cap_series ? m->cap_series * 2 : 4;
        osp_series_t **ns = realloc(m->series, sizeof *ns * (size_t)cap);
        if (!ns)
            goto fail;
        m->series = ns;
        m->cap_series = cap;
    }
    m->series[m->n_series++] = s;
    return s;
fail:
    series_free(s, m->n_labels);
    return NULL;
}

osp_metric_t *osp_metrics_add(osp_metrics_t *r, osp_metric_type_t type,
                              const char *name, const char *help,
                              int n_labels, const char *const *label_names,
                              const double *bounds, int n_bounds,
                              int max_series, osp_err_t *err) {
    osp_metric_t *m = NULL;
    if (!r || (unsigned)type >= OSP_METRIC_TYPE_COUNT) {
        osp_err_set(err, OSP_EINVAL, "metrics: bad registry or type");
        return NULL;
    }
    if (!valid_name(name, true)) {
        osp_err_set(err, OSP_EINVAL, "metrics: invalid metric name '%s'",
                    name ? name : "(null)");
        return NULL;
    }
    if (n_labels < 0 || n_labels > OSP_METRICS_MAX_LABELS ||
        (n_labels && !label_names)) {
        osp_err_set(err, OSP_ELIMIT, "metrics: %s: %d labels (max %d)", name,
                    n_labels, OSP_METRICS_MAX_LABELS);
        return NULL;
    }
    for (osp_metric_t *o = r->first; o; o = o->next)
        if (!strcmp(o->name, name)) {
            osp_err_set(err, OSP_EINVAL, "metrics: '%s' registered twice",
                        name);
            return NULL;
        }
    for (int i = 0; i < n_labels; i++) {
        const char *l = label_names[i];
        if (!valid_name(l, false) || !strncmp(l, "__", 2) ||
            (type == OSP_METRIC_HISTOGRAM && !strcmp(l, "le"))) {
            osp_err_set(err, OSP_EINVAL, "metrics: %s: invalid label name '%s'",
                        name, l ? l : "(null)");
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(label_names[j], l)) {
                osp_err_set(err, OSP_EINVAL,
                            "metrics: %s: label '%s' repeated", name, l);
                return NULL;
            }
    }
    if (type == OSP_METRIC_HISTOGRAM) {
        if (!bounds) {
            bounds = default_bounds;
            n_bounds = (int)OSP_ARRAY_LEN(default_bounds);
        }
        if (n_bounds < 0 || n_bounds > OSP_METRICS_MAX_BUCKETS) {
            osp_err_set(err, OSP_ELIMIT, "metrics: %s: %d buckets (max %d)",
                        name, n_bounds, OSP_METRICS_MAX_BUCKETS);
            return NULL;
        }
        for (int i = 0; i < n_bounds; i++)
            if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1]))) {
                osp_err_set(err, OSP_EINVAL,
                            "metrics: %s: bucket bounds must be finite and "
                            "increasing (bound %d)", name, i);
                return NULL;
            }
    } else {
        n_bounds = 0;
    }
    m = calloc(1, sizeof *m);
    if (!m)
        goto oom;
    pthread_mutex_init(&m->mu, NULL);
    m->type = type;
    m->max_series = max_series > 0 ? max_series : OSP_METRICS_DEFAULT_MAX_SERIES;
    if (!(m->name = strdup(name)) || !(m->help = strdup(help ? help : "")))
        goto oom;
    for (int i = 0; i < n_labels; i++) {
        if (!(m->labels[i] = strdup(label_names[i])))
            goto oom;
        m->n_labels = i + 1;
    }
    m->n_labels = n_labels;
    if (n_bounds)
        memcpy(m->bounds, bounds, sizeof(double) * (size_t)n_bounds);
    m->n_bounds = n_bounds;
    if (n_labels == 0 && !series_new(m, NULL))
        goto oom;
    if (r->last)
        r->last->next = m;
    else
        r->first = m;
    r->last = m;
    return m;
oom:
    if (m)
        family_free(m);
    osp_err_set(err, OSP_ENOMEM, "metrics: %s: out of memory", name);
    return NULL;
}

osp_series_t *osp_metric_series(osp_metric_t *m, const char *const *values) {
    if (!m)
        return NULL;
    if (m->n_labels == 0)
        return m->series[0];
    if (!values)
        return NULL;
    osp_series_t *found = NULL;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n_series && !found; i++) {
        osp_series_t *s = m->series[i];
        int j = 0;
        while (j < m->n_labels &&
               !strcmp(s->values[j], values[j] ? values[j] : ""))
            j++;
        if (j == m->n_labels)
            found = s;
    }
    if (!found) {
        if (m->n_series < m->max_series)
            found = series_new(m, values);
        if (!found)
            atomic_fetch_add(&m->dropped, 1);
    }
    pthread_mutex_unlock(&m->mu);
    return found;
}

osp_series_t *osp_metric_series0(osp_metric_t *m) {
    return m && m->n_labels == 0 ? m->series[0] : NULL;
}

int osp_metrics_add_http_bytes(osp_metrics_t *r, osp_series_t **rx,
                               osp_series_t **tx, osp_err_t *err) {
    osp_metric_t *in = osp_metrics_add(
        r, OSP_METRIC_COUNTER, "osprey_http_received_bytes_total",
        "HTTP request body bytes received (every route).", 0, NULL, NULL, 0,
        0, err);
    osp_metric_t *out = in ? osp_metrics_add(
        r, OSP_METRIC_COUNTER, "osprey_http_sent_bytes_total",
        "HTTP response body bytes sent (every route).", 0, NULL, NULL, 0, 0,
        err) : NULL;
    if (!out)
        return err ? err->code : OSP_EINTERNAL;
    *rx = osp_metric_series0(in);
    *tx = osp_metric_series0(out);
    return 0;
}

unsigned long long osp_metric_dropped(const osp_metric_t *m) {
    return m ? atomic_load(&((osp_metric_t *)m)->dropped) : 0;
}

void osp_series_add(osp_series_t *s, double v) {
    if (!s || isnan(v))
        return;
    if (s->fam->type == OSP_METRIC_COUNTER && v < 0)
        return;
    if (s->fam->type == OSP_METRIC_HISTOGRAM)
        return;
    atomic_add_double(&s->val_bits, v);
}

void osp_series_set(osp_series_t *s, double v) {
    if (!s || s->fam->type != OSP_METRIC_GAUGE)
        return;
    atomic_store_explicit(&s->val_bits, d2u(v), memory_order_relaxed);
}

void osp_series_observe(osp_series_t *s, double v) {
    if (!s || s->fam->type != OSP_METRIC_HISTOGRAM || isnan(v))
        return;
    const osp_metric_t *m = s->fam;
    /* First bound >= v (Prometheus buckets are "le"), else +Inf. */
    int lo = 0, hi = m->n_bounds;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v <= m->bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_add_double(&s->sum_bits, v);
    atomic_fetch_add_explicit(&s->buckets[lo], 1, memory_order_relaxed);
}

double osp_series_value(const osp_series_t *s) {
    if (!s)
        return 0;
    osp_series_t *w = (osp_series_t *)s;
    if (s->fam->type != OSP_METRIC_HISTOGRAM)
        return u2d(atomic_load_explicit(&w->val_bits, memory_order_relaxed));
    uint64_t n = 0;
    for (int i = 0; i <= s->fam->n_bounds; i++)
        n += atomic_load_explicit(&w->buckets[i], memory_order_relaxed);
    return (double)n;
}

/* ---- rendering -------------------------------------------------------- */

typedef struct sbuf_s {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf_t;

static void sb_reserve(sbuf_t *b, size_t extra) {
    if (b->oom || b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void sb_put(sbuf_t *b, const char *s, size_t n) {
    sb_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf_t *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sbuf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    sb_reserve(b, (size_t)n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Shortest decimal that reads back as the same double; integers without an
 * exponent up to 2^53 so that counters read naturally. */
static void sb_double(sbuf_t *b, double v) {
    if (isnan(v)) {
        sb_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        sb_str(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        sb_printf(b, "%.0f", v);
        return;
    }
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    sb_str(b, tmp);
}

/* HELP text escapes backslash and newline; label values also escape '"'. */
static void sb_escaped(sbuf_t *b, const char *s, bool quote) {
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            sb_str(b, "\\\\");
        else if (*p == '\n')
            sb_str(b, "\\n");
        else if (quote && *p == '"')
            sb_str(b, "\\\"");
        else
            sb_put(b, p, 1);
    }
}

/* name{l1="v1",...[,le="x"]} — extra_le NULL for no le label. */
static void sb_series_name(sbuf_t *b, const osp_metric_t *m, const char *suffix,
                           const osp_series_t *s, const char *extra_le) {
    sb_str(b, m->name);
    sb_str(b, suffix);
    if (m->n_labels == 0 && !extra_le)
        return;
    sb_str(b, "{");
    for (int i = 0; i < m->n_labels; i++) {
        if (i)
            sb_str(b, ",");
        sb_str(b, m->labels[i]);
        sb_str(b, "=\"");
        sb_escaped(b, s->values[i], true);
        sb_str(b, "\"");
    }
    if (extra_le) {
        if (m->n_labels)
            sb_str(b, ",");
        sb_str(b, "le=\"");
        sb_str(b, extra_le);
        sb_str(b, "\"");
    }
    sb_str(b, "}");
}

static void render_family(sbuf_t *b, osp_metric_t *m) {
    sb_str(b, "# HELP ");
    sb_str(b, m->name);
    sb_str(b, " ");
    sb_escaped(b, m->help, false);
    sb_str(b, "\n# TYPE ");
    sb_str(b, m->name);
    sb_str(b, " ");
    sb_str(b, osp_metric_type_name(m->type));
    sb_str(b, "\n");
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n_series; i++) {
        osp_series_t *s = m->series[i];
        if (m->type != OSP_METRIC_HISTOGRAM) {
            sb_series_name(b, m, "", s, NULL);
            sb_str(b, " ");
            sb_double(b, u2d(atomic_load(&s->val_bits)));
            sb_str(b, "\n");
            continue;
        }
        uint64_t cum = 0;
        /* Sum read before the buckets: a racing observation may show in the
         * buckets and not the sum, never a sum without its count. */
        double sum = u2d(atomic_load(&s->sum_bits));
        for (int k = 0; k <= m->n_bounds; k++) {
            cum += atomic_load(&s->buckets[k]);
            char le[40];
            if (k == m->n_bounds) {
                snprintf(le, sizeof le, "+Inf");
            } else {
                sbuf_t t = {0};
                sb_double(&t, m->bounds[k]);
                snprintf(le, sizeof le, "%s", t.p ? t.p : "0");
                free(t.p);
            }
            sb_series_name(b, m, "_bucket", s, le);
            sb_printf(b, " %llu\n", (unsigned long long)cum);
        }
        sb_series_name(b, m, "_sum", s, NULL);
        sb_str(b, " ");
        sb_double(b, sum);
        sb_str(b, "\n");
        sb_series_name(b, m, "_count", s, NULL);
        sb_printf(b, " %llu\n", (unsigned long long)cum);
    }
    pthread_mutex_unlock(&m->mu);
}

static void render_one(sbuf_t *b, const char *name, const char *type,
                       const char *help, double v) {
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s ", name, help, name, type,
              name);
    sb_double(b, v);
    sb_str(b, "\n");
}

/* Reads /proc/self/stat fields (1-based numbering as in proc(5)); the comm
 * field may contain spaces and parentheses, so parsing starts after the last
 * ')'. Returns 0 when all wanted fields were found. */
static int read_proc_stat(unsigned long long *utime, unsigned long long *stime,
                          unsigned long long *starttime,
                          unsigned long long *vsize, long long *rss) {
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    /* Field 3 (state) is the first token after ')'. */
    int field = 2;
    int got = 0;
    char *save = NULL;
    for (char *tok = strtok_r(p, " ", &save); tok;
         tok = strtok_r(NULL, " ", &save)) {
        field++;
        switch (field) {
        case 14: *utime = strtoull(tok, NULL, 10); got++; break;
        case 15: *stime = strtoull(tok, NULL, 10); got++; break;
        case 22: *starttime = strtoull(tok, NULL, 10); got++; break;
        case 23: *vsize = strtoull(tok, NULL, 10); got++; break;
        case 24: *rss = strtoll(tok, NULL, 10); got++; break;
        default: break;
        }
        if (field >= 24)
            break;
    }
    return got == 5 ? 0 : -1;
}

static long long read_boot_time_s(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[512];
    long long bt = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "btime ", 6)) {
            bt = strtoll(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return bt;
}

static long count_open_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

static void render_process(sbuf_t *b) {
    unsigned long long ut = 0, st = 0, start = 0, vsize = 0;
    long long rss = 0;
    long tck = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (tck <= 0)
        tck = 100;
    if (read_proc_stat(&ut, &st, &start, &vsize, &rss) == 0) {
        render_one(b, "process_cpu_seconds_total", "counter",
                   "Total user and system CPU time spent in seconds.",
                   (double)(ut + st) / (double)tck);
        render_one(b, "process_resident_memory_bytes", "gauge",
                   "Resident memory size in bytes.", (double)rss * (double)page);
        render_one(b, "process_virtual_memory_bytes", "gauge",
                   "Virtual memory size in bytes.", (double)vsize);
        long long bt = read_boot_time_s();
        if (bt >= 0)
            render_one(b, "process_start_time_seconds", "gauge",
                       "Start time of the process since unix epoch in seconds.",
                       (double)bt + (double)start / (double)tck);
    }
    long fds = count_open_fds();
    if (fds >= 0)
        render_one(b, "process_open_fds", "gauge",
                   "Number of open file descriptors.", (double)fds);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        render_one(b, "process_max_fds", "gauge",
                   "Maximum number of open file descriptors.",
                   rl.rlim_cur == RLIM_INFINITY ? INFINITY
                                                : (double)rl.rlim_cur);
}

int osp_metrics_render(osp_metrics_t *r, char **out, size_t *len) {
    sbuf_t b = {0};
    *out = NULL;
    if (len)
        *len = 0;
    sb_reserve(&b, 4096);
    for (osp_metric_t *m = r->first; m; m = m->next)
        render_family(&b, m);
    if (r->process_metrics)
        render_process(&b);
    if (b.oom || !b.p) {
        free(b.p);
        return OSP_ENOMEM;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}
